"""The ledger core on SQLite and PostgreSQL: appends, receipts, chains, restarts, audit."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text, update

from ledger.audit import audit
from ledger.keys import LogKeyError
from ledger.models import RecordRow
from ledger.records import validate_event
from ledger.sequencer import IdempotencyConflict
from ledger.service import Ledger
from tests.conftest import make_event
from tests.test_merkle import ref_mth
from verifier import merkle
from verifier.checkpoint import open_checkpoint
from verifier.receipt import ENTRY_VERSION, Receipt


def post(lg: Ledger, events: list[dict[str, Any]], poster: str = "p1") -> list[Any]:
    subs = [validate_event(e, lg.catalogue) for e in events]
    return lg.append(subs, poster).result(timeout=60)


def test_receipts_verify_offline_and_chain_links(ledger_factory: Any) -> None:
    lg: Ledger = ledger_factory()
    vkey = lg.signer.verifier
    done = []
    for i in range(5):  # several batches of different sizes
        evs = [make_event(project=f"P{j % 3}") for j in range(i * 7 + 1)]
        done += post(lg, evs)
    assert [a.index for a in done] == list(range(len(done)))
    for a in done:
        receipt = lg.receipt(a.index, a.event_hash)
        again = Receipt.from_json(json.loads(json.dumps(receipt.to_json())))
        canonical, _ = lg.record(a.index)
        again.verify(vkey, json.loads(canonical))
    # Per-project chains: seq from 0, each prev the hash of the previous record.
    for p in ("P0", "P1", "P2"):
        rows = lg.project_records(p, -1, 1000)
        prev = bytes(32)
        for want_seq, (_, seq, canonical) in enumerate(rows):
            rec = json.loads(canonical)
            assert seq == rec["seq"] == want_seq
            assert base64.b64decode(rec["prev"]) == prev
            prev = merkle.hashlib.sha256(canonical).digest()


def test_tiles_and_roots_match_naive_reference(ledger_factory: Any) -> None:
    lg: Ledger = ledger_factory(max_batch=97)
    sizes = [1, 2, 3, 250, 6, 1, 300, 10]  # crosses tile boundaries at 256 and 512
    entries: list[bytes] = []
    for n in sizes:
        for a in post(lg, [make_event(project="T1") for _ in range(n)]):
            entries.append(ENTRY_VERSION + a.event_hash)
        head = lg.head()
        assert head.size == len(entries)
        assert head.root == ref_mth(entries)
    # Level-0 tiles hold the leaf hashes; level-1 tile 0 holds the root of tile 0/0.
    leaves = b"".join(merkle.leaf_hash(e) for e in entries)
    assert lg.tile(0, 0, None) == leaves[: 256 * 32]
    assert lg.tile(0, 1, None) == leaves[256 * 32 : 512 * 32]
    assert lg.tile(0, 2, len(entries) - 512) == leaves[512 * 32 :]
    assert lg.tile(1, 0, 2) == ref_mth(entries[:256]) + ref_mth(entries[256:512])
    bundle = lg.entry_bundle(0, None)
    assert bundle[:35] == b"\x00\x21" + entries[0]
    # Proofs for every pair of sizes agree with the reference.
    n = len(entries)
    for m in (1, 2, 255, 256, 257, 511, n - 1):
        merkle.verify_consistency(m, n, lg.consistency_proof(m, n), ref_mth(entries[:m]), head.root)
        merkle.verify_inclusion(
            m, n, merkle.leaf_hash(entries[m]), lg.inclusion_proof(m, n), head.root
        )


def test_idempotency_replays_and_conflicts(ledger_factory: Any) -> None:
    lg: Ledger = ledger_factory()
    ev = make_event(idempotency_key="k-1")
    [a] = post(lg, [ev])
    [b] = post(lg, [ev])
    assert b.replayed and b.index == a.index and b.event_hash == a.event_hash
    assert lg.head().size == 1
    # Another poster may use the same key for its own event.
    [c] = post(lg, [ev], poster="p2")
    assert not c.replayed and c.index == 1
    # Same key, different event: refused, and nothing of the batch is appended.
    changed = make_event(idempotency_key="k-1", payload={"method": "open_tender", "estimate": 1})
    with pytest.raises(IdempotencyConflict):
        post(lg, [make_event(), changed])
    assert lg.head().size == 2
    # A key repeated inside one batch appends once.
    x, y = post(lg, [make_event(idempotency_key="k-2"), make_event(idempotency_key="k-2")])
    assert x.index == y.index == 2 and y.replayed


def test_restart_keeps_log_and_key_and_stays_consistent(
    ledger_factory: Any, tmp_path: Path
) -> None:
    lg: Ledger = ledger_factory()
    post(lg, [make_event() for _ in range(300)])
    vkey = lg.signer.verifier.vkey
    old = lg.head()
    lg.close()
    lg2: Ledger = ledger_factory()
    assert lg2.signer.verifier.vkey == vkey
    assert lg2.head() == old
    post(lg2, [make_event() for _ in range(5)])
    new = lg2.head()
    cp_old = open_checkpoint(old.note, lg2.signer.verifier).checkpoint
    cp_new = open_checkpoint(new.note, lg2.signer.verifier).checkpoint
    merkle.verify_consistency(
        cp_old.size,
        cp_new.size,
        lg2.consistency_proof(cp_old.size, cp_new.size),
        cp_old.root,
        cp_new.root,
    )
    # seq continues across the restart.
    rows = lg2.project_records("E330100000001", 299, 10)
    assert [s for _, s, _ in rows] == [300, 301, 302, 303, 304]
    assert (tmp_path / "data" / "log.key").stat().st_mode & 0o777 == 0o600


def test_audit_catches_a_row_edited_in_the_database(ledger_factory: Any) -> None:
    lg: Ledger = ledger_factory()
    post(lg, [make_event(project=f"A{i % 2}") for i in range(40)])
    rep = audit(lg.store, lg.signer.verifier)
    assert rep.ok, rep.problems
    assert rep.records == 40
    canonical, _ = lg.record(7)
    forged = canonical.replace(b"4860000000", b"4860000001")
    with lg.store.engine.begin() as conn:
        conn.execute(update(RecordRow).where(RecordRow.idx == 7).values(record=forged))
    rep = audit(lg.store, lg.signer.verifier)
    assert not rep.ok
    assert any("record 7" in p for p in rep.problems), rep.problems
    # Dropping a record is named too.
    with lg.store.engine.begin() as conn:
        conn.execute(text("DELETE FROM records WHERE idx = 20"))
    rep = audit(lg.store, lg.signer.verifier)
    assert any("records 20..20 are missing" in p for p in rep.problems), rep.problems


def test_refuses_to_sign_after_a_database_rollback(ledger_factory: Any, tmp_path: Path) -> None:
    lg: Ledger = ledger_factory()
    post(lg, [make_event() for _ in range(3)])
    lg.close()
    # Simulate restoring an old backup: the newest checkpoint and record vanish.
    with lg.store.engine.begin() as conn:
        conn.execute(text("DELETE FROM checkpoints WHERE size = 3"))
    # Only the checkpoint went (not the database's mark with it): refused at start. A
    # whole older backup starts and refuses to append (tests/test_restore.py).
    with pytest.raises(LogKeyError, match="could fork the log"):
        Ledger.open(
            tmp_path / "data", str(lg.store.engine.url.render_as_string(False)), "test.example/log"
        )


def test_key_of_another_origin_is_refused(ledger_factory: Any, tmp_path: Path) -> None:
    lg: Ledger = ledger_factory()
    lg.close()
    with pytest.raises(LogKeyError, match="origin"):
        ledger_factory(origin="other.example/log")


def test_appends_go_on_when_the_high_water_mark_cannot_be_written(ledger_factory: Any) -> None:
    """The mark guards restarts; a full or broken disk for it must not stop the log."""
    lg = ledger_factory()
    mark = lg.data_dir / "log.head"
    assert not mark.exists()  # written after the first commit
    mark.mkdir()  # neither readable nor replaceable as a file
    try:
        for _ in range(3):
            lg.append([validate_event(make_event(), lg.catalogue)], "p").result(30)
        assert lg.head().size == 3
    finally:
        mark.rmdir()
