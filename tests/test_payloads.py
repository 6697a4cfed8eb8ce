"""Typed payloads (issue 11): what the catalogue says a payload holds is enforced at the door.

Every refusal names the field, what was expected and the catalogue version, in English and
Chinese, and commits nothing (in a batch, nothing at all). The JSON Schemas served at
``GET /v1/catalogue`` and in the OpenAPI document agree with the checker: events generated
from them are accepted, and mutations of those events are refused by both.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import jsonschema
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.app import create_app
from api.auth import create_token
from api.schemas import event_schema, posted_types
from ledger.catalogue import CATALOGUE_VERSION, load_catalogue
from ledger.records import InvalidEvent, validate_event
from ledger.service import Ledger
from tests.conftest import example_payload, make_event
from verifier.payload import parse_instant, parse_ip
from verifier.rules import load_rules

CAT = load_catalogue()


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, dict[str, str]]]:
    """One ledger for the module: each test compares the log size before and after."""
    lg = Ledger.open(tmp_path_factory.mktemp("payloads") / "data", None, "payload.example/log")
    try:
        _, token = create_token(lg.store, "platform")
        with TestClient(create_app(lg, rate_limit=0)) as c:
            yield c, {"Authorization": f"Bearer {token}"}
    finally:
        lg.close()


def _size(c: TestClient) -> int:
    size: int = c.get("/v1/log").json()["size"]
    return size


def _refused(c: TestClient, h: dict[str, str], ev: dict[str, Any], field: str) -> dict[str, Any]:
    """Post ``ev`` alone and in a batch behind a valid event: both 422 naming ``field``."""
    before = _size(c)
    r = c.post("/v1/events", json=ev, headers=h)
    assert r.status_code == 422, r.text
    err: dict[str, Any] = r.json()["error"]
    assert err["code"] == "invalid_event" and err["field"] == field, err
    assert err["catalogue_version"] == CAT.version
    assert err["message_zh"].startswith(field) and re.search(r"[\u4e00-\u9fff]", err["message_zh"])
    assert f"catalogue version {CAT.version}" in err["message"] or "payload" not in field
    batch = {"events": [make_event(project=ev["project"]), ev]}
    r = c.post("/v1/events:batch", json=batch, headers=h)
    assert r.status_code == 422 and r.json()["error"]["field"] == f"events[1].{field}", r.text
    assert _size(c) == before  # nothing committed, not even the valid first event
    return err


# --- the first paragraph of issue 11 --------------------------------------------------------


def test_a_misspelt_field_is_refused_naming_it_and_the_nearest_known_name(api: Any) -> None:
    c, h = api
    ev = make_event(payload={"method": "open_tender", "estimat": 100})
    err = _refused(c, h, ev, "payload.estimat")
    assert "did you mean 'estimate'" in err["message"] and "estimate" in err["message_zh"]
    assert "extensions" in err["expected"]


def test_a_wrongly_typed_amount_is_refused(api: Any) -> None:
    c, h = api
    err = _refused(
        c, h, make_event(payload={"method": "open_tender", "estimate": "1.2亿"}), "payload.estimate"
    )
    assert err["expected"].startswith("an integer") and "1.2亿" in err["message"]
    assert "整数" in err["expected_zh"]


def test_a_time_without_an_offset_is_refused(api: Any) -> None:
    c, h = api
    payload = example_payload("tender_notice_published", bid_deadline="2026-03-25 09:30")
    ev = make_event(type_="tender_notice_published", payload=payload)
    err = _refused(c, h, ev, "payload.bid_deadline")
    assert "RFC 3339" in err["expected"] and "时区" in err["expected_zh"]


@pytest.mark.parametrize(
    ("type_", "payload", "field"),
    [
        (
            "project_registered",
            {"method": "open_tender", "estimate_fen": 1},
            "payload.estimate_fen",
        ),
        (
            "bid_deposit_paid",
            example_payload("bid_deposit_paid", amount_fen=1),
            "payload.amount_fen",
        ),
        ("committee_formed", {"members": ["EXP-1"]}, "payload.members"),
    ],
)
def test_the_old_demos_field_names_are_refused(
    api: Any, type_: str, payload: dict[str, Any], field: str
) -> None:
    c, h = api
    _refused(c, h, make_event(type_=type_, payload=payload), field)


def test_a_payload_missing_what_the_rules_read_is_refused(api: Any) -> None:
    c, h = api
    ev = make_event(type_="tender_notice_published", payload={"place": "开标室3"})
    err = _refused(c, h, ev, "payload.issue_start")
    assert "required" in err["message"] and "必填" in err["message_zh"]


@pytest.mark.parametrize(
    ("type_", "over", "field"),
    [
        ("archive_package_created", {"retention_until": "2026-02-30"}, "payload.retention_until"),
        ("archive_package_created", {"retention_until": "20560508"}, "payload.retention_until"),
        ("contract_signed", {"contract_at": "9999-12-31T23:59:59-14:00"}, "payload.contract_at"),
        ("contract_signed", {"contract_at": "0001-01-01T00:00:00+14:00"}, "payload.contract_at"),
        ("contract_signed", {"contract_at": "2026-02-30T10:00:00+08:00"}, "payload.contract_at"),
        ("objection_filed", {"target": "everything"}, "payload.target"),
        ("winner_determined", {"rank": 0}, "payload.rank"),
        ("winner_determined", {"rank": True}, "payload.rank"),
        ("bid_submitted", {"ciphertext_hash": "ABC"}, "payload.ciphertext_hash"),
        ("committee_formed", {"expert_ids": "EXP-1"}, "payload.expert_ids"),
        ("committee_formed", {"expert_ids": ["EXP-1", ""]}, "payload.expert_ids[1]"),
        ("committee_formed", {"expert_ids": ["x"] * 101}, "payload.expert_ids"),
        ("objection_answered", {"in_reply_to": "7"}, "payload.in_reply_to"),
        (
            "objection_answered",
            {"in_reply_to": {"index": 1, "idempotency_key": "k"}},
            "payload.in_reply_to",
        ),
        ("objection_answered", {"in_reply_to": {"seq": 7}}, "payload.in_reply_to.seq"),
        ("winner_determined", {"exception_code": None}, "payload.exception_code"),
        ("activity_suspended", {"reason": "x" * 1001}, "payload.reason"),
        ("project_registered", {"must_tender": "true"}, "payload.must_tender"),
        ("project_registered", {"must_tender": 1}, "payload.must_tender"),
        ("project_registered", {"must_tender": None}, "payload.must_tender"),
        # What platforms capture at bid time (issue 17): one text per address, bounded ids.
        ("bid_submitted", {"client_ip": "2001:DB8::7"}, "payload.client_ip"),
        ("bid_submitted", {"client_ip": "2001:0db8::7"}, "payload.client_ip"),
        ("bid_submitted", {"client_ip": "203.0.113.07"}, "payload.client_ip"),
        ("bid_submitted", {"client_ip": "203.0.113.256"}, "payload.client_ip"),
        ("bid_submitted", {"client_ip": "fe80::1%eth0"}, "payload.client_ip"),
        ("bid_submitted", {"client_ip": "::ffff:cb00:7107"}, "payload.client_ip"),
        ("bid_modified", {"client_ip": "localhost"}, "payload.client_ip"),
        ("bid_withdrawn", {"client_ip": 3405803783}, "payload.client_ip"),
        ("bid_withdrawn", {"device_id": "hw 5f1c"}, "payload.device_id"),
        ("bid_submitted", {"device_id": "h" * 129}, "payload.device_id"),
        ("bid_submitted", {"file_creator": "x" * 129}, "payload.file_creator"),
        ("bid_submitted", {"file_tool": "tool\n9.2"}, "payload.file_tool"),
        ("bid_submitted", {"project_manager_id": "p" * 65}, "payload.project_manager_id"),
    ],
)
def test_values_outside_their_field_spec_are_refused(
    api: Any, type_: str, over: dict[str, Any], field: str
) -> None:
    c, h = api
    trade = "procurement" if "engineering" not in CAT.get(type_).trade_types else "engineering"
    ev = make_event(type_=type_, trade_type=trade, payload=example_payload(type_, **over))
    _refused(c, h, ev, field)


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        (example_payload("activity_suspended", reason="停\x07电"), "payload.reason"),
        (example_payload("activity_suspended", reason="line\nbreak"), "payload.reason"),
        (example_payload("activity_suspended", reason="c1\x85"), "payload.reason"),
        (example_payload("committee_formed", expert_ids=["EXP\x00"]), "payload.expert_ids[0]"),
        (
            example_payload(
                "activity_suspended", extensions={"cn.gov.hz.ggzy/note": {"a": [1, "x\x1b"]}}
            ),
            "payload.extensions.cn.gov.hz.ggzy/note.a[1]",
        ),
        (
            example_payload("activity_suspended", extensions={"cn.gov.hz.ggzy/note": {"k\x01": 1}}),
            "payload.extensions.cn.gov.hz.ggzy/note.'k\\x01'",
        ),
        (
            example_payload("objection_answered", in_reply_to={"idempotency_key": "k\x7f"}),
            "payload.in_reply_to.idempotency_key",
        ),
    ],
)
def test_control_characters_in_payload_strings_are_refused_at_any_depth(
    api: Any, payload: dict[str, Any], field: str
) -> None:
    c, h = api
    type_ = (
        "committee_formed"
        if "expert_ids" in payload
        else ("objection_answered" if "in_reply_to" in payload else "activity_suspended")
    )
    _refused(c, h, make_event(type_=type_, payload=payload), field)


def test_extensions_carry_namespaced_platform_data_only(api: Any) -> None:
    c, h = api
    ext = {"cn.gov.hz.ggzy/section": "标段1", "cn.gov.hz.ggzy/flags": {"a": [1, None, True]}}
    ok = make_event(payload=example_payload("project_registered", extensions=ext))
    r = c.post("/v1/events", json=ok, headers=h)
    assert r.status_code == 201, r.text
    for bad in ({"section": "标段1"}, {"ggzy/section": 1}, {"cn.gov.hz.ggzy/": 1}, []):
        ev = make_event(payload=example_payload("project_registered", extensions=bad))
        field = "payload.extensions" if not bad else f"payload.extensions.{next(iter(bad))}"
        _refused(c, h, ev, field)


def test_a_committed_record_carries_its_catalogue_version(api: Any) -> None:
    c, h = api
    r = c.post("/v1/events", json=make_event(), headers=h)
    assert r.status_code == 201
    lg: Ledger = c.app.state.ledger  # type: ignore[attr-defined]
    canonical, _ = lg.record(r.json()["index"])
    assert json.loads(canonical)["catalogue_version"] == CAT.version == CATALOGUE_VERSION


def test_envelope_refusals_carry_chinese_too(api: Any) -> None:
    c, h = api
    r = c.post("/v1/events", json=make_event(occurred_at="2026-03-02 09:00"), headers=h)
    err = r.json()["error"]
    assert r.status_code == 422 and err["field"] == "occurred_at"
    assert "时区" in err["message_zh"] and err["catalogue_version"] == CAT.version


# --- the rule catalogue reads only required fields -------------------------------------------

#: Fields an event may leave out because the rules take the *last* event that carries them
#: (verifier/rules/engine.py, _deadline and _announced_place): an extension states what it
#: changes, and the catalogue requires at least one of them (one_of_required).
CARRIED_FORWARD = {
    ("deadline_extended", "bid_deadline"),
    ("deadline_extended", "prequal_deadline"),
    ("deadline_extended", "place"),
}
#: Optional fields a rule reads knowing what their absence means (issue 12): not a project
#: that must be tendered; 应知之日 taken from the result announcement (政府采购法实施条例
#: 第五十三条); documents told apart by position; no representatives on the committee; the
#: challenge before a complaint is the newest one.
ABSENCE_MEANS = {
    ("project_registered", "must_tender"),
    ("challenge_filed", "known_at"),
    ("documents_issue_opened", "documents"),
    ("documents_issue_closed", "documents"),
    ("committee_formed", "representative_ids"),
    ("complaint_filed", "prior_dispute_ref"),
}


def test_every_field_a_process_rule_reads_is_required_where_it_reads_it() -> None:
    missing = []
    for rule in load_rules():
        for code, names in rule.fields.items():
            ev = CAT.get(code)
            for name in names:
                spec = ev.fields.get(name)
                if spec is None:
                    missing.append(f"{rule.id}: {code}.{name} is not in the catalogue")
                elif not spec.required and (code, name) not in CARRIED_FORWARD | ABSENCE_MEANS:
                    missing.append(f"{rule.id}: {code}.{name} is optional")
    assert not missing, missing
    for code, name in CARRIED_FORWARD:
        assert any(name in g for g in CAT.get(code).one_of_required), (code, name)


# --- the JSON Schemas and the checker agree ---------------------------------------------------

_CODES = [ev.code for ev in posted_types(CAT)]
_SCHEMAS = {code: event_schema(CAT.get(code)) for code in _CODES}
_utf8 = st.characters(codec="utf-8", exclude_categories=("Cc", "Cs"))


def _from_schema(s: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Valid instances of the subset of JSON Schema 2020-12 that api/schemas.py writes."""
    if "const" in s:
        return st.just(s["const"])
    if "enum" in s:
        return st.sampled_from(s["enum"])
    if "oneOf" in s:
        return st.one_of([_from_schema(b) for b in s["oneOf"]])
    t = s.get("type")
    if t == "boolean":
        return st.booleans()
    if t == "integer":
        return st.integers(s.get("minimum", -(2**53) + 1), s.get("maximum", 2**53 - 1))
    if t == "string" and "anyOf" in s:  # an "ip" field: IPv4, or IPv6 in RFC 5952 form
        return st.ip_addresses().filter(lambda a: getattr(a, "ipv4_mapped", None) is None).map(str)
    if t == "string":
        fmt = s.get("format")
        if fmt == "date-time":
            return st.builds(
                lambda d, off: d.replace(tzinfo=off).isoformat(),
                st.datetimes(min_value=_dt(1900), max_value=_dt(2200)),
                st.sampled_from([_tz(8), _tz(0), _tz(-5), _tz(14), _tz(-12)]),
            )
        if fmt == "date":
            return st.dates().map(lambda d: d.isoformat())
        lo, hi = s.get("minLength", 0), s.get("maxLength", 64)
        return (
            st.from_regex(s["pattern"], fullmatch=True, alphabet=_utf8).filter(
                lambda v: lo <= len(v) <= hi
            )
            if "pattern" in s and not s["pattern"].startswith("^[^")
            else st.text(_utf8, min_size=lo, max_size=min(hi, 40))
        )
    if t == "array":
        return st.lists(_from_schema(s["items"]), max_size=min(s.get("maxItems", 5), 5))
    if t == "object":
        props: dict[str, Any] = s.get("properties", {})
        required = set(s.get("required", ()))
        fixed = {k: _from_schema(v) for k, v in props.items() if k in required}
        optional = {
            k: _from_schema(v) for k, v in props.items() if k not in required and k != "extensions"
        }
        if "extensions" in props:
            optional["extensions"] = st.dictionaries(
                st.from_regex(r"cn\.gov\.[a-z]{2,5}/[a-z_]{1,10}", fullmatch=True),
                st.text(_utf8, max_size=10) | st.integers(0, 10),
                max_size=2,
            )
        obj = st.fixed_dictionaries(fixed, optional=optional)
        for group in s.get("allOf", ()):
            names = [b["required"][0] for b in group["anyOf"]]
            obj = obj.filter(lambda o, names=names: any(n in o for n in names))
        return obj
    raise AssertionError(f"schema not covered by the test's generator: {s}")


