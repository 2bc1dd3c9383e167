"""Hand-off right after a rush: how soon the next waiter hears ``ready`` when a slot is freed.

Each round, --waiters SSE clients join at once (gevent client processes, one 127.0.0.x source
address each) behind one held slot; as soon as the last one holds its stream, the slot is freed
--releases times, one after another, each time by the waiter just admitted (``engine.leave``:
the releasing call). The latency is from that call to the next waiter's ``ready`` as its client
reads it. The first release of a round is the one right after the rush; it is reported apart.
The peer is the seed's 1-second polling loop (bench/queue_bench.py's loop, same invocation).
Counted beside the speed: waiters lost, admissions of anyone but the head of the line, slots held after the run.

Defaults a user gets (2 gevent workers), except ADMIT_TIMEOUT = 3600 (the held slot must not
lapse while a round connects) and WORKER_CONNECTIONS (a worker may hold 20,000 streams here).

    python bench/handoff_bench.py [--waiters 2000] [--rounds 3] [--releases 30]
"""
from __future__ import annotations

import argparse
import math
import multiprocessing
import statistics
import tempfile
import time
from multiprocessing.connection import wait
from pathlib import Path

from harness import Service, make_file, percentile
from queue_bench import seed_peer

from testbed.crowd import hold_streams

SECRET = "bench-secret"
PER_PROCESS = 12_500


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--waiters", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--releases", type=int, default=30)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed-waiters", type=int, default=2000)
    args = parser.parse_args()

    from app.services.tokens import issue_token, verify_token

    clients = max(1, math.ceil(args.waiters / PER_PROCESS))
    firsts: list[float] = []
    later: list[float] = []
    lost: list[tuple] = []
    out_of_order = failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        files = Path(tmp) / "files"
        files.mkdir()
        make_file(files, "small.bin", 4096)
        service = Service(Path(tmp), files, workers=args.workers, QUEUE_CAPACITY=1, ADMIT_TIMEOUT=3600,
                          WORKER_CONNECTIONS=20_000)
        procs: list = []
        ctx = multiprocessing.get_context("spawn")
        try:
            engine = service.engine()
            holder = verify_token(SECRET, service.admitted_token("small.bin")).token_id
            file_id = service.file_ids["small.bin"]
            for round_no in range(args.rounds):
                per = args.waiters // clients
                groups = [[issue_token(SECRET, file_id, 7200)[0] for _ in range(per)] for _ in range(clients)]
                readers = []
                for n, group in enumerate(groups):
                    reader, writer = ctx.Pipe(duplex=False)
                    proc = ctx.Process(target=hold_streams, args=(service.server.port, group, writer,
                                                                  f"127.0.0.{2 + n}", 500))
                    proc.start()
                    procs.append(proc)
                    readers.append(reader)
                # the rush is over for the queue once every place is taken: release then, while
                # the workers may still be answering the newcomers' streams
                expected, deadline = per * clients, time.time() + 1800
                while engine.summary().waiting < expected:
                    assert time.time() < deadline, "the waiters did not all join"
                    for reader in readers:
                        if reader.poll(0):  # a process that is done connecting: count its failures
                            event = reader.recv()
                            if event[0] == "lost":
                                lost.append(event[1:])
                                expected -= 1
                            else:
                                failed += event[2]
                                expected -= event[2]
                    time.sleep(0.005)
                ids = [verify_token(SECRET, t).token_id for group in groups for t in group]
                for n in range(args.releases):
                    head = engine.client.zrange(engine.keys.waiting, 0, 0)[0].decode()
                    released = time.time()
                    engine.leave(holder)
                    event: tuple = ()
                    while not event:
                        ready = wait(readers, timeout=30)
                        assert ready, "nobody was woken"
                        event = ready[0].recv()
                        if event[0] == "lost":
                            lost.append(event[1:])
                        elif event[0] == "connected":
                            failed += event[2]
                        if event[0] != "ready":
                            event = ()
                    _, token, woke = event
                    (later if n else firsts).append((woke - released) * 1000)
                    holder = verify_token(SECRET, token).token_id
                    out_of_order += holder != head
                    time.sleep(0.05)
                # the round's other waiters leave: the next round's rush joins an empty line
                for proc in procs:
                    proc.kill()
                    proc.join()
                procs.clear()
                for token_id in ids:
                    if token_id != holder:
                        engine.leave(token_id)
                print(f"round {round_no + 1}: first hand-off {firsts[-1]:.2f} ms", flush=True)
            engine.leave(holder)
            held_after = engine.summary().active
        finally:
            for proc in procs:
                proc.kill()
            service.stop()

    seed = seed_peer(args.seed_waiters, idle=2.0)
    everyone = firsts + later
    print(f"\nHand-off after a rush: {args.waiters} SSE waiters join at once behind one slot, then "
          f"{args.releases} releases one by one; {args.rounds} rounds, {args.workers} gevent workers")
    print(f"{'first release after the rush (ms), each round':<52}{' / '.join(f'{v:.2f}' for v in firsts):>30}")
    print(f"{'every release p50 / p99 / max (ms)':<52}"
          f"{statistics.median(everyone):.2f} / {percentile(everyone, 0.99):.2f} / {max(everyone):.2f}".rjust(30))
    print(f"{'releases measured':<52}{len(everyone):>30}")
    print(f"{'streams that failed to connect':<52}{failed:>30}")
    print(f"{'waiters lost / admitted other than the head of the line':<52}{f'{len(lost)} / {out_of_order}':>30}")
    print(f"{'slots held after the run':<52}{held_after:>30}")
    print(f"\npeer, the seed's 1 s polling loop at {seed['waiters']} waiters: wake p50 {seed['wake_p50_ms']:.0f} ms, "
          f"p99 {seed['wake_p99_ms']:.0f} ms; seed p99 / ours p99 = "
          f"{seed['wake_p99_ms'] / max(percentile(everyone, 0.99), 1e-9):.0f}x")


if __name__ == "__main__":
    main()
