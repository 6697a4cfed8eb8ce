"""The console's Bundles pages (issue 15) in headless Chromium and over plain HTTP: an export
job started from a project's page runs to done with progress and its zip verifies offline;
an uploaded genuine bundle shows both verdicts holding, a tampered one integrity failing;
a CSRF-less upload is refused; out of scope is 404; the job bounds; many projects as one job."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import socket
import tempfile
import time
import urllib.parse
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from api.app import create_app
from api.auth import create_token, make_scope
from api.bundle_jobs import EXPORT_INDEX, ExportJobs, ExportLimits, Job, process_start
from ledger.access import access_chain
from ledger.bundle import BundleSources
from ledger.http import ApiError
from ledger.service import Ledger
from storage.fs import FilesystemStore
from storage.service import EvidenceStore
from tests.browser import (  # noqa: F401  (browser: the fixture)
    browser,
    save_screenshot,
    sign_in,
    wait_for,
)
from tests.hostile import members, rebuild, with_record
from tests.tender import colluding
from tests.test_sealed import opening_at, tender
from tests.test_storage import LiveServer
from verifier.bundle import verify_bundle
from verifier.trust import TrustPolicy

OPENED = "E330100000171"
SECOND = "E330100000172"
SEALED = "E330100000173"
OTHER = "E330100000174"
COLLUDED = "E330100000175"
WAIT = 60.0


@dataclass
class Site:
    url: str
    lg: Ledger
    app: FastAPI
    tokens: dict[str, str]

    def post(self, evs: list[dict[str, Any]], files: dict[str, bytes] | None = None) -> None:
        h = {"Authorization": f"Bearer {self.tokens['platform']}"}
        with httpx.Client(base_url=self.url, headers=h, timeout=30) as c:
            for data in (files or {}).values():
                r = c.post("/v1/objects", content=data)
                assert r.status_code in (200, 201), r.text
            r = c.post("/v1/events:batch", json={"events": evs})
            assert r.status_code == 201, r.text

    def bundle_reads(self, project: str) -> list[dict[str, Any]]:
        rows = self.lg.project_records(access_chain(project), -1, 1000)
        recs = [json.loads(r) for _, _, r in rows]
        return [r for r in recs if r["payload"].get("what") == "bundle"]

    def trust(self) -> TrustPolicy:
        return TrustPolicy(self.lg.signer.verifier)

    def api_bundle(self, project: str) -> bytes:
        h = {"Authorization": f"Bearer {self.tokens['reviewer']}"}
        with httpx.Client(base_url=self.url, headers=h, timeout=60) as c:
            r = c.get(f"/v1/projects/{project}/bundle", params={"files": "true"})
            assert r.status_code == 200, r.text
            return r.content


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    tmp = tmp_path_factory.mktemp("bundles")
    lg = Ledger.open(tmp / "data", f"sqlite:///{tmp / 'l.db'}", "bundles.test/log")
    objects = EvidenceStore(FilesystemStore(tmp / "data" / "objects"), lg.store.engine)
    tokens = {
        "platform": create_token(lg.store, "platform")[1],
        "reviewer": create_token(lg.store, "reviewer", "全部项目")[1],
        "archivist": create_token(lg.store, "archivist")[1],
        "scoped": create_token(lg.store, "reviewer", "一个项目", scope=make_scope([OPENED]))[1],
    }
    app = create_app(lg, rate_limit=0, auth_failure_rate=0, objects=objects)
    srv = LiveServer(app)
    try:
        s = Site(srv.url, lg, app, tokens)
        for code in (OPENED, SECOND, OTHER):
            evs, files = tender(code)
            s.post(evs, files)
        files: dict[str, bytes] = {}
        s.post(colluding("same_device", COLLUDED, files), files)
        sealed_evs, sealed_files = tender(SEALED)
        s.post(sealed_evs[: opening_at(sealed_evs)], sealed_files)
        yield s
    finally:
        srv.stop()
        objects.close()
        lg.close()


# --- helpers ---------------------------------------------------------------------------------


@contextlib.contextmanager
def http_session(site: Site, who: str) -> Iterator[tuple[httpx.Client, str]]:
    """An HTTP client signed in through the console's form, and its CSRF token."""
    with httpx.Client(base_url=site.url, timeout=60, follow_redirects=False) as c:
        r = c.get("/sign-in")
        csrf = re.search(r'name="csrf" value="([^"]+)"', r.text)
        assert csrf is not None
        r = c.post("/sign-in", data={"csrf": csrf[1], "token": site.tokens[who]})
        assert r.status_code == 303, r.text
        page = c.get("/bundles")
        assert page.status_code == 200, page.text
        token = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert token is not None
        yield c, token[1]


