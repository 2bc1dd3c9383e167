"""Sending a byte range of a stored file as a WSGI body, zero-copy where the server allows it.

Under gunicorn the body goes straight onto the client socket from its ``Source`` (``sendfile``
from a local file, ``splice`` from the store's connection; gevent's own ``socket.sendfile``
never calls either), yielding to the event loop after every chunk so the worker's other
clients keep flowing, and waiting cooperatively when the socket buffer is full. Elsewhere
(tests, other servers) it falls back to reading chunks. Either way a range never reads the
bytes before it.

Progress counts what the client acknowledged, not what was handed to the kernel: it is
reported about once a second (the caller renews the slot's lease with it), and after the last
byte the transfer waits, cooperatively and at most ``stall_timeout`` without news, until the
client acknowledged everything. The final report is made in ``close``, which every WSGI
server calls.
"""
from __future__ import annotations

import contextlib
import logging
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import gevent
from gevent.socket import wait_write

from ..cooperative import yield_now
from ..storage.sources import Source, SourceFailed
from .acks import AckCounter
from .bandwidth import ConnectionShare

log = logging.getLogger(__name__)

CHUNK = 256 << 10
MIN_CHUNK = 16 << 10
SHARE_INTERVAL = 0.25  # how often a rate-limited transfer starts pacing afresh (its share may change)
# the kernel tells no one when an acknowledgement arrives (EPOLLOUT only fires for buffer room
# above a watermark), so the end of a transfer polls, backing off from 2 ms to 50 ms
ACK_POLL_FIRST, ACK_POLL_MAX = 0.002, 0.05
# seconds from the start to a transfer's first two progress reports (then one every report
# interval): the first is its first measured throughput; by the second the host's bandwidth
# board has measured it too (it does every 0.25 s), so it no longer counts as held back by the
# pace. Against an egress budget a download counts as MIN_RATE until then, so the sooner the
# second report, the sooner the room it leaves admits the next in line.
FIRST_REPORTS = (0.15, 0.5)

ProgressFn = Callable[[int, bool, bool], bool]


class SlotLost(Exception):
    """The token's slot was reclaimed while sending: stop."""


