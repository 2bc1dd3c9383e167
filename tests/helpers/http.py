"""Real HTTP clients for the tests: an SSE reader and a raw socket downloader."""
from __future__ import annotations

import contextlib
import hashlib
import socket
import threading
import time
from collections.abc import Callable

import requests

from testbed.servers import wait_until
from testbed.sse import Event, sse


def wait_turn(base: str, token: str, timeout: float = 120,
              on_first: Callable[[], None] | None = None) -> tuple[list[Event], Event]:
    """Follow the v1 queue feed until ``ready`` or ``error``; returns (positions, last event)."""
    positions = []
    for event in sse(f"{base}/api/v1/queue/{token}", timeout=timeout):
        if on_first is not None:
            on_first()
            on_first = None
        if event.event == "position":
            positions.append(event)
        else:
            return positions, event
    raise AssertionError("the stream ended without ready or error")


def connections_held(port: int) -> int:
    """Connections the server listening on ``port`` has accepted or queued and not yet closed
    (ESTABLISHED or CLOSE_WAIT on its side, from the kernel's table): a client's interrupted
    requests may still be read and served after the client left."""
    held = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(FileNotFoundError), open(table) as rows:
            next(rows)  # the header
            for row in rows:
                _, local, _, state = row.split()[:4]
                held += int(local.rsplit(":", 1)[1], 16) == port and state in ("01", "08")
    return held


def token_id(token: str) -> str:
    """The id inside a token issued with the tests' secret."""
    from app.services.tokens import verify_token

    from .env import SECRET

    return verify_token(SECRET, token).token_id


def new_token(base: str, file_id: int) -> str:
    response = requests.post(f"{base}/api/v1/files/{file_id}/tokens", timeout=10)
    assert response.status_code == 201, response.text
    return response.json()["token"]


def download_sha(base: str, token: str, headers: dict | None = None) -> tuple[int, str, int]:
    with requests.get(f"{base}/api/v1/downloads/{token}", stream=True, timeout=120, headers=headers or {}) as r:
        digest, size = hashlib.sha256(), 0
        for chunk in r.iter_content(1 << 20):
            digest.update(chunk)
            size += len(chunk)
        return r.status_code, digest.hexdigest(), size


