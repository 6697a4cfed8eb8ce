"""Posted events and committed records: validation, completion and hashing.

A platform posts an *event*; the ledger completes it into a *record* by adding ``seq``,
``prev``, ``index``, ``recorded_at``, ``salt`` and ``checkpoint``. The event hash is the
SHA-256 of the record's RFC 8785 canonical form, and the public log entry is only the
commitment ``0x01 || event hash``: the log can be published and witnessed while who bid,
and for how much, stays secret (招标投标法 第二十二条).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ledger.catalogue import CATALOGUE_VERSION, TRADE_TYPES, Catalogue, UnknownEventType
from ledger.errors import LedgerError
from verifier.b64 import encode_b64
from verifier.canonical import (
    MAX_SAFE_INTEGER,
    Canonical,
    CanonicalError,
    canonical_string,
    canonicalize,
)
from verifier.payload import (
    CONTROL_RE,
    PayloadError,
    control_path,
    parse_instant,
)
from verifier.receipt import ENTRY_VERSION, entry_leaf_hash
from verifier.sealed import SEALED_SUFFIX as SEALED_SUFFIX  # the sealed chain's suffix
from verifier.sealed import leave_out

ZERO_HASH = bytes(32)

# At most 120 characters, so that the access chain "<project>~access" fits in 128.
PROJECT_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,119}")
#: Reads of a project's evidence are recorded in a chain of their own, named with a
#: character posted project codes cannot contain, so the process chain stays the process.
ACCESS_SUFFIX = "~access"
ACCESS_EVENT = "evidence_accessed"
#: Legal holds placed on and lifted from a project's evidence files, recorded in the
#: project's own chain (so in its bundle) by the ledger when a reviewer asks (issue 10 §2).
HOLD_SET_EVENT = "legal_hold_set"
HOLD_RELEASED_EVENT = "legal_hold_released"
#: Live alerts (issue 17): every alert the ledger raises is recorded first, as an
#: ``alert_raised`` event in this one chain (its name cannot be a posted project code), so
#: that "the supervisor was told at T" is a log entry with a receipt (ledger/alerts.py).
SUPERVISION_CHAIN = "~supervision"
ALERT_EVENT = "alert_raised"
#: The trade type of a log-wide alert (witnessing, a monitor's alarm, one token's reads
#: across projects): it belongs to no sector, and only the supervision chain admits it.
LOG_WIDE = "log"
#: Event types only the ledger records; no poster may post them. They are about handling
#: the evidence, not steps of the trading process, and may come at any time.
LEDGER_EVENTS = frozenset({ACCESS_EVENT, HOLD_SET_EVENT, HOLD_RELEASED_EVENT, ALERT_EVENT})
SHA256_HEX_RE = re.compile(r"[0-9a-f]{64}")
MEDIA_TYPE_RE = re.compile(r"[A-Za-z0-9][\w.+-]*/[A-Za-z0-9][\w.+-]*(;.{0,200})?")

# Control characters, and lone surrogates (which cannot be encoded as UTF-8, RFC 8785 §3.2.4).
_CONTROL = CONTROL_RE
_CONTROL_EN = "must not contain control characters or lone surrogates"
_CONTROL_ZH = "不得含控制字符或孤立代理项"
MAX_TEXT = 128
MAX_ATTACHMENTS = 256
MAX_PAYLOAD_BYTES = 256 * 1024
_ACTOR_KEYS = frozenset({"id", "role"})
EVENT_FIELDS = frozenset(
    {
        "project",
        "trade_type",
        "type",
        "actor",
        "occurred_at",
        "payload",
        "attachments",
        "idempotency_key",
        "signature",
        "late_entry",
    }
)
#: Longest reason a late entry may give.
MAX_LATE_REASON = 1000


class InvalidEvent(ValueError, LedgerError):
    """A posted event breaks a rule; ``field`` names where (dotted path).

    ``message_zh`` says the same in Chinese; ``expected`` (and ``expected_zh``) what the
    catalogue wants there, when it is a payload field.
    """

    def __init__(
        self,
        field: str,
        message: str,
        message_zh: str | None = None,
        *,
        expected: str | None = None,
        expected_zh: str | None = None,
    ) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
        self.message_zh = message_zh
        self.expected = expected
        self.expected_zh = expected_zh

    @classmethod
    def from_payload(cls, e: PayloadError, version: int) -> InvalidEvent:
        """The refusal of a payload field, naming the catalogue version it was checked by."""
        return cls(
            f"payload.{e.field}",
            f"{e.problem}; expected {e.expected} (event catalogue version {version})",
            f"{e.problem_zh}；应为{e.expected_zh}（事件目录第 {version} 版）",
            expected=e.expected,
            expected_zh=e.expected_zh,
        )


def parse_rfc3339(value: object, where: str) -> datetime:
    """Parse an RFC 3339 date-time that carries an offset; naive times are refused."""
    try:
        return parse_instant(value)
    except ValueError as e:
        raise InvalidEvent(
            where,
            f"{e}: expected an RFC 3339 date-time with an offset "
            "(e.g. 2026-05-01T09:30:00+08:00); naive times are refused",
            f"{str(value)[:40]!r} 不是带时区偏移的 RFC 3339 时间（如 2026-05-01T09:30:00+08:00）",
        ) from None


def _text(obj: dict[str, Any], key: str, where: str, limit: int = MAX_TEXT) -> str:
    v = obj.get(key)
    if not isinstance(v, str) or not v or len(v) > limit:
        raise InvalidEvent(
            where,
            f"must be a non-empty string of at most {limit} characters",
            f"须为不超过 {limit} 个字符的非空字符串",
        )
    if _CONTROL.search(v):
        raise InvalidEvent(where, _CONTROL_EN, _CONTROL_ZH)
    return v


@dataclass(frozen=True)
class Attachment:
    """An evidence file the event refers to by content hash."""

    sha256: str
    size: int
    media_type: str
    name: str
    #: Base64 RFC 6962 root over the object's 1 MiB chunks, added by the ledger from storage.
    chunk_root: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "sha256": self.sha256,
            "size": self.size,
            "media_type": self.media_type,
            "name": self.name,
        }
        if self.chunk_root is not None:
            out["chunk_root"] = self.chunk_root
        return out


@dataclass(frozen=True, slots=True)
class Sealing:
    """How a sealed event is committed (ledger/sealing.py): the record leaves every sealed
    part out and carries ``commitments`` instead; the openings are stored apart."""

    #: path -> base64 commitment (verifier.sealed.commit), the record's ``commitments``.
    commitments: dict[str, str]
    #: The payload without its sealed fields, canonical.
    payload: Canonical
    #: Canonical JSON ``{path: {"salt", "value"}}``, kept in ``sealed_openings``.
    openings: bytes
    #: True for a sealed event (it joins the project's sealed chain); False for an event
    #: with confidential fields, which stays in the process chain (docs/formats.md).
    sealed_chain: bool = True


@dataclass(frozen=True, slots=True)
class EventSubmission:
    """A validated event as posted by a platform service."""

    project: str
    trade_type: str
    type: str
    actor: dict[str, str]
    occurred_at: str
    #: The payload in RFC 8785 canonical form, encoded once when validated.
    payload: Canonical
    attachments: tuple[Attachment, ...] = ()
    idempotency_key: str | None = None
    #: SHA-256 of the canonical posted event, to tell a replay from a conflicting reuse.
    digest: bytes = field(default=b"", compare=False)
    #: ``signature`` as posted (base64 Ed25519 over verifier.poster.signed_content); it is
    #: checked against the poster's registered key before the event is queued.
    signature: str | None = None
    #: Set once checked: {"public_key", "signature"} committed in the record.
    poster_signature: dict[str, str] | None = None
    #: The event catalogue version the payload was checked under, committed in the record
    #: so that the verifier judges the record by the same catalogue.
    catalogue_version: int = CATALOGUE_VERSION
    #: Set by ledger.sealing.seal for sealed event types, just before sequencing.
    sealing: Sealing | None = None
    #: ``late_entry.reason`` as posted: the platform records a fact late (e.g. after a
    #: system fault), so the process-order check lets it through and the verifier warns.
    late_entry: str | None = None

    @property
    def chain(self) -> str:
        """The hash chain the record joins: the project's, or its sealed chain."""
        sealed = self.sealing is not None and self.sealing.sealed_chain
        return self.project + SEALED_SUFFIX if sealed else self.project


