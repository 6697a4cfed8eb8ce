"""The ledger's database: engines, migrations, write transactions, and queries.

Two engines run the same code: SQLite (embedded default; WAL with synchronous=FULL so a
commit survives power loss) and PostgreSQL. A write transaction holds the one writer lock
for the whole batch: ``BEGIN IMMEDIATE`` on SQLite, ``pg_advisory_xact_lock`` on
PostgreSQL, so two processes can never interleave appends.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import (
    Connection,
    Engine,
    case,
    create_engine,
    event,
    exists,
    func,
    insert,
    select,
)
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import aliased

from ledger.checkpoints import SignedCheckpoint
from ledger.errors import LedgerError
from ledger.models import (
    CheckpointRow,
    MetaRow,
    ObjectCitationRow,
    PosterKeyHistoryRow,
    ProjectRow,
    RecordRow,
    SealedOpeningRow,
    TileRow,
)

#: Largest log index a BIGINT column holds.
MAX_INDEX = (1 << 63) - 1
#: Arbitrary constant naming the ledger's advisory lock on PostgreSQL.
PG_WRITER_LOCK = 0x4A5A_4C47  # "JZLG"

#: The columns of a row for :meth:`Store.add_records`, in order.
RECORD_COLUMNS = (
    "idx",
    "project",
    "seq",
    "type",
    "event_hash",
    "record",
    "poster",
    "idempotency_key",
    "request_digest",
)
#: (idx, project, seq, type, event hash, canonical record, poster, key, request digest)
RecordValues = tuple[int, str, int, str, bytes, bytes, str, str | None, bytes | None]
_INSERT_SQL: dict[tuple[str, str, tuple[str, ...]], str] = {}


def _insert_sql(conn: Connection, table: str, columns: tuple[str, ...]) -> str:
    """A plain positional INSERT for the connection's driver (``?`` or ``%s`` markers)."""
    dialect = conn.dialect
    key = (dialect.name, table, columns)
    sql = _INSERT_SQL.get(key)
    if sql is None:
        if dialect.paramstyle not in ("qmark", "format", "pyformat"):
            raise StoreError(f"unsupported parameter style {dialect.paramstyle!r}")
        mark = "?" if dialect.paramstyle == "qmark" else "%s"
        quote = dialect.identifier_preparer.quote
        # Only constant table and column names, quoted by the dialect; values are bound.
        sql = _INSERT_SQL[key] = (
            f"INSERT INTO {quote(table)} ({', '.join(quote(c) for c in columns)}) "  # noqa: S608
            f"VALUES ({', '.join([mark] * len(columns))})"
        )
    return sql


_DRIVER_SQL: dict[tuple[str, str], str] = {}


def _driver_sql(conn: Connection | Engine, sql: str) -> str:
    """``sql`` written with ``?`` markers, in the connection's driver's parameter style.

    For the hottest queries of the append path: SQLAlchemy builds, keys and compiles a
    Core statement anew on each call, about 100 µs for a one-row lookup that SQLite
    answers in 10. Only constant SQL goes through here; every value is bound.
    """
    dialect = conn.dialect
    key = (dialect.paramstyle, sql)
    out = _DRIVER_SQL.get(key)
    if out is None:
        if dialect.paramstyle not in ("qmark", "format", "pyformat"):
            raise StoreError(f"unsupported parameter style {dialect.paramstyle!r}")
        out = sql if dialect.paramstyle == "qmark" else sql.replace("?", "%s")
        if len(_DRIVER_SQL) > 4096:  # bounded: IN lists of every length up to the chunk
            _DRIVER_SQL.clear()
        _DRIVER_SQL[key] = out
    return out


def _in_list(sql: str, n: int) -> str:
    """``sql`` with its ``(?*)`` standing for a list of ``n`` markers (values are bound)."""
    return sql.replace("(?*)", "(" + ", ".join(["?"] * n) + ")")


