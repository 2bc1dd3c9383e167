"""Issue 19: the page waits from anywhere, in Chromium against gunicorn (capacity 1). A phone's
sleep is made to happen: the page's stream is cut on the server's side while the page hears
nothing (``FreezingProxy.cut``), as when a carrier resets a sleeping phone's connection; the
page wakes with ``visibilitychange``."""
from __future__ import annotations

import time

import pytest
import redis
import requests

from testbed.servers import wait_until

from .helpers.browser import PAGE, chromium, first_in_line, open_page
from .helpers.env import REDIS_URL
from .helpers.http import FreezingProxy, new_token, token_id
from .helpers.queue import new_engine

pytestmark = pytest.mark.browser

AWAY = {**PAGE, "WAIT_GRACE": 2, "ADMIT_TIMEOUT": 120}


@pytest.fixture(scope="module")
def browser():
    yield from chromium(back_forward_cache=True)  # as phones and desktops have it


def line(server) -> dict:
    return requests.get(f"{server.url}/api/v1/queue", timeout=5).json()


def status(server, token: str) -> dict:
    return requests.get(f"{server.url}/api/v1/queue/{token}/status", timeout=5).json()


@pytest.fixture
def queue(settings):
    """The served queue, read without counting as anyone's presence (a status poll would)."""
    client = redis.Redis.from_url(REDIS_URL)
    engine = new_engine(client, name=str(settings["QUEUE_NAME"]))

    def state(token: str) -> str:
        return engine.status([token_id(token)]).tokens[token_id(token)].state

    yield state
    client.close()


def page_token(page, file_id: int) -> str:
    return page.evaluate(f"JSON.parse(localStorage.getItem('download-queue:file:{file_id}')).token")


def wake(page) -> float:
    """The page becomes visible again; returns when it happened."""
    woke = time.monotonic()
    page.evaluate("document.dispatchEvent(new Event('visibilitychange'))")
    return woke


def asleep_at_the_front(browser, server, file_id: int):
    """A page at #1 whose stream the server saw close; a present waiter behind it (polled)."""
    proxy = FreezingProxy(server.port)
    holder, page = first_in_line(browser, server, file_id, proxy.url)
    behind = new_token(server.url, file_id)
    assert requests.post(f"{server.url}/api/v1/queue/{behind}", timeout=5).json()["position"] == 2
    assert proxy.cut(b"GET /api/v1/queue/") == 1

    def page_away() -> bool:
        status(server, behind)  # the waiter behind polls: present
        return line(server)["away"] == 1

    wait_until(page_away, timeout=30, message="the sleeping page's place is away")
    return proxy, holder, page, behind


def test_an_away_page_costs_no_slot_and_comes_back_to_its_place(browser, gunicorn, make_file):
    file_id, _ = make_file("phone.bin", size=4096)
    server = gunicorn(**AWAY)
    proxy, holder, page, behind = asleep_at_the_front(browser, server, file_id)
    try:
        requests.delete(f"{server.url}/api/v1/queue/{holder}", timeout=5)  # a slot frees while it sleeps
        assert status(server, behind)["state"] == "ready"  # the present waiter got it, not the away one
        later = new_token(server.url, file_id)  # joins after the page did
        assert requests.post(f"{server.url}/api/v1/queue/{later}", timeout=5).json()["state"] == "waiting"
        woke = wake(page)
        page.wait_for_function("document.getElementById('announce').textContent.startsWith('Reconnected')",
                               timeout=10_000)
        assert time.monotonic() - woke < 2.5, "the true place within two seconds of waking"
        assert page.inner_text("#position") == "#1"  # ahead of the later one: its own place
        assert page.inner_text("#announce") == "Reconnected. Your place is kept: number 1 in line."
        assert status(server, later)["position"] == 2
        with page.expect_download(timeout=30_000):
            requests.delete(f"{server.url}/api/v1/queue/{behind}", timeout=5)
    finally:
        proxy.close()


def test_a_place_that_lapsed_while_away_is_said_so_not_rejoined(browser, gunicorn, make_file, queue):
    file_id, _ = make_file("phone.bin", size=4096)
    server = gunicorn(**{**AWAY, "AWAY_GRACE": 3})
    proxy, _holder, page, _behind = asleep_at_the_front(browser, server, file_id)
    try:
        token = page_token(page, file_id)
        wait_until(lambda: queue(token) == "lapsed", timeout=30, message="lapsed")
        waiting_before = line(server)["waiting"]
        wake(page)
        page.wait_for_selector("#state[data-state=error]", timeout=10_000)
        assert page.inner_text("#message") == "Your place lapsed after 3 sec away."  # Intl's words
        assert page.inner_text("#start") == "Join the line again"
        assert page.evaluate("document.activeElement.id") == "start"  # focus on what to do next
        assert line(server)["waiting"] == waiting_before  # no silent new place at the back
        no_violations(page, "lapsed")
    finally:
        proxy.close()


