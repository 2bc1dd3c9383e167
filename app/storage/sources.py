"""A byte range of a stored file, ready to be written onto a client's socket.

Two kinds: a local file (``FileSource``: the kernel copies it with ``sendfile``) and an HTTP
response body from the store (``StreamSource``: plain HTTP is spliced socket → pipe → socket
inside the kernel; TLS is decrypted into one reused buffer). Either way at most about 1 MiB
is held per connection, and the event loop is never blocked: every wait is gevent's.

``send`` moves bytes to a non-blocking file descriptor and raises ``BlockingIOError`` when
that descriptor is full (the caller waits for it); ``read`` returns the next bytes (for a
server that hands no socket). Both raise ``SourceFailed`` when the store stops short.
"""
from __future__ import annotations

import fcntl
import os
import socket
from typing import Protocol

from gevent.socket import wait_read

PIPE_SIZE = 1 << 20  # the most a spliced connection holds between the store and the client
READ_BUFFER = 256 << 10  # a TLS connection's one buffer
STALL_TIMEOUT = 30.0  # seconds the store may send nothing before the transfer ends


class SourceFailed(OSError):
    """The store ended or stalled before the range was complete: the client may resume."""


class Source(Protocol):
    def send(self, out_fd: int, count: int) -> int: ...
    def read(self, count: int) -> bytes: ...
    def close(self) -> None: ...


class FileSource:
    """``[start, end)`` of a local file."""

    def __init__(self, path: str, start: int, end: int) -> None:
        self.fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        self.offset, self.end = start, end

    def send(self, out_fd: int, count: int) -> int:
        sent = os.sendfile(out_fd, self.fd, self.offset, min(count, self.end - self.offset))
        if sent == 0:
            raise SourceFailed("the file ended early")
        self.offset += sent
        return sent

    def read(self, count: int) -> bytes:
        block = os.pread(self.fd, min(count, self.end - self.offset), self.offset)
        if not block:
            raise SourceFailed("the file ended early")
        self.offset += len(block)
        return block

    def close(self) -> None:
        os.close(self.fd)


class EmptySource:
    """No bytes (an empty file: a store refuses an empty Range)."""

    def send(self, out_fd: int, count: int) -> int:
        raise SourceFailed("nothing to send")

    def read(self, count: int) -> bytes:
        return b""

    def close(self) -> None:
        pass


class StreamSource:
    """The body of a store's response: ``length`` bytes on ``sock`` after ``head`` (body bytes
    that arrived with the headers)."""

    def __init__(self, sock: socket.socket, head: bytes, length: int, stall_timeout: float = STALL_TIMEOUT) -> None:
        self.sock = sock
        self.remaining = length - len(head)  # still on the socket
        self.pending = memoryview(head)  # received, not yet sent
        self.stall_timeout = stall_timeout
        self.splice = not hasattr(sock, "pending") and hasattr(os, "splice")  # ssl sockets have pending()
        self.pipe: tuple[int, int] | None = None
        self.in_pipe = 0
        self.buffer: bytearray | None = None

    def _wait(self) -> None:
        wait_read(self.sock.fileno(), timeout=self.stall_timeout, timeout_exc=SourceFailed("the store stopped sending"))

    def _recv(self, count: int) -> memoryview:
        """Up to ``count`` bytes from the store (TLS, or a reader without a socket)."""
        if self.buffer is None:
            self.buffer = bytearray(READ_BUFFER)
        view = memoryview(self.buffer)[:min(count, READ_BUFFER, self.remaining)]
        while True:
            try:
                got = self.sock.recv_into(view)
            except (TimeoutError, BlockingIOError):
                self._wait()
                continue
            except OSError as exc:
                raise SourceFailed(f"the store's connection failed: {exc}") from exc
            if got == 0:
                raise SourceFailed("the store closed the connection early")
            self.remaining -= got
            return view[:got]

    def _write(self, out_fd: int, count: int) -> int:
        sent = os.write(out_fd, self.pending[:count])
        self.pending = self.pending[sent:]
        return sent

    def send(self, out_fd: int, count: int) -> int:
        if len(self.pending):
            return self._write(out_fd, count)
        if not self.splice:
            if self.remaining <= 0:
                raise SourceFailed("nothing left to send")
            self.pending = self._recv(count)
            return self._write(out_fd, count)
        return self._splice(out_fd, count)

    def _splice(self, out_fd: int, count: int) -> int:
        if self.pipe is None:
            self.pipe = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
            fcntl.fcntl(self.pipe[1], fcntl.F_SETPIPE_SZ, PIPE_SIZE)
        reader, writer = self.pipe
        while self.in_pipe == 0:
            if self.remaining <= 0:
                raise SourceFailed("nothing left to send")
            try:
                moved = os.splice(self.sock.fileno(), writer, min(self.remaining, PIPE_SIZE), flags=os.SPLICE_F_MOVE)
            except BlockingIOError:
                self._wait()
                continue
            except OSError as exc:
                raise SourceFailed(f"the store's connection failed: {exc}") from exc
            if moved == 0:
                raise SourceFailed("the store closed the connection early")
            self.in_pipe += moved
            self.remaining -= moved
        sent = os.splice(reader, out_fd, min(count, self.in_pipe), flags=os.SPLICE_F_MOVE)
        self.in_pipe -= sent
        return sent

    def read(self, count: int) -> bytes:
        if len(self.pending):
            block, self.pending = bytes(self.pending[:count]), self.pending[count:]
            return block
        if self.in_pipe:
            block = os.read(self.pipe[0], min(count, self.in_pipe))
            self.in_pipe -= len(block)
            return block
        if self.remaining <= 0:
            raise SourceFailed("nothing left to read")
        return bytes(self._recv(count))

    def close(self) -> None:
        if self.pipe is not None:
            for fd in self.pipe:
                os.close(fd)
            self.pipe = None
        self.sock.close()
