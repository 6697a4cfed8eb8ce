"""Expert draws through a real ``jianzheng serve`` (issue 17), on SQLite and PostgreSQL.

The platform commits (POST /v1/projects/{p}/draws, retried under its idempotency key),
the log grows past the draw's tree head, each party reveals its seed with its own token
(the platform's, the supervising department's reviewer token), the platform records the
derived result and a replacement in the derived order; the pool stays committed until
the winner is determined. The reviewer's bundle is verified by ``python -m verifier``,
and a tampered pool, seed, result or tree head is detected. A withheld reveal fails the
draw, which is re-run under fresh commitments.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.procs import ROOT, Server, jianzheng
from tests.servers import free_port
from tests.tender import EXPERTS
from tests.test_draw import RECORD_POOL, _replace
from tests.test_sealed import tender
from tests.test_witness_e2e import ORIGIN as WITNESSED_ORIGIN
from tests.test_witness_e2e import write_log_key
from tests.witness_procs import WitnessProc, wait_until
from verifier import merkle
from verifier.bundle import format as fmt
from verifier.draw import derive, parse_pool, seed_commitment, terms_from_record
from verifier.note import parse_vkey

P = "E330100000417"
SEEDS = {"platform": b"\x11" * 32, "department": b"\x22" * 32}


@dataclass
class Served:
    srv: Server
    data: Path
    db: str | None
    tok: dict[str, str]

    def client(self, role: str) -> httpx.Client:
        return httpx.Client(
            base_url=self.srv.url,
            headers={"Authorization": f"Bearer {self.tok[role]}"},
            timeout=30,
        )


def _token(data: Path, db: str | None, role: str, *scope: str) -> str:
    args = ["token", "create", "--data", str(data), "--role", role, *scope]
    if db is not None:
        args += ["--db", db]
    out: str = jianzheng(*args).stdout.split()[-1]
    return out


@pytest.fixture(params=["sqlite", "postgres"])
def served(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Served]:
    db = None if request.param == "sqlite" else str(request.getfixturevalue("fresh_pg_url"))
    data = tmp_path / "data"
    srv = Server(data, db, origin="draw.test/log")
    try:
        tok = {
            "platform": _token(data, db, "platform"),
            # The supervising department: a reviewer token limited to the project.
            "department": _token(data, db, "reviewer", "--project", P),
            "other_department": _token(data, db, "reviewer", "--project", "E330100000999"),
            "archivist": _token(data, db, "archivist"),
        }
        yield Served(srv, data, db, tok)
    finally:
        srv.stop()


def _now(minutes: float = 0) -> str:
    return (datetime.now(UTC) + timedelta(minutes=minutes)).isoformat(timespec="seconds")


def _commit_body(draw_id: str, seeds: dict[str, bytes], deadline: str) -> dict[str, Any]:
    return {
        "trade_type": "engineering",
        "actor": {"id": "PRTC-HZ", "role": "platform"},
        "occurred_at": _now(),
        "idempotency_key": f"commit-{draw_id}",
        "payload": {
            "draw_id": draw_id,
            "pool": RECORD_POOL,
            "count": len(EXPERTS),
            "excluded_units": ["U2"],
            "excluded_relations": ["B9"],
            **{
                f"{p}_seed_commitment": seed_commitment(draw_id, p, s).hex()
                for p, s in seeds.items()
            },
            "reveal_deadline": deadline,
        },
    }


def _grow_to(s: Served, size: int) -> None:
    """Append other projects' registrations until the log has ``size`` entries (bounded)."""
    with s.client("platform") as http:
        for n in range(64):
            have = http.get("/v1/log").json()["size"]
            if have >= size:
                return
            ev = {
                "project": f"E3301000008{n:02d}",
                "trade_type": "engineering",
                "type": "project_registered",
                "actor": {"id": "PRTC-HZ", "role": "platform"},
                "occurred_at": _now(),
                "payload": _registration(),
            }
            r = http.post("/v1/events", json=ev)
            assert r.status_code == 201, r.text
    raise AssertionError(f"the log did not reach {size} entries")


def _registration() -> dict[str, Any]:
    from tests.conftest import example_payload

    return example_payload("project_registered")


