"""The web console (issue 15) in real headless Chromium (Debian's), and at the HTTP level.

One ``jianzheng`` app serves the API and the console from one process (uvicorn on
loopback, as ``serve`` runs it). The projects: ``OPENED`` (a whole lawful tender, bids
opened), ``SEALED`` (the same tender stopped before its opening, opened during a test) and
``OTHER`` (outside the scoped reviewer's scope). Screenshots of every page go to
docs/screenshots/ under stable names (shown in the README).
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.app import create_app
from api.auth import create_token, make_scope, revoke_token
from api.console.views import beijing, yuan
from ledger.service import Ledger
from storage.fs import FilesystemStore
from storage.service import EvidenceStore
from tests.browser import (  # noqa: F401  (browser: the fixture)
    browser,
    save_screenshot,
    sign_in,
    wait_for,
)
from tests.tender import BIDDERS
from tests.test_sealed import opening_at, tender
from tests.test_storage import LiveServer

OPENED = "E330100000151"
SEALED = "E330100000152"
OTHER = "E330100000153"


@dataclass
class Console:
    url: str
    lg: Ledger
    tokens: dict[str, str]
    rest_of_sealed: list[dict[str, Any]]
    monitor: Path

    def post(self, evs: list[dict[str, Any]], files: dict[str, bytes] | None = None) -> None:
        h = {"Authorization": f"Bearer {self.tokens['platform']}"}
        with httpx.Client(base_url=self.url, headers=h, timeout=30) as c:
            for data in (files or {}).values():
                r = c.post("/v1/objects", content=data)
                assert r.status_code in (200, 201), r.text
            r = c.post("/v1/events:batch", json={"events": evs})
            assert r.status_code == 201, r.text

    def index_of(self, project: str, type_: str) -> int:
        for _, _, raw in self.lg.project_records(project, -1, 1000):
            rec = json.loads(raw)
            if rec["type"] == type_:
                return int(rec["index"])
        raise AssertionError(f"no {type_} in {project}")


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    tmp = tmp_path_factory.mktemp("console")
    lg = Ledger.open(tmp / "data", f"sqlite:///{tmp / 'l.db'}", "console.test/log")
    objects = EvidenceStore(FilesystemStore(tmp / "data" / "objects"), lg.store.engine)
    tokens = {
        "platform": create_token(lg.store, "platform")[1],
        "reviewer": create_token(lg.store, "reviewer", "全部项目")[1],
        "scoped": create_token(
            lg.store, "reviewer", "两个项目", scope=make_scope([OPENED, SEALED])
        )[1],
        "admin": create_token(lg.store, "admin")[1],
    }
    monitor = tmp / "monitor"
    monitor.mkdir()
    app = create_app(lg, rate_limit=0, auth_failure_rate=0, objects=objects, monitor_state=monitor)
    srv = LiveServer(app)
    try:
        evs, files = tender(OPENED)
        sealed_evs, sealed_files = tender(SEALED)
        cut = opening_at(sealed_evs)
        other, _ = tender(OTHER)
        c = Console(srv.url, lg, tokens, sealed_evs[cut:], monitor)
        c.post(evs, files)
        c.post(sealed_evs[:cut], sealed_files)
        c.post(other[:3])
        yield c
    finally:
        srv.stop()
        objects.close()
        lg.close()


# --- helpers ---------------------------------------------------------------------------------


def shot(driver: Any, name: str, show: str | None = None) -> None:
    """Screenshot the page (into docs/screenshots/ when JIANZHENG_SCREENSHOTS=1), with
    ``show`` (a CSS selector) in view."""
    assert save_screenshot(driver, name, show).is_file()


def text_of(driver: Any) -> str:
    from selenium.webdriver.common.by import By

    return str(driver.find_element(By.TAG_NAME, "body").text)


@contextlib.contextmanager
def http_session(console: Console, who: str) -> Iterator[httpx.Client]:
    """An HTTP client signed in through the console's form, as a browser would be."""
    with httpx.Client(base_url=console.url, timeout=30, follow_redirects=False) as c:
        r = c.get("/sign-in")
        csrf = re.search(r'name="csrf" value="([^"]+)"', r.text)
        assert csrf is not None
        r = c.post("/sign-in", data={"csrf": csrf[1], "token": console.tokens[who]})
        assert r.status_code == 303, r.text
        yield c


