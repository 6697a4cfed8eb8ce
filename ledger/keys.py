"""The log's Ed25519 signing key and its high-water mark, kept in the data directory.

The key is created on first start (file mode 0600, never rewritten), unless every node is
given the same key file (``--log-key FILE``, :func:`load_log_key_file`). Whatever holds
it, the ledger only sees a :class:`verifier.note.NoteSigner`. Beside it, the
high-water file records the newest checkpoint this key signed, so a restart on a database
that was rolled back or swapped refuses to sign instead of forking the log.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import logging
import os
import re
import socket
import stat
import threading
from collections.abc import Callable
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_pem_private_key,
)

from ledger.errors import LedgerError
from verifier.note import ALG_ED25519, NoteError, Signer

log = logging.getLogger("jianzheng.keys")

KEY_FILE = "log.key"
HIGH_WATER_FILE = "log.head"


class LogKeyError(RuntimeError, LedgerError):
    """The key file is missing, unreadable, or names another log."""


def write_private(path: Path, text: str) -> None:
    """Create ``path`` with mode 0600 atomically; an existing file is never replaced."""
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, text.encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.link(tmp, path)  # fails if another process created the key meanwhile
    os.unlink(tmp)
    dfd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def load_or_create_key(
    path: Path, create: Callable[[], Signer], what: str, error: type[Exception]
) -> Signer:
    """The note signing key in ``path`` (the log's or a witness's), mode 0600.

    On first use ``create`` makes it and it is written with :func:`write_private`. A key
    file others may read is refused, as is one that cannot be read: ``error`` is raised,
    its message naming ``what`` ("log key", "witness key").
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        signer = create()
        try:
            write_private(path, signer.skey + "\n")
        except FileExistsError:
            pass  # lost a race with another starter: use the key it wrote
        else:
            return signer
    if path.stat().st_mode & 0o077:
        raise error(f"{path} is readable by others; chmod 600 it")
    try:
        return Signer.from_skey(path.read_text())
    except (OSError, NoteError) as e:
        raise error(f"cannot read {what} {path}: {e}") from None


def host_name() -> str:
    """This machine's host name, reduced to what a key name or an origin may hold."""
    host = re.sub(r"[^A-Za-z0-9.-]", "-", socket.getfqdn() or "localhost").strip("-.")
    return host or "localhost"


def derived_origin(private: Ed25519PrivateKey) -> str:
    """``<host name>/jianzheng/<8 hex digits>`` for a log started without an origin.

    The digits are the start of SHA-256 of the log's public key (its key ID cannot serve:
    it hashes the name, which is what is being chosen), so two installs never share an
    origin, even on hosts of one name, and a witness serving both keeps them apart.
    """
    public = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return f"{host_name()}/jianzheng/{hashlib.sha256(public).hexdigest()[:8]}"


def load_or_create_log_key(data_dir: Path, origin: str | None, *, derive: bool = False) -> Signer:
    """The log key in ``data_dir``; created on first start with ``origin`` as its name.

    Without ``origin`` on first start, the key is named :func:`derived_origin` when
    ``derive`` (``jianzheng serve``), and refused otherwise. The origin is fixed from then
    on: another ``origin`` later is an error naming both.
    """

    def create() -> Signer:
        if origin is not None:
            return Signer.generate(origin, ALG_ED25519)
        if not derive:
            raise LogKeyError("no log key yet: give the log's origin to create one")
        private = Ed25519PrivateKey.generate()
        return Signer(derived_origin(private), private, ALG_ED25519)

    path = data_dir / KEY_FILE
    signer = load_or_create_key(path, create, "log key", LogKeyError)
    if origin is not None and signer.name != origin:
        raise LogKeyError(
            f"this log's origin is {signer.name!r} (fixed on first start, stored in {path}); "
            f"--origin (or JIANZHENG_ORIGIN) {origin!r} cannot change it: a log's origin "
            f"never changes. Drop --origin, or give {signer.name!r}"
        )
    return signer


