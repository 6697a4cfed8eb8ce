"""Evidence objects under access control: authorised per citing project (OWASP API1),
sealed bid files, every read recorded in the right access chain, fail closed, backfill."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
from collections.abc import Iterator
from concurrent.futures import Future
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.config import Config
from fastapi.testclient import TestClient
from sqlalchemy import select

from api.app import create_app
from api.auth import create_token, make_scope
from ledger import access
from ledger.models import ObjectCitationRow
from ledger.sequencer import SequencerBusy
from ledger.service import Ledger
from ledger.store import StoreError, migrate
from storage.fs import FilesystemStore
from storage.service import EvidenceStore
from tests.conftest import example_payload, make_event, notice_event
from verifier.chunks import CHUNK_SIZE

BID = b"sealed bid file: price 4650100000" * 1000
NOTICE = b"tender notice" * 100
OTHER = b"project B evidence" * (CHUNK_SIZE // 9)  # two chunks


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def h(token: str, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **extra}


def att(data: bytes, name: str = "file.pdf") -> dict[str, Any]:
    return {"sha256": sha(data), "size": len(data), "media_type": "application/pdf", "name": name}


class Env:
    def __init__(self, c: TestClient, lg: Ledger) -> None:
        self.c = c
        self.lg = lg

        def mk(role: str, *scope: list[str]) -> str:
            return create_token(lg.store, role, scope=make_scope(*scope))[1]

        self.tok = {r: mk(r) for r in ("platform", "reviewer", "archivist", "admin")}
        self.tok["rev_a"] = mk("reviewer", ["PA"])
        self.tok["rev_b"] = mk("reviewer", ["PB"])
        self.tok["rev_land"] = mk("reviewer", [], ["land"])
        self.tok["platform_a"] = mk("platform", ["PA"])

    def post(self, ev: dict[str, Any]) -> int:
        r = self.c.post("/v1/events", json=ev, headers=h(self.tok["platform"]))
        assert r.status_code == 201, r.text
        index: int = r.json()["index"]
        return index

    def upload(self, data: bytes) -> None:
        r = self.c.post("/v1/objects", content=data, headers=h(self.tok["platform"]))
        assert r.status_code in (200, 201), r.text

    def access(self, project: str) -> list[dict[str, Any]]:
        rows = self.lg.project_records(access.access_chain(project), -1, 1000)
        return [json.loads(r) for _, _, r in rows]


@pytest.fixture
def env(ledger_factory: Any, tmp_path: Path) -> Iterator[Env]:
    lg: Ledger = ledger_factory()
    objects = EvidenceStore(FilesystemStore(tmp_path / "objects"), lg.store.engine)
    try:
        with TestClient(create_app(lg, rate_limit=0, objects=objects)) as c:
            e = Env(c, lg)
            for data in (BID, NOTICE, OTHER):
                e.upload(data)
            e.post(make_event(project="PA", attachments=[att(NOTICE, "notice.pdf")]))
            e.post(make_event(project="PB", attachments=[att(OTHER)]))
            yield e
    finally:
        objects.close()


def reads(sha256: str) -> dict[str, tuple[str, str, dict[str, str]]]:
    """Every way to touch an object by its identifier: method, path, extra headers."""
    return {
        "whole": ("GET", f"/v1/objects/{sha256}", {}),
        "range": ("GET", f"/v1/objects/{sha256}", {"Range": "bytes=0-9"}),
        "chunk": ("GET", f"/v1/objects/{sha256}/chunks/0", {}),
        "legal-hold": ("POST", f"/v1/objects/{sha256}/legal-hold", {}),
    }


def call(e: Env, token: str, how: tuple[str, str, dict[str, str]]) -> Any:
    method, path, extra = how
    body = {"hold": True} if method == "POST" else None
    return e.c.request(method, path, headers=h(token, **extra), json=body)


def bola_leaks(e: Env) -> list[str]:
    """OWASP API1: what a reviewer scoped to PA gets of PB's file, compared with a file that
    is not stored at all. Anything but an identical 404 is a leak."""
    leaks = []
    absent = "0" * 64
    for (what, how), (_, nothing) in zip(
        reads(sha(OTHER)).items(), reads(absent).items(), strict=True
    ):
        got, missing = call(e, e.tok["rev_a"], how), call(e, e.tok["rev_a"], nothing)
        same = (
            got.status_code == missing.status_code == 404
            and got.json()["error"]["message"].replace(sha(OTHER), absent)
            == missing.json()["error"]["message"]
        )
        if not same or "PB" in got.text:
            leaks.append(f"{what}: {got.status_code}")
    return leaks


def test_bola_scoped_reviewer_gets_404_for_another_projects_object(env: Env) -> None:
    assert bola_leaks(env) == []
    # The same reviewer reads its own project's file every way, and holds it.
    for what, how in reads(sha(NOTICE)).items():
        assert call(env, env.tok["rev_a"], how).status_code in (200, 206), what
    # Scoped by trade type (a supervising department's sector): neither project is land.
    for how in reads(sha(NOTICE)).values():
        assert call(env, env.tok["rev_land"], how).status_code == 404
    # Unlimited readers read both; a scoped platform token reads no cited file.
    for t in ("reviewer", "archivist", "admin"):
        assert env.c.get(f"/v1/objects/{sha(OTHER)}", headers=h(env.tok[t])).content == OTHER
    for t in ("platform", "platform_a"):
        assert env.c.get(f"/v1/objects/{sha(NOTICE)}", headers=h(env.tok[t])).status_code == 404
    # Legal holds keep their role rule (reviewer or admin; 403 is about the role, not the file).
    hold = reads(sha(NOTICE))["legal-hold"]
    assert call(env, env.tok["archivist"], hold).status_code == 403


def test_bola_test_fails_when_the_object_check_is_removed(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The probe above is not vacuous: without the per-object check it reports every leak."""
    import api.routes.objects as routes

    def unchecked(lg: Ledger, *_: Any) -> Any:
        """Authorised through the first citing project, whoever asks."""
        return lg.object_citations(sha(OTHER))[0]

    monkeypatch.setattr(routes, "authorize_object", unchecked)
    assert len(bola_leaks(env)) == 4