#: The newest record of each chain named, by the (project, seq) unique index.
_TAILS_SQL = (
    "SELECT r.project, r.seq, r.event_hash, p.trade_type FROM records r "
    "LEFT JOIN projects p ON p.project = r.project WHERE r.project IN (?*) "
    "AND r.seq = (SELECT max(r2.seq) FROM records r2 WHERE r2.project = r.project)"
)
_TRADE_TYPES_SQL = "SELECT project, trade_type FROM projects WHERE project IN (?*)"
#: The newest record of each chain among log indexes [?, ?): what another worker appended.
_MOVED_SQL = (
    "SELECT r.project, r.seq, r.event_hash, p.trade_type FROM records r "
    "LEFT JOIN projects p ON p.project = r.project WHERE r.idx IN "
    "(SELECT max(idx) FROM records WHERE idx >= ? AND idx < ? GROUP BY project)"
)
#: Chains with a record of one of the types among log indexes [?, ?).
_TYPED_SQL = "SELECT DISTINCT project FROM records WHERE idx >= ? AND idx < ? AND type IN (?*)"
_POSTER_KEYS_SQL = "SELECT token_id, public_key, required FROM poster_keys WHERE token_id IN (?*)"


#: Names looked up per statement in :meth:`Store.project_tails` and friends, at most.
IN_CHUNK = 500


class StoreError(RuntimeError, LedgerError):
    """The database is unreachable, inconsistent, or refuses an operation."""


#: A PostgreSQL URL whose host part lists several hosts, as libpq writes it.
_MULTI_HOST = re.compile(
    r"(?P<scheme>postgresql(?:\+\w+)?://)(?:(?P<auth>[^@/?]*)@)?"
    r"(?P<hosts>[^/?]*,[^/?]*)(?P<rest>[/?].*)?",
    re.DOTALL,
)


def engine_url(url: str) -> URL:
    """``url`` as SQLAlchemy reads it; a libpq multi-host URL is accepted as well.

    libpq (and so every PostgreSQL operator) writes several servers as
    ``postgresql://user@h1:5432,h2:5432/db?target_session_attrs=read-write``, which
    SQLAlchemy's parser refuses; its psycopg dialect takes the same list as repeated
    ``host=h:p`` query parameters, so the host list is moved there. libpq then tries the
    hosts in order and keeps the first that accepts writes (failover, issue 16).
    """
    m = _MULTI_HOST.fullmatch(url)
    if m is None:
        return make_url(url)
    hosts = [h.strip() for h in m["hosts"].split(",")]
    if any(not h for h in hosts):
        raise StoreError(f"empty host in the database URL's host list {m['hosts']!r}")
    rest = m["rest"] or "/"
    path, _, query = rest.partition("?")
    auth = f"{m['auth']}@" if m["auth"] is not None else ""
    base = make_url(f"{m['scheme']}{auth}{path or '/'}" + (f"?{query}" if query else ""))
    return base.update_query_pairs([("host", h) for h in hosts], append=True)


def make_engine(url: str) -> Engine:
    """An engine with the durability settings the ledger relies on."""
    u = engine_url(url)
    if u.get_backend_name() == "sqlite":
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _rec: Any) -> None:
            # Take transaction control from pysqlite, so BEGIN IMMEDIATE is ours to issue.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Connection) -> None:
            mode = "IMMEDIATE" if conn.get_execution_options().get("writer") else "DEFERRED"
            conn.exec_driver_sql(f"BEGIN {mode}")

        return engine
    if u.get_backend_name() == "postgresql":
        # pool_pre_ping: after a failover every pooled connection is dead; each is
        # replaced on checkout instead of failing one request.
        return create_engine(u, pool_size=8, max_overflow=8, pool_pre_ping=True, pool_timeout=30)
    raise StoreError(f"unsupported database {u.get_backend_name()!r}: use sqlite or postgresql")


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest Alembic revision (idempotent)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files("ledger") / "migrations"))
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            # Two processes starting at once must not both create the tables.
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({PG_WRITER_LOCK + 1})")
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


@dataclass(frozen=True)
class Citation:
    """A project citing an evidence object: through which event type, first at which index."""

    project: str
    trade_type: str
    event_type: str
    index: int


@dataclass(frozen=True)
class PosterKeySpan:
    """A key a poster registered, due on the records at log indexes [from, until)."""

    token_id: str
    public_key: bytes
    required: bool
    from_index: int
    until_index: int | None