def _dt(year: int) -> Any:
    from datetime import datetime

    return datetime(year, 1, 1)


def _tz(hours: int) -> Any:
    from datetime import timedelta, timezone

    return timezone(timedelta(hours=hours))


_VALIDATORS = {
    code: jsonschema.Draft202012Validator(s, format_checker=jsonschema.FormatChecker())
    for code, s in _SCHEMAS.items()
}


@st.composite
def _valid_events(draw: st.DrawFn) -> dict[str, Any]:
    code = draw(st.sampled_from(_CODES))
    ev: dict[str, Any] = draw(_from_schema(_SCHEMAS[code]))
    return ev


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(_valid_events())
def test_events_generated_from_the_schemas_are_accepted(ev: dict[str, Any]) -> None:
    _VALIDATORS[ev["type"]].validate(ev)  # the generator keeps to the schema
    validate_event(ev, CAT)


def _mutations(ev: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    spec = CAT.get(ev["type"])
    payload = ev.get("payload", {})
    names = list(spec.fields)
    yield "unknown field", {**payload, "unknown_field_x": 1}
    for name in names:
        f = spec.fields[name]
        if f.required:
            yield f"drop {name}", {k: v for k, v in payload.items() if k != name}
        wrong: Any = "1.2亿" if f.type in ("int", "string[]", "reference") else 12
        yield f"mistype {name}", {**payload, name: wrong}
        if f.type == "string":
            yield f"control char in {name}", {**payload, name: "a\x00"}
        if f.type == "instant":
            yield f"naive {name}", {**payload, name: "2026-03-25 09:30"}
        if f.type == "bool":
            yield f"1 for {name}", {**payload, name: 1}
            yield f"text for {name}", {**payload, name: "true"}


@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(_valid_events(), st.data())
def test_mutations_of_valid_events_are_refused(ev: dict[str, Any], data: st.DataObject) -> None:
    mutations = list(_mutations(ev))
    what, payload = data.draw(st.sampled_from(mutations))
    bad = {**ev, "payload": payload}
    with pytest.raises(InvalidEvent) as info:
        validate_event(bad, CAT)
    assert info.value.field.startswith("payload"), (what, info.value)
    assert not _VALIDATORS[ev["type"]].is_valid(bad), what


def test_examples_and_the_demo_are_valid_under_the_schemas() -> None:
    from tests.tender import lawful_tender

    for code in _CODES:
        ev = make_event(type_=code, trade_type=CAT.get(code).trade_types[0])
        _VALIDATORS[code].validate(ev)
        validate_event(ev, CAT)
    for ev in lawful_tender("E1"):
        _VALIDATORS[ev["type"]].validate(ev)


def test_instants_at_the_edges_of_the_calendar() -> None:
    assert parse_instant("9999-12-31T23:59:59+14:00").year == 9999
    assert parse_instant("0001-01-01T00:00:00-08:00").year == 1
    for bad in ("9999-12-31T23:59:59-00:01", "0001-01-01T00:00:00+00:01", "2026-13-01T00:00:00Z"):
        with pytest.raises(ValueError):
            parse_instant(bad)


def test_ip_fields_take_each_address_in_its_one_canonical_text() -> None:
    """The collusion indicators compare addresses as text, so one address has one text."""
    for good in ("203.0.113.7", "0.0.0.0", "2001:db8::7", "::1", "1:0:1:1:1:1:1:1", "::"):
        assert str(parse_ip(good)) == good
    for bad in ("203.0.113.7 ", "2001:db8:0:0:0:0:0:7", "::FFFF:1.2.3.4", "1.2.3", None, ""):
        with pytest.raises(ValueError):
            parse_ip(bad)


# --- served: GET /v1/catalogue and the OpenAPI union --------------------------------------------


def test_the_catalogue_endpoint_lists_every_type_with_its_fields_and_schema(api: Any) -> None:
    c, _ = api
    r = c.get("/v1/catalogue")  # public, like the log
    assert r.status_code == 200
    body = r.json()
    assert body["version"] == CAT.version
    assert [e["code"] for e in body["events"]] == list(CAT.codes())
    notice = next(e for e in body["events"] if e["code"] == "tender_notice_published")
    deadline = next(f for f in notice["fields"] if f["name"] == "bid_deadline")
    assert deadline["type"] == "instant" and deadline["required"] is True
    assert deadline["zh"] == "投标截止时间（开标时间）" and deadline["en"]
    schema = notice["schema"]
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)
    one = c.get("/v1/catalogue/tender_notice_published").json()
    assert one["fields"] == notice["fields"] and one["version"] == CAT.version
    miss = c.get("/v1/catalogue/tender_notice_publisehd")
    assert miss.status_code == 404 and "tender_notice_published" in miss.json()["error"]["message"]
    reply = c.get("/v1/catalogue/challenge_answered").json()
    ref = next(f for f in reply["fields"] if f["name"] == "in_reply_to")
    assert ref["type"] == "reference" and ref["to"] == ["challenge_filed"]


