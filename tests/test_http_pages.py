"""Issue 19: the pages in Korean and English (Accept-Language, a ?lang= override remembered in a
cookie, <html lang>, the script's texts; the JSON API stays English), and the public files as
JSON for scripts and terminals."""
from __future__ import annotations

import json
import re


def page_strings(html: str) -> dict[str, str]:
    return json.loads(re.search(r'<script id="page-strings" type="application/json">(.*?)</script>', html, re.S)[1])


def test_accept_language_ko_gives_the_korean_page(client, make_file):
    file_id, _ = make_file("자료.bin", size=2048)
    page = client.get(f"/files/{file_id}", headers={"Accept-Language": "ko-KR,ko;q=0.9,en;q=0.5"})
    html = page.get_data(as_text=True)
    assert '<html lang="ko">' in html and "준비되면 시작하세요." in html and ">다운로드</button>" in html
    assert "Accept-Language" in page.headers["Vary"] and "Cookie" in page.headers["Vary"]
    strings = page_strings(html)
    assert strings["Leave the line"] == "줄에서 나가기" and strings["#{position} in line"] == "{position}번째"
    english = client.get(f"/files/{file_id}", headers={"Accept-Language": "en-US,en;q=0.9"}).get_data(as_text=True)
    assert '<html lang="en">' in english and "Ready when you are." in english and page_strings(english) == {}


def test_lang_overrides_and_is_remembered(client, make_file):
    make_file()
    chosen = client.get("/?lang=ko", headers={"Accept-Language": "en"})
    assert '<html lang="ko">' in chosen.get_data(as_text=True)
    assert re.search(r"lang=ko; .*Max-Age=31536000", chosen.headers["Set-Cookie"])
    later = client.get("/", headers={"Accept-Language": "en"})  # the cookie, not the header, decides now
    assert "<h1>파일</h1>" in later.get_data(as_text=True)
    back = client.get("/?lang=en", headers={"Accept-Language": "ko"})
    assert "<h1>Files</h1>" in back.get_data(as_text=True) and "lang=en" in back.headers["Set-Cookie"]
    odd = client.get("/?lang=xx", headers={"Accept-Language": "ko"})  # unknown: the cookie's still rules
    assert '<html lang="en">' in odd.get_data(as_text=True) and "Set-Cookie" not in odd.headers


def test_the_json_api_stays_english(client):
    response = client.get("/api/v1/queue/not-a-token/status", headers={"Accept-Language": "ko"})
    assert response.status_code == 403
    assert response.get_json()["error"]["message"].isascii()


def test_the_public_files_as_json(client, make_file):
    public_id, _ = make_file("tool.tar.gz", size=3000)
    make_file("secret.bin", public=False)
    files = client.get("/api/v1/files").get_json()["files"]
    assert [f["name"] for f in files] == ["tool.tar.gz"]
    listed = files[0]
    assert (listed["id"], listed["size"], listed["release_at"]) == (public_id, 3000, None)
    assert listed["tokens_url"] == f"/api/v1/files/{public_id}/tokens"
    assert client.post(listed["tokens_url"]).status_code == 201


def test_a_missing_file_page_is_a_page(client, make_file):
    _, _ = make_file("hidden.bin", public=False)
    for path in ("/files/999", "/files/1"):
        response = client.get(path, headers={"Accept-Language": "ko"})
        assert response.status_code == 404 and response.mimetype == "text/html"
        assert "찾을 수 없음" in response.get_data(as_text=True)
    assert client.post("/api/v1/files/999/tokens").get_json()["error"]["code"] == "unknown_file"  # the API: JSON
