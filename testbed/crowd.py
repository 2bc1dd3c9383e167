"""A crowd of idle SSE waiters in one gevent client process (tests and benchmarks).

Each waiter opens ``GET /api/v1/queue/<token>``, reads up to its first ``position`` event, then
keeps reading as a browser would. Over a pipe (no feeder thread: safe after monkey-patching)
the process reports ``("connected", held, failed)`` once, ``("ready", token, time)`` when a
waiter's turn comes and ``("lost", token, why)`` when a stream errs or ends before that.
"""
from __future__ import annotations

import gc
import time


def hold_streams(port: int, tokens: list[str], report, source: str = "127.0.0.1",
                 concurrency: int = 100) -> None:
    from gevent import monkey

    monkey.patch_all()
    import socket

    import gevent
    from gevent.pool import Pool

    held, failed = [], []

    def watch(sock, token: str, buf: bytes) -> None:
        tail = buf[-64:]
        while True:
            try:
                chunk = sock.recv(65536)
            except OSError as exc:
                report.send(("lost", token, f"{type(exc).__name__}"))
                return
            if not chunk:
                report.send(("lost", token, "stream ended"))
                return
            seen = tail + chunk
            if b"event: ready" in seen:
                report.send(("ready", token, time.time()))
                sock.close()
                return
            if b"event: error" in seen:
                report.send(("lost", token, seen[seen.find(b"event: error"):][:200].decode(errors="replace")))
                sock.close()
                return
            tail = seen[-64:]

    def open_stream(token: str) -> None:
        for _ in range(20):
            try:
                sock = socket.create_connection(("127.0.0.1", port), timeout=None, source_address=(source, 0))
                sock.sendall(f"GET /api/v1/queue/{token} HTTP/1.1\r\nHost: crowd\r\n\r\n".encode())
                buf = b""
                with gevent.Timeout(60):
                    while b"event: position" not in buf:
                        chunk = sock.recv(4096)
                        if not chunk:
                            raise OSError("closed")
                        buf += chunk
                held.append(sock)
                gevent.spawn(watch, sock, token, buf)
                return
            except (OSError, gevent.Timeout):
                gevent.sleep(0.2)
        failed.append(token)

    pool = Pool(concurrency)
    for token in tokens:
        pool.spawn(open_stream, token)
    pool.join()
    # the crowd is a load generator: its own garbage collections (12,500 greenlets and sockets)
    # must not show up as the server's latency
    gc.freeze()
    gc.disable()
    report.send(("connected", len(held), len(failed)))
    gevent.sleep(3600)