def test_openapi_request_body_is_a_union_discriminated_on_type(api: Any) -> None:
    c, _ = api
    doc = c.get("/openapi.json").json()
    body = doc["paths"]["/v1/events"]["post"]["requestBody"]["content"]["application/json"]
    assert body["schema"] == {"$ref": "#/components/schemas/PostedEvent"}
    batch = doc["paths"]["/v1/events:batch"]["post"]["requestBody"]["content"]["application/json"]
    assert batch["schema"]["properties"]["events"]["items"] == body["schema"]
    union = doc["components"]["schemas"]["PostedEvent"]
    assert union["discriminator"]["propertyName"] == "type"
    assert set(union["discriminator"]["mapping"]) == set(_CODES)
    one = doc["components"]["schemas"]["Event_bid_submitted"]
    assert one["properties"]["type"] == {"type": "string", "const": "bid_submitted"}
    assert "price" in one["properties"]["payload"]["required"]
    # The whole document's schemas resolve and accept the demo's events.
    from tests.tender import lawful_tender

    store = {"doc": doc}
    for ev in lawful_tender("E1")[:5]:
        v = jsonschema.Draft202012Validator(
            {"$ref": "doc#/components/schemas/PostedEvent"},
            registry=_registry(store),
        )
        v.validate(ev)
        bad = {**ev, "payload": {**ev["payload"], "estimat": 1}}
        assert not v.is_valid(bad)


def _registry(store: dict[str, Any]) -> Any:
    from referencing import Registry, Resource

    doc = Resource.from_contents(store["doc"], default_specification=_spec())
    return Registry().with_resource("doc", doc)


def _spec() -> Any:
    from referencing.jsonschema import DRAFT202012

    return DRAFT202012