def wait_job(c: httpx.Client, job_url: str) -> dict[str, Any]:
    """Poll the job's status (bounded) until it is done or failed."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        st: dict[str, Any] = c.get(job_url + "/status").json()
        if st["state"] in ("done", "failed"):
            return st
        time.sleep(0.1)
    raise AssertionError("the export job did not finish")


def start_job(c: httpx.Client, csrf: str, *projects: str, files: bool = True) -> str:
    data = {"csrf": csrf, "project": list(projects)}
    if files:
        data["files"] = "1"
    r = c.post("/bundles/export", data=data)
    assert r.status_code == 303, r.text
    return str(r.headers["location"])


def tampered(data: bytes) -> bytes:
    """The bundle with one byte of one record's payload changed (manifest made to match, so
    that the verifier reaches the records' inclusion proofs)."""

    def edit(rec: dict[str, Any]) -> dict[str, Any]:
        rec["occurred_at"] = rec["occurred_at"].replace("0", "1", 1)
        return rec

    return rebuild(with_record(members(data), 2, edit))


def upload(driver: Any, path: Path) -> None:
    from selenium.webdriver.common.by import By

    driver.find_element(By.ID, "verify-file").send_keys(str(path))
    driver.find_element(By.ID, "verify-submit").click()
    wait_for(lambda: driver.find_elements(By.ID, "verdict-integrity"), "the report")


def verdict(driver: Any, which: str) -> str:
    from selenium.webdriver.common.by import By

    return str(driver.find_element(By.ID, f"verdict-{which}").get_attribute("data-status"))


# --- in the browser ------------------------------------------------------------------------------


def test_export_from_the_project_page_with_progress_to_a_verified_download(
    site: Site,
    browser: Any,  # noqa: F811
) -> None:
    from selenium.webdriver.common.by import By

    sign_in(browser, site, "reviewer")
    browser.get(f"{site.url}/projects/{OPENED}")
    browser.find_element(By.ID, "export-this-files").click()
    browser.find_element(By.ID, "export-this-submit").click()
    wait_for(lambda: "/bundles/jobs/" in browser.current_url, "the job page")
    # The page polls the status until done, then offers the download.
    link = wait_for(
        lambda: (
            browser.find_element(By.ID, "download").is_displayed()
            and browser.find_element(By.ID, "download")
        ),
        "the download link",
    )
    text = browser.find_element(By.ID, "job-progress-text").text
    reads_before = len(site.bundle_reads(OPENED))
    with httpx.Client(base_url=site.url, timeout=60) as c:
        c.cookies.set("jz_session", browser.get_cookie("jz_session")["value"])
        st = c.get(browser.current_url.removeprefix(site.url) + "/status").json()
        assert st["state"] == "done"
        p = st["progress"]
        assert p["records_done"] == p["records_total"] > 0
        assert p["files_done"] == p["files_total"] > 0
        assert p["bytes_done"] == p["bytes_total"] > 0
        assert p["projects_done"] == p["projects_total"] == 1
        assert f"{p['records_done']}/{p['records_total']}" in text
        got = c.get(str(link.get_attribute("href")))
    assert got.status_code == 200
    assert f'filename="{OPENED}.evidence.zip"' in got.headers["content-disposition"]
    assert got.content[:2] == b"PK" and len(got.content) == st["size"]
    # Recorded as the API's bundle download is: one evidence_accessed, before the bytes.
    reads = site.bundle_reads(OPENED)
    assert len(reads) == reads_before + 1
    assert reads[-1]["payload"]["files"] is True
    assert reads[-1]["payload"]["records"] == p["records_total"]
    # The zip is the project's evidence bundle: the offline verifier holds it.
    report = verify_bundle(got.content, site.trust())
    assert report.integrity.holds, report.to_json()["integrity"]
    assert report.compliance.holds, report.to_json()["compliance"]
    assert report.project == OPENED
    save_screenshot(browser, "console-bundles-export.png")
    browser.get(site.url + "/bundles")
    assert browser.find_elements(By.CSS_SELECTOR, "#jobs tbody tr")
    save_screenshot(browser, "console-bundles.png")


