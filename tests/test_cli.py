"""The jianzheng command line, as an operator uses it."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from tests.procs import Server, jianzheng
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
        assert "验证通过 / VERIFIED" in verified.stdout and "CANNOT" not in verified.stdout.upper()
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
