"""The append path's fast forms agree with the general ones they stand in for.

``complete_record`` assembles the record's canonical text member by member; it must be
byte for byte ``canonicalize(record_json(...))``. Others: RFC 3339 parsing, the event
digest, the records insert, and the expiry of cached tokens.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from api.auth import AuthError, TokenCheck, create_token
from ledger.catalogue import load_catalogue
from ledger.models import RecordRow
from ledger.records import (
    Attachment,
    EventSubmission,
    InvalidEvent,
    complete_record,
    parse_rfc3339,
    record_json,
    validate_event,
)
from ledger.store import RECORD_COLUMNS
from tests.conftest import FakeClock, make_event
from verifier.canonical import Canonical, CanonicalError, canonicalize
from verifier.payload import RFC3339_RE

# Any scalar value but lone surrogates, which no validated event holds (tested below).
_text = st.text(st.characters(codec="utf-8"), min_size=1, max_size=12)
_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | _text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3),
    max_leaves=8,
)
_attachment = st.builds(
    Attachment,
    st.text("0123456789abcdef", min_size=64, max_size=64),
    st.integers(0, 2**40),
    _text,
    _text,
    st.none() | _text,
)


@st.composite
def _events(draw: st.DrawFn) -> EventSubmission:
    actor: dict[str, Any] = {"id": draw(_text), "role": draw(_text)}
    if draw(st.booleans()):
        actor = draw(st.dictionaries(_text, _text, max_size=3))
    payload = draw(st.dictionaries(_text, _json, max_size=4))
    return EventSubmission(
        draw(_text),
        draw(_text),
        draw(_text),
        actor,
        draw(_text),
        Canonical(canonicalize(payload).decode()),
        tuple(draw(st.lists(_attachment, max_size=3))),
        draw(st.none() | _text),
        poster_signature=draw(st.none() | st.dictionaries(_text, _text, max_size=2)),
        catalogue_version=draw(st.integers(0, 2**53 - 1)),
        late_entry=draw(st.none() | _text),
    )


@st.composite
def _fields(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "index": draw(st.integers(0, 2**53 - 1)),
        "seq": draw(st.integers(0, 2**53 - 1)),
        "prev": draw(st.binary(min_size=32, max_size=32)),
        "recorded_at": draw(_text),
        "salt": draw(st.binary(min_size=32, max_size=32)),
        "checkpoint_size": draw(st.integers(0, 2**53 - 1)),
        "checkpoint_root": draw(st.binary(min_size=32, max_size=32)),
    }


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_complete_record_is_the_canonical_form_of_the_record(data: st.DataObject) -> None:
    ev = data.draw(_events())
    kw = data.draw(_fields())
    rec = complete_record(ev, **kw)
    assert rec.canonical == canonicalize(record_json(ev, **kw))


def test_complete_record_refuses_what_canonicalize_refuses() -> None:
    ev = EventSubmission(
        "P\ud800", "engineering", "t", {"id": "a", "role": "b"}, "x", Canonical("{}")
    )
    kw: dict[str, Any] = {
        "index": 0,
        "seq": 0,
        "prev": bytes(32),
        "recorded_at": "now",
        "salt": bytes(32),
        "checkpoint_size": 0,
        "checkpoint_root": bytes(32),
    }
    with pytest.raises(CanonicalError, match=r"^project: lone surrogate"):
        complete_record(ev, **kw)
    with pytest.raises(CanonicalError, match=r"^index: integer"):
        complete_record(ev, **{**kw, "index": 2**53})


def test_record_rows_fill_every_column_of_the_table() -> None:
    # Store.add_records inserts positional tuples; a new column must be added there too.
    assert sorted(RECORD_COLUMNS) == sorted(c.name for c in RecordRow.__table__.columns)


def _rfc3339_reference(value: str) -> datetime | None:
    """parse_rfc3339 as first written: every match rebuilt into fromisoformat's form, and
    refused when its UTC time leaves years 1..9999."""
    m = RFC3339_RE.fullmatch(value)
    if m is None:
        return None
    frac = (m.group(7) or "")[1:7].ljust(6, "0") if m.group(7) else "000000"
    off = m.group(8)
    iso = f"{m.group(1)}-{m.group(2)}-{m.group(3)}T{m.group(4)}:{m.group(5)}:{m.group(6)}.{frac}"
    iso += "+00:00" if off in ("Z", "z") else off
    try:
        t = datetime.fromisoformat(iso)
        t.astimezone(UTC)
    except (ValueError, OverflowError):
        return None
    return t


def _digits(top: int) -> st.SearchStrategy[str]:
    return st.integers(0, top).map("{:02d}".format)


@settings(max_examples=500, deadline=None)
@given(
    st.integers(0, 9999).map("{:04d}".format),
    _digits(13),
    _digits(32),
    st.sampled_from("Tt "),
    _digits(25),
    _digits(61),
    _digits(61),
    st.sampled_from(["", ".5", ".123456789"]),
    st.sampled_from(["Z", "z", "+08:00", "-00:00", "+24:00", "+23:59", "-12:60", ""]),
)
def test_parse_rfc3339_agrees_with_the_reference(
    y: str, mo: str, d: str, sep: str, h: str, mi: str, s: str, frac: str, off: str
) -> None:
    value = f"{y}-{mo}-{d}{sep}{h}:{mi}:{s}{frac}{off}"
    want = _rfc3339_reference(value)
    if want is None:
        with pytest.raises(InvalidEvent):
            parse_rfc3339(value, "at")
    else:
        assert parse_rfc3339(value, "at") == want


# Platform data under extensions: any JSON whose strings hold no control characters.
_clean = st.text(st.characters(codec="utf-8", exclude_categories=("Cc", "Cs")), max_size=12)
_clean_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | _clean,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_clean, inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=100, deadline=None)
@given(
    st.dictionaries(
        st.from_regex(r"cn\.gov\.[a-z]{1,5}/[a-z_]{1,8}", fullmatch=True), _clean_json, max_size=4
    ),
    st.booleans(),
)
def test_event_digest_is_the_hash_of_the_posted_event(ext: dict[str, Any], has: bool) -> None:
    obj = make_event(
        type_="prequal_result_notified", idempotency_key="k-1", payload={"extensions": ext}
    )
    if not has:
        del obj["payload"]
    ev = validate_event(obj, load_catalogue())
    assert ev.digest == hashlib.sha256(canonicalize(obj)).digest()


def test_a_cached_token_expires_at_its_expiry(ledger_factory: Any) -> None:
    clock = FakeClock()
    t0 = clock.t
    lg = ledger_factory()
    _, token = create_token(lg.store, "reviewer", clock=clock, expires_at=t0 + timedelta(seconds=1))
    check = TokenCheck(lg.store, clock)
    p = check.authenticate(f"Bearer {token}")  # from the database, then cached
    # FakeClock.now() first adds 1 ms: the last valid reading, then the expiry itself.
    clock.t = t0 + timedelta(milliseconds=998)
    assert check.authenticate(f"Bearer {token}") == p
    with pytest.raises(AuthError):
        check.authenticate(f"Bearer {token}")
