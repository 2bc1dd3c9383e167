"""``flask queue ...``: see and steer the live queue from a shell (every host follows).

Each change is written to the audit table as ``cli:<user>@<host>``.
"""
from __future__ import annotations

import getpass
import json
import socket
from collections.abc import Callable
from typing import Any

import click
from flask import current_app
from flask.cli import AppGroup

from .errors import AppError
from .queue.constants import BOUND, BOUNDS
from .queue.engine import QueueEngine
from .queue.states import QueueMode
from .runtime import runtime
from .services import operating
from .services.tokens import verification_keys, verify_token

queue_cli = AppGroup("queue", help="See and steer the download queue (all hosts).")


def actor() -> str:
    """Who a change from this shell is written to the audit table as."""
    return f"cli:{getpass.getuser()}@{socket.gethostname()}"


def _run(action: Callable[[QueueEngine], dict[str, Any]]) -> dict[str, Any]:
    try:
        return action(runtime(current_app).engine)
    except AppError as exc:
        raise click.ClickException(exc.message) from exc


def _print_state(state: dict[str, Any]) -> None:
    line = state["line"]
    eta = line["newcomer_eta_seconds"]
    click.echo(f"mode {line['mode']}: {line['waiting']} waiting, {line['active']} of {line['capacity']} "
               f"slots downloading, a newcomer waits {'an unknown time' if eta is None else f'about {eta} s'}")
    click.echo("settings: " + ", ".join(f"{k}={v}" for k, v in (state["settings"] or {}).items()))
    for d in state["downloads"]:
        click.echo(f"  {d['token_id']}  {d['state']:<11} file {d['file_id']}  {d['client'] or '-':<15} "
                   f"{d['bytes_sent']}/{d['size']} bytes  lease {d['lease_seconds_left']} s")


@queue_cli.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print the admin API's JSON.")
def status_command(as_json: bool) -> None:
    """The line, the queue's settings and every running download."""
    state = _run(operating.state)
    if as_json:
        click.echo(json.dumps(state, indent=2, default=str))
    else:
        _print_state(state)


def _number(text: str) -> int | float:
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError as exc:
            raise click.BadParameter(f"{text!r} is not a number") from exc


def _plain(value: float) -> str:
    return f"{int(value):,}" if float(value).is_integer() else f"{value:g}"


SETTINGS_HELP = "\b\nSettings (a duration in seconds):\n" + "\n".join(
    f"  {b.name:<27} {_plain(b.low)} to {_plain(b.high)}{' s' if b.seconds else ''}, default {_plain(b.default)}"
    for b in BOUNDS)


@queue_cli.command("set", epilog=SETTINGS_HELP)
@click.argument("assignments", nargs=-1, required=True)
def set_command(assignments: tuple[str, ...]) -> None:
    """Change settings, e.g. ``capacity=8 admit_timeout=90`` (durations in seconds)."""
    changes = {}
    for item in assignments:
        name, sep, value = item.partition("=")
        if not sep:
            raise click.BadParameter(f"{item!r}: write NAME=VALUE ({', '.join(BOUND)})")
        changes[name.strip()] = _number(value.strip())
    _print_state(_run(lambda engine: operating.change_settings(engine, actor(), changes)))


def _mode_command(name: str, mode: QueueMode, help_text: str) -> None:
    @queue_cli.command(name, help=help_text)
    def command() -> None:
        _print_state(_run(lambda engine: operating.set_mode(engine, actor(), mode)))


_mode_command("pause", QueueMode.PAUSED, "Stop admitting; waiters keep their places and are told.")
_mode_command("resume", QueueMode.OPEN, "Open the line again after pause or drain.")
_mode_command("drain", QueueMode.DRAINING, "Refuse newcomers; serve the line to its end.")


@queue_cli.command("remove")
@click.argument("token")
def remove_command(token: str) -> None:
    """Take out TOKEN (a token, or a token id from ``status``); its slot goes to the next waiter."""
    token_id = token
    if "." in token:
        try:
            token_id = verify_token(verification_keys(current_app.config), token, now=0).token_id
        except AppError as exc:
            raise click.ClickException(exc.message) from exc
    result = _run(lambda engine: operating.remove_token(engine, actor(), token_id))
    click.echo(f"removed (was {result['previous_state']})" if result["removed"]
               else f"nothing to remove (state {result['previous_state']}); the token is barred from now on")