def _attachments(value: object) -> tuple[Attachment, ...]:
    if not isinstance(value, list):
        raise InvalidEvent("attachments", "must be a list", "须为列表")
    if len(value) > MAX_ATTACHMENTS:
        raise InvalidEvent(
            "attachments",
            f"at most {MAX_ATTACHMENTS} attachments per event",
            f"每个事件至多 {MAX_ATTACHMENTS} 个附件",
        )
    out = []
    for i, a in enumerate(value):
        where = f"attachments[{i}]"
        if not isinstance(a, dict):
            raise InvalidEvent(where, "must be an object", "须为对象")
        extra = set(a) - {"sha256", "size", "media_type", "name"}
        if extra:
            raise InvalidEvent(f"{where}.{sorted(extra)[0]}", "unknown field", "未知字段")
        digest = a.get("sha256")
        if not isinstance(digest, str) or not SHA256_HEX_RE.fullmatch(digest):
            raise InvalidEvent(
                f"{where}.sha256", "must be 64 lowercase hex digits", "须为 64 位小写十六进制数字"
            )
        size = a.get("size")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise InvalidEvent(
                f"{where}.size", "must be a non-negative integer (bytes)", "须为非负整数（字节）"
            )
        media = _text(a, "media_type", f"{where}.media_type", 255)
        if not MEDIA_TYPE_RE.fullmatch(media):
            raise InvalidEvent(
                f"{where}.media_type",
                f"{media[:40]!r} is not a media type",
                f"{media[:40]!r} 不是媒体类型",
            )
        name = _text(a, "name", f"{where}.name", 255)
        out.append(Attachment(digest, size, media, name))
    return tuple(out)