def test_an_uploaded_genuine_bundle_shows_both_verdicts_holding_and_a_tampered_one_fails(
    site: Site,
    browser: Any,  # noqa: F811
    tmp_path: Path,
) -> None:
    from selenium.webdriver.common.by import By

    data = site.api_bundle(SECOND)
    genuine = tmp_path / f"{SECOND}.evidence.zip"
    genuine.write_bytes(data)
    bad = tmp_path / "tampered.zip"
    bad.write_bytes(tampered(data))
    leftovers = set(Path(tempfile.gettempdir()).glob("jz-verify-*"))

    sign_in(browser, site, "archivist")
    browser.get(site.url + "/bundles")
    trust = browser.find_element(By.ID, "verify-trust").get_attribute("value")
    assert site.lg.signer.verifier.vkey in str(trust)
    upload(browser, genuine)
    assert verdict(browser, "integrity") == "holds"
    assert verdict(browser, "compliance") == "holds"
    assert browser.find_element(By.ID, "report-project").text == SECOND
    assert browser.find_element(By.ID, "report-exit").get_attribute("data-exit") == "0"
    assert "成立" in browser.find_element(By.ID, "verdict-integrity").text
    save_screenshot(browser, "console-bundles-verify.png")

    browser.get(site.url + "/bundles?lang=en")
    upload(browser, bad)
    assert verdict(browser, "integrity") == "fails"
    assert "FAILS" in browser.find_element(By.ID, "verdict-integrity").text
    assert browser.find_element(By.ID, "report-exit").get_attribute("data-exit") == "1"
    assert browser.find_elements(By.CSS_SELECTOR, "#report-checks tbody tr")
    save_screenshot(browser, "console-bundles-verify-tampered.png")
    browser.get(site.url + "/bundles?lang=zh")
    # Nothing of the uploads is kept.
    assert set(Path(tempfile.gettempdir()).glob("jz-verify-*")) == leftovers


# --- over plain HTTP ----------------------------------------------------------------------------


def _multipart(csrf: str | None, data: bytes, trust: str = "") -> dict[str, Any]:
    fields = {"trust": trust}
    if csrf is not None:
        fields["csrf"] = csrf
    return {"data": fields, "files": {"bundle": ("b.zip", data, "application/zip")}}


def test_a_csrf_less_upload_is_refused(site: Site) -> None:
    data = site.api_bundle(SECOND)
    with http_session(site, "reviewer") as (c, csrf):
        for token in (None, "", "x" * 43):
            r = c.post("/bundles/verify", **_multipart(token, data))
            assert r.status_code == 403, r.text
            assert 'data-code="csrf"' in r.text
        r = c.post("/bundles/verify", **_multipart(csrf, data))
        assert r.status_code == 200 and 'id="verdict-integrity"' in r.text
        # A form sent as the page would not (urlencoded) is refused too.
        r = c.post("/bundles/verify", data={"csrf": csrf})
        assert r.status_code == 415


