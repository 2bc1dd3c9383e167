"""``python -m app.serve``: check the configuration, then run gunicorn with ``gunicorn.conf.py``.

gunicorn reads ``WEB_CONCURRENCY`` itself when it is imported, and a bad value there (or any
bad setting in a worker) ends in a traceback; checking first turns every bad setting into one
line and exit status 1. Extra arguments go to gunicorn.
"""
from __future__ import annotations

import sys
from pathlib import Path

from .config import ConfigError, load_config

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str]) -> None:
    try:
        load_config()
    except ConfigError as exc:
        sys.exit(f"download-queue: configuration error: {exc}")
    from gunicorn.app.wsgiapp import run

    sys.argv = ["gunicorn", "-c", str(ROOT / "gunicorn.conf.py"), *argv, "wsgi:app"]
    run()


if __name__ == "__main__":
    main(sys.argv[1:])
