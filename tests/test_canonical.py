"""RFC 8785 (JCS) canonical JSON: spec examples, escaping, rejections, properties."""

from __future__ import annotations

import enum
import hashlib
import json
import json.encoder
from collections import OrderedDict
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from verifier import canonical
from verifier.canonical import (
    MAX_DEPTH,
    MAX_SAFE_INTEGER,
    CanonicalError,
    canonical_sha256,
    canonicalize,
    parse_strict_json,
)

# --------------------------------------------------------------------------------------
# Independent reference for string escaping, written from RFC 8785 §3.2.2.2 / ECMAScript
# QuoteJSONString: short escapes for \" \\ \b \t \n \f \r, \u00xx (lowercase) for the
# other code points below U+0020, everything else literal.
# --------------------------------------------------------------------------------------

_SHORT = {
    0x08: "\\b",
    0x09: "\\t",
    0x0A: "\\n",
    0x0C: "\\f",
    0x0D: "\\r",
    0x22: '\\"',
    0x5C: "\\\\",
}


def _ref_escape_char(ch: str) -> str:
    cp = ord(ch)
    if cp in _SHORT:
        return _SHORT[cp]
    if cp < 0x20:
        return f"\\u{cp:04x}"
    return ch


def _ref_quote(s: str) -> str:
    return '"' + "".join(map(_ref_escape_char, s)) + '"'


def _utf16_units(s: str) -> list[int]:
    """UTF-16 code units of ``s``, computed by hand rather than by a codec."""
    units: list[int] = []
    for ch in s:
        cp = ord(ch)
        if cp > 0xFFFF:
            cp -= 0x10000
            units += [0xD800 + (cp >> 10), 0xDC00 + (cp & 0x3FF)]
        else:
            units.append(cp)
    return units


def _error(value: object) -> CanonicalError:
    with pytest.raises(CanonicalError) as info:
        canonicalize(value)
    return info.value


def _parse_error(data: bytes) -> CanonicalError:
    with pytest.raises(CanonicalError) as info:
        parse_strict_json(data)
    return info.value


# --------------------------------------------------------------------------------------
# RFC 8785 examples
# --------------------------------------------------------------------------------------

# §3.2.3, as JSON text with escapes exactly as the RFC prints it.
_RFC_SORTING_INPUT = rb"""{
  "\u20ac": "Euro Sign",
  "\r": "Carriage Return",
  "\ufb33": "Hebrew Letter Dalet With Dagesh",
  "1": "One",
  "\ud83d\ude00": "Emoji: Grinning Face",
  "\u0080": "Control",
  "\u00f6": "Latin Small Letter O With Diaeresis"
}"""

_RFC_SORTING_EXPECTED = (
    '{"\\r":"Carriage Return",'
    '"1":"One",'
    '"\u0080":"Control",'
    '"\u00f6":"Latin Small Letter O With Diaeresis",'
    '"\u20ac":"Euro Sign",'
    '"\U0001f600":"Emoji: Grinning Face",'
    '"\ufb33":"Hebrew Letter Dalet With Dagesh"}'
).encode("utf-8")


def test_rfc8785_sorting_example_from_json_text() -> None:
    assert canonicalize(parse_strict_json(_RFC_SORTING_INPUT)) == _RFC_SORTING_EXPECTED


def test_rfc8785_sorting_example_from_python_dict() -> None:
    value = {
        "\u20ac": "Euro Sign",
        "\r": "Carriage Return",
        "\ufb33": "Hebrew Letter Dalet With Dagesh",
        "1": "One",
        "\U0001f600": "Emoji: Grinning Face",
        "\u0080": "Control",
        "\u00f6": "Latin Small Letter O With Diaeresis",
    }
    assert canonicalize(value) == _RFC_SORTING_EXPECTED
    # The emoji is the discriminating entry: by code point it would sort last.
    assert sorted(value)[-1] == "\U0001f600"


