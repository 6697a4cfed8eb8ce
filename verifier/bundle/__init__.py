"""Evidence bundles: one zip that proves a project's whole recorded process, offline.

The format is specified in ``docs/bundle-format.md``; in short, a zip holding

- ``manifest.json``: format and version, the log's origin and key, the witness keys and
  policy the exporting log uses, the export time, the bundle's checkpoint, and the SHA-256
  and size of every other member (after BagIt's ``manifest-sha256.txt``, RFC 8493 §2.1.3);
- ``records.jsonl``: the project's committed records in ``seq`` order, one RFC 8785
  canonical JSON record per line;
- ``proofs.jsonl``: per record, a C2SP tlog-proof of its log entry against one checkpoint;
- ``checkpoint.txt``: that checkpoint as a signed note, with the witnesses' cosignatures;
- ``project-head.txt``: a note signed by the log key stating how many records the project
  had at that checkpoint and the hash of the last one, so that a bundle with its newest
  records cut off is caught (the chain alone cannot show a missing tail), and the SHA-256
  of ``posters.json``;
- ``posters.json``: which poster committed each record and the signing keys each poster
  registered, so that a record signed with another key than the registered one is caught;
- optionally ``timestamp.tsr`` (an RFC 3161 TimeStampResp over the checkpoint body) and
  ``tsa-ca.pem``;
- ``attachments.json``: each attachment's hash, size and chunk root, and with files,
  ``files/sha256/<hex>``.

Everything here is pure: bytes (or a zip file) in, a :class:`VerificationReport` or a typed
:class:`BundleError` out. Trust never comes from the bundle: the log and witness keys and
the quorum come from a :class:`verifier.trust.TrustPolicy`; without one, the report says
plainly that only internal consistency was checked.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import os
import re
import struct
import time
import zipfile
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Literal, TypeVar

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from verifier import merkle
from verifier.canonical import CanonicalError, canonicalize, parse_strict_json
from verifier.checkpoint import Checkpoint, CheckpointError, TlogProof
from verifier.chunks import ChunkTree
from verifier.note import (
    Note,
    NoteError,
    Verifier,
    parse_note,
    parse_vkey,
    verified_by,
)
from verifier.payload import PayloadError, UnknownCatalogueVersion, load_payload_catalogues
from verifier.poster import (
    PosterSignatureError,
    RegisteredKey,
    check_registered_key,
    verify_record_signature,
)
from verifier.receipt import entry_leaf_hash
from verifier.rules import evaluate as evaluate_rules
from verifier.sealed import SEALED_SUFFIX, OpeningError, is_sealed_chain, open_record
from verifier.timestamp import TimestampError, verify_timestamp
from verifier.trust import TrustPolicy
from verifier.witnessing import cosigners

FORMAT = "jianzheng-evidence-bundle"
VERSION = 1

MANIFEST = "manifest.json"
RECORDS = "records.jsonl"
PROOFS = "proofs.jsonl"
CHECKPOINT = "checkpoint.txt"
PROJECT_HEAD = "project-head.txt"
TIMESTAMP = "timestamp.tsr"
TSA_CA = "tsa-ca.pem"
ATTACHMENTS = "attachments.json"
#: Optional (bundles before it lack it): posters of the records and their registered keys.
POSTERS = "posters.json"
#: The openings of the sealed records (verifier/sealed.py), one canonical line per record.
OPENINGS = "openings.jsonl"
FILES_PREFIX = "files/sha256/"
REQUIRED_MEMBERS = (RECORDS, PROOFS, CHECKPOINT, PROJECT_HEAD, ATTACHMENTS)

#: First line of the project-head note; never a log origin, so never a checkpoint.
PROJECT_HEAD_HEADER = "jianzheng.evidence/project-head/v1"

#: Bounds that keep a hostile bundle from exhausting memory or time.
MAX_RECORDS = 100_000
MAX_MEMBERS = 4 * MAX_RECORDS
MAX_ATTACHMENTS = MAX_MEMBERS - 16
MAX_RECORD_LINE = 1 << 20
MAX_SMALL_MEMBER = 64 << 20
MAX_RECORDS_BYTES = 4 << 30
#: All members but the attachment files together, uncompressed: what the checks may
#: inflate at most, however a zip bomb declares its members.
MAX_INFLATED_BYTES = 3 * MAX_RECORDS_BYTES + 16 * MAX_SMALL_MEMBER
MAX_DETAILS = 100
READ_BLOCK = 1 << 20

_HEX64 = re.compile(r"[0-9a-f]{64}")
#: What reading a damaged member raises (bad CRC, bad deflate stream, cut short), or a
#: member refused unread (:meth:`_Zip.refusal`).
_ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError)
#: The compression methods a bundle uses (docs/bundle-format.md).
_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)

CheckStatus = Literal["pass", "fail", "warn", "cannot_evaluate"]


class BundleError(ValueError):
    """The bundle cannot be read as an evidence bundle at all."""


class BundleFormatError(BundleError):
    """Not a zip, no manifest, an unknown format version, or a structure out of bounds."""


# --- the project head ------------------------------------------------------------------------


@dataclass(frozen=True)
class ProjectHead:
    """What the log signs about a project at export: its record count and newest record,
    (optional line ``posters``) the SHA-256 of the bundle's ``posters.json``, and
    (optional line ``sealed``) the count and newest record of its sealed chain."""

    origin: str
    project: str
    records: int
    last_event_hash: bytes
    checkpoint_size: int
    checkpoint_root: bytes
    posters_sha256: bytes | None = None
    #: (records, SHA-256 of the newest) of the sealed chain ``<project>~sealed``.
    sealed: tuple[int, bytes] | None = None

    def body(self) -> str:
        posters = ""
        if self.posters_sha256 is not None:
            posters = f"posters {base64.b64encode(self.posters_sha256).decode()}\n"
        if self.sealed is not None:
            posters += f"sealed {self.sealed[0]} {base64.b64encode(self.sealed[1]).decode()}\n"
        return (
            f"{PROJECT_HEAD_HEADER}\n"
            f"origin {self.origin}\n"
            f"project {self.project}\n"
            f"records {self.records}\n"
            f"last {base64.b64encode(self.last_event_hash).decode()}\n"
            f"checkpoint {self.checkpoint_size} {base64.b64encode(self.checkpoint_root).decode()}\n"
            f"{posters}"
        )

    @classmethod
    def parse_body(cls, text: str) -> ProjectHead:
        lines = text.split("\n")
        if len(lines) not in (7, 8, 9) or lines[-1] != "" or lines[0] != PROJECT_HEAD_HEADER:
            raise BundleError(f"project head must be the 6 to 8 lines of {PROJECT_HEAD_HEADER}")
        kv: dict[str, str] = {}
        for line in lines[1:-1]:
            key, _, value = line.partition(" ")
            if key in kv:
                raise BundleError(f"project head has two {key!r} lines")
            if key not in _HEAD_KEYS:
                raise BundleError("project head has an unknown line")
            kv[key] = value
        try:
            size, root = kv["checkpoint"].split(" ")
            posters = kv.get("posters")
            sealed = None
            if "sealed" in kv:
                count, last = kv["sealed"].split(" ")
                sealed = (int(count), base64.b64decode(last, validate=True))
            head = cls(
                kv["origin"],
                kv["project"],
                int(kv["records"]),
                base64.b64decode(kv["last"], validate=True),
                int(size),
                base64.b64decode(root, validate=True),
                base64.b64decode(posters, validate=True) if posters is not None else None,
                sealed,
            )
        except (KeyError, ValueError, binascii.Error):
            raise BundleError("project head has a malformed line") from None
        if len(head.last_event_hash) != 32 or len(head.checkpoint_root) != 32:
            raise BundleError("project head hashes must be 32 bytes")
        if head.posters_sha256 is not None and len(head.posters_sha256) != 32:
            raise BundleError("project head hashes must be 32 bytes")
        if head.sealed is not None and (len(head.sealed[1]) != 32 or head.sealed[0] < 1):
            raise BundleError("project head: the sealed line needs a count and a 32-byte hash")
        return head


_HEAD_KEYS = frozenset({"origin", "project", "records", "last", "checkpoint", "posters", "sealed"})


# --- reading the zip ---------------------------------------------------------------------------


class _Zip:
    """A zip opened for reading, with a fast raw path for stored members of a file on disk."""

    def __init__(self, source: str | os.PathLike[str] | IO[bytes] | bytes) -> None:
        self.path: Path | None = None
        self._own: IO[bytes] | None = None
        if isinstance(source, bytes):
            fileobj: IO[bytes] = io.BytesIO(source)
        elif isinstance(source, str | os.PathLike):
            self.path = Path(source)
            try:
                fileobj = self._own = open(self.path, "rb")
            except OSError as e:
                raise BundleFormatError(f"cannot open {self.path}: {e.strerror}") from None
        else:
            fileobj = source
        try:
            self.zf = zipfile.ZipFile(fileobj)
        except (zipfile.BadZipFile, OSError, ValueError) as e:
            if self._own is not None:
                self._own.close()
            raise BundleFormatError(f"not a zip file: {e}") from None
        infos = self.zf.infolist()
        if len(infos) > MAX_MEMBERS:
            self.close()
            raise BundleFormatError(f"bundle has more than {MAX_MEMBERS} members")
        # Members lie side by side in the zip, so their compressed sizes add up to less than
        # the zip: more means overlapping members, the "non-recursive" zip bomb, where every
        # member reuses the same bytes (or a damaged central directory).
        length = _length(fileobj)
        if length is not None and sum(i.compress_size for i in infos) > length:
            self.close()
            raise BundleFormatError(
                "the members' sizes add up to more than the zip: they overlap (a zip bomb?)"
            )
        inflated = sum(i.file_size for i in infos if not i.filename.startswith(FILES_PREFIX))
        if inflated > MAX_INFLATED_BYTES:
            self.close()
            raise BundleFormatError(
                f"the members other than files/ expand to {inflated} bytes, more than "
                f"{MAX_INFLATED_BYTES}"
            )
        self.members: dict[str, zipfile.ZipInfo] = {}
        self.duplicates: list[str] = []
        for info in infos:
            if info.filename in self.members:
                self.duplicates.append(info.filename)
            self.members[info.filename] = info

    def close(self) -> None:
        self.zf.close()
        if self._own is not None:
            self._own.close()

    @staticmethod
    def refusal(info: zipfile.ZipInfo) -> str | None:
        """Why the member is not read at all, or None: what a bundle never holds.

        Encrypted members and other compression methods than the format's; attachment
        files compressed (the format stores them, so their size is their size in the
        zip: no bomb); other members larger than the bound of their kind.
        """
        if info.flag_bits & 1:
            return "is encrypted"
        if info.compress_type not in _METHODS:
            return f"uses compression method {info.compress_type}, which bundles do not use"
        if info.filename.startswith(FILES_PREFIX):
            if info.compress_type != zipfile.ZIP_STORED or info.file_size != info.compress_size:
                return "is compressed; attachment files are stored uncompressed"
            return None
        large = (RECORDS, PROOFS, OPENINGS)  # a line per record
        bound = MAX_RECORDS_BYTES if info.filename in large else MAX_SMALL_MEMBER
        if info.file_size > bound:
            return f"is larger than {bound} bytes"
        return None

    def read_small(self, name: str) -> bytes:
        info = self.members.get(name)
        if info is None:
            raise KeyError(name)
        if info.file_size > MAX_SMALL_MEMBER:
            raise BundleFormatError(f"{name} is larger than {MAX_SMALL_MEMBER} bytes")
        try:
            with self.open(name) as f:
                return f.read(MAX_SMALL_MEMBER + 1)
        except _ZIP_ERRORS as e:
            raise BundleFormatError(f"{name} cannot be read: {e}") from None

    def open(self, name: str) -> IO[bytes]:
        """The member's bytes, inflated; BundleFormatError for a member :meth:`refusal` refuses."""
        info = self.members[name]
        why = self.refusal(info)
        if why is not None:
            raise BundleFormatError(f"{name} {why}")
        return self.zf.open(info)

    def raw_range(self, info: zipfile.ZipInfo) -> tuple[int, int] | None:
        """(offset, length) of a stored, unencrypted member's bytes in the file (APPNOTE 4.3.7).

        Reading that range directly skips zipfile's CRC-32 pass: the SHA-256 the verifier
        computes anyway is the stronger check, and hashing once is what keeps it fast.
        """
        if self.path is None or info.compress_type != zipfile.ZIP_STORED or info.flag_bits & 1:
            return None
        with open(self.path, "rb") as f:
            f.seek(info.header_offset)
            local = f.read(30)
            if len(local) != 30 or local[:4] != b"PK\x03\x04":
                raise BundleFormatError(f"{info.filename}: bad local header")
            n, m = struct.unpack("<HH", local[26:30])
            name = f.read(n)
        if name.decode("utf-8", "replace") != info.filename and name != info.filename.encode(
            "cp437", "replace"
        ):
            raise BundleFormatError(f"{info.filename}: local header names another file")
        return info.header_offset + 30 + n + m, info.file_size


