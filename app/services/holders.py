"""Who a place in line counts against, so one client cannot stand in line many times.

An IPv4 address counts whole; an IPv6 address by its /64 (what one household or one server is
given: a bot walking the addresses of its /64 is still one client). A token its issuer gave a
subject counts against that subject; a token its issuer gave none is exempt (the issuing site
vouches for its users), and so is a request whose address is unknown.
"""
from __future__ import annotations

import ipaddress

from ..queue.constants import HOLDER_MAX

SUBJECT_MAX = HOLDER_MAX - 2  # characters of an issuer's subject (the key is "s:" + subject)


def address_holder(address: str) -> str:
    """``203.0.113.9`` or ``2001:db8:1:2::/64``; '' when the address cannot be read."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return ""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


def holder_of(address: str, issued: bool, subject: str | None) -> str:
    """The key a token's place counts under ('' exempt)."""
    if issued:
        return f"s:{subject}" if subject else ""
    return address_holder(address)


def shown(holder: str) -> str:
    """A holder as an operator sees it: the last IPv4 octet and a subject's tail hidden."""
    if holder.startswith("s:"):
        subject = holder[2:]
        return f"subject {subject[:4]}…" if len(subject) > 4 else f"subject {subject}"
    if "/" in holder:
        return holder
    head, dot, _ = holder.rpartition(".")
    return f"{head}.x" if dot else holder