def test_uploads_are_bounded_and_what_is_no_bundle_says_so(site: Site) -> None:
    with http_session(site, "reviewer") as (c, csrf):
        limits = site.app.state.console_verify
        saved = limits.max_bytes
        limits.max_bytes = 1000
        try:
            r = c.post("/bundles/verify", **_multipart(csrf, b"\0" * 200_000))
            assert r.status_code == 413
            assert "1000 bytes" in r.text
            r = c.post("/bundles/verify", **_multipart(csrf, b"\0" * 1001))
            assert r.status_code == 413 and "1000 bytes" in r.text
            # Sent without a length (chunked), it is cut off as it arrives.
            req = c.build_request("POST", "/bundles/verify", **_multipart(csrf, b"\0" * 200_000))
            body = req.read()
            chunks = (body[i : i + 8192] for i in range(0, len(body), 8192))
            r = c.post(
                "/bundles/verify",
                content=chunks,
                headers={"Content-Type": req.headers["Content-Type"]},
            )
            assert r.status_code == 413, r.text
            assert "1000 bytes" in r.text
        finally:
            limits.max_bytes = saved
        r = c.post("/bundles/verify", **_multipart(csrf, b"PK not a zip at all"))
        assert r.status_code == 422, r.text
        assert "bundle" in r.text
        r = c.post("/bundles/verify", **_multipart(csrf, site.api_bundle(SECOND), "log nonsense"))
        assert r.status_code == 422 and "trust file" in r.text


def test_uploads_past_the_running_bound_are_refused_before_their_body_is_read(
    site: Site,
) -> None:
    """Every upload is spooled to disk as it arrives: were the bound on verifications
    checked only once the body is in, any number of 256 MiB uploads could pile up meanwhile.
    With the slots full, the refusal comes while the body is still being sent."""
    slots = site.app.state.console_verify_slots
    limits = site.app.state.console_verify
    with http_session(site, "reviewer") as (c, csrf):
        cookie = "; ".join(f"{k}={v}" for k, v in c.cookies.items())
        with slots.lock:
            slots.busy += limits.running  # every slot taken, as by running verifications
        try:
            host = urllib.parse.urlsplit(site.url)
            with socket.create_connection((host.hostname, host.port), timeout=WAIT) as sock:
                head = (
                    "POST /bundles/verify HTTP/1.1\r\n"
                    f"Host: {host.netloc}\r\nCookie: {cookie}\r\n"
                    "Content-Type: multipart/form-data; boundary=b\r\n"
                    f"Content-Length: {100 << 20}\r\n\r\n"
                )
                sock.sendall(head.encode() + b"--b\r\n" + b"x" * 1024)
                # Nothing more is sent: the answer must come without the rest of the body.
                sock.settimeout(20)
                got = b""
                with contextlib.suppress(TimeoutError):
                    while b"\r\n\r\n" not in got and len(got) < 65536:
                        more = sock.recv(4096)
                        if not more:
                            break
                        got += more
            assert got.startswith(b"HTTP/1.1 429"), got[:200]
        finally:
            with slots.lock:
                slots.busy -= limits.running
        assert slots.busy == 0
        # With a slot free again, the same upload is verified.
        r = c.post("/bundles/verify", **_multipart(csrf, site.api_bundle(SECOND)))
        assert r.status_code == 200 and 'id="verdict-integrity"' in r.text


def test_a_report_past_its_bound_is_refused_not_read(site: Site) -> None:
    """The report is read into the server: a hostile bundle's timeline (every record's
    payload, highly compressible) can be far larger than the upload, so it is bounded."""
    limits = site.app.state.console_verify
    data = site.api_bundle(SECOND)
    with http_session(site, "reviewer") as (c, csrf):
        saved = limits.report_bytes
        limits.report_bytes = 4000  # this bundle's report is larger
        try:
            r = c.post("/bundles/verify", **_multipart(csrf, data))
            assert r.status_code == 422, r.text
            assert "larger than 4000 bytes" in r.text and "offline" in r.text
        finally:
            limits.report_bytes = saved
        r = c.post("/bundles/verify", **_multipart(csrf, data))
        assert r.status_code == 200 and 'id="verdict-integrity"' in r.text


