"""Data access for witnessing in the ledger's database: cosignatures and RFC 3161 tokens.

Tables ``cosignatures`` and ``checkpoint_timestamps`` (migration 0003). Writes run in
their own short transactions, outside the ledger's single-writer lock on PostgreSQL (they
touch no table the sequencer writes), and they are idempotent: several ledger processes on
one PostgreSQL may store the same cosignature or token without error.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

from sqlalchemy import Connection, Engine, and_, func, insert, or_, select
from sqlalchemy.exc import IntegrityError

from ledger.checkpoints import SignedCheckpoint
from ledger.models import CheckpointRow, CosignatureRow, TimestampRow
from verifier.note import NoteSignature

#: Backfill reads at most this many checkpoints lacking a token at a time.
BACKFILL_PAGE = 64


class WitnessRecords:
    """Thin queries over the witnessing tables; no protocol logic lives here."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @contextlib.contextmanager
    def _write(self) -> Iterator[Connection]:
        # "writer" makes SQLite take its write lock at BEGIN (BEGIN IMMEDIATE), so the
        # transaction waits for the sequencer instead of failing on a lock upgrade.
        with self.engine.connect() as conn:
            conn = conn.execution_options(writer=True)
            with conn.begin():
                yield conn

    @contextlib.contextmanager
    def _read(self) -> Iterator[Connection]:
        with self.engine.connect() as conn, conn.begin():
            yield conn

    # --- cosignatures ----------------------------------------------------------------------
    def put_cosignatures(self, items: Sequence[tuple[int, NoteSignature, int]]) -> None:
        """Store (size, cosignature, claimed time) items in one transaction, skipping repeats."""
        try:
            with self._write() as conn:
                for size, sig, cosigned_at in items:
                    have = conn.scalar(
                        select(func.count())
                        .select_from(CosignatureRow)
                        .where(
                            CosignatureRow.size == size,
                            CosignatureRow.witness == sig.name,
                            CosignatureRow.key_id == sig.key_id,
                        )
                    )
                    if not have:
                        conn.execute(
                            insert(CosignatureRow).values(
                                size=size,
                                witness=sig.name,
                                key_id=sig.key_id,
                                signature=sig.sig,
                                cosigned_at=cosigned_at,
                            )
                        )
        except IntegrityError:
            # Another ledger process stored one of them first: store the rest one by one.
            if len(items) > 1:
                for item in items:
                    self.put_cosignatures([item])

    def cosignatures_at(self, size: int) -> list[NoteSignature]:
        with self._read() as conn:
            rows = conn.execute(
                select(CosignatureRow.witness, CosignatureRow.key_id, CosignatureRow.signature)
                .where(CosignatureRow.size == size)
                .order_by(CosignatureRow.witness, CosignatureRow.key_id)
            ).all()
        return [NoteSignature(r[0], bytes(r[1]), bytes(r[2])) for r in rows]

    def max_cosigned_size(self) -> int:
        with self._read() as conn:
            return int(conn.scalar(select(func.max(CosignatureRow.size))) or 0)

    def latest_cosigned_by(self, name: str, key_id: bytes) -> int | None:
        with self._read() as conn:
            v = conn.scalar(
                select(func.max(CosignatureRow.size)).where(
                    CosignatureRow.witness == name, CosignatureRow.key_id == key_id
                )
            )
        return int(v) if v is not None else None

    def witnessed_size(self, keys: Sequence[tuple[str, bytes]], quorum: int) -> int:
        """The largest size cosigned by at least ``quorum`` of ``keys`` (0 if none)."""
        if not keys or quorum < 1:
            return 0
        match = or_(
            *(and_(CosignatureRow.witness == n, CosignatureRow.key_id == k) for n, k in keys)
        )
        with self._read() as conn:
            v = conn.scalar(
                select(CosignatureRow.size)
                .where(match)
                .group_by(CosignatureRow.size)
                .having(func.count() >= quorum)
                .order_by(CosignatureRow.size.desc())
                .limit(1)
            )
        return int(v) if v is not None else 0

    # --- timestamps ------------------------------------------------------------------------
    def put_timestamp(self, size: int, reply: bytes, gen_time: str, tsa: str) -> None:
        try:
            with self._write() as conn:
                have = conn.scalar(select(TimestampRow.size).where(TimestampRow.size == size))
                if have is None:
                    conn.execute(
                        insert(TimestampRow).values(
                            size=size, reply=reply, gen_time=gen_time, tsa=tsa[:255]
                        )
                    )
        except IntegrityError:
            pass  # another ledger process stored one first; either token is valid

    def timestamp_at(self, size: int) -> bytes | None:
        with self._read() as conn:
            v = conn.scalar(select(TimestampRow.reply).where(TimestampRow.size == size))
        return bytes(v) if v is not None else None

    def timestamp_covering(self, size: int) -> tuple[int, bytes] | None:
        """The token of the smallest timestamped checkpoint at or above ``size``."""
        with self._read() as conn:
            row = conn.execute(
                select(TimestampRow.size, TimestampRow.reply)
                .where(TimestampRow.size >= size)
                .order_by(TimestampRow.size)
                .limit(1)
            ).first()
        return (int(row[0]), bytes(row[1])) if row else None

    def max_timestamped_size(self) -> int | None:
        with self._read() as conn:
            v = conn.scalar(select(func.max(TimestampRow.size)))
        return int(v) if v is not None else None

    def untimestamped(self, after: int, upto: int) -> list[SignedCheckpoint]:
        """Checkpoints with ``after < size <= upto`` that have no token yet, oldest first."""
        with self._read() as conn:
            rows = conn.execute(
                select(CheckpointRow.size, CheckpointRow.root, CheckpointRow.note)
                .outerjoin(TimestampRow, TimestampRow.size == CheckpointRow.size)
                .where(
                    CheckpointRow.size > after,
                    CheckpointRow.size <= upto,
                    TimestampRow.size.is_(None),
                )
                .order_by(CheckpointRow.size)
                .limit(BACKFILL_PAGE)
            ).all()
        return [SignedCheckpoint(int(r[0]), r[1], r[2]) for r in rows]