def test_sorting_example_with_hebrew_bet() -> None:
    # Not in the RFC's example: U+05D1 lands between U+00F6 and U+20AC either way.
    value = {
        "\u20ac": 1,
        "\r": 2,
        "\ufb33": 3,
        "1": 4,
        "\U0001f600": 5,
        "\u0080": 6,
        "\u00f6": 7,
        "\u05d1": 8,
    }
    order = list(json.loads(canonicalize(value)))
    assert order == ["\r", "1", "\u0080", "\u00f6", "\u05d1", "\u20ac", "\U0001f600", "\ufb33"]


def test_utf16_order_differs_from_code_point_order() -> None:
    # Characters above U+FFFF are surrogate pairs D800–DBFF + DC00–DFFF in UTF-16, so
    # they sort before U+E000..U+FFFF, though their code points are larger.
    value = {"\uffff": 0, "\ue000": 1, "\U00010000": 2, "\U0010ffff": 3, "\ud7ff": 4, "z": 5}
    order = list(json.loads(canonicalize(value)))
    assert order == ["z", "\ud7ff", "\U00010000", "\U0010ffff", "\ue000", "\uffff"]
    assert order != sorted(value)
    # And inside longer keys, on the first differing position.
    value2 = {"a\uff01b": 0, "a\U0001f600": 1, "a": 2}
    assert list(json.loads(canonicalize(value2))) == ["a", "a\U0001f600", "a\uff01b"]


def test_rfc8785_section_3_2_2_example_integer_subset() -> None:
    # The §3.2.2 example without its "numbers" member (floats are outside our profile).
    text = rb"""{
      "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
      "literals": [null, true, false]
    }"""
    expected = '{"literals":[null,true,false],"string":"\u20ac$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}'
    assert canonicalize(parse_strict_json(text)) == expected.encode("utf-8")


def test_rfc8785_section_3_2_2_numbers_are_rejected() -> None:
    text = b'{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001]}'
    err = _parse_error(text)
    assert err.path == "numbers[0]"
    assert "floats are not allowed" in str(err)


# --------------------------------------------------------------------------------------
# Serialization of primitives
# --------------------------------------------------------------------------------------


def test_whitespace_free_and_nested_sorting() -> None:
    value = {"b": [{"z": 1, "a": 2}, []], "a": {"d": True, "c": None, "e": False}, "": {}}
    assert canonicalize(value) == (
        b'{"":{},"a":{"c":null,"d":true,"e":false},"b":[{"a":2,"z":1},[]]}'
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, b"null"),
        (True, b"true"),
        (False, b"false"),
        (0, b"0"),
        (-0, b"0"),
        (1, b"1"),
        (-1, b"-1"),
        (MAX_SAFE_INTEGER, b"9007199254740991"),
        (-MAX_SAFE_INTEGER, b"-9007199254740991"),
        ("", b'""'),
        ([], b"[]"),
        ({}, b"{}"),
        ([True, 1, False, 0, None], b"[true,1,false,0,null]"),
    ],
)
def test_primitives(value: object, expected: bytes) -> None:
    assert canonicalize(value) == expected


def test_bool_is_not_int() -> None:
    assert canonicalize({"a": True}) != canonicalize({"a": 1})
    assert canonicalize([False]) == b"[false]"


@pytest.mark.parametrize("cp", range(0x20))
def test_every_control_character(cp: int) -> None:
    expected = {0x08: "\\b", 0x09: "\\t", 0x0A: "\\n", 0x0C: "\\f", 0x0D: "\\r"}.get(
        cp, f"\\u{cp:04x}"
    )
    assert canonicalize(chr(cp)) == f'"{expected}"'.encode("ascii")
    assert canonicalize({chr(cp): chr(cp)}) == f'{{"{expected}":"{expected}"}}'.encode("ascii")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('"', b'"\\""'),
        ("\\", b'"\\\\"'),
        ("/", b'"/"'),  # never "\/"
        ("\x7f", b'"\x7f"'),  # DEL is not escaped
        ("\u2028\u2029", '"\u2028\u2029"'.encode()),  # unlike some "JS-safe" encoders
        ("\u00e9\u4e2d\u6587", '"\u00e9\u4e2d\u6587"'.encode()),
        ("\U0001f600", b'"\xf0\x9f\x98\x80"'),  # literal UTF-8, not a \ud83d\ude00 escape
        ("<script>&'", b'"<script>&\'"'),
        ("\x1f\x20", b'"\\u001f "'),  # lowercase hex, boundary
        ("\ufeff", b'"\xef\xbb\xbf"'),
    ],
)
def test_string_escapes(text: str, expected: bytes) -> None:
    assert canonicalize(text) == expected