def _root_at(s: Served, size: int) -> bytes:
    """The log's root at ``size``, computed as any party can: from the public entry tiles."""
    assert size < 256
    with httpx.Client(base_url=s.srv.url, timeout=30) as http:
        width = http.get("/v1/log").json()["size"]
        body = http.get(f"/log/tile/entries/000.p/{min(width, 255)}")
        if body.status_code == 404:
            body = http.get("/log/tile/entries/000")
        assert body.status_code == 200, body.text
    data, entries = body.content, []
    while data and len(entries) < size:
        n = int.from_bytes(data[:2], "big")
        entries.append(data[2 : 2 + n])
        data = data[2 + n :]
    assert len(entries) == size
    return merkle.tree_root([merkle.leaf_hash(e) for e in entries])


def _reveal(s: Served, role: str, draw_id: str, seed: bytes, key: str = "") -> httpx.Response:
    body: dict[str, Any] = {"seed": seed.hex()}
    if key:
        body["idempotency_key"] = key
    with s.client(role) as http:
        return http.post(f"/v1/projects/{P}/draws/{draw_id}/reveals", json=body)


def _post(s: Served, evs: list[dict[str, Any]]) -> None:
    with s.client("platform") as http:
        r = http.post("/v1/events:batch", json={"events": evs})
        assert r.status_code == 201, r.text


def _up_to_the_draw(s: Served) -> tuple[list[dict[str, Any]], int]:
    """The tender of project P (its files uploaded) posted up to its expert draw; its
    events and the index of the draw's result among them."""
    evs, files = tender(P)
    at = next(n for n, e in enumerate(evs) if e["type"] == "expert_drawn")
    with s.client("platform") as http:
        for blob in files.values():
            assert http.post("/v1/objects", content=blob).status_code in (200, 201)
    _post(s, evs[:at])
    return evs, at


def _draw(s: Served, draw_id: str, seeds: dict[str, bytes], deadline: str) -> dict[str, Any]:
    """Commit a draw, grow the log past its tree head; the commitment's receipt."""
    with s.client("platform") as http:
        r = http.post(f"/v1/projects/{P}/draws", json=_commit_body(draw_id, seeds, deadline))
        assert r.status_code == 201, r.text
    receipt: dict[str, Any] = r.json()
    _grow_to(s, receipt["checkpoint_size"])
    return receipt


def _result(
    s: Served, evs: list[dict[str, Any]], at: int, draw_id: str, receipt: dict[str, Any]
) -> tuple[list[dict[str, Any]], list[str]]:
    """The rest of the tender from ``evs[at]`` (its expert_drawn) with the experts the draw
    derives, as the platform computes them (the pool it holds, the revealed seeds, the
    root at checkpoint_size from the public tiles), and a replacement in the derived order."""
    size = receipt["checkpoint_size"]
    fields = dict(_commit_body(draw_id, SEEDS, "")["payload"], checkpoint_size=size)
    order = derive(
        parse_pool(RECORD_POOL), terms_from_record(fields), SEEDS, size, _root_at(s, size)
    )
    text = json.dumps(evs[at:])
    for old, new in zip(EXPERTS, order, strict=False):
        text = text.replace(old, new)
    rest: list[dict[str, Any]] = json.loads(text)
    rest[0]["payload"].update(draw_id=draw_id, checkpoint_root=_root_at(s, size).hex())
    rest = _replace(rest, order[1], order[5])
    for e in rest:
        if e["type"] == "expert_replaced":
            e["payload"]["draw_id"] = draw_id
            e["idempotency_key"] = "replace-1"
    return rest, order


def _verify(bundle: Path, trust: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "verifier", str(bundle), "--trust", str(trust), "--format", "json"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )


def _export(s: Served, tmp: Path) -> tuple[Path, Path]:
    out = tmp / "bundle.zip"
    jianzheng(
        "bundle", "export", "--url", s.srv.url, "--token", s.tok["department"],
        "--project", P, "-o", str(out),
    )  # fmt: skip
    with httpx.Client(base_url=s.srv.url, timeout=30) as http:
        vkey = http.get("/v1/log").json()["verifier_key"]
    trust = tmp / "trust.txt"
    trust.write_text(f"log {vkey}\n")
    return out, trust


def _rewrite(src: Path, dst: Path, name: str, old: bytes, new: bytes) -> None:
    with zipfile.ZipFile(src) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    assert old in members[name], (name, old)
    members[name] = members[name].replace(old, new)
    with zipfile.ZipFile(dst, "w") as zf:
        for n, b in members.items():
            zf.writestr(n, b)