def bid(e: Env, project: str = "PA") -> int:
    e.post(notice_event(project))  # bids follow a notice (process order, rule O01)
    return e.post(
        make_event(
            project=project,
            type_="bid_submitted",
            payload=example_payload(
                "bid_submitted", bidder="91330100MA00027001", price=4_650_100_000
            ),
            actor={"id": "91330100MA00027001", "role": "bidder"},
            attachments=[att(BID, "bid.enc")],
        )
    )


def open_bids(e: Env, project: str = "PA") -> None:
    e.post(
        make_event(
            project=project,
            type_="bid_opening_started",
            payload={"opening_at": "2026-03-25T10:00:00+08:00", "place": "开标室3"},
        )
    )


def test_bid_files_are_sealed_until_the_opening_then_only_for_sealed_readers(env: Env) -> None:
    bid(env)
    everyone = ("platform", "reviewer", "archivist", "admin", "rev_a")
    for t in everyone:
        for what, how in reads(sha(BID)).items():
            if what != "legal-hold":
                assert call(env, env.tok[t], how).status_code == 404, (t, what)
    open_bids(env)
    for t in ("reviewer", "archivist", "rev_a"):
        assert env.c.get(f"/v1/objects/{sha(BID)}", headers=h(env.tok[t])).content == BID
        r = env.c.get(f"/v1/objects/{sha(BID)}/chunks/0", headers=h(env.tok[t]))
        assert base64.b64decode(r.json()["data"]) == BID
    # Admin is not among the catalogue's sealed readers; the platform reads no evidence.
    for t in ("admin", "platform"):
        assert env.c.get(f"/v1/objects/{sha(BID)}", headers=h(env.tok[t])).status_code == 404
    assert env.c.get(f"/v1/objects/{sha(BID)}", headers=h(env.tok["rev_b"])).status_code == 404


def held(e: Env, sha256: str) -> bool:
    objects: EvidenceStore = e.c.app.state.objects  # type: ignore[attr-defined]
    return objects.require(sha256).legal_hold


def project_records(e: Env, project: str) -> list[dict[str, Any]]:
    return [json.loads(r) for _, _, r in e.lg.project_records(project, -1, 1000)]


def test_a_legal_hold_tells_nothing_of_a_sealed_bid_file_before_the_opening(env: Env) -> None:
    """Issue 10 §2: the hold answered a sealed bid file's size, media type and chunk root
    to any reviewer in scope. Before the opening it is as absent as a file never stored."""
    bid(env)
    size0 = env.lg.head().size
    absent = "0" * 64
    for t in ("reviewer", "rev_a", "admin"):
        for hold in (True, False):
            url = "/v1/objects/{}/legal-hold"
            got = env.c.post(url.format(sha(BID)), json={"hold": hold}, headers=h(env.tok[t]))
            none = env.c.post(url.format(absent), json={"hold": hold}, headers=h(env.tok[t]))
            assert got.status_code == none.status_code == 404, (t, got.text)
            assert got.json() == json.loads(none.text.replace(absent, sha(BID)))
            assert str(len(BID)) not in got.text and "chunk_root" not in got.text
    assert not held(env, sha(BID))
    assert env.lg.head().size == size0, "a refused hold was recorded"


