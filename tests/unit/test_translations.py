"""Issue 19: every text of the pages has its Korean, and the script asks only for texts the
server sends it."""
from __future__ import annotations

import re
from pathlib import Path

from babel.messages.pofile import read_po

from app.http.i18n import SCRIPT_TEXTS, SOURCE

APP = Path(__file__).resolve().parents[2] / "app"


def korean() -> dict[str, str]:
    with (SOURCE / "ko" / "LC_MESSAGES" / "messages.po").open("rb") as source:
        return {m.id: m.string for m in read_po(source, locale="ko") if m.id}


def test_every_text_of_the_pages_and_the_script_is_translated():
    catalog = korean()
    templates = "".join((APP / "templates" / f"{name}.html").read_text() for name in ("base", "index", "file", "error"))
    wanted = {text for _, text in re.findall(r"""_\((['"])(.*?)\1""", templates, re.S)} | set(SCRIPT_TEXTS)
    assert sorted(t for t in wanted if not catalog.get(t)) == []
    for text, translated in catalog.items():  # the same placeholders on both sides
        assert sorted(re.findall(r"\{\w+\}|%\(\w+\)s", text)) == sorted(re.findall(r"\{\w+\}|%\(\w+\)s", translated))


def test_the_script_asks_only_for_texts_the_server_translates():
    script = (APP / "static" / "js" / "file-page.js").read_text()
    asked = set(re.findall(r"""\bt\("((?:[^"\\]|\\.)*)\"""", script))
    assert asked and sorted(asked - set(SCRIPT_TEXTS)) == []