def test_a_draw_over_http_recomputed_offline(served: Served, tmp_path: Path) -> None:
    s = served
    evs, at = _up_to_the_draw(s)
    # Commit; a retry under the same key is answered with the first receipt, appending
    # nothing; another body under that key is refused.
    deadline = _now(60)
    body = _commit_body("D-1", SEEDS, deadline)
    with s.client("platform") as http:
        first = http.post(f"/v1/projects/{P}/draws", json=body)
        assert first.status_code == 201, first.text
        again = http.post(f"/v1/projects/{P}/draws", json=body)
        assert again.status_code == 200, again.text
        assert again.json()["index"] == first.json()["index"] and again.json()["replayed"]
        assert again.json()["checkpoint_size"] == first.json()["checkpoint_size"]
        other = json.loads(json.dumps(body))
        other["payload"]["count"] = 3
        clash = http.post(f"/v1/projects/{P}/draws", json=other)
        assert clash.status_code == 409, clash.text
        assert clash.json()["error"]["code"] == "idempotency_conflict"
        assert clash.json()["error"]["field"].endswith("idempotency_key")
    receipt = first.json()
    n = receipt["checkpoint_size"]
    assert n > receipt["index"]
    # One commitment only (the retry appended nothing). The pool is committed, not
    # readable: the supervisor's listing holds its commitment.
    with s.client("department") as http:
        listing = http.get(f"/v1/projects/{P}/events", params={"limit": 1000}).json()
    [com] = [r for r in listing["records"] if r["type"] == "draw_committed"]
    assert "pool" not in com["payload"] and "payload.pool" in com["commitments"]
    assert "EXP-2000" not in json.dumps(listing)
    # Before the tree head no one may reveal; a seed that does not open is refused.
    early = _reveal(s, "platform", "D-1", SEEDS["platform"])
    assert early.status_code == 409 and early.json()["error"]["code"] == "draw_head_pending"
    _grow_to(s, n)
    bad = _reveal(s, "platform", "D-1", b"\x33" * 32)
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "seed"
    assert _reveal(s, "archivist", "D-1", SEEDS["platform"]).status_code == 403
    assert _reveal(s, "other_department", "D-1", SEEDS["department"]).status_code == 404
    assert _reveal(s, "department", "D-9", SEEDS["department"]).status_code == 404
    r = _reveal(s, "platform", "D-1", SEEDS["platform"], key="reveal-p")
    assert r.status_code == 201, r.text
    assert r.json()["index"] >= n
    assert _reveal(s, "platform", "D-1", SEEDS["platform"], key="reveal-p").status_code == 200
    r = _reveal(s, "department", "D-1", SEEDS["department"], key="reveal-d")
    assert r.status_code == 201, r.text
    twice = _reveal(s, "department", "D-1", SEEDS["department"])
    assert twice.status_code == 409 and twice.json()["error"]["code"] == "already_revealed"
    rest, order = _result(s, evs, at, "D-1", receipt)
    _post(s, rest)

    out, trust = _export(s, tmp_path)
    v = _verify(out, trust)
    rep = json.loads(v.stdout)
    assert v.returncode == 0, [c for c in rep["checks"] if c["status"] not in ("pass", "warn")]
    heads = next(c for c in rep["checks"] if c["id"] == "draw_heads")
    assert heads["status"] == "pass" and "1 draw result(s)" in heads["message"]
    e08 = next(c for c in rep["checks"] if c["id"] == "E08")
    assert e08["status"] == "pass"
    with zipfile.ZipFile(out) as zf:
        recs = [json.loads(x) for x in zf.read(fmt.RECORDS).splitlines()]
        opened = zf.read(fmt.OPENINGS)
        line = zf.read(fmt.DRAW_HEADS)
    drawn = next(x for x in recs if x["type"] == "expert_drawn")
    assert drawn["payload"]["checkpoint_root"] == _root_at(s, n).hex()
    # Tampered: the pool (opened for the reviewer now), a seed, the result, the tree head.
    seed_hex = SEEDS["department"].hex().encode()
    root_b64 = json.loads(line)["root"].encode()
    tampers = {
        "pool": (fmt.OPENINGS, b"EXP-2000|U0|", b"EXP-2000|U1|"),
        "seed": (fmt.RECORDS, seed_hex, b"33" * 32),
        "result": (fmt.OPENINGS, f'"{order[0]}"'.encode(), f'"{order[-1]}"'.encode()),
        "head": (fmt.DRAW_HEADS, root_b64, b"A" * 43 + b"="),
    }
    assert b"EXP-2000|U0|" in opened
    for what, (name, old, new) in tampers.items():
        bad_zip = tmp_path / f"{what}.zip"
        _rewrite(out, bad_zip, name, old, new)
        t = _verify(bad_zip, trust)
        assert t.returncode == 1, (what, t.stdout[-2000:])
        failed = {c["id"] for c in json.loads(t.stdout)["checks"] if c["status"] == "fail"}
        assert failed, what


