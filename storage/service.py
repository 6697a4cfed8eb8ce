"""The evidence store: a backend plus the object metadata in the ledger database.

This is where an upload is hashed (SHA-256 and the chunk tree, in the same pass over the
bytes), checked against the digest the client announced, committed to the backend and
recorded; where retention and legal holds are decided; and where chunk proofs come from.
The API and the CLI only move bytes to and from it.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, insert, select, update
from sqlalchemy import delete as sql_delete
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from ledger.clock import Clock, SystemClock, rfc3339
from ledger.models import ObjectRow
from storage.base import (
    SHA256_HEX,
    DigestMismatch,
    ObjectLocked,
    ObjectNotFound,
    ObjectStore,
    ObjectTooLarge,
    StorageError,
    StorageUnavailable,
    Stored,
)
from storage.fs import FilesystemStore
from storage.s3 import MinioStore, S3Config
from verifier import merkle
from verifier.b64 import encode_b64
from verifier.chunks import CHUNK_SIZE, ChunkTree, chunk_count, chunk_proof

log = logging.getLogger("jianzheng.storage")

#: 政府采购法 第四十二条: procurement files are kept at least fifteen years.
DEFAULT_RETENTION = "15y"
#: Largest object accepted (a long 开标/评标 recording fits); JIANZHENG_MAX_OBJECT_BYTES.
DEFAULT_MAX_SIZE = 64 << 30
#: Uploads running at once; more are refused with 503 rather than queued without bound.
DEFAULT_MAX_UPLOADS = 16
#: Uploads running at once from one token (issue 10 §3: one token's slow uploads must not
#: take every slot); more from it are refused with 429.
DEFAULT_UPLOADS_PER_OWNER = 4

_RETENTION_RE = re.compile(r"(\d{1,6})([ydhms])")


class StorageCorrupt(StorageError):
    """The backend returned bytes that do not match the recorded hashes."""


@dataclass(frozen=True)
class RetentionPeriod:
    """How long evidence is locked: whole years (calendar) or a fixed duration."""

    years: int = 0
    delta: timedelta = timedelta(0)

    @classmethod
    def parse(cls, text: str) -> RetentionPeriod:
        """``15y``, ``3650d``, ``12h``, ``90m`` or ``30s`` (the short ones are for tests)."""
        m = _RETENTION_RE.fullmatch(text.strip())
        if m is None:
            raise ValueError(
                f"retention {text!r} is not a number followed by y, d, h, m or s (e.g. 15y)"
            )
        n, unit = int(m.group(1)), m.group(2)
        if n <= 0:
            raise ValueError("retention must be positive")
        if unit == "y":
            return cls(years=n)
        seconds = {"d": 86400, "h": 3600, "m": 60, "s": 1}[unit]
        return cls(delta=timedelta(seconds=n * seconds))

    def until(self, start: datetime) -> datetime:
        if self.years:
            try:
                end = start.replace(year=start.year + self.years)
            except ValueError:  # 29 February in a year that has none
                end = start.replace(year=start.year + self.years, month=2, day=28)
        else:
            end = start + self.delta
        # Millisecond precision, as S3 stores retain-until dates and as rfc3339 writes.
        return end.replace(microsecond=end.microsecond // 1000 * 1000)


@dataclass(frozen=True)
class ObjectInfo:
    """An object's metadata as recorded in the ledger database."""

    sha256: str
    size: int
    chunk_root: bytes
    media_type: str
    created_at: str
    legal_hold: bool
    retain_until: str
    backend: str
    version_id: str | None

    @property
    def chunk_count(self) -> int:
        return chunk_count(self.size)

    def to_json(self) -> dict[str, Any]:
        return {
            "sha256": self.sha256,
            "size": self.size,
            "chunk_root": encode_b64(self.chunk_root),
            "chunk_count": self.chunk_count,
            "media_type": self.media_type,
            "created_at": self.created_at,
            "retain_until": self.retain_until,
            "legal_hold": self.legal_hold,
        }