def test_every_legal_hold_change_is_a_record_of_the_project(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    bid(env)
    open_bids(env)
    reviewer, url = env.tok["rev_a"], f"/v1/objects/{sha(BID)}/legal-hold"
    r = env.c.post(url, json={"hold": True, "reason": "投诉 2026-017"}, headers=h(reviewer))
    assert r.status_code == 200 and r.json()["legal_hold"] is True and held(env, sha(BID))
    # Setting what is set changes nothing and records nothing.
    size = env.lg.head().size
    assert env.c.post(url, json={"hold": True}, headers=h(reviewer)).status_code == 200
    assert env.lg.head().size == size
    r = env.c.post(url, json={"hold": False}, headers=h(env.tok["reviewer"]))
    assert r.status_code == 200 and not held(env, sha(BID))
    holds = [x for x in project_records(env, "PA") if x["type"].startswith("legal_hold")]
    listing = env.c.get("/v1/tokens", headers=h(env.tok["admin"])).json()["tokens"]
    scoped = {"projects": ["PA"], "trade_types": None}
    unlimited = {"projects": None, "trade_types": None}
    rev_a = next(t["id"] for t in listing if t["role"] == "reviewer" and t["scope"] == scoped)
    rev = next(t["id"] for t in listing if t["role"] == "reviewer" and t["scope"] == unlimited)
    assert [(x["type"], x["payload"], x["actor"]) for x in holds] == [
        (
            "legal_hold_set",
            {"sha256": sha(BID), "reason": "投诉 2026-017"},
            {"id": rev_a, "role": "reviewer"},
        ),
        ("legal_hold_released", {"sha256": sha(BID)}, {"id": rev, "role": "reviewer"}),
    ]
    # Visible to the project's readers, and no poster may write such a record itself.
    listed = env.c.get("/v1/projects/PA/events", headers=h(env.tok["rev_a"])).json()["records"]
    assert [x["type"] for x in listed][-2:] == ["legal_hold_set", "legal_hold_released"]
    fake = make_event(project="PA", type_="legal_hold_set", payload={"sha256": sha(BID)})
    r = env.c.post("/v1/events", json=fake, headers=h(env.tok["platform"]))
    assert r.status_code == 422 and r.json()["error"]["field"] == "type"
    # A hold that cannot be recorded is not made.
    monkeypatch.setattr(env.lg, "append", failed_future)
    r = env.c.post(url, json={"hold": True}, headers=h(reviewer))
    assert r.status_code == 503 and not held(env, sha(BID))


def test_a_file_sealed_in_one_project_is_read_through_another_that_cites_it_openly(
    env: Env,
) -> None:
    bid(env, "PA")
    env.post(make_event(project="PB", attachments=[att(BID)]))
    url = f"/v1/objects/{sha(BID)}"
    assert env.c.get(url, headers=h(env.tok["rev_a"])).status_code == 404
    assert env.c.get(url, headers=h(env.tok["rev_b"])).content == BID
    # An unlimited reviewer is authorised through PB while PA is sealed, then through PA
    # (the first citing project by name) once PA has opened its bids.
    env.c.get(url, headers=h(env.tok["reviewer"])).raise_for_status()
    open_bids(env, "PA")
    env.c.get(url, headers=h(env.tok["reviewer"])).raise_for_status()
    assert [a["payload"]["sha256"] for a in env.access("PA")] == [sha(BID)]
    assert [a["payload"]["sha256"] for a in env.access("PB")] == [sha(BID)] * 2


def test_every_object_read_is_recorded_in_its_projects_access_chain(env: Env) -> None:
    reviewer = h(env.tok["rev_b"])
    size0 = env.lg.head().size
    assert env.c.get(f"/v1/objects/{sha(OTHER)}", headers=reviewer).content == OTHER
    r = env.c.get(f"/v1/objects/{sha(OTHER)}", headers={**reviewer, "Range": "bytes=5-14"})
    assert r.status_code == 206 and r.content == OTHER[5:15]
    assert env.c.get(f"/v1/objects/{sha(OTHER)}/chunks/1", headers=reviewer).status_code == 200
    # Committed before the bytes were served, one event per read, in PB's access chain only.
    assert env.lg.head().size == size0 + 3
    got = env.access("PB")
    assert [a["payload"] for a in got] == [
        {"what": "object", "sha256": sha(OTHER)},
        {"what": "object", "sha256": sha(OTHER), "range": {"first": 5, "last": 14}},
        {"what": "object_chunk", "sha256": sha(OTHER), "chunk": 1},
    ]
    tokens = env.c.get("/v1/tokens", headers=h(env.tok["admin"])).json()["tokens"]
    token_id = next(t["id"] for t in tokens if t["scope"]["projects"] == ["PB"])
    assert all(
        a["type"] == "evidence_accessed" and a["actor"] == {"id": token_id, "role": "reviewer"}
        for a in got
    )
    assert all(a["recorded_at"] and a["occurred_at"] for a in got)
    assert env.access("PA") == []
    # Listed to the project's readers like record reads.
    listed = env.c.get("/v1/projects/PB/access", headers=reviewer).json()["access"]
    assert [a["payload"]["what"] for a in listed] == ["object", "object", "object_chunk"]
    # Failed reads record nothing: an unsatisfiable range, a chunk past the end.
    size1 = env.lg.head().size
    bad = env.c.get(f"/v1/objects/{sha(OTHER)}", headers={**reviewer, "Range": "bytes=99999999-"})
    assert bad.status_code == 416
    assert env.c.get(f"/v1/objects/{sha(OTHER)}/chunks/9", headers=reviewer).status_code == 404
    assert env.lg.head().size == size1


def test_an_uncited_object_is_only_for_unlimited_platform_and_admin_and_not_recorded(
    env: Env,
) -> None:
    env.upload(b"not yet cited")
    url = f"/v1/objects/{sha(b'not yet cited')}"
    size0 = env.lg.head().size
    for t in ("platform", "admin"):
        assert env.c.get(url, headers=h(env.tok[t])).content == b"not yet cited"
    for t in ("platform_a", "reviewer", "archivist", "rev_a"):
        assert env.c.get(url, headers=h(env.tok[t])).status_code == 404, t
    # Not evidence of any project yet, so no project's access chain holds these reads.
    assert env.lg.head().size == size0


def failed_future(*_: Any) -> Future[Any]:
    f: Future[Any] = Future()
    f.set_exception(StoreError("database is locked"))
    return f


def busy(*_: Any) -> Future[Any]:
    raise SequencerBusy("more than 0 events are waiting")


@pytest.mark.parametrize("failure", [failed_future, busy], ids=["store_error", "busy"])
def test_a_read_that_cannot_be_recorded_is_refused(
    env: Env, monkeypatch: pytest.MonkeyPatch, failure: Any
) -> None:
    monkeypatch.setattr(env.lg, "append", failure)
    for what, how in reads(sha(OTHER)).items():
        if what == "legal-hold":
            continue
        r = call(env, env.tok["reviewer"], how)
        assert r.status_code == 503, (what, r.status_code)
        assert r.json()["error"]["code"] == "access_not_recorded"
        assert OTHER[:20] not in r.content
        assert r.headers["retry-after"] == "1"
    monkeypatch.undo()
    assert env.c.get(f"/v1/objects/{sha(OTHER)}", headers=h(env.tok["reviewer"])).content == OTHER


def test_citations_are_backfilled_by_the_migration(env: Env) -> None:
    """Migration 0006 rebuilds the citations from the records alone (records with their
    attachments in the open: a sealed record's are in its openings, which migration 0008
    refuses to drop, see tests/test_sealed.py)."""
    env.post(
        make_event(
            project="PA",
            type_="clarification_issued",
            payload={"clarif_at": "2026-03-10T09:00:00+08:00", "applies_to": "tender_documents"},
            attachments=[att(BID, "clarification.pdf")],
        )
    )

    def citations() -> list[tuple[Any, ...]]:
        c = ObjectCitationRow
        with env.lg.store.reader() as conn:
            rows = conn.execute(
                select(c.sha256, c.idx, c.project, c.trade_type, c.event_type).order_by(
                    c.sha256, c.idx
                )
            ).all()
        return [tuple(r) for r in rows]

    before = citations()
    assert {(c[2], c[4]) for c in before} == {
        ("PA", "project_registered"),
        ("PB", "project_registered"),
        ("PA", "clarification_issued"),
    }
    engine = env.lg.store.engine
    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files("ledger") / "migrations"))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0005")
    migrate(engine)
    assert citations() == before


