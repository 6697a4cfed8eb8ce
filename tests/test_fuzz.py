"""Fuzzing pass (issue 10 §4, §5): the parsers that read what anyone sends, and the bundle
reader, never raise anything but their own typed error.

Hypothesis drives each target with generated and mutated input. The suite runs a bounded
number of examples (a few seconds each); ``JIANZHENG_FUZZ_SCALE=<n>`` multiplies them for
a longer run (docs/testing.md).
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.routes.objects import RangeNotSatisfiable, parse_range
from ledger.tiles import index_path, parse_tile_path
from tests.hostile import encode, members, rebuild, small_bundle
from verifier import bundle as fmt
from verifier.bundle import BundleFormatError, VerificationReport, verify_bundle
from verifier.canonical import MAX_DEPTH, CanonicalError, canonicalize, parse_strict_json
from verifier.note import ALG_COSIGNATURE_V1, ALG_ED25519, Signer
from verifier.trust import TrustError, TrustPolicy, parse_trust

SCALE = max(1, int(os.environ.get("JIANZHENG_FUZZ_SCALE", "1")))


def fuzz(examples: int) -> settings:
    """Hypothesis settings for one target: ``examples`` times the scale, no deadline."""
    return settings(
        max_examples=examples * SCALE,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


# --- strict JSON ----------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)
_NASTY = [b"[", b"]", b"{", b"}", b'"', b"\\", b"\\u", b"d800", b",", b":", b"1e9", b"-", b"0"]


@st.composite
def json_texts(draw: st.DrawFn) -> bytes:
    """JSON texts, often broken: valid documents with bytes spliced in, and deep nests."""
    kind = draw(st.integers(0, 3))
    if kind == 0:
        return draw(st.binary(max_size=200))
    if kind == 1:
        depth = draw(st.integers(MAX_DEPTH - 2, 1500))
        opener = draw(st.sampled_from([b"[", b'{"a":']))
        closer = b"]" if opener == b"[" else b"}"
        return opener * depth + b"1" + closer * draw(st.integers(0, depth))
    text = json.dumps(draw(json_values), ensure_ascii=draw(st.booleans())).encode()
    if kind == 3:
        for _ in range(draw(st.integers(1, 4))):
            at = draw(st.integers(0, len(text)))
            text = text[:at] + draw(st.sampled_from(_NASTY)) + text[at:]
    return text


@fuzz(600)
@given(json_texts())
def test_fuzz_strict_json(data: bytes) -> None:
    try:
        value = parse_strict_json(data)
    except CanonicalError as e:
        assert e.path and e.reason
        return
    # Whatever it accepts has a canonical form, which parses back to the same value.
    assert parse_strict_json(canonicalize(value)) == value


# --- Range headers --------------------------------------------------------------------------

_RANGE_BITS = ["bytes", "=", "-", ",", " ", "0", "1", "9" * 30, "²", "\t", "x"]


@fuzz(600)
@given(
    st.one_of(
        st.text(max_size=60),
        st.lists(st.sampled_from(_RANGE_BITS), max_size=20).map("".join),
        st.integers(0, 10**40).map(lambda n: f"bytes=0-{n}"),
        st.integers(0, 10**40).map(lambda n: f"bytes={n}-"),
    ),
    st.integers(0, 2**40),
)
def test_fuzz_parse_range(header: str, size: int) -> None:
    try:
        span = parse_range(header, size)
    except RangeNotSatisfiable:
        return
    if span is not None:
        first, last = span
        assert 0 <= first <= last < size


def test_parse_range_with_thousands_of_digits() -> None:
    huge = "9" * 5000
    assert parse_range(f"bytes=0-{huge}", 10) == (0, 9)
    assert parse_range(f"bytes=-{huge}", 10) == (0, 9)
    with pytest.raises(RangeNotSatisfiable):
        parse_range(f"bytes={huge}-", 10)


# --- tile paths -----------------------------------------------------------------------------

_TILE_BITS = ["0", "1", "000", "x000", "x001", "entries", ".p", "/", "255", "256", "²", "9" * 50]


@fuzz(600)
@given(
    st.one_of(
        st.text(max_size=40),
        st.lists(st.sampled_from(_TILE_BITS), max_size=12).map("".join),
        st.tuples(st.integers(0, 99), st.integers(0, 10**21), st.integers(0, 300)).map(
            lambda t: f"{t[0]}/{index_path(t[1])}.p/{t[2]}"
        ),
    )
)
def test_fuzz_tile_path(path: str) -> None:
    try:
        where = parse_tile_path(path)
    except ValueError:
        return
    # Only canonical paths are accepted: each is written back exactly.
    level = "entries" if where.level is None else str(where.level)
    again = f"{level}/{index_path(where.index)}"
    if where.width is not None:
        again += f".p/{where.width}"
    assert again == path and (where.width is None or 1 <= where.width <= 255)


# --- trust files ----------------------------------------------------------------------------

_LOG_KEY = Signer.generate("fuzz.test/log", ALG_ED25519).verifier.vkey
_WITNESS_KEY = Signer.generate("fuzz.test/witness", ALG_COSIGNATURE_V1).verifier.vkey
_TRUST_LINES = [
    f"log {_LOG_KEY}",
    f"witness {_WITNESS_KEY}",
    f"witness {_LOG_KEY}",
    "quorum 1",
    "quorum ²",
    "quorum 99999",
    "tsa-ca " + "ab" * 32,
    "# comment",
    "log",
    "",
    "log a+b+c",
    "\x00",
]


@fuzz(400)
@given(
    st.one_of(
        st.binary(max_size=200),
        st.lists(st.sampled_from(_TRUST_LINES), max_size=8).map(lambda ls: "\n".join(ls).encode()),
        st.lists(st.text(max_size=30), max_size=6).map(lambda ls: "\n".join(ls).encode()),
    )
)
def test_fuzz_trust_file(data: bytes) -> None:
    try:
        policy = parse_trust(data)
    except TrustError:
        return
    assert parse_trust(policy.to_text()) == policy


# --- the bundle reader ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def genuine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[bytes, TrustPolicy]]:
    data, trust = small_bundle(tmp_path_factory.mktemp("fuzz"))
    assert verify_bundle(data, trust).ok
    yield data, trust


def _verify(data: bytes, trust: TrustPolicy) -> VerificationReport | None:
    """Verify; a report, or None for a bundle refused as unreadable. Nothing else escapes."""
    try:
        rep = verify_bundle(data, trust)
    except BundleFormatError as e:
        assert str(e)
        return None
    json.dumps(rep.to_json())  # the report itself renders
    # The last-resort guards (a check or rule that raised) must not be what caught it:
    # every damage is named by the check that meets it.
    for c in rep.checks:
        assert "could not be completed" not in c.message, c.message
        assert "values this verifier cannot handle" not in c.message, c.message
    return rep


@fuzz(150)
@given(st.data())
def test_fuzz_bundle_bytes(genuine: tuple[bytes, TrustPolicy], data: st.DataObject) -> None:
    """The zip's own bytes damaged: overwritten, cut short, or spliced."""
    raw, trust = genuine
    buf = bytearray(raw)
    for _ in range(data.draw(st.integers(1, 8))):
        at = data.draw(st.integers(0, len(buf) - 1))
        how = data.draw(st.integers(0, 2))
        if how == 0:
            buf[at] = data.draw(st.integers(0, 255))
        elif how == 1:
            del buf[at:]
            if not buf:
                break
        else:
            buf[at:at] = data.draw(st.binary(min_size=1, max_size=8))
    _verify(bytes(buf), trust)  # refused as unreadable, or reported: both are fine