def _length(f: IO[bytes]) -> int | None:
    """The size of a seekable file, or None."""
    try:
        here = f.tell()
        end = f.seek(0, os.SEEK_END)
        f.seek(here)
    except (OSError, ValueError, AttributeError):
        return None
    return end


def _blocks_from_range(path: Path, offset: int, length: int) -> Iterator[memoryview]:
    """The bytes [offset, offset + length) of a file, through its own handle and buffer."""
    buf = bytearray(READ_BLOCK)
    view = memoryview(buf)
    with open(path, "rb", buffering=0) as f:
        f.seek(offset)
        done = 0
        while done < length:
            n = f.readinto(view[: min(READ_BLOCK, length - done)])
            if not n:
                raise BundleFormatError("bundle file ends inside a member")
            yield view[:n]
            done += n


def _blocks_from_stream(f: IO[bytes]) -> Iterator[memoryview]:
    buf = bytearray(READ_BLOCK)
    view = memoryview(buf)
    while True:
        n = f.readinto(view)  # type: ignore[attr-defined]
        if not n:
            return
        yield view[:n]


# --- checks and the report --------------------------------------------------------------------


@dataclass
class Check:
    """One verification step: its id, result, reason (English and Chinese) and details."""

    id: str
    title_zh: str
    title_en: str
    status: CheckStatus
    message: str
    message_zh: str
    required: bool = True
    details: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "status": self.status,
            "message": self.message,
            "message_zh": self.message_zh,
            "title": self.title_en,
            "title_zh": self.title_zh,
            "required": self.required,
        }
        if self.details:
            out["details"] = self.details
        out.update(self.extra)
        return out


@dataclass
class TimelineEntry:
    seq: int
    index: int
    type: str
    occurred_at: str
    recorded_at: str
    actor: str
    attachments: int


