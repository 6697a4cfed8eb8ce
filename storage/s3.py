"""The MinIO backend (S3 API through the ``minio`` SDK 7.2.x), with Object Lock.

The bucket is created with Object Lock, which turns versioning on for good. Every
evidence object is written with COMPLIANCE retention, which nobody, the root user
included, can shorten or bypass until it expires; a legal hold can be added on top while
a complaint is open. Reads name the version the service recorded, so a later version or
delete marker under the same key can hide nothing.

Uploads are S3 multipart uploads with a fixed part size, a few parts in flight at once,
and nothing visible until CompleteMultipartUpload:

* When the client announced the SHA-256, the parts go straight to ``sha256/<hex>`` and
  the upload is completed only after the whole stream hashed to that value; otherwise it
  is aborted and no object ever existed.
* Otherwise the parts go to ``staging/<random>``; once the digest is known the staging
  object is copied server-side to its content address (with retention) and deleted.

We drive the multipart calls ourselves instead of calling ``put_object`` on a stream:
``put_object`` completes the upload as soon as the stream ends, before the caller can
refuse a digest, and when the stream raises it aborts the upload but leaves its worker
threads blocked forever, one set per failed upload.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import os
import secrets
import threading
from collections.abc import Iterator, Mapping
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NoReturn, cast

import urllib3
from minio import Minio
from minio.commonconfig import COMPLIANCE, CopySource
from minio.credentials.credentials import Credentials
from minio.datatypes import Part
from minio.error import MinioException, S3Error
from minio.helpers import DictType, check_bucket_name, genheaders
from minio.retention import Retention

try:  # zlib-ng's CRC-32 (carry-less multiply) is about four times the speed of zlib's
    from zlib_ng.zlib_ng import crc32
except ImportError:  # pragma: no cover - same function, slower
    from zlib import crc32

from storage.base import (
    ObjectLocked,
    ObjectNotFound,
    StorageUnavailable,
    Stored,
    object_key,
)

log = logging.getLogger("jianzheng.storage")

#: Every part but the last has exactly this size (S3 allows 5 MiB to 5 GiB).
PART_SIZE = 8 << 20
#: Parts uploaded at once per upload; memory per upload is about (PARALLEL + 1) parts.
PARALLEL_PARTS = 3
CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 60.0
#: Longest wait for one part (or the completion) before the upload is given up.
PART_TIMEOUT = 300.0
READ_PIECE = 1 << 20
STAGING_PREFIX = "staging/"
STALE_STAGING = timedelta(days=1)
SWEEP_LIMIT = 1000

_NOT_FOUND = frozenset({"NoSuchKey", "NoSuchVersion", "NoSuchObject"})


@dataclass(frozen=True)
class S3Config:
    """Where the MinIO server is, as given by the JIANZHENG_S3_* environment variables."""

    endpoint: str
    access_key: str
    secret_key: str
    bucket: str
    secure: bool = True
    part_size: int = PART_SIZE
    parallel: int = PARALLEL_PARTS

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> S3Config | None:
        """The configuration, or None when JIANZHENG_S3_ENDPOINT is not set.

        A partial configuration is an error rather than a silent fall-back to the
        filesystem, which would keep evidence somewhere nobody expects it.
        """
        env = os.environ if env is None else env
        endpoint = env.get("JIANZHENG_S3_ENDPOINT", "").strip()
        if not endpoint:
            return None
        missing = [
            k
            for k in ("JIANZHENG_S3_ACCESS_KEY", "JIANZHENG_S3_SECRET_KEY", "JIANZHENG_S3_BUCKET")
            if not env.get(k)
        ]
        if missing:
            raise ValueError(f"JIANZHENG_S3_ENDPOINT is set but {', '.join(missing)} is not")
        secure_text = env.get("JIANZHENG_S3_SECURE", "true").strip().lower()
        if secure_text not in ("true", "false", "1", "0", "yes", "no"):
            raise ValueError(f"JIANZHENG_S3_SECURE must be true or false, not {secure_text!r}")
        # The SDK wants host:port; accept a URL too, and let its scheme decide TLS.
        secure = secure_text in ("true", "1", "yes")
        for scheme, tls in (("http://", False), ("https://", True)):
            if endpoint.startswith(scheme):
                endpoint, secure = endpoint[len(scheme) :].rstrip("/"), tls
        return cls(
            endpoint=endpoint,
            access_key=env["JIANZHENG_S3_ACCESS_KEY"],
            secret_key=env["JIANZHENG_S3_SECRET_KEY"],
            bucket=env["JIANZHENG_S3_BUCKET"],
            secure=secure,
        )


#: Marks a part upload whose body is covered by a CRC32 instead of a signed SHA-256.
_CRC_HEADER = "x-amz-checksum-crc32"


def crc32_header(*pieces: bytes | bytearray | memoryview) -> str:
    """``x-amz-checksum-crc32`` of the concatenated pieces: base64 of the big-endian
    CRC-32 (the zlib polynomial)."""
    crc = 0
    for piece in pieces:
        crc = crc32(piece, crc)
    return base64.b64encode(crc.to_bytes(4, "big")).decode()


def _body_len(body: bytes | list[bytes | memoryview]) -> int:
    if isinstance(body, list):
        return sum(len(piece) for piece in body)
    return len(body)


class _EvidenceClient(Minio):
    """The SDK client, sending object bodies as UNSIGNED-PAYLOAD with a CRC-32 checksum.

    Over plain HTTP the SDK signs the SHA-256 of every request body (SigV4 §"payload
    hash"), and the server hashes the body again to check it: two more full SHA-256
    passes over every upload, on top of the SHA-256 and chunk tree the evidence store
    computes anyway. The bytes' integrity rests on those; what the transfer needs is only
    protection against corruption on the wire, which ``x-amz-checksum-crc32`` gives for a
    fraction of the cost: MinIO recomputes it and refuses a part that differs
    (``XAmzContentChecksumMismatch``). The headers stay signed. Over TLS the SDK itself
    sends UNSIGNED-PAYLOAD.

    Such a body may also be a list of pieces, which urllib3 sends one after the other
    under the Content-Length given here: a part goes out from the buffers the request
    body arrived in, without being copied into one.
    """

    def _build_headers(
        self,
        host: str,
        headers: DictType | None = None,
        body: bytes | None = None,
        creds: Credentials | None = None,
    ) -> tuple[DictType, datetime]:
        if body is None or not headers or _CRC_HEADER not in headers:
            return super()._build_headers(host, headers, body, creds)
        out, date = super()._build_headers(host, headers, None, creds)
        out["Content-Length"] = str(_body_len(body))
        out["x-amz-content-sha256"] = "UNSIGNED-PAYLOAD"
        return out, date


class MinioStore:
    """Content-addressed, COMPLIANCE-locked objects in one MinIO bucket."""

    kind = "minio"

    def __init__(self, config: S3Config) -> None:
        if config.part_size < 5 << 20:
            raise ValueError("S3 parts are at least 5 MiB")
        try:
            check_bucket_name(config.bucket)
        except ValueError:
            raise ValueError(
                f"{config.bucket!r} is not a valid bucket name (3 to 63 lowercase letters, "
                "digits, dots and hyphens)"
            ) from None
        self.config = config
        self.bucket = config.bucket
        http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=CONNECT_TIMEOUT, read=READ_TIMEOUT),
            maxsize=32,
            # Few, quick retries: an unreachable server must become a 503 within seconds.
            retries=urllib3.Retry(
                total=2, backoff_factor=0.2, status_forcelist=[500, 502, 503, 504]
            ),
        )
        self.client = _EvidenceClient(
            endpoint=config.endpoint,
            access_key=config.access_key,
            secret_key=config.secret_key,
            secure=config.secure,
            http_client=http,
        )
        self._ready = False
        self._ready_lock = threading.Lock()

    # --- errors ------------------------------------------------------------------------
    def _fail(self, what: str, e: Exception) -> NoReturn:
        if isinstance(e, S3Error):
            if e.code in _NOT_FOUND:
                raise ObjectNotFound(f"{what}: not stored") from e
            raise StorageUnavailable(
                f"MinIO at {self.config.endpoint} refused {what}: {e.code}: {e.message}"
            ) from e
        raise StorageUnavailable(
            f"MinIO at {self.config.endpoint} is unreachable or failing ({what}): {e}"
        ) from e

    @contextlib.contextmanager
    def _call(self, what: str) -> Iterator[None]:
        try:
            yield
        except (MinioException, urllib3.exceptions.HTTPError, OSError, ValueError) as e:
            self._fail(what, e)

    # --- bucket ------------------------------------------------------------------------
    def ensure_ready(self) -> None:
        """Create the bucket with Object Lock on first use; refuse one without it."""
        if self._ready:
            return
        with self._ready_lock:
            if self._ready:
                return
            with self._call(f"preparing bucket {self.bucket}"):
                if not self.client.bucket_exists(bucket_name=self.bucket):
                    try:
                        self.client.make_bucket(bucket_name=self.bucket, object_lock=True)
                    except S3Error as e:
                        if e.code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                            raise
                try:
                    cfg = self.client.get_object_lock_config(bucket_name=self.bucket)
                except S3Error as e:
                    if e.code != "ObjectLockConfigurationNotFoundError":
                        raise
                    cfg = None
                if cfg is None:
                    raise StorageUnavailable(
                        f"bucket {self.bucket} exists without Object Lock, so evidence in it "
                        "could be deleted; use a bucket created with Object Lock"
                    )
            self._sweep_staging()
            self._ready = True

    def _sweep_staging(self) -> None:
        """Delete staging objects that a killed process left (they were never visible)."""
        cutoff = datetime.now(UTC) - STALE_STAGING
        try:
            for n, obj in enumerate(
                self.client.list_objects(
                    bucket_name=self.bucket, prefix=STAGING_PREFIX, include_version=True
                )
            ):
                if n >= SWEEP_LIMIT:
                    break
                if obj.last_modified is not None and obj.last_modified < cutoff:
                    self.client.remove_object(
                        bucket_name=self.bucket,
                        object_name=cast(str, obj.object_name),
                        version_id=obj.version_id,
                    )
        except (MinioException, urllib3.exceptions.HTTPError, OSError) as e:
            log.warning("could not sweep stale staging objects: %s", e)

    # --- the interface -----------------------------------------------------------------
    def writer(
        self, expected_sha256: str | None, retain_until: datetime, media_type: str
    ) -> _MultipartWriter:
        self.ensure_ready()
        headers: dict[str, Any] = {"Content-Type": media_type}
        if expected_sha256 is None:
            staging = f"{STAGING_PREFIX}{secrets.token_hex(16)}"
            return _MultipartWriter(self, staging, headers, staging=True, retain=retain_until)
        key = object_key(expected_sha256)
        # Retention is set when the object is created, so it is never visible unlocked.
        headers |= genheaders(None, None, None, Retention(COMPLIANCE, retain_until), False)
        return _MultipartWriter(self, key, headers, staging=False)

    def stat(self, sha256_hex: str, version_id: str | None = None) -> int | None:
        self.ensure_ready()
        key = object_key(sha256_hex)
        try:
            with self._call(f"stat {key}"):
                st = self.client.stat_object(
                    bucket_name=self.bucket, object_name=key, version_id=version_id or None
                )
        except ObjectNotFound:
            return None
        return st.size

    def read(
        self, sha256_hex: str, version_id: str | None, offset: int, length: int
    ) -> Iterator[bytes]:
        self.ensure_ready()
        key = object_key(sha256_hex)
        if length <= 0:
            return iter(())  # the SDK reads "to the end" for length 0
        with self._call(f"read {key}"):
            resp = self.client.get_object(
                bucket_name=self.bucket,
                object_name=key,
                offset=offset,
                length=length,
                version_id=version_id or None,
            )
        return self._pieces(resp, key, length)

    def _pieces(self, resp: Any, key: str, length: int) -> Iterator[bytes]:
        got = 0
        try:
            with self._call(f"read {key}"):
                for piece in resp.stream(READ_PIECE):
                    got += len(piece)
                    yield piece
            if got != length:
                raise StorageUnavailable(f"MinIO sent {got} of {length} bytes of {key}")
        finally:
            resp.close()
            resp.release_conn()

    def set_legal_hold(self, sha256_hex: str, version_id: str | None, hold: bool) -> None:
        self.ensure_ready()
        key = object_key(sha256_hex)
        with self._call(f"legal hold on {key}"):
            if hold:
                self.client.enable_object_legal_hold(
                    bucket_name=self.bucket, object_name=key, version_id=version_id or None
                )
            else:
                self.client.disable_object_legal_hold(
                    bucket_name=self.bucket, object_name=key, version_id=version_id or None
                )

    def extend_retention(self, sha256_hex: str, version_id: str | None, until: datetime) -> None:
        """COMPLIANCE retention may be lengthened, never shortened (MinIO refuses that)."""
        self.ensure_ready()
        key = object_key(sha256_hex)
        with self._call(f"retention of {key}"):
            self.client.set_object_retention(
                bucket_name=self.bucket,
                object_name=key,
                config=Retention(COMPLIANCE, until),
                version_id=version_id or None,
            )

    def delete(self, sha256_hex: str, version_id: str | None) -> None:
        self.ensure_ready()
        key = object_key(sha256_hex)
        try:
            # Naming the version deletes it for good; without one S3 only adds a marker.
            self.client.remove_object(
                bucket_name=self.bucket, object_name=key, version_id=version_id or None
            )
        except S3Error as e:
            if e.code in ("AccessDenied", "InvalidRequest", "ObjectLocked"):
                raise ObjectLocked(f"MinIO refuses to delete {key}: {e.message}") from e
            self._fail(f"delete {key}", e)
        except (MinioException, urllib3.exceptions.HTTPError, OSError) as e:
            self._fail(f"delete {key}", e)

    # --- used by the writer --------------------------------------------------------------
    def _remove_version(self, key: str, version_id: str | None) -> None:
        try:
            self.client.remove_object(
                bucket_name=self.bucket, object_name=key, version_id=version_id or None
            )
        except (MinioException, urllib3.exceptions.HTTPError, OSError) as e:
            log.warning("could not remove %s (version %s): %s", key, version_id, e)


class _MultipartWriter:
    """One upload: parts in flight on a small pool, completed only by :meth:`commit`."""

    def __init__(
        self,
        store: MinioStore,
        key: str,
        headers: dict[str, Any],
        *,
        staging: bool,
        retain: datetime | None = None,
    ) -> None:
        self._s = store
        self._key = key
        self._headers = headers
        self._staging = staging
        self._retain = retain
        self._part_size = store.config.part_size
        # The part being gathered: the written pieces themselves (immutable bytes, or
        # views of them where a piece straddles two parts), not a copy.
        self._pieces: list[bytes | memoryview] = []
        self._fill = 0
        self._upload_id: str | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._slots = threading.BoundedSemaphore(store.config.parallel)
        self._futures: list[Future[Part]] = []
        self._done = False

    def write(self, data: bytes) -> None:
        # Pieces are kept by reference until their part is sent, which is safe only for
        # immutable bytes; anything else (a buffer its owner may fill again) is copied.
        piece = data if type(data) is bytes else bytes(data)
        if not piece:
            return
        room = self._part_size - self._fill
        if len(piece) < room:
            self._pieces.append(piece)
            self._fill += len(piece)
            return
        view = memoryview(piece)
        while len(view) >= room:
            self._pieces.append(view[:room])
            view = view[room:]
            self._send_part(self._pieces)
            self._pieces, self._fill, room = [], 0, self._part_size
        if view:
            self._pieces.append(view)
            self._fill = len(view)

    def _send_part(self, pieces: list[bytes | memoryview]) -> None:
        s = self._s
        if self._upload_id is None:
            with s._call(f"starting the upload of {self._key}"):
                self._upload_id = s.client._create_multipart_upload(
                    bucket_name=s.bucket, object_name=self._key, headers=dict(self._headers)
                )
            self._pool = ThreadPoolExecutor(s.config.parallel, thread_name_prefix="jz-s3-part")
        self._raise_failed()
        if not self._slots.acquire(timeout=PART_TIMEOUT):
            raise StorageUnavailable(f"MinIO accepted no part of {self._key} in {PART_TIMEOUT} s")
        number = len(self._futures) + 1
        assert self._pool is not None
        try:
            self._futures.append(self._pool.submit(self._upload_part, number, pieces))
        except BaseException:
            self._slots.release()
            raise

    def _upload_part(self, number: int, pieces: list[bytes | memoryview]) -> Part:
        s = self._s
        try:
            with s._call(f"uploading part {number} of {self._key}"):
                etag = s.client._upload_part(
                    bucket_name=s.bucket,
                    object_name=self._key,
                    data=cast(bytes, pieces),  # sent piece by piece (see _EvidenceClient)
                    headers={_CRC_HEADER: crc32_header(*pieces)},
                    upload_id=cast(str, self._upload_id),
                    part_number=number,
                )
            return Part(number, etag)
        finally:
            pieces.clear()  # the buffers are free as soon as the part is sent
            self._slots.release()

    def _raise_failed(self) -> None:
        for f in self._futures:
            if f.done() and f.exception() is not None:
                raise cast(BaseException, f.exception())

    def _finish_parts(self) -> list[Part]:
        _, pending = wait(self._futures, timeout=PART_TIMEOUT, return_when=FIRST_EXCEPTION)
        self._raise_failed()
        if pending:
            raise StorageUnavailable(f"MinIO did not finish the parts of {self._key} in time")
        return [f.result() for f in self._futures]

    def _complete(self, key: str) -> str | None:
        """Send what is left and make ``key`` visible; returns its version id."""
        s = self._s
        if self._upload_id is None:
            # Smaller than one part: a single PUT, sent only now that the digest is known.
            body = b"".join(self._pieces)
            self._pieces, self._fill = [], 0
            with s._call(f"storing {key}"):
                res = s.client._put_object(
                    bucket_name=s.bucket,
                    object_name=self._key,
                    data=body,
                    headers={**self._headers, _CRC_HEADER: crc32_header(body)},
                )
            return res.version_id
        if self._fill:
            self._send_part(self._pieces)
            self._pieces, self._fill = [], 0
        parts = self._finish_parts()
        with s._call(f"completing {key}"):
            res2 = s.client._complete_multipart_upload(
                bucket_name=s.bucket,
                object_name=self._key,
                upload_id=self._upload_id,
                parts=parts,
            )
        self._upload_id = None
        return res2.version_id

    def commit(self, sha256_hex: str) -> Stored:
        if self._done:
            raise RuntimeError("upload already finished")
        s = self._s
        final = object_key(sha256_hex)
        try:
            if not self._staging:
                if final != self._key:
                    raise ValueError(f"upload to {self._key} cannot be committed as {final}")
                return Stored(created=True, version_id=self._complete(final))
            staged = self._complete(self._key)
            try:
                with s._call(f"copying {self._key} to {final}"):
                    res = s.client.copy_object(
                        bucket_name=s.bucket,
                        object_name=final,
                        source=CopySource(
                            bucket_name=s.bucket, object_name=self._key, version_id=staged
                        ),
                        retention=Retention(COMPLIANCE, cast(datetime, self._retain)),
                    )
                return Stored(created=True, version_id=res.version_id)
            finally:
                s._remove_version(self._key, staged)
        except BaseException:
            self.abort()
            raise
        finally:
            self._done = True
            self._close_pool()

    def abort(self) -> None:
        self._done = True
        s = self._s
        if self._futures:
            wait(self._futures, timeout=PART_TIMEOUT)
        if self._upload_id is not None:
            try:
                s.client._abort_multipart_upload(
                    bucket_name=s.bucket, object_name=self._key, upload_id=self._upload_id
                )
            except (MinioException, urllib3.exceptions.HTTPError, OSError) as e:
                # MinIO drops incomplete uploads itself after a day; they are never visible.
                log.warning("could not abort the upload of %s: %s", self._key, e)
            self._upload_id = None
        self._close_pool()

    def _close_pool(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
        self._pieces, self._fill = [], 0