def test_escaping_of_every_code_point() -> None:
    # All of U+0000..U+10FFFF except surrogates, through the real encoder and through
    # the stdlib's pure-Python fallback (used when the C accelerator is missing).
    every = "".join(chr(cp) for cp in range(0x110000) if not 0xD800 <= cp <= 0xDFFF)
    expected = _ref_quote(every)
    assert canonicalize(every) == expected.encode("utf-8")
    assert json.encoder.py_encode_basestring(every) == expected
    assert json.encoder.encode_basestring(every) == expected


# --------------------------------------------------------------------------------------
# Rejections, with the path named
# --------------------------------------------------------------------------------------


def test_float_rejected_with_path() -> None:
    err = _error({"payload": {"amounts": [1, 2, 3.5]}})
    assert str(err) == "payload.amounts[2]: floats are not allowed; amounts are integers in fen"
    assert err.path == "payload.amounts[2]"
    assert isinstance(err, ValueError)


@pytest.mark.parametrize("bad", [1.0, float("nan"), float("inf"), -0.0])
def test_all_floats_rejected(bad: float) -> None:
    assert str(_error(bad)) == "$: floats are not allowed; amounts are integers in fen"


@pytest.mark.parametrize("bad", [MAX_SAFE_INTEGER + 1, -MAX_SAFE_INTEGER - 1, 2**64])
def test_integer_out_of_range(bad: int) -> None:
    err = _error({"a": [0, {"b": bad}]})
    assert err.path == "a[1].b"
    assert f"integer {bad} is outside" in err.reason


def test_enormous_integer_message_stays_short() -> None:
    err = _error([10**5000])
    assert err.path == "$[0]"
    assert "-bit integer" in err.reason and len(str(err)) < 200


@pytest.mark.parametrize(
    ("bad", "type_name"),
    [((1, 2), "tuple"), (b"x", "bytes"), ({1}, "set"), (object(), "object"), (1j, "complex")],
)
def test_unsupported_types(bad: object, type_name: str) -> None:
    err = _error({"x": {"y": bad}})
    assert err.path == "x.y"
    assert err.reason.startswith(f"unsupported type {type_name};")


def test_non_string_key() -> None:
    err = _error({"outer": {"ok": 1, 7: "seven"}})
    assert str(err) == "outer: object key 7 is int; keys must be strings"
    assert _error({None: 1}).path == "$"


def test_lone_surrogates_rejected() -> None:
    err = _error({"a": ["fine", "bad\ud800"]})
    assert err.path == "a[1]"
    assert "lone surrogate" in err.reason
    err = _error({"k": {"\udc00x": 1}})
    assert err.path == 'k["\\udc00x"]'
    assert "lone surrogate in object key" in err.reason
    # A correctly paired astral character is fine.
    assert canonicalize("\U0001f600") == '"\U0001f600"'.encode()


def _nested(depth: int) -> object:
    value: object = 0
    for _ in range(depth):
        value = [value]
    return value


def test_depth_limit() -> None:
    assert canonicalize(_nested(MAX_DEPTH)) == b"[" * MAX_DEPTH + b"0" + b"]" * MAX_DEPTH
    err = _error(_nested(MAX_DEPTH + 1))
    assert err.reason == f"nesting deeper than {MAX_DEPTH} levels"
    assert err.path == "$" + "[0]" * MAX_DEPTH


def test_cycle_is_an_error_not_a_crash() -> None:
    cyclic: dict[str, Any] = {}
    cyclic["self"] = cyclic
    assert "nesting deeper" in _error(cyclic).reason