@dataclass
class VerificationReport:
    """Everything the verifier found, ready to render as text, JSON or HTML."""

    checks: list[Check]
    project: str = ""
    trade_type: str = ""
    trusted: bool = False
    exported_at: str = ""
    log_origin: str = ""
    checkpoint_size: int = 0
    records: int = 0
    timeline: list[TimelineEntry] = field(default_factory=list)
    rules: list[Any] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True only when no check failed and every required check passed."""
        return all(c.status != "fail" for c in self.checks) and all(
            c.status == "pass" for c in self.checks if c.required
        )

    def check(self, check_id: str) -> Check:
        for c in self.checks:
            if c.id == check_id:
                return c
        raise KeyError(check_id)

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "trusted": self.trusted,
            "project": self.project,
            "trade_type": self.trade_type,
            "log_origin": self.log_origin,
            "checkpoint_size": self.checkpoint_size,
            "records": self.records,
            "exported_at": self.exported_at,
            "checks": [c.to_json() for c in self.checks],
        }


class _Checks:
    """Collects checks in order; details are bounded so a broken bundle cannot flood."""

    def __init__(self) -> None:
        self.items: list[Check] = []

    def add(
        self,
        cid: str,
        title: tuple[str, str],
        status: CheckStatus,
        en: str,
        zh: str,
        *,
        required: bool = True,
        details: Sequence[str] = (),
        **extra: Any,
    ) -> Check:
        d = list(details[:MAX_DETAILS])
        if len(details) > MAX_DETAILS:
            d.append(f"... and {len(details) - MAX_DETAILS} more")
        c = Check(cid, title[0], title[1], status, en, zh, required, d, dict(extra))
        self.items.append(c)
        return c

    def passed(self, cid: str, title: tuple[str, str], en: str, zh: str, **extra: Any) -> Check:
        return self.add(cid, title, "pass", en, zh, **extra)

    def failed_on(
        self,
        cid: str,
        title: tuple[str, str],
        problems: _Problems,
        en: str,
        zh: str,
        **extra: Any,
    ) -> Check:
        """A failing check over ``problems``: ``en``/``zh`` lead its message, which ends by
        naming the first problem; all of them (bounded) are its details."""
        return self.add(
            cid,
            title,
            "fail",
            en + problems[0],
            zh + problems.zh[0],
            details=problems,
            details_zh=problems.zh[:MAX_DETAILS],
            **extra,
        )


class _Problems(list[str]):
    """Problems found by one check: English in the list, Chinese alongside (same order)."""

    def __init__(self) -> None:
        super().__init__()
        self.zh: list[str] = []

    def append(self, en: str) -> None:
        self.add(en, en)

    def add(self, en: str, zh: str) -> None:
        super().append(en)
        self.zh.append(zh)


_T_MANIFEST = ("清单与成员完整性", "manifest and member integrity")
_T_TRUST = ("信任来源", "source of trust")
_T_LOG = ("日志签名", "log signature")
_T_WITNESS = ("见证人联署策略", "witness policy")
_T_TIMESTAMP = ("可信时间戳", "trusted timestamp")
_T_HEAD = ("项目记录总数声明", "project head")
_T_RECORDS = ("记录格式与哈希", "records and their hashes")
_T_PAYLOADS = ("记录内容与事件目录", "payloads and the event catalogue")
_T_INCLUSION = ("包含证明", "inclusion proofs")
_T_CHAIN = ("项目哈希链", "project chain")
_T_ATTACH = ("附件", "attachments")
_T_POSTER_SIG = ("提交方签名", "poster signatures")
_T_POSTER_KEYS = ("提交方登记密钥", "poster keys")
_T_RULES = ("程序规则", "process rules")
_T_OPENINGS = ("密封内容开启", "sealed openings")
#: The trust anchor of a bundle whose trust check could not be completed: none.
_NO_TRUST: tuple[Verifier | None, tuple[Verifier, ...], int] = (None, (), 0)
_T = TypeVar("_T")


def _object(doc: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    """``doc[key]`` if it is a JSON object, else an empty one: hostile JSON has any shape."""
    value = doc.get(key)
    return value if isinstance(value, dict) else {}


def _guarded(
    out: _Checks, cid: str, title: tuple[str, str], run: Callable[[], _T], fallback: _T
) -> _T:
    """Run one check; an exception it did not foresee fails that check, not the verifier.

    Every check handles the damage it expects and names it. This is the last resort that
    keeps any hostile bundle from ending the run without a report (issue 10 §5): the
    check fails (never passes) and says what went wrong; the other checks still run.
    """
    try:
        return run()
    except Exception as e:
        what = f"{type(e).__name__}: {str(e)[:200]}"
        out.add(
            cid,
            title,
            "fail",
            f"the check could not be completed on this bundle ({what})",
            f"该项核验无法在此证据包上完成（{what}）",
        )
        return fallback


# --- the verifier ------------------------------------------------------------------------------


@dataclass
class _Record:
    line: int
    raw: bytes
    obj: dict[str, Any]
    event_hash: bytes
    #: The record as posted: ``obj``, or for a sealed record with its openings checked,
    #: the opened record (verifier/sealed.py). The process rules and signatures read this.
    view: dict[str, Any] = field(default_factory=dict)
    #: A record of the sealed chain whose openings are not (validly) in the bundle.
    unopened: bool = False

    @property
    def sealed(self) -> bool:
        return is_sealed_chain(self.obj.get("project"))


class EvidenceBundle:
    """An evidence bundle opened for verification; use as a context manager or close()."""

    def __init__(self, source: str | os.PathLike[str] | IO[bytes] | bytes) -> None:
        self._zip = _Zip(source)
        try:
            raw = self._zip.read_small(MANIFEST)
        except KeyError:
            self._zip.close()
            raise BundleFormatError(f"the zip has no {MANIFEST}: not an evidence bundle") from None
        except BundleFormatError:
            self._zip.close()
            raise
        try:
            manifest = parse_strict_json(raw)
        except CanonicalError as e:
            self._zip.close()
            raise BundleFormatError(f"{MANIFEST} is not valid JSON: {e}") from None
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            self._zip.close()
            raise BundleFormatError(f"{MANIFEST} does not describe a {FORMAT}")
        if manifest.get("version") != VERSION:
            self._zip.close()
            raise BundleFormatError(
                f"bundle format version {manifest.get('version')!r} is not supported "
                f"(this verifier reads version {VERSION})"
            )
        self.manifest: dict[str, Any] = manifest

    def __enter__(self) -> EvidenceBundle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._zip.close()

    @property
    def project(self) -> str:
        return str(self.manifest.get("project", ""))

    def member(self, name: str) -> bytes:
        """A small member's bytes (records, proofs, notes); raises KeyError if absent."""
        return self._zip.read_small(name)

    # -- verification ----------------------------------------------------------------------
    def verify(
        self,
        trust: TrustPolicy | None,
        *,
        allow_untrusted: bool = False,
        check_files: bool = True,
        workers: int | None = None,
        rules: bool = True,
    ) -> VerificationReport:
        """Run every check; never raises for a bad bundle, it reports it."""
        out = _Checks()
        rep = VerificationReport(out.items)
        m = self.manifest
        rep.project = self.project
        rep.exported_at = str(m.get("exported_at", ""))
        rep.trade_type = str(m.get("trade_type", ""))
        rep.trusted = trust is not None

        def step(cid: str, title: tuple[str, str], run: Callable[[], _T], fallback: _T) -> _T:
            return _guarded(out, cid, title, run, fallback)

        step("manifest", _T_MANIFEST, lambda: self._check_manifest(out), None)
        log, witnesses, quorum = step(
            "trust", _T_TRUST, lambda: self._trust_anchor(out, trust, allow_untrusted), _NO_TRUST
        )
        sc = step("checkpoint", _T_LOG, lambda: self._check_checkpoint(out, log), None)
        rep.log_origin = sc.checkpoint.origin if sc else ""
        rep.checkpoint_size = sc.checkpoint.size if sc else 0
        step(
            "witnesses",
            _T_WITNESS,
            lambda: self._check_witnesses(out, sc, witnesses, quorum, demanded=trust is not None),
            None,
        )
        step("timestamp", _T_TIMESTAMP, lambda: self._check_timestamp(out, sc, trust), None)
        t0 = time.perf_counter()
        none: list[_Record] = []
        records = step("records", _T_RECORDS, lambda: self._check_records(out), none)
        step("sealed_openings", _T_OPENINGS, lambda: self._check_openings(out, records), None)
        rep.records = len(records)
        head = step("project_head", _T_HEAD, lambda: self._check_head(out, sc, log, records), None)
        step("inclusion", _T_INCLUSION, lambda: self._check_inclusion(out, sc, records), None)
        step("chain", _T_CHAIN, lambda: self._check_chain(out, sc, records), None)
        step("payloads", _T_PAYLOADS, lambda: self._check_payloads(out, records), None)
        step(
            "poster_signatures",
            _T_POSTER_SIG,
            lambda: self._check_poster_signatures(out, records),
            None,
        )
        step(
            "poster_keys", _T_POSTER_KEYS, lambda: self._check_poster_keys(out, records, head), None
        )
        rep.timings["records_seconds"] = time.perf_counter() - t0
        t1 = time.perf_counter()
        hashed = step(
            "attachments",
            _T_ATTACH,
            lambda: self._check_attachments(out, records, check_files, workers),
            0,
        )
        rep.timings["files_seconds"] = time.perf_counter() - t1
        rep.timings["files_bytes"] = float(hashed)
        rep.timeline = [_timeline_entry(r) for r in records]
        if rules:
            step("rules", _T_RULES, lambda: self._check_rules(out, rep, records), None)
        return rep

    # -- manifest --------------------------------------------------------------------------
    def _check_manifest(self, out: _Checks) -> None:
        m = self.manifest
        problems = _Problems()
        members = m.get("members")
        if not isinstance(members, dict):
            out.add(
                "manifest",
                _T_MANIFEST,
                "fail",
                "manifest.json has no 'members' object",
                "manifest.json 缺少 members 清单",
            )
            return
        for name in self._zip.duplicates:
            problems.add(f"{name}: appears more than once in the zip", f"{name} 在压缩包中出现多次")
        for name in REQUIRED_MEMBERS:
            if name not in members:
                problems.append(f"{name}: required member not listed in the manifest")
        present = set(self._zip.members) - {MANIFEST}
        for name in sorted(present - set(members)):
            problems.add(f"{name}: in the zip but not in the manifest", f"{name} 不在清单中")
        for name, entry in sorted(members.items()):
            info = self._zip.members.get(name)
            if info is None:
                problems.add(
                    f"{name}: listed in the manifest but missing from the zip",
                    f"清单列出的 {name} 在压缩包中缺失",
                )
                continue
            if not isinstance(entry, dict) or not isinstance(entry.get("sha256"), str):
                problems.append(f"{name}: manifest entry needs sha256 and size")
                continue
            if entry.get("size") != info.file_size:
                problems.append(
                    f"{name}: size {info.file_size} in the zip, {entry.get('size')} in the manifest"
                )
                continue
            if name.startswith(FILES_PREFIX):
                # Attachment files are hashed once, by the attachments check; here the
                # manifest entry must at least name the hash the path promises.
                if entry["sha256"] != name[len(FILES_PREFIX) :]:
                    problems.append(f"{name}: manifest sha256 differs from the file's name")
                continue
            try:
                digest = _hash_stream(self._zip.open(name))
            except _ZIP_ERRORS as e:
                problems.append(f"{name}: cannot be read ({e})")
                continue
            if digest != entry["sha256"]:
                problems.append(
                    f"{name}: SHA-256 {digest} does not match the manifest's {entry['sha256']}"
                )
        if problems:
            out.failed_on(
                "manifest",
                _T_MANIFEST,
                problems,
                f"{len(problems)} member(s) do not match the manifest; first: ",
                f"{len(problems)} 个成员与清单不符；首个：",
            )
        else:
            out.passed(
                "manifest",
                _T_MANIFEST,
                f"all {len(members)} members are present and match their SHA-256 and size",
                f"全部 {len(members)} 个成员齐全，SHA-256 与大小均与清单一致",
            )

    # -- trust -----------------------------------------------------------------------------
    def _trust_anchor(
        self, out: _Checks, trust: TrustPolicy | None, allow_untrusted: bool
    ) -> tuple[Verifier | None, tuple[Verifier, ...], int]:
        m = self.manifest
        if trust is not None:
            claimed = _object(m, "log").get("verifier_key")
            note = ""
            if isinstance(claimed, str) and claimed != trust.log.vkey:
                note = f"; the bundle names another log key ({claimed[:60]}...), which is ignored"
            out.passed(
                "trust",
                _T_TRUST,
                f"keys and witness policy come from the trust file: log {trust.log.name} "
                f"({trust.log.key_id.hex()}), {trust.quorum} of {len(trust.witnesses)} "
                f"witness(es){note}",
                f"密钥与见证策略取自信任文件：日志 {trust.log.name}（{trust.log.key_id.hex()}），"
                f"须 {len(trust.witnesses)} 个见证人中的 {trust.quorum} 个联署",
            )
            return trust.log, trust.witnesses, trust.quorum
        # No trust file: use what the bundle claims, and say so loudly.
        log: Verifier | None = None
        witnesses: list[Verifier] = []
        quorum = 0
        try:
            log = parse_vkey(str(_object(m, "log").get("verifier_key", "")))
            wp = _object(m, "witnesses")
            keys = wp.get("verifier_keys", [])
            if not isinstance(keys, list):
                raise ValueError("witnesses.verifier_keys is not a list")
            witnesses = [parse_vkey(str(v)) for v in keys[:64]]
            quorum = int(wp.get("quorum", 0))
        except (NoteError, TypeError, ValueError, AttributeError) as e:
            out.add(
                "trust",
                _T_TRUST,
                "fail",
                f"no trust file, and the keys the bundle names cannot be read: {e}",
                f"未提供信任文件，且包内声明的密钥无法解析：{e}",
            )
            return None, (), 0
        status: CheckStatus = "warn" if allow_untrusted else "fail"
        out.add(
            "trust",
            _T_TRUST,
            status,
            "NO TRUST FILE: only internal consistency was checked. The log and witness keys "
            "were taken from the bundle itself, so a bundle forged and re-signed with other "
            "keys would pass these checks. Verify with --trust FILE holding the keys you "
            "obtained independently.",
            "未提供信任文件：仅检查了证据包的内部一致性。日志与见证人密钥取自证据包本身，"
            "用其他密钥伪造并重新签名的证据包同样能通过这些检查。请使用独立获得的密钥，"
            "以 --trust 文件重新验证。",
            # Accepted (--no-trust): reported as a warning, not counted against the result.
            required=not allow_untrusted,
        )
        return log, tuple(witnesses), min(quorum, len(witnesses))

    # -- checkpoint and witnesses ----------------------------------------------------------
    def _check_checkpoint(self, out: _Checks, log: Verifier | None) -> _Signed | None:
        try:
            text = self.member(CHECKPOINT).decode("utf-8")
            note = parse_note(text)
            cp = Checkpoint.parse_body(note.text)
        except (KeyError, UnicodeDecodeError, NoteError, CheckpointError, BundleError) as e:
            out.add(
                "log_signature",
                _T_LOG,
                "fail",
                f"{CHECKPOINT} is missing or malformed: {e}",
                f"{CHECKPOINT} 缺失或格式错误：{e}",
            )
            return None
        sc = _Signed(cp, note, text)
        if log is None:
            out.add(
                "log_signature",
                _T_LOG,
                "cannot_evaluate",
                "no log key to check the checkpoint signature with",
                "没有可用于核验检查点签名的日志密钥",
            )
            return sc
        try:
            ok = log in verified_by(note, [log])
        except NoteError as e:
            out.add(
                "log_signature",
                _T_LOG,
                "fail",
                f"checkpoint of size {cp.size}: the signature under the log key's name does "
                f"not verify ({e}): the checkpoint was altered",
                f"规模为 {cp.size} 的检查点上日志密钥名下的签名无效：检查点已被改动",
            )
            return sc
        if not ok:
            out.add(
                "log_signature",
                _T_LOG,
                "fail",
                f"checkpoint of size {cp.size} is not signed by the log key {log.name} "
                f"({log.key_id.hex()}): the bundle comes from another log or was re-signed",
                f"规模为 {cp.size} 的检查点不是由日志密钥 {log.name}（{log.key_id.hex()}）签名："
                "证据包来自其他日志或被重新签名",
            )
            return sc
        if cp.origin != log.name:
            out.add(
                "log_signature",
                _T_LOG,
                "fail",
                f"checkpoint origin {cp.origin!r} is not the log key's name {log.name!r}",
                f"检查点的来源 {cp.origin!r} 与日志密钥名称 {log.name!r} 不符",
            )
            return sc
        sc.verified = True
        out.passed(
            "log_signature",
            _T_LOG,
            f"checkpoint {cp.origin} of size {cp.size} is signed by the log key {log.key_id.hex()}",
            f"规模为 {cp.size} 的检查点由日志密钥 {log.key_id.hex()} 签名",
            checkpoint_size=cp.size,
            checkpoint_root=base64.b64encode(cp.root).decode(),
        )
        return sc

    def _check_witnesses(
        self,
        out: _Checks,
        sc: _Signed | None,
        witnesses: Sequence[Verifier],
        quorum: int,
        *,
        demanded: bool,
    ) -> None:
        required = demanded and quorum > 0
        if sc is None:
            out.add(
                "witnesses",
                _T_WITNESS,
                "cannot_evaluate",
                "no readable checkpoint to count cosignatures on",
                "没有可读的检查点，无法统计联署",
                required=required,
            )
            return
        try:
            found = cosigners(sc.note, witnesses)
        except NoteError as e:
            out.add(
                "witnesses",
                _T_WITNESS,
                "fail",
                f"a cosignature under a witness's name does not verify: {e} (forged or altered)",
                f"见证人名下的联署签名无效：{e}（伪造或被改动）",
                required=required,
            )
            return
        names = ", ".join(
            f"{v.name}@{datetime.fromtimestamp(t, UTC):%Y-%m-%dT%H:%M:%SZ}" for v, t in found
        )
        if quorum == 0:
            out.add(
                "witnesses",
                _T_WITNESS,
                "pass" if demanded else "warn",
                f"no witness quorum is demanded; {len(found)} valid cosignature(s) found"
                + (f": {names}" if names else ""),
                f"未要求见证人联署；发现 {len(found)} 个有效联署",
                required=False,
                cosigners=[v.vkey for v, _ in found],
            )
            return
        if len(found) >= quorum:
            out.passed(
                "witnesses",
                _T_WITNESS,
                f"{len(found)} of {len(witnesses)} witnesses cosigned checkpoint "
                f"{sc.checkpoint.size} (quorum {quorum}): {names}",
                f"{len(witnesses)} 个见证人中有 {len(found)} 个联署了规模为 {sc.checkpoint.size} "
                f"的检查点（要求 {quorum} 个）",
                required=required,
                cosigners=[v.vkey for v, _ in found],
            )
        else:
            out.add(
                "witnesses",
                _T_WITNESS,
                "fail",
                f"only {len(found)} of the required {quorum} witness cosignatures on checkpoint "
                f"{sc.checkpoint.size}"
                + (f" ({names})" if names else "")
                + ": the checkpoint may be a split view shown only to you",
                f"规模为 {sc.checkpoint.size} 的检查点仅有 {len(found)} 个有效联署，"
                f"少于要求的 {quorum} 个：该检查点可能是只向您展示的分叉视图",
                required=required,
            )

    def _check_timestamp(self, out: _Checks, sc: _Signed | None, trust: TrustPolicy | None) -> None:
        demanded = trust is not None and trust.tsa_ca_sha256 is not None
        present = TIMESTAMP in self._zip.members
        if not present:
            out.add(
                "timestamp",
                _T_TIMESTAMP,
                "fail" if demanded else "warn",
                "the bundle has no RFC 3161 timestamp"
                + (" but the trust file demands one" if demanded else "")
                + "; the checkpoint's time rests on the witnesses' cosignature times alone",
                "证据包未附 RFC 3161 时间戳" + ("，而信任文件要求提供" if demanded else ""),
                required=demanded,
            )
            return
        if sc is None:
            out.add(
                "timestamp",
                _T_TIMESTAMP,
                "cannot_evaluate",
                "no readable checkpoint for the timestamp to cover",
                "没有可读的检查点，无法核验时间戳",
            )
            return
        try:
            reply = self.member(TIMESTAMP)
            ca = self.member(TSA_CA)
        except (KeyError, BundleError) as e:
            out.add(
                "timestamp",
                _T_TIMESTAMP,
                "fail",
                f"{TIMESTAMP} is present but {e} is missing",
                f"附有 {TIMESTAMP}，但缺少 {e}",
            )
            return
        if trust is not None and trust.tsa_ca_sha256 is not None:
            pin = _ca_fingerprint(ca)
            if pin != trust.tsa_ca_sha256:
                out.add(
                    "timestamp",
                    _T_TIMESTAMP,
                    "fail",
                    f"{TSA_CA} (SHA-256 {pin}) is not the TSA CA the trust file names",
                    f"{TSA_CA}（SHA-256 {pin}）不是信任文件指定的时间戳机构根证书",
                )
                return
        try:
            when = verify_timestamp(reply, sc.note.text.encode(), ca)
        except TimestampError as e:
            out.add(
                "timestamp",
                _T_TIMESTAMP,
                "fail",
                f"{TIMESTAMP} does not verify over checkpoint {sc.checkpoint.size}: {e}",
                f"{TIMESTAMP} 对规模为 {sc.checkpoint.size} 的检查点核验失败：{e}",
            )
            return
        ca_note = "" if demanded else f" (CA taken from the bundle's {TSA_CA})"
        out.passed(
            "timestamp",
            _T_TIMESTAMP,
            f"RFC 3161 token: checkpoint {sc.checkpoint.size} existed by "
            f"{when:%Y-%m-%dT%H:%M:%SZ}{ca_note}",
            f"RFC 3161 时间戳：规模为 {sc.checkpoint.size} 的检查点不晚于 "
            f"{when:%Y-%m-%dT%H:%M:%SZ} 已存在",
            time=when.isoformat(),
        )

    # -- records -----------------------------------------------------------------------------
    def _member_lines(self, name: str, problems: _Problems) -> Iterator[bytes | None]:
        """The member's lines; a damaged member (bad CRC or deflate data) ends them with a
        problem named, instead of an exception."""
        try:
            with self._zip.open(name) as f:
                yield from _lines(f)
        except _ZIP_ERRORS as e:
            problems.append(f"{name} is damaged and could not be read to the end: {e}")

    def _check_records(self, out: _Checks) -> list[_Record]:
        records: list[_Record] = []
        problems = _Problems()
        info = self._zip.members.get(RECORDS)
        if info is None:
            out.add("records", _T_RECORDS, "fail", f"{RECORDS} is missing", f"缺少 {RECORDS}")
            return records
        if info.file_size > MAX_RECORDS_BYTES:
            out.add(
                "records",
                _T_RECORDS,
                "fail",
                f"{RECORDS} is larger than {MAX_RECORDS_BYTES} bytes",
                f"{RECORDS} 超过 {MAX_RECORDS_BYTES} 字节",
            )
            return records
        project = self.project
        for n, line in enumerate(self._member_lines(RECORDS, problems), 1):
            if len(records) >= MAX_RECORDS:
                problems.append(f"more than {MAX_RECORDS} records: the rest were not read")
                break
            if line is None:
                problems.append(f"line {n}: longer than {MAX_RECORD_LINE} bytes")
                continue
            try:
                obj = parse_strict_json(line)
                if not isinstance(obj, dict):
                    raise CanonicalError("$", "a record must be a JSON object")
                canon = canonicalize(obj)
            except CanonicalError as e:
                problems.append(f"line {n}: not a valid record: {e}")
                continue
            where = f"line {n} (seq {obj.get('seq')}, index {obj.get('index')})"
            if canon != line:
                problems.add(
                    f"{where}: not in RFC 8785 canonical form", f"第 {n} 行记录不是规范格式"
                )
            in_sealed = obj.get("project") == project + SEALED_SUFFIX
            if in_sealed != ("commitments" in obj):
                problems.append(
                    f"{where}: a record of the sealed chain must carry commitments, and only "
                    "such a record"
                )
            if obj.get("project") != project and not in_sealed:
                problems.add(
                    f"{where}: belongs to project {obj.get('project')!r}",
                    f"第 {n} 行记录属于其他项目 {obj.get('project')!r}",
                )
            for key in ("seq", "index"):
                v = obj.get(key)
                if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                    problems.append(f"{where}: {key} is not a non-negative integer")
            records.append(_Record(n, canon, obj, hashlib.sha256(canon).digest(), obj))
        if problems:
            out.failed_on(
                "records",
                _T_RECORDS,
                problems,
                f"{len(problems)} problem(s) in {RECORDS}; first: ",
                f"{RECORDS} 有 {len(problems)} 处问题；首个：",
            )
        else:
            out.passed(
                "records",
                _T_RECORDS,
                f"{len(records)} records of project {project}, each in canonical form and hashed",
                f"项目 {project} 的 {len(records)} 条记录均为规范格式并已计算哈希",
            )
        return records

    def _check_openings(self, out: _Checks, records: list[_Record]) -> None:
        """Each sealed record's openings must match its commitments (verifier/sealed.py).

        The committed record verifies against its event hash without them; with them, each
        value is the one committed to, so a backend cannot swap an opened value (a bidder,
        a price) after the fact. Sets each record's ``view`` to the record as posted.
        """
        sealed = {r.obj.get("index"): r for r in records if r.sealed}
        if OPENINGS not in self._zip.members:
            for r in sealed.values():
                r.unopened = True
            if sealed:
                out.add(
                    "sealed_openings",
                    _T_OPENINGS,
                    "warn",
                    f"{len(sealed)} sealed record(s) but no {OPENINGS}: they verify as "
                    "commitments only, and the rules see them without their sealed values",
                    f"{len(sealed)} 条密封记录未附 {OPENINGS}：仅核验其承诺值，"
                    "规则核查不含密封内容",
                    required=False,
                )
            return
        problems = _Problems()
        seen: set[int] = set()
        for n, line in enumerate(self._member_lines(OPENINGS, problems), 1):
            try:
                doc = parse_strict_json(line or b"")
                if not isinstance(doc, dict) or set(doc) != {"index", "openings"}:
                    raise CanonicalError("$", 'want {"index", "openings"}')
            except CanonicalError as e:
                problems.append(f"{OPENINGS} line {n}: malformed ({e})")
                continue
            idx = doc["index"]
            found = sealed.get(idx) if isinstance(idx, int) else None
            if found is None or idx in seen:
                problems.append(
                    f"{OPENINGS} line {n}: index {idx!r} is not a sealed record of the bundle, "
                    "or is opened twice"
                )
                continue
            seen.add(idx)
            try:
                found.view = open_record(found.obj, doc["openings"])
            except OpeningError as e:
                found.unopened = True
                problems.add(
                    f"{_where(found)}: {e}: the opened values are not the ones the log committed",
                    f"记录 seq {found.obj.get('seq')}（日志序号 {idx}）的开启值"
                    f"与已登记的承诺不符：{e}",
                )
        for idx, r in sealed.items():
            if idx not in seen:
                r.unopened = True
                problems.append(f"{_where(r)}: sealed, and not opened in {OPENINGS}")
        if problems:
            out.failed_on(
                "sealed_openings",
                _T_OPENINGS,
                problems,
                f"{len(problems)} problem(s) opening sealed records; first: ",
                f"密封记录开启有 {len(problems)} 处问题；首个：",
            )
        else:
            out.passed(
                "sealed_openings",
                _T_OPENINGS,
                f"all {len(sealed)} sealed record(s) opened: every value matches its commitment",
                f"全部 {len(sealed)} 条密封记录已开启，每个值均与其承诺一致",
            )

    def _check_head(
        self, out: _Checks, sc: _Signed | None, log: Verifier | None, records: list[_Record]
    ) -> ProjectHead | None:
        """Check the project head; return it when it is signed by the log key."""
        try:
            note = parse_note(self.member(PROJECT_HEAD))
            head = ProjectHead.parse_body(note.text)
        except (KeyError, NoteError, BundleError) as e:
            out.add(
                "project_head",
                _T_HEAD,
                "fail",
                f"{PROJECT_HEAD} is missing or malformed: {e}",
                f"{PROJECT_HEAD} 缺失或格式错误：{e}",
            )
            return None
        if log is None:
            out.add(
                "project_head",
                _T_HEAD,
                "cannot_evaluate",
                "no log key to check the project head's signature with",
                "没有日志密钥，无法核验项目记录总数声明",
            )
            return None
        try:
            signed = log in verified_by(note, [log])
        except NoteError:
            signed = False
        problems = _Problems()
        if not signed:
            problems.add(
                f"it is not signed by the log key {log.name} ({log.key_id.hex()})",
                f"未由日志密钥 {log.name}（{log.key_id.hex()}）签名",
            )
        if head.project != self.project or head.origin != log.name:
            problems.append(f"it is about project {head.project!r} of log {head.origin!r}")
        if sc is not None and (
            head.checkpoint_size != sc.checkpoint.size or head.checkpoint_root != sc.checkpoint.root
        ):
            problems.append(
                f"it refers to checkpoint {head.checkpoint_size}, the bundle's is "
                f"{sc.checkpoint.size}"
            )
        # The head counts the process chain; its ``sealed`` line the sealed chain.
        sealed = [r for r in records if r.sealed]
        records = [r for r in records if not r.sealed]
        signed_sealed = head.sealed or (0, b"")
        if signed_sealed[0] != len(sealed):
            problems.add(
                f"the log says the project had {signed_sealed[0]} sealed records, the bundle "
                f"holds {len(sealed)}: sealed records were removed or added",
                f"日志签名声明项目有 {signed_sealed[0]} 条密封记录，证据包有 {len(sealed)} 条："
                "密封记录被删除或添加",
            )
        elif sealed and sealed[-1].event_hash != signed_sealed[1]:
            problems.append(
                f"the last sealed record (seq {sealed[-1].obj.get('seq')}) is not the one the "
                "log signed as the project's newest sealed record"
            )
        if head.records != len(records):
            if head.records > len(records):
                problems.add(
                    f"the log says the project had {head.records} records, the bundle holds "
                    f"{len(records)}: records seq {len(records)}..{head.records - 1} are "
                    "missing (the bundle was truncated)",
                    f"日志签名声明项目有 {head.records} 条记录，证据包只有 {len(records)} 条："
                    f"seq {len(records)}..{head.records - 1} 缺失（证据包被截短）",
                )
            else:
                problems.add(
                    f"the log says the project had {head.records} records, the bundle holds "
                    f"{len(records)}: {len(records) - head.records} were added",
                    f"日志签名声明项目有 {head.records} 条记录，证据包却有 {len(records)} 条："
                    f"多出 {len(records) - head.records} 条",
                )
        elif records and records[-1].event_hash != head.last_event_hash:
            problems.append(
                f"the last record (seq {records[-1].obj.get('seq')}) is not the one the log "
                "signed as the project's newest"
            )
        if problems:
            out.failed_on(
                "project_head",
                _T_HEAD,
                problems,
                "project head: ",
                "项目记录总数声明不符：",
            )
        else:
            out.passed(
                "project_head",
                _T_HEAD,
                f"the log signed that project {head.project} had exactly {head.records} records "
                f"at checkpoint {head.checkpoint_size}, the last being the bundle's last"
                + (f", and {len(sealed)} sealed records" if sealed else ""),
                f"日志签名声明项目 {head.project} 在规模为 {head.checkpoint_size} 的检查点时恰有 "
                f"{head.records} 条记录，最后一条与证据包一致",
            )
        return head if signed else None

    def _check_inclusion(self, out: _Checks, sc: _Signed | None, records: list[_Record]) -> None:
        if sc is None:
            out.add(
                "inclusion",
                _T_INCLUSION,
                "cannot_evaluate",
                "no readable checkpoint to check inclusion against",
                "没有可读的检查点，无法核验包含证明",
            )
            return
        # Keyed by log index: a project's two chains (process and sealed) share seq numbers.
        proofs: dict[int, tuple[int, str]] = {}
        problems = _Problems()
        try:
            for n, line in enumerate(self._member_lines(PROOFS, problems), 1):
                if len(proofs) > MAX_RECORDS:
                    problems.append(f"{PROOFS}: more than {MAX_RECORDS} proofs")
                    break
                try:
                    p = parse_strict_json(line or b"")
                    if not isinstance(p, dict):
                        raise CanonicalError("$", "not an object")
                    seq, idx, text = p["seq"], p["index"], p["tlog_proof"]
                    if not isinstance(seq, int) or not isinstance(text, str):
                        raise CanonicalError("$", "seq and tlog_proof have wrong types")
                    if not isinstance(idx, int) or isinstance(idx, bool):
                        raise CanonicalError("index", "not an integer")
                except (CanonicalError, KeyError) as e:
                    problems.append(f"{PROOFS} line {n}: malformed ({e})")
                    continue
                if idx in proofs:
                    problems.append(
                        f"{PROOFS} line {n}: a second proof for log index {idx} (seq {seq})"
                    )
                    continue
                proofs[idx] = (seq, text)
        except KeyError:
            problems.append(f"{PROOFS} is missing")
        cp = sc.checkpoint
        verified = 0
        for r in records:
            seq = r.obj.get("seq")
            idx = r.obj.get("index")
            where = f"record seq {seq} (log index {idx}, {RECORDS} line {r.line})"
            got = proofs.pop(idx, None) if isinstance(idx, int) else None
            if got is None:
                problems.add(
                    f"{where}: no inclusion proof in {PROOFS}", f"记录 seq {seq} 没有包含证明"
                )
                continue
            p_seq, text = got
            try:
                tp = TlogProof.parse(text)
            except CheckpointError as e:
                problems.append(f"{where}: malformed tlog-proof ({e})")
                continue
            if tp.checkpoint_text != sc.text:
                problems.add(
                    f"{where}: its proof is against another checkpoint",
                    f"记录 seq {seq} 的证明指向另一个检查点",
                )
                continue
            if tp.index != idx or p_seq != seq:
                problems.append(f"{where}: its proof is for log index {tp.index} (seq {p_seq})")
                continue
            try:
                merkle.verify_inclusion(
                    tp.index, cp.size, entry_leaf_hash(r.event_hash), tp.hashes, cp.root
                )
            except merkle.ProofError as e:
                problems.add(
                    f"{where}: not in the log at checkpoint {cp.size}: the record's hash does "
                    f"not lead to the signed root, so the record was altered or never logged "
                    f"({e})",
                    f"记录 seq {seq}（日志序号 {idx}）的哈希无法推导出已签名的根："
                    "记录被改动或从未登记",
                )
                continue
            verified += 1
        for idx in sorted(proofs)[:MAX_DETAILS]:
            problems.append(
                f"{PROOFS}: a proof for log index {idx} (seq {proofs[idx][0]}), which has no record"
            )
        if problems:
            out.failed_on(
                "inclusion",
                _T_INCLUSION,
                problems,
                f"{len(problems)} inclusion problem(s); first: ",
                f"{len(problems)} 处包含证明问题；首个：",
            )
        else:
            suffix = "" if sc.verified else " (the checkpoint's signature itself did not verify)"
            out.add(
                "inclusion",
                _T_INCLUSION,
                "pass" if sc.verified else "fail",
                f"all {verified} records are in the log under checkpoint {cp.size}{suffix}",
                f"全部 {verified} 条记录均包含在规模为 {cp.size} 的日志检查点中",
            )

    def _check_chain(self, out: _Checks, sc: _Signed | None, records: list[_Record]) -> None:
        """Each chain (the process chain, and the sealed chain if any) runs seq 0..n-1 with
        every prev linking to the record before it in that chain; the lines follow the log."""
        problems = _Problems()
        # chain -> (next seq due, hash of its previous record, that record's line)
        state: dict[bool, tuple[int, bytes, int]] = {}
        last_index = -1
        for r in records:
            o = r.obj
            pos, prev_hash, before_line = state.get(r.sealed, (0, bytes(32), 0))
            seq, idx = o.get("seq"), o.get("index")
            chain = "sealed chain " if r.sealed else ""
            where = f"{RECORDS} line {r.line} ({chain}seq {seq})"
            if seq != pos:
                if isinstance(seq, int) and seq > pos:
                    problems.add(
                        f"{where}: seq {seq} where seq {pos} was due: seq {pos}..{seq - 1} "
                        "missing or records reordered",
                        f"第 {r.line} 行应为 seq {pos}，实为 seq {seq}：记录缺失或顺序被调整",
                    )
                else:
                    problems.add(
                        f"{where}: seq {seq} where seq {pos} was due: a duplicate or a "
                        "record out of order",
                        f"第 {r.line} 行应为 seq {pos}，实为 seq {seq}：记录重复或顺序被调整",
                    )
            if o.get("prev") != base64.b64encode(prev_hash).decode():
                before = "the first record must link to zero" if pos == 0 else f"line {before_line}"
                problems.add(
                    f"{where}: prev does not link to the hash of the record before it ({before})",
                    f"第 {r.line} 行（seq {seq}）的 prev 与前一条记录的哈希不符",
                )
            if isinstance(idx, int):
                if idx <= last_index:
                    problems.append(
                        f"{where}: log index {idx} is not after the previous record's {last_index}"
                    )
                if sc is not None and idx >= sc.checkpoint.size:
                    problems.append(
                        f"{where}: log index {idx} is beyond checkpoint size {sc.checkpoint.size}"
                    )
                ref = o.get("checkpoint")
                if isinstance(ref, dict) and isinstance(ref.get("size"), int) and ref["size"] > idx:
                    problems.append(
                        f"{where}: refers to checkpoint {ref['size']}, which is not before it"
                    )
                last_index = idx
            state[r.sealed] = (pos + 1, r.event_hash, r.line)
        if problems:
            out.failed_on(
                "chain",
                _T_CHAIN,
                problems,
                f"{len(problems)} chain problem(s); first: ",
                f"哈希链有 {len(problems)} 处问题；首个：",
            )
        else:
            n = state.get(False, (0, b"", 0))[0]
            sealed = state.get(True, (0, b"", 0))[0]
            extra = f"; sealed chain seq 0..{sealed - 1} likewise" if sealed else ""
            extra_zh = f"；密封链 seq 0..{sealed - 1} 同样连续" if sealed else ""
            out.passed(
                "chain",
                _T_CHAIN,
                f"seq 0..{n - 1} contiguous, every prev links to the record before, "
                f"log order follows seq{extra}",
                f"seq 0..{n - 1} 连续，每条记录的 prev 均指向前一条记录，"
                f"日志顺序与 seq 一致{extra_zh}",
            )

    # -- poster signatures and keys ------------------------------------------------------------
    def _check_payloads(self, out: _Checks, records: list[_Record]) -> None:
        """Each record's payload against the catalogue version it was committed under."""
        cats = load_payload_catalogues()
        problems = _Problems()
        per_version: dict[int, int] = {}
        newer: set[int] = set()
        for r in records:
            version = r.obj.get("catalogue_version", 1)  # absent before version 2
            if type(version) is not int or version < 1:
                problems.add(
                    f"{_where(r)}: catalogue_version {str(version)[:20]!r} is not a version",
                    f"记录 seq {r.obj.get('seq')} 的 catalogue_version 无效",
                )
                continue
            per_version[version] = per_version.get(version, 0) + 1
            # The payload as posted (a sealed record opened); unopened, its public part.
            payload = r.view.get("payload")
            try:
                found = cats.checker(version, str(r.obj.get("type")))
            except UnknownCatalogueVersion:
                newer.add(version)
                continue
            if found is None or not isinstance(payload, dict):
                continue
            checker, sealed = found
            try:
                checker.check({k: v for k, v in payload.items() if k not in sealed})
            except PayloadError as e:
                problems.add(
                    f"{_where(r)}: payload.{e.field}: {e.problem}; expected {e.expected} "
                    f"(catalogue version {version})",
                    f"记录 seq {r.obj.get('seq')} 的 payload.{e.field}：{e.problem_zh}；"
                    f"应为{e.expected_zh}（事件目录第 {version} 版）",
                )
        counts = ", ".join(f"version {v}: {n}" for v, n in sorted(per_version.items()))
        counts_zh = "，".join(f"第 {v} 版 {n} 条" for v, n in sorted(per_version.items()))
        extra: dict[str, Any] = {"catalogue_versions": {str(v): n for v, n in per_version.items()}}
        if problems:
            out.failed_on(
                "payloads",
                _T_PAYLOADS,
                problems,
                f"{len(problems)} payload(s) break the catalogue they were committed under; "
                "first: ",
                f"{len(problems)} 条记录的内容不符合其提交时的事件目录；首个：",
                **extra,
            )
        elif newer:
            names = ", ".join(map(str, sorted(newer)))
            out.add(
                "payloads",
                _T_PAYLOADS,
                "cannot_evaluate",
                f"records were committed under catalogue version(s) {names}, newer than this "
                "verifier knows; update the verifier to check their payloads",
                f"部分记录按本验证程序未知的事件目录第 {names} 版提交，请更新验证程序",
                required=False,
                **extra,
            )
        else:
            out.passed(
                "payloads",
                _T_PAYLOADS,
                f"every payload holds to the catalogue version it was committed under "
                f"({counts or 'no records'}; version 1 typed no payloads)",
                f"每条记录的内容均符合其提交时的事件目录（{counts_zh or '无记录'}；"
                "第 1 版未规定字段类型）",
                **extra,
            )

    def _check_poster_signatures(self, out: _Checks, records: list[_Record]) -> None:
        """Every ``poster_signature`` must verify over its record; name the keys that signed."""
        problems = _Problems()
        failures: list[dict[str, Any]] = []
        signers: dict[str, int] = {}
        unsigned = 0
        for r in records:
            if r.unopened:
                continue  # a sealed record's signature is committed to, not shown
            ps = r.view.get("poster_signature")
            if ps is None:
                unsigned += 1
                continue
            try:
                verify_record_signature(r.view)
            except PosterSignatureError as e:
                where = _where(r)
                problems.add(
                    f"{where}: the poster's signature does not verify: {e}",
                    f"记录 seq {r.obj.get('seq')} 的提交方签名无效：{e}",
                )
                failures.append(_failure(r, e))
                continue
            key = str(ps["public_key"])
            signers[key] = signers.get(key, 0) + 1
        signed = sum(signers.values())
        keys = [{"public_key": k, "records": n} for k, n in sorted(signers.items())]
        extra: dict[str, Any] = {"signers": keys, "unsigned": unsigned}
        if problems:
            out.failed_on(
                "poster_signatures",
                _T_POSTER_SIG,
                problems,
                f"{len(problems)} poster signature(s) do not verify; first: ",
                f"{len(problems)} 条记录的提交方签名无效；首个：",
                failures=failures[:MAX_DETAILS],
                **extra,
            )
            return
        named = ", ".join(f"{k} ({n})" for k, n in sorted(signers.items()))
        out.passed(
            "poster_signatures",
            _T_POSTER_SIG,
            f"{signed} record(s) carry a valid poster signature, {unsigned} unsigned"
            + (f"; signed by {len(signers)} key(s): {named}" if signers else ""),
            f"{signed} 条记录的提交方签名有效，{unsigned} 条未签名"
            + (f"；签名密钥 {len(signers)} 个" if signers else ""),
            **extra,
        )

    def _check_poster_keys(
        self, out: _Checks, records: list[_Record], head: ProjectHead | None
    ) -> None:
        """Each record's key must be the one its poster registered for that log index."""
        if POSTERS not in self._zip.members:
            if head is not None and head.posters_sha256 is not None:
                out.add(
                    "poster_keys",
                    _T_POSTER_KEYS,
                    "fail",
                    f"the log signed a poster registry in {PROJECT_HEAD}, but {POSTERS} was "
                    "removed from the bundle",
                    f"日志在 {PROJECT_HEAD} 中签名了提交方登记，但 {POSTERS} 已被移除",
                )
                return
            out.add(
                "poster_keys",
                _T_POSTER_KEYS,
                "warn",
                f"the bundle has no {POSTERS} (an older export): the keys in the records were "
                "not compared with the posters' registered keys",
                f"证据包未附 {POSTERS}（旧版导出）：未将记录中的密钥与提交方登记的密钥比对",
                required=False,
            )
            return
        try:
            raw = self.member(POSTERS)
            posters, keys = _parse_posters(raw)
        except (BundleError, CanonicalError) as e:
            out.add(
                "poster_keys",
                _T_POSTER_KEYS,
                "fail",
                f"{POSTERS} is malformed: {e}",
                f"{POSTERS} 格式错误：{e}",
            )
            return
        if head is None or head.posters_sha256 != hashlib.sha256(raw).digest():
            out.add(
                "poster_keys",
                _T_POSTER_KEYS,
                "fail",
                f"{POSTERS} is not the registry the log signed in {PROJECT_HEAD}: it was "
                "replaced or altered (or the project head is not signed by the log)",
                f"{POSTERS} 与日志在 {PROJECT_HEAD} 中签名的登记不符：已被替换或改动",
            )
            return
        problems = _Problems()
        failures: list[dict[str, Any]] = []
        for r in records:
            seq = r.obj.get("seq")
            poster = posters.get((r.sealed, seq)) if isinstance(seq, int) else None
            if poster is None:
                problems.append(f"{_where(r)}: {POSTERS} names no poster for it")
                continue
            if r.unopened:
                continue  # which key signed it is sealed with it
            try:
                check_registered_key(r.view, keys.get(poster, ()))
            except PosterSignatureError as e:
                problems.add(
                    f"{_where(r)}, posted by {poster}: {e}",
                    f"记录 seq {seq}（提交方 {poster}）未按其登记的密钥签名：{e}",
                )
                failures.append({**_failure(r, e), "poster": poster})
        if problems:
            out.failed_on(
                "poster_keys",
                _T_POSTER_KEYS,
                problems,
                f"{len(problems)} record(s) not signed as their poster registered; first: ",
                f"{len(problems)} 条记录未按提交方登记的密钥签名；首个：",
                failures=failures[:MAX_DETAILS],
            )
            return
        used = sorted(set(posters.values()))
        out.passed(
            "poster_keys",
            _T_POSTER_KEYS,
            f"every record is signed (or unsigned) as its poster's registration at that log "
            f"index requires; {len(used)} poster(s), "
            f"{sum(len(keys.get(u, ())) for u in used)} registered key(s)",
            f"每条记录的签名均符合其提交方在该日志序号时登记的密钥；提交方 {len(used)} 个",
            posters=[
                {
                    "poster": u,
                    "keys": [base64.b64encode(k.public_key).decode() for k in keys.get(u, ())],
                }
                for u in used
            ],
        )

    # -- attachments -------------------------------------------------------------------------
    def _check_attachments(
        self, out: _Checks, records: list[_Record], check_files: bool, workers: int | None
    ) -> int:
        want: dict[str, tuple[int, str | None, list[int]]] = {}
        problems = _Problems()
        overflow = False
        for r in records:
            atts = r.view.get("attachments")
            if not isinstance(atts, list):
                continue
            for a in atts:
                if not isinstance(a, dict):
                    continue
                digest = a.get("sha256")
                size = a.get("size")
                root = a.get("chunk_root")
                if not isinstance(digest, str) or not _HEX64.fullmatch(digest):
                    problems.append(f"record seq {r.obj.get('seq')}: attachment with bad sha256")
                    continue
                have = want.get(digest)
                if have is None:
                    if len(want) >= MAX_ATTACHMENTS:
                        if not overflow:
                            problems.append(f"more than {MAX_ATTACHMENTS} distinct attachments")
                        overflow = True
                        continue
                    want[digest] = (size if isinstance(size, int) else -1, root, [r.obj["seq"]])
                else:
                    if have[0] != size or (root is not None and have[1] not in (None, root)):
                        problems.append(
                            f"record seq {r.obj.get('seq')}: attachment {digest} has another "
                            "size or chunk root than in earlier records"
                        )
                    have[2].append(r.obj["seq"])
        listed: dict[str, dict[str, Any]] = {}
        try:
            doc = parse_strict_json(self.member(ATTACHMENTS))
            items = doc.get("attachments") if isinstance(doc, dict) else None
            if not isinstance(items, list):
                raise CanonicalError("$", "want {'attachments': [...]}")
            for it in items:
                if isinstance(it, dict) and isinstance(it.get("sha256"), str):
                    listed[it["sha256"]] = it
        except (KeyError, CanonicalError, BundleError) as e:
            problems.append(f"{ATTACHMENTS} is missing or malformed: {e}")
        for digest, (size, root, seqs) in sorted(want.items()):
            it = listed.pop(digest, None)
            if it is None:
                problems.append(f"attachment {digest} (seq {seqs[0]}) is not in {ATTACHMENTS}")
            elif it.get("size") != size or it.get("chunk_root") != root:
                problems.append(
                    f"attachment {digest} (seq {seqs[0]}): {ATTACHMENTS} gives another size or "
                    "chunk root than the record"
                )
        for digest in sorted(listed):
            problems.append(f"{ATTACHMENTS} lists {digest}, which no record refers to")

        files_included = bool(self.manifest.get("files_included"))
        hashed = 0
        file_note = ""
        if files_included and check_files:
            results = self._hash_files(want, workers)
            for digest, (size, root, seqs) in sorted(want.items()):
                name = FILES_PREFIX + digest
                res = results.get(digest)
                where = f"{name} (attachment of seq {', '.join(map(str, seqs[:5]))})"
                if res is None:
                    problems.add(
                        f"{where}: the file is missing from the bundle",
                        f"{name}（seq {seqs[0]} 的附件）在证据包中缺失",
                    )
                    continue
                if isinstance(res, str):
                    problems.append(f"{where}: {res}")
                    continue
                got_hash, got_size, got_root = res
                hashed += got_size
                if got_hash != digest:
                    problems.add(
                        f"{where}: the file's SHA-256 is {got_hash}: it is not the file the "
                        "record refers to (swapped or altered)",
                        f"{name}（seq {seqs[0]} 的附件）的 SHA-256 为 {got_hash}：不是记录所指的"
                        "文件（被替换或改动）",
                    )
                elif got_size != size:
                    problems.append(f"{where}: {got_size} bytes where the record says {size}")
                elif root is not None and got_root != root:
                    problems.add(
                        f"{where}: chunk root {got_root} where the record says {root}",
                        f"{name} 的分块根与记录不符",
                    )
            file_note = f"; {len(want)} file(s), {hashed} bytes, re-hashed"
        elif files_included:
            file_note = "; files present but not checked (--skip-files)"
        else:
            file_note = "; files not included (export with files to check their contents)"
        if problems:
            out.failed_on(
                "attachments",
                _T_ATTACH,
                problems,
                f"{len(problems)} attachment problem(s); first: ",
                f"附件有 {len(problems)} 处问题；首个：",
            )
        else:
            out.passed(
                "attachments",
                _T_ATTACH,
                f"{len(want)} attachment(s) agree between records and {ATTACHMENTS}{file_note}",
                f"{len(want)} 个附件在记录与 {ATTACHMENTS} 中一致"
                + ("，文件已重新计算哈希" if files_included and check_files else ""),
                bytes_hashed=hashed,
            )
        return hashed

    def _hash_files(
        self, want: Mapping[str, tuple[int, str | None, list[int]]], workers: int | None
    ) -> dict[str, tuple[str, int, str] | str]:
        """SHA-256, size and chunk root of every attachment file, hashed in parallel.

        ``hashlib`` releases the GIL on large updates, so threads over separate file
        descriptors use every core; each reads with ``pread`` into its own buffer.
        """
        jobs: list[tuple[str, zipfile.ZipInfo]] = []
        for digest in want:
            info = self._zip.members.get(FILES_PREFIX + digest)
            if info is not None:
                jobs.append((digest, info))

        def one(job: tuple[str, zipfile.ZipInfo]) -> tuple[str, tuple[str, int, str] | str]:
            digest, info = job
            why = _Zip.refusal(info)
            if why is not None:
                return digest, f"not read: it {why}"
            try:
                rng = self._zip.raw_range(info)
                if rng is not None and self._zip.path is not None:
                    blocks: Iterator[memoryview] = _blocks_from_range(self._zip.path, *rng)
                    return digest, _digest_blocks(blocks)
                with self._zip.open(info.filename) as f:
                    return digest, _digest_blocks(_blocks_from_stream(f))
            except _ZIP_ERRORS as e:
                return digest, f"cannot be read ({e})"

        n = workers if workers is not None else min(4, os.cpu_count() or 1)
        if n <= 1 or self._zip.path is None or len(jobs) <= 1:
            return dict(one(j) for j in jobs)
        # Largest first, so one big file does not start last and leave a core idle.
        jobs.sort(key=lambda j: -j[1].file_size)
        with ThreadPoolExecutor(max_workers=n, thread_name_prefix="bundle-hash") as pool:
            return dict(pool.map(one, jobs))

    # -- process rules -----------------------------------------------------------------------
    def _check_rules(self, out: _Checks, rep: VerificationReport, records: list[_Record]) -> None:
        # The records as posted: sealed ones opened (their sealed values are the bids).
        results = evaluate_rules([r.view for r in records])
        rep.rules = results
        if records and not rep.trade_type:
            rep.trade_type = str(records[0].obj.get("trade_type", ""))
        for res in results:
            rule = res.rule
            required = rule.severity == "fail"
            out.add(
                rule.id,
                (rule.title_zh, rule.title_en),
                res.status,
                res.message_en,
                res.message_zh,
                required=required,
                details=[f.en for f in res.findings],
                rule=True,
                applicable=res.applicable,
                severity=rule.severity,
                source=rule.source_en,
                source_zh=rule.source_zh,
                rule_status=rule.status,
                events=res.events,
            )