def test_downloads_carry_the_cited_file_name(env: Env) -> None:
    """RFC 6266: ``filename*`` in UTF-8 with an ASCII fallback, from the authorising record;
    a sealed bid file's name (inside its sealed attachment list) once it may be read."""
    video = b"\x00\x00\x00\x18ftypmp42" * 500
    up = env.c.post(
        "/v1/objects",
        content=video,
        headers=h(env.tok["platform"], **{"Content-Type": "video/mp4"}),
    )
    assert up.status_code == 201, up.text
    env.post(
        make_event(
            project="PB",
            attachments=[{**att(video, "开标录像 第1段.mp4"), "media_type": "video/mp4"}],
        )
    )
    r = env.c.get(f"/v1/objects/{sha(video)}", headers=h(env.tok["rev_b"]))
    assert r.status_code == 200 and r.headers["content-type"] == "video/mp4"
    assert r.headers["content-disposition"] == (
        "attachment; filename=\"____ _1_.mp4\"; filename*=UTF-8''"
        "%E5%BC%80%E6%A0%87%E5%BD%95%E5%83%8F%20%E7%AC%AC1%E6%AE%B5.mp4"
    )
    r = env.c.get(f"/v1/objects/{sha(NOTICE)}", headers=h(env.tok["rev_a"], Range="bytes=0-3"))
    assert r.headers["content-disposition"].startswith('attachment; filename="notice.pdf";')
    bid(env)
    open_bids(env)
    r = env.c.get(f"/v1/objects/{sha(BID)}", headers=h(env.tok["reviewer"]))
    assert r.status_code == 200
    assert "filename*=UTF-8''bid.enc" in r.headers["content-disposition"]


