"""The jianzheng command line, as an operator uses it."""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.browser import browser  # noqa: F401  (the fixture)
from tests.procs import ROOT, Server, jianzheng
from tests.tender import lawful_tender


def test_serve_prints_url_origin_and_key_and_demo_verifies(tmp_path: Path) -> None:
    data = tmp_path / "data"
    srv = Server(data, None, origin="demo.example/log")
    try:
        token = jianzheng("token", "create", "--data", str(data), "--role", "platform")
        tok = token.stdout.strip().splitlines()[-1]
        assert tok.startswith("jz_")
        out = jianzheng(
            "demo", "--url", srv.url, "--token", tok, "--project", "E3301-DEMO", timeout=120
        )
        n = len(lawful_tender("E1"))
        assert f"{n}/{n} receipts verified offline" in out.stdout, out.stdout + out.stderr
        # The demo's tender is lawful under strict 民法典 第201/203条 counting and uses the
        # catalogue's field names: its bundle verifies, every rule evaluated.
        rev = jianzheng("token", "create", "--data", str(data), "--role", "reviewer")
        bundle = tmp_path / "demo.zip"
        jianzheng(
            "bundle", "export", "--url", srv.url, "--token", rev.stdout.split()[-1],
            "--project", "E3301-DEMO", "--with-files", "-o", str(bundle),
        )  # fmt: skip
        key = out.stdout.split(", key ", 1)[1].split()[0]
        trust = tmp_path / "trust.txt"
        trust.write_text(f"log {key}\n")
        verified = jianzheng("verify", str(bundle), "--trust", str(trust), check=False)
        assert verified.returncode == 0, verified.stdout + verified.stderr
        assert "Integrity and authenticity: 成立 / HOLDS" in verified.stdout
        assert "合规性 Compliance: 符合 / HOLDS" in verified.stdout
        assert "CANNOT" not in verified.stdout.upper()
        printed = srv.output()
        assert f"serving {srv.url}" in printed
        assert "origin: demo.example/log" in printed
        assert "verifier key: demo.example/log+" in printed
        assert tok not in printed  # tokens never reach the log
        admin = (data / "admin.token").read_text().strip()
        assert admin not in printed and (data / "admin.token").stat().st_mode & 0o777 == 0o600
    finally:
        srv.stop()


