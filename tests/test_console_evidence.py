"""The console's evidence page (issue 15) in headless Chromium: a recording played and
sought through in the page is recorded as one read; a download keeps the file's name; one
chunk checked against the chunk root in the browser; a legal hold set with a reason."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.app import create_app
from api.auth import create_token
from ledger.access import access_chain
from ledger.service import Ledger
from storage.fs import FilesystemStore
from storage.service import EvidenceStore
from tests.browser import (  # noqa: F401  (browser: the fixture)
    browser,
    save_screenshot,
    sign_in,
    wait_for,
)
from tests.conftest import make_event
from tests.test_storage import LiveServer

PROJECT = "E330100000161"
VIDEO = (Path(__file__).parent / "vectors" / "media" / "opening.webm").read_bytes()
VIDEO_NAME = "开标录像 第1段.webm"


@dataclass
class Site:
    url: str
    lg: Ledger
    tokens: dict[str, str]
    #: Range headers of the requests for the video's bytes, as the server saw them.
    ranges: list[str | None] = field(default_factory=list)

    def accesses(self) -> list[dict[str, Any]]:
        rows = self.lg.project_records(access_chain(PROJECT), -1, 1000)
        return [json.loads(r) for _, _, r in rows]


class CountRanges:
    """ASGI middleware noting the Range header of every read of the video's bytes."""

    def __init__(self, app: Any, site: Site) -> None:
        self.app, self.site = app, site

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"].endswith("/content"):
            hs = dict(scope["headers"])
            r = hs.get(b"range")
            self.site.ranges.append(r.decode() if r else None)
        await self.app(scope, receive, send)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    tmp = tmp_path_factory.mktemp("evidence")
    lg = Ledger.open(tmp / "data", f"sqlite:///{tmp / 'l.db'}", "evidence.test/log")
    objects = EvidenceStore(FilesystemStore(tmp / "data" / "objects"), lg.store.engine)
    tokens = {r: create_token(lg.store, r)[1] for r in ("platform", "reviewer", "archivist")}
    s = Site("", lg, tokens)
    srv = LiveServer(CountRanges(create_app(lg, rate_limit=0, objects=objects), s))
    s.url = srv.url
    try:
        h = {"Authorization": f"Bearer {tokens['platform']}"}
        with httpx.Client(base_url=srv.url, headers=h, timeout=30) as c:
            up = c.post("/v1/objects", content=VIDEO, headers={"Content-Type": "video/webm"})
            assert up.status_code == 201, up.text
            att = {
                "sha256": hashlib.sha256(VIDEO).hexdigest(),
                "size": len(VIDEO),
                "media_type": "video/webm",
                "name": VIDEO_NAME,
            }
            r = c.post("/v1/events", json=make_event(PROJECT, attachments=[att]))
            assert r.status_code == 201, r.text
        yield s
    finally:
        srv.stop()
        objects.close()
        lg.close()


SHA = hashlib.sha256(VIDEO).hexdigest()


