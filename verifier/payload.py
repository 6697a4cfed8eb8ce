"""Typed event payloads: the catalogue's field specifications and the one checker of them.

The event catalogue (``ledger/catalogue.json``) describes each event type's payload field
by field (:class:`FieldSpec`). :class:`PayloadChecker` compiles those specifications once
into plain Python checks; the ledger runs it on every posted event (an append-only ledger
cannot correct what it accepted, so a payload is right at the door or refused), and the
offline verifier runs it on every record under the catalogue version the record was
committed with. Standard library only, like the rest of the verifier.

Platform-specific data goes in one ``extensions`` object whose keys are namespaced
(``cn.gov.hz.ggzy/section``); no rule reads it, and only its strings are checked.
"""

from __future__ import annotations

import difflib
import functools
import ipaddress
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from importlib import resources
from types import MappingProxyType
from typing import Any, Final

#: The five trade types of public resource trading; the event catalogue and the process
#: rules both speak of these (one definition for both).
from verifier.errors import VerifierError

TRADE_TYPES: Final[tuple[str, ...]] = ("engineering", "procurement", "land", "mining", "property")

__all__ = [
    "CONTROL_RE",
    "EXTENSIONS",
    "EXTENSION_KEY_RE",
    "FIELD_TYPES",
    "REFERENCE_KEYS",
    "RFC3339_RE",
    "TRADE_TYPES",
    "FieldSpec",
    "PayloadCatalogues",
    "PayloadChecker",
    "PayloadError",
    "UnknownCatalogueVersion",
    "control_path",
    "load_payload_catalogues",
    "parse_date",
    "parse_field_spec",
    "parse_instant",
    "parse_ip",
    "parse_payload_catalogues",
]

#: "instant" is RFC 3339 with an offset; "date" a calendar date; "bool" JSON true or false;
#: "reference" names an earlier event of the same project (``{"idempotency_key": ...}`` or
#: ``{"index": ...}``); "ip" an IP address in its one canonical text form (:func:`parse_ip`).
FIELD_TYPES: Final = (
    "int",
    "string",
    "instant",
    "date",
    "bool",
    "string[]",
    "enum",
    "reference",
    "ip",
)
#: The one payload member no catalogue field may be named: platform-specific data.
EXTENSIONS: Final = "extensions"
#: A reverse-DNS namespace, a slash, then a name: ``cn.gov.hz.ggzy/section``.
EXTENSION_KEY_RE: Final = re.compile(r"[a-z0-9-]+(?:\.[a-z0-9-]+)+/[A-Za-z0-9_.-]{1,64}")
MAX_EXTENSION_KEY: Final = 128
#: What a poster writes in a reference: exactly one of these. The ledger adds the resolved
#: ``index`` and ``seq`` (see docs/catalogue.md).
REFERENCE_KEYS: Final = ("idempotency_key", "index")
#: C0 and C1 control characters, DEL, and lone surrogates (which UTF-8 cannot encode).
CONTROL_RE: Final = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_MAX_SAFE: Final = 2**53 - 1
#: RFC 3339 §5.6 date-time with a mandatory offset; fractional seconds up to nanoseconds.
RFC3339_RE: Final = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})"
)
_DATE: Final = re.compile(r"\d{4}-\d{2}-\d{2}")
# Only these years' neighbours can leave 1..9999 when converted to UTC.
_SAFE_YEARS: Final = (1, 9999)
_INSTANT_EXAMPLE: Final = "2026-03-25T10:00:00+08:00"