def test_export_out_of_scope_is_404_and_jobs_are_their_tokens_own(site: Site) -> None:
    with http_session(site, "scoped") as (c, csrf):
        pages = {}
        for project in (OTHER, "E339999999999"):
            r = c.post("/bundles/export", data={"csrf": csrf, "project": project})
            assert r.status_code == 404, r.text
            pages[project] = r.text.replace(project, "P")
        # Out of scope looks exactly like a project that does not exist.
        assert pages[OTHER] == pages["E339999999999"]
        r = c.post("/bundles/export", data={"project": OPENED})
        assert r.status_code == 403  # no CSRF token
        job = start_job(c, csrf, OPENED, files=False)
        assert wait_job(c, job)["state"] == "done"
    # Another token sees nothing of it: status, page and download all 404.
    with http_session(site, "reviewer") as (c, _):
        for suffix in ("", "/status", "/download"):
            assert c.get(job + suffix).status_code == 404


def test_a_sealed_project_is_not_exported_before_the_opening(site: Site) -> None:
    with http_session(site, "reviewer") as (c, csrf):
        r = c.post("/bundles/export", data={"csrf": csrf, "project": SEALED})
        assert r.status_code == 409, r.text


def test_jobs_per_token_are_bounded_and_deleting_frees_a_place(site: Site) -> None:
    jobs: ExportJobs = site.app.state.export_jobs
    saved = jobs.limits
    jobs.limits = ExportLimits(jobs_per_token=1)
    try:
        with http_session(site, "archivist") as (c, csrf):
            for j in c.get("/bundles").text.split('href="/bundles/jobs/')[1:]:
                c.post(f"/bundles/jobs/{j[:32]}/delete", data={"csrf": csrf})
            job = start_job(c, csrf, OPENED, files=False)
            r = c.post("/bundles/export", data={"csrf": csrf, "project": SECOND})
            assert r.status_code == 429, r.text
            assert "at most 1" in r.text
            assert wait_job(c, job)["state"] == "done"
            r = c.post(job + "/delete", data={"csrf": csrf})
            assert r.status_code == 303
            assert c.get(job + "/status").status_code == 404
            second = start_job(c, csrf, SECOND, files=False)
            assert wait_job(c, second)["state"] == "done"
    finally:
        jobs.limits = saved


def test_many_projects_as_one_job(site: Site) -> None:
    with http_session(site, "reviewer") as (c, csrf):
        job = start_job(c, csrf, OPENED, SECOND)
        st = wait_job(c, job)
        assert st["state"] == "done", st
        assert st["progress"]["projects_done"] == 2
        before = {p: len(site.bundle_reads(p)) for p in (OPENED, SECOND)}
        got = c.get(job + "/download")
        assert got.status_code == 200
    # One access record per project, as two API downloads would make.
    assert {p: len(site.bundle_reads(p)) for p in (OPENED, SECOND)} == {
        p: n + 1 for p, n in before.items()
    }
    with zipfile.ZipFile(io.BytesIO(got.content)) as zf:
        index = json.loads(zf.read(EXPORT_INDEX))
        assert [b["project"] for b in index["bundles"]] == [OPENED, SECOND]
        for b in index["bundles"]:
            inner = zf.read(b["file"])
            assert b["file"] == f"bundles/{b['project']}.evidence.zip"
            report = verify_bundle(inner, site.trust())
            assert report.integrity.holds and report.project == b["project"]


def test_a_download_refused_for_one_project_records_no_read_of_the_others(site: Site) -> None:
    """A many-project download checks every project again; when one is refused (here: bids
    arrived after the job, sealed until the opening) nothing is handed out, so no read of
    the others may be recorded either."""
    late = "E330100000176"
    evs, files = tender(late)
    cut = next(n for n, e in enumerate(evs) if e["type"] in ("bid_deposit_paid", "bid_submitted"))
    site.post(evs[:cut], files)
    with http_session(site, "reviewer") as (c, csrf):
        job = start_job(c, csrf, SECOND, late)
        assert wait_job(c, job)["state"] == "done"
        site.post([evs[cut]])  # the first bid: the project now holds sealed events
        before = {p: len(site.bundle_reads(p)) for p in (SECOND, late)}
        got = c.get(job + "/download")
        assert got.status_code == 409, got.text
        assert 'data-code="sealed"' in got.text
    assert {p: len(site.bundle_reads(p)) for p in (SECOND, late)} == before


