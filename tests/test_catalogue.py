"""Event catalogue: contents match domain-rules.md §1, and malformed files fail clearly."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest

from ledger.catalogue import (
    CATALOGUE_VERSION,
    FIELD_TYPES,
    PHASES,
    TRADE_TYPES,
    Catalogue,
    CatalogueError,
    EventType,
    UnknownEventType,
    UnknownTradeType,
    load_catalogue,
    load_catalogue_file,
    parse_catalogue,
)

# Every code in domain-rules.md §1, with the a/b and * shorthands expanded, by phase.
SECTION_1_CODES: dict[str, tuple[str, ...]] = {
    "setup": ("project_registered", "procurement_plan_filed"),
    "notice": (
        "prequal_notice_published",
        "tender_notice_published",
        "invitation_sent",
        "documents_issue_opened",
        "documents_issue_closed",
        "prequal_application_submitted",
        "prequal_result_notified",
        "clarification_issued",
        "deadline_extended",
    ),
    "dispute": (
        "objection_filed",
        "objection_answered",
        "inquiry_filed",
        "inquiry_answered",
        "challenge_filed",
        "challenge_answered",
    ),
    "bidding": (
        "bid_deposit_paid",
        "bid_submitted",
        "bid_receipt_issued",
        "bid_modified",
        "bid_withdrawn",
        "bid_rejected_late",
        "bid_deadline_reached",
    ),
    "opening": (
        "bid_opening_started",
        "bid_decrypted",
        "bid_decrypt_failed",
        "opening_record_published",
        "av_recording_started",
        "av_recording_stopped",
    ),
    "evaluation": (
        "expert_drawn",
        "committee_formed",
        "expert_replaced",
        "expert_recused",
        "qualification_reviewed",
        "eval_clarification_requested",
        "eval_clarification_answered",
        "bid_disqualified",
        "score_submitted",
        "score_revised",
        "evaluation_report_signed",
    ),
    "award": (
        "candidates_published",
        "winner_determined",
        "award_notice_issued",
        "award_result_published",
        "tender_report_filed",
    ),
    "contract": (
        "contract_signed",
        "contract_published",
        "contract_filed",
        "deposit_refunded",
        "performance_bond_posted",
        "acceptance_completed",
    ),
    "complaint": (
        "complaint_filed",
        "complaint_accepted",
        "complaint_decided",
        "activity_suspended",
        "activity_resumed",
        "activity_terminated",
        "system_fault",
    ),
    "land_mining_property": (
        "transfer_notice_published",
        "listing_opened",
        "listing_bid_placed",
        "listing_closed",
        "onsite_auction_started",
        "auction_bid",
        "hammer_fall",
        "auction_record_signed",
        "deal_confirmed",
        "info_pre_disclosed",
        "info_disclosed",
        "transferee_registered",
        "result_published",
    ),
    "archive": ("archive_package_created", "four_property_checked", "archive_transferred"),
}
ALL_SECTION_1 = tuple(c for codes in SECTION_1_CODES.values() for c in codes)
LEDGER_INTERNAL = ("evidence_accessed", "legal_hold_set", "legal_hold_released", "alert_raised")
#: Issue 17: the steps of an expert draw anyone can recompute (docs/formats.md, Expert draws).
DRAW_EVENTS = ("draw_committed", "draw_seed_revealed", "draw_failed")
PACKAGED = Path(__file__).resolve().parents[1] / "ledger" / "catalogue.json"


@pytest.fixture(scope="module")
def cat() -> Catalogue:
    return load_catalogue()


def _raw() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(PACKAGED.read_text(encoding="utf-8"))
    return data


def _event(data: dict[str, Any], code: str) -> dict[str, Any]:
    for ev in data["events"]:
        if ev["code"] == code:
            return dict(ev)
    raise AssertionError(code)


# --- the packaged catalogue ---------------------------------------------------------


def test_loads_and_is_cached(cat: Catalogue) -> None:
    assert cat.version == CATALOGUE_VERSION == 3
    assert load_catalogue() is cat


def test_five_trade_types(cat: Catalogue) -> None:
    assert TRADE_TYPES == ("engineering", "procurement", "land", "mining", "property")
    assert tuple(cat.trade_types) == TRADE_TYPES
    letters = {code: tt.letter for code, tt in cat.trade_types.items()}
    assert letters == {
        "engineering": "E",
        "procurement": "G",
        "land": "L",
        "mining": "M",
        "property": "P",
    }
    assert cat.trade_types["procurement"].name_zh == "政府采购"
    assert all(tt.name_zh and tt.name_en for tt in cat.trade_types.values())


def test_every_section_1_code_present_with_its_phase(cat: Catalogue) -> None:
    assert len(ALL_SECTION_1) == len(set(ALL_SECTION_1)) == 75
    missing = [c for c in ALL_SECTION_1 if c not in cat]
    assert not missing
    for phase, codes in SECTION_1_CODES.items():
        for code in codes:
            assert cat.get(code).phase == phase, code


def test_no_codes_beyond_section_1_and_ledger_internal(cat: Catalogue) -> None:
    assert set(cat.codes()) == set(ALL_SECTION_1) | set(LEDGER_INTERNAL) | set(DRAW_EVENTS)
    assert len(cat) == len(cat.codes()) == 82


def test_no_duplicate_codes_in_file() -> None:
    codes = [ev["code"] for ev in _raw()["events"]]
    assert len(codes) == len(set(codes))


def test_every_event_well_formed(cat: Catalogue) -> None:
    for ev in cat:
        assert re.fullmatch(r"[a-z][a-z0-9_]*", ev.code)
        assert ev.name_zh and ev.name_en
        assert ev.phase in PHASES
        assert ev.trade_types and set(ev.trade_types) <= set(TRADE_TYPES)
        assert ev.status in ("confirmed", "to-confirm")
        assert {f.type for f in ev.fields.values()} <= set(FIELD_TYPES)
        for f in ev.fields.values():
            assert f.zh and f.en, (ev.code, f.name)
        assert set(ev.sealed_fields) <= set(ev.fields)


def test_sources_use_full_law_names(cat: Catalogue) -> None:
    # The domain notes abbreviate (TBL, TBR, O87, 39号令 ...); the catalogue must not.
    abbreviations = re.compile(r"\b(TBL|TBR|GPL|GPR|NB|EB|O87)\b|号令|濮阳条例|代理机构办法")
    for ev in cat:
        for source in ev.sources:
            assert not abbreviations.search(source), (ev.code, source)
            # Article numbers are written in Chinese numerals, as in the statutes.
            assert not re.search(r"第\d", source), (ev.code, source)
    assert "招标投标法 第二十八条" in cat.get("bid_submitted").sources


def test_status_follows_source_labels(cat: Catalogue) -> None:
    assert cat.get("contract_signed").status == "confirmed"
    assert cat.get("candidates_published").status == "confirmed"
    # Only [R]/[S] sources in §1:
    assert cat.get("bid_decrypted").status == "to-confirm"
    assert cat.get("listing_opened").status == "to-confirm"
    assert cat.get("evidence_accessed").status == "to-confirm"
    assert not cat.get("evidence_accessed").confirmed


def test_bid_events_are_sealed_until_opening(cat: Catalogue) -> None:
    for code in ("bid_submitted", "bid_modified", "bid_withdrawn"):
        ev = cat.get(code)
        assert {"bidder", "price", "bid_file"} <= set(ev.sealed_fields), code
        assert ev.fields["price"].type == "int"
        assert ev.sealed
    assert cat.get("bid_submitted").sealed_attachments
    assert cat.get("bid_modified").sealed_attachments
    # The bid file's hash identifies it as surely as the file (issue 10 §2).
    for code in ("bid_submitted", "bid_modified"):
        assert "ciphertext_hash" in cat.get(code).sealed_fields
    opening = cat.get("bid_opening_started")
    assert not opening.sealed
    assert {n: f.type for n, f in opening.fields.items()} == {
        "opening_at": "instant",
        "place": "string",
    }


def test_only_bid_events_are_sealed(cat: Catalogue) -> None:
    sealed = {ev.code for ev in cat if ev.sealed}
    # The deposit names the bidder too: who is bidding is secret before opening. Receipts
    # (one per bid), the count at the deadline and late bids would count the bidders.
    assert sealed == {
        "bid_submitted",
        "bid_modified",
        "bid_withdrawn",
        "bid_deposit_paid",
        "bid_receipt_issued",
        "bid_deadline_reached",
        "bid_rejected_late",
    }
    assert cat.sealed_until == "bid_opening_started"
    assert "admin" not in cat.sealed_readers


def test_documented_rule_fields(cat: Catalogue) -> None:
    notice = cat.get("tender_notice_published").fields
    assert {n: (f.type, f.required) for n, f in notice.items()} == {
        "issue_start": ("instant", True),
        "bid_deadline": ("instant", True),
        "place": ("string", True),
        "business_hours": ("string", False),  # 民法典 第203条第二款 (issue 12)
    }
    assert notice["place"].max_length == 200
    signed = cat.get("contract_signed").fields
    assert {n: f.type for n, f in signed.items()} == {"contract_at": "instant"}
    reply = cat.get("objection_answered").fields["in_reply_to"]
    assert (reply.type, reply.to) == ("reference", ("objection_filed",))
    assert cat.get("objection_filed").fields["target"].values == (
        "prequal_documents",
        "tender_documents",
        "opening",
        "evaluation_result",
    )


def test_trade_type_filtering(cat: Catalogue) -> None:
    assert cat.get("candidates_published").trade_types == ("engineering",)
    assert cat.allows("candidates_published", "engineering")
    assert not cat.allows("candidates_published", "procurement")
    assert not cat.allows("candidates_published", "land")
    for tt in TRADE_TYPES:
        assert cat.allows("contract_signed", tt)
        assert cat.allows("evidence_accessed", tt)
    assert cat.get("challenge_filed").trade_types == ("procurement",)
    assert set(cat.get("info_disclosed").trade_types) == {"property"}
    assert set(cat.get("hammer_fall").trade_types) == {"land", "mining", "property"}
    land = {ev.code for ev in cat.for_trade_type("land")}
    assert "hammer_fall" in land and "bid_submitted" not in land


def test_evidence_accessed_is_ledger_internal(cat: Catalogue) -> None:
    ev = cat.get("evidence_accessed")
    assert ev.phase == "access"
    assert ev.trade_types == TRADE_TYPES
    assert ev.sources == ("公共资源交易平台管理暂行办法",)


def test_unknown_event_type_is_a_clear_key_error(cat: Catalogue) -> None:
    with pytest.raises(UnknownEventType) as info:
        cat.get("bid_submited")
    assert isinstance(info.value, KeyError)
    message = str(info.value)
    assert "'bid_submited'" in message and "did you mean 'bid_submitted'" in message
    assert "codes()" in message and "catalogue.json" in message
    with pytest.raises(UnknownEventType):
        cat.allows("no_such_event", "engineering")


def test_unknown_trade_type_raises(cat: Catalogue) -> None:
    with pytest.raises(UnknownTradeType, match="engineering"):
        cat.allows("contract_signed", "E")


def test_event_type_is_frozen_and_hashable(cat: Catalogue) -> None:
    ev = cat.get("contract_signed")
    with pytest.raises(AttributeError):
        ev.code = "x"  # type: ignore[misc]
    with pytest.raises(TypeError):
        ev.fields["x"] = "int"  # type: ignore[index]
    assert {ev: 1}[ev] == 1
    assert isinstance(ev, EventType)


# --- malformed catalogues -----------------------------------------------------------


_AT: dict[str, Any] = {
    "type": "instant",
    "required": True,
    "zh": "合同签订时间",
    "en": "When the contract was signed",
    "example": "2026-04-20T10:00:00+08:00",
}


def _mutate_event(target: str, /, **changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(_raw())
    for i, ev in enumerate(data["events"]):
        if ev["code"] == target:
            data["events"][i] = {**ev, **changes}
    return data


def _drop_key(code: str, key: str) -> dict[str, Any]:
    data = copy.deepcopy(_raw())
    for ev in data["events"]:
        if ev["code"] == code:
            del ev[key]
    return data


def _with_trade_type(code: str, entry: Any) -> dict[str, Any]:
    data = copy.deepcopy(_raw())
    data["trade_types"][code] = entry
    return data


def _without_trade_type(code: str) -> dict[str, Any]:
    data = copy.deepcopy(_raw())
    del data["trade_types"][code]
    return data


def _duplicated(code: str) -> dict[str, Any]:
    data = copy.deepcopy(_raw())
    data["events"].append(_event(data, code))
    return data


MALFORMED = [
    pytest.param([], "expected a JSON object", id="not an object"),
    pytest.param({**_raw(), "version": CATALOGUE_VERSION + 1}, "version", id="wrong version"),
    pytest.param({**_raw(), "version": True}, "version", id="bool version"),
    pytest.param({**_raw(), "extra": 1}, "unknown key", id="extra top key"),
    pytest.param({**_raw(), "events": []}, "non-empty list", id="no events"),
    pytest.param(
        _with_trade_type("forestry", {}),
        "unknown trade type 'forestry'",
        id="unknown trade type key",
    ),
    pytest.param(_without_trade_type("mining"), "missing trade type", id="missing trade type"),
    pytest.param(
        _mutate_event("contract_signed", trade_types=["engineering", "forestry"]),
        "unknown trade type 'forestry'",
        id="event unknown trade type",
    ),
    pytest.param(
        _mutate_event("contract_signed", trade_types=["all"]),
        "instead of 'all'",
        id="unexpanded all",
    ),
    pytest.param(
        _mutate_event("contract_signed", trade_types=[]), "at least one", id="no trade types"
    ),
    pytest.param(
        _duplicated("bid_submitted"), "duplicate event code 'bid_submitted'", id="duplicate code"
    ),
    pytest.param(
        _mutate_event("contract_signed", fields={"contract_at": {**_AT, "type": "datetime"}}),
        "bad field type 'datetime'",
        id="bad field type",
    ),
    pytest.param(
        _mutate_event("contract_signed", fields={"contract_at": {**_AT, "type": 1}}),
        "bad field type",
        id="field type not a string",
    ),
    pytest.param(
        _mutate_event("contract_signed", fields={"contract_at": "instant"}),
        "expected a JSON object",
        id="field spec not an object",
    ),
    pytest.param(
        _mutate_event("contract_signed", fields={"ContractAt": _AT}),
        "snake",
        id="bad field name",
    ),
    pytest.param(
        _mutate_event("contract_signed", fields={"extensions": _AT}),
        "reserved",
        id="field named extensions",
    ),
    pytest.param(
        _mutate_event("contract_signed", fields={"contract_at": {**_AT, "required": "yes"}}),
        "required: expected true or false",
        id="required not bool",
    ),
    pytest.param(
        _mutate_event("contract_signed", fields={"contract_at": {**_AT, "max_length": 9}}),
        "unknown key(s) max_length",
        id="constraint of another type",
    ),
    pytest.param(
        _mutate_event("contract_signed", fields={"contract_at": {**_AT, "example": "today"}}),
        "contract_at: example",
        id="invalid example",
    ),
    pytest.param(
        _mutate_event(
            "contract_signed",
            fields={
                "who": {"type": "string", "required": True, "zh": "x", "en": "x", "example": "a"}
            },
        ),
        "missing key(s) max_length",
        id="unbounded string",
    ),
    pytest.param(
        _mutate_event(
            "contract_signed",
            fields={
                "k": {
                    "type": "enum",
                    "required": True,
                    "zh": "x",
                    "en": "x",
                    "values": [],
                    "example": "a",
                }
            },
        ),
        "at least one value",
        id="empty enum",
    ),
    pytest.param(
        _mutate_event(
            "contract_signed",
            fields={
                "r": {
                    "type": "reference",
                    "required": True,
                    "zh": "x",
                    "en": "x",
                    "to": ["bid_sent"],
                    "example": {"index": 1},
                }
            },
        ),
        "'bid_sent' is not an event code",
        id="reference to unknown type",
    ),
    pytest.param(
        _mutate_event("contract_signed", fields={"contract_at": {**_AT, "pattern": "("}}),
        "unknown key(s) pattern",
        id="pattern on an instant",
    ),
    pytest.param(
        _mutate_event("contract_signed", one_of_required=[["contract_at"]]),
        "'contract_at' is not an optional field",
        id="one_of_required names a required field",
    ),
    pytest.param(
        _mutate_event("contract_signed", code="Contract-Signed"), "snake_case", id="bad code"
    ),
    pytest.param(
        _mutate_event("contract_signed", phase="signing"), "unknown phase", id="bad phase"
    ),
    pytest.param(_mutate_event("contract_signed", status="verified"), "status", id="bad status"),
    pytest.param(
        _mutate_event("contract_signed", sources=[]),
        "needs at least one source",
        id="confirmed without sources",
    ),
    pytest.param(
        _mutate_event("bid_submitted", sealed_fields=["bidder", "prize"]),
        "'prize' is not declared",
        id="sealed field not declared",
    ),
    pytest.param(
        _mutate_event("bid_submitted", sealed_attachments="yes"),
        "true or false",
        id="sealed_attachments not bool",
    ),
    pytest.param(
        _drop_key("contract_signed", "sealed_fields"),
        "missing key(s) sealed_fields",
        id="missing key",
    ),
    pytest.param(
        _mutate_event("contract_signed", sealed_field=[]),
        "unknown key(s) sealed_field",
        id="misspelt key",
    ),
    pytest.param(_mutate_event("contract_signed", name_zh=" "), "name_zh", id="empty name"),
    pytest.param(
        _mutate_event("contract_signed", sources=["招标投标法 第四十六条"] * 2),
        "duplicate",
        id="duplicate source",
    ),
]


@pytest.mark.parametrize(("data", "needle"), MALFORMED)
def test_malformed_dict_raises_clear_error(data: Any, needle: str) -> None:
    with pytest.raises(CatalogueError) as info:
        parse_catalogue(data)
    assert needle in str(info.value)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(("data", "needle"), MALFORMED)
def test_malformed_file_raises_clear_error(tmp_path: Path, data: Any, needle: str) -> None:
    path = tmp_path / "catalogue.json"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(CatalogueError) as info:
        load_catalogue_file(path)
    message = str(info.value)
    assert needle in message
    assert str(path) in message  # says which file is broken


def test_error_names_the_offending_event() -> None:
    data = _mutate_event(
        "bid_withdrawn", fields={"bidder": {**_AT, "type": "str"}}, sealed_fields=["bidder"]
    )
    with pytest.raises(CatalogueError, match=r"\(bid_withdrawn\)\.fields\.bidder"):
        parse_catalogue(data)


def test_invalid_json_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{"version": 1,', encoding="utf-8")
    with pytest.raises(CatalogueError, match="not valid JSON"):
        load_catalogue_file(path)


def test_packaged_file_loads_through_path_and_dict(cat: Catalogue) -> None:
    from_file = load_catalogue_file(PACKAGED)
    from_dict = parse_catalogue(_raw())
    assert from_file.codes() == from_dict.codes() == cat.codes()
    assert from_file.get("bid_submitted") == cat.get("bid_submitted")
