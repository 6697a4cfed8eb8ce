"""Restore without a fork (issue 16): a node whose database is behind a checkpoint it, or
a configured witness, has seen starts, refuses to append and says why.

The backup is taken 1,000 events before the restore: a copy of the SQLite file, or a
PostgreSQL database copied with ``CREATE DATABASE ... TEMPLATE``.
"""

from __future__ import annotations

import contextlib
import secrets
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg import sql
from sqlalchemy.engine import make_url

from api.app import create_app
from api.auth import create_token
from ledger.records import validate_event
from ledger.sequencer import LogBehind
from ledger.service import Ledger
from ledger.witnessing.submitter import WitnessEndpoint, Witnessing
from tests.conftest import make_event
from tests.fixtures_servers import libpq_url
from tests.procs import jianzheng
from tests.witness_procs import WitnessProc, wait_until
from verifier.note import Signer, parse_vkey

ORIGIN = "restore.example/log"
BEHIND_BY = 1000


def post(lg: Ledger, n: int) -> None:
    for start in range(0, n, 250):
        evs = [make_event(project="E330100000007") for _ in range(min(250, n - start))]
        lg.append([validate_event(e, lg.catalogue) for e in evs], "p").result(60)


@contextlib.contextmanager
def backup_of(lg: Ledger, url: str, tmp_path: Path) -> Iterator[str]:
    """A copy of the ledger's database as it is now; its URL."""
    u = make_url(url)
    if u.get_backend_name() == "sqlite":
        copy = tmp_path / "backup.db"
        src, dst = sqlite3.connect(str(u.database)), sqlite3.connect(str(copy))
        with dst:
            src.backup(dst)
        src.close()
        dst.close()
        yield f"sqlite:///{copy}"
        return
    name = f"b_{secrets.token_hex(6)}"
    lg.store.engine.dispose()  # TEMPLATE needs the source without sessions
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(str(u.database))
            )
        )
    try:
        yield u.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(libpq_url(url), autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def test_a_node_on_a_restored_backup_refuses_to_append_and_says_why(
    db_url: str, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    lg = Ledger.open(data, db_url, ORIGIN)
    post(lg, 300)
    with backup_of(lg, db_url, tmp_path) as backup:
        post(lg, BEHIND_BY)
        head = lg.head()
        lg.close()

        restored = Ledger.open(data, backup, ORIGIN)  # starts: reads stay available
        try:
            assert restored.head().size == 300
            why = restored.behind()
            assert why is not None and f"signed a checkpoint of size {head.size}" in why
            with pytest.raises(LogBehind, match="holds 300 entries"):
                post(restored, 1)
            assert restored.head().size == 300  # nothing signed on the old history
            admin = create_token(restored.store, "admin")[1]
            auth = {"Authorization": f"Bearer {admin}"}
            with TestClient(create_app(restored, rate_limit=0)) as c:
                r = c.post("/v1/events", json=make_event(), headers=auth)
                assert r.status_code == 503, r.text
                err = r.json()["error"]
                assert err["code"] == "behind" and "would fork the log" in err["message"]
                assert r.headers["Retry-After"] == "30"
                assert c.get("/healthz").status_code == 200  # the process is alive
                r = c.get("/healthz/ready")
                assert r.status_code == 503
                body = r.json()
                assert (body["status"], body["sequencer"], body["database"]) == (
                    "not_ready",
                    "behind",
                    "ok",
                )
                assert f"size {head.size}" in body["reason"]
                assert c.get("/v1/log").json()["size"] == 300
        finally:
            restored.close()

    # The newest database back in place: the node appends again, on the one history.
    lg = Ledger.open(data, db_url, ORIGIN)
    try:
        assert lg.behind() is None
        post(lg, 1)
        assert lg.head().size == head.size + 1
        assert lg.reader.root(head.size) == head.root
    finally:
        lg.close()


def test_a_witness_ahead_of_the_database_stops_appends(fresh_pg_url: str, tmp_path: Path) -> None:
    """A new node (no mark of its own: --log-key, an empty data dir) restored from a
    backup learns from the witness that the log went further, and refuses to append."""
    signer = Signer.generate(ORIGIN)
    key = tmp_path / "log.key"
    key.write_text(signer.skey + "\n")
    key.chmod(0o600)
    out = jianzheng(
        "witness", "add-log", "--data", str(tmp_path / "w"), "--name", "w.example/witness",
        "--vkey", signer.verifier.vkey,
    )  # fmt: skip
    wkey = parse_vkey(out.stdout.strip().splitlines()[-1])
    witness = WitnessProc(tmp_path / "w")
    endpoint = WitnessEndpoint.parse(f"{wkey.vkey}@{witness.prefix}")
    try:
        lg = Ledger.open(tmp_path / "a", fresh_pg_url, log_key=key)
        w: Any = Witnessing.start(lg, [endpoint])
        post(lg, 300)
        wait_until(lambda: witness.size() == 300, 60, "the witness did not cosign")
        w.close()  # no session may use the database while it is copied
        lg.close()
        with backup_of(lg, fresh_pg_url, tmp_path) as backup:
            lg = Ledger.open(tmp_path / "a", fresh_pg_url, log_key=key)
            w = Witnessing.start(lg, [endpoint])
            post(lg, BEHIND_BY)
            wait_until(lambda: witness.size() == 1300, 60, "the witness did not cosign")
            w.close()
            lg.close()

            node = Ledger.open(tmp_path / "b", backup, log_key=key)
            w = Witnessing.start(node, [endpoint])
            try:
                assert node.head().size == 300
                wait_until(lambda: node.behind() is not None, 30, "the witness was not asked")
                assert "w.example/witness has cosigned a checkpoint of size 1300" in str(
                    node.behind()
                )
                with pytest.raises(LogBehind, match="holds 300 entries"):
                    post(node, 1)
                assert node.head().size == 300
            finally:
                w.close()
                node.close()
    finally:
        witness.stop()