# --- pure views ----------------------------------------------------------------------------------


def test_amounts_in_yuan_and_times_in_beijing() -> None:
    assert yuan(4650100000) == "46,501,000.00 元"
    assert yuan(5) == "0.05 元"
    assert beijing("2026-03-25T02:00:00Z") == "2026-03-25 10:00:00"
    assert beijing("2026-03-25T10:00:00+08:00") == "2026-03-25 10:00:00"


# --- in the browser ------------------------------------------------------------------------------


def test_sign_in_and_sign_out(console: Console, browser: Any) -> None:  # noqa: F811
    from selenium.webdriver.common.by import By

    browser.get(console.url + "/")
    wait_for(lambda: "/sign-in" in browser.current_url, "the sign-in page")
    assert "访问令牌" in text_of(browser)
    shot(browser, "console-sign-in.png")
    # A wrong token: refused, and still no session.
    browser.find_element(By.ID, "token").send_keys("jz_" + "A" * 43)
    browser.find_element(By.ID, "sign-in").click()
    # The click only starts the form's POST: wait for the answer page, not the old one.
    error = wait_for(lambda: browser.find_elements(By.ID, "error"), "the refusal")[0]
    assert "令牌无效" in error.text
    assert browser.get_cookie("jz_session") is None

    sign_in(browser, console, "reviewer")
    cookie = browser.get_cookie("jz_session")
    assert cookie is not None and cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    rows = browser.find_elements(By.CSS_SELECTOR, "#projects tbody tr")
    assert [r.find_element(By.TAG_NAME, "a").text for r in rows] == [OPENED, SEALED, OTHER]
    shot(browser, "console-projects.png")

    browser.find_element(By.ID, "sign-out").click()
    wait_for(lambda: "/sign-in" in browser.current_url, "the sign-in page")
    notice = wait_for(lambda: browser.find_elements(By.ID, "notice"), "the notice")[0]
    assert notice.text == "您已退出。"
    browser.get(console.url + "/projects")
    wait_for(lambda: "/sign-in" in browser.current_url, "a redirect to sign in")
    # The session is gone on the server too: the old cookie opens nothing.
    with httpx.Client(base_url=console.url, cookies={"jz_session": cookie["value"]}) as c:
        r = c.get("/projects")
        assert r.status_code == 303 and r.headers["location"].startswith("/sign-in")


def test_projects_search_and_english(console: Console, browser: Any) -> None:  # noqa: F811
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    sign_in(browser, console, "reviewer")

    def found() -> list[str]:
        rows = browser.find_elements(By.CSS_SELECTOR, "#projects tbody tr")
        return [r.find_element(By.TAG_NAME, "a").text for r in rows]

    browser.find_element(By.ID, "code").send_keys(SEALED)
    Select(browser.find_element(By.ID, "trade_type")).select_by_value("engineering")
    browser.find_element(By.ID, "search").click()
    wait_for(lambda: "trade_type=engineering" in browser.current_url, "the search")
    assert found() == [SEALED]
    browser.get(console.url + "/projects?phase=notice")  # OTHER's newest event is a notice
    assert OTHER in found() and OPENED not in found()
    browser.get(console.url + "/projects?from=2026-03-02&to=2026-03-02")
    assert found() == [OPENED, SEALED, OTHER]
    browser.get(console.url + "/projects?from=2026-03-03")
    assert found() == [] and browser.find_element(By.ID, "no-projects")
    browser.get(console.url + "/projects?from=yesterday")
    assert browser.find_element(By.ID, "error").get_attribute("data-code") == "invalid_parameter"
    browser.get(console.url + "/projects")
    browser.find_element(By.ID, "lang-switch").click()
    wait_for(lambda: "Current phase" in text_of(browser), "English")
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "en"
    browser.get(console.url + "/status")  # the choice is remembered
    assert "Log status" in text_of(browser)
    browser.get(console.url + "/status?lang=zh")
    assert "日志状态" in text_of(browser)