def parse_instant(value: object) -> datetime:
    """An RFC 3339 date-time with an offset, as an aware datetime (ValueError otherwise).

    Naive times are refused, as are impossible dates and instants whose UTC time falls
    outside years 1..9999 (``9999-12-31T23:59:59-14:00``). Fractions beyond microseconds
    are truncated.
    """
    if not isinstance(value, str):
        raise ValueError("not a string")
    m = RFC3339_RE.fullmatch(value)
    if m is None:
        raise ValueError(f"{value[:40]!r} is not an RFC 3339 date-time with an offset")
    if len(value) == 25 and value[10] == "T":
        # The common form (no fraction, a numeric offset) is already what fromisoformat
        # reads, with the same result as the rebuilt form below.
        iso = value
    else:
        frac = (m.group(7) or "")[1:7].ljust(6, "0") if m.group(7) else "000000"
        off = m.group(8)
        iso = f"{m.group(1)}-{m.group(2)}-{m.group(3)}T{m.group(4)}:{m.group(5)}:{m.group(6)}"
        iso += f".{frac}" + ("+00:00" if off in ("Z", "z") else off)
    try:
        t = datetime.fromisoformat(iso)
        if not _SAFE_YEARS[0] < t.year < _SAFE_YEARS[1]:
            t.astimezone(UTC)  # raises OverflowError when the UTC time leaves years 1..9999
    except (ValueError, OverflowError):
        raise ValueError(f"{value[:40]!r} is not a valid date-time") from None
    return t


def parse_date(value: object) -> date:
    """A calendar date ``YYYY-MM-DD`` (ValueError otherwise, e.g. ``2026-02-30``)."""
    if not isinstance(value, str) or not _DATE.fullmatch(value):
        raise ValueError(f"{str(value)[:40]!r} is not a date YYYY-MM-DD")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a valid date") from None


#: Canonical IP text: at most 39 characters (eight groups of four hex digits, seven colons).
_IP_TEXT: Final = re.compile(r"[0-9a-f.:]{2,39}")


def parse_ip(value: object) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """An IP address in its one canonical text form (ValueError otherwise).

    IPv4 in dotted decimal without leading zeros (``203.0.113.7``); IPv6 as RFC 5952 §4
    writes it (lower case, leading zeros dropped, the longest run of zero groups as
    ``::``: ``2001:db8::7``). One address has one text, so that two records naming the
    same address hold the same string (the collusion indicators compare them). Refused:
    zone ids (``fe80::1%eth0``) and IPv4-mapped IPv6 addresses, which are posted as IPv4.
    """
    if not isinstance(value, str) or not _IP_TEXT.fullmatch(value):
        raise ValueError(f"{str(value)[:40]!r} is not an IP address")
    try:
        ip = ipaddress.ip_address(value)
    except ValueError:
        raise ValueError(f"{value!r} is not an IP address") from None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        raise ValueError(f"{value!r} is an IPv4-mapped address; post it as IPv4")
    if str(ip) != value:
        raise ValueError(f"{value!r} is not in canonical form ({ip})")
    return ip


class PayloadError(ValueError, VerifierError):
    """A payload breaks its event type's specification.

    ``field`` is the path inside the payload (``bid_deadline``, ``expert_ids[2]``,
    ``extensions``); ``expected``/``expected_zh`` say what the catalogue wants and
    ``problem``/``problem_zh`` what was wrong.
    """

    def __init__(
        self, field: str, expected: str, expected_zh: str, problem: str, problem_zh: str
    ) -> None:
        super().__init__(f"{field}: {problem}; expected {expected}")
        self.field = field
        self.expected = expected
        self.expected_zh = expected_zh
        self.problem = problem
        self.problem_zh = problem_zh