@dataclass(frozen=True)
class Chunk:
    """One chunk with its inclusion proof against the object's chunk root."""

    info: ObjectInfo
    index: int
    data: bytes
    proof: list[bytes]

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "chunk_count": self.info.chunk_count,
            "chunk_root": encode_b64(self.info.chunk_root),
            "data": encode_b64(self.data),
            "proof": [encode_b64(p) for p in self.proof],
        }


_COLUMNS = (
    ObjectRow.sha256,
    ObjectRow.size,
    ObjectRow.chunk_root,
    ObjectRow.media_type,
    ObjectRow.created_at,
    ObjectRow.legal_hold,
    ObjectRow.retain_until,
    ObjectRow.backend,
    ObjectRow.version_id,
)


def _info(row: Any) -> ObjectInfo:
    return ObjectInfo(
        row[0], row[1], bytes(row[2]), row[3], row[4], bool(row[5]), row[6], row[7], row[8]
    )


class _NullWriter:
    """Takes the bytes of an upload whose content is already stored, and keeps none."""

    def write(self, data: bytes) -> None:
        pass

    def commit(self, sha256_hex: str) -> Stored:  # pragma: no cover - never committed
        raise AssertionError("a content already stored is not committed again")

    def abort(self) -> None:
        pass


class UploadSlots:
    """Upload slots: at most ``total`` at once, and at most ``per_owner`` for one owner."""

    def __init__(self, total: int, per_owner: int) -> None:
        if total < 1 or per_owner < 1:
            raise ValueError("upload slots must be at least 1")
        self.total = total
        self.per_owner = per_owner
        self._lock = threading.Lock()
        self._held: dict[str, int] = {}
        self._count = 0

    def acquire(self, owner: str) -> str | None:
        """Take a slot; None if taken, else why not: ``"owner"`` (this owner holds
        ``per_owner``) or ``"total"`` (every slot is taken)."""
        with self._lock:
            mine = self._held.get(owner, 0)
            if mine >= self.per_owner:
                return "owner"
            if self._count >= self.total:
                return "total"
            self._held[owner] = mine + 1
            self._count += 1
            return None

    def release(self, owner: str) -> None:
        with self._lock:
            mine = self._held.get(owner, 0)
            if mine <= 0:
                raise ValueError(f"no upload slot held by {owner!r}")
            if mine == 1:
                del self._held[owner]
            else:
                self._held[owner] = mine - 1
            self._count -= 1

    def in_use(self) -> int:
        with self._lock:
            return self._count