def test_scope_another_project_is_404(console: Console, browser: Any) -> None:  # noqa: F811
    from selenium.webdriver.common.by import By

    sign_in(browser, console, "scoped")
    rows = browser.find_elements(By.CSS_SELECTOR, "#projects tbody tr")
    assert [r.find_element(By.TAG_NAME, "a").text for r in rows] == [OPENED, SEALED]
    other_event = console.index_of(OTHER, "project_registered")
    for path in (f"/projects/{OTHER}", f"/projects/{OTHER}/access", f"/events/{other_event}"):
        browser.get(console.url + path)
        err = browser.find_element(By.ID, "error")
        assert err.get_attribute("data-code") == "not_found", path
        assert OTHER not in text_of(browser).replace(path, "")
    # Exactly as a project that does not exist; and the status is the API's 404.
    with http_session(console, "scoped") as c:
        for path in (f"/projects/{OTHER}", "/projects/E330100009999", f"/events/{other_event}"):
            assert c.get(path).status_code == 404, path
    shot(browser, "console-not-found.png")


def test_sealed_until_the_opening(console: Console, browser: Any) -> None:  # noqa: F811
    from selenium.webdriver.common.by import By

    sign_in(browser, console, "reviewer")
    browser.get(console.url + f"/projects/{SEALED}")
    banner = browser.find_element(By.ID, "sealed-banner")
    assert "密封至开标" in banner.text
    assert "密封至开标" in browser.find_element(By.ID, "bids").text
    page = browser.page_source
    for bidder in BIDDERS:  # who bid, and (below) what they offered: nowhere in the page
        assert bidder not in page
    assert "元" not in browser.find_element(By.ID, "bids").text
    assert not browser.find_elements(By.CSS_SELECTOR, "tr[data-type=bid_submitted]")
    shot(browser, "console-timeline-sealed.png")

    console.post(console.rest_of_sealed)  # the opening, and the rest of the tender
    browser.get(console.url + f"/projects/{SEALED}")
    assert not browser.find_elements(By.ID, "sealed-banner")
    bids = browser.find_element(By.ID, "bids").text
    for bidder in BIDDERS:
        assert bidder in bids
    assert "46,501,000.00 元" in bids
    assert len(browser.find_elements(By.CSS_SELECTOR, "tr[data-type=bid_submitted]")) == 5
    # Attachments by file name, media type, size and hash.
    att = browser.find_element(By.CSS_SELECTOR, "tr[data-type=bid_submitted] table.atts tbody")
    assert re.search(r"[0-9a-f]{64}", att.text) and "B" in att.text


def test_timeline_and_access_log(console: Console, browser: Any) -> None:  # noqa: F811
    from selenium.webdriver.common.by import By

    sign_in(browser, console, "reviewer")
    browser.get(console.url + f"/projects/{OPENED}")
    text = text_of(browser)
    assert "开标" in text and "进场登记" in text and "杭州市公共资源交易中心 开标室3" in text
    assert "2026-03-25 10:00:00" in text  # Beijing time
    shot(browser, "console-timeline.png")
    # On paper: no navigation, no buttons, no search; the table whole.
    browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": "print"})
    try:
        assert not browser.find_element(By.CSS_SELECTOR, "header.top").is_displayed()
        assert not browser.find_element(By.ID, "print").is_displayed()
        assert browser.find_element(By.ID, "timeline").is_displayed()
        shot(browser, "console-timeline-print.png")
    finally:
        browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": ""})
    # The read is recorded, as the API records it: the access log shows it.
    browser.get(console.url + f"/projects/{OPENED}/access")
    rows = browser.find_elements(By.CSS_SELECTOR, "#access tbody tr")
    assert any("what=records" in r.text for r in rows)
    shot(browser, "console-access.png")
    # The console itself wrote nothing else: each row is an evidence_accessed record.
    for _, _, raw in console.lg.project_records(OPENED + "~access", -1, 1000):
        assert json.loads(raw)["type"] == "evidence_accessed"


