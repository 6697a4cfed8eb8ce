"""API errors: one JSON shape for every refusal, ``{"error": {...}}``.

The shape and its handlers are shared with the witness service (:mod:`ledger.http`);
here is what the API's OpenAPI document says about it.
"""

from __future__ import annotations

from typing import Any

from ledger.http import ApiError, error_response, install_error_handlers
from verifier.errors import JianzhengError

__all__ = [
    "ERROR_RESPONSES",
    "ERROR_SCHEMA",
    "ApiError",
    "ApiLayerError",
    "error_response",
    "install_error_handlers",
]


class ApiLayerError(JianzhengError):
    """An error of the api package (authentication, authorization, ranges), answered by
    its route as an :class:`ApiError` (see :mod:`verifier.errors`)."""


ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["status", "code", "message"],
            "properties": {
                "status": {"type": "integer"},
                "code": {"type": "string"},
                "message": {"type": "string"},
                "message_zh": {"type": "string", "description": "the message in Chinese"},
                "field": {"type": "string"},
                "expected": {
                    "type": "string",
                    "description": "what the event catalogue expects in the field",
                },
                "expected_zh": {"type": "string"},
                "catalogue_version": {
                    "type": "integer",
                    "description": "the event catalogue version the event was checked by",
                },
                "rule": {
                    "type": "object",
                    "description": "out_of_order: the process-order rule, and the earlier "
                    "record it conflicts with (conflicts_with: type, seq, index)",
                },
            },
        }
    },
}
_ERROR_CONTENT = {"application/json": {"schema": ERROR_SCHEMA}}
#: Every refusal any route may answer, documented once for the OpenAPI schema.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"description": text, "content": _ERROR_CONTENT}
    for code, text in (
        (400, "malformed request"),
        (401, "missing, unknown, expired or revoked token"),
        (403, "the token's role or scope does not allow this"),
        (404, "not found (or outside the token's scope)"),
        (408, "request headers or body too slow (the connection is closed)"),
        (409, "conflict (idempotency key reused, existing key, event out of process order)"),
        (413, "request too large"),
        (416, "range not satisfiable"),
        (422, "invalid request, naming the field"),
        (429, "rate limited; see Retry-After"),
        (503, "store unavailable or busy; see Retry-After"),
    )
}
