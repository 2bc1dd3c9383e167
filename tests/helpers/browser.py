"""The download page in Debian's Chromium (Playwright): pages, and a place at the front of a line."""
from __future__ import annotations

import hashlib
import shutil
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from .http import new_token

FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]
PAGE = dict(QUEUE_CAPACITY=1, ADMIT_TIMEOUT=60, STALL_TIMEOUT=20, RESUME_GRACE=30, WAIT_GRACE=20,
            BANDWIDTH_LIMIT=8 * 1024 * 1024)


def chromium(back_forward_cache: bool = False) -> Iterator[Any]:
    """One Chromium for a test module (its ``browser`` fixture); Playwright turns the back-forward
    cache off unless asked."""
    from playwright.sync_api import sync_playwright

    executable = shutil.which("chromium")
    if executable is None:
        pytest.fail("chromium is not installed (scripts/test.sh installs Debian's chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable, args=FLAGS,
            ignore_default_args=["--disable-back-forward-cache"] if back_forward_cache else None)
        yield browser
        browser.close()


def sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def open_page(browser, url: str, width: int = 1000, **context: Any):
    """A page in a context of its own (its own storage: another person)."""
    page = browser.new_context(accept_downloads=True, viewport={"width": width, "height": 800}, **context).new_page()
    page.goto(url)
    return page


def first_in_line(browser, server, file_id: int, base: str, page=None):
    """A holder admitted through the API, and a page (opened at ``base``) waiting at #1 behind it."""
    holder = new_token(server.url, file_id)
    assert requests.post(f"{server.url}/api/v1/queue/{holder}", timeout=5).json()["state"] == "ready"
    if page is None:
        page = open_page(browser, f"{base}/files/{file_id}")
    else:
        page.goto(f"{base}/files/{file_id}")
    page.click("#start")
    page.wait_for_selector("#state[data-state=waiting]")
    assert page.inner_text("#position") == "#1"
    return holder, page