def load_log_key_file(path: Path, origin: str | None) -> Signer:
    """The log key from ``path`` (``serve --log-key FILE``): one key every node signs with.

    Two forms: the note private key jianzheng itself writes to ``<data>/log.key``
    (``PRIVATE+KEY+<origin>+<key id>+<key>``, which names the origin), or an Ed25519
    PKCS#8 PEM (``openssl genpkey -algorithm ed25519``), which does not: its origin is
    ``origin``. The file must be readable by its owner only. Anything else is refused
    with a :class:`LogKeyError` that names the file and the problem.
    """
    what = f"--log-key {path}"
    try:
        mode = path.stat().st_mode
        if not stat.S_ISREG(mode):
            raise LogKeyError(f"{what}: not a regular file")
        if mode & 0o077:
            raise LogKeyError(f"{what} is readable by others; chmod 600 it")
        data = path.read_bytes()[: 1 << 16]
    except FileNotFoundError:
        raise LogKeyError(f"{what}: no such file") from None
    except OSError as e:
        raise LogKeyError(f"{what}: cannot read it: {e.strerror or e}") from None
    text = data.decode("ascii", "replace").strip()
    if text.startswith("PRIVATE+KEY+"):
        try:
            signer = Signer.from_skey(text)
        except NoteError as e:
            raise LogKeyError(f"{what}: {e}") from None
        if signer.alg != ALG_ED25519:
            raise LogKeyError(
                f"{what} is a key of signature type {signer.alg:#04x} (a witness's "
                "cosignature key?); the log key must be a plain Ed25519 note key (0x01)"
            )
        if origin is not None and signer.name != origin:
            raise LogKeyError(
                f"{what} is the key of the log {signer.name!r}, not of --origin {origin!r}"
            )
        return signer
    if text.startswith("-----BEGIN"):
        try:
            key = load_pem_private_key(data, password=None)
        except TypeError:
            raise LogKeyError(f"{what} is encrypted; give an unencrypted key file") from None
        except (ValueError, UnsupportedAlgorithm) as e:
            raise LogKeyError(f"{what}: not a readable PEM private key ({e})") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise LogKeyError(
                f"{what} holds a {type(key).__name__.removeprefix('_')} key; the log key "
                "must be Ed25519"
            )
        if origin is None:
            raise LogKeyError(f"{what}: a PEM key names no log; give --origin too")
        try:
            return Signer(origin, key, ALG_ED25519)
        except NoteError as e:
            raise LogKeyError(f"--origin {origin!r}: {e}") from None
    raise LogKeyError(
        f"{what} is not a log key: want the note form PRIVATE+KEY+<origin>+<key id>+<key> "
        "(as jianzheng writes to <data>/log.key) or an Ed25519 PKCS#8 PEM"
    )


def read_high_water(data_dir: Path) -> tuple[int, bytes] | None:
    path = data_dir / HIGH_WATER_FILE
    try:
        size, root = path.read_text().split()
        return int(size), base64.b64decode(root)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        raise LogKeyError(f"cannot read {path}: {e}") from None


def write_high_water(data_dir: Path, size: int, root: bytes) -> None:
    """Record the newest signed checkpoint (atomic replace; fsync keeps it across power loss).

    Worker processes sharing the data directory each write after their own commits, in
    any order; under a file lock, the mark only ever moves forward.
    """
    path = data_dir / HIGH_WATER_FILE
    lock_fd = os.open(data_dir / (HIGH_WATER_FILE + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX)
        have = read_high_water(data_dir)
        if have is not None and have[0] >= size:
            return
        tmp = path.with_suffix(".tmp")
        with open(tmp, "w") as f:
            f.write(f"{size} {base64.b64encode(root).decode()}\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        os.close(lock_fd)


class HighWaterWriter:
    """Writes the high-water mark on a thread of its own, off the append path.

    :func:`write_high_water` costs an fsync (milliseconds on a real disk); done by the
    sequencer after each batch, it held up the next batch by as much. Here the sequencer
    only hands over the batch's checkpoint (:meth:`advance`) and goes on; this thread
    writes the newest mark handed over, one write for however many batches committed
    while the previous write ran. The guarantees are those of a write after each batch:
    a mark is handed over only once its checkpoint is committed, so it never runs ahead
    of the database; a crash can lose the newest updates either way (the mark is a lower
    bound, checked at start); and :meth:`close` writes the last one before it returns,
    so a log closed cleanly leaves the mark at its head. A mark that cannot be written is
    logged, never raised: it guards restarts and must not stop appends.
    """

    #: Longest sleep between checks for work (the thread also wakes when given work).
    POLL = 1.0

    def __init__(self, data_dir: Path, name: str = "jianzheng-high-water") -> None:
        self.data_dir = data_dir
        self._cv = threading.Condition()
        self._pending: tuple[int, bytes] | None = None
        self._busy = False
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def advance(self, size: int, root: bytes) -> None:
        """The checkpoint (``size``, ``root``) is committed: record it soon."""
        with self._cv:
            if self._pending is None or size > self._pending[0]:
                self._pending = (size, root)
                self._cv.notify_all()

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait (at most ``timeout`` seconds) until every mark handed over is written."""
        with self._cv:
            return self._cv.wait_for(lambda: self._pending is None and not self._busy, timeout)

    def close(self, timeout: float = 10.0) -> None:
        """Write the last mark handed over, then end the thread (bounded by ``timeout``)."""
        with self._cv:
            self._closed = True
            self._cv.notify_all()
        self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            with self._cv:
                while self._pending is None and not self._closed:
                    self._cv.wait(self.POLL)
                mark, self._pending = self._pending, None
                if mark is None:  # closed, nothing left to write
                    return
                self._busy = True
            try:
                write_high_water(self.data_dir, *mark)
            except (OSError, LogKeyError):
                log.exception("cannot record the high-water mark %d", mark[0])
            finally:
                with self._cv:
                    self._busy = False
                    self._cv.notify_all()
