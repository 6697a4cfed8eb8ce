"""The embedded backend: objects as read-only files under ``<data>/objects/sha256/<hex>``.

An upload goes to a private file in ``<data>/objects/tmp/``, is flushed to disk, made
read-only, and only then linked to its content address. ``link`` fails when the name
exists, so a second upload of the same content can never replace the first (a plain
``rename`` would silently overwrite it). Retention and legal holds live in the ledger
database and are enforced by :mod:`storage.service` before :meth:`FilesystemStore.delete`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

from storage.base import ObjectNotFound, StorageUnavailable, Stored, object_key

log = logging.getLogger("jianzheng.storage")

READ_PIECE = 1 << 20
#: A temporary file older than this is the leftover of a killed upload.
STALE_TMP_SECONDS = 24 * 3600


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _FileWriter:
    def __init__(self, store: FilesystemStore) -> None:
        self._store = store
        self._path: Path | None = store.tmp / f"{secrets.token_hex(16)}.part"
        try:
            self._fd: int | None = os.open(self._path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except OSError as e:
            raise StorageUnavailable(f"cannot create {self._path}: {e}") from e

    def write(self, data: bytes) -> None:
        if self._fd is None:
            raise ValueError("write after the upload ended")
        view = memoryview(data)
        try:
            while view:
                n = os.write(self._fd, view)
                view = view[n:]
        except OSError as e:
            raise StorageUnavailable(f"cannot write {self._path}: {e}") from e

    def commit(self, sha256_hex: str) -> Stored:
        final = self._store.path(sha256_hex)
        if self._fd is None or self._path is None:
            raise ValueError("commit after the upload ended")
        try:
            os.fsync(self._fd)
            # Read-only from here on: nothing in the service opens an object for writing.
            os.fchmod(self._fd, 0o444)
            os.close(self._fd)
            self._fd = None
            try:
                os.link(self._path, final)
                created = True
            except FileExistsError:
                created = False  # the same bytes were stored meanwhile
            os.unlink(self._path)
            self._path = None
            _fsync_dir(final.parent)
        except OSError as e:
            self.abort()
            raise StorageUnavailable(f"cannot store {final}: {e}") from e
        return Stored(created=created, version_id=None)

    def abort(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None
        if self._path is not None:
            with contextlib.suppress(OSError):
                os.unlink(self._path)
            self._path = None


class FilesystemStore:
    """Objects in a local directory, with the same semantics as the MinIO backend."""

    kind = "filesystem"

    def __init__(self, root: Path) -> None:
        self.root = root
        self.objects = root / "sha256"
        self.tmp = root / "tmp"
        self.objects.mkdir(parents=True, exist_ok=True)
        self.tmp.mkdir(parents=True, exist_ok=True)
        self._sweep()

    def _sweep(self) -> None:
        """Remove temporary files left by uploads of a killed process (never visible)."""
        now = time.time()
        for p in self.tmp.glob("*.part"):
            with contextlib.suppress(OSError):
                if now - p.stat().st_mtime > STALE_TMP_SECONDS:
                    p.unlink()

    def path(self, sha256_hex: str) -> Path:
        return self.root / object_key(sha256_hex)

    def writer(
        self, expected_sha256: str | None, retain_until: datetime, media_type: str
    ) -> _FileWriter:
        return _FileWriter(self)

    def stat(self, sha256_hex: str, version_id: str | None = None) -> int | None:
        try:
            return self.path(sha256_hex).stat().st_size
        except FileNotFoundError:
            return None
        except OSError as e:
            raise StorageUnavailable(f"cannot stat object {sha256_hex}: {e}") from e

    def read(
        self, sha256_hex: str, version_id: str | None, offset: int, length: int
    ) -> Iterator[bytes]:
        try:
            f = open(self.path(sha256_hex), "rb")
        except FileNotFoundError:
            raise ObjectNotFound(f"object {sha256_hex} is not stored") from None
        except OSError as e:
            raise StorageUnavailable(f"cannot open object {sha256_hex}: {e}") from e
        return self._pieces(f, offset, length)

    @staticmethod
    def _pieces(f: BinaryIO, offset: int, length: int) -> Iterator[bytes]:
        with f:
            f.seek(offset)
            left = length
            while left > 0:
                piece = f.read(min(READ_PIECE, left))
                if not piece:
                    raise StorageUnavailable("object file is shorter than its recorded size")
                left -= len(piece)
                yield piece

    def set_legal_hold(self, sha256_hex: str, version_id: str | None, hold: bool) -> None:
        # The hold is recorded in the ledger database, which the service checks on delete.
        if self.stat(sha256_hex) is None:
            raise ObjectNotFound(f"object {sha256_hex} is not stored")

    def extend_retention(self, sha256_hex: str, version_id: str | None, until: datetime) -> None:
        # Retention is recorded in the ledger database, which the service checks on delete.
        if self.stat(sha256_hex) is None:
            raise ObjectNotFound(f"object {sha256_hex} is not stored")

    def delete(self, sha256_hex: str, version_id: str | None) -> None:
        p = self.path(sha256_hex)
        try:
            p.unlink()
            _fsync_dir(p.parent)
        except FileNotFoundError:
            raise ObjectNotFound(f"object {sha256_hex} is not stored") from None
        except OSError as e:
            raise StorageUnavailable(f"cannot delete object {sha256_hex}: {e}") from e
