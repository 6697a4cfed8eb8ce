"""The console's archivist pages (issue 15) in headless Chromium, over real MinIO.

Projects: ``TENDER`` (an engineering tender, opened, registered in March 2026), ``SEALED``
(the same tender stopped before its opening: it cites the same bid files, which must not
show through it), ``LAND`` and ``MINING`` (listings registered in May, citing a notice and
a deal confirmation) and ``OUT`` (a land listing outside the archivist's scope). Files are
stored in MinIO under Object Lock; the page's "locked until" must be the retain-until
date MinIO itself holds.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from api.app import create_app
from api.auth import create_token, make_scope
from api.console.views import beijing
from ledger.clock import rfc3339
from ledger.service import Ledger
from storage.s3 import MinioStore
from storage.service import EvidenceStore
from tests.browser import (  # noqa: F401  (browser: the fixture)
    browser,
    save_screenshot,
    sign_in,
    wait_for,
)
from tests.test_sealed import opening_at, tender
from tests.test_storage import LiveServer, make_minio, s3_client
from tests.transfer import lawful_listing

if TYPE_CHECKING:
    from tests.fixtures_servers import S3Server

TENDER = "E330100000171"
SEALED = "E330100000172"
LAND = "L330100000171"
MINING = "M330100000171"
OUT = "L330100000179"
SCOPE = [TENDER, SEALED, LAND, MINING]


def file_of(project: str, what: str) -> tuple[bytes, str]:
    data = f"{project} {what} ".encode() * 200
    return data, f"{project} {what}.pdf"


@dataclass
class Archive:
    url: str
    lg: Ledger
    objects: EvidenceStore
    s3: S3Server
    tokens: dict[str, str]

    def http(self, who: str) -> httpx.Client:
        h = {"Authorization": f"Bearer {self.tokens[who]}"}
        return httpx.Client(base_url=self.url, headers=h, timeout=30)

    def minio_lock(self, sha: str) -> datetime:
        """The retain-until date MinIO itself holds for the file's stored version."""
        info = self.objects.require(sha)
        b = self.objects.backend
        assert isinstance(b, MinioStore)
        ret = s3_client(self.s3).get_object_retention(
            bucket_name=b.bucket, object_name=f"sha256/{sha}", version_id=info.version_id
        )
        assert ret is not None and ret.mode == "COMPLIANCE" and ret.retain_until_date
        return ret.retain_until_date


def listing_with_files(c: httpx.Client, code: str, trade_type: str) -> list[dict[str, Any]]:
    """A lawful listing whose notice and deal confirmation cite files (uploaded here)."""
    evs = lawful_listing(code, trade_type)
    for e in evs:
        what = {"transfer_notice_published": "公告", "deal_confirmed": "成交确认书"}.get(e["type"])
        if what is None:
            continue
        data, name = file_of(code, what)
        r = c.post("/v1/objects", content=data, headers={"Content-Type": "application/pdf"})
        assert r.status_code in (200, 201), r.text
        e["attachments"] = [
            {
                "sha256": hashlib.sha256(data).hexdigest(),
                "size": len(data),
                "media_type": "application/pdf",
                "name": name,
            }
        ]
    return evs


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, minio_server: S3Server) -> Iterator[Archive]:
    tmp = tmp_path_factory.mktemp("archive")
    lg = Ledger.open(tmp / "data", f"sqlite:///{tmp / 'l.db'}", "archive.test/log")
    objects = EvidenceStore(make_minio(minio_server), lg.store.engine)
    tokens = {
        "platform": create_token(lg.store, "platform")[1],
        "archivist": create_token(lg.store, "archivist", "档案室", scope=make_scope(SCOPE))[1],
        "reviewer": create_token(lg.store, "reviewer", "监督科")[1],
    }
    srv = LiveServer(create_app(lg, rate_limit=0, auth_failure_rate=0, objects=objects))
    a = Archive(srv.url, lg, objects, minio_server, tokens)
    try:
        with a.http("platform") as c:
            evs, files = tender(TENDER)
            sealed, _ = tender(SEALED)
            for data in files.values():
                r = c.post("/v1/objects", content=data)
                assert r.status_code in (200, 201), r.text
            batches = [
                evs,
                sealed[: opening_at(sealed)],
                listing_with_files(c, LAND, "land"),
                listing_with_files(c, MINING, "mining"),
                listing_with_files(c, OUT, "land"),
            ]
            for batch in batches:
                r = c.post("/v1/events:batch", json={"events": batch})
                assert r.status_code == 201, r.text
        yield a
    finally:
        srv.stop()
        objects.close()
        lg.close()


