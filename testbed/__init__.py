"""The test bed: what the tests and the benchmarks both run, outside the app: real servers on free loopback
ports (``servers``: redis-server alone, as a cluster or behind Sentinel, gunicorn, nginx), a
crowd of SSE waiters in a gevent process (``crowd``), an SSE reader (``sse``) and a process's
queue loops (``loops``). Neither ``tests/`` nor ``bench/`` imports the other."""
