"""The capacity plan: what each queue operation costs Redis here, and what that makes of a deployment.

On a private redis-server (defaults a user gets, ``MAX_QUEUE_LENGTH`` raised so the line may
hold what is measured), for two lengths of line, the Redis *process* CPU (``INFO cpu``, main
thread: scripts, replies and pub/sub delivery together) per call of: a join held by a stream,
an admission (a leave that admits the head), the reap each process sends once a second (its
sign of life, which renews the presence of every waiter it streams; a process with downloads
running sends their progress reports in that call instead, PROGRESS_BATCH per call at most:
measured carrying 1, 25 and PROGRESS_BATCH reports), and a resync chunk (50 waiters asked about after a failover). An admission publishes an event (a join
alone does not: it moves no one's place): both are measured with no subscriber and with
``--subscribers`` (every worker of every host holds one subscription), which gives the cost of
delivering one event to one subscriber.
Memory per waiter comes from ``used_memory``. Nothing may be lost: the line's length is checked
after every phase, and every subscriber must have heard every event.

The table then extrapolates to deployments (waiters, hosts x workers, joins/s, admissions/s,
downloads running) -> Redis CPU (% of one core), memory and network out. The peer is the seed's
loop (ZRANK + SCARD per waiter per second), measured on the same line.

    python bench/capacity_bench.py [--waiting 100000] [--subscribers 400]
"""
from __future__ import annotations

import argparse
import math
import selectors
import socket
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from harness import RedisProcess

from app.queue.constants import PROGRESS_BATCH

CALLS = 2000
ROUND = 1.0  # seconds between two housekeeping rounds of a process (app/queue/housekeeping.py)
CARRIED = (1, 25)  # reports per round call measured, besides PROGRESS_BATCH


def cpu_seconds(client) -> float:
    info = client.info("cpu")
    return info["used_cpu_sys_main_thread"] + info["used_cpu_user_main_thread"]


def cost(client, fn, count: int = CALLS) -> float:
    """Redis CPU µs per call of ``fn`` (the process's main thread, all work included)."""
    before = cpu_seconds(client)
    for n in range(count):
        fn(n)
    return (cpu_seconds(client) - before) / count * 1e6


class Subscribers:
    """``count`` raw pub/sub connections (one per worker of a deployment), read by one thread."""

    def __init__(self, port: int, channel: str, count: int) -> None:
        self.selector = selectors.DefaultSelector()
        self.bytes = 0
        self.messages = 0
        self.socks = []
        command = f"*2\r\n$9\r\nSUBSCRIBE\r\n${len(channel)}\r\n{channel}\r\n".encode()
        for _ in range(count):
            sock = socket.create_connection(("127.0.0.1", port))
            sock.sendall(command)
            sock.setblocking(False)
            self.selector.register(sock, selectors.EVENT_READ)
            self.socks.append(sock)
        self._stop = False
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        while not self._stop:
            for key, _ in self.selector.select(0.2):
                try:
                    data = key.fileobj.recv(1 << 20)
                except BlockingIOError:
                    continue
                self.bytes += len(data)
                self.messages += data.count(b"$7\r\nmessage\r\n")

    def close(self) -> None:
        self._stop = True
        self.thread.join(2)
        for sock in self.socks:
            sock.close()


@dataclass
class Costs:
    line: int
    join: float
    admission: float
    join_subscribed: float
    admission_subscribed: float
    rounds: dict[int, float]  # reports carried -> µs of a round call carrying them
    reap: float
    resync_chunk: float
    seed_poll: float
    memory_per_waiter: float
    event_bytes: float


