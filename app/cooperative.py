"""Giving the rest of the process its turn in a long stretch of work, sockets included.

``gevent.sleep(0)`` (and ``time.sleep(0)`` once patched) runs the greenlets that are ready, but
gevent's loop runs such callbacks for up to its switch interval (5 ms) before it polls a
socket: a stretch that yields that way after every small step still keeps the news on a
socket (a waiter's admission, published by Redis) waiting up to 5 ms. A timer that is already
due makes the loop poll without waiting (3 us a call here; a timer of 0.1 ms would wait a whole
millisecond in ``epoll_wait``). ``gevent.idle()`` polls too, but only once the loop is quiet,
which a busy worker may never be.
"""
from __future__ import annotations

import time

DUE = 1e-9  # seconds: a timer due at once


def yield_now() -> None:
    """Let the greenlets that are ready, and the sockets that have news, go first."""
    time.sleep(DUE)
