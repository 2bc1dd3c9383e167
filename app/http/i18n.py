"""The pages' language: Korean or English, from ``?lang=`` (remembered in a cookie), the cookie,
then ``Accept-Language``. Flask-Babel translates the templates; the page's script gets the same
catalog's strings it needs (``page_strings``). The JSON API stays English: its codes are the
contract.

The catalogs are ``app/translations/<lang>/LC_MESSAGES/messages.po``; they are compiled into the
instance folder when the app starts (Flask-Babel reads ``.mo`` files), so no binary is committed.
"""
from __future__ import annotations

from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from flask import Flask, Response, request
from flask_babel import Babel, get_locale, gettext

LANGUAGES = ("en", "ko")
DEFAULT = "en"
COOKIE = "lang"
COOKIE_AGE = 365 * 86400
SOURCE = Path(__file__).resolve().parent.parent / "translations"

# what the page's script says, translated once per request (download-queue.js and file-page.js
# look each English text up; {placeholders} are filled in by the script)
SCRIPT_TEXTS = (
    "Working out how long the wait is…", "A download slot is free: your turn is now.", "Your turn is moments away.",
    "Estimated wait: about {time}.", "pre-queued", "{count} waiting for the release",
    "At the release everyone who arrived before it is placed in a random order.",
    "You are in the pre-queue. Keep this page open; your place is drawn at the release.",
    "Pre-queued", "You are in the pre-queue. Your place in line is drawn at random at the release.",
    "The line is paused by its operators; you keep your place.",
    "You are in line. Keep this page open; the download starts by itself.", "#{position} in line",
    "Reconnected. Your place is kept: number {position} in line.", "You are number {position} in line.",
    "Your turn: {name}", "The download is starting.", "Cancel download", "Your turn",
    "It's your turn. Your download is starting.",
    "It's your turn: your browser is downloading the file (started in another tab).",
    "It's your turn: your browser is downloading the file.", "Starting…", "{done} of {size} ({percent} %)",
    "{rate}/s", "about {time} left", "{percent} % downloaded",
    "Done: your browser received the whole file ({size}).", "Your download is complete.", "Done",
    "Download again", "You left the line in another tab.", "Download",
    "The line is full right now. Try again in about {seconds} seconds.", "Try again",
    "The line is closing and takes no newcomers right now. Try again later.",
    "Too many requests from your address. Try again in about {seconds} seconds.",
    "Your place expired. You can get a new place with one click.", "Get a new place",
    "This download has already completed.", "The operators removed this download from the line.",
    "Join the line again", "Your place or your download slot lapsed.", "Your saved place could not be read.",
    "Your place lapsed while you were away.", "Your place lapsed after {time} away.",
    "Your turn came while you were away and passed to the next person.", "Something went wrong.",
    "You are not in line.", "Joining the line…", "Connection lost; reconnecting…", "Connection lost; reconnecting.",
    "Leave the line", "You cancelled the download; your slot went to the next person.",
    "You left the line.", "in {time}", "(released)", "No one is waiting: your download starts at once.",
    "{count} waiting now.", "A newcomer waits about {time}.",
)


def select_language() -> str:
    for asked in (request.args.get(COOKIE), request.cookies.get(COOKIE)):
        if asked in LANGUAGES:
            return asked
    return request.accept_languages.best_match(LANGUAGES) or DEFAULT


def language() -> str:
    return str(get_locale() or DEFAULT)


def page_strings() -> dict[str, str]:
    """The script's texts in the page's language (only those the catalog translates)."""
    if language() == DEFAULT:
        return {}
    return {text: gettext(text) for text in SCRIPT_TEXTS if gettext(text) != text}


def compile_catalogs(target: Path) -> None:
    """``.po`` → ``.mo`` under ``target`` (done at start-up; a catalog unchanged is kept)."""
    for po in SOURCE.glob("*/LC_MESSAGES/messages.po"):
        mo = target / po.relative_to(SOURCE).with_suffix(".mo")
        if mo.exists() and mo.stat().st_mtime >= po.stat().st_mtime:
            continue
        mo.parent.mkdir(parents=True, exist_ok=True)
        with po.open("rb") as source:
            catalog = read_po(source, locale=po.parent.parent.name)
        partial = mo.with_suffix(f".{id(catalog)}.part")
        with partial.open("wb") as out:
            write_mo(out, catalog)
        partial.replace(mo)  # whole or not at all: several workers may compile at once


def install(app: Flask) -> None:
    target = Path(app.instance_path) / "translations"
    compile_catalogs(target)
    app.config["BABEL_TRANSLATION_DIRECTORIES"] = str(target)
    Babel(app, locale_selector=select_language, default_locale=DEFAULT)
    app.jinja_env.globals.update(language=language, page_strings=page_strings)

    @app.after_request
    def remember_language(response: Response) -> Response:
        """``?lang=`` is remembered; a page depends on the language asked for."""
        asked = request.args.get(COOKIE)
        if asked in LANGUAGES and request.cookies.get(COOKIE) != asked:
            response.set_cookie(COOKIE, asked, max_age=COOKIE_AGE, samesite="Lax")
        if response.mimetype == "text/html":
            response.vary.update(("Accept-Language", "Cookie"))
        return response
