"""The ledger's database: engines, migrations, write transactions, and queries.

Two engines run the same code: SQLite (embedded default; WAL with synchronous=FULL so a
commit survives power loss) and PostgreSQL. A write transaction holds the one writer lock
for the whole batch: ``BEGIN IMMEDIATE`` on SQLite, ``pg_advisory_xact_lock`` on
PostgreSQL, so two processes can never interleave appends.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event, insert, select, update
from sqlalchemy.engine import make_url

from ledger.models import CheckpointRow, MetaRow, RecordRow, TileRow

#: Arbitrary constant naming the ledger's advisory lock on PostgreSQL.
PG_WRITER_LOCK = 0x4A5A_4C47  # "JZLG"


class StoreError(RuntimeError):
    """The database is unreachable, inconsistent, or refuses an operation."""


def make_engine(url: str) -> Engine:
    """An engine with the durability settings the ledger relies on."""
    u = make_url(url)
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
        return create_engine(url, pool_size=8, max_overflow=8, pool_pre_ping=True, pool_timeout=30)
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
class Head:
    """The newest signed checkpoint in the database."""

    size: int
    root: bytes
    note: str


class Store:
    """Thin data access over the ledger tables; no ledger logic lives here."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @contextlib.contextmanager
    def writer(self) -> Iterator[Connection]:
        """One write transaction holding the single-writer lock until commit or rollback."""
        with self.engine.connect() as conn:
            conn = conn.execution_options(writer=True)
            with conn.begin():
                if self.engine.dialect.name == "postgresql":
                    conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({PG_WRITER_LOCK})")
                yield conn

    @contextlib.contextmanager
    def reader(self) -> Iterator[Connection]:
        with self.engine.connect() as conn, conn.begin():
            yield conn

    # --- metadata --------------------------------------------------------------------
    def get_meta(self, conn: Connection, key: str) -> str | None:
        return conn.scalar(select(MetaRow.value).where(MetaRow.key == key))

    def set_meta(self, conn: Connection, key: str, value: str) -> None:
        conn.execute(insert(MetaRow).values(key=key, value=value))

    # --- head and checkpoints ----------------------------------------------------------
    def head(self, conn: Connection) -> Head | None:
        row = conn.execute(
            select(CheckpointRow.size, CheckpointRow.root, CheckpointRow.note)
            .order_by(CheckpointRow.size.desc())
            .limit(1)
        ).first()
        return Head(row[0], row[1], row[2]) if row else None

    def checkpoint_covering(self, conn: Connection, index: int) -> Head | None:
        """The first checkpoint that includes log position ``index`` (the one of its batch)."""
        row = conn.execute(
            select(CheckpointRow.size, CheckpointRow.root, CheckpointRow.note)
            .where(CheckpointRow.size > index)
            .order_by(CheckpointRow.size)
            .limit(1)
        ).first()
        return Head(row[0], row[1], row[2]) if row else None

    def checkpoint_at(self, conn: Connection, size: int) -> Head | None:
        row = conn.execute(
            select(CheckpointRow.size, CheckpointRow.root, CheckpointRow.note).where(
                CheckpointRow.size == size
            )
        ).first()
        return Head(row[0], row[1], row[2]) if row else None

    def add_checkpoint(self, conn: Connection, size: int, root: bytes, note: str, at: str) -> None:
        conn.execute(insert(CheckpointRow).values(size=size, root=root, note=note, created_at=at))

    # --- tiles -------------------------------------------------------------------------
    def get_tile(self, conn: Connection, level: int, idx: int) -> bytes:
        data = conn.scalar(select(TileRow.hashes).where(TileRow.level == level, TileRow.idx == idx))
        return bytes(data) if data is not None else b""

    def put_tiles(self, conn: Connection, tiles: dict[tuple[int, int], tuple[bytes, bool]]) -> None:
        """Write widened tiles; the flag says whether the tile already had a row."""
        new = [
            {"level": lv, "idx": i, "hashes": h} for (lv, i), (h, old) in tiles.items() if not old
        ]
        if new:
            conn.execute(insert(TileRow), new)
        for (lv, i), (h, old) in tiles.items():
            if old:
                conn.execute(
                    update(TileRow).where(TileRow.level == lv, TileRow.idx == i).values(hashes=h)
                )

    # --- records -----------------------------------------------------------------------
    def add_records(self, conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
        if rows:
            conn.execute(insert(RecordRow), list(rows))

    def project_tail(self, conn: Connection, project: str) -> tuple[int, bytes] | None:
        """(seq, event hash) of the project's newest record."""
        row = conn.execute(
            select(RecordRow.seq, RecordRow.event_hash)
            .where(RecordRow.project == project)
            .order_by(RecordRow.seq.desc())
            .limit(1)
        ).first()
        return (row[0], bytes(row[1])) if row else None

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
        rows = conn.execute(
            select(RecordRow.idx, RecordRow.event_hash)
            .where(RecordRow.idx >= start, RecordRow.idx < end)
            .order_by(RecordRow.idx)
        ).all()
        return [(r[0], bytes(r[1])) for r in rows]
