"""RFC 8785 JSON Canonicalization Scheme (JCS), restricted to integer-only I-JSON.

This is the one canonical JSON encoding of the project: every hash and signature over a
record is computed over ``canonicalize(record)``. Standard library only, because the
verifier package must run with nothing but ``cryptography`` and ``asn1crypto``.

Project restrictions on top of RFC 8785:

* numbers must be integers within ±(2**53 − 1) (RFC 7493 §2.2). Amounts are integers in
  fen; floats, NaN and Infinity are rejected rather than run through the ECMAScript
  number serialization of RFC 8785 §3.2.2.3, which we therefore never need;
* nesting is limited to :data:`MAX_DEPTH` containers, so anything ``canonicalize``
  accepts, :func:`parse_strict_json` accepts too, and vice versa.

Every rejection is a :class:`CanonicalError` whose message starts with the JSON path of
the offending value (``payload.amounts[2]: ...``), meant to be shown to users verbatim.
"""

from __future__ import annotations

import hashlib
import json
import json.encoder
import re
import threading
from collections.abc import Callable, Iterable
from typing import Any, Final

__all__ = [
    "MAX_DEPTH",
    "MAX_SAFE_INTEGER",
    "Canonical",
    "CanonicalError",
    "MalformedJSON",
    "canonical_sha256",
    "canonical_string",
    "canonicalize",
    "parse_strict_json",
]

#: I-JSON (RFC 7493 §2.2): integers outside this range are not exact as IEEE-754 doubles,
#: and JCS numbers are doubles (RFC 8785 §3.2.2.3), so two parties could disagree on them.
from verifier.errors import VerifierError

MAX_SAFE_INTEGER: Final = 2**53 - 1

#: Most containers (objects and arrays) allowed on any path from the root. Bounds the
#: recursion of the encoder and the walk, and turns reference cycles into a clean error.
MAX_DEPTH: Final = 64

_FLOAT_REASON: Final = "floats are not allowed; amounts are integers in fen"

# RFC 8785 §3.2.2.2 requires exactly ECMAScript JSON.stringify's string escaping: the
# short escapes \" \\ \b \t \n \f \r, \u00xx in lowercase hex for the other controls
# below U+0020, and every other character literally (no escaping of '/', U+007F, U+2028
# or non-ASCII). The stdlib's ensure_ascii=False string encoder (C-accelerated when
# available) does exactly that for every scalar value; tests/test_canonical.py checks it
# for all of U+0000..U+10FFFF. It passes lone surrogates through unchanged, and those are
# caught by the final strict UTF-8 encode.
_quote: Final[Callable[[str], str]] = json.encoder.encode_basestring
#: The canonical JSON text of a string, as :func:`canonicalize` writes it (a lone surrogate
#: passes here; only the final UTF-8 encode refuses it). For callers that assemble a
#: canonical object of fixed members piece by piece.
canonical_string: Final[Callable[[str], str]] = _quote

_IDENTIFIER: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SURROGATE: Final = re.compile("[\ud800-\udfff]")
_PATH_KEY_MAX: Final = 40


class CanonicalError(ValueError, VerifierError):
    """A value or JSON text that has no canonical form in this project.

    ``str(err)`` is ``"<path>: <reason>"``; both parts are also attributes.
    """

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class MalformedJSON(CanonicalError):
    """Text that no JSON parser accepts: invalid UTF-8 or a syntax error (RFC 8259).

    Every other :class:`CanonicalError` of :func:`parse_strict_json` is about well-formed
    JSON that this project refuses (floats, duplicate keys, deep nesting, ...), so callers
    can tell "not JSON" from "JSON we do not accept" without parsing a second time.
    """