def test_a_turn_that_passed_while_asleep_is_said_so(browser, gunicorn, make_file, queue):
    """Asleep with its stream open (the server holds the place present), the turn comes and its
    admission runs out: on waking the page says the turn was missed."""
    file_id, _ = make_file("phone.bin", size=4096)
    server = gunicorn(**{**PAGE, "ADMIT_TIMEOUT": 3})
    proxy = FreezingProxy(server.port)
    holder, page = first_in_line(browser, server, file_id, proxy.url)
    try:
        assert proxy.freeze(b"GET /api/v1/queue/") == 1
        token = page_token(page, file_id)
        requests.delete(f"{server.url}/api/v1/queue/{holder}", timeout=5)
        wait_until(lambda: queue(token) == "missed", timeout=30, message="the turn passed")
        wake(page)
        page.wait_for_selector("#state[data-state=error]", timeout=10_000)
        assert page.inner_text("#message") == "Your turn came while you were away and passed to the next person."
    finally:
        proxy.close()


def test_two_tabs_hold_one_place_and_start_one_download(browser, gunicorn, make_file):
    file_id, _ = make_file("shared.bin", size=4096)
    server = gunicorn(**PAGE)
    context = browser.new_context(accept_downloads=True)
    downloads = []
    first = context.new_page()
    first.on("download", lambda d: downloads.append(d))
    holder, first = first_in_line(browser, server, file_id, server.url, page=first)
    assert first.evaluate("document.activeElement.id") == "leave"  # focus follows the next action
    second = context.new_page()  # a second tab of the same file: it attaches, it does not join
    second.on("download", lambda d: downloads.append(d))
    second.goto(f"{server.url}/files/{file_id}")
    second.wait_for_selector("#state[data-state=waiting]")
    assert second.inner_text("#position") == "#1"
    assert line(server)["waiting"] == 1
    requests.delete(f"{server.url}/api/v1/queue/{holder}", timeout=5)
    for page in (first, second):
        page.wait_for_selector("#state[data-state=downloading], #state[data-state=done]", timeout=30_000)
    first.wait_for_timeout(1000)
    assert len(downloads) == 1
    first.close()  # the leading tab goes: the other takes over, and downloads nothing more
    second.wait_for_selector("#state[data-state=done]", timeout=30_000)
    assert len(downloads) == 1
    context.close()


def no_violations(page, where: str) -> None:
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    assert results.violations_count == 0, f"{where}: {results.generate_report()}"


@pytest.mark.parametrize("lang", ["en", "ko"])
def test_axe_finds_nothing_in_any_state(browser, gunicorn, make_file, lang):
    """axe-core on the index, the file page idle, waiting, left, downloading and done, and the
    admin page, in English and Korean (the browser's Accept-Language); the lapsed state is
    checked by the lapse test."""
    key = "admin-key-for-axe"
    file_id, _ = make_file("image.iso", size=24 << 20)  # 3 s at the host's 8 MiB/s: time to look
    server = gunicorn(**{**PAGE, "ADMIN_API_KEY": key})
    page = open_page(browser, f"{server.url}/", extra_http_headers={"Accept-Language": lang})
    assert page.evaluate("document.documentElement.lang") == lang
    no_violations(page, "index")
    page.goto(f"{server.url}/files/{file_id}")
    no_violations(page, "idle")
    holder, page = first_in_line(browser, server, file_id, server.url, page=page)
    no_violations(page, "waiting")
    page.click("#leave")
    page.wait_for_selector("#state[data-state=left]")
    assert page.evaluate("document.activeElement.id") == "start"
    no_violations(page, "left")
    requests.delete(f"{server.url}/api/v1/queue/{holder}", timeout=5)
    with page.expect_download(timeout=30_000):
        page.click("#start")
    page.wait_for_selector("#state[data-state=downloading]", timeout=30_000)
    no_violations(page, "downloading")
    page.wait_for_selector("#state[data-state=done]", timeout=30_000)
    assert page.evaluate("document.activeElement.id") == "start"  # "Download again", not the body
    no_violations(page, "done")
    admin = open_page(browser, f"{server.url}/admin", width=390, http_credentials={"username": "ops", "password": key},
                      extra_http_headers={"Accept-Language": lang})
    admin.wait_for_selector("#live")
    no_violations(admin, "admin")
    assert admin.evaluate("document.documentElement.scrollWidth") <= 390  # a phone's screen: no sideways page


RESTORED = "window.addEventListener('pageshow', e => { window.__restored = e.persisted; });"


def test_the_back_forward_cache_keeps_the_page_and_it_is_right_at_once(browser, gunicorn, make_file):
    """Away to another page and back: the page comes from the back-forward cache (nothing on it
    keeps it out, Web Locks would), shows its place at once and still downloads on its turn."""
    file_id, _ = make_file("cached.bin", size=4096)
    server = gunicorn(**PAGE)
    context = browser.new_context(accept_downloads=True)
    context.add_init_script(RESTORED)
    holder, page = first_in_line(browser, server, file_id, server.url, page=context.new_page())
    page.goto(f"{server.url}/")
    behind = new_token(server.url, file_id)
    assert requests.post(f"{server.url}/api/v1/queue/{behind}", timeout=5).json()["position"] == 2
    back = time.monotonic()
    page.go_back(wait_until="commit")
    page.wait_for_function("window.__restored !== undefined", timeout=5_000)
    assert page.evaluate("window.__restored") is True  # from the cache, not a reload
    page.wait_for_function("document.getElementById('position').textContent === '#1'", timeout=5_000)
    assert time.monotonic() - back < 0.5 + 0.5  # the place within 0.5 s (and a round trip of the test)
    with page.expect_download(timeout=30_000):
        requests.delete(f"{server.url}/api/v1/queue/{holder}", timeout=5)
    context.close()