def test_a_bogus_reveal_in_a_party_s_name_does_not_lock_it_out(served: Served) -> None:
    """Any platform token can append a draw_seed_revealed naming the department through
    POST /v1/events. Such a reveal does not count (its seed does not open the commitment;
    the verifier takes the first valid reveal), so it must not stop the department's own:
    only a reveal that counts closes a party's turn."""
    s = served
    evs, _ = tender(P)
    _post(s, evs[:3])
    _draw(s, "D-B", SEEDS, _now(60))
    bogus = {
        "project": P,
        "trade_type": "engineering",
        "type": "draw_seed_revealed",
        "actor": {"id": "PRTC-HZ", "role": "department"},
        "occurred_at": _now(),
        "payload": {"draw_id": "D-B", "party": "department", "seed": "ab" * 32},
    }
    _post(s, [bogus])
    r = _reveal(s, "department", "D-B", SEEDS["department"])
    assert r.status_code == 201, r.text
    again = _reveal(s, "department", "D-B", SEEDS["department"])
    assert again.status_code == 409, again.text
    assert again.json()["error"]["code"] == "already_revealed"


def test_a_withheld_reveal_fails_the_draw_and_a_fresh_draw_follows(
    served: Served, tmp_path: Path
) -> None:
    """The department withholds its seed: at the deadline its reveal is refused, the
    platform records draw_failed naming it, and the draw is re-run with a fresh draw_id,
    fresh seeds and a later tree head; the verifier holds all of it lawful (E08)."""
    s = served
    evs, at = _up_to_the_draw(s)
    withheld = {"platform": b"\x44" * 32, "department": b"\x55" * 32}
    # Room for the commit, the log's growth past its tree head (16 appends) and the
    # platform's reveal on a slow machine; the deadline is written to the whole second.
    deadline = datetime.now(UTC) + timedelta(seconds=12)
    d0 = _draw(s, "D-0", withheld, deadline.isoformat(timespec="seconds"))
    early = _reveal(s, "platform", "D-0", withheld["platform"])
    assert early.status_code == 201, early.text
    # Bounded wait for the deadline to pass (the ledger's clock is the wall clock).
    for _ in range(200):
        if datetime.now(UTC) > deadline + timedelta(seconds=1):
            break
        time.sleep(0.1)
    late = _reveal(s, "department", "D-0", withheld["department"])
    assert late.status_code == 409, late.text
    assert late.json()["error"]["code"] == "reveal_deadline_passed"
    failed = {
        "project": P,
        "trade_type": "engineering",
        "type": "draw_failed",
        "actor": {"id": "PRTC-HZ", "role": "platform"},
        "occurred_at": _now(),
        "payload": {"draw_id": "D-0", "reason": "reveal_withheld", "missing_party": "department"},
    }
    _post(s, [failed])
    # The re-run: a fresh draw_id, fresh seeds, a later tree head.
    receipt = _draw(s, "D-1", SEEDS, _now(60))
    assert receipt["checkpoint_size"] > d0["checkpoint_size"]
    assert _reveal(s, "platform", "D-1", SEEDS["platform"]).status_code == 201
    assert _reveal(s, "department", "D-1", SEEDS["department"]).status_code == 201
    rest, _ = _result(s, evs, at, "D-1", receipt)
    _post(s, rest)
    out, trust = _export(s, tmp_path)
    v = _verify(out, trust)
    rep = json.loads(v.stdout)
    e08 = next(c for c in rep["checks"] if c["id"] == "E08")
    assert v.returncode == 0 and e08["status"] == "pass", e08
    assert hashlib.sha256(out.read_bytes()).hexdigest() == rep["bundle_sha256"]


