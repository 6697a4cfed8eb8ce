"""Database tables of the ledger (SQLAlchemy 2 declarative models).

The schema is created and upgraded only by the Alembic migrations in ``migrations/``;
these models describe it for queries.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class RecordRow(Base):
    """One committed record; ``idx`` is its position in the log."""

    __tablename__ = "records"
    idx: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    project: Mapped[str] = mapped_column(String(128))
    seq: Mapped[int] = mapped_column(BigInteger)
    type: Mapped[str] = mapped_column(String(64))
    event_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    #: The record's RFC 8785 canonical bytes, exactly as hashed.
    record: Mapped[bytes] = mapped_column(LargeBinary)
    poster: Mapped[str] = mapped_column(String(64))
    idempotency_key: Mapped[str | None] = mapped_column(String(128), nullable=True)
    request_digest: Mapped[bytes | None] = mapped_column(LargeBinary(32), nullable=True)
    __table_args__ = (
        UniqueConstraint("project", "seq", name="uq_records_project_seq"),
        UniqueConstraint("poster", "idempotency_key", name="uq_records_idempotency"),
    )


class TileRow(Base):
    """A C2SP tile: up to 256 hashes at Merkle level 8·level (only ever widened)."""

    __tablename__ = "tiles"
    level: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    idx: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hashes: Mapped[bytes] = mapped_column(LargeBinary)


class CheckpointRow(Base):
    """Every checkpoint the log signed, as the signed note text."""

    __tablename__ = "checkpoints"
    size: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    root: Mapped[bytes] = mapped_column(LargeBinary(32))
    note: Mapped[str] = mapped_column(Text)
    created_at: Mapped[str] = mapped_column(String(40))


class TokenRow(Base):
    """A bearer token, stored as its SHA-256 only."""

    __tablename__ = "tokens"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    label: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[str] = mapped_column(String(40))
    expires_at: Mapped[str | None] = mapped_column(String(40), nullable=True)
    revoked_at: Mapped[str | None] = mapped_column(String(40), nullable=True)


class MetaRow(Base):
    """Facts fixed when the log was created: origin and verifier key."""

    __tablename__ = "log_meta"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