@dataclass
class _Signed:
    checkpoint: Checkpoint
    note: Note
    text: str
    verified: bool = False


def _where(r: _Record) -> str:
    return (
        f"record seq {r.obj.get('seq')} (log index {r.obj.get('index')}, {RECORDS} line {r.line})"
    )


def _failure(r: _Record, e: Exception) -> dict[str, Any]:
    """A failure as data: the record, and the error's type and reason."""
    return {
        "seq": r.obj.get("seq"),
        "index": r.obj.get("index"),
        "line": r.line,
        "error": type(e).__name__,
        "reason": str(e),
    }


def _parse_posters(
    raw: bytes,
) -> tuple[dict[tuple[bool, int], str], dict[str, list[RegisteredKey]]]:
    """``posters.json``: (in the sealed chain, seq) -> poster, and poster -> its keys."""
    doc = parse_strict_json(raw)
    items = doc.get("posters") if isinstance(doc, dict) else None
    if not isinstance(items, list):
        raise BundleError('want {"posters": [...]}')
    by_seq: dict[tuple[bool, int], str] = {}
    keys: dict[str, list[RegisteredKey]] = {}
    for i, it in enumerate(items):
        where = f"posters[{i}]"
        if not isinstance(it, dict) or not isinstance(it.get("poster"), str):
            raise BundleError(f"{where}: want an object naming its poster")
        poster = it["poster"]
        seqs, regs = it.get("records"), it.get("keys")
        if poster in keys or not isinstance(seqs, list) or not isinstance(regs, list):
            raise BundleError(f"{where}: a poster once, with lists records and keys")
        sealed = it.get("sealed_records", [])
        if not isinstance(sealed, list):
            raise BundleError(f"{where}: sealed_records must be a list of seqs")
        for chain, listed in ((False, seqs), (True, sealed)):
            for seq in listed:
                if not isinstance(seq, int) or (chain, seq) in by_seq:
                    raise BundleError(f"{where}: record {seq!r} is not a seq, or has two posters")
                by_seq[(chain, seq)] = poster
        keys[poster] = []
        for k in regs:
            try:
                key = base64.b64decode(k["public_key"], validate=True)
                span = RegisteredKey(
                    key, bool(k["required"]), int(k["from_index"]), k["until_index"]
                )
            except (TypeError, KeyError, ValueError, binascii.Error):
                raise BundleError(
                    f"{where}: a key needs public_key, required, from_index and until_index"
                ) from None
            if len(key) != 32 or not (
                span.until_index is None or isinstance(span.until_index, int)
            ):
                raise BundleError(f"{where}: a key must be 32 bytes over a span of log indexes")
            keys[poster].append(span)
    return by_seq, keys


