"""gunicorn settings: gevent workers sized for thousands of idle SSE waiters.

Every setting can be overridden from the environment (PORT, WEB_CONCURRENCY,
WORKER_CONNECTIONS, GRACEFUL_TIMEOUT). No preload_app: the gevent worker patches after fork,
and Redis/database connections must be created inside each worker.
"""
import gc
import os
import signal

bind = f"{os.environ.get('HOST', '0.0.0.0')}:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "gevent"
worker_connections = int(os.environ.get("WORKER_CONNECTIONS", "20000"))
timeout = 60
graceful_timeout = int(os.environ.get("GRACEFUL_TIMEOUT", "30"))
keepalive = 5
preload_app = False
control_socket_disable = True
accesslog = os.environ.get("ACCESS_LOG") or None
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info")


def post_fork(server, worker):
    """Make psycopg2 cooperative (without it one slow query blocks every client of the worker)
    and let the app's own loggers speak at the configured level, in gunicorn's format."""
    import logging

    from psycogreen.gevent import patch_psycopg

    patch_psycopg()
    logging.basicConfig(level=loglevel.upper(), format="[%(asctime)s] [%(process)d] [%(levelname)s] %(name)s: %(message)s",
                        datefmt="%Y-%m-%d %H:%M:%S %z")
    logging.getLogger("alembic").setLevel(logging.WARNING)  # its plugin set-up chatter at import


def post_worker_init(worker):
    """Start the queue machinery now and end open streams promptly on shutdown.

    The garbage collector is tuned too: with thousands of open streams a worker holds
    millions of objects, and a full collection of them stalled the event loop for hundreds
    of milliseconds (bench/sse_capacity_bench.py: wake-up p99 61 ms, max 356 ms; with the
    start-up objects frozen and rarer collections: 23 ms, max 27 ms).
    """
    gc.freeze()
    gc.set_threshold(50_000, 50, 1000)
    runtime = worker.wsgi.extensions["download_queue"]
    runtime.start_background()

    def on_term(signum, frame):
        runtime.shutdown()
        worker.handle_exit(signum, frame)

    signal.signal(signal.SIGTERM, on_term)
