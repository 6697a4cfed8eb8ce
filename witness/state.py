"""The witness's own database: the logs it witnesses, their latest cosigned checkpoints, evidence.

SQLite in the witness's data directory, opened with the ledger's durable engine settings
(WAL, synchronous=FULL, ``BEGIN IMMEDIATE`` for writers). C2SP tlog-witness requires the
check of the old size and the update of the stored checkpoint to be one atomic step: every
update here is a compare-and-swap (``UPDATE ... WHERE size = <size read>``) inside one
write transaction, so the stored size never moves backwards, whatever runs concurrently.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    BigInteger,
    Connection,
    Engine,
    Integer,
    LargeBinary,
    String,
    Text,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from ledger.clock import rfc3339
from ledger.store import make_engine
from verifier.note import NoteError, Verifier, parse_vkey
from witness.errors import WitnessServiceError

DB_FILE = "witness.db"
#: Bounds: how many logs one witness serves, and one page of evidence.
MAX_LOGS = 1000
MAX_EVIDENCE_PAGE = 100

#: Evidence kinds. A fork is proof by itself: two checkpoints of one size with different
#: roots, both signed by the log. A failed consistency proof is recorded too (the spec
#: allows it: "it might be proof of log misbehavior") but does not by itself prove a fork,
#: since anyone may submit a genuine checkpoint with a garbage proof.
FORK = "fork"
INCONSISTENT = "inconsistent_proof"
#: Key of :meth:`WitnessStore.evidence_counts` for forks not cleared by an operator yet.
OPEN_FORKS = "open_fork"


class WitnessStateError(RuntimeError, WitnessServiceError):
    """The witness database is unusable or an operator command cannot be applied."""


class ConcurrentUpdate(WitnessStateError):
    """A compare-and-swap found the stored size changed; the caller retries."""


class Base(DeclarativeBase):
    pass


class LogRow(Base):
    """One witnessed log: its key, and the latest checkpoint this witness cosigned."""

    __tablename__ = "witnessed_logs"
    origin: Mapped[str] = mapped_column(String(255), primary_key=True)
    vkey: Mapped[str] = mapped_column(Text)
    size: Mapped[int] = mapped_column(BigInteger, default=0)
    root: Mapped[bytes | None] = mapped_column(LargeBinary(32), nullable=True)
    checkpoint: Mapped[str | None] = mapped_column(Text, nullable=True)
    updated_at: Mapped[str] = mapped_column(String(40))
    #: Set when the log equivocated: the witness refuses it until an operator clears it.
    refused: Mapped[str | None] = mapped_column(Text, nullable=True)


class EvidenceRow(Base):
    """A checkpoint that contradicts what the witness stored, kept for auditors."""

    __tablename__ = "evidence"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    origin: Mapped[str] = mapped_column(String(255), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    detected_at: Mapped[str] = mapped_column(String(40))
    stored_size: Mapped[int] = mapped_column(BigInteger)
    stored_checkpoint: Mapped[str | None] = mapped_column(Text, nullable=True)
    old_size: Mapped[int] = mapped_column(BigInteger)
    proof: Mapped[str] = mapped_column(Text)
    submitted_checkpoint: Mapped[str] = mapped_column(Text)
    #: SHA-256 of origin, kind and the submitted checkpoint: one row per contradiction, so
    #: repeated submissions cannot grow the table without bound.
    digest: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    cleared_at: Mapped[str | None] = mapped_column(String(40), nullable=True)


def now_text() -> str:
    return rfc3339(datetime.now(UTC))


@dataclass
class LogState:
    """A log's row as read at the start of a write transaction (mutated as requests apply)."""

    origin: str
    verifier: Verifier
    size: int
    root: bytes | None
    checkpoint: str | None
    refused: str | None
    #: What the database held when read: the compare-and-swap condition.
    read_size: int
    read_root: bytes | None
    changed: bool = False