def test_playing_and_seeking_is_one_read_and_the_download_keeps_its_name(
    site: Site,
    browser: Any,  # noqa: F811
    tmp_path: Path,
) -> None:
    from selenium.webdriver.common.by import By

    sign_in(browser, site, "reviewer")
    browser.get(site.url + f"/projects/{PROJECT}")
    before = len(site.accesses())  # the timeline's read counted
    browser.find_element(By.CSS_SELECTOR, "a.att-link").click()
    wait_for(lambda: browser.find_elements(By.ID, "player"), "the evidence page")
    assert browser.find_element(By.ID, "file-name").text == VIDEO_NAME
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", browser.find_element(By.ID, "retain-until").text
    )
    player = browser.find_element(By.ID, "player")
    play = (
        "arguments[0].muted = true; return arguments[0].play().then(() => true, (e) => String(e));"
    )
    assert browser.execute_script(play, player) is True
    wait_for(
        lambda: browser.execute_script("return arguments[0].currentTime", player) > 0.3, "playback"
    )
    for t in (8.5, 2.0, 6.0):
        browser.execute_script(f"arguments[0].currentTime = {t};", player)
        wait_for(
            lambda t=t: browser.execute_script(
                "return !arguments[0].seeking && arguments[0].currentTime >= arguments[1]",
                player,
                t,
            ),
            f"the seek to {t}s",
        )
    browser.execute_script("arguments[0].pause()", player)
    save_screenshot(browser, "console-evidence.png")
    # A small file may come whole in the player's first Range request; the next one a
    # player makes (resuming past what it buffered) goes to the same session URL.
    status = browser.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "fetch(arguments[0].currentSrc, {cache: 'no-store', headers: {Range: 'bytes=600000-'}})"
        ".then((r) => r.arrayBuffer().then(() => done(r.status)), (e) => done(String(e)));",
        player,
    )
    assert status == 206
    # However many Range requests there were, one read is recorded, naming its session.
    assert len([r for r in site.ranges if r]) >= 2, site.ranges
    new = site.accesses()[before:]
    assert len(new) == 1, new
    payload = new[0]["payload"]
    assert payload["what"] == "object" and payload["sha256"] == SHA and payload["read_session"]

    # The download keeps the name the citing record gives the file.
    browser.execute_cdp_cmd(
        "Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(tmp_path / "dl")}
    )
    browser.find_element(By.ID, "download").click()
    saved = tmp_path / "dl" / VIDEO_NAME
    wait_for(lambda: saved.is_file() and saved.stat().st_size == len(VIDEO), "the download")
    assert saved.read_bytes() == VIDEO
    assert len(site.accesses()) == before + 2  # the download is a read of its own


def test_a_chunk_checks_against_the_chunk_root_in_the_browser(
    site: Site,
    browser: Any,  # noqa: F811
) -> None:
    from selenium.webdriver.common.by import By

    sign_in(browser, site, "archivist")
    browser.get(site.url + f"/objects/{SHA}")

    def check(root: str | None = None) -> str:
        if root is not None:
            box = browser.find_element(By.ID, "chunk-root")
            box.clear()
            box.send_keys(root)
        browser.find_element(By.ID, "run-chunk-check").click()
        out = browser.find_element(By.ID, "chunk-verdict")
        wait_for(lambda: out.get_attribute("data-result") in ("ok", "failed"), "a verdict")
        return str(out.get_attribute("data-result"))

    assert check() == "ok"
    assert check("A" * 43 + "=") == "failed"
    # The archivist may read but not hold: no hold form.
    assert not browser.find_elements(By.ID, "hold-form")


def test_a_reviewer_places_and_lifts_a_legal_hold_with_a_reason(
    site: Site,
    browser: Any,  # noqa: F811
) -> None:
    from selenium.webdriver.common.by import By

    sign_in(browser, site, "reviewer")
    browser.get(site.url + f"/objects/{SHA}")
    assert browser.find_element(By.ID, "legal-hold").get_attribute("data-held") == "0"
    browser.find_element(By.ID, "hold-reason").send_keys("投诉 HZ-2026-017")
    browser.find_element(By.ID, "hold-submit").click()
    wait_for(lambda: browser.find_elements(By.ID, "hold-notice"), "the hold")
    assert browser.find_element(By.ID, "legal-hold").get_attribute("data-held") == "1"
    browser.find_element(By.ID, "hold-reason").send_keys("投诉已处理")
    browser.find_element(By.ID, "hold-submit").click()
    wait_for(
        lambda: browser.find_element(By.ID, "legal-hold").get_attribute("data-held") == "0",
        "the release",
    )
    chain = [json.loads(r) for _, _, r in site.lg.project_records(PROJECT, -1, 1000)]
    events = [a for a in chain if a["type"].startswith("legal_hold")]
    assert [(a["type"], a["payload"]["reason"]) for a in events] == [
        ("legal_hold_set", "投诉 HZ-2026-017"),
        ("legal_hold_released", "投诉已处理"),
    ]
