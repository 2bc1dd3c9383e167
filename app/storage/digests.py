"""The SHA-256 of a file, as the catalog keeps it and as HTTP and ``sha256sum`` show it."""
from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable

from ..cooperative import yield_now
from .sources import Source

BLOCK = 1 << 20


def sha256_of(source: Source, length: int, progress: Callable[[int], None] = lambda _n: None) -> str:
    """Read ``length`` bytes of ``source`` once, yielding to other greenlets between blocks."""
    digest = hashlib.sha256()
    remaining = length
    try:
        while remaining > 0:
            block = source.read(min(BLOCK, remaining))
            digest.update(block)
            remaining -= len(block)
            progress(len(block))
            yield_now()
    finally:
        source.close()
    return digest.hexdigest()


def repr_digest(sha256_hex: str) -> str:
    """RFC 9530 ``Repr-Digest`` value of the whole file."""
    return "sha-256=:" + base64.b64encode(bytes.fromhex(sha256_hex)).decode() + ":"


def checksum_line(sha256_hex: str, name: str) -> str:
    """A line ``sha256sum -c`` reads: the name's newlines and backslashes escaped as it does."""
    if "\\" in name or "\n" in name or "\r" in name:
        escaped = name.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")
        return f"\\{sha256_hex}  {escaped}\n"
    return f"{sha256_hex}  {name}\n"