@dataclass(frozen=True)
class FieldSpec:
    """One payload field as the catalogue describes it."""

    name: str
    type: str
    required: bool
    zh: str
    en: str
    example: Any = field(compare=False)
    minimum: int | None = None
    maximum: int | None = None
    max_length: int | None = None
    pattern: str | None = None
    values: tuple[str, ...] = ()
    to: tuple[str, ...] = ()
    max_items: int | None = None

    def expected(self) -> tuple[str, str]:
        """What a valid value looks like, in English and Chinese."""
        t = self.type
        if t == "int":
            lo = self.minimum if self.minimum is not None else -_MAX_SAFE
            hi = self.maximum if self.maximum is not None else _MAX_SAFE
            return f"an integer from {lo} to {hi}", f"{lo} 至 {hi} 之间的整数"
        if t == "string":
            en = f"a non-empty string of at most {self.max_length} characters"
            zh = f"不超过 {self.max_length} 个字符的非空字符串"
            if self.pattern:
                en += f" matching {self.pattern}"
                zh += f"，且符合 {self.pattern}"
            return en, zh
        if t == "instant":
            return (
                f"an RFC 3339 date-time with an offset, e.g. {_INSTANT_EXAMPLE}",
                f"带时区偏移的 RFC 3339 时间，如 {_INSTANT_EXAMPLE}",
            )
        if t == "date":
            return (
                "a calendar date YYYY-MM-DD, e.g. 2026-05-08",
                "日历日期 YYYY-MM-DD，如 2026-05-08",
            )
        if t == "bool":
            return "true or false", "true 或 false"
        if t == "string[]":
            return (
                f"a list of at most {self.max_items} non-empty strings of at most "
                f"{self.max_length} characters",
                f"至多 {self.max_items} 项的列表，"
                f"每项为不超过 {self.max_length} 个字符的非空字符串",
            )
        if t == "ip":
            return (
                "an IPv4 address (203.0.113.7) or an IPv6 address in RFC 5952 form (2001:db8::7)",
                "IPv4 地址（如 203.0.113.7）或 RFC 5952 规范形式的 IPv6 地址（如 2001:db8::7）",
            )
        if t == "enum":
            vals = ", ".join(self.values)
            return f"one of {vals}", f"取值之一：{vals}"
        names = ", ".join(self.to)
        return (
            f'a reference {{"idempotency_key": "..."}} or {{"index": N}} to an earlier {names}',
            f'引用本项目此前的 {names}：{{"idempotency_key": "..."}} 或 {{"index": N}}',
        )


# A check takes the value and its path and raises PayloadError.
_Check = Callable[[Any, str], None]


def _got(value: object) -> tuple[str, str]:
    if isinstance(value, bool):
        kind = "a boolean"
    elif isinstance(value, int):
        kind = f"the integer {value}"
    elif isinstance(value, str):
        kind = f"the string {value[:40]!r}"
    elif value is None:
        kind = "null"
    elif isinstance(value, list):
        kind = "a list"
    elif isinstance(value, dict):
        kind = "an object"
    else:
        kind = type(value).__name__
    return f"got {kind}", f"实为 {kind}"


def _compile(spec: FieldSpec, committed: bool) -> _Check:
    """The check of one field's value (the spec's type and constraints, nothing else)."""
    exp, exp_zh = spec.expected()

    def fail(where: str, value: object, en: str | None = None, zh: str | None = None) -> None:
        got, got_zh = _got(value)
        raise PayloadError(where, exp, exp_zh, en or got, zh or got_zh)

    t = spec.type
    if t == "int":
        lo = spec.minimum if spec.minimum is not None else -_MAX_SAFE
        hi = spec.maximum if spec.maximum is not None else _MAX_SAFE

        def check_int(v: Any, where: str) -> None:
            if type(v) is not int or not lo <= v <= hi:
                fail(where, v)

        return check_int
    if t == "string":
        limit = spec.max_length or 0
        rx = re.compile(spec.pattern) if spec.pattern else None

        def check_string(v: Any, where: str) -> None:
            if type(v) is not str or not v or len(v) > limit:
                fail(where, v)
            if CONTROL_RE.search(v):
                fail(where, v, *_CONTROL_PROBLEM)
            if rx is not None and not rx.fullmatch(v):
                fail(where, v)

        return check_string
    if t == "instant":

        def check_instant(v: Any, where: str) -> None:
            try:
                parse_instant(v)
            except ValueError:
                fail(where, v)

        return check_instant
    if t == "date":

        def check_date(v: Any, where: str) -> None:
            try:
                parse_date(v)
            except ValueError:
                fail(where, v)

        return check_date
    if t == "bool":

        def check_bool(v: Any, where: str) -> None:
            if type(v) is not bool:
                fail(where, v)

        return check_bool
    if t == "string[]":
        items = spec.max_items or 0
        limit = spec.max_length or 0

        def check_list(v: Any, where: str) -> None:
            if type(v) is not list or len(v) > items:
                fail(where, v)
            for i, s in enumerate(v):
                if type(s) is not str or not s or len(s) > limit:
                    fail(f"{where}[{i}]", s)
                if CONTROL_RE.search(s):
                    fail(f"{where}[{i}]", s, *_CONTROL_PROBLEM)

        return check_list
    if t == "enum":
        allowed = frozenset(spec.values)

        def check_enum(v: Any, where: str) -> None:
            if type(v) is not str or v not in allowed:
                fail(where, v)

        return check_enum
    if t == "ip":

        def check_ip(v: Any, where: str) -> None:
            try:
                parse_ip(v)
            except ValueError:
                fail(where, v)

        return check_ip
    if t == "reference":
        return _reference_check(fail, committed)
    raise ValueError(f"unknown field type {t!r}")


