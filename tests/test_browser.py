"""Issue 5: the download page in real headless Chromium against gunicorn (capacity 1)."""
from __future__ import annotations

import time

import pytest
import requests

from testbed.servers import wait_until

from .helpers.browser import PAGE, chromium, first_in_line, open_page, sha
from .helpers.env import OUTPUT
from .helpers.http import FreezingProxy, RawDownload, new_token, token_id

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def browser():
    yield from chromium()


def test_two_pages_queue_then_download_by_themselves(browser, gunicorn, make_file, tmp_path):
    file_id, path = make_file("dataset.bin", size=24 * 1024 * 1024, display="Dataset 2026.bin")
    # 2 MiB/s: the first download lasts long enough for its speed to be measured (two progress
    # reports) and told to the second page before its turn
    server = gunicorn(**{**PAGE, "BANDWIDTH_LIMIT": 2 * 1024 * 1024})
    first = open_page(browser, f"{server.url}/")
    assert "Dataset 2026.bin" in first.inner_text("ul.files")
    assert "24.0 MiB" in first.inner_text("ul.files")
    first.click("text=Dataset 2026.bin")
    assert first.inner_text("h1") == "Dataset 2026.bin"
    assert sha(path) in first.inner_text("dl.facts")
    with first.expect_download(timeout=30_000) as first_download:
        first.click("#start")
    first.wait_for_selector("#state[data-state=downloading]")

    second = open_page(browser, f"{server.url}/files/{file_id}", width=375)  # a phone-width screen
    second.click("#start")
    second.wait_for_selector("#state[data-state=waiting]")
    assert second.inner_text("#position") == "#1"
    # once the first download's speed is measured (two progress reports), the wait is told
    second.wait_for_function("!document.querySelector('#eta').innerText.includes('Working out')", timeout=15_000)
    eta = second.inner_text("#eta")
    assert "wait" in eta or "moments" in eta, eta
    assert "Working out" not in eta
    assert second.inner_text("#announce").startswith("You are number 1 in line.")
    (OUTPUT / "screenshots").mkdir(parents=True, exist_ok=True)
    second.screenshot(path=str(OUTPUT / "screenshots" / "waiting.png"), full_page=True)

    with second.expect_download(timeout=60_000) as second_download:
        first_download.value.save_as(tmp_path / "first.bin")
    second_download.value.save_as(tmp_path / "second.bin")
    assert sha(tmp_path / "first.bin") == sha(path)
    assert sha(tmp_path / "second.bin") == sha(path)
    first.wait_for_selector("#state[data-state=done]", timeout=20_000)
    second.wait_for_selector("#state[data-state=done]", timeout=20_000)


def test_reload_keeps_the_place_and_leave_gives_it_back(browser, gunicorn, make_file):
    file_id, _ = make_file("iso.img", size=4096)
    server = gunicorn(**PAGE)
    holder, page = first_in_line(browser, server, file_id, server.url)
    behind = new_token(server.url, file_id)
    assert requests.post(f"{server.url}/api/v1/queue/{behind}", timeout=5).json()["position"] == 2

    page.reload()
    page.wait_for_selector("#state[data-state=waiting]")
    assert page.inner_text("#position") == "#1"
    assert requests.get(f"{server.url}/api/v1/queue/{behind}/status", timeout=5).json()["position"] == 2

    page.keyboard.press("Tab")  # keyboard only: focus moves to the Leave button and activates it
    page.focus("#leave")
    page.keyboard.press("Enter")
    page.wait_for_selector("#state[data-state=left]")
    wait_until(lambda: requests.get(f"{server.url}/api/v1/queue/{behind}/status", timeout=5).json()["position"] == 1,
               message="the client behind moved up")
    requests.delete(f"{server.url}/api/v1/queue/{holder}", timeout=5)
    assert requests.get(f"{server.url}/api/v1/queue/{behind}/status", timeout=5).json()["state"] == "ready"


