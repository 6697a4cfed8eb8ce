"""Several nodes on one database (issue 16): one history, never two trees of one size.

Each node is a :class:`Ledger` with its own data directory (no shared filesystem beyond
the database), on SQLite and on a real PostgreSQL.
"""

from __future__ import annotations

import base64
import shutil
import threading
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from fastapi.testclient import TestClient
from sqlalchemy import text

from api.app import create_app
from api.auth import create_token
from ledger.keys import KEY_FILE, read_high_water
from ledger.records import validate_event
from ledger.service import Ledger
from ledger.store import StoreError
from tests.conftest import make_event
from verifier import merkle
from verifier.checkpoint import open_checkpoint


def post(lg: Ledger, n: int, project: str, poster: str = "p1") -> list[Any]:
    subs = [validate_event(make_event(project=project), lg.catalogue) for _ in range(n)]
    return lg.append(subs, poster).result(timeout=60)


def second_node(ledger_factory: Any, first: Ledger, tmp_path: Path, name: str) -> Ledger:
    """Another node on the same database: its own data directory, the log's key."""
    data = tmp_path / name
    data.mkdir()
    shutil.copy2(first.data_dir / KEY_FILE, data / KEY_FILE)
    node: Ledger = ledger_factory(data)
    return node


def checkpoints(lg: Ledger) -> list[tuple[int, bytes, str]]:
    with lg.store.reader() as conn:
        rows = conn.execute(text("SELECT size, root, note FROM checkpoints ORDER BY size")).all()
    return [(int(r[0]), bytes(r[1]), str(r[2])) for r in rows]


def test_two_nodes_on_one_database_sign_one_history(ledger_factory: Any, tmp_path: Path) -> None:
    a: Ledger = ledger_factory()
    b = second_node(ledger_factory, a, tmp_path, "node-b")
    per_thread, rounds = 5, 12
    errors: list[BaseException] = []

    def run(node: Ledger, project: str) -> None:
        try:
            for _ in range(rounds):
                post(node, per_thread, project)
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [
        threading.Thread(target=run, args=(node, f"E33010000000{i}"))
        for i, node in enumerate((a, b, a, b))
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads)
    assert errors == []
    total = 4 * per_thread * rounds
    head = a.head()
    assert head.size == b.head().size == total
    # Both nodes signed (each appended at least once after the other moved the head).
    cps = checkpoints(a)
    sizes = [s for s, _, _ in cps]
    assert len(sizes) == len(set(sizes))  # never two checkpoints of one size
    # Every checkpoint either node signed is a prefix of the final tree.
    for size, root, note in cps:
        open_checkpoint(note, a.signer.verifier)
        assert a.reader.root(size) == root
        if size < head.size:
            proof = a.reader.consistency_proof(size, head.size)
            merkle.verify_consistency(size, head.size, proof, root, head.root)
    with a.store.reader() as conn:
        assert a.store.high_water(conn) == (head.size, head.root)
    # Each node's own mark (its data directory) lies on the same history.
    for node in (a, b):
        writer = node.sequencer._high_water
        assert writer is not None and writer.flush()
        mark = read_high_water(node.data_dir)
        assert mark is not None and mark[0] <= head.size
        assert a.reader.root(mark[0]) == mark[1]


def test_a_moved_high_water_mark_stops_signing(ledger_factory: Any) -> None:
    """Another signer that moved the mark (without the writer lock: another release, a
    lock on another database) makes this node's batch fail whole; nothing is signed."""
    lg: Ledger = ledger_factory()
    post(lg, 3, "E330100000001")
    before = checkpoints(lg)
    with lg.store.engine.begin() as conn:
        conn.execute(text("UPDATE log_high_water SET size = size + 1 WHERE id = 1"))
    with pytest.raises(StoreError, match="high-water mark is at size 4, beyond"):
        post(lg, 2, "E330100000001")
    assert checkpoints(lg) == before
    assert lg.head().size == 3
    with lg.store.engine.begin() as conn:  # the mark back where the log is: appends go on
        conn.execute(text("UPDATE log_high_water SET size = 3 WHERE id = 1"))
    assert [x.index for x in post(lg, 2, "E330100000001")] == [3, 4]