_CONTROL_PROBLEM: Final = (
    "the text holds a control character or a lone surrogate",
    "文本含控制字符或孤立代理项",
)


def _reference_check(fail: Callable[..., None], committed: bool) -> _Check:
    # Posted: exactly one of idempotency_key / index. Committed: the same, plus the
    # resolved index and seq the ledger adds once it resolves the reference.
    resolved = frozenset({"index", "seq"})

    def check_reference(v: Any, where: str) -> None:
        if type(v) is not dict:
            fail(where, v)
        named = [k for k in REFERENCE_KEYS if k in v]
        extra = set(v) - set(REFERENCE_KEYS) - (resolved if committed else set())
        if extra:
            k = sorted(extra)[0]
            fail(f"{where}.{k}", v.get(k), "unknown member", "未知成员")
        if committed:
            if "idempotency_key" not in v and "index" not in v:
                fail(where, v)
        elif len(named) != 1:
            fail(where, v, "it must name exactly one of idempotency_key, index", "须且仅须给出其一")
        key = v.get("idempotency_key")
        if key is not None and (
            type(key) is not str or not key or len(key) > 128 or CONTROL_RE.search(key)
        ):
            fail(f"{where}.idempotency_key", key)
        for k in ("index", "seq"):
            if k in v and (type(v[k]) is not int or not 0 <= v[k] <= _MAX_SAFE):
                fail(f"{where}.{k}", v[k])

    return check_reference


def _check_extensions(value: object) -> None:
    exp = (
        "an object whose keys are namespaced like cn.gov.hz.ggzy/section",
        "对象，键名须带命名空间，如 cn.gov.hz.ggzy/section",
    )
    if type(value) is not dict:
        raise PayloadError(EXTENSIONS, *exp, *_got(value))
    for k in value:
        if len(k) > MAX_EXTENSION_KEY or not EXTENSION_KEY_RE.fullmatch(k):
            raise PayloadError(
                f"{EXTENSIONS}.{k[:64]}",
                *exp,
                "the key has no namespace (reverse DNS name, then '/')",
                "键名缺少命名空间（反向域名加 /）",
            )
    bad = _control_path(value, EXTENSIONS, 0)
    if bad is not None:
        raise PayloadError(
            bad, "text without control characters", "不含控制字符的文本", *_CONTROL_PROBLEM
        )


def _control_path(value: object, where: str, depth: int) -> str | None:
    """The path of the first string (or key) under ``value`` holding a control character."""
    if type(value) is str:
        return where if CONTROL_RE.search(value) else None
    if depth > 64:  # parse_strict_json bounds nesting already; this only guards recursion
        return where
    if type(value) is dict:
        for k, v in value.items():
            if CONTROL_RE.search(k):
                return f"{where}.{k[:64]!r}"
            found = _control_path(v, f"{where}.{k}", depth + 1)
            if found is not None:
                return found
    elif type(value) is list:
        for i, v in enumerate(value):
            found = _control_path(v, f"{where}[{i}]", depth + 1)
            if found is not None:
                return found
    return None


def control_path(value: object, where: str) -> str | None:
    """The path of the first string or key in ``value`` holding a control character."""
    return _control_path(value, where, 0)