def test_leaving_an_admitted_slot_admits_the_next(browser, gunicorn, make_file):
    file_id, _ = make_file("movie.mkv", size=64 * 1024 * 1024)
    server = gunicorn(**{**PAGE, "BANDWIDTH_LIMIT": 4 * 1024 * 1024})
    page = open_page(browser, f"{server.url}/files/{file_id}")
    with page.expect_download(timeout=30_000):
        page.click("#start")
    page.wait_for_selector("#state[data-state=downloading]")
    behind = new_token(server.url, file_id)
    assert requests.post(f"{server.url}/api/v1/queue/{behind}", timeout=5).json()["state"] == "waiting"
    page.click("#leave")
    page.wait_for_selector("#state[data-state=left]")
    wait_until(lambda: requests.get(f"{server.url}/api/v1/queue/{behind}/status", timeout=5).json()["state"] == "ready",
               message="next client admitted")


def test_queue_full_is_explained(browser, gunicorn, make_file):
    file_id, _ = make_file("small.bin", size=1000)
    server = gunicorn(**{**PAGE, "MAX_QUEUE_LENGTH": 1})
    for _ in range(2):
        requests.post(f"{server.url}/api/v1/queue/{new_token(server.url, file_id)}", timeout=5)
    page = open_page(browser, f"{server.url}/files/{file_id}")
    page.click("#start")
    page.wait_for_selector("#state[data-state=error]")
    assert "The line is full right now. Try again in about" in page.inner_text("#message")
    assert page.inner_text("#start") == "Try again"


def test_the_seed_snippet_works_unchanged(browser, gunicorn, make_file, tmp_path):
    file_id, path = make_file("seed.bin", size=2 * 1024 * 1024)
    server = gunicorn(**PAGE)
    holder = requests.get(f"{server.url}/request/generate/{file_id}", timeout=5).text
    assert requests.post(f"{server.url}/api/v1/queue/{holder}", timeout=5).json()["state"] == "ready"
    token = requests.get(f"{server.url}/request/generate/{file_id}", timeout=5).text
    page = open_page(browser, f"{server.url}/")
    # the seed's browser code, its TODO filled with the download call
    snippet = """([queueUrl, downloadUrl, token]) => {
        window.seen = [];
        const eventSource = new EventSource(queueUrl + token);
        eventSource.onmessage = event => {
          window.seen.push(event.data);
          if (event.data === '0') {
            eventSource.close()
            window.location.href = downloadUrl + token;
          }
        };
        eventSource.onerror = error => {
          console.log(error);
        };
    }"""
    page.evaluate(snippet, ["/request/order/", "/request/download/", token])
    page.wait_for_function("window.seen && window.seen.length >= 1")
    assert page.evaluate("window.seen") == ["1"]
    with page.expect_download(timeout=30_000) as download:
        requests.delete(f"{server.url}/api/v1/queue/{holder}", timeout=5)
    download.value.save_as(tmp_path / "seed.bin")
    assert sha(tmp_path / "seed.bin") == sha(path)


def test_admin_page_shows_the_line_and_a_download_live_and_steers_it(browser, gunicorn, make_file):
    """An operator's page: a running download and the line appear without reload; its buttons act."""
    key = "admin-key-for-the-browser"
    file_id, _ = make_file("iso.bin", size=64 << 20)
    server = gunicorn(workers=2, **{**PAGE, "ADMIN_API_KEY": key})
    context = browser.new_context(http_credentials={"username": "ops", "password": key},
                                  viewport={"width": 1100, "height": 900})
    page = context.new_page()
    page.goto(f"{server.url}/admin")
    wait_until(lambda: page.inner_text("#live").startswith("Live"), message="the live stream")
    assert page.inner_text("#waiting") == "0" and "No download is running" in page.inner_text("#downloads")

    holder = new_token(server.url, file_id)
    requests.post(f"{server.url}/api/v1/queue/{holder}", timeout=10)
    raw = RawDownload(server.port, f"/api/v1/downloads/{holder}")  # a slow reader: it keeps downloading
    raw.read(1 << 20)
    waiter = new_token(server.url, file_id)
    requests.post(f"{server.url}/api/v1/queue/{waiter}", timeout=10)
    wait_until(lambda: page.inner_text("#waiting") == "1" and "iso.bin" in page.inner_text("#downloads"),
               message="the line and the download shown without reload")
    # progress is reported about once a second: the bytes the reader took appear without reload
    wait_until(lambda: "MiB of 64.0 MiB" in page.inner_text("#downloads tr"), message="the download's progress")
    row = page.inner_text("#downloads tr")
    assert "127.0.0.1" in row and "/s" in row
    (OUTPUT / "screenshots").mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(OUTPUT / "screenshots" / "admin.png"), full_page=True)

    page.fill("#capacity-input", "2")
    page.click("#capacity-form button")
    wait_until(lambda: page.inner_text("#capacity") == "2" and page.inner_text("#waiting") == "0",
               message="capacity 2: the waiter admitted")
    page.click("[data-action=pause]")
    wait_until(lambda: page.inner_text("#mode") == "paused", message="paused shown")
    page.on("dialog", lambda dialog: dialog.accept())
    page.click(f"[data-remove='{token_id(holder)}']")
    wait_until(lambda: page.locator(f"[data-remove='{token_id(holder)}']").count() == 0,
               message="the removed download gone from the table")
    raw.close()
    page.screenshot(path=str(OUTPUT / "screenshots" / "admin-after.png"), full_page=True)
    audit = requests.get(f"{server.url}/api/v1/admin/audit", auth=("ops", key), timeout=10).json()["changes"]
    assert [c["action"] for c in audit] == ["remove", "pause", "settings"]
    assert all(c["actor"] == "ops@127.0.0.1" for c in audit)
    context.close()