def validate_event(obj: object, catalogue: Catalogue, *, internal: bool = False) -> EventSubmission:
    """Check a posted event against the record format and the event catalogue.

    ``obj`` is already parsed by :func:`verifier.canonical.parse_strict_json`, so floats
    and duplicate keys are gone; this checks the fields themselves. ``internal`` admits
    the ledger's own access records, which no poster may write.
    """
    if not isinstance(obj, dict):
        raise InvalidEvent("$", "an event must be a JSON object", "事件须为 JSON 对象")
    if not EVENT_FIELDS.issuperset(obj):
        raise InvalidEvent(
            sorted(set(obj) - EVENT_FIELDS)[0],
            "unknown field; the ledger fills seq, prev, index,"
            " recorded_at, salt and checkpoint itself",
            "未知字段；seq、prev、index、recorded_at、salt 和 checkpoint 由账本填写",
        )
    project = _text(obj, "project", "project")
    code = project.removesuffix(ACCESS_SUFFIX) if internal else project
    supervision = internal and project == SUPERVISION_CHAIN
    if not supervision and not PROJECT_RE.fullmatch(code):
        raise InvalidEvent(
            "project",
            "project codes use letters, digits, '.', '_' and '-'"
            " (at most 120, starting with a letter or digit)",
            "项目编号由字母、数字、'.'、'_'、'-' 组成，以字母或数字开头，至多 120 个字符",
        )
    trade_type = obj.get("trade_type")
    log_wide = supervision and trade_type == LOG_WIDE
    if not isinstance(trade_type, str) or (trade_type not in TRADE_TYPES and not log_wide):
        raise InvalidEvent(
            "trade_type",
            f"must be one of {', '.join(TRADE_TYPES)}",
            f"须为其中之一：{', '.join(TRADE_TYPES)}",
        )
    etype = _text(obj, "type", "type", 64)
    if etype in LEDGER_EVENTS and not internal:
        raise InvalidEvent(
            "type",
            f"{etype} is recorded by the ledger itself",
            f"{etype} 只由账本自行记录",
        )
    try:
        if log_wide and etype != ALERT_EVENT:
            raise InvalidEvent("type", "only alerts are log-wide", "只有预警可以是全日志范围")
        if not log_wide and not catalogue.allows(etype, trade_type):
            raise InvalidEvent(
                "type",
                f"event type {etype!r} does not apply to {trade_type}",
                f"事件类型 {etype!r} 不适用于 {trade_type}",
            )
    except UnknownEventType:
        raise InvalidEvent(
            "type",
            f"unknown event type {etype!r}; see the event catalogue (GET /v1/catalogue)",
            f"未知事件类型 {etype!r}；见事件目录（GET /v1/catalogue）",
        ) from None
    actor = obj.get("actor")
    if not isinstance(actor, dict):
        raise InvalidEvent(
            "actor", "must be an object with id and role", "须为含 id 和 role 的对象"
        )
    if not _ACTOR_KEYS.issuperset(actor):
        raise InvalidEvent(
            f"actor.{sorted(set(actor) - _ACTOR_KEYS)[0]}", "unknown field", "未知字段"
        )
    actor_out = {
        "id": _text(actor, "id", "actor.id"),
        "role": _text(actor, "role", "actor.role", 64),
    }
    occurred_at = obj.get("occurred_at")
    parse_rfc3339(occurred_at, "occurred_at")
    assert isinstance(occurred_at, str)
    payload = obj.get("payload", {})
    if not isinstance(payload, dict):
        raise InvalidEvent("payload", "must be a JSON object", "须为 JSON 对象")
    if etype == ACCESS_EVENT:
        # The ledger's own access records (what was read, which varies by route): not
        # posted, so only kept free of control text.
        bad = control_path(payload, "payload")
        if bad is not None:
            raise InvalidEvent(bad, _CONTROL_EN, _CONTROL_ZH)
    else:
        try:
            catalogue.events[etype].checker.check(payload)
        except PayloadError as e:
            raise InvalidEvent.from_payload(e, catalogue.version) from None
    attachments = _attachments(obj["attachments"]) if "attachments" in obj else ()
    # An optional member is absent or a value of its type: an explicit null is refused,
    # as the published schema says.
    key = _text(obj, "idempotency_key", "idempotency_key") if "idempotency_key" in obj else None
    signature = _text(obj, "signature", "signature", 100) if "signature" in obj else None
    late: str | None = None
    if "late_entry" in obj:
        raw_late = obj["late_entry"]
        if not isinstance(raw_late, dict) or set(raw_late) != {"reason"}:
            raise InvalidEvent(
                "late_entry",
                'must be {"reason": "<why the fact is recorded late>"}',
                '须为 {"reason": "<事后补录的原因>"}',
            )
        late = _text(raw_late, "reason", "late_entry.reason", MAX_LATE_REASON)
    # The payload is encoded once, here: this proves it can be committed (RFC 8785) and
    # the record embeds the same text later without encoding it again.
    try:
        encoded = canonicalize(payload)
    except CanonicalError as e:
        where = "payload" if e.path == "$" else f"payload.{e.path}"
        raise InvalidEvent(where, e.reason, f"无法按 RFC 8785 规范化：{e.reason}") from None
    if len(encoded) > MAX_PAYLOAD_BYTES:
        raise InvalidEvent(
            "payload",
            f"is larger than {MAX_PAYLOAD_BYTES} bytes",
            f"超过 {MAX_PAYLOAD_BYTES} 字节",
        )
    canonical_payload = Canonical(encoded.decode())
    # The digest tells an idempotent replay from a conflicting reuse of the key. It is
    # canonicalize(obj); the payload's text is known already and is not encoded again.
    digest = b""
    if key is not None:
        posted = {**obj, "payload": canonical_payload} if "payload" in obj else obj
        digest = hashlib.sha256(canonicalize(posted)).digest()
    return EventSubmission(
        project,
        trade_type,
        etype,
        actor_out,
        occurred_at,
        canonical_payload,
        attachments,
        key,
        digest,
        signature,
        catalogue_version=catalogue.version,
        late_entry=late,
    )


