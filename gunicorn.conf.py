"""gunicorn settings: gevent workers sized for thousands of idle SSE waiters.

Every value comes from the app's own validated configuration (``app/config.py``: HOST, PORT,
WEB_CONCURRENCY, WORKER_CONNECTIONS, GRACEFUL_TIMEOUT, LOG_LEVEL, LOG_FORMAT), so a bad
setting stops the master with one line instead of a traceback in every worker. No
preload_app: the gevent worker patches after fork, and Redis/database connections must be
created inside each worker.
"""
import gc
import signal
import sys

from app.config import ConfigError, load_config
from app.logs import logging_config
from app.metrics import prepare_multiprocess, process_exited, remove_multiprocess_dir

try:
    app_config = load_config()
except ConfigError as exc:
    sys.exit(f"download-queue: configuration error: {exc}")

bind = f"{app_config.HOST}:{app_config.PORT}"
workers = app_config.WEB_CONCURRENCY
worker_class = "gevent"
worker_connections = app_config.WORKER_CONNECTIONS
timeout = 60
graceful_timeout = app_config.GRACEFUL_TIMEOUT
keepalive = 5
preload_app = False
PARKED_DRAIN_SECONDS = 5.0  # on SIGTERM, the longest a worker waits for its streams to say "closed"
control_socket_disable = True
accesslog = None  # gunicorn's access log prints URLs, which carry tokens: the app logs requests
loglevel = app_config.LOG_LEVEL
logconfig_dict = logging_config(app_config.LOG_LEVEL, app_config.LOG_FORMAT)


def on_starting(server):
    """Metrics of every worker of this host are summed at scrape time (prometheus multiprocess)."""
    prepare_multiprocess(app_config.INSTANCE_DIR)


def child_exit(server, worker):
    process_exited(worker.pid)


def on_exit(server):
    remove_multiprocess_dir()


def post_fork(server, worker):
    """Make psycopg2 cooperative (without it one slow query blocks every client of the worker)."""
    from psycogreen.gevent import patch_psycopg

    patch_psycopg()


def post_worker_init(worker):
    """Start the queue machinery now and end open streams promptly on shutdown.

    Imported here, not at the top: the gevent worker has patched the standard library by now.

    The garbage collector is tuned too: with thousands of open streams a worker holds
    millions of objects, and a full collection of them stalled the event loop for hundreds
    of milliseconds (bench/sse_capacity_bench.py: wake-up p99 61 ms, max 356 ms; with the
    start-up objects frozen and rarer collections: 23 ms, max 27 ms).
    """
    import gevent

    from app.http import parking

    gc.freeze()
    gc.set_threshold(50_000, 50, 1000)
    runtime = worker.wsgi.extensions["download_queue"]
    runtime.start()

    def on_term(signum: int, frame: object) -> None:
        runtime.stop()  # every waiting stream is told to reconnect elsewhere

        def leave() -> None:
            # a parked stream is not one of gunicorn's requests: gunicorn would not wait for it
            parking.drain(min(PARKED_DRAIN_SECONDS, graceful_timeout))
            worker.handle_exit(signum, frame)

        gevent.spawn(leave)  # out of the signal handler: draining waits

    signal.signal(signal.SIGTERM, on_term)