_FIELD_KEYS: Final = frozenset({"type", "required", "zh", "en", "example"})
# Which constraints each field type takes (all of its keys beyond _FIELD_KEYS).
_CONSTRAINTS: Final[dict[str, frozenset[str]]] = {
    "int": frozenset({"min", "max"}),
    "string": frozenset({"max_length", "pattern"}),
    "instant": frozenset(),
    "date": frozenset(),
    "bool": frozenset(),
    "string[]": frozenset({"max_items", "max_length"}),
    "enum": frozenset({"values"}),
    "reference": frozenset({"to"}),
    "ip": frozenset(),
}
# Constraints a type must state, so that every string and list is bounded.
_REQUIRED_CONSTRAINTS: Final[dict[str, frozenset[str]]] = {
    "string": frozenset({"max_length"}),
    "string[]": frozenset({"max_items", "max_length"}),
    "enum": frozenset({"values"}),
    "reference": frozenset({"to"}),
}


def parse_field_spec(name: str, raw: object) -> FieldSpec:
    """One field of the catalogue's ``fields`` object; ValueError names the bad key."""
    if not isinstance(raw, dict):
        raise ValueError(f"expected a JSON object, got {type(raw).__name__}")
    ftype = raw.get("type")
    if not isinstance(ftype, str) or ftype not in FIELD_TYPES:
        raise ValueError(f"type: bad field type {ftype!r}; expected one of {FIELD_TYPES}")
    must = _FIELD_KEYS | _REQUIRED_CONSTRAINTS.get(ftype, frozenset())
    missing = sorted(must - raw.keys())
    if missing:
        raise ValueError(f"missing key(s) {', '.join(missing)}")
    extra = sorted(raw.keys() - must - _CONSTRAINTS[ftype])
    if extra:
        raise ValueError(f"unknown key(s) {', '.join(extra)}")
    if not isinstance(raw["required"], bool):
        raise ValueError("required: expected true or false")

    def text(key: str) -> str:
        v = raw[key]
        if not isinstance(v, str) or not v.strip():
            raise ValueError(f"{key}: expected a non-empty string")
        return v

    def texts(key: str) -> tuple[str, ...]:
        v = raw[key]
        if not isinstance(v, list) or not v or not all(isinstance(x, str) and x for x in v):
            raise ValueError(f"{key}: expected a non-empty list of strings (at least one value)")
        if len(set(v)) != len(v):
            raise ValueError(f"{key}: duplicate entries")
        return tuple(v)

    def bound(key: str, lo: int) -> int | None:
        v = raw.get(key)
        if v is None:
            return None
        if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= _MAX_SAFE:
            raise ValueError(f"{key}: expected an integer from {lo} to {_MAX_SAFE}")
        return v

    pattern = text("pattern") if "pattern" in raw else None
    if pattern is not None:
        try:
            re.compile(pattern)
        except re.error as e:
            raise ValueError(f"pattern: not a regular expression: {e}") from None
    spec = FieldSpec(
        name=name,
        type=ftype,
        required=raw["required"],
        zh=text("zh"),
        en=text("en"),
        example=raw["example"],
        minimum=bound("min", -_MAX_SAFE),
        maximum=bound("max", -_MAX_SAFE),
        max_length=bound("max_length", 1),
        pattern=pattern,
        values=texts("values") if ftype == "enum" else (),
        to=texts("to") if ftype == "reference" else (),
        max_items=bound("max_items", 1),
    )
    # The example is what the guide shows and the tests post: it must be valid.
    try:
        PayloadChecker({name: spec}).check({name: spec.example})
    except PayloadError as e:
        raise ValueError(f"example: {e.problem}; expected {e.expected}") from None
    return spec