def shown(driver: Any) -> list[str]:
    from selenium.webdriver.common.by import By

    return [
        str(s.get_attribute("data-project"))
        for s in driver.find_elements(By.CSS_SELECTOR, "section.project")
    ]


def files_shown(driver: Any, project: str) -> dict[str, dict[str, str]]:
    """sha256 -> the cells of each file row listed under ``project``."""
    from selenium.webdriver.common.by import By

    out = {}
    rows = driver.find_elements(By.CSS_SELECTOR, f"table.files[data-project='{project}'] tbody tr")
    for row in rows:
        cells = row.find_elements(By.TAG_NAME, "td")
        out[str(row.get_attribute("data-sha256"))] = {
            "name": cells[0].find_element(By.CSS_SELECTOR, "a").text,
            "locked_until": cells[3].text,
            "held": str(cells[4].get_attribute("data-held")),
        }
    return out


def search(driver: Any, **values: str) -> None:
    """Fill the search form as a user would and send it."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    for name in ("from", "to"):
        el = driver.find_element(By.ID, name)
        driver.execute_script("arguments[0].value = arguments[1]", el, values.get(name, ""))
    Select(driver.find_element(By.ID, "trade_type")).select_by_value(values.get("trade_type", ""))
    # A mark on the old page: the results are there once a complete page lacks it.
    driver.execute_script("window.jzOldPage = true")
    driver.find_element(By.ID, "search").click()
    wait_for(lambda: new_page(driver), "the results")


def new_page(driver: Any) -> bool:
    """Whether the page marked ``jzOldPage`` was replaced by one fully loaded."""
    from selenium.common.exceptions import WebDriverException

    try:
        return bool(
            driver.execute_script("return !window.jzOldPage && document.readyState === 'complete'")
        )
    except WebDriverException:  # between the two pages
        return False


def test_projects_are_listed_by_date_range_and_trade_type_within_the_scope(
    site: Archive,
    browser: Any,  # noqa: F811
) -> None:
    from selenium.webdriver.common.by import By

    sign_in(browser, site, "archivist")
    browser.find_element(By.LINK_TEXT, "档案").click()
    wait_for(lambda: browser.current_url.endswith("/archive"), "the archive page")
    # Everything in scope, by code; the project outside it is absent.
    assert shown(browser) == sorted(SCOPE)
    search(browser, **{"from": "2026-05-01", "to": "2026-05-31", "trade_type": "land"})
    assert shown(browser) == [LAND]
    search(browser, **{"from": "2026-05-01", "to": "2026-05-31"})
    assert shown(browser) == [LAND, MINING]
    search(browser, **{"from": "2026-03-01", "to": "2026-04-30"})
    assert shown(browser) == [TENDER, SEALED]
    search(browser, trade_type="mining")
    assert shown(browser) == [MINING]
    assert "trade_type=mining" in browser.current_url

    # Each project with its event count and its files.
    browser.get(site.url + "/archive")
    counts = {
        s.get_attribute("data-project"): int(s.find_element(By.CSS_SELECTOR, "dd.events").text)
        for s in browser.find_elements(By.CSS_SELECTOR, "section.project")
    }
    for project in SCOPE:
        assert counts[project] == len(site.lg.project_records(project, -1, 1000))
    notice, name = file_of(LAND, "公告")
    land = files_shown(browser, LAND)
    assert land[hashlib.sha256(notice).hexdigest()]["name"] == name
    assert len(land) == 2
    # The opened tender shows its bid files (the first five of them); the same files are
    # not shown through the tender still sealed, nor is anything of it.
    assert len(files_shown(browser, TENDER)) == 5
    assert files_shown(browser, SEALED) == {}
    assert browser.find_element(By.CSS_SELECTOR, f"#project-{SEALED} .no-files")
    # Nor does a link to more of its files tell that there are any.
    assert not browser.find_elements(By.CSS_SELECTOR, f"#project-{SEALED} a.all-files")
    assert browser.find_elements(By.CSS_SELECTOR, f"#project-{TENDER} a.all-files")
    tender_files = files_shown(browser, TENDER)
    browser.find_element(By.CSS_SELECTOR, f"#project-{TENDER} a.all-files").click()
    wait_for(lambda: f"/archive/projects/{TENDER}" in browser.current_url, "its files")
    assert files_shown(browser, TENDER) == tender_files
    assert not browser.find_elements(By.ID, "next")
    browser.get(site.url + f"/archive/projects/{SEALED}")
    assert browser.find_elements(By.ID, "no-files")
    assert not browser.find_elements(By.ID, "next")
    save_screenshot(browser, "console-archive.png")


def test_each_file_shows_until_when_it_is_locked_and_its_legal_hold(
    site: Archive,
    browser: Any,  # noqa: F811
) -> None:
    from selenium.webdriver.common.by import By

    deal, _ = file_of(MINING, "成交确认书")
    deal_sha = hashlib.sha256(deal).hexdigest()
    with site.http("reviewer") as c:
        r = c.post(f"/v1/objects/{deal_sha}/legal-hold", json={"hold": True, "reason": "投诉 7"})
        assert r.status_code == 200, r.text
    sign_in(browser, site, "archivist")
    browser.get(site.url + "/archive?trade_type=mining")
    files = files_shown(browser, MINING)
    assert set(files) == {deal_sha, hashlib.sha256(file_of(MINING, "公告")[0]).hexdigest()}
    for sha, f in files.items():
        # The date MinIO holds (the archive lengthened it to the end of 2056-06-30, CST).
        lock = site.minio_lock(sha)
        assert lock >= datetime(2056, 6, 30, 16, 0, tzinfo=UTC)
        assert f["locked_until"] == beijing(rfc3339(lock))
        assert f["held"] == ("1" if sha == deal_sha else "0")
    # The file links to its evidence page, which says the same.
    browser.find_element(By.CSS_SELECTOR, f"tr[data-sha256='{deal_sha}'] a.file-link").click()
    wait_for(lambda: browser.find_elements(By.ID, "retain-until"), "the evidence page")
    assert browser.find_element(By.ID, "retain-until").text == files[deal_sha]["locked_until"]
    assert browser.find_element(By.ID, "legal-hold").get_attribute("data-held") == "1"

    # All of one project's files, on its own page.
    browser.get(site.url + f"/archive/projects/{MINING}")
    assert files_shown(browser, MINING) == files
    save_screenshot(browser, "console-archive-files.png")


def test_the_archive_pages_are_keyboard_navigable_and_labelled(
    site: Archive,
    browser: Any,  # noqa: F811
) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    sign_in(browser, site, "archivist")
    for path in ("/archive", f"/archive/projects/{LAND}"):
        browser.get(site.url + path)
        # Every control has a label (for=, or aria-label).
        unlabelled = browser.execute_script(
            "return [...document.querySelectorAll('input:not([type=hidden]), select, button')]"
            ".filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label')"
            " && !(e.tagName === 'BUTTON' && e.textContent.trim()))"
            ".map(e => e.outerHTML)"
        )
        assert unlabelled == [], unlabelled
    browser.get(site.url + "/archive")
    reached: list[str] = []
    no_ring: list[str] = []
    focusable = browser.execute_script(
        "return document.querySelectorAll('a[href], input:not([type=hidden]), select, button')"
        ".length"
    )
    # (A date field takes a stop for each of its parts.)
    for _ in range(int(focusable) + 8):
        ActionChains(browser).send_keys(Keys.TAB).perform()
        el = browser.switch_to.active_element
        stop = str(el.get_attribute("id") or el.get_attribute("href") or el.tag_name)
        if not reached or reached[-1] != stop:
            reached.append(stop)
        if el.tag_name != "body" and el.value_of_css_property("outline-style") != "solid":
            no_ring.append(stop)
    # The first stop skips to the content; the form's controls and every project's
    # checkbox come in the page's order, each drawn with a visible focus ring.
    assert reached[0].endswith("#main")
    want = ["from", "to", "trade_type", "phase", "search", "with-files", "pick-all", "export"]
    want += [f"pick-{p}" for p in sorted(SCOPE)]
    order = [x for x in reached if x in want]
    assert order == want, reached
    assert no_ring == [], no_ring


def run_verifier(bundle: Path, trust: Path) -> tuple[int, dict[str, Any]]:
    """``python -m verifier`` on one bundle, as a reviewer runs it offline."""
    out = subprocess.run(
        [sys.executable, "-m", "verifier", str(bundle), "--trust", str(trust), "--format", "json"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    return out.returncode, json.loads(out.stdout)


def test_many_projects_export_as_one_job_with_progress_to_one_download_that_verifies(
    site: Archive,
    browser: Any,  # noqa: F811
    tmp_path: Path,
) -> None:
    from selenium.webdriver.common.by import By

    sign_in(browser, site, "archivist")
    browser.get(site.url + "/archive")
    picked = [TENDER, LAND, MINING]
    for project in picked:
        browser.find_element(By.ID, f"pick-{project}").click()
    browser.find_element(By.ID, "export").click()
    wait_for(lambda: "/bundles/jobs/" in browser.current_url, "the job page")
    assert browser.find_element(By.ID, "job-projects").text == "、".join(picked)
    wait_for(lambda: browser.find_element(By.ID, "download").is_displayed(), "the job to be done")
    bar = browser.find_element(By.ID, "job-progress")
    assert bar.get_attribute("value") == bar.get_attribute("max")
    save_screenshot(browser, "console-archive-export.png")
    reads_before = {p: len(site.lg.project_records(p + "~access", -1, 1000)) for p in picked}
    browser.execute_cdp_cmd(
        "Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(tmp_path / "dl")}
    )
    browser.find_element(By.ID, "download").click()
    dl = tmp_path / "dl"

    def done() -> list[Path]:
        got = [f for f in dl.glob("*.zip")] if dl.is_dir() else []
        return got if got and not list(dl.glob("*.crdownload")) else []

    (zipped,) = wait_for(done, "the download")
    # The download is recorded once per project, as the API's bundle download is.
    for project in picked:
        after = len(site.lg.project_records(project + "~access", -1, 1000))
        assert after == reads_before[project] + 1
    # One zip, one bundle per project; each passes the offline verifier on its own.
    trust = tmp_path / "trust.txt"
    trust.write_text(f"log {site.lg.signer.verifier.vkey}\n")
    inner = tmp_path / "inner"
    with zipfile.ZipFile(zipped) as z:
        index = json.loads(z.read("export.json"))
        assert [b["project"] for b in index["bundles"]] == picked
        z.extractall(inner)
    for b in index["bundles"]:
        path = inner / b["file"]
        assert hashlib.sha256(path.read_bytes()).hexdigest() == b["sha256"]
        code, report = run_verifier(path, trust)
        assert code == 0, (b["project"], report)
        assert report["project"] == b["project"]


def test_an_out_of_scope_project_cannot_be_added_to_a_job(site: Archive) -> None:
    """The archive's export form posts to the Bundles pages' job: a project outside the
    token's scope (or sealed) is refused there, and no job is made."""
    with httpx.Client(base_url=site.url, timeout=30, follow_redirects=False) as c:
        page = c.get("/sign-in")
        form_csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert form_csrf
        r = c.post(
            "/sign-in",
            data={
                "csrf": form_csrf.group(1),
                "token": site.tokens["archivist"],
                "next": "/archive",
            },
        )
        assert r.status_code == 303
        archive = c.get("/archive")
        csrf = re.search(r'name="csrf" value="([^"]+)"', archive.text)
        assert csrf and OUT not in archive.text
        jobs_before = c.get("/bundles").text.count("/bundles/jobs/")
        for refused in ([LAND, OUT], [OUT]):
            r = c.post(
                "/bundles/export",
                data={"csrf": csrf.group(1), "project": refused, "files": "1"},
            )
            assert r.status_code == 404, r.text
            assert OUT in r.text or "不在您的令牌范围" in r.text
        # The same answer as for a project that does not exist at all.
        r = c.post("/bundles/export", data={"csrf": csrf.group(1), "project": ["L399"]})
        assert r.status_code == 404
        assert c.get(f"/archive/projects/{OUT}").status_code == 404
        assert c.get("/bundles").text.count("/bundles/jobs/") == jobs_before