@dataclass(frozen=True, slots=True)
class CommittedRecord:
    """A record as the ledger committed it, with its canonical bytes and hashes."""

    index: int
    project: str
    seq: int
    canonical: bytes
    event_hash: bytes

    @property
    def entry(self) -> bytes:
        return ENTRY_VERSION + self.event_hash


def complete_record(
    ev: EventSubmission,
    *,
    index: int,
    seq: int,
    prev: bytes,
    recorded_at: str,
    salt: bytes,
    checkpoint_size: int,
    checkpoint_root: bytes,
) -> CommittedRecord:
    """Fill in what the ledger adds and hash the result (RFC 8785 canonical form).

    The canonical text is assembled from its members in their fixed RFC 8785 order,
    which is what ``canonicalize(record_json(...))`` gives (tests/test_fast_paths.py
    holds the two to each other); anything unusual takes that general path instead.
    """
    actor = ev.actor
    payload = ev.payload
    if (
        ev.sealing is None
        and 0 <= index <= MAX_SAFE_INTEGER
        and 0 <= seq <= MAX_SAFE_INTEGER
        and 0 <= checkpoint_size <= MAX_SAFE_INTEGER
        and type(ev.catalogue_version) is int
        and 0 <= ev.catalogue_version <= MAX_SAFE_INTEGER
        and type(payload) is Canonical
        and actor.keys() == _ACTOR_KEYS
        and type(actor["id"]) is str
        and type(actor["role"]) is str
    ):
        q = canonical_string
        if ev.attachments:
            attachments = canonicalize([a.to_json() for a in ev.attachments]).decode()
        else:
            attachments = "[]"
        sig = ev.poster_signature
        signature = "" if sig is None else f'"poster_signature":{canonicalize(sig).decode()},'
        late = "" if ev.late_entry is None else f',"late_entry":{{"reason":{q(ev.late_entry)}}}'
        # Encoded in three parts: the payload is often CJK text, and one string holding
        # it all would be built and encoded wide.
        head = (
            f'{{"actor":{{"id":{q(actor["id"])},"role":{q(actor["role"])}}}'
            f',"attachments":{attachments},"catalogue_version":{ev.catalogue_version:d}'
            f',"checkpoint":{{"root":"{encode_b64(checkpoint_root)}","size":{checkpoint_size:d}}}'
            f',"index":{index:d}{late},"occurred_at":{q(ev.occurred_at)},"payload":'
        )
        tail = (
            f',{signature}"prev":"{encode_b64(prev)}","project":{q(ev.project)}'
            f',"recorded_at":{q(recorded_at)},"salt":"{encode_b64(salt)}","seq":{seq:d}'
            f',"trade_type":{q(ev.trade_type)},"type":{q(ev.type)}}}'
        )
        try:
            canonical = head.encode() + payload.encode() + tail.encode()
        except UnicodeEncodeError:  # a lone surrogate: let canonicalize say where
            canonical = b""
        if canonical:
            return CommittedRecord(
                index, ev.project, seq, canonical, hashlib.sha256(canonical).digest()
            )
    record = record_json(
        ev,
        index=index,
        seq=seq,
        prev=prev,
        recorded_at=recorded_at,
        salt=salt,
        checkpoint_size=checkpoint_size,
        checkpoint_root=checkpoint_root,
    )
    canonical = canonicalize(record)
    return CommittedRecord(index, ev.project, seq, canonical, hashlib.sha256(canonical).digest())