class PayloadChecker:
    """One event type's payload specification, compiled into checks.

    ``committed`` accepts references as the ledger commits them (with the resolved
    ``index`` and ``seq``); posted references name exactly one of them.
    """

    def __init__(
        self,
        fields: Mapping[str, FieldSpec],
        *,
        one_of_required: Iterable[tuple[str, ...]] = (),
        committed: bool = False,
    ) -> None:
        self.fields = dict(fields)
        self.allowed = frozenset(fields) | {EXTENSIONS}
        self.required = tuple(n for n, s in fields.items() if s.required)
        self.one_of_required = tuple(one_of_required)
        self._checks = tuple((n, _compile(s, committed)) for n, s in fields.items())

    def check(self, payload: Mapping[str, Any]) -> None:
        """Raise :class:`PayloadError` at the first thing wrong with ``payload``."""
        if not self.allowed.issuperset(payload):
            self._unknown(payload)
        for name in self.required:
            if name not in payload:
                spec = self.fields[name]
                exp, exp_zh = spec.expected()
                raise PayloadError(name, exp, exp_zh, "the field is required", "缺少必填字段")
        for name, check in self._checks:
            v = payload.get(name)
            if v is not None or name in payload:
                check(v, name)
        for group in self.one_of_required:
            if not any(n in payload for n in group):
                names = ", ".join(group)
                raise PayloadError(
                    group[0],
                    f"at least one of {names}",
                    f"至少填写其中之一：{names}",
                    "none is given",
                    "均未填写",
                )
        if EXTENSIONS in payload:
            _check_extensions(payload[EXTENSIONS])

    def _unknown(self, payload: Mapping[str, Any]) -> None:
        name = sorted(set(payload) - self.allowed)[0]
        close = difflib.get_close_matches(name, sorted(self.allowed), n=1, cutoff=0.6)
        known = ", ".join(sorted(self.fields)) or "none"
        hint_en = f"; did you mean {close[0]!r}?" if close else ""
        hint_zh = f"；是否应为 {close[0]}？" if close else ""
        raise PayloadError(
            name[:64],
            f"one of the catalogued fields ({known}), or platform data under {EXTENSIONS}",
            f"事件目录所列字段（{known}），平台自有数据请放入 {EXTENSIONS}",
            f"unknown field{hint_en}",
            f"未知字段{hint_zh}",
        )


# One event type under one catalogue version: fields, one_of_required, sealed field names.
_VersionedEvent = tuple[dict[str, FieldSpec], tuple[tuple[str, ...], ...], frozenset[str]]


class UnknownCatalogueVersion(KeyError, VerifierError):
    """A record names a catalogue version this verifier does not know (it is older)."""


@dataclass(frozen=True)
class PayloadCatalogues:
    """The payload specifications of every catalogue version the ledger has used.

    The verifier judges each record by the version it was committed under
    (``catalogue_version``; records without it are version 1, whose payloads were not
    typed). Sealed and confidential fields are left to the sealing checks: in a bundle
    their values may stand redacted or as commitments.
    """

    #: version -> event code -> (fields, one_of_required, sealed fields); None: untyped.
    versions: Mapping[int, Mapping[str, _VersionedEvent] | None] = field(hash=False)
    #: version -> event code -> the record paths its confidential parts commit (only the
    #: event types that have any).
    confidential: Mapping[int, Mapping[str, frozenset[str]]] = field(
        hash=False, default_factory=lambda: MappingProxyType({})
    )

    def confidential_parts(self, version: int, code: str) -> frozenset[str]:
        """The paths a record of ``code`` (not sealed) may commit under ``version``: its
        confidential parts and the poster's signature; empty when it has none."""
        return self.confidential.get(version, {}).get(code, frozenset())

    def checker(self, version: int, code: str) -> tuple[PayloadChecker, frozenset[str]] | None:
        """The committed-form checker of ``code`` under ``version`` and the sealed field
        names to leave out; None when that version typed no payloads or lacks ``code``."""
        if version not in self.versions:
            raise UnknownCatalogueVersion(version)
        events = self.versions[version]
        if events is None or code not in events:
            return None
        return _committed_checker(self, version, code)


@functools.cache
def _committed_checker(
    cats: PayloadCatalogues, version: int, code: str
) -> tuple[PayloadChecker, frozenset[str]]:
    events = cats.versions[version]
    assert events is not None
    fields, groups, sealed = events[code]
    specs = {n: (replace(f, required=False) if n in sealed else f) for n, f in fields.items()}
    keep = tuple(g for g in groups if not set(g) & sealed)
    return PayloadChecker(specs, one_of_required=keep, committed=True), sealed