def measure(client, port: int, line: int, subscribers: int, far: float) -> Costs:
    from app.queue.constants import STATUS_CHUNK
    from app.queue.engine import QueueEngine
    from app.queue.settings import QueueSettings

    client.flushall()
    settings = QueueSettings(capacity=1, max_queue_length=10**8)
    engine = QueueEngine(client, "plan", settings)
    engine.join("holder", 1, 10**12, far)
    base_memory = client.info("memory")["used_memory"]
    pipe_every = 1000
    for start in range(0, line, pipe_every):
        for n in range(start, min(line, start + pipe_every)):
            engine.join(f"w{n:08d}", 1, 10**12, far, streamed=True)
    memory = (client.info("memory")["used_memory"] - base_memory) / line
    assert engine.summary().waiting == line, "the line lost waiters while filling"
    joined = [line]

    def join(_n: int) -> None:
        engine.join(f"j{joined[0]:08d}", 1, 10**12, far, streamed=True)
        joined[0] += 1

    holder = ["holder"]

    def admit(_n: int) -> None:
        holder[0] = engine.leave(holder[0]).admitted[0]

    c_join = cost(client, join)
    c_admit = cost(client, admit)
    listeners = Subscribers(port, engine.keys.channel, subscribers)
    time.sleep(0.5)
    c_join_s = cost(client, join)
    c_admit_s = cost(client, admit)
    expected = CALLS * subscribers  # one event per admission; a join alone publishes none
    deadline = time.monotonic() + 30
    while listeners.messages < expected and time.monotonic() < deadline:
        time.sleep(0.1)
    heard, event_bytes = listeners.messages, listeners.bytes / max(1, listeners.messages)
    listeners.close()
    assert heard == expected, f"subscribers heard {heard} of {expected} events"
    rounds = {k: round_cost(client, far, k) for k in (*CARRIED, PROGRESS_BATCH)}
    c_reap = cost(client, lambda n: engine.reap())
    ids = [f"w{n:08d}" for n in range(4 * CALLS, 4 * CALLS + STATUS_CHUNK)]
    c_resync = cost(client, lambda n: engine.status(ids, mode="resync"), 200)
    seed = f"seed:{line}"
    for start in range(0, line, 10_000):
        client.zadd(seed, {f"s{n}": n for n in range(start, min(line, start + 10_000))})

    def seed_poll(n: int) -> None:  # the seed's loop: every waiter asks ZRANK and SCARD each second
        pipe = client.pipeline(transaction=False)
        pipe.zrank(seed, f"s{(n * 7919) % line}")
        pipe.zcard(seed)
        pipe.execute()

    c_seed = cost(client, seed_poll)
    left = engine.summary().waiting
    assert left == line, f"the line holds {left} of {line}: waiters were lost"  # as many joined as admitted
    return Costs(line, c_join, c_admit, c_join_s, c_admit_s, rounds, c_reap, c_resync, c_seed, memory,
                 event_bytes)