class RawDownload:
    """A download on a raw socket with a small receive buffer, to stall or drop at will."""

    def __init__(self, port: int, path: str, headers: dict | None = None, rcvbuf: int = 32 * 1024) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.connect(("127.0.0.1", port))
        lines = [f"GET {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        self.buffer = b""
        while b"\r\n\r\n" not in self.buffer:
            self.buffer += self.sock.recv(65536)
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        self.status = int(head.split()[1])
        self.headers = {k.strip().lower(): v.strip() for k, _, v in
                        (line.decode().partition(":") for line in head.split(b"\r\n")[1:])}

    def read(self, count: int) -> bytes:
        while len(self.buffer) < count:
            chunk = self.sock.recv(65536)
            if not chunk:
                break
            self.buffer += chunk
        data, self.buffer = self.buffer[:count], self.buffer[count:]
        return data

    def close(self) -> None:
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        self.sock.close()


class Waiter(threading.Thread):
    """A browser-like client: joins over SSE, downloads when its turn comes, notes the order."""

    def __init__(self, base: str, file_id: int, finished: list[str], lock: threading.Lock) -> None:
        super().__init__(daemon=True)
        self.base, self.token = base, new_token(base, file_id)
        self.events: list = []
        self.finished, self.lock = finished, lock
        self.result: tuple[int, str, int] | None = None

    def run(self) -> None:
        for event in sse(f"{self.base}/api/v1/queue/{self.token}", timeout=120):
            self.events.append(event)
            if event.event != "position":
                break
        if self.events[-1].event == "ready":
            with self.lock:
                self.finished.append(self.token)
            self.result = download_sha(self.base, self.token)

    @property
    def position(self) -> int:
        return self.events[-1].json().get("position", 0) if self.events else -1


def slow_holder(server, file_id: int) -> RawDownload:
    """A client admitted at once that reads its download slowly: it holds a slot."""
    holder = RawDownload(server.port, f"/api/v1/downloads/{ready_token(server.url, file_id)}")
    assert holder.status == 200
    return holder


def start_waiters(bases: list[str], file_id: int, count: int) -> tuple[list[Waiter], list[str]]:
    """``count`` waiters that join one after another (each has its place before the next asks),
    on each of ``bases`` (hosts) in turn; the list fills with their tokens as their turns come."""
    order, lock, waiters = [], threading.Lock(), []
    for n in range(count):
        waiter = Waiter(bases[n % len(bases)], file_id, order, lock)
        waiter.start()
        wait_until(lambda w=waiter: w.events, timeout=20, message="the waiter's first event")
        waiters.append(waiter)
    return waiters, order


class PacedReader(threading.Thread):
    """A download read at ``rate`` bytes/s (None: as fast as it comes) through a small receive
    buffer, so the server feels the client's speed; ``taken()`` is what it has read so far."""

    def __init__(self, port: int, path: str, rate: float | None = None, headers: dict | None = None) -> None:
        super().__init__(daemon=True)
        self.download = RawDownload(port, path, headers)
        self.rate = rate
        self.total = len(self.download.buffer)
        self.stopped = threading.Event()
        self.start()

    def run(self) -> None:
        began = time.monotonic()
        sock = self.download.sock
        while not self.stopped.is_set():
            try:
                chunk = sock.recv(16 << 10)
            except OSError:
                return
            if not chunk:
                return
            self.total += len(chunk)
            if self.rate:
                ahead = self.total / self.rate - (time.monotonic() - began)
                if ahead > 0:
                    time.sleep(ahead)

    def taken(self) -> int:
        return self.total

    def close(self) -> None:
        self.stopped.set()
        self.download.close()


def ready_token(base: str, file_id: int) -> str:
    """A token admitted at once (a slot is free)."""
    token = new_token(base, file_id)
    assert requests.post(f"{base}/api/v1/queue/{token}", timeout=10).json()["state"] == "ready"
    return token


def rates(readers: dict[str, list[PacedReader]], seconds: float) -> dict[str, float]:
    """Bytes/s each group of readers took over the next ``seconds``."""
    before = {name: sum(r.taken() for r in group) for name, group in readers.items()}
    time.sleep(seconds)
    return {name: (sum(r.taken() for r in group) - before[name]) / seconds for name, group in readers.items()}


def serve_in_order(holder: RawDownload, size: int, waiters: list[Waiter], order: list[str],
                   expected: str, first_within: float) -> None:
    """The holder reads the rest of its download; the waiters must then be told their turn (the
    first within ``first_within`` s: pushed, not found by a later poll), one after another in
    join order, each downloading the right bytes, none told of an error."""
    assert len(holder.read(size)) == size
    holder.close()
    wait_until(lambda: order, timeout=first_within, message="the first waiter told its turn")
    for waiter in waiters:
        waiter.join(120)
    assert order == [w.token for w in waiters]
    assert {w.result for w in waiters} == {(200, expected, size)}
    assert not [e for w in waiters for e in w.events if e.event == "error"]


class FreezingProxy:
    """A TCP forwarder to 127.0.0.1:``port`` whose connections can go silent without closing, as a
    connection does when a phone's radio sleeps or a NAT forgets it: ``freeze(prefix)`` stops the
    connections open now whose latest request began with ``prefix`` from forwarding anything; the
    others, and later connections, work."""

    def __init__(self, port: int) -> None:
        self.target = port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._frozen: set[int] = set()
        self._request: dict[int, bytes] = {}  # connection -> the start of its latest request
        self._count = 0
        self._sockets: list[socket.socket] = []
        self._upstream: dict[int, socket.socket] = {}
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target))
            self._count += 1
            self._sockets += [client, upstream]
            self._upstream[self._count] = upstream
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(self._count, source, sink, source is client),
                                 daemon=True).start()

    def _pipe(self, number: int, source: socket.socket, sink: socket.socket, from_client: bool) -> None:
        while True:
            try:
                data = source.recv(65536)
            except OSError:
                return
            if from_client and data[:4] in (b"GET ", b"POST", b"HEAD", b"DELE", b"PUT ", b"PATC"):
                self._request[number] = data
            while number in self._frozen and not self._closed:  # silent: nothing passes, nothing closes
                time.sleep(0.1)
            if not data or self._closed:
                with contextlib.suppress(OSError):
                    sink.shutdown(socket.SHUT_WR)
                return
            try:
                sink.sendall(data)
            except OSError:
                return

    def freeze(self, prefix: bytes) -> int:
        """How many connections went silent."""
        chosen = {n for n, request in self._request.items() if request.startswith(prefix)}
        self._frozen.update(chosen)
        return len(chosen)

    def cut(self, prefix: bytes) -> int:
        """Like ``freeze``, and the server's side of those connections is closed too: the server
        sees its client leave (a phone's connection reset by its carrier) while the page, frozen
        or asleep, hears nothing. How many connections were cut."""
        frozen = self.freeze(prefix)
        for number in {n for n, request in self._request.items() if request.startswith(prefix)}:
            with contextlib.suppress(OSError):
                self._upstream[number].shutdown(socket.SHUT_RDWR)
        return frozen

    def close(self) -> None:
        self._closed = True
        self.listener.close()
        for sock in self._sockets:
            sock.close()