class WitnessStore:
    """Data access for the witness; no protocol logic lives here."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._vkeys: dict[str, Verifier] = {}

    @classmethod
    def open(cls, data_dir: Path) -> WitnessStore:
        data_dir.mkdir(parents=True, exist_ok=True)
        engine = make_engine(f"sqlite:///{data_dir / DB_FILE}")
        with engine.connect() as conn:
            conn = conn.execution_options(writer=True)
            with conn.begin():
                Base.metadata.create_all(conn)
        return cls(engine)

    def close(self) -> None:
        self.engine.dispose()

    @contextlib.contextmanager
    def writer(self) -> Iterator[Connection]:
        """One write transaction (``BEGIN IMMEDIATE``: the SQLite write lock from the start)."""
        with self.engine.connect() as conn:
            conn = conn.execution_options(writer=True)
            with conn.begin():
                yield conn

    @contextlib.contextmanager
    def reader(self) -> Iterator[Connection]:
        with self.engine.connect() as conn, conn.begin():
            yield conn

    def _verifier(self, vkey: str) -> Verifier:
        v = self._vkeys.get(vkey)
        if v is None:
            v = self._vkeys[vkey] = parse_vkey(vkey)
        return v

    # --- the add-checkpoint transaction -----------------------------------------------
    # The two statements below run for every batch of requests. They are plain SQL (the
    # witness database is always SQLite): building SQLAlchemy statements per call cost more
    # than the signatures they guard.
    def load(self, conn: Connection, origins: set[str]) -> dict[str, LogState]:
        rows = [
            row
            for origin in sorted(origins)
            for row in conn.exec_driver_sql(
                "SELECT origin, vkey, size, root, checkpoint, refused FROM witnessed_logs "
                "WHERE origin = ?",
                (origin,),
            )
        ]
        out = {}
        for origin, vkey, size, root, cp, refused in rows:
            root = bytes(root) if root is not None else None
            out[origin] = LogState(
                origin, self._verifier(vkey), size, root, cp, refused, size, root
            )
        return out

    def save(self, conn: Connection, states: list[LogState]) -> None:
        """Compare-and-swap each changed log's row from what was read to its new state."""
        changed = [st for st in states if st.changed]
        if not changed:
            return
        at = now_text()
        res = conn.exec_driver_sql(
            "UPDATE witnessed_logs SET size = ?, root = ?, checkpoint = ?, refused = ?, "
            "updated_at = ? WHERE origin = ? AND size = ? AND root IS ?",
            [
                (
                    st.size,
                    st.root,
                    st.checkpoint,
                    st.refused,
                    at,
                    st.origin,
                    st.read_size,
                    st.read_root,
                )
                for st in changed
            ],
        )
        if res.rowcount != len(changed):
            raise ConcurrentUpdate("a stored checkpoint changed meanwhile")

    def add_evidence(
        self,
        conn: Connection,
        st: LogState,
        kind: str,
        old_size: int,
        proof: tuple[bytes, ...],
        submitted: str,
    ) -> tuple[int, bool]:
        """Record a contradiction once: its id, and whether it is new (not a repeat)."""
        digest = hashlib.sha256(f"{st.origin}\n{kind}\n{submitted}".encode()).digest()
        have = conn.scalar(select(EvidenceRow.id).where(EvidenceRow.digest == digest))
        if have is not None:
            return int(have), False
        res = conn.execute(
            insert(EvidenceRow).values(
                origin=st.origin,
                kind=kind,
                detected_at=now_text(),
                stored_size=st.size,
                stored_checkpoint=st.checkpoint,
                old_size=old_size,
                proof="".join(base64.b64encode(h).decode() + "\n" for h in proof),
                submitted_checkpoint=submitted,
                digest=digest,
            )
        )
        pk = res.inserted_primary_key
        return (int(pk[0]) if pk else 0), True

    # --- operator commands and reads ---------------------------------------------------
    def add_log(self, vkey: str) -> Verifier:
        """Start witnessing the log whose verifier key is ``vkey`` (origin = key name)."""
        try:
            v = parse_vkey(vkey)
        except NoteError as e:
            raise WitnessStateError(str(e)) from None
        with self.writer() as conn:
            row = conn.execute(select(LogRow.vkey).where(LogRow.origin == v.name)).first()
            if row is not None:
                if row[0] == v.vkey:
                    return v
                raise WitnessStateError(
                    f"the log {v.name} is already witnessed with another key ({row[0]})"
                )
            n = conn.scalar(select(func.count()).select_from(LogRow)) or 0
            if n >= MAX_LOGS:
                raise WitnessStateError(f"this witness already serves {MAX_LOGS} logs")
            conn.execute(insert(LogRow).values(origin=v.name, vkey=v.vkey, updated_at=now_text()))
        return v

    def clear(self, origin: str) -> list[int]:
        """Operator action: accept the log again after equivocation; returns cleared evidence.

        The stored checkpoint stays as it was, so the log must still extend what this
        witness cosigned before; the evidence rows are kept, marked cleared.
        """
        with self.writer() as conn:
            row = conn.execute(select(LogRow.refused).where(LogRow.origin == origin)).first()
            if row is None:
                raise WitnessStateError(f"this witness does not witness {origin!r}")
            ids = list(
                conn.scalars(
                    select(EvidenceRow.id).where(
                        EvidenceRow.origin == origin, EvidenceRow.cleared_at.is_(None)
                    )
                )
            )
            conn.execute(update(LogRow).where(LogRow.origin == origin).values(refused=None))
            if ids:
                conn.execute(
                    update(EvidenceRow).where(EvidenceRow.id.in_(ids)).values(cleared_at=now_text())
                )
        return ids

    def logs(self) -> list[dict[str, Any]]:
        with self.reader() as conn:
            rows = conn.execute(
                select(
                    LogRow.origin,
                    LogRow.vkey,
                    LogRow.size,
                    LogRow.root,
                    LogRow.checkpoint,
                    LogRow.refused,
                    LogRow.updated_at,
                )
                .order_by(LogRow.origin)
                .limit(MAX_LOGS)
            ).all()
        return [
            {
                "origin": r[0],
                "verifier_key": r[1],
                "size": r[2],
                "root": base64.b64encode(r[3]).decode() if r[3] is not None else None,
                "checkpoint": r[4],
                "refused": r[5],
                "updated_at": r[6],
            }
            for r in rows
        ]

    def evidence_counts(self) -> dict[str, int]:
        """Evidence rows per kind, and :data:`OPEN_FORKS`: forks not cleared yet."""
        with self.reader() as conn:
            rows = conn.execute(
                select(EvidenceRow.kind, func.count()).group_by(EvidenceRow.kind)
            ).all()
            open_forks = conn.scalar(
                select(func.count())
                .select_from(EvidenceRow)
                .where(EvidenceRow.kind == FORK, EvidenceRow.cleared_at.is_(None))
            )
        out = {str(k): int(n) for k, n in rows}
        out[OPEN_FORKS] = int(open_forks or 0)
        return out

    def evidence_by_id(self, ids: list[int]) -> list[dict[str, Any]]:
        """The evidence rows with these ids (at most one page), oldest first."""
        return self._evidence_rows(EvidenceRow.id.in_(ids[:MAX_EVIDENCE_PAGE]), MAX_EVIDENCE_PAGE)

    def evidence(self, after: int = 0, limit: int = MAX_EVIDENCE_PAGE) -> list[dict[str, Any]]:
        limit = max(1, min(limit, MAX_EVIDENCE_PAGE))
        return self._evidence_rows(EvidenceRow.id > after, limit)

    def _evidence_rows(self, where: Any, limit: int) -> list[dict[str, Any]]:
        cols = (
            EvidenceRow.id,
            EvidenceRow.origin,
            EvidenceRow.kind,
            EvidenceRow.detected_at,
            EvidenceRow.stored_size,
            EvidenceRow.stored_checkpoint,
            EvidenceRow.old_size,
            EvidenceRow.proof,
            EvidenceRow.submitted_checkpoint,
            EvidenceRow.cleared_at,
        )
        with self.reader() as conn:
            rows = conn.execute(
                select(*cols).where(where).order_by(EvidenceRow.id).limit(limit)
            ).all()
        return [{c.key: v for c, v in zip(cols, r, strict=True)} for r in rows]