def test_indicators_page_after_the_opening(console: Console, browser: Any) -> None:  # noqa: F811
    """The collusion indicators as a page: the notice that they are no verdict, what was
    read, and the read recorded as the API records it."""
    from selenium.webdriver.common.by import By

    sign_in(browser, console, "reviewer")
    browser.get(console.url + f"/projects/{OPENED}")
    browser.find_element(By.ID, "indicators-link").click()
    wait_for(lambda: browser.find_elements(By.ID, "indicators-notice"), "the indicators page")
    assert not browser.find_elements(By.ID, "indicators-sealed")
    assert browser.find_elements(By.ID, "indicators") or browser.find_elements(
        By.ID, "indicators-none"
    )
    reads = [
        json.loads(raw)["payload"]["what"]
        for _, _, raw in console.lg.project_records(OPENED + "~access", -1, 1000)
    ]
    assert "indicators" in reads
    shot(browser, "console-indicators.png")


def test_verify_in_the_browser(console: Console, browser: Any) -> None:  # noqa: F811
    from selenium.webdriver.common.by import By

    index = console.index_of(OPENED, "bid_opening_started")
    sign_in(browser, console, "reviewer")
    browser.get(console.url + f"/events/{index}")
    key = browser.find_element(By.ID, "log-key")
    key.send_keys(console.lg.info().verifier_key)
    browser.find_element(By.ID, "pin-key").click()

    def verify() -> dict[str, str]:
        browser.find_element(By.ID, "run-verify").click()
        verdict = browser.find_element(By.ID, "verdict")
        wait_for(lambda: verdict.get_attribute("data-result") in ("ok", "failed"), "a verdict")
        steps = browser.find_elements(By.CSS_SELECTOR, "#verify-steps li")
        return {
            "verdict": str(verdict.get_attribute("data-result")),
            **{s.get_attribute("data-step"): s.get_attribute("data-result") for s in steps},
        }

    good = {"verdict": "ok", "hash": "ok", "signature": "ok", "inclusion": "ok"}
    assert verify() == good
    shot(browser, "console-event.png", show="#verify-steps")

    def edit(field: str, change: Callable[[dict[str, Any]], None]) -> None:
        box = browser.find_element(By.ID, field)
        doc = json.loads(box.get_property("value"))
        change(doc)
        browser.execute_script(
            "arguments[0].value = arguments[1]", box, json.dumps(doc, ensure_ascii=False)
        )

    original = browser.find_element(By.ID, "receipt-json").get_property("value")

    def flip_proof(r: dict[str, Any]) -> None:
        h = bytearray(base64.b64decode(r["inclusion_proof"][0]))
        h[0] ^= 1
        r["inclusion_proof"][0] = base64.b64encode(bytes(h)).decode()

    edit("receipt-json", flip_proof)
    assert verify() == {**good, "verdict": "failed", "inclusion": "failed"}
    step = browser.find_element(By.CSS_SELECTOR, "#verify-steps li[data-step=inclusion]")
    assert "由证明推算出的根哈希与检查点不一致" in step.text  # the reason, in the page's language

    def move_root(r: dict[str, Any]) -> None:  # a checkpoint the log never signed
        lines = r["checkpoint"].split("\n")
        lines[1] = str(int(lines[1]) + 1)
        r["checkpoint"] = "\n".join(lines)

    browser.execute_script("document.getElementById('receipt-json').value = arguments[0]", original)
    edit("receipt-json", move_root)
    got = verify()
    assert got["verdict"] == "failed" and got["signature"] == "failed"

    browser.execute_script("document.getElementById('receipt-json').value = arguments[0]", original)
    edit("record-json", lambda r: r["payload"].update(place="另一个开标室"))
    assert verify() == {**good, "verdict": "failed", "hash": "failed"}
    step = browser.find_element(By.CSS_SELECTOR, "#verify-steps li[data-step=hash]")
    assert "记录的哈希与收据的 event_hash 不一致" in step.text
    shot(browser, "console-event-tampered.png", show="#verify-steps")

    # The pinned key is the reader's, kept in the browser: another key fails the signature.
    browser.get(console.url + f"/events/{index}")
    assert browser.find_element(By.ID, "log-key").get_property("value") == (
        console.lg.info().verifier_key
    )
    from verifier.note import Signer

    browser.execute_script(
        "document.getElementById('log-key').value = arguments[0]",
        Signer.generate("console.test/log").verifier.vkey,
    )
    assert verify()["signature"] == "failed"