def test_with_witnesses_a_reveal_waits_for_their_cosigned_tree_head(tmp_path: Path) -> None:
    """With witnesses, the seeds meet a tree head that k of them cosigned after both
    commitments: a reveal is refused (409 draw_head_pending) while the log has reached the
    draw's size but no quorum has cosigned it, and taken once the witness has."""
    data = tmp_path / "data"
    log_key = write_log_key(data)
    out = jianzheng(
        "witness", "add-log", "--data", str(tmp_path / "w"), "--name", "w.example/witness",
        "--vkey", log_key.verifier.vkey,
    )  # fmt: skip
    wkey = parse_vkey(out.stdout.strip().splitlines()[-1])
    port = free_port()  # the witness is down at first
    srv = Server(
        data, None, "--witness", f"{wkey.vkey}@http://127.0.0.1:{port}/witness",
        "--witness-quorum", "1", origin=WITNESSED_ORIGIN,
    )  # fmt: skip
    witness: WitnessProc | None = None
    try:
        tok = {r: _token(data, None, r) for r in ("platform",)}
        tok["department"] = _token(data, None, "reviewer", "--project", P)
        s = Served(srv, data, None, tok)
        _up_to_the_draw(s)
        n = _draw(s, "D-W", SEEDS, _now(60))["checkpoint_size"]
        early = _reveal(s, "department", "D-W", SEEDS["department"])
        assert early.status_code == 409, early.text
        err = early.json()["error"]
        assert err["code"] == "draw_head_pending" and f"tree head at size {n}" in err["message"]
        assert "cosigned" in err["message"]

        witness = WitnessProc(tmp_path / "w", port)

        def witnessed() -> bool:
            info = httpx.get(srv.url + "/v1/log", timeout=10).json()
            return int(info["witnessed_size"]) >= n

        wait_until(witnessed, 90, "the witness did not cosign the draw's tree head")
        for party in ("department", "platform"):
            r = _reveal(s, party, "D-W", SEEDS[party])
            assert r.status_code == 201, r.text
            assert r.json()["index"] >= n
    finally:
        srv.stop()
        if witness is not None:
            witness.stop()


def _project_records(s: Served) -> list[dict[str, Any]]:
    """Project P's records as the supervising department reads them."""
    with s.client("department") as h:
        r = h.get(f"/v1/projects/{P}/events", params={"limit": 1000})
    assert r.status_code == 200 and r.json()["next_after"] is None, r.text
    records: list[dict[str, Any]] = r.json()["records"]
    assert records
    return records


def test_hostile_reveals_are_refused_naming_the_problem(served: Served) -> None:
    """Malformed reveals (broken or deep JSON, NUL, huge or mistyped fields, a draw id
    that names nothing) get a 4xx naming the problem, never a 500; a key that is not a
    text is refused, not dropped; and nothing is appended for any of them."""
    s = served
    _up_to_the_draw(s)
    n = _draw(s, "D-1", SEEDS, _now(60))["checkpoint_size"]
    seed = SEEDS["platform"].hex()
    bodies = [
        b"{",
        b"[" * 100_000 + b"]" * 100_000,
        b'{"seed": "' + b"a" * 2_000_000 + b'"}',
        b'{"seed": "\\u0000' + b"0" * 63 + b'"}',
        b'{"seed": 1e999}',
        b"\x00\xff",
        b'{"seed": "' + b"AB" * 32 + b'"}',
        b'{"seed": "' + seed.encode() + b'", "extra": 1}',
    ]
    with s.client("platform") as h:
        # The project's own records, not the log's size: the alert worker may append an
        # alert_raised (about the tender) to the supervision chain at any moment.
        before = _project_records(s)
        for draw in ("D-1", "D%00", "x" * 200):
            for body in bodies:
                r = h.post(
                    f"/v1/projects/{P}/draws/{draw}/reveals",
                    content=body,
                    headers={"Content-Type": "application/json"},
                )
                assert 400 <= r.status_code < 500, (draw, body[:20], r.status_code, r.text)
                assert r.json()["error"]["message"], r.text
        for key in ({"a": 1}, 12, "k" * 100_000):
            r = h.post(
                f"/v1/projects/{P}/draws/D-1/reveals", json={"seed": seed, "idempotency_key": key}
            )
            assert r.status_code == 422, (key, r.text)
            assert r.json()["error"]["field"] == "idempotency_key", r.text
        assert _project_records(s) == before
        ok = h.post(f"/v1/projects/{P}/draws/D-1/reveals", json={"seed": seed})
        assert ok.status_code == 201 and ok.json()["index"] >= n, ok.text