def test_a_job_past_its_time_fails_and_keeps_nothing(site: Site) -> None:
    jobs: ExportJobs = site.app.state.export_jobs
    saved = jobs.limits
    jobs.limits = ExportLimits(timeout=0.001)
    try:
        with http_session(site, "reviewer") as (c, csrf):
            job = start_job(c, csrf, OPENED)
            st = wait_job(c, job)
            assert st["state"] == "failed"
            assert "0 s" in st["error"] and st["progress"]["zip_bytes"] == 0
            assert c.get(job + "/download").status_code == 409
            page = c.get(job)
            assert 'id="job-error"' in page.text and "导出失败" in page.text
            job_dir = jobs.root / job.rsplit("/", 1)[1]
            assert sorted(p.name for p in job_dir.iterdir()) == ["job.json"]
            assert c.post(job + "/delete", data={"csrf": csrf}).status_code == 303
    finally:
        jobs.limits = saved


def test_finished_jobs_expire_and_a_dead_process_s_job_shows_failed(
    site: Site, tmp_path: Path
) -> None:
    from ledger.access import Principal

    jobs = ExportJobs(tmp_path / "exports", ExportLimits(lifetime=0.5))
    p = Principal("t-expire", "reviewer")
    job = jobs.start(site.lg, p, [OPENED], False, BundleSources())
    deadline = time.monotonic() + WAIT
    while jobs.job_of(p, job.id).active and time.monotonic() < deadline:
        time.sleep(0.05)
    done = jobs.job_of(p, job.id)
    assert done.state == "done"
    path = jobs.download_path(p, job.id)[1]
    assert verify_bundle(path, site.trust()).integrity.holds
    time.sleep(0.6)
    assert jobs.jobs_of(p) == []  # expired: listed no more, and removed
    assert not (jobs.root / job.id).exists()
    with pytest.raises(ApiError) as e:
        jobs.job_of(p, job.id)
    assert e.value.status == 404

    # A job whose process is gone: failed, with the reason, not "running" for ever.
    jobs = ExportJobs(tmp_path / "exports-dead", ExportLimits(lifetime=3600))
    dead = Job(
        id="0" * 32,
        token_id=p.token_id,
        projects=[OPENED],
        files=False,
        state="running",
        created_at=time.time(),
        updated_at=time.time(),
        pid=_dead_pid(),
    )
    (jobs.root / dead.id).mkdir(parents=True)
    (jobs.root / dead.id / "job.json").write_text(json.dumps(dead.to_json()))
    seen = jobs.job_of(p, dead.id)
    assert seen.state == "failed" and "stopped" in seen.error

    # Nor one whose pid is taken by a later process (a restarted container's server gets
    # the pid its predecessor had): the pid's start time is not the writer's.
    started = process_start(os.getpid())
    assert started is not None  # Linux: /proc answers
    for job_id, when, state in (("1" * 32, started, "running"), ("2" * 32, started - 1, "failed")):
        other = Job(
            id=job_id,
            token_id=p.token_id,
            projects=[OPENED],
            files=False,
            state="running",
            created_at=time.time(),
            updated_at=time.time(),
            pid=os.getpid(),
            pid_started=when,
        )
        (jobs.root / job_id).mkdir(parents=True)
        (jobs.root / job_id / "job.json").write_text(json.dumps(other.to_json()))
        seen = jobs.job_of(p, job_id)
        assert seen.state == state, (when, seen)
    # Another token's job is nobody else's.
    with pytest.raises(ApiError):
        jobs.job_of(Principal("t-other", "reviewer"), dead.id)

    # A dead process's job expires a lifetime after it last wrote (not a lifetime after
    # each reading), with its partial zip: it holds no place, and no disk, for good.
    old = Job(
        id="3" * 32,
        token_id=p.token_id,
        projects=[OPENED],
        files=False,
        state="running",
        created_at=time.time() - 7300,
        updated_at=time.time() - 7200,
        pid=_dead_pid(),
    )
    (jobs.root / old.id).mkdir(parents=True)
    (jobs.root / old.id / "job.json").write_text(json.dumps(old.to_json()))
    (jobs.root / old.id / f"{OPENED}.evidence.zip.part").write_bytes(b"PK" * 1000)
    with pytest.raises(ApiError) as e:
        jobs.job_of(p, old.id)
    assert e.value.status == 404
    assert old.id not in {j.id for j in jobs.jobs_of(p)}
    assert not (jobs.root / old.id).exists()