_HOSTILE_VALUES: list[Any] = [
    "9999-12-31T23:59:59+14:00",
    "9999-12-31T23:59:59-14:00",
    "0001-01-01T00:00:00+14:00",
    "2026-02-30",
    "2026-02-30T09:00:00+08:00",
    "9999-12-31",
    "",
    "\x00",
    2**53 - 1,
    -(2**53 - 1),
    -1,
    0,
    None,
    True,
    [],
    {},
    [[[[[]]]]],
    {"a": {"b": {}}},
    "x" * 1000,
]


@st.composite
def hostile_values(draw: st.DrawFn) -> Any:
    if draw(st.booleans()):
        return draw(st.sampled_from(_HOSTILE_VALUES))
    value = draw(json_values)
    try:
        canonicalize(value)
    except CanonicalError:
        return None
    return value


def _set_somewhere(doc: Any, draw: Callable[[st.SearchStrategy[Any]], Any], value: Any) -> Any:
    """``doc`` with one member or element (chosen by ``draw``) replaced by ``value``."""
    if isinstance(doc, dict) and doc and draw(st.integers(0, 3)):
        key = draw(st.sampled_from(sorted(doc)))
        return {**doc, key: _set_somewhere(doc[key], draw, value)}
    if isinstance(doc, list) and doc and draw(st.integers(0, 3)):
        i = draw(st.integers(0, len(doc) - 1))
        return [*doc[:i], _set_somewhere(doc[i], draw, value), *doc[i + 1 :]]
    return value