@pytest.mark.parametrize(
    ("value", "path"),
    [
        ({"a b": 1.5}, '$["a b"]'),
        ({"a": {"x.y": [0, 1.5]}}, 'a["x.y"][1]'),
        ({"": 1.5}, '$[""]'),
        ({"_id9": 1.5}, "_id9"),
        ({"9a": 1.5}, '$["9a"]'),
        ({"\u4e2d": 1.5}, '$["\\u4e2d"]'),
        ([[1.5]], "$[0][0]"),
        ({"k" * 100: 1.5}, '$["' + "k" * 40 + '\\u2026"]'),
        ({"k" * 40: 1.5}, "k" * 40),
    ],
)
def test_path_rendering(value: object, path: str) -> None:
    assert _error(value).path == path


# --------------------------------------------------------------------------------------
# Subclasses, digest
# --------------------------------------------------------------------------------------


class _Colour(enum.StrEnum):
    RED = "red"

    def __str__(self) -> str:
        return "overridden"


class _Level(enum.IntEnum):
    HIGH = 3


def test_subclasses_encode_as_their_base_value() -> None:
    value = OrderedDict([("b", _Colour.RED), ("a", [_Level.HIGH])])
    assert canonicalize(value) == b'{"a":[3],"b":"red"}'
    assert canonicalize({_Colour.RED: 1}) == b'{"red":1}'


def test_canonical_sha256() -> None:
    value = {"b": 1, "a": "x"}
    digest = canonical_sha256(value)
    assert len(digest) == 32
    assert digest == hashlib.sha256(b'{"a":"x","b":1}').digest()


# --------------------------------------------------------------------------------------
# Strict parsing
# --------------------------------------------------------------------------------------


def test_parse_accepts_plain_json() -> None:
    data = b' {"a": [1, -2, 0, -0, true, false, null, "\\ud83d\\ude00\\u00e9"], "b": {}} '
    assert parse_strict_json(data) == {
        "a": [1, -2, 0, 0, True, False, None, "\U0001f600\u00e9"],
        "b": {},
    }
    assert parse_strict_json(b"9007199254740991") == MAX_SAFE_INTEGER
    assert parse_strict_json(b"-9007199254740991") == -MAX_SAFE_INTEGER
    assert parse_strict_json(bytearray(b"[]")) == []


@pytest.mark.parametrize(
    ("data", "path", "reason_part"),
    [
        (b'{"a": 1, "a": 2}', "a", "duplicate object key"),
        (b'{"x": [{"k": 1, "j": 2, "k": 3}]}', "x[0].k", "duplicate object key"),
        (b'{"payload": {"amounts": [1, 2, 3.0]}}', "payload.amounts[2]", "floats are not allowed"),
        (b"[1e5]", "$[0]", "floats are not allowed"),
        (b"[1E+2]", "$[0]", "floats are not allowed"),
        (b"[-0.0]", "$[0]", "floats are not allowed"),
        (b'{"n": NaN}', "n", "NaN is not allowed"),
        (b'{"n": Infinity}', "n", "Infinity is not allowed"),
        (b'{"n": [-Infinity]}', "n[0]", "-Infinity is not allowed"),
        (b"[9007199254740992]", "$[0]", "outside"),
        (b"[-9007199254740992]", "$[0]", "outside"),
        (b"[" + b"9" * 5000 + b"]", "$[0]", "5000 digits"),
        (b'{"s": "\\ud800"}', "s", "lone surrogate in string"),
        (b'{"s": "\\udc00\\ud800"}', "s", "lone surrogate in string"),
        (b'{"\\ud800": 1}', '$["\\ud800"]', "lone surrogate in object key"),
        (b'"\xff"', "$", "invalid UTF-8 at byte 1"),
        (b'"\xed\xa0\x80"', "$", "invalid UTF-8"),  # a surrogate encoded as UTF-8
        (b"\xef\xbb\xbf{}", "$", "byte order mark"),
        (b'{"a": 1,}', "$", "invalid JSON"),
        (b"", "$", "invalid JSON"),
        (b"[1] [2]", "$", "invalid JSON"),
        (b'["\t"]', "$", "invalid JSON"),  # raw control character in a string
        (b"[" * 100_000 + b"]" * 100_000, "$", "nesting deeper"),
    ],
)
def test_parse_rejections(data: bytes, path: str, reason_part: str) -> None:
    err = _parse_error(data)
    assert err.path == path, str(err)
    assert reason_part in err.reason, str(err)
    assert str(err) == f"{err.path}: {err.reason}"


