"""Download queue: signed tokens, a fair FIFO queue over SSE, fast resumable downloads."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from .config import Config, load_config
from .extensions import db, migrate

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def create_app(config: Config | None = None, **overrides: Any) -> Flask:
    """Application factory: one app per process, services created lazily after fork."""
    app = Flask(__name__)
    config = config or load_config(**overrides)
    app.config.from_object(config)
    app.config["SEND_FILE_MAX_AGE_DEFAULT"] = 365 * 86400  # static URLs carry their content's hash

    db.init_app(app)
    migrate.init_app(app, db, directory=str(MIGRATIONS_DIR))

    from . import history  # noqa: F401  (registers the downloads model)
    from .catalog import models  # noqa: F401
    from .files_cli import files_cli
    from .http import register_http
    from .queue_cli import queue_cli
    from .runtime import QueueRuntime

    app.cli.add_command(files_cli)
    app.cli.add_command(queue_cli)
    app.extensions["download_queue"] = QueueRuntime(app)
    register_http(app)
    if app.config["TRUSTED_PROXY_COUNT"]:
        count = app.config["TRUSTED_PROXY_COUNT"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=count, x_proto=count, x_host=count)  # type: ignore[method-assign]
    return app