_JSON_MEMBERS = [fmt.MANIFEST, fmt.ATTACHMENTS, fmt.POSTERS]
_LINE_MEMBERS = [fmt.RECORDS, fmt.PROOFS, fmt.OPENINGS]
_TEXT_MEMBERS = [fmt.CHECKPOINT, fmt.PROJECT_HEAD]


@fuzz(150)
@given(st.data())
def test_fuzz_bundle_members(genuine: tuple[bytes, TrustPolicy], data: st.DataObject) -> None:
    """Members rewritten with hostile values, bad UTF-8, deep JSON or noise; the manifest
    is fixed up afterwards, so the checks behind it are the ones attacked."""
    raw, trust = genuine
    m = members(raw)
    name = data.draw(st.sampled_from(sorted(m)))
    how = data.draw(st.integers(0, 3))
    body = m[name]
    if how == 0 and (name in _JSON_MEMBERS or name in _LINE_MEMBERS):
        lines = body.split(b"\n") if name in _LINE_MEMBERS else [body]
        i = data.draw(st.integers(0, max(0, len(lines) - 1)))
        try:
            doc = json.loads(lines[i])
        except (ValueError, RecursionError):
            doc = None
        doc = _set_somewhere(doc, data.draw, data.draw(hostile_values()))
        lines[i] = encode(doc)
        body = b"\n".join(lines)
    elif how == 1:
        at = data.draw(st.integers(0, len(body)))
        bad = data.draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80"]))  # not UTF-8
        body = body[:at] + bad + body[at:]
    elif how == 2:
        depth = data.draw(st.integers(60, 5000))
        body = b"[" * depth + b"]" * depth
    else:
        body = data.draw(st.binary(max_size=300))
    if name in _TEXT_MEMBERS and data.draw(st.booleans()):
        body = m[name].replace(b"\n", data.draw(st.sampled_from([b"\r\n", b"\n\n", b""])), 1)
    m[name] = body
    _verify(rebuild(m, fix_manifest=data.draw(st.booleans()) or name == fmt.MANIFEST), trust)


def test_fuzz_targets_cover_the_bundle(genuine: tuple[bytes, TrustPolicy]) -> None:
    """The member lists above name every member a genuine bundle has (besides files)."""
    names = set(members(genuine[0]))
    listed = set(_JSON_MEMBERS + _LINE_MEMBERS + _TEXT_MEMBERS)
    assert {n for n in names if not n.startswith(fmt.FILES_PREFIX)} <= listed
    with zipfile.ZipFile(io.BytesIO(genuine[0])) as zf:
        assert zf.testzip() is None