def test_a_mark_ahead_of_the_checkpoints_refuses_to_open(ledger_factory: Any) -> None:
    lg: Ledger = ledger_factory()
    post(lg, 2, "E330100000001")
    with lg.store.engine.begin() as conn:
        conn.execute(text("UPDATE log_high_water SET size = 9 WHERE id = 1"))
    lg.close()
    with pytest.raises(Exception, match="high-water mark \\(size 9\\)"):
        ledger_factory()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_a_revocation_on_one_node_applies_on_the_other_at_once(
    ledger_factory: Any, tmp_path: Path
) -> None:
    """No sleep: the very next request on the other node is refused (issue 16)."""
    a: Ledger = ledger_factory()
    b = second_node(ledger_factory, a, tmp_path, "node-b")
    admin = create_token(a.store, "admin")[1]
    victim_id, victim = create_token(a.store, "admin")
    with (
        TestClient(create_app(a, rate_limit=0)) as na,
        TestClient(create_app(b, rate_limit=0)) as nb,
    ):
        # Node B has the token cached (its cache would trust it for CACHE_SECONDS).
        assert nb.get("/v1/tokens", headers=bearer(victim)).status_code == 200
        assert nb.get("/v1/tokens", headers=bearer(victim)).status_code == 200
        r = na.delete(f"/v1/tokens/{victim_id}", headers=bearer(admin))
        assert r.status_code == 200, r.text
        r = nb.get("/v1/tokens", headers=bearer(victim))
        assert r.status_code == 401, r.text
        # Another token, cached on B before the revocation, is read again and still works.
        assert nb.get("/v1/tokens", headers=bearer(admin)).status_code == 200


def test_a_poster_key_change_on_one_node_applies_on_the_other_at_once(
    ledger_factory: Any, tmp_path: Path
) -> None:
    a: Ledger = ledger_factory()
    b = second_node(ledger_factory, a, tmp_path, "node-b")
    admin = create_token(a.store, "admin")[1]
    poster, token = create_token(a.store, "platform")
    key = Ed25519PrivateKey.generate()
    public = base64.b64encode(key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))
    with (
        TestClient(create_app(a, rate_limit=0)) as na,
        TestClient(create_app(b, rate_limit=0)) as nb,
    ):
        # B caches "no key" for the poster while it posts unsigned events.
        r = nb.post("/v1/events", json=make_event(project="K3"), headers=bearer(token))
        assert r.status_code == 201, r.text
        body = {"public_key": public.decode(), "required": True}
        r = na.put(f"/v1/tokens/{poster}/poster-key", json=body, headers=bearer(admin))
        assert r.status_code == 200, r.text
        r = nb.post("/v1/events", json=make_event(project="K3"), headers=bearer(token))
        assert r.status_code == 422, r.text
        assert r.json()["error"]["code"] == "signature_required"


def test_a_mark_trailing_the_head_is_no_fork(ledger_factory: Any) -> None:
    """A node of a release before the mark appended without moving it: the row trails the
    head on the same tree. Newer nodes open and sign on, and the mark catches up."""
    lg: Ledger = ledger_factory()
    post(lg, 3, "E330100000001")
    post(lg, 4, "E330100000001")
    with lg.store.engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE log_high_water SET size = 3, root = "
                "(SELECT root FROM checkpoints WHERE size = 3) WHERE id = 1"
            )
        )
    lg.close()
    lg = ledger_factory()
    assert [x.index for x in post(lg, 1, "E330100000001")] == [7]
    with lg.store.reader() as conn:
        assert lg.store.high_water(conn) == (8, lg.head().root)