def record_json(
    ev: EventSubmission,
    *,
    index: int,
    seq: int,
    prev: bytes,
    recorded_at: str,
    salt: bytes,
    checkpoint_size: int,
    checkpoint_root: bytes,
) -> dict[str, Any]:
    """The record :func:`complete_record` commits, as a JSON object.

    A sealed event's record (``ev.sealing``) joins the sealed chain and leaves out every
    sealed part, committing to each in ``commitments`` (verifier/sealed.py).
    """
    record: dict[str, Any] = {
        "project": ev.chain,
        "trade_type": ev.trade_type,
        "type": ev.type,
        "actor": ev.actor,
        "occurred_at": ev.occurred_at,
        "payload": ev.payload,
        "attachments": [a.to_json() for a in ev.attachments],
        "catalogue_version": ev.catalogue_version,
        "seq": seq,
        "prev": encode_b64(prev),
        "index": index,
        "recorded_at": recorded_at,
        "salt": encode_b64(salt),
        "checkpoint": {"size": checkpoint_size, "root": encode_b64(checkpoint_root)},
    }
    if ev.poster_signature is not None:
        record["poster_signature"] = ev.poster_signature
    if ev.late_entry is not None:
        record["late_entry"] = {"reason": ev.late_entry}
    sealing = ev.sealing
    if sealing is not None:
        record["payload"] = sealing.payload
        record["commitments"] = sealing.commitments
        for path in sealing.commitments:
            if not path.startswith("payload."):  # sealing.payload has them out already
                leave_out(record, path)
    return record


def citation_rows(ev: EventSubmission, index: int) -> list[dict[str, Any]]:
    """The ``object_citations`` rows of an event committed at ``index``: one per object."""
    if not ev.attachments:
        return []
    return [
        {
            "sha256": sha,
            "idx": index,
            "project": ev.project,
            "trade_type": ev.trade_type,
            "event_type": ev.type,
        }
        for sha in sorted({a.sha256 for a in ev.attachments})
    ]


leaf_for_record = entry_leaf_hash