SPY = """
window.__notes = [];
window.__hidden = false;
Object.defineProperty(document, "hidden", { get: () => window.__hidden });
const RealNotification = window.Notification;
window.Notification = function (title, options) { window.__notes.push(title); return new RealNotification(title, options); };
window.Notification.permission = RealNotification.permission;
window.Notification.requestPermission = () => RealNotification.requestPermission();
"""


def test_progress_title_notification_and_one_download(browser, gunicorn, make_file, tmp_path):
    file_id, path = make_file("big.bin", size=32 * 1024 * 1024, display="Big.bin")  # ~4 s at 8 MiB/s
    server = gunicorn(**PAGE)
    first = open_page(browser, f"{server.url}/files/{file_id}")
    downloads = {"first": 0, "second": 0}
    first.on("download", lambda d: downloads.__setitem__("first", downloads["first"] + 1))
    with first.expect_download(timeout=30_000) as first_download:
        first.click("#start")
    first.wait_for_selector("#progress:not([hidden])")

    context = browser.new_context(accept_downloads=True, permissions=["notifications"])
    context.add_init_script(SPY)
    second = context.new_page()
    second.on("download", lambda d: downloads.__setitem__("second", downloads["second"] + 1))
    second.goto(f"{server.url}/files/{file_id}")
    second.check("#notify")
    second.click("#start")
    second.wait_for_selector("#state[data-state=waiting]")
    assert second.title() == "#1 in line — Big.bin"
    second.evaluate("window.__hidden = true")  # the person switched to another tab

    seen = set()
    while first.get_attribute("#state", "data-state") != "done":  # the bar moves, from the server's count
        seen.add(int(first.eval_on_selector("#bar", "bar => bar.value")))
        first.wait_for_timeout(200)
    assert any(0 < value < 100 for value in seen), seen
    assert first.eval_on_selector("#bar", "bar => bar.value") == 100
    assert first.inner_text("#done-sha") == sha(path)
    assert first.title() == "Done — Big.bin" and first.inner_text("#start") == "Download again"
    first_download.value.save_as(tmp_path / "first.bin")
    assert sha(tmp_path / "first.bin") == sha(path)

    second.wait_for_selector("#state[data-state=downloading]", timeout=30_000)
    assert second.evaluate("window.__notes") == ["Your turn: Big.bin"]
    assert second.inner_text("#leave") == "Cancel download" and second.is_hidden("#start")
    second.reload()  # a reload during the download follows it; it does not start a second one
    second.wait_for_selector("#state[data-state=done]", timeout=30_000)
    assert downloads == {"first": 1, "second": 1}
    (OUTPUT / "screenshots").mkdir(parents=True, exist_ok=True)
    second.screenshot(path=str(OUTPUT / "screenshots" / "done.png"), full_page=True)
    context.close()