def test_parse_depth_limit_matches_canonicalize() -> None:
    ok = b"[" * MAX_DEPTH + b"]" * MAX_DEPTH
    assert canonicalize(parse_strict_json(ok)) == ok
    deep = b'{"a":' * (MAX_DEPTH + 1) + b"0" + b"}" * (MAX_DEPTH + 1)
    err = _parse_error(deep)
    assert err.reason == f"nesting deeper than {MAX_DEPTH} levels"
    assert err.path == "a" + ".a" * (MAX_DEPTH - 1)


# --------------------------------------------------------------------------------------
# Properties
# --------------------------------------------------------------------------------------

_KEY_CHARS = st.one_of(
    st.characters(codec="utf-8"),  # every scalar value, no surrogates
    st.sampled_from('a\x00\x1f"\\\ud7ff\ue000\uffff\ufb33\U00010000\U0001f600\U0010ffff'),
)
_keys = st.text(_KEY_CHARS, max_size=5)
_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-MAX_SAFE_INTEGER, MAX_SAFE_INTEGER),
    st.text(_KEY_CHARS),
)
_values = st.recursive(
    _scalars,
    lambda children: st.one_of(st.lists(children), st.dictionaries(_keys, children)),
    max_leaves=40,
)


def _reordered(value: object, data: st.DataObject) -> object:
    if isinstance(value, dict):
        keys = data.draw(st.permutations(list(value)))
        return {k: _reordered(value[k], data) for k in keys}
    if isinstance(value, list):
        return [_reordered(v, data) for v in value]
    return value


def _check_key_order(text: bytes) -> None:
    def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        keys = [k for k, _ in pairs]
        assert keys == sorted(keys, key=_utf16_units)
        return dict(pairs)

    json.loads(text, object_pairs_hook=hook)


@given(_values)
def test_round_trip(value: object) -> None:
    text = canonicalize(value)
    assert json.loads(text) == value
    assert parse_strict_json(text) == value
    assert canonicalize(json.loads(text)) == text  # idempotent
    _check_key_order(text)


@given(_values, st.data())
def test_invariant_under_key_insertion_order(value: object, data: st.DataObject) -> None:
    assert canonicalize(_reordered(value, data)) == canonicalize(value)


@given(st.text(_KEY_CHARS))
def test_strings_match_reference_escaper(text: str) -> None:
    assert canonicalize(text) == _ref_quote(text).encode("utf-8")


@given(
    st.dictionaries(
        st.text(st.sampled_from("a\ud7ff\ue000\uffff\U00010000\U0001f600\U0010ffff"), max_size=3),
        st.integers(0, 9),
        min_size=2,
    )
)
def test_key_order_is_utf16_code_units(value: dict[str, int]) -> None:
    # A small alphabet straddling the surrogate range makes the cases where UTF-16 and
    # code-point order disagree frequent rather than rare.
    _check_key_order(canonicalize(value))


# --------------------------------------------------------------------------------------
# parse_strict_json skips its path-naming walk when nothing can be wrong; it must still
# answer exactly as the walk would, value or error.
# --------------------------------------------------------------------------------------


def _parse_reference(data: bytes) -> object:
    """parse_strict_json as first written: json.loads with the hooks, then always the walk."""
    text = data.decode("utf-8")
    value = json.loads(
        text,
        object_pairs_hook=canonical._object_pairs,
        parse_float=canonical._reject_float,
        parse_int=canonical._parse_int,
        parse_constant=canonical._reject_constant,
    )
    try:
        canonical._check_parsed(value, 0)
    except canonical._PathError as fail:
        raise fail.error() from None
    return value