class EvidenceStore:
    """Content-addressed evidence: bytes in a backend, hashes and retention in the database."""

    def __init__(
        self,
        backend: ObjectStore,
        engine: Engine,
        *,
        retention: RetentionPeriod | str = DEFAULT_RETENTION,
        max_size: int = DEFAULT_MAX_SIZE,
        max_uploads: int = DEFAULT_MAX_UPLOADS,
        uploads_per_owner: int = DEFAULT_UPLOADS_PER_OWNER,
        clock: Clock | None = None,
    ) -> None:
        self.backend = backend
        self.engine = engine
        self.retention = (
            RetentionPeriod.parse(retention) if isinstance(retention, str) else retention
        )
        self.max_size = max_size
        self.clock = clock or SystemClock()
        #: Upload slots per token; the API refuses an upload when none is free.
        self.upload_slots = UploadSlots(max_uploads, min(uploads_per_owner, max_uploads))
        self._max_uploads = max_uploads
        self._executor: ThreadPoolExecutor | None = None
        self._executor_lock = threading.Lock()

    @property
    def executor(self) -> ThreadPoolExecutor:
        """Threads that run uploads (hashing and backend writes) off the event loop."""
        with self._executor_lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(
                    self._max_uploads, thread_name_prefix="jz-upload"
                )
            return self._executor

    def close(self) -> None:
        with self._executor_lock:
            if self._executor is not None:
                self._executor.shutdown(wait=False, cancel_futures=True)
                self._executor = None

    # --- upload ------------------------------------------------------------------------
    def ingest(
        self, blocks: Iterable[bytes], expected_sha256: str | None, media_type: str
    ) -> tuple[ObjectInfo, bool]:
        """Store the stream of ``blocks``; returns its metadata and whether it was new.

        SHA-256 and the chunk tree are computed as the bytes pass through to the backend.
        Nothing becomes visible unless the whole stream arrived, fits ``max_size`` and,
        when ``expected_sha256`` is given, hashes to it.
        """
        if expected_sha256 is not None and not SHA256_HEX.fullmatch(expected_sha256):
            raise ValueError("expected_sha256 must be 64 lowercase hex digits")
        now = self.clock.now().astimezone(UTC)
        retain_until = self.retention.until(now)
        # Identical content is stored once: when the announced object is already held,
        # the body is only hashed, to answer truthfully whether it matched.
        held = self.present(expected_sha256) if expected_sha256 is not None else None
        writer = (
            _NullWriter()
            if held is not None
            else self.backend.writer(expected_sha256, retain_until, media_type)
        )
        tree = ChunkTree()
        try:
            for block in blocks:
                tree.update(block)
                if tree.size > self.max_size:
                    raise ObjectTooLarge(f"the object is larger than {self.max_size} bytes")
                writer.write(block)
            digest, size, root, _ = tree.finish()
            hexd = digest.hex()
            if expected_sha256 is not None and hexd != expected_sha256:
                raise DigestMismatch(expected_sha256, hexd)
            if held is None:
                held = self.present(hexd)
        except BaseException:
            writer.abort()
            raise
        if held is not None:
            writer.abort()
            return held, False
        stored = writer.commit(hexd)
        row = {
            "sha256": hexd,
            "size": size,
            "chunk_root": root,
            "chunk_hashes": bytes(tree.leaves),
            "media_type": media_type,
            "created_at": rfc3339(now),
            "legal_hold": False,
            "retain_until": rfc3339(retain_until),
            "backend": self.backend.kind,
            "version_id": stored.version_id,
        }
        return self._record(row)

    def _record(self, row: dict[str, Any]) -> tuple[ObjectInfo, bool]:
        """Insert the metadata row, or point an existing row at the copy just stored.

        A row exists when its copy was lost or lives in another backend (``present``
        said no): the copy just stored, with its new retention, is the one to serve.
        """
        try:
            # A writer transaction from its BEGIN (IMMEDIATE on SQLite): a deferred one that
            # reads, then writes, fails at once ("database is locked") when another writer
            # (an append, an alert) committed in between, instead of waiting its turn.
            with (
                self.engine.connect().execution_options(writer=True) as conn,
                conn.begin(),
            ):
                have = conn.execute(
                    select(ObjectRow.sha256).where(ObjectRow.sha256 == row["sha256"])
                ).first()
                if have is None:
                    conn.execute(insert(ObjectRow).values(**row))
                else:
                    conn.execute(
                        update(ObjectRow)
                        .where(ObjectRow.sha256 == row["sha256"])
                        .values(
                            backend=row["backend"],
                            version_id=row["version_id"],
                            retain_until=row["retain_until"],
                        )
                    )
                return self._must_info(conn, row["sha256"]), True
        except IntegrityError:
            # A concurrent upload of the same bytes recorded it first.
            info = self.info(row["sha256"])
            if info is None:
                raise StorageUnavailable("the object metadata could not be recorded") from None
            return info, False
        except SQLAlchemyError as e:
            raise StorageUnavailable(f"the ledger database is unavailable: {e}") from e

    @staticmethod
    def _must_info(conn: Any, sha256_hex: str) -> ObjectInfo:
        return _info(conn.execute(select(*_COLUMNS).where(ObjectRow.sha256 == sha256_hex)).one())

    # --- metadata ----------------------------------------------------------------------
    def info(self, sha256_hex: str) -> ObjectInfo | None:
        """The recorded metadata of an object, or None (database only, no backend call)."""
        try:
            with self.engine.connect() as conn:
                row = conn.execute(select(*_COLUMNS).where(ObjectRow.sha256 == sha256_hex)).first()
        except SQLAlchemyError as e:
            raise StorageUnavailable(f"the ledger database is unavailable: {e}") from e
        return _info(row) if row else None

    def infos(self, sha256_hexes: Sequence[str]) -> dict[str, ObjectInfo]:
        """The recorded metadata of each of the objects that is recorded (one query, no
        backend call); callers bound the list (a page)."""
        if not sha256_hexes:
            return {}
        try:
            with self.engine.connect() as conn:
                rows = conn.execute(
                    select(*_COLUMNS).where(ObjectRow.sha256.in_(list(sha256_hexes)))
                ).all()
        except SQLAlchemyError as e:
            raise StorageUnavailable(f"the ledger database is unavailable: {e}") from e
        return {r[0]: _info(r) for r in rows}

    def require(self, sha256_hex: str) -> ObjectInfo:
        info = self.info(sha256_hex)
        if info is None:
            raise ObjectNotFound(f"no object with SHA-256 {sha256_hex} is stored")
        return info

    def _version(self, info: ObjectInfo) -> str | None:
        # A version id recorded by another backend means nothing to this one.
        return info.version_id if info.backend == self.backend.kind else None

    def present(self, sha256_hex: str) -> ObjectInfo | None:
        """The metadata of an object whose bytes the backend holds right now, else None.

        Raises :class:`StorageUnavailable` when the backend cannot say, so that no event
        is committed pointing at an object nobody can confirm is there.
        """
        info = self.info(sha256_hex)
        if info is None:
            return None
        size = self.backend.stat(sha256_hex, self._version(info))
        if size is None:
            return None
        if size != info.size:
            raise StorageCorrupt(
                f"object {sha256_hex} is {size} bytes in the store but {info.size} recorded"
            )
        return info

    # --- reads -------------------------------------------------------------------------
    def read(self, info: ObjectInfo, offset: int, length: int) -> Iterator[bytes]:
        """Bytes [offset, offset + length) of a recorded object, in pieces."""
        if offset < 0 or length < 0 or offset + length > info.size:
            raise ValueError(f"range {offset}+{length} is outside the object ({info.size} bytes)")
        return self.backend.read(info.sha256, self._version(info), offset, length)

    def open_object(self, sha256_hex: str) -> Iterator[bytes]:
        """The whole content of a recorded object, in pieces (the bundle exporter's
        :data:`ledger.bundle.ObjectOpener`); :class:`ObjectNotFound` at once if unrecorded."""
        info = self.require(sha256_hex)
        return self.read(info, 0, info.size)

    def chunk(self, sha256_hex: str, index: int) -> Chunk:
        """Chunk ``index`` and its RFC 9162 inclusion proof against the chunk root.

        The bytes read are checked against the recorded leaf hash first: a backend that
        returns anything else is reported, never passed on with a proof.
        """
        try:
            with self.engine.connect() as conn:
                row = conn.execute(
                    select(*_COLUMNS, ObjectRow.chunk_hashes).where(ObjectRow.sha256 == sha256_hex)
                ).first()
        except SQLAlchemyError as e:
            raise StorageUnavailable(f"the ledger database is unavailable: {e}") from e
        if row is None:
            raise ObjectNotFound(f"no object with SHA-256 {sha256_hex} is stored")
        info, leaves = _info(row), bytes(row[9])
        n = info.chunk_count
        if not 0 <= index < n:
            raise ObjectNotFound(f"object {sha256_hex} has {n} chunk(s); there is no chunk {index}")
        offset = index * CHUNK_SIZE
        length = min(CHUNK_SIZE, info.size - offset)
        data = b"".join(self.read(info, offset, length))
        want = leaves[index * merkle.HASH_SIZE : (index + 1) * merkle.HASH_SIZE]
        if merkle.leaf_hash(data) != want:
            raise StorageCorrupt(f"chunk {index} of object {sha256_hex} differs from its hash")
        return Chunk(info, index, data, chunk_proof(leaves, index))

    # --- retention -----------------------------------------------------------------------
    def set_legal_hold(self, sha256_hex: str, hold: bool) -> ObjectInfo:
        """Place or lift a legal hold (in the backend first, then in the database)."""
        info = self.require(sha256_hex)
        self.backend.set_legal_hold(sha256_hex, self._version(info), hold)
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    update(ObjectRow).where(ObjectRow.sha256 == sha256_hex).values(legal_hold=hold)
                )
        except SQLAlchemyError as e:
            raise StorageUnavailable(f"the ledger database is unavailable: {e}") from e
        return self.require(sha256_hex)

    def extend_retention(self, sha256_hex: str, until: datetime) -> bool:
        """Keep the object at least until ``until`` (in the backend first, then in the
        database); True when its retention was lengthened. An earlier date changes nothing:
        retention only ever grows (S3 Object Lock in COMPLIANCE mode refuses to shorten it)."""
        info = self.require(sha256_hex)
        until = until.astimezone(UTC)
        if until <= datetime.fromisoformat(info.retain_until):
            return False
        self.backend.extend_retention(sha256_hex, self._version(info), until)
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    update(ObjectRow)
                    .where(ObjectRow.sha256 == sha256_hex, ObjectRow.retain_until < rfc3339(until))
                    .values(retain_until=rfc3339(until))
                )
        except SQLAlchemyError as e:
            raise StorageUnavailable(f"the ledger database is unavailable: {e}") from e
        return True

    def delete(self, sha256_hex: str) -> None:
        """Delete an object whose retention has expired and which is not on hold.

        Not reachable over HTTP; it exists so that retention is enforced in one place for
        both backends (MinIO refuses on its own as well).
        """
        info = self.require(sha256_hex)
        if info.legal_hold:
            raise ObjectLocked(f"object {sha256_hex} is under legal hold")
        now = rfc3339(self.clock.now())
        if now < info.retain_until:
            raise ObjectLocked(f"object {sha256_hex} is retained until {info.retain_until}")
        self.backend.delete(sha256_hex, self._version(info))
        try:
            with self.engine.begin() as conn:
                conn.execute(sql_delete(ObjectRow).where(ObjectRow.sha256 == sha256_hex))
        except SQLAlchemyError as e:
            raise StorageUnavailable(f"the ledger database is unavailable: {e}") from e


