"""The HTTP API (FastAPI). Paths, fields and status codes here are a public contract.

No `from __future__ import annotations` here: FastAPI reads the dependency annotations of
routes defined inside create_app at run time, and they name local functions.

Routes read raw bodies and parse them with the ledger's strict JSON parser, so floats,
duplicate keys and oversized bodies are refused with a clear error before anything else;
the event schema is still published in the OpenAPI document.
"""

import asyncio
import base64
import json
import logging
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.auth import AuthError, Forbidden, Principal, TokenCheck, require
from api.schemas import EVENT_SCHEMA
from ledger.records import InvalidEvent, validate_event
from ledger.sequencer import Appended, IdempotencyConflict, SequencerBusy
from ledger.service import Ledger, NotFound
from ledger.store import StoreError
from ledger.tiles import parse_index_path
from verifier.canonical import CanonicalError, parse_strict_json

log = logging.getLogger("jianzheng.api")

MAX_EVENT_BODY = 1 << 20
MAX_BATCH_BODY = 16 << 20
MAX_BATCH_EVENTS = 1000
MAX_PAGE = 1000
APPEND_TIMEOUT = 30.0


class ApiError(Exception):
    """An error answered as JSON: ``{"error": {"status", "code", "message", "field"?}}``."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        field: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.headers = headers


def _error_response(e: ApiError) -> JSONResponse:
    body: dict[str, Any] = {"status": e.status, "code": e.code, "message": e.message}
    if e.field is not None:
        body["field"] = e.field
    return JSONResponse({"error": body}, status_code=e.status, headers=e.headers)


def b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


def create_app(ledger: Ledger) -> FastAPI:
    """Build the API around an open :class:`Ledger`."""
    app = FastAPI(
        title="Jianzheng 见证 audit ledger",
        version="1",
        description="Append-only, witnessed audit ledger for public resource trading.",
    )
    tokens = TokenCheck(ledger.store)
    app.state.ledger = ledger

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, e: ApiError) -> JSONResponse:
        return _error_response(e)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, e: RequestValidationError) -> JSONResponse:
        first = e.errors()[0] if e.errors() else {}
        loc = ".".join(str(x) for x in first.get("loc", ())[1:]) or None
        return _error_response(
            ApiError(422, "invalid_parameter", str(first.get("msg", "invalid request")), loc)
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, e: StarletteHTTPException) -> JSONResponse:
        return _error_response(ApiError(e.status_code, "http_error", str(e.detail)))

    @app.exception_handler(StoreError)
    async def _store(_: Request, e: StoreError) -> JSONResponse:
        log.error("store error: %s", e)
        return _error_response(
            ApiError(
                503,
                "store_unavailable",
                f"the ledger store is unavailable: {e}",
                headers={"Retry-After": "1"},
            )
        )

    def principal(request: Request) -> Principal:
        try:
            return tokens.authenticate(request.headers.get("authorization"))
        except AuthError as e:
            raise ApiError(
                401, "unauthorized", str(e), headers={"WWW-Authenticate": "Bearer"}
            ) from None

    def role(*roles: str) -> Callable[[Principal], Principal]:
        def dep(p: Annotated[Principal, Depends(principal)]) -> Principal:
            try:
                require(p, *roles)
            except Forbidden as e:
                raise ApiError(403, "forbidden", str(e)) from None
            return p

        return dep

    Poster = Annotated[Principal, Depends(role("platform"))]
    Reader = Annotated[Principal, Depends(role("reviewer", "archivist"))]

    async def read_json(request: Request, limit: int) -> object:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise ApiError(413, "too_large", f"request body is larger than {limit} bytes")
        chunks = bytearray()
        async for chunk in request.stream():
            chunks += chunk
            if len(chunks) > limit:
                raise ApiError(413, "too_large", f"request body is larger than {limit} bytes")
        if not chunks:
            raise ApiError(400, "malformed", "request body is empty; send a JSON object")
        try:
            return parse_strict_json(bytes(chunks))
        except CanonicalError as e:
            # Floats, duplicate keys and huge integers are well-formed JSON we refuse (422);
            # only what no JSON parser accepts is malformed (400).
            try:
                json.loads(bytes(chunks))
            except ValueError:
                raise ApiError(400, "malformed", f"request body is not JSON: {e}") from None
            raise ApiError(422, "invalid_event", str(e)) from None

    def validate(obj: object, prefix: str = "") -> Any:
        try:
            return validate_event(obj, ledger.catalogue)
        except InvalidEvent as e:
            field = prefix + e.field if e.field != "$" else (prefix.rstrip(".") or "$")
            raise ApiError(422, "invalid_event", f"{field}: {e.message}", field) from None

    async def append(events: list[Any], poster: str) -> list[Appended]:
        try:
            fut = ledger.append(events, poster)
        except SequencerBusy as e:
            raise ApiError(503, "busy", str(e), headers={"Retry-After": "1"}) from None
        try:
            return await asyncio.wait_for(asyncio.wrap_future(fut), APPEND_TIMEOUT)
        except IdempotencyConflict as e:
            raise ApiError(
                409, "idempotency_conflict", str(e), f"events[{e.position}].idempotency_key"
            ) from None
        except TimeoutError:
            raise ApiError(
                503,
                "timeout",
                "the append was not confirmed in time; retry with the same idempotency_key",
                headers={"Retry-After": "1"},
            ) from None

    def receipt_json(a: Appended) -> dict[str, Any]:
        out = ledger.receipt(a.index, a.event_hash).to_json()
        out["replayed"] = a.replayed
        return out

    event_body = {
        "requestBody": {"required": True, "content": {"application/json": {"schema": EVENT_SCHEMA}}}
    }
    batch_body = {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "required": ["events"],
                        "additionalProperties": False,
                        "properties": {
                            "events": {
                                "type": "array",
                                "minItems": 1,
                                "maxItems": MAX_BATCH_EVENTS,
                                "items": EVENT_SCHEMA,
                            }
                        },
                    }
                }
            },
        }
    }

    @app.post("/v1/events", status_code=201, openapi_extra=event_body, tags=["events"])
    async def post_event(request: Request, p: Poster) -> JSONResponse:
        """Append one event; the reply is its receipt, sent once the event is durable."""
        ev = validate(await read_json(request, MAX_EVENT_BODY))
        [a] = await append([ev], p.token_id)
        return JSONResponse(receipt_json(a), status_code=200 if a.replayed else 201)

    @app.post("/v1/events:batch", status_code=201, openapi_extra=batch_body, tags=["events"])
    async def post_batch(request: Request, p: Poster) -> JSONResponse:
        """Append up to 1000 events, all or nothing; receipts in the order posted."""
        body = await read_json(request, MAX_BATCH_BODY)
        if not isinstance(body, dict) or set(body) != {"events"}:
            raise ApiError(422, "invalid_event", 'the body must be {"events": [...]}', "events")
        items = body["events"]
        if not isinstance(items, list) or not items:
            raise ApiError(422, "invalid_event", "events must be a non-empty list", "events")
        if len(items) > MAX_BATCH_EVENTS:
            raise ApiError(
                413, "too_large", f"a batch holds at most {MAX_BATCH_EVENTS} events", "events"
            )
        evs = [validate(x, f"events[{i}].") for i, x in enumerate(items)]
        done = await append(evs, p.token_id)
        return JSONResponse({"receipts": [receipt_json(a) for a in done]}, status_code=201)

    def record_json(index: int) -> dict[str, Any]:
        canonical, event_hash = ledger.record(index)
        return {"record": json.loads(canonical), "event_hash": b64(event_hash)}

    @app.get("/v1/events/{index}", tags=["events"])
    async def get_event(index: int, _: Reader) -> dict[str, Any]:
        """The committed record at a log index, with its receipt."""
        if index < 0:
            raise ApiError(422, "invalid_parameter", "index must be >= 0", "index")
        try:
            out = record_json(index)
            out["receipt"] = ledger.receipt(index).to_json()
        except NotFound as e:
            raise ApiError(404, "not_found", str(e)) from None
        return out

    @app.get("/v1/projects/{project}/events", tags=["events"])
    async def project_events(
        project: str,
        _: Reader,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
        after: Annotated[int, Query(ge=-1)] = -1,
    ) -> dict[str, Any]:
        """A project's records in seq order, after the last seq the caller has seen."""
        rows = ledger.project_records(project, after, limit)
        records = [json.loads(r) for _, _, r in rows]
        nxt = rows[-1][1] if len(rows) == limit else None
        return {"project": project, "records": records, "next_after": nxt}

    @app.get("/v1/proofs/inclusion", tags=["proofs"])
    async def proof_inclusion(
        _: Reader,
        index: Annotated[int, Query(ge=0)],
        tree_size: Annotated[int, Query(ge=1)],
    ) -> dict[str, Any]:
        try:
            hashes = ledger.inclusion_proof(index, tree_size)
        except NotFound as e:
            raise ApiError(404, "not_found", str(e)) from None
        return {"index": index, "tree_size": tree_size, "hashes": [b64(h) for h in hashes]}

    @app.get("/v1/proofs/consistency", tags=["proofs"])
    async def proof_consistency(
        _: Reader,
        first: Annotated[int, Query(ge=1)],
        second: Annotated[int, Query(ge=1)],
    ) -> dict[str, Any]:
        try:
            hashes = ledger.consistency_proof(first, second)
        except NotFound as e:
            raise ApiError(404, "not_found", str(e)) from None
        return {"first": first, "second": second, "hashes": [b64(h) for h in hashes]}

    @app.get("/v1/log", tags=["log"])
    async def log_info() -> dict[str, Any]:
        """Public: origin, verifier key and the newest signed checkpoint."""
        i = ledger.info()
        return {
            "origin": i.origin,
            "verifier_key": i.verifier_key,
            "size": i.size,
            "root": b64(i.root),
            "checkpoint": i.checkpoint,
        }

    @app.get("/v1/catalogue", tags=["log"])
    async def catalogue() -> dict[str, Any]:
        """Public: the event types the ledger accepts, per trade type."""
        c = ledger.catalogue
        return {
            "version": c.version,
            "events": [
                {
                    "code": e.code,
                    "name_zh": e.name_zh,
                    "name_en": e.name_en,
                    "trade_types": list(e.trade_types),
                    "phase": e.phase,
                }
                for e in c
            ],
        }

    immutable = {"Cache-Control": "public, max-age=31536000, immutable"}

    @app.get("/log/checkpoint", tags=["tiles"])
    async def checkpoint() -> Response:
        note = ledger.info().checkpoint
        if not note:
            raise ApiError(404, "not_found", "the log is empty: no checkpoint yet")
        return Response(
            note, media_type="text/plain; charset=utf-8", headers={"Cache-Control": "no-cache"}
        )

    @app.get("/log/tile/{path:path}", tags=["tiles"])
    async def tile(path: str) -> Response:
        """C2SP tlog-tiles: /log/tile/<L>/<N>[.p/<W>] and /log/tile/entries/<N>[.p/<W>]."""
        parts = path.split("/")
        width: int | None = None
        if len(parts) >= 2 and parts[-2].endswith(".p"):
            w = parts[-1]
            if not w.isdigit() or w != str(int(w)) or not 1 <= int(w) <= 255:
                raise ApiError(404, "not_found", f"bad partial tile width {w!r}")
            width = int(w)
            parts = [*parts[:-2], parts[-2][:-2]]
        if len(parts) < 2:
            raise ApiError(404, "not_found", "tile path needs a level and an index")
        try:
            index = parse_index_path(parts[1:])
        except ValueError as e:
            raise ApiError(404, "not_found", str(e)) from None
        try:
            if parts[0] == "entries":
                data = ledger.entry_bundle(index, width)
            elif parts[0].isdigit() and len(parts[0]) <= 2 and parts[0] == str(int(parts[0])):
                data = ledger.tile(int(parts[0]), index, width)
            else:
                raise ApiError(404, "not_found", f"bad tile level {parts[0]!r}")
        except NotFound as e:
            raise ApiError(404, "not_found", str(e)) from None
        return Response(data, media_type="application/octet-stream", headers=immutable)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
