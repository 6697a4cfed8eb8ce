"""Who gathers cosignatures and timestamps: one leader among worker processes and nodes.

Two kinds of lock elect the leader (:class:`ledger.witnessing.submitter.WorkerWitnessing`):

- :class:`FileLeaderLock`, an exclusive ``flock`` on ``<data>/witnessing.lock``: worker
  processes of one node on SQLite (one host, one data directory);
- :class:`PgLeaderLock`, a PostgreSQL session advisory lock held on a connection of its
  own: every worker process of every node on one database (issue 16). The lock goes with
  the session, so a leader that dies frees it at once; one whose host vanishes or drops
  off the network frees it when the session's short TCP keepalives fail (about 4 s); one
  that is frozen (stopped, a paused VM, a hung process whose kernel still answers
  keepalives) frees it when the server ends its idle session (``idle_session_timeout``,
  :data:`PgLeaderLock.IDLE_TIMEOUT`: the leader's watch thread queries the lock every
  :data:`PgLeaderLock.POLL` second, so only a process that stopped running goes idle).
  A follower that asks every :data:`PgLeaderLock.POLL` seconds then takes over within
  5 s.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
from pathlib import Path
from typing import Protocol

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from ledger.store import PG_WRITER_LOCK

log = logging.getLogger("jianzheng.witnessing")

#: The advisory lock naming the witnessing leader (the writer's + 1 is the migration's).
PG_WITNESS_LOCK = PG_WRITER_LOCK + 2
#: The advisory lock naming the node that publishes the log to a bucket (ledger/publish.py).
PG_PUBLISH_LOCK = PG_WRITER_LOCK + 3
_TRY_SQL = "SELECT pg_try_advisory_lock({key})"
_UNLOCK_SQL = "SELECT pg_advisory_unlock({key})"
#: Whether this session holds the lock (a one-part advisory key is its objid).
_HELD_SQL = (
    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
    "AND pid = pg_backend_pid() AND objid = {key}"
)


class LeaderLock(Protocol):
    def try_acquire(self) -> bool:
        """Take the lock if free; True if this process holds it now."""
        ...

    def wait(self, stop: threading.Event) -> bool:
        """Block until the lock is ours (True) or ``stop`` is set (False)."""
        ...

    def still_held(self) -> bool:
        """For the leader: whether the lock is still ours (False: step down)."""
        ...

    def close(self) -> None: ...


class FileLeaderLock:
    """An exclusive ``flock`` on a file in the data directory (one host)."""

    def __init__(self, path: Path) -> None:
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)

    def try_acquire(self) -> bool:
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def wait(self, stop: threading.Event) -> bool:
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX)  # until the leader process exits
        except OSError:
            return False
        return not stop.is_set()

    def still_held(self) -> bool:
        return True  # a flock lasts as long as the process

    def close(self) -> None:
        os.close(self._fd)


class PgLeaderLock:
    """``pg_try_advisory_lock`` on a dedicated autocommit connection (see the module)."""

    #: Seconds between a follower's attempts, and between the leader's checks.
    POLL = 1.0
    #: The lock session's TCP keepalives: a vanished leader host frees the lock in ~4 s.
    KEEPALIVE = (
        "SET tcp_keepalives_idle = 2",
        "SET tcp_keepalives_interval = 1",
        "SET tcp_keepalives_count = 2",
    )

    #: Seconds a lock session may sit idle before the server ends it (and the lock with
    #: it). Three missed checks: a live holder is never idle this long.
    IDLE_TIMEOUT = 3.0

    def __init__(
        self, engine: Engine, key: int = PG_WITNESS_LOCK, *, idle_timeout: float | None = None
    ) -> None:
        """``idle_timeout``: end the lock's session when idle that long (PostgreSQL 14's
        ``idle_session_timeout``), for a holder that checks its lock more often than that
        from a thread of its own; ``None`` keeps the session however long it is idle (a
        holder whose checks wait for its work, as the publisher's do)."""
        self._engine = engine
        self._idle_ms = None if idle_timeout is None else max(1, int(idle_timeout * 1000))
        # Only the module's integer constants are formatted into the SQL.
        self._try, self._unlock, self._held = (
            q.format(key=int(key)) for q in (_TRY_SQL, _UNLOCK_SQL, _HELD_SQL)
        )
        self._conn: Connection | None = None
        self._mu = threading.Lock()

    def _connection(self) -> Connection:
        if self._conn is None:
            conn = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            for sql in self.KEEPALIVE:
                conn.exec_driver_sql(sql)
            if self._idle_ms is not None:
                try:
                    conn.exec_driver_sql(f"SET idle_session_timeout = {self._idle_ms}")
                except SQLAlchemyError:
                    # Before PostgreSQL 14 there is no such setting: keepalives only, and
                    # a frozen leader keeps the lock until it runs again.
                    conn.rollback()
                    log.warning("no idle_session_timeout: a frozen leader keeps its lock")
                    self._idle_ms = None
            self._conn = conn
        return self._conn

    def _drop(self) -> None:
        if self._conn is not None:
            try:
                self._conn.invalidate()
                self._conn.close()
            except SQLAlchemyError:
                pass
            self._conn = None

    def try_acquire(self) -> bool:
        with self._mu:
            try:
                got = self._connection().exec_driver_sql(self._try).scalar()
            except SQLAlchemyError as e:
                log.warning("witnessing leader lock: %s", e.__class__.__name__)
                self._drop()
                return False
            return bool(got)

    def wait(self, stop: threading.Event) -> bool:
        while not stop.is_set():
            if self.try_acquire():
                return True
            stop.wait(self.POLL)
        return False

    def still_held(self) -> bool:
        with self._mu:
            if self._conn is None:
                return False
            try:
                n = self._conn.exec_driver_sql(self._held).scalar()
            except SQLAlchemyError:
                self._drop()  # the session, and with it the lock, is gone
                return False
            return bool(n)

    def close(self) -> None:
        with self._mu:
            if self._conn is not None:
                try:
                    self._conn.exec_driver_sql(self._unlock)
                except SQLAlchemyError:
                    pass
                self._conn.close()
                self._conn = None
