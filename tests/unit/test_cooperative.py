"""A long stretch of work that yields with ``yield_now`` lets a socket's news in at once (under
gevent, as the workers run; ``sleep(0)`` there polls no socket for up to 5 ms)."""
from __future__ import annotations

import subprocess
import sys
import textwrap

from testbed.servers import ROOT

STRETCH = textwrap.dedent("""
    from gevent import monkey
    monkey.patch_all()
    import socket
    import gevent
    from app.cooperative import yield_now

    a, b = socket.socketpair()
    steps, heard = [0], []

    def reader():
        a.recv(1)
        heard.append(steps[0])

    def stretch():
        for _ in range(2000):  # a flush walking its waiters, a batch a step
            sum(range(200))
            steps[0] += 1
            if steps[0] == 10:
                b.send(b"x")  # an admission arrives mid-stretch
            yield_now()

    gevent.joinall([gevent.spawn(reader), gevent.spawn(stretch)])
    print(heard[0])
""")


def test_a_stretch_of_work_lets_the_news_on_a_socket_in_at_its_next_yield():
    out = subprocess.run([sys.executable, "-c", STRETCH], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    # heard within a step of its arrival (sleep(0): some 1,000 steps later, 5 ms of them)
    assert 10 <= int(out.stdout) <= 11
