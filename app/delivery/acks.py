"""How many bytes of a response the client's TCP stack has acknowledged (Linux).

Bytes handed to the kernel are not bytes received: a socket's buffers hold megabytes, so a
file that fits in them is "sent" at once whatever the reader does. ``TCP_INFO`` counts the
bytes the peer acknowledged (``tcpi_bytes_acked``, Linux 4.1+); unlike the send queue's size
(``SIOCOUTQ``) it stays true after a reset, when the kernel drops what was still queued.
"""
from __future__ import annotations

import contextlib
import fcntl
import socket
import struct
import termios
from typing import Any

TCP_INFO_SIZE = 256
BYTES_ACKED_OFFSET = 120  # struct tcp_info: __u64 tcpi_bytes_acked
# TCP states in which the peer can still acknowledge what we sent
OPEN_STATES = frozenset({1, 8})  # ESTABLISHED, CLOSE_WAIT (the peer closed its half)


class AckCounter:
    """Acknowledged bytes on one connection since ``base`` (what was written before the body)."""

    def __init__(self, sock: Any) -> None:
        self.sock = sock
        self.base = self._bytes_acked() + self._unacked()
        self.last = 0

    @classmethod
    def of(cls, sock: Any) -> AckCounter | None:
        """A counter for a TCP socket whose kernel reports acknowledgements, else None."""
        try:
            counter = cls(sock)
        except (OSError, struct.error, ValueError):
            return None
        return counter

    def _info(self) -> bytes:
        raw = self.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, TCP_INFO_SIZE)
        if len(raw) < BYTES_ACKED_OFFSET + 8:
            raise ValueError("this kernel's TCP_INFO has no bytes_acked")
        return raw

    def _bytes_acked(self) -> int:
        return struct.unpack_from("Q", self._info(), BYTES_ACKED_OFFSET)[0]

    def _unacked(self) -> int:
        return struct.unpack("i", fcntl.ioctl(self.sock.fileno(), termios.TIOCOUTQ, b"\0" * 4))[0]

    def acked(self) -> int:
        """Body bytes the client acknowledged; the last known count once the socket is gone."""
        with contextlib.suppress(OSError, ValueError):
            self.last = max(self.last, self._bytes_acked() - self.base)
        return self.last

    def open(self) -> bool:
        """Can the peer still acknowledge anything?"""
        try:
            return self._info()[0] in OPEN_STATES
        except (OSError, ValueError):
            return False