def _run_job(site: Site, jobs: ExportJobs, token: str) -> Job:
    from ledger.access import Principal

    p = Principal(token, "reviewer")
    job = jobs.start(site.lg, p, [OPENED, SECOND], True, bundle_sources_of(site))
    deadline = time.monotonic() + WAIT
    while jobs.job_of(p, job.id).active and time.monotonic() < deadline:
        time.sleep(0.05)
    return jobs.job_of(p, job.id)


def bundle_sources_of(site: Site) -> BundleSources:
    from ledger.bundle import sources_for

    return sources_for(None, site.app.state.objects.open_object)


def test_an_export_that_would_fill_the_data_disk_fails_and_keeps_nothing(
    site: Site, tmp_path: Path
) -> None:
    """The data directory holds the ledger too: exports leave ``min_free`` bytes free."""
    free = shutil.disk_usage(tmp_path).free
    jobs = ExportJobs(tmp_path / "exports", ExportLimits(min_free=free + (1 << 40)))
    job = _run_job(site, jobs, "t-disk-full")
    assert job.state == "failed", job
    assert "not enough disk space" in job.error and "kept free" in job.error
    assert sorted(p.name for p in (jobs.root / job.id).iterdir()) == ["job.json"]

    # The files' size counts before a byte is written.
    jobs = ExportJobs(tmp_path / "exports2", ExportLimits(min_free=1))
    jobs.free_bytes = lambda: 2  # one byte over the reserve, not room for the files
    job = _run_job(site, jobs, "t-disk-files")
    assert job.state == "failed" and "the files alone take" in job.error, job


def test_an_export_stops_when_the_disk_fills_up_while_it_writes(
    site: Site, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import api.bundle_jobs

    monkeypatch.setattr(api.bundle_jobs, "FREE_CHECK_BYTES", 1)  # look at every piece
    jobs = ExportJobs(tmp_path / "exports", ExportLimits(min_free=1 << 20))
    looks: list[int] = []

    def filling() -> int:
        looks.append(1)
        return 1 << 40 if len(looks) == 1 else 1 << 19  # room at the start; then nearly full

    jobs.free_bytes = filling
    job = _run_job(site, jobs, "t-disk-filling")
    assert job.state == "failed", job
    assert "not enough disk space" in job.error and "524288 bytes free" in job.error
    assert len(looks) == 2  # refused while writing, at its first look after the start
    assert sorted(p.name for p in (jobs.root / job.id).iterdir()) == ["job.json"]

    # With room throughout, the same export is done.
    jobs.free_bytes = lambda: 1 << 40
    assert _run_job(site, jobs, "t-disk-room").state == "done"


def _dead_pid() -> int:
    import subprocess
    import sys

    child = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        check=True,
        timeout=30,
    )
    return int(child.stdout)


def test_a_failed_check_is_one_reason_of_the_integrity_verdict(site: Site) -> None:
    report = verify_bundle(tampered(site.api_bundle(SECOND)), site.trust())
    checks = [r.check for r in report.integrity.reasons]
    assert report.integrity.status == "fails"
    assert "inclusion" in checks and len(checks) == len(set(checks))


def test_a_bundle_with_indicators_shows_them_as_warnings_beside_the_verdicts(site: Site) -> None:
    with http_session(site, "reviewer") as (c, csrf):
        trust = f"log {site.lg.signer.verifier.vkey}\n"
        r = c.post("/bundles/verify", **_multipart(csrf, site.api_bundle(COLLUDED), trust))
    assert r.status_code == 200, r.text
    assert 'id="report-indicators"' in r.text
    assert re.search(r"<b>I04 ", r.text), "the same-device indicator (I04) is listed"
    assert "不是结论" in r.text  # a warning for a person, never a verdict
    # The indicators change neither verdict: integrity holds on the genuine bundle.
    assert 'id="verdict-integrity" data-status="holds"' in r.text