def test_audit_exit_codes_and_a_tampered_row(tmp_path: Path) -> None:
    data = tmp_path / "data"
    srv = Server(data, None)
    try:
        tok = jianzheng("token", "create", "--data", str(data), "--role", "platform")
        jianzheng("demo", "--url", srv.url, "--token", tok.stdout.split()[-1], "--events", "12")
    finally:
        srv.stop()
    ok = jianzheng("audit", "--data", str(data))
    assert "audit: OK" in ok.stdout and "records: 12" in ok.stdout
    con = sqlite3.connect(data / "ledger.db")
    rec = json.loads(con.execute("SELECT record FROM records WHERE idx = 5").fetchone()[0])
    rec["occurred_at"] = "2020-01-01T00:00:00+08:00"  # backdate one event
    forged = json.dumps(rec, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    con.execute("UPDATE records SET record = ? WHERE idx = 5", (forged.encode(),))
    con.commit()
    con.close()
    bad = jianzheng("audit", "--data", str(data), check=False)
    assert bad.returncode == 1
    assert "record 5" in bad.stdout and "audit: FAILED" in bad.stdout


def test_token_create_refuses_an_unknown_role(tmp_path: Path) -> None:
    r = jianzheng("token", "create", "--data", str(tmp_path), "--role", "root", check=False)
    assert r.returncode != 0 and "unknown role" in r.stderr


def test_no_token_key_or_sealed_content_reaches_the_logs(tmp_path: Path) -> None:
    import httpx

    from tests.conftest import example_payload, make_event, notice_event

    data = tmp_path / "data"
    srv = Server(data, None, "--log-level", "debug")
    try:
        tok = jianzheng("token", "create", "--data", str(data), "--role", "platform")
        token = tok.stdout.strip().splitlines()[-1]
        rev = jianzheng("token", "create", "--data", str(data), "--role", "reviewer")
        reviewer = rev.stdout.strip().splitlines()[-1]
        secret_price = 4_650_123_457
        bid = make_event(
            type_="bid_submitted",
            payload=example_payload("bid_submitted", bidder="BIDDER-SECRET-77", price=secret_price),
        )
        with httpx.Client(base_url=srv.url, timeout=30) as c:
            auth = {"Authorization": f"Bearer {token}"}
            c.post("/v1/events", json=notice_event(), headers=auth).raise_for_status()
            r = c.post("/v1/events", json=bid, headers=auth)
            assert r.status_code == 201, r.text
            at = r.json()["index"]
            c.get(f"/v1/events/{at}", headers={"Authorization": f"Bearer {reviewer}"})
            c.get("/v1/events/0", headers={"Authorization": "Bearer jz_" + "x" * 43})
            c.post("/v1/events", content=b"{bad", headers={"Authorization": f"Bearer {token}"})
    finally:
        srv.stop()
    logged = srv.output()
    key = (data / "log.key").read_text().strip()
    admin = (data / "admin.token").read_text().strip()
    for secret in (
        token,
        reviewer,
        admin,
        key,
        # PRIVATE+KEY+<name>+<key id>+<base64>: the base64 may itself hold (or end in) "+".
        key.split("+", 4)[4],
        str(secret_price),
        "BIDDER-SECRET-77",
    ):
        assert secret not in logged


# --- jianzheng verify: two verdicts and their exit codes (issue 12) -----------------------


@pytest.fixture(scope="module")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Genuine bundles of a lawful tender, one recorded with a late entry (a warning), one
    breaking E01; a tampered copy of the lawful one; and the trust file naming the log."""
    from ledger.bundle import plan_bundle, write_bundle
    from ledger.service import Ledger
    from tests.tender import breaking
    from tests.test_bundle import edit_records, members, post, rebuild

    base = tmp_path_factory.mktemp("verdicts")
    late = lawful_tender("LATE-1")
    # Recorded by the platform after a system outage: lawful, but a reviewer must look (X10).
    late[-1]["late_entry"] = {"reason": "平台故障，次日补录"}
    projects = {"lawful": lawful_tender("LAWFUL-1"), "late": late, "e01": breaking("E01", "B-1")}
    lg = Ledger.open(base / "data", f"sqlite:///{base / 'ledger.db'}", "cli.test/log")
    out: dict[str, Path] = {}
    try:
        for name, events in projects.items():
            post(lg, events)
            out[name] = base / f"{name}.zip"
            write_bundle(plan_bundle(lg, events[0]["project"]), out[name])
        (base / "trust.txt").write_text(f"log {lg.signer.verifier.vkey}\n")
    finally:
        lg.close()
    out["trust"] = base / "trust.txt"

    def backdate(ls: list[bytes]) -> list[bytes]:
        rec = json.loads(ls[3])
        rec["occurred_at"] = "2026-01-01T09:00:00+08:00"  # a forger moves one event's time
        ls[3] = json.dumps(rec, ensure_ascii=False, sort_keys=True).encode()
        return ls

    out["tampered"] = rebuild(edit_records(members(out["lawful"]), backdate), base / "t.zip")
    return out


def _verify(*args: str, module: bool = False) -> subprocess.CompletedProcess[str]:
    """``jianzheng verify ...`` (or ``python -m verifier ...``) as a reviewer runs it."""
    if not module:
        return jianzheng("verify", *args, check=False)
    return subprocess.run(
        [sys.executable, "-m", "verifier", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        check=False,
    )


def _verdicts(stdout: str) -> tuple[str, str]:
    """The first two lines after the title: the integrity and compliance verdicts."""
    first = stdout.splitlines()
    return next(x for x in first if x.startswith("完整性")), next(
        x for x in first if x.startswith("合规性")
    )


def test_exit_0_when_both_verdicts_hold(bundles: dict[str, Path]) -> None:
    r = _verify(str(bundles["lawful"]), "--trust", str(bundles["trust"]))
    assert r.returncode == 0, r.stdout + r.stderr
    integrity, compliance = _verdicts(r.stdout)
    assert integrity.endswith("成立 / HOLDS") and compliance.endswith("符合 / HOLDS")
    # The verdicts come first, before the checks in detail.
    assert r.stdout.index("合规性 Compliance") < r.stdout.index("[PASS")
    assert "integrity HOLDS (VERIFIED" in r.stderr and "compliance HOLDS" in r.stderr


@pytest.mark.parametrize("module", [False, True], ids=["jianzheng", "python-m-verifier"])
def test_exit_3_when_a_genuine_bundle_only_warns(bundles: dict[str, Path], module: bool) -> None:
    """The complaint a reviewer must never misread as forgery: a genuine bundle with one
    warning reads "integrity holds", and says what the warning is."""
    r = _verify(str(bundles["late"]), "--trust", str(bundles["trust"]), module=module)
    assert r.returncode == 3, r.stdout + r.stderr
    integrity, compliance = _verdicts(r.stdout)
    assert integrity == "完整性与真实性 Integrity and authenticity: 成立 / HOLDS"
    assert compliance == "合规性 Compliance: 有警示 / WARNINGS"
    reasons = r.stdout.split(compliance, 1)[1].split("\n\n", 1)[0]
    assert "[WARN] X10" in reasons and "补录" in reasons and "NOT VERIFIED" not in r.stdout
    assert "integrity HOLDS (VERIFIED: 0 failed" in r.stderr and "compliance WARNINGS" in r.stderr
    j = json.loads(
        _verify(str(bundles["late"]), "--trust", str(bundles["trust"]), "--format", "json").stdout
    )
    assert j["integrity"]["status"] == "holds" and j["compliance"]["status"] == "warns"
    assert [x["check"] for x in j["compliance"]["reasons"] if x["status"] == "warn"] == ["X10"]
    assert j["exit_code"] == 3 and j["ok"] is True  # the old field keeps its meaning


def test_exit_3_when_a_rule_fails_on_a_genuine_bundle(bundles: dict[str, Path]) -> None:
    r = _verify(str(bundles["e01"]), "--trust", str(bundles["trust"]))
    assert r.returncode == 3, r.stdout + r.stderr
    integrity, compliance = _verdicts(r.stdout)
    assert integrity.endswith("成立 / HOLDS") and compliance.endswith("不符合 / FAILS")
    assert "[FAIL] E01" in r.stdout.split(compliance, 1)[1].split("\n\n", 1)[0]


@pytest.mark.parametrize("module", [False, True], ids=["jianzheng", "python-m-verifier"])
def test_exit_1_when_the_bundle_was_tampered_with(bundles: dict[str, Path], module: bool) -> None:
    r = _verify(str(bundles["tampered"]), "--trust", str(bundles["trust"]), module=module)
    assert r.returncode == 1, r.stdout + r.stderr
    integrity, compliance = _verdicts(r.stdout)
    assert integrity.endswith("不成立 / FAILS")
    reasons = r.stdout.split(integrity, 1)[1].split(compliance, 1)[0]
    assert "[FAIL] inclusion" in reasons and "[FAIL] chain" in reasons
    # Compliance is still shown, with the warning that its records cannot be relied on.
    assert "完整性不成立" in r.stdout.split(compliance, 1)[1]
    assert "integrity FAILS (NOT VERIFIED" in r.stderr


def test_exit_2_on_usage_errors(bundles: dict[str, Path], tmp_path: Path) -> None:
    trust = str(bundles["trust"])
    (tmp_path / "bad-trust.txt").write_text("log nonsense\n")
    cases = [
        ((), "the following arguments are required: bundle"),
        ((str(bundles["lawful"]), "--format", "pdf"), "invalid choice"),
        ((str(tmp_path / "missing.zip"), "--trust", trust), "missing.zip"),
        ((trust, "--trust", trust), "not a zip file"),
        ((str(bundles["lawful"]), "--trust", str(tmp_path / "bad-trust.txt")), "line 1"),
        ((str(bundles["lawful"]), "--trust", trust, "--workers", "0"), "--workers"),
    ]
    for args, msg in cases:
        r = _verify(*args)
        assert r.returncode == 2 and msg in r.stderr, (args, r.stderr)
    r = _verify(str(tmp_path / "missing.zip"), "--trust", trust, module=True)
    assert r.returncode == 2 and "missing.zip" in r.stderr


@pytest.mark.parametrize("module", [False, True], ids=["jianzheng", "python-m-verifier"])
def test_help_documents_the_exit_codes(module: bool) -> None:
    r = _verify("--help", module=module)
    assert r.returncode == 0
    text = " ".join(r.stdout.split())
    for code in ("0 both verdicts hold", "1 integrity fails", "2 usage error", "3 integrity holds"):
        assert code in text, text


def test_html_report_in_headless_chromium(bundles: dict[str, Path], tmp_path: Path) -> None:
    """The HTML report of a genuine bundle with one warning, as a reviewer opens it: the two
    verdicts lead, then the keys and the timeline; saved as docs/screenshots/report.png."""
    from tests.browser import screenshot, screenshot_dir

    page = tmp_path / "report.html"
    r = _verify(
        str(bundles["late"]), "--trust", str(bundles["trust"]), "--format", "html", "-o", str(page)
    )
    assert r.returncode == 3, r.stderr
    html = page.read_text()
    # Self-contained: no script, no link, nothing fetched from anywhere.
    assert "<script" not in html and "<link" not in html and "src=" not in html
    assert "url(" not in html and "http" not in html
    shot = screenshot(page.as_uri(), screenshot_dir() / "report.png", width=1280, height=1500)
    png = shot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 50_000  # a rendered page, not blank


def test_html_report_layout_and_print_stylesheet(
    bundles: dict[str, Path],
    tmp_path: Path,
    browser: Any,  # noqa: F811  (the fixture imported above)
) -> None:
    from selenium.webdriver.common.by import By

    page = tmp_path / "report.html"
    _verify(
        str(bundles["late"]), "--trust", str(bundles["trust"]), "--format", "html", "-o", str(page)
    )
    browser.get(page.as_uri())
    integrity = browser.find_element(By.ID, "integrity")
    compliance = browser.find_element(By.ID, "compliance")
    timeline = browser.find_element(By.ID, "timeline")
    assert "成立" in integrity.text and "HOLDS" in integrity.text
    assert "有警示" in compliance.text and "X10" in compliance.text and "补录" in compliance.text
    # Side by side at the top, the timeline right below them.
    assert integrity.location["y"] == compliance.location["y"] < timeline.location["y"] < 1500
    assert integrity.location["x"] < compliance.location["x"]
    rows = timeline.find_element(By.XPATH, "following-sibling::table").text
    assert "招标公告" in rows or "进场登记" in rows
    assert "2026-03-25 10:00:00" in rows  # the opening, in Beijing time
    # On paper, the print stylesheet applies: heavier verdict borders, the full width.
    border = "return getComputedStyle(document.getElementById('integrity')).borderTopWidth"
    assert browser.execute_script(border) == "2px"
    browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": "print"})
    assert browser.execute_script(border) == "3px"
    assert browser.execute_script("return getComputedStyle(document.body).maxWidth") == "none"


def _origin_of(printed: str) -> str:
    return printed.split("origin: ", 1)[1].split()[0]


def test_first_start_without_origin_derives_a_unique_origin_and_keeps_it(tmp_path: Path) -> None:
    """Two installs sharing a witness must not share an origin (issue 13)."""
    origins = []
    for name in ("a", "b"):
        srv = Server(tmp_path / name, None, origin=None)
        try:
            printed = srv.output()
        finally:
            srv.stop()
        origin = _origin_of(printed)
        assert re.fullmatch(r"[A-Za-z0-9.-]+/jianzheng/[0-9a-f]{8}", origin), origin
        assert "first start without --origin" in printed and origin in printed
        assert f"verifier key: {origin}+" in printed
        origins.append(origin)
    assert origins[0] != origins[1]
    # Restarted without --origin: the same origin, said once only on the first start.
    again = Server(tmp_path / "a", None, origin=None)
    try:
        printed = again.output()
    finally:
        again.stop()
    assert _origin_of(printed) == origins[0] and "first start" not in printed
    # Another --origin later is refused, naming the stored origin and the one given.
    out = jianzheng(
        "serve", "--data", str(tmp_path / "a"), "--origin", "other.example/log", check=False
    )
    assert out.returncode != 0
    assert origins[0] in out.stderr and "other.example/log" in out.stderr
    assert "--origin" in out.stderr, out.stderr