def test_log_status_page(console: Console, browser: Any) -> None:  # noqa: F811
    from selenium.webdriver.common.by import By

    vkey = console.lg.info().verifier_key
    sign_in(browser, console, "reviewer")
    browser.get(console.url + "/status")
    assert browser.find_element(By.ID, "verifier-key").text == vkey
    assert int(browser.find_element(By.ID, "log-size").text) == console.lg.info().size
    assert browser.find_element(By.ID, "alarms").text == "没有监测告警。"
    # What `jianzheng monitor --state DIR` leaves: its state, and evidence of a fork.
    (console.monitor / "console.test_log.json").write_text(
        json.dumps({"verifier_key": vkey, "size": 3, "checked_at": "2026-12-04T10:00:00Z"})
    )
    (console.monitor / "evidence-20261204T100500000000Z.json").write_text(
        json.dumps(
            {
                "verifier_key": vkey,
                "detected_at": "2026-12-04T10:05:00Z",
                "findings": [{"kind": "fork", "message": "size 3 has two roots"}],
            }
        )
    )
    (console.monitor / "evidence-20261204T100600000000Z.json").write_text(
        json.dumps({"verifier_key": "other.log+00000000+AA==", "findings": [{"kind": "x"}]})
    )
    try:
        browser.get(console.url + "/status")
        alarms = browser.find_elements(By.CSS_SELECTOR, "#alarms li")
        assert [a.get_attribute("data-kind") for a in alarms] == ["fork"]
        assert "size 3 has two roots" in alarms[0].text and "2026-12-04 18:05:00" in alarms[0].text
        assert "监测者最近核对到大小 3" in text_of(browser)
        shot(browser, "console-status.png")
    finally:
        for f in console.monitor.iterdir():
            f.unlink()


def test_keyboard_reaches_the_skip_link_first(console: Console, browser: Any) -> None:  # noqa: F811
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    sign_in(browser, console, "reviewer")
    browser.find_element(By.TAG_NAME, "body").send_keys(Keys.TAB)
    active = browser.switch_to.active_element
    assert active.get_attribute("class") == "skip"
    active.send_keys(Keys.ENTER)
    assert browser.switch_to.active_element.get_attribute("id") == "main"
    # Every form control has a label.
    for el in browser.find_elements(By.CSS_SELECTOR, "input:not([type=hidden]), select"):
        ident = el.get_attribute("id")
        assert browser.find_elements(By.CSS_SELECTOR, f"label[for='{ident}']"), ident


# --- at the HTTP level ----------------------------------------------------------------------------


def test_forms_without_csrf_are_refused(console: Console) -> None:
    with httpx.Client(base_url=console.url, timeout=30) as c:
        c.get("/sign-in")  # the form cookie is set, but the form is posted without its field
        r = c.post("/sign-in", data={"token": console.tokens["reviewer"]})
        assert r.status_code == 403 and 'data-code="csrf"' in r.text
        assert "jz_session" not in r.headers.get("set-cookie", "")
        r = c.post("/sign-in", data={"token": console.tokens["reviewer"], "csrf": "x" * 43})
        assert r.status_code == 403
    with http_session(console, "reviewer") as c:
        r = c.post("/sign-out", data={"next": "/"})
        assert r.status_code == 403 and 'data-code="csrf"' in r.text
        r = c.post("/sign-out", data={"csrf": "A" * 43})
        assert r.status_code == 403
        assert c.get("/projects").status_code == 200  # still signed in
        # A JSON or multipart body is no form of ours either.
        r = c.post("/sign-out", json={"csrf": "A" * 43})
        assert r.status_code == 415