def test_eta_at_place_three_moves_with_the_download_ahead(browser, gunicorn, make_file):
    """The page's estimate follows the downloads ahead, and the turn comes about when it said."""
    import threading
    import time

    file_id, _ = make_file("big.bin", size=8 * 1024 * 1024, display="Big.bin")
    server = gunicorn(**{**PAGE, "BANDWIDTH_LIMIT": 0})

    def download_slowly(token: str) -> None:  # 1 MB/s: about 8 s each
        raw = RawDownload(server.port, f"/api/v1/downloads/{token}")
        while raw.read(100_000):
            time.sleep(0.1)
        raw.close()

    ahead = [new_token(server.url, file_id) for _ in range(3)]
    for token in ahead:
        requests.post(f"{server.url}/api/v1/queue/{token}", timeout=10)

    def take_turns() -> None:
        for token in ahead:
            wait_until(lambda t=token: requests.get(f"{server.url}/api/v1/queue/{t}/status", timeout=5).json()
                       ["state"] == "ready", timeout=60, interval=0.2, message="a turn ahead")
            download_slowly(token)

    threading.Thread(target=take_turns, daemon=True).start()
    page = open_page(browser, f"{server.url}/files/{file_id}")
    page.click("#start")
    page.wait_for_selector("#state[data-state=waiting]")
    assert page.inner_text("#position") == "#3"
    shown: list[tuple[float, int]] = []
    while page.get_attribute("#state", "data-state") == "waiting":
        seconds = page.get_attribute("#eta", "data-seconds")
        if seconds and (not shown or shown[-1][1] != int(seconds)):
            shown.append((time.monotonic(), int(seconds)))
        page.wait_for_timeout(250)
    admitted_at = time.monotonic()
    assert len({eta for _, eta in shown}) >= 3, (shown, admitted_at)  # it moved as the downloads ahead advanced
    # each estimate lands within the error bench/eta_bench.py measures at these places (p90 ~7-11 s)
    misses = [abs((admitted_at - at) - eta) for at, eta in shown]
    assert max(misses) <= 12, (shown, admitted_at, misses)


def turn_passes_while_silent(browser, server, file_id: int):
    """A page waiting at #1 through a proxy whose connection then goes silent (nothing passes,
    nothing closes), and its turn comes meanwhile: the server's `ready` is lost on the way."""
    proxy = FreezingProxy(server.port)
    holder, page = first_in_line(browser, server, file_id, proxy.url)
    assert proxy.freeze(b"GET /api/v1/queue/") == 1  # the page's stream
    requests.delete(f"{server.url}/api/v1/queue/{holder}", timeout=5)  # the page's turn
    return proxy, page


def test_a_silently_dead_stream_is_replaced_by_the_watchdog(browser, gunicorn, make_file):
    """Nothing arrives for twice the heartbeat interval (2 x 30 s): the page reconnects by itself
    and learns that its turn came."""
    file_id, _ = make_file("quiet.bin", size=4096)
    server = gunicorn(**{**PAGE, "ADMIT_TIMEOUT": 120, "WAIT_GRACE": 120})
    proxy, page = turn_passes_while_silent(browser, server, file_id)
    try:
        with page.expect_download(timeout=90_000):
            page.wait_for_selector("#state[data-state=downloading], #state[data-state=done]", timeout=90_000)
    finally:
        proxy.close()


def test_a_page_coming_back_reconnects_at_once(browser, gunicorn, make_file):
    """Visible again (or online again): a fresh stream at once, long before the watchdog (60 s)."""
    file_id, _ = make_file("phone.bin", size=4096)
    server = gunicorn(**{**PAGE, "ADMIT_TIMEOUT": 120, "WAIT_GRACE": 120})
    proxy, page = turn_passes_while_silent(browser, server, file_id)
    try:
        came_back = time.monotonic()
        with page.expect_download(timeout=20_000):
            page.evaluate("document.dispatchEvent(new Event('visibilitychange'))")
            page.wait_for_selector("#state[data-state=downloading], #state[data-state=done]", timeout=20_000)
        assert time.monotonic() - came_back < 25  # not the watchdog's 60 s
    finally:
        proxy.close()