def backend_from_env(data_dir: Path, env: Mapping[str, str] | None = None) -> ObjectStore:
    """MinIO when JIANZHENG_S3_ENDPOINT (and its companions) are set, else the filesystem."""
    cfg = S3Config.from_env(env)
    if cfg is None:
        return FilesystemStore(data_dir / "objects")
    return MinioStore(cfg)


def open_evidence_store(
    data_dir: Path,
    engine: Engine,
    env: Mapping[str, str] | None = None,
    *,
    max_uploads: int = DEFAULT_MAX_UPLOADS,
    uploads_per_owner: int = DEFAULT_UPLOADS_PER_OWNER,
) -> EvidenceStore:
    """The evidence store the service uses, configured from the environment.

    JIANZHENG_RETENTION (default 15y) and JIANZHENG_MAX_OBJECT_BYTES (default 64 GiB)
    apply to both backends; the upload slots come from ``jianzheng serve``'s flags.
    """
    env = os.environ if env is None else env
    max_text = env.get("JIANZHENG_MAX_OBJECT_BYTES", "").strip()
    if max_text and not max_text.isdigit():
        raise ValueError(f"JIANZHENG_MAX_OBJECT_BYTES must be a number of bytes, not {max_text!r}")
    return EvidenceStore(
        backend_from_env(data_dir, env),
        engine,
        retention=env.get("JIANZHENG_RETENTION", DEFAULT_RETENTION),
        max_size=int(max_text) if max_text else DEFAULT_MAX_SIZE,
        max_uploads=max_uploads,
        uploads_per_owner=uploads_per_owner,
    )
