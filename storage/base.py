"""The object-store interface shared by the filesystem and MinIO backends.

Objects are content-addressed: the key of an object is ``sha256/<hex>`` of its bytes, so
the same content is stored once and a key can never name two different contents. A
backend writes through an :class:`ObjectWriter` that makes nothing visible until
:meth:`ObjectWriter.commit` is called with the digest the caller computed; an aborted or
interrupted write leaves no object behind.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from verifier.errors import JianzhengError

SHA256_HEX = re.compile(r"[0-9a-f]{64}")


def object_key(sha256_hex: str) -> str:
    """The content address of an object: ``sha256/<64 lowercase hex digits>``."""
    if not SHA256_HEX.fullmatch(sha256_hex):
        raise ValueError(f"{sha256_hex[:80]!r} is not 64 lowercase hex digits")
    return f"sha256/{sha256_hex}"


class StorageError(JianzhengError):
    """Base of the storage errors."""


class StorageUnavailable(StorageError):
    """The backend cannot be reached or failed; retrying later with the same content is safe."""


class ObjectNotFound(StorageError, LookupError):
    """No object with that SHA-256 is stored."""


class ObjectLocked(StorageError):
    """Retention or a legal hold forbids deleting the object."""


class DigestMismatch(StorageError):
    """The bytes received do not have the SHA-256 the client announced."""

    def __init__(self, expected: str, actual: str) -> None:
        super().__init__(
            f"the uploaded bytes have SHA-256 {actual}, not the announced {expected}; "
            "nothing was stored"
        )
        self.expected = expected
        self.actual = actual


class ObjectTooLarge(StorageError):
    """The object is larger than the configured limit."""


class UploadInterrupted(StorageError):
    """The client went away (or stalled) before sending the whole object."""


@dataclass(frozen=True)
class Stored:
    """The outcome of a commit: whether these bytes were new, and the version that holds them."""

    created: bool
    #: The backend's version of the object (MinIO version id), None where there is none.
    version_id: str | None


class ObjectWriter(Protocol):
    """One upload in progress. Exactly one of ``commit`` and ``abort`` ends it."""

    def write(self, data: bytes) -> None:
        """Append the next bytes (any size)."""

    def commit(self, sha256_hex: str) -> Stored:
        """Make the object visible under ``sha256/<sha256_hex>``, the caller's verified digest."""

    def abort(self) -> None:
        """Drop everything written; never raises."""


class ObjectStore(Protocol):
    """A content-addressed store of immutable, retained objects."""

    #: "filesystem" or "minio", recorded with each object's metadata.
    kind: str

    def writer(
        self, expected_sha256: str | None, retain_until: datetime, media_type: str
    ) -> ObjectWriter:
        """Start an upload. With ``expected_sha256`` the backend may write straight to its key."""

    def stat(self, sha256_hex: str, version_id: str | None = None) -> int | None:
        """The size of the stored object, or None when it is not there."""

    def read(
        self, sha256_hex: str, version_id: str | None, offset: int, length: int
    ) -> Iterator[bytes]:
        """The bytes [offset, offset + length) in pieces; close the iterator when done early."""

    def set_legal_hold(self, sha256_hex: str, version_id: str | None, hold: bool) -> None:
        """Place or lift a legal hold on the stored version."""

    def extend_retention(self, sha256_hex: str, version_id: str | None, until: datetime) -> None:
        """Lengthen the stored version's retention to ``until``; the service calls it only
        with a date later than the current one (COMPLIANCE retention never shortens)."""

    def delete(self, sha256_hex: str, version_id: str | None) -> None:
        """Delete the stored version for good; the service checks retention first."""