def round_cost(client, far: float, carried: int) -> float:
    """Redis CPU µs of a round call carrying ``carried`` running downloads' reports (a process's
    every second), on a queue of its own with as many downloads running and a line behind them."""
    from app.queue.engine import QueueEngine
    from app.queue.reports import ProgressReport
    from app.queue.settings import QueueSettings

    engine = QueueEngine(client, f"round{carried}", QueueSettings(capacity=carried, max_queue_length=10**8))
    ids = [f"d{n:04d}" for n in range(carried)]
    for tid in [*ids, *(f"q{n:04d}" for n in range(100))]:
        engine.join(tid, 1, 10**12, far, streamed=True)
    for tid in ids:
        assert engine.start(tid, f"c{tid}", 10**12).state == "ok"

    def send(n: int) -> None:
        _, states = engine.report([ProgressReport(tid, f"c{tid}", 0, (n + 1) * 10**6, 10**6, 10**12) for tid in ids])
        assert states == ["ok"] * carried, f"a round's reports were refused: {set(states)}"

    spent = cost(client, send, CALLS // 4)
    views = engine.status(ids).tokens
    assert all(views[tid].bytes == CALLS // 4 * 10**6 for tid in ids), "a round's bytes were lost"
    return spent


@dataclass(frozen=True)
class Deployment:
    waiters: int
    hosts: int
    workers: int
    joins: float
    admissions: float
    running: int  # downloads in flight, spread over the processes, reported in their rounds

    @property
    def processes(self) -> int:
        return self.hosts * self.workers


def rounds_cost(c: Costs, carried: float) -> float:
    """µs of one process's round with ``carried`` downloads running: a reap without any, else
    calls of PROGRESS_BATCH reports, each a fixed cost and a cost per report (the straight line
    through the measures carrying 1 and PROGRESS_BATCH)."""
    if carried <= 0:
        return c.reap
    per_report = (c.rounds[PROGRESS_BATCH] - c.rounds[1]) / (PROGRESS_BATCH - 1)
    fixed = c.rounds[1] - per_report
    return math.ceil(carried / PROGRESS_BATCH) * fixed + carried * per_report


def plan(c: Costs, subscribers: int, d: Deployment) -> tuple[float, float, float, float, float]:
    """(Redis CPU % of one core, memory GB, network out MB/s, resync CPU s, seed-loop CPU %)."""
    per_event_per_subscriber = max(0.0, (c.admission_subscribed - c.admission) / subscribers)
    fanout = per_event_per_subscriber * d.processes
    cpu_us = (d.joins * c.join_subscribed + d.admissions * (c.admission + fanout)
              + d.processes * rounds_cost(c, d.running / d.processes) / ROUND)
    memory = d.waiters * c.memory_per_waiter / 1e9
    network = d.admissions * c.event_bytes * d.processes / 1e6
    resync = d.waiters / 50 * c.resync_chunk / 1e6
    seed = d.waiters * c.seed_poll / 1e6 * 100
    return cpu_us / 1e4, memory, network, resync, seed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--waiting", type=int, default=100_000)
    parser.add_argument("--subscribers", type=int, default=400, help="pub/sub connections (50 hosts x 8 workers)")
    args = parser.parse_args()

    import redis

    far = time.time() + 86400
    with tempfile.TemporaryDirectory() as tmp:
        server = RedisProcess(Path(tmp)).start()
        try:
            client = redis.Redis(port=server.port)
            runs = [measure(client, server.port, line, args.subscribers, far)
                    for line in (args.waiting // 10, args.waiting)]
        finally:
            server.stop()

    print(f"Redis CPU per call (µs of the server's main thread), {args.subscribers} subscribers where stated")
    print(f"{'operation':58}" + "".join(f"{f'line {c.line:,}':>16}" for c in runs))
    for label, attr in (("join (held by a stream), no subscriber", "join"),
                        (f"join, {args.subscribers} subscribers", "join_subscribed"),
                        ("admission (leave + admit the head), no subscriber", "admission"),
                        (f"admission, {args.subscribers} subscribers", "admission_subscribed"),
                        ("reap: a process's sign of life, once a second", "reap"),
                        ("resync chunk of 50 waiters (after a failover)", "resync_chunk"),
                        ("peer: the seed's poll (ZRANK + SCARD) of one waiter", "seed_poll"),
                        ("memory per waiter (bytes)", "memory_per_waiter"),
                        ("event size on the wire (bytes)", "event_bytes")):
        print(f"{label:58}" + "".join(f"{getattr(c, attr):>16.1f}" for c in runs))
        if attr == "reap":
            for k in (*CARRIED, PROGRESS_BATCH):
                print(f"{f'round call carrying {k} downloads’ reports':58}"
                      + "".join(f"{c.rounds[k]:>16.1f}" for c in runs))
    print("lost: 0 waiters, 0 events (checked after every phase)\n")

    c = runs[-1]
    deployments = [
        Deployment(10_000, 2, 4, 10, 10, 100),
        Deployment(100_000, 10, 8, 50, 50, 1_000),
        Deployment(1_000_000, 50, 8, 100, 100, 1_000),
        Deployment(1_000_000, 50, 8, 100, 100, 10_000),
        Deployment(1_000_000, 50, 8, 1_000, 100, 1_000),
    ]
    print(f"{'waiters':>10} {'hosts x workers':>15} {'joins/s':>8} {'admits/s':>8} {'running':>8} "
          f"{'Redis CPU':>10} {'memory':>9} {'net out':>10} {'resync':>9} {'seed loop':>10}")
    for d in deployments:
        cpu, memory, network, resync, seed = plan(c, args.subscribers, d)
        print(f"{d.waiters:>10,} {f'{d.hosts} x {d.workers}':>15} {d.joins:>8,.0f} {d.admissions:>8,.0f} "
              f"{d.running:>8,} {cpu:>9.1f}% {memory:>7.2f}GB {network:>6.1f}MB/s {resync:>8.1f}s {seed:>9.0f}%")
    print("\nRedis CPU: % of one core. resync: CPU seconds to re-ask every waiter after a failover (spread "
          "over the hubs' jitter). seed loop: the seed's polling of the same line, % of one core.")


if __name__ == "__main__":
    main()