def test_a_read_session_is_recorded_once_however_many_ranges(env: Env) -> None:
    """A player seeking: many Range requests under one read session, one access event."""
    reviewer = h(env.tok["rev_b"])
    url = f"/v1/objects/{sha(OTHER)}"
    size0 = env.lg.head().size
    for first in (0, 1000, 5, CHUNK_SIZE, 77):
        r = env.c.get(
            url, headers={**reviewer, "Range": f"bytes={first}-", "X-Read-Session": "seek-0001"}
        )
        assert r.status_code == 206 and r.content == OTHER[first:]
    r = env.c.get(url + "?read_session=seek-0001", headers={**reviewer, "Range": "bytes=9-9"})
    assert r.status_code == 206 and r.content == OTHER[9:10]
    assert env.lg.head().size == size0 + 1
    assert [a["payload"] for a in env.access("PB")] == [
        {
            "what": "object",
            "sha256": sha(OTHER),
            "range": {"first": 0, "last": len(OTHER) - 1},
            "read_session": "seek-0001",
        }
    ]
    # Another session name, another token or no session: each read is recorded again.
    env.c.get(url, headers={**reviewer, "X-Read-Session": "seek-0002"}).raise_for_status()
    env.c.get(
        url, headers=h(env.tok["reviewer"], **{"X-Read-Session": "seek-0001"})
    ).raise_for_status()
    env.c.get(url, headers=reviewer).raise_for_status()
    assert env.lg.head().size == size0 + 4
    # A malformed or contradictory session name is refused, and records nothing.
    for extra, q in (
        ({"X-Read-Session": "short"}, ""),
        ({"X-Read-Session": "seek-0001"}, "?read_session=seek-0002"),
    ):
        bad = env.c.get(url + q, headers={**reviewer, **extra})
        assert bad.status_code == 422 and bad.json()["error"]["field"] == "X-Read-Session"
    assert env.lg.head().size == size0 + 4


def test_a_read_session_closes_when_idle_or_old() -> None:
    asyncio.run(_idle_or_old())


async def _idle_or_old() -> None:
    from api.read_sessions import IDLE, LONGEST, ReadSessions

    now = [0.0]
    recorded: list[float] = []

    async def record() -> None:
        recorded.append(now[0])

    s = ReadSessions(clock=lambda: now[0])
    key = ("tok", "a" * 64, "session-1")
    for t in (0.0, 10.0, 10.0 + IDLE - 1, 20.0 + 2 * IDLE - 2):
        now[0] = t
        await s.read(key, record)
    assert recorded == [0.0, 20.0 + 2 * IDLE - 2]  # the idle gap closed the first
    t = start = recorded[-1]
    while t < start + LONGEST + IDLE / 4:  # past LONGEST, short of a second LONGEST
        t += IDLE / 2
        now[0] = t
        await s.read(key, record)
    assert len(recorded) == 3  # busy all along, yet closed after LONGEST

    async def fails() -> None:
        raise RuntimeError("not recorded")

    with pytest.raises(RuntimeError):
        await s.read(("tok", "b" * 64, "session-1"), fails)
    await s.read(("tok", "b" * 64, "session-1"), record)  # a failed read opened nothing
    assert len(recorded) == 4
