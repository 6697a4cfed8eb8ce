"""ledger/records.py as a unit: every refusal of validate_event with the field and the
English and Chinese messages it must name, each limit at its boundary, and what the
ledger adds to a record (pure, no I/O)."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
from typing import Any

import pytest

from ledger.catalogue import CATALOGUE_VERSION, TRADE_TYPES, load_catalogue
from ledger.records import (
    ACCESS_EVENT,
    MAX_ATTACHMENTS,
    MAX_LATE_REASON,
    MAX_PAYLOAD_BYTES,
    MAX_TEXT,
    Attachment,
    CommittedRecord,
    EventSubmission,
    InvalidEvent,
    Sealing,
    citation_rows,
    complete_record,
    parse_rfc3339,
    record_json,
    validate_event,
)
from tests.conftest import make_event
from verifier.b64 import encode_b64
from verifier.canonical import Canonical, canonicalize
from verifier.payload import PayloadError
from verifier.receipt import ENTRY_VERSION

CAT = load_catalogue()
SHA = "ab" * 32
ATTACHMENT = {"sha256": SHA, "size": 10, "media_type": "application/pdf", "name": "a.pdf"}
TEXT_EN = f"must be a non-empty string of at most {MAX_TEXT} characters"
TEXT_ZH = f"须为不超过 {MAX_TEXT} 个字符的非空字符串"
CONTROL = ("must not contain control characters or lone surrogates", "不得含控制字符或孤立代理项")


def refused(obj: object, internal: bool = False) -> InvalidEvent:
    with pytest.raises(InvalidEvent) as e:
        if internal:
            validate_event(obj, CAT, internal=True)
        else:
            validate_event(obj, CAT)  # the default: a poster's event
    assert str(e.value) == f"{e.value.field}: {e.value.message}"
    return e.value


def with_(**over: Any) -> dict[str, Any]:
    return make_event(**over)


def without(key: str) -> dict[str, Any]:
    ev = make_event()
    del ev[key]
    return ev


def text_limit(n: int) -> tuple[str, str]:
    return (
        f"must be a non-empty string of at most {n} characters",
        f"须为不超过 {n} 个字符的非空字符串",
    )


# (event, field, message, message_zh)
CASES: list[tuple[object, str, str, str]] = [
    (["not", "an", "object"], "$", "an event must be a JSON object", "事件须为 JSON 对象"),
    (
        with_(seq=1, zzz=2),
        "seq",
        "unknown field; the ledger fills seq, prev, index, recorded_at, salt and checkpoint itself",
        "未知字段；seq、prev、index、recorded_at、salt 和 checkpoint 由账本填写",
    ),
    (without("project"), "project", TEXT_EN, TEXT_ZH),
    (with_(project=""), "project", TEXT_EN, TEXT_ZH),
    (with_(project=7), "project", TEXT_EN, TEXT_ZH),
    (with_(project="P" * (MAX_TEXT + 1)), "project", TEXT_EN, TEXT_ZH),
    (with_(project="P\x00"), "project", *CONTROL),
    (
        with_(project="-P"),
        "project",
        "project codes use letters, digits, '.', '_' and '-'"
        " (at most 120, starting with a letter or digit)",
        "项目编号由字母、数字、'.'、'_'、'-' 组成，以字母或数字开头，至多 120 个字符",
    ),
    (
        with_(project="P" * 121),
        "project",
        "project codes use letters, digits, '.', '_' and '-'"
        " (at most 120, starting with a letter or digit)",
        "项目编号由字母、数字、'.'、'_'、'-' 组成，以字母或数字开头，至多 120 个字符",
    ),
    (
        with_(project="P~access"),
        "project",
        "project codes use letters, digits, '.', '_' and '-'"
        " (at most 120, starting with a letter or digit)",
        "项目编号由字母、数字、'.'、'_'、'-' 组成，以字母或数字开头，至多 120 个字符",
    ),
    (
        with_(trade_type="fishing"),
        "trade_type",
        f"must be one of {', '.join(TRADE_TYPES)}",
        f"须为其中之一：{', '.join(TRADE_TYPES)}",
    ),
    (without("type"), "type", *text_limit(64)),
    (with_(type_="t" * 65), "type", *text_limit(64)),
    (
        with_(type_=ACCESS_EVENT),
        "type",
        f"{ACCESS_EVENT} is recorded by the ledger itself",
        f"{ACCESS_EVENT} 只由账本自行记录",
    ),
    (
        with_(type_="legal_hold_set"),
        "type",
        "legal_hold_set is recorded by the ledger itself",
        "legal_hold_set 只由账本自行记录",
    ),
    (
        with_(type_="no_such_event"),
        "type",
        "unknown event type 'no_such_event'; see the event catalogue (GET /v1/catalogue)",
        "未知事件类型 'no_such_event'；见事件目录（GET /v1/catalogue）",
    ),
    (without("actor"), "actor", "must be an object with id and role", "须为含 id 和 role 的对象"),
    (
        with_(actor=["PRTC-HZ"]),
        "actor",
        "must be an object with id and role",
        "须为含 id 和 role 的对象",
    ),
    (
        with_(actor={"id": "a", "role": "b", "name": "c", "age": 1}),
        "actor.age",
        "unknown field",
        "未知字段",
    ),
    (with_(actor={"role": "b"}), "actor.id", TEXT_EN, TEXT_ZH),
    (with_(actor={"id": "a" * (MAX_TEXT + 1), "role": "b"}), "actor.id", TEXT_EN, TEXT_ZH),
    (with_(actor={"id": "a"}), "actor.role", *text_limit(64)),
    (with_(actor={"id": "a", "role": "r" * 65}), "actor.role", *text_limit(64)),
    (
        with_(occurred_at="2026-03-02T09:00:00"),
        "occurred_at",
        "'2026-03-02T09:00:00' is not an RFC 3339 date-time with an offset: expected an "
        "RFC 3339 date-time with an offset (e.g. 2026-05-01T09:30:00+08:00); naive times are "
        "refused",
        "'2026-03-02T09:00:00' 不是带时区偏移的 RFC 3339 时间（如 2026-05-01T09:30:00+08:00）",
    ),
    (with_(payload=[1]), "payload", "must be a JSON object", "须为 JSON 对象"),
    (with_(attachments={}), "attachments", "must be a list", "须为列表"),
    (
        with_(attachments=[ATTACHMENT] * (MAX_ATTACHMENTS + 1)),
        "attachments",
        f"at most {MAX_ATTACHMENTS} attachments per event",
        f"每个事件至多 {MAX_ATTACHMENTS} 个附件",
    ),
    (with_(attachments=[ATTACHMENT, "x"]), "attachments[1]", "must be an object", "须为对象"),
    (
        with_(attachments=[{**ATTACHMENT, "zz": 1, "chunk_root": "x"}]),
        "attachments[0].chunk_root",
        "unknown field",
        "未知字段",
    ),
    (
        with_(attachments=[{**ATTACHMENT, "sha256": "AB" * 32}]),
        "attachments[0].sha256",
        "must be 64 lowercase hex digits",
        "须为 64 位小写十六进制数字",
    ),
    (
        with_(attachments=[{**ATTACHMENT, "sha256": SHA + "a"}]),
        "attachments[0].sha256",
        "must be 64 lowercase hex digits",
        "须为 64 位小写十六进制数字",
    ),
    (
        with_(attachments=[{k: v for k, v in ATTACHMENT.items() if k != "sha256"}]),
        "attachments[0].sha256",
        "must be 64 lowercase hex digits",
        "须为 64 位小写十六进制数字",
    ),
    *[
        (
            with_(attachments=[{**ATTACHMENT, "size": bad}]),
            "attachments[0].size",
            "must be a non-negative integer (bytes)",
            "须为非负整数（字节）",
        )
        for bad in (-1, True, "10", None)
    ],
    (
        with_(attachments=[{**ATTACHMENT, "media_type": "m" * 256}]),
        "attachments[0].media_type",
        *text_limit(255),
    ),
    (
        with_(attachments=[{**ATTACHMENT, "media_type": "pdf"}]),
        "attachments[0].media_type",
        "'pdf' is not a media type",
        "'pdf' 不是媒体类型",
    ),
    (
        with_(attachments=[{**ATTACHMENT, "media_type": "x" * 50}]),
        "attachments[0].media_type",
        f"{'x' * 40!r} is not a media type",
        f"{'x' * 40!r} 不是媒体类型",
    ),
    (
        with_(attachments=[{**ATTACHMENT, "name": "n" * 256}]),
        "attachments[0].name",
        *text_limit(255),
    ),
    (with_(idempotency_key=""), "idempotency_key", TEXT_EN, TEXT_ZH),
    (with_(idempotency_key="k" * (MAX_TEXT + 1)), "idempotency_key", TEXT_EN, TEXT_ZH),
    (with_(signature="s" * 101), "signature", *text_limit(100)),
    # An optional member is absent or a value of its type, never an explicit null.
    (with_(idempotency_key=None), "idempotency_key", TEXT_EN, TEXT_ZH),
    (with_(signature=None), "signature", *text_limit(100)),
    *[
        (
            with_(late_entry=bad),
            "late_entry",
            'must be {"reason": "<why the fact is recorded late>"}',
            '须为 {"reason": "<事后补录的原因>"}',
        )
        for bad in (None, "late", {}, {"reason": "x", "by": "y"}, ["reason"])
    ],
    (with_(late_entry={"reason": ""}), "late_entry.reason", *text_limit(MAX_LATE_REASON)),
    (
        with_(late_entry={"reason": "r" * (MAX_LATE_REASON + 1)}),
        "late_entry.reason",
        *text_limit(MAX_LATE_REASON),
    ),
]


@pytest.mark.parametrize(("obj", "field", "en", "zh"), CASES)
def test_each_refusal_names_its_field_in_both_languages(
    obj: object, field: str, en: str, zh: str
) -> None:
    e = refused(obj)
    assert (e.field, e.message, e.message_zh) == (field, en, zh)
    assert e.expected is None and e.expected_zh is None


def test_a_refused_payload_names_the_catalogue_version() -> None:
    e = refused(with_(payload={"method": "open_tender", "estimate": -1}))
    assert e.field == "payload.estimate"
    assert e.message.endswith(f"(event catalogue version {CAT.version})")
    assert e.message_zh is not None and e.message_zh.endswith(f"（事件目录第 {CAT.version} 版）")
    assert e.expected and e.expected_zh
    pe = PayloadError("a.b", "an integer", "整数", "is text", "是文本")
    got = InvalidEvent.from_payload(pe, 7)
    assert (got.field, got.message, got.message_zh, got.expected, got.expected_zh) == (
        "payload.a.b",
        "is text; expected an integer (event catalogue version 7)",
        "是文本；应为整数（事件目录第 7 版）",
        "an integer",
        "整数",
    )


def test_the_catalogue_version_is_the_one_the_event_was_checked_by() -> None:
    other = dataclasses.replace(CAT, version=CAT.version + 7)
    assert validate_event(make_event(), other).catalogue_version == CAT.version + 7
    with pytest.raises(InvalidEvent) as e:
        validate_event(with_(payload={"method": "open_tender", "estimate": -1}), other)
    assert e.value.message.endswith(f"(event catalogue version {CAT.version + 7})")


def test_an_event_type_of_another_trade_type_is_refused() -> None:
    only = next(e for e in CAT.events.values() if "engineering" not in e.trade_types)
    e = refused(with_(type_=only.code))
    assert (e.field, e.message, e.message_zh) == (
        "type",
        f"event type {only.code!r} does not apply to engineering",
        f"事件类型 {only.code!r} 不适用于 engineering",
    )


def test_payloads_that_cannot_be_committed() -> None:
    floats = {"extensions": {"cn.example/x": 1.5}}
    e = refused(with_(type_="prequal_result_notified", payload=floats))
    reason = "floats are not allowed; amounts are integers in fen"
    assert (e.field, e.message, e.message_zh) == (
        'payload.extensions["cn.example/x"]',
        reason,
        f"无法按 RFC 8785 规范化：{reason}",
    )
    # The ledger's own access records: only control text is refused, at its path.
    access = with_(project="P~access", type_=ACCESS_EVENT, payload={"what": {"k": "a\x01"}})
    e = refused(access, internal=True)
    assert (e.field, e.message, e.message_zh) == ("payload.what.k", *CONTROL)


def test_limits_at_their_boundary() -> None:
    ok = validate_event(
        with_(
            project="P" * 120,
            actor={"id": "i" * MAX_TEXT, "role": "r" * 64},
            attachments=[ATTACHMENT] * MAX_ATTACHMENTS,
            idempotency_key="k" * MAX_TEXT,
            signature="s" * 100,
        ),
        CAT,
    )
    assert len(ok.project) == 120 and len(ok.attachments) == MAX_ATTACHMENTS
    assert ok.signature == "s" * 100 and ok.idempotency_key == "k" * MAX_TEXT
    assert ok.actor == {"id": "i" * MAX_TEXT, "role": "r" * 64}
    late = validate_event(with_(late_entry={"reason": "r" * MAX_LATE_REASON}), CAT)
    assert late.late_entry == "r" * MAX_LATE_REASON
    assert validate_event(make_event(), CAT).late_entry is None
    assert (
        validate_event(with_(attachments=[{**ATTACHMENT, "size": 0}]), CAT).attachments[0].size == 0
    )
    # The payload's canonical form may be MAX_PAYLOAD_BYTES long, not one byte more.
    base = {"method": "open_tender", "estimate": 1, "extensions": {"cn.example/pad": ""}}
    room = MAX_PAYLOAD_BYTES - len(canonicalize(base))
    pad = {**base, "extensions": {"cn.example/pad": "x" * room}}
    ev = with_(type_="project_registered", payload=pad)
    assert len(validate_event(ev, CAT).payload.encode()) == MAX_PAYLOAD_BYTES
    pad["extensions"]["cn.example/pad"] += "x"
    e = refused(ev)
    assert (e.field, e.message, e.message_zh) == (
        "payload",
        f"is larger than {MAX_PAYLOAD_BYTES} bytes",
        f"超过 {MAX_PAYLOAD_BYTES} 字节",
    )


def test_what_validate_event_keeps() -> None:
    posted = with_(
        attachments=[ATTACHMENT],
        idempotency_key="k1",
        signature="c2ln",
        actor={"id": "PRTC-HZ", "role": "platform"},
    )
    ev = validate_event(posted, CAT)
    assert (ev.project, ev.trade_type, ev.type) == ("E330100000001", "engineering", posted["type"])
    assert ev.actor == {"id": "PRTC-HZ", "role": "platform"}
    assert ev.occurred_at == posted["occurred_at"]
    assert ev.payload == canonicalize(posted["payload"]).decode()
    assert type(ev.payload) is Canonical
    assert ev.attachments == (Attachment(SHA, 10, "application/pdf", "a.pdf"),)
    assert (ev.idempotency_key, ev.signature, ev.poster_signature) == ("k1", "c2ln", None)
    assert ev.catalogue_version == CAT.version == CATALOGUE_VERSION and ev.sealing is None
    assert ev.digest == hashlib.sha256(canonicalize(posted)).digest()
    # No key, no digest; a missing payload is the empty object, hashed as posted.
    assert validate_event(make_event(), CAT).digest == b""
    bare = {k: v for k, v in make_event(type_="prequal_result_notified").items() if k != "payload"}
    got = validate_event({**bare, "idempotency_key": "k2"}, CAT)
    assert got.payload == "{}"
    assert got.digest == hashlib.sha256(canonicalize({**bare, "idempotency_key": "k2"})).digest()
    # The ledger's own access records, and only with internal=True.
    access = with_(project="P~access", type_=ACCESS_EVENT, payload={"what": "record"})
    assert validate_event(access, CAT, internal=True).project == "P~access"


def test_rfc3339_refusals_name_the_value() -> None:
    assert parse_rfc3339("2026-03-02T09:00:00+08:00", "x").utcoffset() is not None
    with pytest.raises(InvalidEvent) as e:
        parse_rfc3339("y" * 50, "when")
    assert e.value.field == "when"
    assert (
        e.value.message_zh
        == f"{'y' * 40!r} 不是带时区偏移的 RFC 3339 时间（如 2026-05-01T09:30:00+08:00）"
    )


# --- what the ledger adds ------------------------------------------------------------------

FIELDS: dict[str, Any] = {
    "index": 5,
    "seq": 2,
    "prev": bytes(range(32)),
    "recorded_at": "2026-03-02T01:00:00.000Z",
    "salt": bytes(range(32, 64)),
    "checkpoint_size": 5,
    "checkpoint_root": bytes(range(64, 96)),
}


def test_the_record_and_its_hash() -> None:
    ev = dataclasses.replace(
        validate_event(with_(attachments=[ATTACHMENT]), CAT),
        poster_signature={"public_key": "cGs=", "signature": "c2ln"},
    )
    rec = record_json(ev, **FIELDS)
    assert rec == {
        "project": ev.project,
        "trade_type": "engineering",
        "type": ev.type,
        "actor": ev.actor,
        "occurred_at": ev.occurred_at,
        "payload": ev.payload,
        "attachments": [ATTACHMENT],
        "catalogue_version": CAT.version,
        "seq": 2,
        "prev": base64.b64encode(FIELDS["prev"]).decode(),
        "index": 5,
        "recorded_at": FIELDS["recorded_at"],
        "salt": base64.b64encode(FIELDS["salt"]).decode(),
        "checkpoint": {"size": 5, "root": base64.b64encode(FIELDS["checkpoint_root"]).decode()},
        "poster_signature": {"public_key": "cGs=", "signature": "c2ln"},
    }
    committed = complete_record(ev, **FIELDS)
    assert committed == CommittedRecord(
        5, ev.project, 2, canonicalize(rec), hashlib.sha256(canonicalize(rec)).digest()
    )
    assert committed.entry == ENTRY_VERSION + committed.event_hash
    assert encode_b64(b"\xff\xfe") == "//4=" and encode_b64(b"") == ""


def test_the_ledger_added_fields_late_entry_and_chunk_root() -> None:
    ev = dataclasses.replace(
        validate_event(with_(attachments=[ATTACHMENT]), CAT),
        late_entry="the platform was down",
        attachments=(Attachment(SHA, 10, "application/pdf", "a.pdf", chunk_root="Y3I="),),
    )
    rec = record_json(ev, **FIELDS)
    assert rec["late_entry"] == {"reason": "the platform was down"}
    assert rec["attachments"] == [{**ATTACHMENT, "chunk_root": "Y3I="}]
    assert complete_record(ev, **FIELDS).canonical == canonicalize(rec)
    assert "late_entry" not in record_json(validate_event(make_event(), CAT), **FIELDS)
    assert Attachment(SHA, 1, "a/b", "n").to_json() == {
        "sha256": SHA,
        "size": 1,
        "media_type": "a/b",
        "name": "n",
    }


def test_a_sealed_record_leaves_its_sealed_parts_out() -> None:
    ev = validate_event(with_(attachments=[ATTACHMENT]), CAT)
    sealing = Sealing(
        {"actor.id": "Y29t", "payload.estimate": "Y28y", "attachments": "Y28z"},
        Canonical('{"method":"open_tender"}'),
        b"{}",
    )
    sealed = dataclasses.replace(
        ev, sealing=sealing, poster_signature={"public_key": "a", "signature": "b"}
    )
    assert sealed.chain == ev.project + "~sealed" and ev.chain == ev.project
    rec = record_json(sealed, **FIELDS)
    assert rec["project"] == ev.project + "~sealed"
    assert rec["actor"] == {"role": "platform"}
    assert rec["payload"] == '{"method":"open_tender"}'
    assert rec["commitments"] == sealing.commitments
    assert "attachments" not in rec and rec["poster_signature"] == {
        "public_key": "a",
        "signature": "b",
    }
    committed = complete_record(sealed, **FIELDS)  # the general path
    assert committed.canonical == canonicalize(rec)
    assert (committed.index, committed.seq) == (5, 2)
    assert committed.event_hash == hashlib.sha256(committed.canonical).digest()
    assert committed.project == ev.project  # the chain is in the record, the project here


def test_complete_record_takes_the_general_path_for_what_the_fast_one_cannot_write() -> None:
    ev = validate_event(make_event(), CAT)
    for unusual in ({"index": 2**53}, {"seq": 2**53}, {"checkpoint_size": 2**53}):
        with pytest.raises(Exception, match="outside"):
            complete_record(ev, **{**FIELDS, **unusual})
    for negative in ({"index": -1}, {"seq": -1}, {"checkpoint_size": -1}):
        fields = {**FIELDS, **negative}
        assert complete_record(ev, **fields).canonical == canonicalize(record_json(ev, **fields))
    odd = [
        dataclasses.replace(ev, catalogue_version=True),  # type: ignore[arg-type]
        dataclasses.replace(ev, catalogue_version=2**53),
        dataclasses.replace(ev, actor={"id": "a"}),
        dataclasses.replace(ev, actor={"id": 1, "role": "r"}),  # type: ignore[dict-item]
        dataclasses.replace(ev, actor={"id": "a", "role": None}),  # type: ignore[dict-item]
        dataclasses.replace(ev, payload={"a": 1}),  # type: ignore[arg-type]
        dataclasses.replace(ev, occurred_at="\ud800"),
    ]
    for e in odd:
        try:
            want = canonicalize(record_json(e, **FIELDS))
        except Exception as err:
            with pytest.raises(type(err)):
                complete_record(e, **FIELDS)
            continue
        assert complete_record(e, **FIELDS).canonical == want


def test_citation_rows_one_per_object() -> None:
    ev = validate_event(
        with_(attachments=[ATTACHMENT, {**ATTACHMENT, "sha256": "cd" * 32}, ATTACHMENT]), CAT
    )
    assert citation_rows(ev, 9) == [
        {
            "sha256": sha,
            "idx": 9,
            "project": ev.project,
            "trade_type": "engineering",
            "event_type": ev.type,
        }
        for sha in (SHA, "cd" * 32)
    ]
    assert citation_rows(validate_event(make_event(), CAT), 9) == []
    assert isinstance(ev, EventSubmission)
