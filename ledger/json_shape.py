"""Shape checks for the catalogue's JSON data (the event catalogue and its process order).

Each check raises the caller's own error class, so a malformed section is reported by
the loader that owns it, with the path of the offending value.
"""

from __future__ import annotations

from collections.abc import Mapping


def expect_object(raw: object, where: str, error: type[Exception]) -> dict[str, object]:
    """``raw`` as a JSON object whose keys are strings (Python callers may pass others)."""
    if not isinstance(raw, dict):
        raise error(f"{where}: expected a JSON object, got {type(raw).__name__}")
    for key in raw:
        if not isinstance(key, str):
            raise error(f"{where}: key {key!r} is not a string")
    return raw


def expect_keys(
    obj: Mapping[str, object],
    expected: frozenset[str],
    where: str,
    error: type[Exception],
    optional: frozenset[str] = frozenset(),
) -> None:
    """Every expected key present and no other, so a misspelt key cannot be ignored."""
    missing = sorted(expected - obj.keys())
    if missing:
        raise error(f"{where}: missing key(s) {', '.join(missing)}")
    extra = sorted(obj.keys() - expected - optional)
    if extra:
        raise error(f"{where}: unknown key(s) {', '.join(extra)}")


def expect_text(raw: object, where: str, error: type[Exception]) -> str:
    """A string with something besides white space in it."""
    if not isinstance(raw, str) or not raw.strip():
        raise error(f"{where}: expected a non-empty string")
    return raw