class _FileLock:
    """Exclusive lock across threads and processes, on a file beside the SQLite database.

    SQLite's own busy handler sleeps 1 to 100 ms between attempts, so two worker
    processes taking turns through ``BEGIN IMMEDIATE`` alone would idle most of the time;
    queueing on this lock first, a writer starts the moment the other is done.
    """

    def __init__(self, path: str, timeout: float = 30.0) -> None:
        self._path = path
        self._timeout = timeout
        self._mu = threading.Lock()
        self._fd: int | None = None

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        if not self._mu.acquire(timeout=self._timeout):
            raise StoreError(f"the writer lock was not free within {self._timeout:g} s")
        try:
            if self._fd is None:
                self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
            deadline = time.monotonic() + self._timeout
            pause = 0.00005
            while True:
                try:
                    fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise StoreError(
                            f"another process held {self._path} for {self._timeout:g} s"
                        ) from None
                    # Short waits stay short; a long one (another worker's big batch)
                    # costs a few dozen attempts, not hundreds, and overshoots by <= 1 ms.
                    time.sleep(pause)
                    pause = min(pause * 2, 0.001)
            try:
                yield
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._mu.release()


class Store:
    """Thin data access over the ledger tables; no ledger logic lives here."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        db = engine.url.database if engine.dialect.name == "sqlite" else None
        self._file_lock = _FileLock(db + ".writer-lock") if db and db != ":memory:" else None
        #: Per thread, the SQLite connection :meth:`read_rows` keeps (see there).
        self._reads = threading.local() if self._file_lock is not None else None

    @contextlib.contextmanager
    def writer(self) -> Iterator[Connection]:
        """One write transaction holding the single-writer lock until commit or rollback."""
        lock = self._file_lock.held() if self._file_lock else contextlib.nullcontext()
        with lock, self.engine.connect() as conn:
            conn = conn.execution_options(writer=True)
            with conn.begin():
                if self.engine.dialect.name == "postgresql":
                    conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({PG_WRITER_LOCK})")
                yield conn

    @contextlib.contextmanager
    def reader(self) -> Iterator[Connection]:
        with self.engine.connect() as conn, conn.begin():
            yield conn

    def read_rows(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        """The rows of one read statement (``?`` markers), on a pooled driver connection.

        For the reads made on the event loop for every posted event: a single SELECT sees
        one consistent snapshot by itself, and a :meth:`reader` transaction around it
        (pool checkout through SQLAlchemy, BEGIN, ROLLBACK) cost four times the query.
        """
        # The driver's own errors come through unwrapped here; a lost or read-only
        # server (a failover under way) is the store being unavailable (503), not a bug.
        unavailable = (OperationalError, self.engine.dialect.loaded_dbapi.OperationalError)
        if self._reads is not None:
            return self._read_sqlite(sql, params, unavailable)
        try:
            raw = self.engine.raw_connection()
            try:
                return self._fetch(raw, sql, params)
            finally:
                raw.close()
        except unavailable as e:
            raise StoreError(f"the database is unavailable: {e.__class__.__name__}") from e

    def _fetch(self, con: Any, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        """The rows of ``sql`` (``?`` markers) on the driver connection ``con``."""
        cur = con.cursor()
        try:
            cur.execute(_driver_sql(self.engine, sql), params)
            return [tuple(r) for r in cur.fetchall()]
        finally:
            cur.close()

    def _read_sqlite(
        self, sql: str, params: tuple[Any, ...], unavailable: tuple[type[Exception], ...]
    ) -> list[tuple[Any, ...]]:
        """:meth:`read_rows` on SQLite, on a connection this thread keeps.

        The same statement on the same database with the same settings (the engine's
        connect hook made it, in autocommit, so each statement reads the newest commit),
        without the pool's checkout and checkin, which cost four times SQLite's own
        answer to the authorization-epoch read that every request makes (issue 18). Taken
        out of the pool, it does not use up a pooled connection; after any error it is
        closed and the next read makes another.
        """
        local = self._reads
        assert local is not None
        con = getattr(local, "con", None)
        try:
            if con is None:
                raw = self.engine.raw_connection()
                raw.detach()
                con = local.con = raw.dbapi_connection
                assert con is not None
            return self._fetch(con, sql, params)
        except Exception as e:
            local.con = None
            if con is not None:
                with contextlib.suppress(Exception):
                    con.close()
            if isinstance(e, unavailable):
                raise StoreError(f"the database is unavailable: {e.__class__.__name__}") from e
            raise

    # --- metadata --------------------------------------------------------------------
    def get_meta(self, conn: Connection, key: str) -> str | None:
        return conn.scalar(select(MetaRow.value).where(MetaRow.key == key))

    def set_meta(self, conn: Connection, key: str, value: str) -> None:
        conn.execute(insert(MetaRow).values(key=key, value=value))

    # --- head and checkpoints ----------------------------------------------------------
    def head(self, conn: Connection) -> SignedCheckpoint | None:
        sql = "SELECT size, root, note FROM checkpoints ORDER BY size DESC LIMIT 1"
        row = conn.exec_driver_sql(sql).first()
        return SignedCheckpoint(row[0], bytes(row[1]), row[2]) if row else None

    def checkpoint_covering(self, conn: Connection, index: int) -> SignedCheckpoint | None:
        """The first checkpoint that includes log position ``index`` (the one of its batch)."""
        row = conn.execute(
            select(CheckpointRow.size, CheckpointRow.root, CheckpointRow.note)
            .where(CheckpointRow.size > index)
            .order_by(CheckpointRow.size)
            .limit(1)
        ).first()
        return SignedCheckpoint(row[0], row[1], row[2]) if row else None

    def checkpoint_at(self, conn: Connection, size: int) -> SignedCheckpoint | None:
        row = conn.execute(
            select(CheckpointRow.size, CheckpointRow.root, CheckpointRow.note).where(
                CheckpointRow.size == size
            )
        ).first()
        return SignedCheckpoint(row[0], row[1], row[2]) if row else None

    def add_checkpoint(self, conn: Connection, size: int, root: bytes, note: str, at: str) -> None:
        sql = _insert_sql(conn, CheckpointRow.__tablename__, ("size", "root", "note", "created_at"))
        conn.exec_driver_sql(sql, (size, root, note, at))

    # --- the high-water mark and the authorization epoch (issue 16) ----------------------
    def high_water(self, conn: Connection) -> tuple[int, bytes] | None:
        """(size, root) of the newest checkpoint any node signed on this database."""
        row = conn.exec_driver_sql("SELECT size, root FROM log_high_water WHERE id = 1").first()
        return (int(row[0]), bytes(row[1])) if row else None

    def advance_high_water(self, conn: Connection, old: int, size: int, root: bytes) -> None:
        """Move the mark from at most ``old`` to (``size``, ``root``) by compare-and-swap,
        in the transaction that stores the checkpoint of ``size``.

        The writer lock already serialises appends; this holds even if it did not (a node
        of another release, a lock taken on another database): a second signer of a tree
        of size ``size`` finds the mark moved and its transaction is rolled back.
        """
        # "<=", not "=": a mark left behind the head (a node of a release before the mark
        # appended) is no fork; only a mark beyond the head this batch extends is.
        sql = _driver_sql(
            conn, "UPDATE log_high_water SET size = ?, root = ? WHERE id = 1 AND size <= ?"
        )
        if conn.exec_driver_sql(sql, (size, root, old)).rowcount == 1:
            return
        have = self.high_water(conn)
        raise StoreError(
            f"the database's high-water mark is at size {have[0] if have else 'none'}, beyond "
            f"this batch's head {old}: another node signed a checkpoint this one did not "
            "see; nothing was signed (run jianzheng audit)"
        )

    def bump_auth_epoch(self, conn: Connection) -> None:
        """A token was revoked or a poster key changed: every node re-reads what it cached
        (call in the transaction of the change)."""
        conn.exec_driver_sql("UPDATE auth_epoch SET version = version + 1 WHERE id = 1")

    def auth_epoch(self) -> int:
        """The current authorization epoch (one indexed read, no transaction around it)."""
        rows = self.read_rows("SELECT version FROM auth_epoch WHERE id = ?", (1,))
        return int(rows[0][0]) if rows else 0

    # --- tiles -------------------------------------------------------------------------
    def get_tile(self, conn: Connection, level: int, idx: int) -> bytes:
        sql = _driver_sql(conn, "SELECT hashes FROM tiles WHERE level = ? AND idx = ?")
        data = conn.exec_driver_sql(sql, (level, idx)).scalar()
        return bytes(data) if data is not None else b""

    def put_tiles(self, conn: Connection, tiles: dict[tuple[int, int], tuple[bytes, bool]]) -> None:
        """Write widened tiles; the flag says whether the tile already had a row."""
        new = [(lv, i, h) for (lv, i), (h, old) in tiles.items() if not old]
        if new:
            sql = _insert_sql(conn, TileRow.__tablename__, ("level", "idx", "hashes"))
            conn.exec_driver_sql(sql, new)
        wider = [(h, lv, i) for (lv, i), (h, old) in tiles.items() if old]
        if wider:
            sql = _driver_sql(conn, "UPDATE tiles SET hashes = ? WHERE level = ? AND idx = ?")
            conn.exec_driver_sql(sql, wider)

    # --- records -----------------------------------------------------------------------
    def add_records(self, conn: Connection, rows: Sequence[RecordValues]) -> None:
        """Insert records, each a tuple in the order of :data:`RECORD_COLUMNS`.

        The rows go to the driver's ``executemany`` as they are: both drivers take ints,
        str and bytes directly, and SQLAlchemy's per-row parameter processing cost about
        as much as SQLite's own insert.
        """
        if rows:
            conn.exec_driver_sql(_insert_sql(conn, RecordRow.__tablename__, RECORD_COLUMNS), rows)

    def tails_between(
        self, conn: Connection, start: int, end: int
    ) -> dict[str, tuple[int, bytes, str | None]]:
        """project -> (seq, event hash, stored trade type) of its newest record among log
        indexes [start, end); the trade type is None for access chains (they have no row)."""
        rows = conn.exec_driver_sql(_driver_sql(conn, _MOVED_SQL), (start, end))
        return {project: (seq, bytes(eh), tt) for project, seq, eh, tt in rows}

    def project_tail(self, conn: Connection, project: str) -> tuple[int, bytes, str | None] | None:
        """(seq, event hash, stored trade type) of the project's newest record."""
        return self.project_tails(conn, [project]).get(project)

    def project_tails(
        self, conn: Connection, chains: Sequence[str]
    ) -> dict[str, tuple[int, bytes, str | None]]:
        """chain -> (seq, event hash, stored trade type) of its newest record, for those of
        ``chains`` that have records (one query per :data:`IN_CHUNK` names); the trade type
        is None for access and sealed chains (they have no project row)."""
        out: dict[str, tuple[int, bytes, str | None]] = {}
        names = sorted(set(chains))
        for start in range(0, len(names), IN_CHUNK):
            chunk = names[start : start + IN_CHUNK]
            sql = _in_list(_TAILS_SQL, len(chunk))
            for project, seq, eh, tt in conn.exec_driver_sql(_driver_sql(conn, sql), tuple(chunk)):
                out[project] = (seq, bytes(eh), tt)
        return out

    def add_projects(self, conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
        """Bind new projects to their trade type, in the transaction of their first record."""
        if rows:
            cols = ("project", "trade_type", "first_index")
            sql = _insert_sql(conn, ProjectRow.__tablename__, cols)
            conn.exec_driver_sql(sql, [tuple(r[c] for c in cols) for r in rows])

    def project_trade_types(
        self, conn: Connection | None, projects: Sequence[str]
    ) -> dict[str, str]:
        """project -> its stored trade type, for those of ``projects`` that have records;
        read in ``conn``'s transaction, or without one (:meth:`read_rows`) when None."""
        out: dict[str, str] = {}
        names = sorted(set(projects))
        for start in range(0, len(names), IN_CHUNK):
            chunk = tuple(names[start : start + IN_CHUNK])
            sql = _in_list(_TRADE_TYPES_SQL, len(chunk))
            if conn is None:
                rows = self.read_rows(sql, chunk)
            else:
                rows = [tuple(r) for r in conn.exec_driver_sql(_driver_sql(conn, sql), chunk)]
            for project, tt in rows:
                out[project] = tt
        return out

    def projects_with_types(
        self, conn: Connection, start: int, end: int, types: frozenset[str]
    ) -> set[str]:
        """Projects with a record of one of ``types`` among log indexes [start, end)."""
        if not types:
            return set()
        sql = _driver_sql(conn, _in_list(_TYPED_SQL, len(types)))
        return {p for (p,) in conn.exec_driver_sql(sql, (start, end, *sorted(types)))}

    def order_history(
        self,
        conn: Connection,
        project: str,
        types: frozenset[str],
        closing: Mapping[str, str],
    ) -> list[tuple[str, int, int, int | None]]:
        """The project's records of ``types`` in seq order: (type, seq, index, closed seq).

        ``closing`` maps a closing event type (e.g. ``activity_resumed``) to its reference
        field; the closed seq is the resolved ``seq`` in that field of the committed record.
        """
        if not types:
            return []
        closers = sorted(closing)
        body = case((RecordRow.type.in_(closers), RecordRow.record), else_=None)
        rows = conn.execute(
            select(RecordRow.type, RecordRow.seq, RecordRow.idx, body)
            .where(RecordRow.project == project, RecordRow.type.in_(sorted(types)))
            .order_by(RecordRow.seq)
        )
        out: list[tuple[str, int, int, int | None]] = []
        for etype, seq, idx, raw in rows:
            closes: int | None = None
            if raw is not None:
                ref = json.loads(bytes(raw)).get("payload", {}).get(closing[etype])
                if isinstance(ref, dict) and isinstance(ref.get("seq"), int):
                    closes = ref["seq"]
            out.append((etype, seq, idx, closes))
        return out

    def reference_target(
        self,
        conn: Connection,
        *,
        index: int | None = None,
        poster: str | None = None,
        key: str | None = None,
    ) -> tuple[int, str, int, str, str] | None:
        """(index, project, seq, type, poster) of the record at ``index``, or of the one
        ``poster`` posted under idempotency ``key``."""
        cols = select(
            RecordRow.idx, RecordRow.project, RecordRow.seq, RecordRow.type, RecordRow.poster
        )
        if index is not None:
            if index > MAX_INDEX:
                return None
            q = cols.where(RecordRow.idx == index)
        else:
            q = cols.where(RecordRow.poster == poster, RecordRow.idempotency_key == key)
        row = conn.execute(q).first()
        return (row[0], row[1], row[2], row[3], row[4]) if row else None

    def find_idempotent(
        self, conn: Connection, poster: str, keys: Sequence[str]
    ) -> dict[str, tuple[int, bytes | None, bytes]]:
        """Earlier records by ``poster`` under these keys: key -> (index, digest, event hash)."""
        out: dict[str, tuple[int, bytes | None, bytes]] = {}
        for start in range(0, len(keys), 500):
            chunk = list(keys[start : start + 500])
            for idx, key, digest, eh in conn.execute(
                select(
                    RecordRow.idx,
                    RecordRow.idempotency_key,
                    RecordRow.request_digest,
                    RecordRow.event_hash,
                ).where(RecordRow.poster == poster, RecordRow.idempotency_key.in_(chunk))
            ):
                if key is not None:
                    out[key] = (idx, bytes(digest) if digest is not None else None, bytes(eh))
        return out

    def record_at(self, conn: Connection, index: int) -> tuple[bytes, bytes] | None:
        """(canonical record, event hash) at log position ``index``."""
        row = conn.execute(
            select(RecordRow.record, RecordRow.event_hash).where(RecordRow.idx == index)
        ).first()
        return (bytes(row[0]), bytes(row[1])) if row else None

    def record_with_poster(self, conn: Connection, index: int) -> tuple[bytes, bytes, str] | None:
        """(canonical record, event hash, poster) at log position ``index``."""
        if index > MAX_INDEX:
            return None
        row = conn.execute(
            select(RecordRow.record, RecordRow.event_hash, RecordRow.poster).where(
                RecordRow.idx == index
            )
        ).first()
        return (bytes(row[0]), bytes(row[1]), row[2]) if row else None

    def project_records(
        self,
        conn: Connection,
        project: str,
        after: int,
        limit: int,
        event_type: str | None = None,
    ) -> list[tuple[int, int, bytes]]:
        """(index, seq, canonical record) of a project's records with seq > after."""
        cond = [RecordRow.project == project, RecordRow.seq > after]
        if event_type is not None:
            cond.append(RecordRow.type == event_type)
        rows = conn.execute(
            select(RecordRow.idx, RecordRow.seq, RecordRow.record)
            .where(*cond)
            .order_by(RecordRow.seq)
            .limit(limit)
        ).all()
        return [(r[0], r[1], bytes(r[2])) for r in rows]

    def chains_records(
        self, conn: Connection, chains: Sequence[str], after_index: int, limit: int
    ) -> list[tuple[int, int, bytes]]:
        """(index, seq, canonical record) of several chains' records, merged by log index."""
        rows = conn.execute(
            select(RecordRow.idx, RecordRow.seq, RecordRow.record)
            .where(RecordRow.project.in_(list(chains)), RecordRow.idx > after_index)
            .order_by(RecordRow.idx)
            .limit(limit)
        ).all()
        return [(r[0], r[1], bytes(r[2])) for r in rows]

    def records_after(
        self, conn: Connection, after_index: int, limit: int
    ) -> list[tuple[int, str, bytes]]:
        """(index, chain, canonical record) of every chain's records after ``after_index``,
        in log order, at most ``limit`` (the alert worker's tail of the log)."""
        rows = conn.execute(
            select(RecordRow.idx, RecordRow.project, RecordRow.record)
            .where(RecordRow.idx > after_index)
            .order_by(RecordRow.idx)
            .limit(limit)
        ).all()
        return [(r[0], r[1], bytes(r[2])) for r in rows]

    def has_records(self, conn: Connection, chain: str) -> bool:
        return (
            conn.scalar(select(RecordRow.idx).where(RecordRow.project == chain).limit(1))
            is not None
        )

    def add_openings(self, conn: Connection, rows: Sequence[tuple[int, str, bytes]]) -> None:
        """Store (index, project, canonical openings) of sealed records."""
        if rows:
            conn.execute(
                insert(SealedOpeningRow),
                [{"idx": i, "project": p, "openings": o} for i, p, o in rows],
            )

    def openings(self, conn: Connection, indexes: Sequence[int]) -> dict[int, bytes]:
        """index -> canonical openings, for those of ``indexes`` that are sealed records."""
        out: dict[int, bytes] = {}
        ids = sorted(set(indexes))
        for start in range(0, len(ids), 500):
            for idx, raw in conn.execute(
                select(SealedOpeningRow.idx, SealedOpeningRow.openings).where(
                    SealedOpeningRow.idx.in_(ids[start : start + 500])
                )
            ):
                out[int(idx)] = bytes(raw)
        return out

    def project_has_type(self, conn: Connection, project: str, event_type: str) -> bool:
        """Whether the project has a record of ``event_type`` (e.g. its bid opening)."""
        return (
            conn.scalar(
                select(RecordRow.idx)
                .where(RecordRow.project == project, RecordRow.type == event_type)
                .limit(1)
            )
            is not None
        )

    def entries(self, conn: Connection, start: int, end: int) -> list[tuple[int, bytes]]:
        """(index, event hash) for log positions in [start, end)."""
        sql = "SELECT idx, event_hash FROM records WHERE idx >= ? AND idx < ? ORDER BY idx"
        rows = conn.exec_driver_sql(_driver_sql(conn, sql), (start, end)).all()
        return [(r[0], bytes(r[1])) for r in rows]

    # --- object citations ----------------------------------------------------------------
    def add_citations(self, conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
        if rows:
            conn.execute(insert(ObjectCitationRow), list(rows))

    def object_citations(self, conn: Connection, sha256: str, limit: int) -> list[Citation]:
        """Who cites the object: one row per (project, event type), the earliest first.

        An indexed lookup on the object's hash (the table's primary key prefix).
        """
        c = ObjectCitationRow
        first = func.min(c.idx)
        rows = conn.execute(
            select(c.project, c.trade_type, c.event_type, first)
            .where(c.sha256 == sha256)
            .group_by(c.project, c.trade_type, c.event_type)
            .order_by(first)
            .limit(limit)
        ).all()
        return [Citation(r[0], r[1], r[2], int(r[3])) for r in rows]

    def project_objects(
        self,
        conn: Connection,
        project: str,
        after: str,
        limit: int,
        hidden: Sequence[str] = (),
    ) -> list[str]:
        """The SHA-256 of the objects the project's records cite, above ``after``, in order;
        at most ``limit`` (a page: an archived project may cite thousands). Objects the
        project cites by an event type in ``hidden`` (sealed bids before the opening, say)
        are left out."""
        c = ObjectCitationRow
        q = select(c.sha256).where(c.project == project, c.sha256 > after)
        if hidden:
            h = aliased(ObjectCitationRow)
            q = q.where(
                ~exists().where(
                    h.sha256 == c.sha256, h.project == project, h.event_type.in_(list(hidden))
                )
            )
        rows = conn.execute(q.group_by(c.sha256).order_by(c.sha256).limit(limit)).all()
        return [r[0] for r in rows]

    def project_object_citations(
        self,
        conn: Connection,
        project: str,
        after: str,
        limit: int,
        hidden: Sequence[str] = (),
    ) -> dict[str, list[Citation]]:
        """A page of the objects the project's records cite (:meth:`project_objects`), each
        with the project's citations of it: one per event type, the earliest first."""
        shas = self.project_objects(conn, project, after, limit, hidden)
        if not shas:
            return {}
        c = ObjectCitationRow
        first = func.min(c.idx)
        rows = conn.execute(
            select(c.sha256, c.trade_type, c.event_type, first)
            .where(c.project == project, c.sha256.in_(shas))
            .group_by(c.sha256, c.trade_type, c.event_type)
            .order_by(c.sha256, first)
        ).all()
        out: dict[str, list[Citation]] = {s: [] for s in shas}
        for r in rows:
            out[r[0]].append(Citation(project, r[1], r[2], int(r[3])))
        return out

    # --- posters -----------------------------------------------------------------------
    def record_posters(self, conn: Connection, project: str, below: int) -> list[tuple[int, str]]:
        """(seq, poster token id) of the project's records with log index below ``below``."""
        rows = conn.execute(
            select(RecordRow.seq, RecordRow.poster)
            .where(RecordRow.project == project, RecordRow.idx < below)
            .order_by(RecordRow.seq)
        ).all()
        return [(int(r[0]), str(r[1])) for r in rows]

    def current_poster_keys(
        self, conn: Connection, token_ids: Sequence[str]
    ) -> dict[str, tuple[bytes, bool]]:
        """token id -> (registered public key, signatures required), for those with a key."""
        out: dict[str, tuple[bytes, bool]] = {}
        for start in range(0, len(token_ids), IN_CHUNK):
            chunk = tuple(token_ids[start : start + IN_CHUNK])
            sql = _driver_sql(conn, _in_list(_POSTER_KEYS_SQL, len(chunk)))
            for t, k, r in conn.exec_driver_sql(sql, chunk):
                out[t] = (bytes(k), bool(r))
        return out

    def poster_key_spans(self, conn: Connection, token_ids: Sequence[str]) -> list[PosterKeySpan]:
        """Every key these posters registered, oldest first per poster."""
        h = PosterKeyHistoryRow
        out: list[PosterKeySpan] = []
        ids = sorted(set(token_ids))
        for start in range(0, len(ids), 500):
            for r in conn.execute(
                select(h.token_id, h.public_key, h.required, h.from_index, h.until_index)
                .where(h.token_id.in_(ids[start : start + 500]))
                .order_by(h.token_id, h.from_index)
            ):
                out.append(PosterKeySpan(r[0], bytes(r[1]), bool(r[2]), int(r[3]), r[4]))
        return out