def _digest_blocks(blocks: Iterator[memoryview]) -> tuple[str, int, str]:
    """SHA-256 (hex), size and chunk root (base64) of a file's bytes, in one pass."""
    tree = ChunkTree()
    for b in blocks:
        tree.update(bytes(b))
    digest, size, root, _count = tree.finish()
    return digest.hex(), size, base64.b64encode(root).decode()


def _hash_stream(f: IO[bytes]) -> str:
    h = hashlib.sha256()
    with f:
        for b in _blocks_from_stream(f):
            h.update(b)
    return h.hexdigest()


def _lines(f: IO[bytes]) -> Iterator[bytes | None]:
    """Lines without their newline; None for a line longer than the bound (skipped)."""
    while True:
        line = f.readline(MAX_RECORD_LINE + 1)
        if not line:
            return
        if not line.endswith(b"\n"):
            if len(line) > MAX_RECORD_LINE:
                # Skip the rest of the overlong line.
                while line and not line.endswith(b"\n"):
                    line = f.readline(MAX_RECORD_LINE)
                yield None
                continue
            yield line
            return
        yield line[:-1]


def _ca_fingerprint(pem: bytes) -> str:
    """SHA-256 (hex) of the first certificate's DER in a PEM file."""
    try:
        cert = x509.load_pem_x509_certificate(pem)
    except ValueError:
        return "unreadable"
    return hashlib.sha256(cert.public_bytes(Encoding.DER)).hexdigest()


