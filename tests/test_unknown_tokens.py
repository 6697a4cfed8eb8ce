"""Requests without a valid token cannot keep the database busy (issue 10 §3).

A real HTTP server (uvicorn on a loopback socket, in this process so the ledger's engine
can be watched): an unknown token costs at most one query, and the same unknown token
none the next time; past a rate per client address, such requests get 429 before the
database is asked, while another address is still answered.
"""

from __future__ import annotations

import secrets
import time
import types
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from sqlalchemy import event

import api.auth
from api.app import create_app
from api.auth import PREFIX, RateLimiter, TokenCheck, create_token
from ledger.service import Ledger
from tests.test_storage import LiveServer


def random_token() -> str:
    return PREFIX + secrets.token_urlsafe(32)


@dataclass
class Touches:
    """Statements sent to the database, and connections taken from the pool."""

    statements: list[str] = field(default_factory=list)
    checkouts: int = 0


@pytest.fixture
def touches(ledger_factory: Any) -> Iterator[tuple[Ledger, Touches]]:
    lg: Ledger = ledger_factory()
    t = Touches()

    def on_statement(*args: Any) -> None:
        # Not SQLite's "BEGIN DEFERRED" (which the engine issues to start a transaction,
        # and which reads nothing until the statement after it).
        if not str(args[2]).startswith("BEGIN"):
            t.statements.append(str(args[2])[:60])

    def on_checkout(*_: Any) -> None:
        t.checkouts += 1

    event.listen(lg.store.engine, "before_cursor_execute", on_statement)
    event.listen(lg.store.engine.pool, "checkout", on_checkout)
    yield lg, t
    event.remove(lg.store.engine, "before_cursor_execute", on_statement)
    event.remove(lg.store.engine.pool, "checkout", on_checkout)


def serve(lg: Ledger, **kw: Any) -> LiveServer:
    return LiveServer(create_app(lg, rate_limit=0, **kw))


def client(srv: LiveServer, address: str = "127.0.0.1") -> httpx.Client:
    """A client whose requests come from ``address`` (any of 127.0.0.0/8)."""
    transport = httpx.HTTPTransport(local_address=address)
    return httpx.Client(base_url=srv.url, transport=transport, timeout=10)


def get(c: httpx.Client, token: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return c.get("/v1/projects/P1/events", headers=headers)


def test_an_unknown_token_touches_the_database_at_most_once(
    touches: tuple[Ledger, Touches],
) -> None:
    lg, t = touches
    srv = serve(lg, auth_failure_rate=0)

    def cost(c: httpx.Client, token: str | None, status: int = 401) -> tuple[int, int]:
        before = (len(t.statements), t.checkouts)
        assert get(c, token).status_code == status
        return len(t.statements) - before[0], t.checkouts - before[1]

    try:
        with client(srv) as c:
            unknown = random_token()
            assert cost(c, unknown) == (1, 1), t.statements[-3:]
            assert cost(c, unknown) == cost(c, unknown) == (0, 0), "asked again"
            # Malformed or missing: no query at all.
            for token in (None, "jz_short", "not-a-token"):
                assert cost(c, token) == (0, 0)
            # Fifty different unknown tokens: one lookup each.
            assert [cost(c, random_token()) for _ in range(50)] == [(1, 1)] * 50
            # A revoked token, once refused, is refused without asking again.
            admin = create_token(lg.store, "admin")[1]
            tid, tok = create_token(lg.store, "reviewer")
            assert cost(c, tok, 404)[0] >= 1  # P1 has no records: answered
            r = c.delete(f"/v1/tokens/{tid}", headers={"Authorization": f"Bearer {admin}"})
            assert r.status_code == 200
            assert cost(c, tok) == (1, 1)
            assert cost(c, tok) == (0, 0)
    finally:
        srv.stop()


def test_requests_without_a_valid_token_are_limited_per_client_address(
    monkeypatch: pytest.MonkeyPatch, touches: tuple[Ledger, Touches]
) -> None:
    lg, t = touches
    known = create_token(lg.store, "reviewer")[1]
    # The buckets refill 5 a second: on a loaded machine 40 requests can take long enough
    # to earn more. The server runs in this process, so its clock is held still instead.
    frozen = time.monotonic()
    monkeypatch.setattr(api.auth, "time", types.SimpleNamespace(monotonic=lambda: frozen))
    srv = serve(lg, auth_failure_rate=5)  # bursts of 10
    try:
        with client(srv) as a, client(srv, "127.0.0.2") as b:
            assert get(a, known).status_code == 404  # looked up and cached
            looked_up = len(t.statements)
            codes = [get(a, random_token()).status_code for _ in range(40)]
            assert codes[:5] == [401] * 5 and codes[-1] == 429, codes
            refused = [get(a, random_token()) for _ in range(3)]
            assert all(r.status_code == 429 for r in refused)
            assert all(int(r.headers["retry-after"]) >= 1 for r in refused)
            assert refused[0].json()["error"]["code"] == "rate_limited"
            # Throttled requests never reached the database: one lookup per 401 at most.
            assert len(t.statements) - looked_up <= codes.count(401) <= 12
            # Another address is answered as before, and so is a known token.
            assert get(b, random_token()).status_code == 401
            assert get(b, None).status_code == 401
            assert get(a, known).status_code == 404
    finally:
        srv.stop()


def test_the_tables_behind_it_are_bounded(
    monkeypatch: pytest.MonkeyPatch, touches: tuple[Ledger, Touches]
) -> None:
    lg, _ = touches
    monkeypatch.setattr(RateLimiter, "MAX_BUCKETS", 100)
    limiter = RateLimiter(1)
    for i in range(1000):
        limiter.check(f"10.0.{i // 256}.{i % 256}")
    assert len(limiter._buckets) <= 100
    monkeypatch.setattr(TokenCheck, "UNKNOWN_LIMIT", 20)
    check = TokenCheck(lg.store)
    for _ in range(100):
        with pytest.raises(Exception, match="unknown"):
            check.authenticate("Bearer " + random_token())
    assert len(check._unknown) == 20