_PIECES = st.sampled_from(
    [
        '"a"',
        '"\\ud800"',
        '"\\uD83D\\uDE00"',
        '"\\\\ud800"',
        "1.5",
        "1e3",
        "NaN",
        "-0",
        "7",
        str(MAX_SAFE_INTEGER + 1),
        "[]",
        "{}",
        '{"k":1,"k":2}',
        '"\u00e9"',
        "true",
        "null",
    ]
)


@st.composite
def _nested_texts(draw: st.DrawFn) -> str:
    """JSON texts around the depth limit, with the odd refused literal somewhere."""
    text = draw(_PIECES)
    for _ in range(draw(st.integers(0, MAX_DEPTH + 2))):
        other = draw(_PIECES)
        text = draw(
            st.sampled_from(
                [f"[{text}]", f"[{other},{text}]", f'{{"x":{text}}}', f'{{"y":{other},"x":{text}}}']
            )
        )
    return text


@given(_nested_texts())
def test_parse_fast_path_answers_as_the_walk(text: str) -> None:
    data = text.encode()
    try:
        want: object = _parse_reference(data)
    except CanonicalError as e:
        with pytest.raises(CanonicalError) as got:
            parse_strict_json(data)
        assert str(got.value) == str(e)
    else:
        assert parse_strict_json(data) == want


# --------------------------------------------------------------------------------------
# Exact messages and limits at their boundary (the mutation pass, docs/testing.md)
# --------------------------------------------------------------------------------------

_OUTSIDE = "is outside ±(2**53 − 1) (I-JSON, RFC 7493 §2.2)"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b'{"a": 1, "b": 2, "a": 3}', "a: duplicate object key"),
        (b'{"b": 1, "a": 2, "c": 3, "a": 4}', "a: duplicate object key"),
        (b"[1.5]", "$[0]: floats are not allowed; amounts are integers in fen (got 1.5)"),
        (
            b"[1." + b"2" * 60 + b"]",
            "$[0]: floats are not allowed; amounts are integers in fen (got 1." + "2" * 38 + ")",
        ),
        (b'{"n": NaN}', "n: NaN is not allowed; amounts are integers in fen"),
        (b"[9007199254740991, -9007199254740991]", None),
        (b"[10000000000000000]", f"$[0]: integer 10000000000000000 {_OUTSIDE}"),
        (b"[-9007199254740992]", f"$[0]: integer -9007199254740992 {_OUTSIDE}"),
        (b"[100000000000000000]", f"$[0]: integer literal of 18 digits {_OUTSIDE}"),
        (b"[-10000000000000000]", f"$[0]: integer literal of 17 digits {_OUTSIDE}"),
        (b"[1000000000000000000]", f"$[0]: integer literal of 19 digits {_OUTSIDE}"),
        (b'["\\ud800"]', "$[0]: lone surrogate in string (I-JSON, RFC 7493 §2.1)"),
        (b'{"\\udfff": 1}', '$["\\udfff"]: lone surrogate in object key (I-JSON, RFC 7493 §2.1)'),
        (b'{"\\uDFFF": 1}', '$["\\udfff"]: lone surrogate in object key (I-JSON, RFC 7493 §2.1)'),
        (b'["\\uD800"]', "$[0]: lone surrogate in string (I-JSON, RFC 7493 §2.1)"),
        (b'["\\uD83D\\uDE00", "\\ud83d\\ude00"]', None),
        (b"\xef\xbb\xbf[]", "$: a byte order mark is not allowed"),
        (b'["a", "\xff"]', "$: invalid UTF-8 at byte 7"),
        (b"[1,]", "$: invalid JSON: Expecting value at character 3"),
    ],
)
def test_parse_messages_are_exact(data: bytes, message: str | None) -> None:
    if message is None:
        parse_strict_json(data)
        return
    assert str(_parse_error(data)) == message


def _deep(depth: int, kind: str, inner: str = "0") -> bytes:
    """``depth`` containers around ``inner``: arrays, objects, or both in turn, each with a
    sibling before the deep member (a shallow container in the outer half)."""
    text = inner
    for level in range(depth):
        shallow = level >= depth // 2
        if kind == "array" or (kind == "mixed" and level % 2):
            text = f"[{'[1]' if shallow else '1'},{text}]"
        else:
            text = f'{{"a":{"{}" if shallow else "1"},"z":{text}}}'
    return text.encode()