class _PathError(Exception):
    """Internal: raised deep in a walk; each frame adds its path segment on the way out.

    Building the path only on failure keeps the success path free of bookkeeping.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.segments: list[str | int] = []  # innermost first

    def error(self) -> CanonicalError:
        return CanonicalError(_format_path(self.segments[::-1]), self.reason)


def _format_path(segments: list[str | int]) -> str:
    """Render root-first segments as ``$``, ``$[3]``, ``payload.amounts[2]`` or ``a["b c"]``."""
    parts = ["$"]
    for seg in segments:
        if isinstance(seg, int):
            parts.append(f"[{seg}]")
        elif len(seg) <= _PATH_KEY_MAX and _IDENTIFIER.fullmatch(seg):
            parts.append("." + seg)
        else:
            # ASCII-escaped so that control characters or lone surrogates in a key cannot
            # break the message; shortened so that a hostile key cannot bloat it.
            shown = seg if len(seg) <= _PATH_KEY_MAX else seg[:_PATH_KEY_MAX] + "…"
            parts.append("[" + json.dumps(shown) + "]")
    text = "".join(parts)
    return text[2:] if text.startswith("$.") else text


def _int_reason(value: int) -> str:
    # Never str() an arbitrary int: Python refuses beyond 4300 digits, and a user-facing
    # message has no use for a long one anyway.
    shown = str(value) if value.bit_length() <= 128 else f"a {value.bit_length()}-bit integer"
    return f"integer {shown} is outside ±(2**53 − 1) (I-JSON, RFC 7493 §2.2)"


def _type_reason(value: object) -> str:
    if isinstance(value, float):
        return _FLOAT_REASON
    return (
        f"unsupported type {type(value).__name__}; "
        "only dict, list, str, int, bool and None are allowed"
    )


def _utf16_key(key: str) -> bytes:
    # Big-endian UTF-16 bytes compare exactly like the sequence of UTF-16 code units,
    # which is the property order of RFC 8785 §3.2.3. 'surrogatepass' so that a lone
    # surrogate sorts somewhere instead of raising here; the final UTF-8 encode rejects it.
    return key.encode("utf-16-be", "surrogatepass")


def _sorted_keys(obj: dict[Any, Any]) -> list[str]:
    """Keys of ``obj`` in RFC 8785 §3.2.3 order, or :class:`_PathError` for a non-str key."""
    try:
        # join raises TypeError for a non-str key, so one C-level pass both validates
        # the keys and picks the sort.
        ascii_only = "".join(obj).isascii()
    except TypeError:
        bad = next(k for k in obj if not isinstance(k, str))
        shown = repr(bad)[:_PATH_KEY_MAX]
        reason = f"object key {shown} is {type(bad).__name__}; keys must be strings"
        raise _PathError(reason) from None
    if ascii_only:
        # For ASCII (indeed for all BMP text) code-point order equals code-unit order.
        return sorted(obj)
    # Only characters above U+FFFF need the UTF-16 view: their leading surrogate
    # (D800–DBFF) sorts before U+E000–U+FFFF, whereas their code point sorts after.
    return sorted(obj, key=_utf16_key)


class Canonical(str):
    """JSON text that is already in canonical form, emitted verbatim by :func:`canonicalize`.

    Lets a caller encode a large member once (the event payload, when it is validated)
    and embed it in the record without encoding it again. Only wrap the output of
    :func:`canonicalize` (decoded as UTF-8): nothing re-checks it.
    """

    __slots__ = ()


def _encode(value: object, out: list[str], depth: int) -> None:
    """Append the JCS serialization of ``value`` to ``out``; ``depth`` counts containers."""
    if type(value) is Canonical:
        out.append(value)
        return
    # bool is a subclass of int, so the literals are matched first by identity.
    if value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif value is None:
        out.append("null")
    # isinstance admits subclasses (StrEnum, IntEnum, OrderedDict, ...): they carry plain
    # JSON data, and only the base type's behaviour is used, never an overridden
    # __str__ or __repr__.
    elif isinstance(value, str):
        out.append(_quote(value))
    elif isinstance(value, int):
        if not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
            raise _PathError(_int_reason(value))
        out.append(int.__repr__(value))
    elif isinstance(value, dict):
        _encode_object(value, out, depth + 1)
    elif isinstance(value, list):
        _encode_array(value, out, depth + 1)
    else:
        raise _PathError(_type_reason(value))


def _encode_object(obj: dict[Any, Any], out: list[str], depth: int) -> None:
    if depth > MAX_DEPTH:
        raise _PathError(f"nesting deeper than {MAX_DEPTH} levels")
    if not obj:
        out.append("{}")
        return
    append = out.append
    sep = "{"
    for key in _sorted_keys(obj):
        value = obj[key]
        t = type(value)
        # Exact-type scalars are inlined, one piece per member: Python-level calls and
        # list appends are most of the cost of this function.
        if t is str:
            append(f"{sep}{_quote(key)}:{_quote(value)}")
        elif t is int and -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
            append(f"{sep}{_quote(key)}:{value:d}")
        else:
            append(f"{sep}{_quote(key)}:")
            _encode_at(key, t, value, out, depth)
        sep = ","
    append("}")


def _encode_array(arr: list[Any], out: list[str], depth: int) -> None:
    if depth > MAX_DEPTH:
        raise _PathError(f"nesting deeper than {MAX_DEPTH} levels")
    if not arr:
        out.append("[]")
        return
    append = out.append
    sep = "["
    for index, value in enumerate(arr):
        t = type(value)
        if t is str:
            append(sep + _quote(value))
        elif t is int and -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
            append(f"{sep}{value:d}")
        else:
            append(sep)
            _encode_at(index, t, value, out, depth)
        sep = ","
    append("]")


def _encode_at(segment: str | int, t: type, value: Any, out: list[str], depth: int) -> None:
    """Encode a member or element that is not an inlined scalar (``t`` is its exact type);
    a failure inside it names ``segment`` (its key or index) in the path."""
    try:
        if t is dict:
            _encode_object(value, out, depth + 1)
        elif t is list:
            _encode_array(value, out, depth + 1)
        else:
            _encode(value, out, depth)
    except _PathError as fail:
        fail.segments.append(segment)
        raise


def _find_surrogate(value: object) -> None:
    """Slow path: raise :class:`_PathError` at the first string or key holding a lone surrogate.

    Only run after the UTF-8 encode of a whole serialization failed, so that the common
    case pays nothing for locating the culprit. ``value`` has already been validated.
    """
    if isinstance(value, str):
        if _SURROGATE.search(value):
            raise _PathError("lone surrogate in string; it cannot be encoded as UTF-8")
    elif isinstance(value, dict):
        for key in _sorted_keys(value):
            if _SURROGATE.search(key):
                fail = _PathError("lone surrogate in object key; it cannot be encoded as UTF-8")
                fail.segments.append(key)
                raise fail
            try:
                _find_surrogate(value[key])
            except _PathError as fail:
                fail.segments.append(key)
                raise
    elif isinstance(value, list):
        for index, item in enumerate(value):
            try:
                _find_surrogate(item)
            except _PathError as fail:
                fail.segments.append(index)
                raise


def canonicalize(value: object) -> bytes:
    """Return the RFC 8785 canonical UTF-8 serialization of ``value``.

    ``value`` is built from dict (str keys), list, str, int, bool and None only.
    Objects have their members sorted by UTF-16 code units (§3.2.3), strings are escaped
    as ECMAScript does (§3.2.2.2), integers are written in plain decimal, which is what
    §3.2.2.3 yields for integral doubles within ±(2**53 − 1), and there is no whitespace
    (§3.2.1). Raises :class:`CanonicalError` naming the path of anything else.
    """
    out: list[str] = []
    try:
        _encode(value, out, 0)
    except _PathError as fail:
        raise fail.error() from None
    text = "".join(out)
    try:
        # Strict UTF-8 (RFC 8785 §3.2.4) refuses lone surrogates, which RFC 7493 §2.1
        # forbids anyway; checking once here is cheaper than checking every string.
        return text.encode("utf-8")
    except UnicodeEncodeError:
        try:
            _find_surrogate(value)
        except _PathError as fail:
            raise fail.error() from None
        raise  # unreachable: the walk finds what the encoder tripped on


def canonical_sha256(value: object) -> bytes:
    """SHA-256 digest (32 bytes) of :func:`canonicalize` of ``value``."""
    return hashlib.sha256(canonicalize(value)).digest()


# --- strict parsing -------------------------------------------------------------------


class _Rejected:
    """Stands in for a value the json hooks refused, until the walk can name its path.

    The hooks see a literal but not where it is; the walk after parsing knows where.
    """

    __slots__ = ("key", "reason")

    def __init__(self, reason: str, key: str | None = None) -> None:
        self.reason = reason
        self.key = key  # for a duplicate key: the key, appended to the object's path
        _parsing.rejected = True


#: Per thread: whether the parse under way made a :class:`_Rejected`.
_parsing = threading.local()


def _reject_float(literal: str) -> _Rejected:
    return _Rejected(f"{_FLOAT_REASON} (got {literal[:40]})")


def _reject_constant(literal: str) -> _Rejected:
    return _Rejected(f"{literal} is not allowed; amounts are integers in fen")


def _parse_int(literal: str) -> int | _Rejected:
    # Length check before int(): 2**53 − 1 has 16 digits, and converting a long literal
    # is quadratic (and refused by Python past 4300 digits).
    if len(literal) > 17:
        return _Rejected(
            f"integer literal of {len(literal.lstrip('-'))} digits is outside ±(2**53 − 1) "
            "(I-JSON, RFC 7493 §2.2)"
        )
    number = int(literal)
    if not -MAX_SAFE_INTEGER <= number <= MAX_SAFE_INTEGER:
        return _Rejected(_int_reason(number))
    return number


def _object_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any] | _Rejected:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        # RFC 8785 §3.1 / RFC 7493 §2.3: member names must be unique.
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                return _Rejected("duplicate object key", key=key)
            seen.add(key)
    return obj


def _check_parsed(value: object, depth: int) -> None:
    """Raise :class:`_PathError` at the first rejected literal, lone surrogate or too-deep level."""
    if isinstance(value, str):
        if not value.isascii() and _SURROGATE.search(value):
            raise _PathError("lone surrogate in string (I-JSON, RFC 7493 §2.1)")
    elif isinstance(value, dict):
        if depth >= MAX_DEPTH:
            raise _PathError(f"nesting deeper than {MAX_DEPTH} levels")
        for key, item in value.items():
            try:
                if not key.isascii() and _SURROGATE.search(key):
                    raise _PathError("lone surrogate in object key (I-JSON, RFC 7493 §2.1)")
                _check_parsed(item, depth + 1)
            except _PathError as fail:
                fail.segments.append(key)
                raise
    elif isinstance(value, list):
        if depth >= MAX_DEPTH:
            raise _PathError(f"nesting deeper than {MAX_DEPTH} levels")
        for index, item in enumerate(value):
            try:
                _check_parsed(item, depth + 1)
            except _PathError as fail:
                fail.segments.append(index)
                raise
    elif isinstance(value, _Rejected):
        rejected = _PathError(value.reason)
        if value.key is not None:
            rejected.segments.append(value.key)
        raise rejected


#: Shared by all threads, as json.loads shares its own default decoder; json.loads with
#: hooks would build a decoder (and its scanner) on every call.
_DECODER: Final = json.JSONDecoder(
    object_pairs_hook=_object_pairs,
    parse_float=_reject_float,
    parse_int=_parse_int,
    parse_constant=_reject_constant,
)


def parse_strict_json(data: bytes) -> object:
    """Parse UTF-8 JSON text into a value that :func:`canonicalize` accepts.

    Rejects, with a :class:`CanonicalError` naming the path: invalid UTF-8 or a byte order
    mark (RFC 8785 §3.2.4, RFC 8259 §8.1), duplicate member names (RFC 8785 §3.1), any
    number that is not a plain integer literal (fractions, exponents, NaN, Infinity),
    integers outside ±(2**53 − 1) and lone surrogates (RFC 7493 §2.1, §2.2), and nesting
    deeper than :data:`MAX_DEPTH`, however deep (no RecursionError escapes). Invalid UTF-8
    and syntax errors are a :class:`MalformedJSON`, reported at ``$`` with their offset.
    """
    try:
        text = bytes(data).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedJSON("$", f"invalid UTF-8 at byte {exc.start}") from None
    if text.startswith("\ufeff"):
        # RFC 8259 §8.1: a byte order mark MUST NOT be added; json's own message for it
        # suggests utf-8-sig, which is wrong advice for our users.
        raise CanonicalError("$", "a byte order mark is not allowed")
    _parsing.rejected = False
    try:
        value: object = _DECODER.decode(text)
    except json.JSONDecodeError as exc:
        raise MalformedJSON("$", f"invalid JSON: {exc.msg} at character {exc.pos}") from None
    except RecursionError:
        # The C scanner recurses per level; far beyond MAX_DEPTH anyway.
        raise CanonicalError("$", f"nesting deeper than {MAX_DEPTH} levels") from None
    # The walk that names what is wrong is needed only when something may be: a hook
    # refused a literal, the text has an escape that can make a lone surrogate (UTF-8
    # text has none of its own), or there are enough brackets to nest too deep.
    if (
        _parsing.rejected
        or "\\ud" in text
        or "\\uD" in text
        or (text.count("{") + text.count("[") > MAX_DEPTH and _too_deep(value, 0))
    ):
        try:
            _check_parsed(value, 0)
        except _PathError as fail:
            raise fail.error() from None
    return value


def _too_deep(value: object, depth: int) -> bool:
    """Whether a container sits at depth MAX_DEPTH or below, as :func:`_check_parsed` sees it."""
    items: Iterable[object]
    if type(value) is dict:
        items = value.values()
    elif type(value) is list:
        items = value
    else:
        return False
    if depth >= MAX_DEPTH:
        return True
    for item in items:
        t = type(item)
        if (t is dict or t is list) and _too_deep(item, depth + 1):
            return True
    return False
