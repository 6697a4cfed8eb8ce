"""Base64 (RFC 4648 §4, standard alphabet, padded) in the two senses the project uses.

- :func:`encode_b64`: bytes to the text that goes into JSON, notes and receipts;
- :func:`decode_b64`: such text back to bytes, strictly (no characters outside the
  alphabet, padding required), raising the caller's typed error naming the field.
"""

from __future__ import annotations

import base64
import binascii


def encode_b64(data: bytes) -> str:
    """``data`` as standard padded base64 text."""
    return binascii.b2a_base64(data, newline=False).decode()


def decode_b64(value: object, what: str, error: type[Exception]) -> bytes:
    """The bytes of base64 text ``value``; ``error`` naming ``what`` if it is none."""
    if not isinstance(value, str):
        raise error(f"{what} must be a base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except ValueError:  # binascii.Error, or non-ASCII text
        raise error(f"{what} is not valid base64") from None