class Transfer:
    """A WSGI iterable sending ``[start, end)`` from ``source`` (which starts at ``start``).

    ``on_progress(acked, closing, handed)`` hears the bytes the client acknowledged so far (and
    once, ``handed``, that the kernel has every byte) and returns False when the slot is gone."""

    def __init__(
        self,
        source: Source,
        start: int,
        end: int,
        on_progress: ProgressFn,
        sock: Any = None,
        share: ConnectionShare | None = None,
        report_interval: float = 1.0,
        stall_timeout: float = 30.0,
    ) -> None:
        self.source = source
        self.start = start
        self.end = end
        self.on_progress = on_progress
        self.sock = sock
        self.share = share
        self.report_interval = report_interval
        self.stall_timeout = stall_timeout
        self.sent = 0
        self.acks: AckCounter | None = None
        self._reported = 0
        began = time.monotonic()
        self._early = [began + min(report_interval, at) for at in FIRST_REPORTS[1:]]
        self._next_report = began + min(report_interval, FIRST_REPORTS[0])
        self._next_share = time.monotonic() + SHARE_INTERVAL
        self._pace_from = time.monotonic()
        self._pace_bytes = 0
        self._closed = False
        if share is not None:
            share.acked = self.acked  # its demand is what its client acknowledged

    @property
    def length(self) -> int:
        return self.end - self.start

    def acked(self) -> int:
        """Bytes the client acknowledged (what was sent, where the kernel cannot tell)."""
        if self.acks is None:
            return self.sent
        return min(self.sent, self.acks.acked())

    def __iter__(self) -> Iterator[bytes]:
        if self.sock is None:
            yield from self._read_chunks()
            return
        yield b""  # the server sends the headers now; the body goes straight to the socket
        self.acks = AckCounter.of(self.sock)
        try:
            self._send()
            self._report(closing=False, handed=True)
            self._await_acks()
        except SlotLost:
            log.info("download slot reclaimed while sending; connection ended")
            self._abort()
        except TimeoutError:
            log.info("client stopped reading; connection ended")
            self._abort()
        except SourceFailed as exc:
            log.warning("the store stopped short (%s); connection ended, the client may resume", exc)
            self._abort()

    def _abort(self) -> None:
        """End the connection: the client must not wait for bytes that will not come."""
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)

    def _chunk_size(self) -> int:
        if self.share is None:
            return CHUNK
        return int(max(MIN_CHUNK, min(CHUNK, self.share.rate / 50)))

    def _advance(self, count: int) -> None:
        """Account for sent bytes: report progress, pace to the bandwidth share, yield."""
        self.sent += count
        now = time.monotonic()
        self._maybe_report(now)
        if self.share is not None and now >= self._next_share:
            self._next_share = now + SHARE_INTERVAL
            self._pace_from, self._pace_bytes = now, 0
        if self.share is not None:
            self._pace_bytes += count
            ahead = self._pace_bytes / self.share.rate - (now - self._pace_from)
            if ahead > 0:
                gevent.sleep(ahead)
                return
        yield_now()

    def _maybe_report(self, now: float) -> None:
        if now >= self._next_report:
            while self._early and self._early[0] <= now:
                self._early.pop(0)
            self._next_report = self._early.pop(0) if self._early else now + self.report_interval
            self._report(closing=False)

    def _report(self, closing: bool, handed: bool = False) -> None:
        acked = self.acked()
        if acked == self._reported and not (closing or handed):
            return
        self._reported = acked
        if not self.on_progress(acked, closing, handed) and not closing:
            raise SlotLost()

    def _send(self) -> None:
        out_fd = self.sock.fileno()
        offset = self.start
        while offset < self.end:
            try:
                count = self.source.send(out_fd, min(self._chunk_size(), self.end - offset))
            except BlockingIOError:
                self._wait_writable(out_fd)
                continue
            offset += count
            self._advance(count)

    def _wait_writable(self, fd: int) -> None:
        """Wait for room in the socket buffer, reporting meanwhile (what the kernel holds for a slow
        client is still being acknowledged, and a reclaimed slot must end the connection).

        A client that acknowledges nothing loses its slot by its lease (``STALL_TIMEOUT`` after
        the last report, outcome ``stalled``); this wait gives up only at twice that, so the
        queue, not a race with this greenlet, decides."""
        blocked_at = time.monotonic()
        while True:
            try:
                # until the next report is due: the kernel may not say "writable" for a second
                # (a slow client frees a third of a large buffer first)
                due = max(0.01, min(self.report_interval, self._next_report - time.monotonic()))
                wait_write(fd, timeout=due, timeout_exc=TimeoutError())
                return
            except TimeoutError:
                now = time.monotonic()
                if now - blocked_at >= 2 * self.stall_timeout:
                    raise
                self._maybe_report(now)

    def _await_acks(self) -> None:
        """Wait until the client acknowledged every byte, it went away, or it stalled."""
        if self.acks is None:
            return
        delay, last, changed_at = ACK_POLL_FIRST, -1, time.monotonic()
        while (acked := self.acked()) < self.sent and self.acks.open():
            now = time.monotonic()
            if acked != last:
                last, changed_at = acked, now
            elif now - changed_at > self.stall_timeout:
                raise TimeoutError()
            self._maybe_report(now)
            gevent.sleep(delay)
            delay = min(delay * 2, ACK_POLL_MAX)

    def _read_chunks(self) -> Iterator[bytes]:
        remaining = self.length
        try:
            while remaining > 0:
                block = self.source.read(min(self._chunk_size(), remaining))
                remaining -= len(block)
                yield block
                self._advance(len(block))
        except SlotLost:
            log.info("download slot reclaimed while sending; response ended")
        except SourceFailed as exc:
            log.warning("the store stopped short (%s); response ended", exc)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._report(closing=True)
        finally:
            self.source.close()
            if self.share is not None:
                self.share.leave()
