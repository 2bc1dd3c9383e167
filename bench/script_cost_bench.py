"""What each queue script costs Redis with a long line, and the slowest single call.

Fills a private redis-server's queue with --waiting waiters (defaults a user gets), then times
each operation from ``INFO commandstats`` (Redis-side µs per call): join, admission (a leave that
admits the head), progress report, status of one token and of a resync chunk, and the reap each
process sends once a second. Then the worst cases for a bounded design: a dead process that held
half the line, and every remaining place lapsing at once, reclaimed batch by batch. ``SLOWLOG``
(threshold 200 µs) gives the slowest single script call of the whole run. Nothing is lost: the line's
length is checked after every phase. The peer is the seed's loop: ZRANK + SCARD per waiter per
second (measured here on the same line).

    python bench/script_cost_bench.py [--waiting 100000] [--against REV]

``--against REV`` measures the app of git revision REV (a temporary copy, imported in a process of
its own; ``Api`` bridges the names that changed) and this tree's, with this file's calls both
times, taking turns ``--rounds`` times, and prints the medians side by side with the ratio: the
same machine, the same run.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness import RedisProcess

N = 1000


def per_call(client, fn, count: int = N) -> float:
    """Redis µs per script call over ``count`` calls of ``fn`` (commandstats: EVALSHA only)."""
    client.config_resetstat()
    for n in range(count):
        fn(n)
    stats = client.info("commandstats")
    calls = sum(v["calls"] for k, v in stats.items() if k in ("cmdstat_evalsha", "cmdstat_eval"))
    usec = sum(v["usec"] for k, v in stats.items() if k in ("cmdstat_evalsha", "cmdstat_eval"))
    return usec / max(1, calls)


ROOT = Path(__file__).resolve().parent.parent
TITLE = "Queue scripts with"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--waiting", type=int, default=100_000)
    parser.add_argument("--against", metavar="REV", help="also run the tree at this git revision, first")
    parser.add_argument("--rounds", type=int, default=3, help="with --against: runs of each tree, taking turns")
    parser.add_argument("--app-from", metavar="DIR", help=argparse.SUPPRESS)  # the app package of another tree
    args = parser.parse_args()
    if args.app_from:
        sys.path.insert(0, args.app_from)
    if args.against:
        compare(args.against, args.waiting, args.rounds)
    else:
        report(measure(args.waiting), args.waiting)


def compare(rev: str, waiting: int, rounds: int) -> None:
    """Both trees' tables, row by row, with after / before: each the median of ``rounds`` runs,
    the two trees taking turns (a shared machine's load falls on both alike)."""
    tree = checkout(rev)
    runs: dict[str, list[dict[str, str]]] = {"before": [], "after": []}
    for n in range(rounds):
        for side in ("before", "after") if n % 2 == 0 else ("after", "before"):
            runs[side].append(run_tree(tree if side == "before" else None, waiting))
    before, after = median_rows(runs["before"]), median_rows(runs["after"])
    steady = side_by_side(tree)
    print(f"\n{TITLE} {waiting} waiting: {rev} (before) against this tree (after), median of {rounds} runs each")
    print(f"{'':<52}{'before':>14}{'after':>14}{'after/before':>14}")
    for name, value in after.items():
        old = before.get(name, "-")
        print(f"{name:<52}{old:>14}{value:>14}{ratio(old, value):>14}")
    print(f"\nThe same scripts side by side on one Redis and one line ({STEADY_LINE} waiting), batches of "
          f"{STEADY_BATCH} calls taking turns, median µs per call (steady state: each call leaves the line as it was)")
    print(f"{'':<52}{'before':>14}{'after':>14}{'after/before':>14}")
    for name, (old, new) in steady.items():
        print(f"{name:<52}{old:>14.1f}{new:>14.1f}{new / old:>14.2f}")


STEADY_LINE, STEADY_BATCH, STEADY_ROUNDS = 2000, 1000, 16


def sources_of(tree: Path) -> tuple[dict[str, str], list[int]]:
    """Every script of ``tree`` as Redis receives it (composed by that tree's own loader), and
    the settings ARGV that tree's scripts take (a tree may have more or fewer settings)."""
    code = ("import json, sys; sys.path.insert(0, sys.argv[1]); from app.queue.scripts import NAMES, source; "
            "from app.queue.settings import QueueSettings; "
            "print(json.dumps([{name: source(name) for name in NAMES}, QueueSettings(capacity=1).seed_args()]))")
    texts, seed = json.loads(subprocess.run([sys.executable, "-c", code, str(tree)], check=True,
                                            capture_output=True, text=True).stdout)
    return texts, seed


def side_by_side(tree: Path) -> dict[str, tuple[float, float]]:
    """Both trees' scripts on one private Redis, called with the same arguments on the same line;
    the calls chosen leave the line as it was, so every batch measures the same work."""
    import statistics

    import redis

    from app.queue.engine import QueueEngine
    from app.queue.settings import QueueSettings

    sources = {"before": sources_of(tree), "after": sources_of(ROOT)}
    scripts = {side: texts for side, (texts, _) in sources.items()}
    far = int((time.time() + 7200) * 1000)
    with tempfile.TemporaryDirectory() as tmp:
        server = RedisProcess(Path(tmp)).start()
        try:
            client = redis.Redis(port=server.port)
            engine = QueueEngine(client, "steady", QueueSettings(capacity=1))
            for n in range(STEADY_LINE):
                engine.join(f"w{n}", 1, 10**9, far / 1000, streamed=True)
            engine.start("w0", "c1", 10**9)
            keys = engine.keys.script_keys  # a tree with fewer keys reads the first ones only
            common = {side: [engine.keys.channel, engine.owner, *seed] for side, (_, seed) in sources.items()}
            calls = {  # script: its own ARGV (the same in both trees)
                "join (re-attach)": ("join", ["w7", 1, 10**9, far, "", "", 0]),
                "status (read)": ("status", ["read", "w5"]),
                "progress": ("progress", ["w0", "c1", 0, 1000, 0, 10**9, 0, 0, 0]),
                "start": ("start", ["w0", "c1", 10**9, 0]),
                "unbind (not held)": ("unbind", ["w9x"]),
                "leave (unknown token)": ("leave", ["nobody"]),
                "remove (unknown token)": ("remove", ["nobody"]),
                "reap": ("reap", []),
                "summary": ("summary", []),
                "inspect": ("inspect", [10]),
                "configure (same value)": ("configure", ["capacity", 1]),
            }
            result = {}
            for label, (name, argv) in calls.items():
                shas = {side: client.script_load(text[name]) for side, text in scripts.items()}
                times: dict[str, list[float]] = {"before": [], "after": []}
                for n in range(STEADY_ROUNDS):
                    for side in ("before", "after") if n % 2 == 0 else ("after", "before"):
                        client.config_resetstat()
                        pipe = client.pipeline(transaction=False)
                        for _ in range(STEADY_BATCH):
                            pipe.evalsha(shas[side], len(keys), *keys, *common[side], *argv)
                        pipe.execute()
                        stats = client.info("commandstats")["cmdstat_evalsha"]
                        times[side].append(stats["usec"] / stats["calls"])
                result[label] = (statistics.median(times["before"]), statistics.median(times["after"]))
            return result
        finally:
            server.stop()


def median_rows(tables: list[dict[str, str]]) -> dict[str, str]:
    """Row by row, the median of the numeric values (the first run's text otherwise)."""
    rows = {}
    for name, first in tables[0].items():
        try:
            values = sorted(float(t[name]) for t in tables)
        except (KeyError, ValueError):
            rows[name] = first
            continue
        middle = values[len(values) // 2]
        rows[name] = f"{middle:.0f}" if first.isdigit() else f"{middle:.{len(first.partition('.')[2])}f}"
    return rows


def ratio(old: str, new: str) -> str:
    try:
        return f"{float(new) / float(old):.2f}"
    except (ValueError, ZeroDivisionError):
        return ""


def checkout(rev: str) -> Path:
    """The tree at ``rev`` in a temporary folder (``git archive``: no work tree is touched)."""
    folder = Path(tempfile.mkdtemp(prefix="script-cost-"))
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder


def run_tree(tree: Path | None, waiting: int) -> dict[str, str]:
    """This benchmark in a process of its own on ``tree``'s app (None: this tree's); its table as
    {row: value}."""
    command = [sys.executable, __file__, "--waiting", str(waiting), *(["--app-from", str(tree)] if tree else [])]
    out = subprocess.run(command, cwd=ROOT, check=True, capture_output=True, text=True).stdout
    rows, table = {}, False
    for line in out.splitlines():
        if line.startswith(TITLE):
            table = True
        elif table and line.strip():
            rows[line[:52].strip()] = line[52:].strip()
    return rows


def report(rows: list[tuple[str, str]], waiting: int) -> None:
    print(f"\n{TITLE} {waiting} waiting (Redis-side µs per call, INFO commandstats)")
    for name, value in rows:
        print(f"{name:<52}{value:>14}")


class Api:
    """The engine's calls under the names of whichever tree is imported (the older tree said
    ``hold=True`` for a streamed join, ``mode="hold"`` for a resync, and kept its settings,
    constants and scripts elsewhere)."""

    def __init__(self) -> None:
        import inspect

        from app.queue import engine

        try:
            from app.queue.constants import STATUS_CHUNK
            from app.queue.settings import QueueSettings
        except ImportError:
            STATUS_CHUNK, QueueSettings = engine.STATUS_CHUNK, engine.QueueSettings
        self.QueueEngine, self.QueueSettings, self.STATUS_CHUNK = engine.QueueEngine, QueueSettings, STATUS_CHUNK
        old = "hold" in inspect.signature(engine.QueueEngine.join).parameters
        self.streamed = {"hold": True} if old else {"streamed": True}
        self.resync = "hold" if old else "resync"

    @staticmethod
    def script(engine, name: str):
        scripts = engine.scripts
        return getattr(scripts, name) if hasattr(scripts, name) else scripts[name]


def measure(waiting: int) -> list[tuple[str, str]]:
    import redis

    from app.queue.scripts import NAMES

    api = Api()
    QueueEngine, QueueSettings, STATUS_CHUNK = api.QueueEngine, api.QueueSettings, api.STATUS_CHUNK

    far = time.time() + 7200
    rows: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        server = RedisProcess(Path(tmp)).start()
        try:
            client = redis.Redis(port=server.port)
            settings = QueueSettings(capacity=1, max_queue_length=10 * waiting)
            engine = QueueEngine(client, "cost", settings)  # a living process holding half the line
            dead = QueueEngine(client, "cost", settings)  # one that will die holding the other half
            janitor = QueueEngine(client, "cost", settings, owner="")  # reclaims, holds nothing
            engine.join("holder", 1, 10**9, far)
            for n in range(waiting):
                (dead if n % 2 else engine).join(f"w{n:07d}", 1, 10**9, far, **api.streamed)
            client.config_set("slowlog-log-slower-than", 200)
            client.config_set("slowlog-max-len", 100_000)
            client.slowlog_reset()
            line = engine.summary().waiting
            rows.append(("waiting at start", f"{line}"))
            rows.append(("join (µs)", f"{per_call(client, lambda n: engine.join(f'j{n}', 1, 10**9, far)):.1f}"))
            holder = ["holder"]

            def admit(_n: int) -> None:
                snap = engine.leave(holder[0])
                holder[0] = snap.admitted[0]

            rows.append(("admission: leave + admit the head (µs)", f"{per_call(client, admit):.1f}"))
            rows.append(("start, a download connection (re)opens (µs)",
                         f"{per_call(client, lambda n: engine.start(holder[0], 'c1', 10**9)):.1f}"))
            engine.start(holder[0], "c1", 10**9)
            rows.append(("progress report (µs)",
                         f"{per_call(client, lambda n: engine.progress(holder[0], 'c1', 0, (n + 1) * 1000, 1000, range_end=10**9)):.1f}"))
            ids = [f"w{n:07d}" for n in range(2 * N, 2 * N + STATUS_CHUNK)]
            rows.append(("status of one token (µs)", f"{per_call(client, lambda n: engine.status([ids[n % len(ids)]])):.1f}"))
            rows.append((f"status of a resync chunk, {STATUS_CHUNK} ids (µs)",
                         f"{per_call(client, lambda n: engine.status(ids, mode=api.resync), 100):.1f}"))
            rows.append(("reap, a process's sign of life (µs)", f"{per_call(client, lambda n: engine.reap()):.1f}"))
            rows.append(("summary (µs)", f"{per_call(client, lambda n: engine.summary()):.1f}"))
            rows.append(("inspect, no downloads listed (µs)", f"{per_call(client, lambda n: engine.inspect(0)):.1f}"))
            rows.append(("inspect, the running downloads (µs)", f"{per_call(client, lambda n: engine.inspect(500)):.1f}"))
            rows.append(("unbind, a stream closes (µs)",
                         f"{per_call(client, lambda n: engine.unbind(f'w{2 * n:07d}')):.1f}"))
            rows.append(("configure, a setting changes (µs)",
                         f"{per_call(client, lambda n: janitor.configure(wait_grace=30 + n % 2)):.1f}"))
            rows.append(("remove, an operator takes a waiter out (µs)",
                         f"{per_call(client, lambda n: janitor.remove(f'w{4 * N + n:07d}')):.1f}"))
            seed_zrank = per_seed(client, waiting)
            dead.reap()  # its last sign of life
            before = engine.summary().waiting
            client.hincrby(engine.keys.counters, "skew", 6_000)  # 6 s later it counts as dead
            engine.reap()
            calls, started = 0, time.perf_counter()
            while calls < 10_000:
                calls += 1
                if not janitor.reap().more and not client.zcount(engine.keys.key("owners"), "-inf", 0):
                    break
            rows.append(("dead process holding half the line: reap calls", f"{calls}"))
            after_owner = engine.summary().waiting
            client.hincrby(engine.keys.counters, "skew", 31_000)  # every process dead, every grace over
            lapse_calls = 0
            while lapse_calls < 10_000:
                lapse_calls += 1
                if not janitor.reap().more and not engine.client.zcard(engine.keys.waiting):
                    break
            rows.append(("every place lapsing at once: reap calls", f"{lapse_calls}"))
            rows.append(("wall time of both reclaims (s)", f"{time.perf_counter() - started:.1f}"))
            names = {api.script(engine, name).sha: name for name in NAMES}
            slow = [e for e in client.slowlog_get(100_000) if e["command"].startswith(b"EVALSHA")]
            worst = max(slow, key=lambda e: e["duration"], default=None)
            rows.append(("script calls over 200 µs (SLOWLOG)", f"{len(slow)}"))
            rows.append(("slowest single script call (µs, SLOWLOG)",
                         f"{names[worst['command'].split()[1].decode()]} {worst['duration']}" if worst else "< 200"))
            rows.append(("lost: places gone before their grace", f"{before - after_owner}"))
            rows.append(("left in line after everything lapsed", f"{engine.client.zcard(engine.keys.waiting)}"))
            rows.append(("seed's loop: ZRANK + SCARD per waiter per s (µs)", f"{seed_zrank:.2f}"))
        finally:
            server.stop()
    return rows


def per_seed(client, waiting: int) -> float:
    """The seed's poll, on a line as long as ours: ZRANK + SCARD, µs per waiter per second."""
    key = "{seed}:queue"
    pipe = client.pipeline(transaction=False)
    for n in range(waiting):
        pipe.zadd(key, {f"s{n}": n})
        if n % 10_000 == 9_999:
            pipe.execute()
    pipe.execute()
    client.config_resetstat()
    for n in range(0, waiting, max(1, waiting // N)):
        client.zrank(key, f"s{n}")
        client.scard("{seed}:active")
    stats = client.info("commandstats")
    client.unlink(key)
    return sum(stats[k]["usec"] for k in ("cmdstat_zrank", "cmdstat_scard")) / stats["cmdstat_zrank"]["calls"]


if __name__ == "__main__":
    main()