def _timeline_entry(r: _Record) -> TimelineEntry:
    o = r.view
    actor = o.get("actor") if isinstance(o.get("actor"), dict) else {}
    atts = o.get("attachments")
    return TimelineEntry(
        seq=int(o.get("seq", -1)) if isinstance(o.get("seq"), int) else -1,
        index=int(o.get("index", -1)) if isinstance(o.get("index"), int) else -1,
        type=str(o.get("type", "")),
        occurred_at=str(o.get("occurred_at", "")),
        recorded_at=str(o.get("recorded_at", "")),
        actor=f"{actor.get('id', '')} ({actor.get('role', '')})" if actor else "",
        attachments=len(atts) if isinstance(atts, list) else 0,
    )


def verify_bundle(
    source: str | os.PathLike[str] | IO[bytes] | bytes,
    trust: TrustPolicy | None,
    *,
    allow_untrusted: bool = False,
    check_files: bool = True,
    workers: int | None = None,
    rules: bool = True,
) -> VerificationReport:
    """Open and verify a bundle; raises :class:`BundleFormatError` only if it is unreadable."""
    with EvidenceBundle(source) as b:
        return b.verify(
            trust,
            allow_untrusted=allow_untrusted,
            check_files=check_files,
            workers=workers,
            rules=rules,
        )


def manifest_member(data: bytes) -> dict[str, Any]:
    """The manifest entry (SHA-256 hex and size) of a member's bytes."""
    return {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
