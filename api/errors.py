"""API errors: one JSON shape for every refusal, ``{"error": {...}}``.

The shape and its handlers are shared with the witness service (:mod:`ledger.http`);
here is what the API's OpenAPI document says about it, and (:data:`REFUSALS`) the one
place where the domain's refusals (raised in ``ledger/`` and ``storage/``, which know
nothing of HTTP) become statuses, codes and fields.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from ledger import http, metrics
from ledger.access import (
    AccessNotRecorded,
    NotRecorded,
    NotVisible,
    PostOutsideScope,
    PostTradeTypeMismatch,
    StillSealed,
)
from ledger.appending import EventRejected, UnitRefused
from ledger.http import ApiError, error_response
from ledger.indicators import IndicatorsUnavailable, TooManyRecords
from ledger.posters import (
    BadPosterSignature,
    NoPosterKey,
    PosterKeyExists,
    SignatureRequired,
)
from ledger.sequencer import (
    IdempotencyConflict,
    LogBehind,
    OutOfOrder,
    PosterKeyChanged,
    SequencerBusy,
    TradeTypeMismatch,
    UnresolvedReference,
)
from storage.attachments import AttachmentRefused
from storage.base import ObjectLocked, ObjectNotFound, StorageUnavailable
from storage.service import StorageCorrupt
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


def invalid_event(e: EventRejected) -> ApiError:
    """The 422 of a refused event: the field, what was expected, the catalogue version,
    and the message in English and Chinese (issue 11, "Bad input")."""
    err, prefix = e.error, e.prefix
    field = prefix + err.field if err.field != "$" else (prefix.rstrip(".") or "$")
    zh = err.message_zh or f"事件无效：{err.message}"
    extra: dict[str, Any] = {"catalogue_version": e.catalogue_version}
    if err.expected is not None:
        extra["expected"] = err.expected
    if err.expected_zh is not None:
        extra["expected_zh"] = err.expected_zh
    return ApiError(
        422,
        "invalid_event",
        f"{field}: {err.message}",
        field,
        message_zh=f"{field}：{zh}",
        extra=extra,
    )


log = logging.getLogger("jianzheng.api")


def storage_unavailable(e: StorageUnavailable) -> ApiError:
    log.error("storage unavailable: %s", e)
    metrics.OBJECT_STORE_ERRORS.inc()
    return ApiError(
        503,
        "storage_unavailable",
        f"the object store is unavailable: {e}",
        headers={"Retry-After": "5"},
    )


def storage_corrupt(e: StorageCorrupt) -> ApiError:
    log.error("storage corrupt: %s", e)
    return ApiError(500, "storage_corrupt", str(e))


def unit_refused(e: UnitRefused) -> ApiError:
    """The answer to a unit the sequencer refused or did not confirm in time."""
    cause, field = e.cause, e.field
    if isinstance(cause, SequencerBusy):
        return ApiError(503, "busy", str(cause), headers={"Retry-After": "1"})
    if isinstance(cause, LogBehind):
        return ApiError(503, "behind", str(cause), headers={"Retry-After": "30"})
    if isinstance(cause, IdempotencyConflict):
        return ApiError(409, "idempotency_conflict", str(cause), field)
    if isinstance(cause, PosterKeyChanged):
        return ApiError(409, "poster_key_changed", str(cause), field)
    if isinstance(cause, TradeTypeMismatch):
        return ApiError(
            422,
            "invalid_event",
            f"{field}: {cause.reason}",
            field,
            message_zh=f"{field}：{cause.reason_zh}",
        )
    if isinstance(cause, OutOfOrder):
        v = cause.violation
        return ApiError(
            409,
            "out_of_order",
            f"{field}: {v.message}",
            field,
            message_zh=f"{field}：{v.message_zh}",
            extra={"rule": v.to_json()},
        )
    if isinstance(cause, UnresolvedReference):
        return ApiError(422, "invalid_reference", f"{field}: {cause.problem.message}", field)
    msg = "the append was not confirmed in time; retry with the same idempotency_key"
    return ApiError(503, "timeout", msg, headers={"Retry-After": "1"})


#: Each domain refusal and its HTTP answer (status, code, message, field). Looked up by
#: the exception's class, its bases in order (as Starlette finds handlers).
REFUSALS: dict[type[JianzhengError], Callable[[Any], ApiError]] = {
    EventRejected: invalid_event,
    UnitRefused: unit_refused,
    AttachmentRefused: _field_refusal(422, "invalid_event"),
    StorageUnavailable: storage_unavailable,
    ObjectNotFound: lambda e: ApiError(404, "not_found", str(e)),
    ObjectLocked: lambda e: ApiError(409, "object_locked", str(e)),
    StorageCorrupt: storage_corrupt,
    PosterKeyExists: lambda e: ApiError(409, "key_exists", e.reason),
    SignatureRequired: _field_refusal(422, "signature_required"),
    NoPosterKey: _field_refusal(422, "invalid_event"),
    BadPosterSignature: _field_refusal(422, "invalid_signature"),
    NotVisible: lambda e: ApiError(404, "not_found", e.what),
    StillSealed: lambda e: ApiError(409, "sealed", str(e)),
    TooManyRecords: lambda e: ApiError(413, "too_large", str(e)),
    IndicatorsUnavailable: lambda e: ApiError(503, "store_inconsistent", str(e)),
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


#: Store failures are answered where a route expects them (``api.routes.objects``
#: ``storage_errors``), with REFUSALS' answer; no app-wide handler, so one escaping
#: elsewhere stays the unexpected error it always was.
ANSWERED_IN_ROUTES = (StorageUnavailable, ObjectNotFound, ObjectLocked, StorageCorrupt)


def as_api_error(e: JianzhengError) -> ApiError:
    """The HTTP answer to the domain refusal ``e`` (:data:`REFUSALS`)."""
    for cls in type(e).__mro__:
        answer = REFUSALS.get(cls)
        if answer is not None:
            return answer(e)
    raise TypeError(f"no HTTP answer for {type(e).__name__}") from e


def install_error_handlers(app: FastAPI) -> None:
    """The shared handlers (:func:`ledger.http.install_error_handlers`), and one for each
    domain refusal of :data:`REFUSALS` (but :data:`ANSWERED_IN_ROUTES`)."""
    http.install_error_handlers(app)

    async def _refused(_: Request, e: Exception) -> JSONResponse:
        assert isinstance(e, JianzhengError)
        return error_response(as_api_error(e))

    for cls in REFUSALS:
        if cls not in ANSWERED_IN_ROUTES:
            app.add_exception_handler(cls, _refused)
