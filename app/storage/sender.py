"""Sending a byte range of a file as a WSGI body, zero-copy where the server allows it.

Under gunicorn the body is sent with ``os.sendfile`` straight onto the client socket
(gevent's own ``socket.sendfile`` never calls it), yielding to the event loop after every
chunk so the worker's other clients keep flowing, and waiting cooperatively when the
socket buffer is full. Elsewhere (tests, other servers) it falls back to seeking and
reading chunks. Either way a range never reads the bytes before it, progress is
reported about once a second (the caller renews the slot's lease with it), and the
final report is made in ``close``, which every WSGI server calls.
"""
from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from typing import IO, Any

import gevent
from gevent.socket import wait_write

from .bandwidth import HostShare

CHUNK = 256 << 10
MIN_CHUNK = 16 << 10
SHARE_INTERVAL = 0.25  # how often a rate-limited transfer re-reads its share of the host limit

ProgressFn = Callable[[int, bool], bool]


class SlotLost(Exception):
    """The token's slot was reclaimed while sending: stop."""


class Transfer:
    """A WSGI iterable sending ``[start, end)`` of ``fh``."""

    def __init__(
        self,
        fh: IO[bytes],
        start: int,
        end: int,
        on_progress: ProgressFn,
        sock: Any = None,
        share: HostShare | None = None,
        report_interval: float = 1.0,
        stall_timeout: float = 30.0,
    ) -> None:
        self.fh = fh
        self.start = start
        self.end = end
        self.on_progress = on_progress
        self.sock = sock
        self.share = share
        self.report_interval = report_interval
        self.stall_timeout = stall_timeout
        self.sent = 0
        self._reported = 0
        self._next_report = time.monotonic() + report_interval
        self._next_share = time.monotonic() + SHARE_INTERVAL
        self._pace_from = time.monotonic()
        self._pace_bytes = 0
        self._closed = False

    def __iter__(self) -> Iterator[bytes]:
        if self.share is not None:
            self.share.refresh()
        if self.sock is not None:
            yield b""  # the server sends the headers now; the body goes straight to the socket
            self._sendfile()
        else:
            yield from self._read_chunks()

    def _chunk_size(self) -> int:
        if self.share is None:
            return CHUNK
        return int(max(MIN_CHUNK, min(CHUNK, self.share.rate / 50)))

    def _advance(self, count: int) -> None:
        """Account for sent bytes: report progress, pace to the bandwidth share, yield."""
        self.sent += count
        now = time.monotonic()
        if now >= self._next_report:
            self._next_report = now + self.report_interval
            self._report(closing=False)
        if self.share is not None and now >= self._next_share:
            self._next_share = now + SHARE_INTERVAL
            self.share.refresh()
            self._pace_from, self._pace_bytes = now, 0
        if self.share is not None:
            self._pace_bytes += count
            ahead = self._pace_bytes / self.share.rate - (now - self._pace_from)
            if ahead > 0:
                gevent.sleep(ahead)
                return
        gevent.sleep(0)

    def _report(self, closing: bool) -> None:
        if self.sent == self._reported and not closing:
            return
        self._reported = self.sent
        if not self.on_progress(self.sent, closing) and not closing:
            raise SlotLost()

    def _sendfile(self) -> None:
        out_fd, in_fd = self.sock.fileno(), self.fh.fileno()
        offset = self.start
        while offset < self.end:
            try:
                count = os.sendfile(out_fd, in_fd, offset, min(self._chunk_size(), self.end - offset))
            except BlockingIOError:
                wait_write(out_fd, timeout=self.stall_timeout)
                continue
            if count == 0:
                raise OSError("the file ended early")
            offset += count
            self._advance(count)

    def _read_chunks(self) -> Iterator[bytes]:
        self.fh.seek(self.start)
        remaining = self.end - self.start
        while remaining > 0:
            block = self.fh.read(min(self._chunk_size(), remaining))
            if not block:
                raise OSError("the file ended early")
            remaining -= len(block)
            yield block
            self._advance(len(block))

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._report(closing=True)
        finally:
            self.fh.close()
            if self.share is not None:
                self.share.leave()