def parse_payload_catalogues(data: object) -> PayloadCatalogues:
    """Read ``verifier/catalogues.json`` (ValueError when malformed)."""
    if not isinstance(data, dict) or not isinstance(data.get("versions"), dict):
        raise ValueError('expected {"versions": {...}}')
    versions: dict[int, Any] = {}
    confidential: dict[int, dict[str, frozenset[str]]] = {}
    for key, raw in data["versions"].items():
        if not key.isdigit():
            raise ValueError(f"versions: {key!r} is not a version number")
        if raw is None:
            versions[int(key)] = None
            continue
        if not isinstance(raw, dict):
            raise ValueError(f"versions.{key}: expected an object of event types")
        events: dict[str, Any] = {}
        for code, ev in raw.items():
            where = f"versions.{key}.{code}"
            if not isinstance(ev, dict) or not isinstance(ev.get("fields"), dict):
                raise ValueError(f"{where}: expected an object with fields")
            try:
                fields = {n: parse_field_spec(n, f) for n, f in ev["fields"].items()}
            except ValueError as e:
                raise ValueError(f"{where}.fields: {e}") from None
            groups = tuple(tuple(g) for g in ev.get("one_of_required", []))
            # Sealed and confidential fields alike may stand as commitments (verifier/sealed.py).
            parts = ev.get("confidential_parts", [])
            if not isinstance(parts, list) or not all(isinstance(x, str) for x in parts):
                raise ValueError(f"{where}.confidential_parts: expected a list of paths")
            if parts:
                confidential.setdefault(int(key), {})[code] = frozenset(parts)
            hidden = [
                *ev.get("sealed_fields", []),
                *(x.removeprefix("payload.") for x in parts if x.startswith("payload.")),
            ]
            events[code] = (fields, groups, frozenset(hidden))
        versions[int(key)] = MappingProxyType(events)
    return PayloadCatalogues(
        MappingProxyType(versions),
        MappingProxyType({v: MappingProxyType(m) for v, m in confidential.items()}),
    )


@functools.cache
def _catalogues_json() -> Any:
    text = resources.files("verifier").joinpath("catalogues.json").read_text("utf-8")
    return json.loads(text)


@functools.cache
def load_payload_catalogues() -> PayloadCatalogues:
    """The packaged ``verifier/catalogues.json``."""
    return parse_payload_catalogues(_catalogues_json())


@dataclass(frozen=True)
class EventLabels:
    """How a report names an event type and its fields: Chinese first, English beside."""

    name_zh: str
    name_en: str
    #: field name -> (Chinese label, English label, type)
    fields: Mapping[str, tuple[str, str, str]]


@functools.cache
def event_labels() -> Mapping[str, EventLabels]:
    """Event code -> its names and field labels, from the newest catalogue version that
    names it (older versions carried no names); codes without names are left out."""
    out: dict[str, EventLabels] = {}
    versions = _catalogues_json().get("versions", {})
    for key in sorted(versions, key=int):
        for code, ev in (versions[key] or {}).items():
            if not isinstance(ev, dict) or not isinstance(ev.get("name_zh"), str):
                continue
            fields = {
                n: (str(f.get("zh", n)), str(f.get("en", n)), str(f.get("type", "")))
                for n, f in ev.get("fields", {}).items()
                if isinstance(f, dict)
            }
            out[code] = EventLabels(ev["name_zh"], str(ev.get("name_en", code)), fields)
    return MappingProxyType(out)


@functools.cache
def trade_type_names() -> Mapping[str, tuple[str, str]]:
    """Trade type code -> (Chinese, English) name, e.g. ``procurement`` -> 政府采购."""
    raw = _catalogues_json().get("trade_types", {})
    return MappingProxyType(
        {k: (str(v.get("name_zh", k)), str(v.get("name_en", k))) for k, v in raw.items()}
    )