def test_session_cookie_flags(console: Console) -> None:
    for proto, secure in (("http", False), ("https", True)):
        with httpx.Client(
            base_url=console.url, timeout=30, headers={"X-Forwarded-Proto": proto}
        ) as c:
            r = c.get("/sign-in")
            csrf = re.search(r'name="csrf" value="([^"]+)"', r.text)
            assert csrf is not None
            form = r.cookies.get("jz_form") or ""
            r = c.post(
                "/sign-in",
                data={"csrf": csrf[1], "token": console.tokens["reviewer"]},
                cookies={"jz_form": form},
            )
            assert r.status_code == 303, r.text
            cookie = next(
                v for v in r.headers.get_list("set-cookie") if v.startswith("jz_session=")
            )
            attrs = {a.strip().split("=")[0].lower() for a in cookie.split(";")}
            assert {"httponly", "max-age", "path"} <= attrs
            assert "samesite=strict" in cookie.lower()
            assert ("secure" in attrs) is secure


def test_revoking_the_token_ends_its_sessions(console: Console) -> None:
    token_id, token = create_token(console.lg.store, "reviewer", "revoked soon")
    console.tokens["soon"] = token
    with http_session(console, "soon") as c:
        assert c.get("/projects").status_code == 200
        revoke_token(console.lg.store, token_id)
        r = c.get("/projects")
        assert r.status_code == 303 and r.headers["location"].startswith("/sign-in")


def test_platform_token_sees_no_reader_page(console: Console) -> None:
    with http_session(console, "platform") as c:
        r = c.get(f"/projects/{OPENED}")
        assert r.status_code == 403 and 'data-code="forbidden"' in r.text


def test_confidential_fields_stay_hidden_from_others(console: Console) -> None:
    """The committee's names are confidential (not sealed until the opening): admin, not
    one of their readers, sees 保密 in their place; a reviewer, after the winner, the names."""
    with http_session(console, "admin") as c:
        page = c.get(f"/projects/{OPENED}").text
    row = re.search(r'<tr id="e\d+" class="ev" data-type="expert_drawn">.*?</tr>\n', page)
    assert row is not None and "保密" in row[0] and "EXP-" not in row[0]
    with http_session(console, "reviewer") as c:
        page = c.get(f"/projects/{OPENED}").text
    row = re.search(r'<tr id="e\d+" class="ev" data-type="expert_drawn">.*?</tr>\n', page)
    assert row is not None and "保密" not in row[0] and "EXP-1101" in row[0]


@pytest.mark.parametrize("path", ["/projects", "/archive"])
def test_a_search_with_bad_parameters_is_refused_naming_them(console: Console, path: str) -> None:
    """Both searches refuse what is not a date, a code, a phase or a page size (422 naming
    the parameter), never answer 500, and never take an impossible date as a filter."""
    bad = {
        "from=2026-13-45": "from",
        "to=2026-02-30": "to",
        "from=0000-00-00": "from",
        "from=yesterday": "from",
        "code=%00": "code",
        "code=" + "A" * 6000: "code",
        "after=%00": "after",
        "phase=%00": "phase",
        "trade_type=" + "x" * 5000: "trade_type",
        "limit=99999999999999999999": "limit",
        "limit=0": "limit",
        "limit=1e3": "limit",
    }
    with http_session(console, "reviewer") as c:
        for query, field in bad.items():
            r = c.get(f"{path}?{query}")
            assert r.status_code == 422, (query, r.status_code)
            assert f'data-field="{field}"' in r.text or f"{field}:" in r.text, query
        assert c.get(f"{path}?from=2024-02-29&to=2026-03-02").status_code == 200
