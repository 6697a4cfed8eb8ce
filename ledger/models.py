"""Database tables of the ledger (SQLAlchemy 2 declarative models).

The schema is created and upgraded only by the Alembic migrations in ``migrations/``;
these models describe it for queries.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Float,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
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


class ProjectRow(Base):
    """A project's trade type, fixed by its first record and written in that record's
    transaction (issue 10 §1): every later event must match it, and every scope check
    reads it. Access chains (``<project>~access``) have no row; they are their project's."""

    __tablename__ = "projects"
    project: Mapped[str] = mapped_column(String(128), primary_key=True)
    trade_type: Mapped[str] = mapped_column(String(16))
    #: Log index of the project's first record (seq 0).
    first_index: Mapped[int] = mapped_column(BigInteger)


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
    #: JSON lists; NULL means all projects / all trade types.
    scope_projects: Mapped[str | None] = mapped_column(Text, nullable=True)
    scope_trade_types: Mapped[str | None] = mapped_column(Text, nullable=True)


class PosterKeyRow(Base):
    """An Ed25519 key a platform poster signs its events with (one per token)."""

    __tablename__ = "poster_keys"
    token_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    public_key: Mapped[bytes] = mapped_column(LargeBinary(32))
    required: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[str] = mapped_column(String(40))


class PosterKeyHistoryRow(Base):
    """Every key a poster ever registered, and the log positions it covered.

    A record at log index ``i`` posted by ``token_id`` was due to be signed with the key
    whose ``from_index <= i < until_index`` (``until_index`` NULL: still current). Evidence
    bundles carry this, so the verifier can tell the key in a record from the registered one.
    """

    __tablename__ = "poster_key_history"
    token_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    from_index: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    until_index: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    public_key: Mapped[bytes] = mapped_column(LargeBinary(32))
    required: Mapped[bool] = mapped_column(Boolean)
    registered_at: Mapped[str] = mapped_column(String(40))


class ObjectCitationRow(Base):
    """An evidence object cited as an attachment by the record at log index ``idx``.

    Written by the sequencer in the transaction that commits the record, so object reads
    are authorised by project (and sealing) with one indexed lookup, never a scan of records.
    """

    __tablename__ = "object_citations"
    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    idx: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    project: Mapped[str] = mapped_column(String(128))
    trade_type: Mapped[str] = mapped_column(String(16))
    event_type: Mapped[str] = mapped_column(String(64))


class SealedOpeningRow(Base):
    """The openings of a sealed record at log index ``idx`` (verifier/sealed.py).

    Written with the record; read only for sealed readers after the project's opening.
    """

    __tablename__ = "sealed_openings"
    idx: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    project: Mapped[str] = mapped_column(String(128))
    #: Canonical JSON ``{path: {"salt", "value"}}``.
    openings: Mapped[bytes] = mapped_column(LargeBinary)


class MetaRow(Base):
    """Facts fixed when the log was created: origin and verifier key."""

    __tablename__ = "log_meta"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class ObjectRow(Base):
    """An evidence object held by the object store (storage issue): its hashes and retention.

    ``chunk_hashes`` holds the leaf hash of every 1 MiB chunk (32 bytes each), from which
    the service answers chunk inclusion proofs without reading the object.
    """

    __tablename__ = "objects"
    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    chunk_root: Mapped[bytes] = mapped_column(LargeBinary(32))
    chunk_hashes: Mapped[bytes] = mapped_column(LargeBinary)
    media_type: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[str] = mapped_column(String(40))
    legal_hold: Mapped[bool] = mapped_column(Boolean)
    retain_until: Mapped[str] = mapped_column(String(40))
    #: "filesystem" or "minio", and the MinIO version id that holds the locked bytes.
    backend: Mapped[str] = mapped_column(String(16))
    version_id: Mapped[str | None] = mapped_column(String(128), nullable=True)


class CosignatureRow(Base):
    """A witness's C2SP tlog-cosignature v1 on one of the log's checkpoints (witness issue).

    ``signature`` is the 72-byte cosignature/v1 value: the 8-byte time, then Ed25519.
    """

    __tablename__ = "cosignatures"
    size: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    witness: Mapped[str] = mapped_column(String(255), primary_key=True)
    key_id: Mapped[bytes] = mapped_column(LargeBinary(4), primary_key=True)
    signature: Mapped[bytes] = mapped_column(LargeBinary)
    cosigned_at: Mapped[int] = mapped_column(BigInteger)


class TimestampRow(Base):
    """The RFC 3161 TimeStampResp (DER) over a checkpoint's note body (witness issue)."""

    __tablename__ = "checkpoint_timestamps"
    size: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    reply: Mapped[bytes] = mapped_column(LargeBinary)
    gen_time: Mapped[str] = mapped_column(String(40))
    #: "builtin" or the external TSA's URL.
    tsa: Mapped[str] = mapped_column(String(255))


class ConsoleSessionRow(Base):
    """A web console session (api/console): a signed-in token, by the SHA-256 of the
    session id its cookie carries, with the form (CSRF) secret and an expiry.

    Every page joins it with the token's row, so revoking or expiring the token ends its
    sessions at once; signing out deletes the row.
    """

    __tablename__ = "console_sessions"
    id_hash: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    token_id: Mapped[str] = mapped_column(String(32))
    csrf: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[str] = mapped_column(String(40))
    expires_at: Mapped[str] = mapped_column(String(40))


class AlertSubscriptionRow(Base):
    """A supervisor's webhook (issue 17): where alerts go, the HMAC secret, and how far
    delivery got: every alert of the supervision chain after ``delivered_seq`` that the
    owner token's scope covers is still owed (the persistent queue)."""

    __tablename__ = "alert_subscriptions"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    token_id: Mapped[str] = mapped_column(String(32))
    url: Mapped[str] = mapped_column(String(2048))
    secret: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[str] = mapped_column(String(40))
    delivered_seq: Mapped[int] = mapped_column(BigInteger)
    #: Failed attempts at the alert after ``delivered_seq`` (the backoff's exponent).
    attempts: Mapped[int] = mapped_column(Integer)
    #: Unix time before which the next attempt waits.
    next_attempt_at: Mapped[float] = mapped_column(Float)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    #: The process delivering it now, until ``lease_until`` (one deliverer per webhook
    #: across ``serve --workers``).
    lease_owner: Mapped[str | None] = mapped_column(String(64), nullable=True)
    lease_until: Mapped[float] = mapped_column(Float)


class AlertStateRow(Base):
    """The detection worker's cursor over the log (``value``: the last log index read) and
    its lease: one process at a time reads new records for alerts."""

    __tablename__ = "alert_state"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger)
    owner: Mapped[str | None] = mapped_column(String(64), nullable=True)
    lease_until: Mapped[float] = mapped_column(Float)


class HighWaterRow(Base):
    """The newest checkpoint any node signed (one row, ``id`` 1): moved by compare-and-swap
    in the checkpoint's own transaction (issue 16)."""

    __tablename__ = "log_high_water"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    root: Mapped[bytes] = mapped_column(LargeBinary)


class AuthEpochRow(Base):
    """One counter (``id`` 1), bumped by every token revocation and poster-key change, so
    every node drops what it cached of tokens and keys at its next request (issue 16)."""

    __tablename__ = "auth_epoch"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger)
