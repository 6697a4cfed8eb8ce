"""HTTP plumbing shared by the services built on the ledger: the API and the witness.

One JSON shape for every refusal, ``{"error": {"status", "code", "message", "field"?}}``
(:class:`ApiError`, :func:`install_error_handlers`), and request bodies read with a size
bound (:func:`read_body`). It lives below ``api/`` and ``witness/`` so that neither
imports the other for it; ``api/errors.py`` adds the OpenAPI description of the shape.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ledger.store import StoreError
from verifier.errors import JianzhengError

log = logging.getLogger("jianzheng.api")


class ApiError(JianzhengError):
    """An error answered as JSON: ``{"error": {"status", "code", "message", "field"?}}``.

    ``message_zh`` is the message in Chinese; ``extra`` adds members such as ``expected``
    and ``catalogue_version`` to a refused event's error.
    """

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        field: str | None = None,
        headers: dict[str, str] | None = None,
        *,
        message_zh: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.headers = headers
        self.message_zh = message_zh
        self.extra = extra


async def read_body(request: Request, limit: int) -> bytes:
    """The whole request body; 413 if it declares or turns out more than ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, "too_large", f"request body is larger than {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise ApiError(413, "too_large", f"request body is larger than {limit} bytes")
    return bytes(body)


class HeadAsGet:
    """ASGI middleware: ``HEAD`` answers wherever ``GET`` does (RFC 9110 §9.3.2).

    The request runs as the ``GET`` it mirrors, through the same authorization, limits and
    handlers, so the status and every header (``Content-Length``, ``Content-Type``,
    ``Cache-Control``, ``ETag``) are the ``GET``'s; only the body is dropped. Mirrors and
    CDNs probe tiles and checkpoints this way. FastAPI routes declare ``GET`` alone, which
    would otherwise answer ``HEAD`` with 405.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def send_headers_only(message: Message) -> None:
            if message["type"] != "http.response.body":
                await send(message)
                return
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            if message.get("more_body", False):
                # A streamed body (an evidence object): stop its producer after the
                # first piece rather than read gigabytes from the store for nothing.
                raise _HeadAnswered

        try:
            await self.app({**scope, "method": "GET"}, receive, send_headers_only)
        except _HeadAnswered:
            pass


class _HeadAnswered(Exception):
    """Raised into a streaming GET once its HEAD answer is complete (see HeadAsGet)."""


def answer_head(app: FastAPI) -> None:
    """Install :class:`HeadAsGet` on ``app`` (outermost, before any other middleware)."""
    app.add_middleware(HeadAsGet)


def error_response(e: ApiError) -> JSONResponse:
    body: dict[str, Any] = {"status": e.status, "code": e.code, "message": e.message}
    if e.message_zh is not None:
        body["message_zh"] = e.message_zh
    if e.field is not None:
        body["field"] = e.field
    if e.extra:
        body.update(e.extra)
    return JSONResponse({"error": body}, status_code=e.status, headers=e.headers)


def install_error_handlers(app: FastAPI) -> None:
    """Map every exception the routes may raise to the one JSON error shape."""

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, e: ApiError) -> JSONResponse:
        return error_response(e)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, e: RequestValidationError) -> JSONResponse:
        first = e.errors()[0] if e.errors() else {}
        loc = ".".join(str(x) for x in first.get("loc", ())[1:]) or None
        msg = str(first.get("msg", "invalid request"))
        return error_response(ApiError(422, "invalid_parameter", msg, loc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, e: StarletteHTTPException) -> JSONResponse:
        return error_response(ApiError(e.status_code, "http_error", str(e.detail)))

    @app.exception_handler(StoreError)
    async def _store(_: Request, e: StoreError) -> JSONResponse:
        log.error("store error: %s", e)
        return error_response(
            ApiError(
                503,
                "store_unavailable",
                f"the ledger store is unavailable: {e}",
                headers={"Retry-After": "1"},
            )
        )

    @app.exception_handler(OperationalError)
    async def _db_gone(_: Request, e: OperationalError) -> JSONResponse:
        # The database went away or turned read-only (a failover under way): the client
        # retries, with its idempotency key, rather than see an internal error.
        log.error("database unavailable: %s", e.__class__.__name__)
        return error_response(
            ApiError(
                503,
                "store_unavailable",
                "the ledger store is unavailable: the database does not answer",
                headers={"Retry-After": "1"},
            )
        )

    @app.exception_handler(ClientDisconnect)
    async def _gone(request: Request, _: ClientDisconnect) -> JSONResponse:
        # The client hung up while sending its body: nothing was done, nobody is left to
        # answer, and it is no fault of the service. One line, not a traceback.
        log.info("client left during the request body: %s %s", request.method, request.url.path)
        return error_response(
            ApiError(400, "client_disconnected", "the client left before its body arrived")
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, e: Exception) -> JSONResponse:
        # Last resort only: every known failure has its own answer above or in its route,
        # and a 500 here is a bug to fix. Starlette still logs the traceback after this.
        log.error("unexpected %s in %s %s", type(e).__name__, request.method, request.url.path)
        return error_response(
            ApiError(500, "internal_error", "internal error; the service logged it")
        )
