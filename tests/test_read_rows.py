"""Store.read_rows on SQLite keeps one connection per thread (issue 18): each read still
sees the newest commit, from any process, and a failed connection is replaced."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from ledger.store import Store, make_engine, migrate


def _store(path: Path) -> Store:
    engine = make_engine(f"sqlite:///{path}")
    migrate(engine)
    return Store(engine)


def test_each_read_sees_the_newest_commit_of_another_writer(tmp_path: Path) -> None:
    db = tmp_path / "ledger.db"
    reader = _store(db)
    other = Store(make_engine(f"sqlite:///{db}"))  # as another worker process would
    first = reader.auth_epoch()
    assert reader.auth_epoch() == first  # the same kept connection, read again
    with other.writer() as conn:
        other.bump_auth_epoch(conn)
    # A revocation applies at the next read: no snapshot is held between reads.
    assert reader.auth_epoch() == first + 1
    with other.writer() as conn:
        other.bump_auth_epoch(conn)
        other.bump_auth_epoch(conn)
    assert reader.auth_epoch() == first + 3

    # Another thread reads on a connection of its own and sees the same.
    seen: list[int] = []
    t = threading.Thread(target=lambda: seen.append(reader.auth_epoch()))
    t.start()
    t.join(30)
    assert seen == [first + 3]


def test_a_failed_connection_is_replaced(tmp_path: Path) -> None:
    reader = _store(tmp_path / "ledger.db")
    before = reader.auth_epoch()
    kept = reader._reads.con  # type: ignore[union-attr]
    assert isinstance(kept, sqlite3.Connection)
    kept.close()  # as if it had broken: the next read fails and drops it
    with pytest.raises(sqlite3.ProgrammingError):
        reader.auth_epoch()
    assert reader.auth_epoch() == before
    assert reader._reads.con is not kept  # type: ignore[union-attr]