@pytest.mark.parametrize("kind", ["array", "object", "mixed"])
def test_parse_depth_boundary_for_every_kind_of_container(kind: str) -> None:
    ok = parse_strict_json(_deep(MAX_DEPTH, kind))
    assert canonicalize(ok) == _deep(MAX_DEPTH, kind)
    err = _parse_error(_deep(MAX_DEPTH + 1, kind))
    assert err.reason == f"nesting deeper than {MAX_DEPTH} levels"
    assert err.path.count("[1]") + err.path.count("z") == MAX_DEPTH
    # The same depth reached through the first member, or under a string that has escapes.
    first = b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1)
    assert (
        str(_parse_error(first))
        == "$" + "[0]" * MAX_DEPTH + f": nesting deeper than {MAX_DEPTH} levels"
    )
    assert _parse_error(b'["\\u00e9",' + first + b"]").path == "$[1]" + "[0]" * (MAX_DEPTH - 1)
    assert parse_strict_json(b'["\\u00e9",' + b"[" * (MAX_DEPTH - 1) + b"]" * MAX_DEPTH) == [
        "\u00e9",
        canonical.parse_strict_json(b"[" * (MAX_DEPTH - 1) + b"]" * (MAX_DEPTH - 1)),
    ]


def test_canonicalize_messages_are_exact() -> None:
    assert str(_error({"x": (1,)})) == (
        "x: unsupported type tuple; only dict, list, str, int, bool and None are allowed"
    )
    assert str(_error(["a\ud800"])) == (
        "$[0]: lone surrogate in string; it cannot be encoded as UTF-8"
    )
    assert str(_error({"o": {"\ud800": 1}})) == (
        'o["\\ud800"]: lone surrogate in object key; it cannot be encoded as UTF-8'
    )
    assert str(_error({"o": {"k": ["ok", {"\udc00": 1}]}})) == (
        'o.k[1]["\\udc00"]: lone surrogate in object key; it cannot be encoded as UTF-8'
    )
    assert str(_error([0, 1.5])) == "$[1]: floats are not allowed; amounts are integers in fen"
    # Integers up to 128 bits are shown in full, longer ones by their size.
    assert str(_error([2**127])) == f"$[0]: integer {2**127} {_OUTSIDE}"
    assert str(_error([-(2**127)])) == f"$[0]: integer {-(2**127)} {_OUTSIDE}"
    assert str(_error([2**128])) == f"$[0]: integer a 129-bit integer {_OUTSIDE}"


def test_path_keys_are_shown_whole_up_to_forty_characters() -> None:
    assert _error({"a b" + "c" * 37: 1.5}).path == '$["a b' + "c" * 37 + '"]'
    assert _error({"a b" + "c" * 38: 1.5}).path == '$["a b' + "c" * 37 + '\\u2026"]'
    assert _error({"k" * 41: 1.5}).path == '$["' + "k" * 40 + '\\u2026"]'


def test_depth_limit_through_objects_and_mapping_subclasses() -> None:
    """The limit counts objects as it counts arrays, from a top-level object too, and
    through dict subclasses nested anywhere (encoded as their base value)."""

    def objects(depth: int, kind: type[dict[str, Any]] = dict) -> object:
        value: object = 0
        for _ in range(depth):
            value = kind(a=value)
        return value

    for kind in (dict, OrderedDict):
        ok = canonicalize(objects(MAX_DEPTH, kind))
        assert ok == b'{"a":' * MAX_DEPTH + b"0" + b"}" * MAX_DEPTH
        err = _error(objects(MAX_DEPTH + 1, kind))
        assert (
            str(err) == "a" + ".a" * (MAX_DEPTH - 1) + f": nesting deeper than {MAX_DEPTH} levels"
        )
    nested = {"z": [OrderedDict([("b", 1), ("a", OrderedDict(c=[2]))])], "y": OrderedDict()}
    assert canonicalize(nested) == b'{"y":{},"z":[{"a":{"c":[2]},"b":1}]}'
