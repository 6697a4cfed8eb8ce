"""API errors: one JSON shape for every refusal, ``{"error": {...}}``.

The shape and its handlers are shared with the witness service (:mod:`ledger.http`);
here is what the API's OpenAPI document says about it, and (:data:`REFUSALS`) the one
place where the domain's refusals (raised in ``ledger/`` and ``storage/``, which know
nothing of HTTP) become statuses, codes and fields.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from ledger import http
from ledger.access import (
    AccessNotRecorded,
    NotRecorded,
    NotVisible,
    PostOutsideScope,
    PostTradeTypeMismatch,
)
from ledger.http import ApiError, error_response
from ledger.posters import (
    BadPosterSignature,
    NoPosterKey,
    PosterKeyExists,
    SignatureRequired,
)
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


def _field_refusal(status: int, code: str) -> Callable[[Any], ApiError]:
    """A refusal naming its field: ``"<field>: <reason>"``."""

    def answer(e: Any) -> ApiError:
        return ApiError(status, code, f"{e.field}: {e.reason}", e.field)

    return answer


#: Each domain refusal and its HTTP answer (status, code, message, field). Looked up by
#: the exception's class, its bases in order (as Starlette finds handlers).
REFUSALS: dict[type[JianzhengError], Callable[[Any], ApiError]] = {
    PosterKeyExists: lambda e: ApiError(409, "key_exists", e.reason),
    SignatureRequired: _field_refusal(422, "signature_required"),
    NoPosterKey: _field_refusal(422, "invalid_event"),
    BadPosterSignature: _field_refusal(422, "invalid_signature"),
    NotVisible: lambda e: ApiError(404, "not_found", e.what),
    PostOutsideScope: lambda e: ApiError(403, "forbidden", e.message, e.field),
    PostTradeTypeMismatch: lambda e: ApiError(
        422,
        "invalid_event",
        f"{e.field}: {e.reason}",
        e.field,
        message_zh=f"{e.field}：{e.reason_zh}",
    ),
    NotRecorded: lambda e: ApiError(503, "not_recorded", str(e), headers={"Retry-After": "1"}),
    AccessNotRecorded: lambda e: ApiError(
        503, "access_not_recorded", str(e), headers={"Retry-After": "1"}
    ),
}


def as_api_error(e: JianzhengError) -> ApiError:
    """The HTTP answer to the domain refusal ``e`` (:data:`REFUSALS`)."""
    for cls in type(e).__mro__:
        answer = REFUSALS.get(cls)
        if answer is not None:
            return answer(e)
    raise TypeError(f"no HTTP answer for {type(e).__name__}") from e


def install_error_handlers(app: FastAPI) -> None:
    """The shared handlers (:func:`ledger.http.install_error_handlers`), and one for each
    domain refusal of :data:`REFUSALS`."""
    http.install_error_handlers(app)

    async def _refused(_: Request, e: Exception) -> JSONResponse:
        assert isinstance(e, JianzhengError)
        return error_response(as_api_error(e))

    for cls in REFUSALS:
        app.add_exception_handler(cls, _refused)
