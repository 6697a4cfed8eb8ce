"""The console's own reads on both database engines: the project list (scope, filters,
paging) and the sessions (sign-in, revocation, expiry), through the console's HTTP forms."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from api.app import create_app
from api.auth import create_token, make_scope, revoke_token
from api.console import listing
from ledger.clock import rfc3339
from ledger.service import Ledger
from ledger.witnessing.submitter import WitnessEndpoint, Witnessing
from tests.tender import lawful_tender
from tests.test_witnessing_ledger import post, witness_for  # noqa: F401  (the fixture)
from tests.witness_procs import wait_until
from verifier.note import ALG_COSIGNATURE_V1, Signer
from witness.tsa import BuiltinTimestamper, TimestampAuthority

PROJECTS = ["E330100000301", "E330100000302", "E330100000303", "G330100000304"]


@pytest.fixture
def app(ledger_factory: Any) -> Iterator[tuple[TestClient, Ledger]]:
    lg: Ledger = ledger_factory()
    platform = create_token(lg.store, "platform")[1]
    with TestClient(create_app(lg, rate_limit=0), base_url="http://127.0.0.1") as c:
        for project in PROJECTS:
            evs = lawful_tender(project)[:2] if project[0] == "E" else [_procurement(project)]
            r = c.post(
                "/v1/events:batch",
                json={"events": evs},
                headers={"Authorization": f"Bearer {platform}"},
            )
            assert r.status_code == 201, r.text
        yield c, lg


def _procurement(project: str) -> dict[str, Any]:
    ev = lawful_tender(project)[0]
    ev.update(trade_type="procurement", occurred_at="2026-04-01T09:00:00+08:00")
    return ev


def sign_in(c: TestClient, token: str) -> None:
    c.cookies.clear()
    r = c.get("/sign-in")
    csrf = re.search(r'name="csrf" value="([^"]+)"', r.text)
    assert csrf is not None
    r = c.post("/sign-in", data={"csrf": csrf[1], "token": token}, follow_redirects=False)
    assert r.status_code == 303, r.text


def listed(c: TestClient, query: str = "") -> list[str]:
    r = c.get("/projects" + query)
    assert r.status_code == 200, r.text
    return re.findall(r'<a href="/projects/([A-Z0-9-]+)" class="code">', r.text)


def test_project_search_within_scope(app: tuple[TestClient, Ledger]) -> None:
    c, lg = app
    sign_in(c, create_token(lg.store, "reviewer")[1])
    assert listed(c) == PROJECTS
    assert listed(c, "?trade_type=procurement") == ["G330100000304"]
    assert listed(c, "?code=E33010000030") == PROJECTS[:3]
    assert listed(c, "?from=2026-04-01") == ["G330100000304"]
    assert listed(c, "?to=2026-03-31") == PROJECTS[:3]
    assert listed(c, "?phase=notice") == PROJECTS[:3]  # newest event: the tender notice
    assert listed(c, "?phase=setup") == ["G330100000304"]
    # A supervising department's token: one trade type; a project-scoped one: its projects.
    sign_in(c, create_token(lg.store, "reviewer", scope=make_scope(trade_types=["procurement"]))[1])
    assert listed(c) == ["G330100000304"]
    sign_in(c, create_token(lg.store, "reviewer", scope=make_scope([PROJECTS[1]]))[1])
    assert listed(c) == [PROJECTS[1]]
    assert c.get(f"/projects/{PROJECTS[0]}").status_code == 404


def test_project_list_pages(app: tuple[TestClient, Ledger]) -> None:
    c, lg = app
    sign_in(c, create_token(lg.store, "archivist")[1])
    r = c.get("/projects?code=E&limit=2")
    assert re.findall(r'class="code">([A-Z0-9]+)<', r.text) == PROJECTS[:2]
    nxt = re.search(r'href="(/projects\?[^"]+)" id="next"', r.text)
    assert nxt is not None
    r = c.get(nxt[1].replace("&amp;", "&"))
    assert re.findall(r'class="code">([A-Z0-9]+)<', r.text) == PROJECTS[2:3]
    assert 'id="next"' not in r.text
    assert c.get(f"/projects?limit={listing.MAX_PAGE + 1}").status_code == 422


def test_sessions_end_with_their_token(app: tuple[TestClient, Ledger]) -> None:
    c, lg = app
    token_id, token = create_token(lg.store, "reviewer")
    sign_in(c, token)
    assert c.get("/projects", follow_redirects=False).status_code == 200
    revoke_token(lg.store, token_id)
    r = c.get("/projects", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/sign-in")
    # A token that expires ends its session at that moment, and the cookie says so.
    soon = datetime.now(UTC) + timedelta(seconds=2)
    soon_id, token = create_token(lg.store, "reviewer", expires_at=soon)
    sign_in(c, token)
    assert c.get("/projects", follow_redirects=False).status_code == 200
    with lg.store.engine.connect() as conn:
        expires = conn.execute(
            text("SELECT expires_at FROM console_sessions WHERE token_id = :t"), {"t": soon_id}
        ).scalar_one()
    assert expires == rfc3339(soon)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_log_status_shows_each_witness_and_its_lag(
    ledger_factory: Any,
    witness_for: Any,  # noqa: F811
    tmp_path: Path,
) -> None:
    """A real witness that cosigns and one that never answers: the page names both, with
    the size each cosigned and how far behind the log it is, and the newest timestamp."""
    lg: Ledger = ledger_factory()
    good = witness_for(lg, "good.example/w")
    hole = socket.socket()
    hole.bind(("127.0.0.1", 0))
    hole.listen(8)
    key = Signer.generate("silent.example", ALG_COSIGNATURE_V1).verifier
    silent = WitnessEndpoint.parse(f"{key.vkey}@http://127.0.0.1:{hole.getsockname()[1]}")
    tsa = BuiltinTimestamper(TimestampAuthority.load_or_create(tmp_path / "tsa", "t"))
    w = Witnessing.start(lg, [good, silent], 1, tsa, timeout=2.0)
    try:
        post(lg, 3)
        size = lg.head().size
        wait_until(lambda: w.witnessed_size() == size, 30, "not witnessed")
        wait_until(lambda: w.timestamp_reply(size) is not None, 30, "no token")
        with TestClient(create_app(lg, rate_limit=0, witnessing=w)) as c:
            sign_in(c, create_token(lg.store, "reviewer")[1])
            page = c.get("/status").text
        rows = re.findall(
            r'<tr><td class="code">([^<]+)</td><td class="num">(\d+)</td>'
            r'<td class="num">(\d+)</td>',
            page,
        )
        assert sorted(rows) == [
            ("good.example/w", str(size), "0"),
            ("silent.example", "0", str(size)),
        ]
        assert f"见证门限：1 / 2，已见证大小 {size}" in page
        assert re.search(rf"大小 {size}，时间 [0-9-]+ [0-9:]+，签发方 builtin", page)
    finally:
        w.close()
        hole.close()
