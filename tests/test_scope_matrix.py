"""Scopes, judged by the project's stored trade type (issue 10 §1), on every path.

The matrix: every read and write path × unlimited, project-scoped and trade-type-scoped
tokens (in and out of scope) × every role. In scope, each role gets what its role allows;
out of scope, a read gets a 404 identical to that for a missing project (or index, or
file), a post 403; a role that may not use the path gets 403 whatever its scope.

Then the cross-sector attack of the issue, and the two access-chain requests that were 500s.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import create_token, make_scope
from ledger.service import Ledger
from storage.fs import FilesystemStore
from storage.service import EvidenceStore
from tests.conftest import example_payload, make_event, notice_event

GP = "G3301000001"  # a procurement project
EP = "E3301000001"  # an engineering project
NOTICE = b"procurement notice, published 2026-03-02" * 40
ROLES = ("platform", "reviewer", "archivist", "admin")
READERS = ("reviewer", "archivist", "admin")
#: name -> (projects, trade types) of the token's scope, and whether GP is in it.
SCOPES: dict[str, tuple[list[str], list[str], bool]] = {
    "unlimited": ([], [], True),
    "project": ([GP], [], True),
    "trade_type": ([], ["procurement"], True),
    "other_project": ([EP], [], False),
    "other_trade_type": ([], ["engineering"], False),
}
ABSENT_SHA = "0" * 64
ABSENT_INDEX = 10**9


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def h(token: str, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **extra}


def procurement(type_: str = "project_registered", **over: Any) -> dict[str, Any]:
    return make_event(project=GP, type_=type_, trade_type="procurement", **over)


class Env:
    def __init__(self, c: TestClient, lg: Ledger) -> None:
        self.c = c
        self.lg = lg
        self.tok: dict[tuple[str, str], str] = {}
        for role, (name, (projects, trade_types, _)) in itertools.product(ROLES, SCOPES.items()):
            scope = make_scope(projects, trade_types)
            self.tok[role, name] = create_token(lg.store, role, scope=scope)[1]
        self.keys = itertools.count()

    def post(self, ev: dict[str, Any], token: str | None = None) -> int:
        token = token or self.tok["platform", "unlimited"]
        r = self.c.post("/v1/events", json=ev, headers=h(token))
        assert r.status_code == 201, r.text
        index: int = r.json()["index"]
        return index


@pytest.fixture
def env(ledger_factory: Any, tmp_path: Path) -> Iterator[Env]:
    lg: Ledger = ledger_factory()
    objects = EvidenceStore(FilesystemStore(tmp_path / "objects"), lg.store.engine)
    try:
        with TestClient(create_app(lg, rate_limit=0, objects=objects)) as c:
            yield Env(c, lg)
    finally:
        objects.close()


@dataclass(frozen=True)
class Route:
    """One way to touch GP's evidence: the request, the roles it admits, and the request
    for something absent that an out-of-scope read must be indistinguishable from."""

    method: str
    url: str
    roles: tuple[str, ...]
    ok: frozenset[int]
    scoped: bool = True
    absent_url: str | None = None
    body: Any = None
    headers: dict[str, str] | None = None
    #: Roles admitted by the path but never to a file some record cites (they get 404).
    never: tuple[str, ...] = ()


def paths(e: Env, record: int, access_record: int, size: int) -> dict[str, Route]:
    notice = sha(NOTICE)
    obj = f"/v1/objects/{notice}"
    absent_obj = f"/v1/objects/{ABSENT_SHA}"

    def event() -> dict[str, Any]:
        return procurement("clarification_issued", idempotency_key=f"m{next(e.keys)}")

    ok200 = frozenset({200})
    return {
        "record": Route(
            "GET", f"/v1/events/{record}", READERS, ok200, absent_url=f"/v1/events/{ABSENT_INDEX}"
        ),
        "access_record": Route(
            "GET",
            f"/v1/events/{access_record}",
            READERS,
            ok200,
            absent_url=f"/v1/events/{ABSENT_INDEX}",
        ),
        "listing": Route(
            "GET", f"/v1/projects/{GP}/events", READERS, ok200, absent_url="/v1/projects/NO/events"
        ),
        # A page that starts after the first record: the page is not what decides.
        "listing_page": Route(
            "GET",
            f"/v1/projects/{GP}/events?after=0",
            READERS,
            ok200,
            absent_url="/v1/projects/NO/events?after=0",
        ),
        "access_log": Route(
            "GET", f"/v1/projects/{GP}/access", READERS, ok200, absent_url="/v1/projects/NO/access"
        ),
        "bundle": Route(
            "GET", f"/v1/projects/{GP}/bundle", READERS, ok200, absent_url="/v1/projects/NO/bundle"
        ),
        # Before the project's opening: 409 sealed in scope (whatever its bids), 404 outside.
        "indicators": Route(
            "GET",
            f"/v1/projects/{GP}/indicators",
            READERS,
            frozenset({409}),
            absent_url="/v1/projects/NO/indicators",
        ),
        "object": Route(
            "GET",
            obj,
            ("platform", *READERS),
            ok200,
            absent_url=absent_obj,
            never=("platform",),
        ),
        "object_range": Route(
            "GET",
            obj,
            ("platform", *READERS),
            frozenset({206}),
            absent_url=absent_obj,
            headers={"Range": "bytes=0-9"},
            never=("platform",),
        ),
        "object_chunk": Route(
            "GET",
            f"{obj}/chunks/0",
            ("platform", *READERS),
            ok200,
            absent_url=f"{absent_obj}/chunks/0",
            never=("platform",),
        ),
        "legal_hold": Route(
            "POST",
            f"{obj}/legal-hold",
            ("reviewer", "admin"),
            ok200,
            absent_url=f"{absent_obj}/legal-hold",
            body={"hold": True},
        ),
        # Proofs are over the public tree (the tiles need no token): no project to scope.
        "inclusion_proof": Route(
            "GET",
            f"/v1/proofs/inclusion?index={record}&tree_size={size}",
            READERS,
            ok200,
            scoped=False,
        ),
        "consistency_proof": Route(
            "GET", f"/v1/proofs/consistency?first=1&second={size}", READERS, ok200, scoped=False
        ),
        # Writes. Posting to a project outside the scope is 403 (posting may create it).
        "post": Route("POST", "/v1/events", ("platform", "admin"), frozenset({201}), body=event),
        "post_batch": Route(
            "POST",
            "/v1/events:batch",
            ("platform", "admin"),
            frozenset({201}),
            body=lambda: {"events": [event(), event()]},
        ),
        # An upload belongs to no project until a record cites it.
        "upload": Route(
            "POST",
            "/v1/objects",
            ("platform", "admin"),
            frozenset({200, 201}),
            scoped=False,
            body=b"an upload",
        ),
    }


def request(e: Env, token: str, p: Route, url: str | None = None) -> Any:
    body = p.body() if callable(p.body) else p.body
    kw: dict[str, Any] = {"content": body} if isinstance(body, bytes) else {"json": body}
    headers = h(token, **(p.headers or {}))
    return e.c.request(p.method, url or p.url, headers=headers, **kw)


def expected(p: Route, role: str, in_scope: bool) -> frozenset[int]:
    if role not in p.roles:
        return frozenset({403})
    if role in p.never:
        return frozenset({404})
    if in_scope or not p.scoped:
        return p.ok
    return frozenset({403}) if p.method == "POST" and p.absent_url is None else frozenset({404})


def setup_projects(e: Env) -> tuple[int, int]:
    """GP (procurement, citing NOTICE) and EP (engineering); one read of GP recorded."""
    r = e.c.post("/v1/objects", content=NOTICE, headers=h(e.tok["platform", "unlimited"]))
    assert r.status_code == 201, r.text
    att = {"sha256": sha(NOTICE), "size": len(NOTICE), "media_type": "application/pdf"}
    att["name"] = "notice.pdf"
    record = e.post(procurement(attachments=[att]))
    e.post(procurement("procurement_plan_filed"))
    e.post(make_event(project=EP))
    e.c.get(f"/v1/events/{record}", headers=h(e.tok["reviewer", "unlimited"])).raise_for_status()
    [access] = e.lg.project_records(f"{GP}~access", -1, 10)
    return record, access[0]


def test_scope_matrix(env: Env) -> None:
    record, access_record = setup_projects(env)
    size = env.lg.head().size
    table = paths(env, record, access_record, size)
    wrong: list[str] = []
    for (name, p), role, (scope, (_, _, in_scope)) in itertools.product(
        table.items(), ROLES, SCOPES.items()
    ):
        token = env.tok[role, scope]
        got = request(env, token, p)
        want = expected(p, role, in_scope)
        if got.status_code not in want:
            wrong.append(f"{name} {role}/{scope}: {got.status_code}, want {sorted(want)}")
            continue
        if got.status_code == 404 and p.absent_url is not None:
            # Out of scope reads exactly like absent: the same error, nothing named.
            absent = request(env, token, p, p.absent_url).json()
            mine = json.dumps(got.json())
            for real, fake in ((sha(NOTICE), ABSENT_SHA), (f"index {record}", "index X")):
                mine = mine.replace(real, fake)
            mine = mine.replace(f"index {access_record}", "index X")
            theirs = json.dumps(absent).replace(f"index {ABSENT_INDEX}", "index X")
            if mine != theirs or GP in got.text:
                wrong.append(f"{name} {role}/{scope}: 404 unlike absent: {mine} vs {theirs}")
    assert wrong == []


def test_a_project_without_records_is_404_for_every_reader(env: Env) -> None:
    """Even for a token whose project list names it: nothing tells it from out of scope."""
    setup_projects(env)
    for role, scope in itertools.product(READERS, ("unlimited", "project", "trade_type")):
        t = env.tok[role, scope]
        for url in ("/v1/projects/NO/events", "/v1/projects/NO/access", "/v1/projects/NO/bundle"):
            r = env.c.get(url, headers=h(t))
            assert r.status_code == 404, (url, role, scope, r.text)
            assert r.json()["error"]["message"] == "no such project"
    t = create_token(env.lg.store, "reviewer", scope=make_scope(["NO"]))[1]
    assert env.c.get("/v1/projects/NO/events", headers=h(t)).status_code == 404


# --- the attack of issue 10 §1 ---------------------------------------------------------


def bid(project: str, trade_type: str, file: bytes) -> dict[str, Any]:
    return make_event(
        project=project,
        type_="bid_submitted",
        trade_type=trade_type,
        payload=example_payload("bid_submitted", bidder="91330100MA00027001", price=4_650_100_000),
        actor={"id": "91330100MA00027001", "role": "bidder"},
        attachments=[
            {"sha256": sha(file), "size": len(file), "media_type": "application/pdf", "name": "b"}
        ],
    )


def opening(project: str, trade_type: str) -> dict[str, Any]:
    return make_event(
        project=project,
        type_="bid_opening_started",
        trade_type=trade_type,
        payload={"opening_at": "2026-03-25T10:00:00+08:00", "place": "开标室3"},
    )


def test_an_engineering_poster_cannot_open_a_procurement_projects_bids(env: Env) -> None:
    platform = env.tok["platform", "unlimited"]
    file = b"sealed procurement bid" * 100
    env.c.post("/v1/objects", content=file, headers=h(platform)).raise_for_status()
    env.post(procurement())
    env.post(notice_event(GP, trade_type="procurement"))  # bids follow a notice (O01)
    bid_index = env.post(bid(GP, "procurement", file))
    size = env.lg.head().size

    # An engineering-scoped platform token declares its own sector for a procurement project.
    engineering_poster = env.tok["platform", "other_trade_type"]
    r = env.c.post("/v1/events", json=opening(GP, "engineering"), headers=h(engineering_poster))
    assert r.status_code == 422, r.text
    err = r.json()["error"]
    assert err["field"] == "trade_type" and "procurement" in err["message"]
    # The same in a batch: the whole batch is refused, its valid first event too.
    batch = {"events": [make_event(project="E-NEW"), opening(GP, "engineering")]}
    r = env.c.post("/v1/events:batch", json=batch, headers=h(engineering_poster))
    assert r.status_code == 422 and r.json()["error"]["field"] == "events[1].trade_type"
    # Even an unlimited poster may not change a project's trade type.
    r = env.c.post("/v1/events", json=opening(GP, "engineering"), headers=h(platform))
    assert r.status_code == 422 and r.json()["error"]["field"] == "trade_type"
    assert env.lg.head().size == size, "a refused event committed something"
    assert env.lg.project_records("E-NEW", -1, 10) == []

    # So the bids stay sealed for the procurement reviewer: no opening was recorded.
    reviewer = env.tok["reviewer", "trade_type"]
    assert env.c.get(f"/v1/events/{bid_index}", headers=h(reviewer)).status_code == 404
    assert env.c.get(f"/v1/objects/{sha(file)}", headers=h(reviewer)).status_code == 404
    listing = env.c.get(f"/v1/projects/{GP}/events", headers=h(reviewer))
    assert listing.status_code == 200 and "91330100MA00027001" not in listing.text

    # The real opening, by a poster in scope; then the project's later records stay out
    # of the engineering reviewer's reach, whichever page and whichever record it asks for.
    later = env.post(opening(GP, "procurement"))
    engineering_reviewer = env.tok["reviewer", "other_trade_type"]
    for url in (
        f"/v1/projects/{GP}/events",
        f"/v1/projects/{GP}/events?after=1",
        f"/v1/projects/{GP}/access",
        f"/v1/projects/{GP}/bundle",
        f"/v1/events/{later}",
        f"/v1/events/{bid_index}",
        f"/v1/objects/{sha(file)}",
    ):
        assert env.c.get(url, headers=h(engineering_reviewer)).status_code == 404, url
    assert env.c.get(f"/v1/objects/{sha(file)}", headers=h(reviewer)).content == file


# --- issue 10 §4: the access chain's two 500s ----------------------------------------------


def test_an_access_record_is_read_by_index_and_its_read_recorded_in_the_same_chain(
    env: Env,
) -> None:
    record, access_record = setup_projects(env)
    for scope in ("unlimited", "project", "trade_type"):
        r = env.c.get(f"/v1/events/{access_record}", headers=h(env.tok["archivist", scope]))
        assert r.status_code == 200, r.text
        got = r.json()["record"]
        assert got["project"] == f"{GP}~access" and got["type"] == "evidence_accessed"
        assert got["payload"] == {"what": "record", "index": record}
    reads = [json.loads(x) for _, _, x in env.lg.project_records(f"{GP}~access", -1, 100)]
    assert [x["payload"] for x in reads[1:]] == [{"what": "record", "index": access_record}] * 3
    assert env.lg.project_records(f"{GP}~access~access", -1, 10) == []


@pytest.mark.parametrize("what", ["events", "access", "bundle"])
def test_an_access_chain_is_no_project_code(env: Env, what: str) -> None:
    setup_projects(env)
    r = env.c.get(f"/v1/projects/{GP}~access/{what}", headers=h(env.tok["reviewer", "unlimited"]))
    assert r.status_code == 422, r.text
    assert r.json()["error"]["field"] == "project"
