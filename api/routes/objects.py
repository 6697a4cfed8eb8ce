"""Evidence objects: streaming upload, ranged download, chunk proofs, legal holds.

Contract: ``POST /v1/objects``, ``GET /v1/objects/{sha256}`` (RFC 9110 §14 ranges),
``GET /v1/objects/{sha256}/chunks/{i}``, ``POST /v1/objects/{sha256}/legal-hold``.
The body of an upload is never held whole: it flows through a bounded pipe to an upload
thread that hashes it and writes it to the store as it arrives.

Every read is authorised through the projects that cite the object, and recorded in the
authorising project's access chain before a byte is sent (:mod:`ledger.access`).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import logging
import re
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.requests import ClientDisconnect

from api.deps import DecimalDigits, LedgerDep, Poster, not_found, read_json, role
from api.errors import ANSWERED_IN_ROUTES, ApiError, ApiLayerError, as_api_error
from api.read_sessions import HEADER as READ_SESSION_HEADER
from api.read_sessions import QUERY as READ_SESSION_QUERY
from api.read_sessions import ReadSessions, session_name
from ledger.access import (
    HOLD_OBJECT,
    HOLD_POSTER,
    Principal,
    access_what,
    authorize_object,
    record_access,
    record_event,
)
from ledger.appending import AttachmentResolver
from ledger.records import (
    HOLD_RELEASED_EVENT,
    HOLD_SET_EVENT,
    MEDIA_TYPE_RE,
    EventSubmission,
)
from ledger.service import Ledger, NotFound
from ledger.store import Citation
from storage.attachments import resolve_attachments
from storage.base import (
    SHA256_HEX,
    DigestMismatch,
    ObjectTooLarge,
    UploadInterrupted,
)
from storage.pipe import BlockPipe
from storage.service import EvidenceStore, ObjectInfo
from verifier.sealed import OpeningError, commitments_of, open_record

log = logging.getLogger("jianzheng.api")

#: Longest wait for an upload to be committed once its body has arrived (a server-side
#: copy of a large object without an announced digest takes a while).
COMMIT_TIMEOUT = 3600.0
MAX_RANGES = 64
MAX_HOLD_REASON = 500
DEFAULT_MEDIA_TYPE = "application/octet-stream"

router = APIRouter(tags=["objects"])

_B64 = {"type": "string", "format": "byte"}
OBJECT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["sha256", "size", "chunk_root", "chunk_count", "media_type"],
    "properties": {
        "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
        "size": {"type": "integer", "minimum": 0},
        "chunk_root": {**_B64, "description": "RFC 6962 root over the 1 MiB chunks"},
        "chunk_count": {"type": "integer", "minimum": 0},
        "media_type": {"type": "string"},
        "created_at": {"type": "string", "format": "date-time"},
        "retain_until": {"type": "string", "format": "date-time"},
        "legal_hold": {"type": "boolean"},
    },
}
CHUNK_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["index", "chunk_count", "chunk_root", "data", "proof"],
    "properties": {
        "index": {"type": "integer", "minimum": 0},
        "chunk_count": {"type": "integer", "minimum": 1},
        "chunk_root": _B64,
        "data": _B64,
        "proof": {"type": "array", "items": _B64, "maxItems": 64},
    },
}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_BYTES = {"content": {"*/*": {"schema": {"type": "string", "format": "binary"}}}}


async def get_objects(request: Request) -> EvidenceStore:
    objects: EvidenceStore = request.app.state.objects
    return objects


ObjectsDep = Annotated[EvidenceStore, Depends(get_objects)]
#: A complaint reviewer (or an admin) places and lifts legal holds.
HoldSetter = Annotated[Principal, Depends(role("reviewer"))]
#: Readers of cited objects, and the platform checking an upload no record cites yet;
#: which objects each may read is decided per object (ledger.access.authorize_object).
ObjectReader = Annotated[Principal, Depends(role("platform", "reviewer", "archivist"))]


@contextlib.contextmanager
def storage_errors() -> Iterator[None]:
    """Answer the store's failures here, in the route (``api/errors.py`` REFUSALS says
    how), so that the code after this block never sees them."""
    try:
        yield
    except ANSWERED_IN_ROUTES as e:
        raise as_api_error(e) from None


def _check_sha(sha256: str) -> str:
    if not SHA256_HEX.fullmatch(sha256):
        raise ApiError(422, "invalid_parameter", "sha256 must be 64 lowercase hex digits", "sha256")
    return sha256


# --- upload ----------------------------------------------------------------------------


def expected_digest(headers: Any) -> tuple[str | None, str | None]:
    """The SHA-256 the client announced, hex, and the header that carried it.

    ``Digest: sha-256=<base64>`` (RFC 3230 §4.3.2) or ``X-Content-SHA256: <hex>``.
    """
    found: list[tuple[str, str]] = []
    raw = headers.get("x-content-sha256")
    if raw is not None:
        h = raw.strip().lower()
        if not SHA256_HEX.fullmatch(h):
            raise ApiError(
                400,
                "malformed",
                "X-Content-SHA256 must be 64 hex digits",
                "X-Content-SHA256",
            )
        found.append((h, "X-Content-SHA256"))
    digest = headers.get("digest")
    if digest is not None:
        value = None
        for item in digest.split(","):
            alg, sep, v = item.strip().partition("=")
            if sep and alg.strip().lower() == "sha-256":
                value = v.strip()
        if value is None:
            raise ApiError(
                400, "malformed", "the Digest header has no sha-256=<base64> value", "Digest"
            )
        try:
            d = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            d = b""
        if len(d) != 32:
            raise ApiError(400, "malformed", "Digest sha-256 must be 32 bytes in base64", "Digest")
        found.append((d.hex(), "Digest"))
    if len(found) == 2 and found[0][0] != found[1][0]:
        raise ApiError(400, "malformed", "Digest and X-Content-SHA256 disagree", "Digest")
    return found[0] if found else (None, None)


def _media_type(request: Request) -> str:
    media = request.headers.get("content-type", DEFAULT_MEDIA_TYPE).strip()
    if not media:
        return DEFAULT_MEDIA_TYPE
    if len(media) > 255 or not MEDIA_TYPE_RE.fullmatch(media):
        raise ApiError(
            422,
            "invalid_parameter",
            f"Content-Type {media[:60]!r} is not a media type",
            "Content-Type",
        )
    return media


@router.post(
    "/v1/objects",
    status_code=201,
    responses={
        201: _json(OBJECT_SCHEMA, "stored"),
        200: _json(OBJECT_SCHEMA, "these bytes were already stored"),
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}},
        }
    },
)
async def upload_object(request: Request, p: Poster, objects: ObjectsDep) -> JSONResponse:
    """Store the request body as an evidence object; 201 when new, 200 when already held.

    The reply names the object by ``sha256`` and gives its ``size``, ``chunk_root``
    (RFC 6962 root over its 1 MiB chunks) and ``media_type`` (the request's Content-Type).
    A token has a few upload slots of its own (429 when it uses them all), so that its
    slow uploads never hold up another token's (issue 10 §3); 503 when the whole service
    has none free.
    """
    expected, header = expected_digest(request.headers)
    media_type = _media_type(request)
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > objects.max_size:
        raise ApiError(413, "too_large", f"an object may be at most {objects.max_size} bytes")
    slots = objects.upload_slots
    full = slots.acquire(p.token_id)
    if full == "owner":
        raise ApiError(
            429,
            "too_many_uploads",
            f"this token already has {slots.per_owner} uploads running; retry when one ends",
            headers={"Retry-After": "5"},
        )
    if full is not None:
        raise ApiError(
            503,
            "busy",
            "too many uploads are running; retry shortly",
            headers={"Retry-After": "5"},
        )
    loop = asyncio.get_running_loop()
    pipe = BlockPipe(loop)
    try:
        job = loop.run_in_executor(objects.executor, objects.ingest, pipe, expected, media_type)
    except BaseException:
        slots.release(p.token_id)
        raise
    # The slot is free only once the upload thread is done, whatever happens here.
    job.add_done_callback(lambda _: slots.release(p.token_id))
    try:
        async for piece in request.stream():
            if pipe.consumer_gone:
                break
            if piece:
                await pipe.feed(piece)
        else:
            await pipe.close()
    except (ClientDisconnect, UploadInterrupted) as e:
        pipe.fail(e)
    except BaseException as e:  # cancelled: the upload thread must still abort
        pipe.fail(e)
        raise
    try:
        with storage_errors():
            info, created = await asyncio.wait_for(asyncio.shield(job), COMMIT_TIMEOUT)
    except DigestMismatch as e:
        raise ApiError(422, "digest_mismatch", str(e), header) from None
    except ObjectTooLarge as e:
        raise ApiError(413, "too_large", f"{e}; nothing was stored") from None
    except UploadInterrupted as e:
        raise ApiError(400, "upload_interrupted", f"{e}; nothing was stored") from None
    except TimeoutError:
        raise ApiError(
            503,
            "timeout",
            "the store did not confirm the upload in time; retry (same content, same key)",
            headers={"Retry-After": "5"},
        ) from None
    return JSONResponse(
        info.to_json(),
        status_code=201 if created else 200,
        headers={"Location": f"/v1/objects/{info.sha256}"},
    )


# --- download --------------------------------------------------------------------------

# RFC 9110 §14.1.1: positions are ASCII DIGITs (\d would admit other scripts' digits).
_RANGE_SPEC = re.compile(r"[ \t]*([0-9]*)[ \t]*-[ \t]*([0-9]*)[ \t]*")
#: Any position of more digits than this lies beyond every object (and int() of thousands
#: of digits is slow, and refused past 4300): such a position is read as this value.
_POSITION_DIGITS = 18
_BEYOND: int = 10**_POSITION_DIGITS


def _position(digits: str) -> int:
    """A byte position or suffix length of a range spec, capped at :data:`_BEYOND`."""
    significant = digits.lstrip("0")
    if len(significant) > _POSITION_DIGITS:
        return _BEYOND
    return int(significant or "0")


class RangeNotSatisfiable(ApiLayerError):
    pass


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The byte range [first, last] to send, or None for the whole object.

    RFC 9110 §14.1.2 byte ranges. A header in another unit or malformed is ignored, as
    §14.2 allows; several ranges are coalesced into the one span that covers them, which
    §14.2 also allows. Raises :class:`RangeNotSatisfiable` when no range overlaps.
    """
    if header is None:
        return None
    unit, sep, rest = header.partition("=")
    if not sep or unit.strip().lower() != "bytes":
        return None
    specs = rest.split(",")
    if len(specs) > MAX_RANGES:
        raise RangeNotSatisfiable(f"at most {MAX_RANGES} ranges per request")
    spans: list[tuple[int, int]] = []
    for spec in specs:
        m = _RANGE_SPEC.fullmatch(spec)
        if m is None or (not m.group(1) and not m.group(2)):
            return None
        first, last = m.group(1), m.group(2)
        if first:
            a = _position(first)
            b = _position(last) if last else size - 1
            if last and b < a:
                return None
            if a >= size:
                continue  # unsatisfiable on its own
            spans.append((a, min(b, size - 1)))
        else:
            n = _position(last)
            if n == 0 or size == 0:
                continue
            spans.append((max(0, size - n), size - 1))
    if not spans:
        raise RangeNotSatisfiable(f"no requested range overlaps the object's {size} bytes")
    return min(a for a, _ in spans), max(b for _, b in spans)


def _close(it: Iterator[bytes]) -> None:
    close = getattr(it, "close", None)
    if close is not None:
        close()


def _close_after(it: Iterator[bytes]) -> Iterator[bytes]:
    """Iterate, and release the store's connection or file even if the client leaves."""
    try:
        yield from it
    finally:
        _close(it)


def original_name(lg: Ledger, cite: Citation, sha256: str) -> str | None:
    """The file name the authorising record gives the object (its first attachment with
    this hash), or None. A record that seals its attachments is opened with its stored
    openings: :func:`ledger.access.authorize_object` only returns such a citation to a
    reader who may see it."""
    try:
        raw, _ = lg.record(cite.index)
    except NotFound:
        return None
    record = json.loads(raw)
    if commitments_of(record):
        opened = lg.openings([cite.index]).get(cite.index)
        if opened is None:
            return None
        try:
            record = open_record(record, json.loads(opened))
        except OpeningError:
            return None
    for a in record.get("attachments") or ():
        if isinstance(a, dict) and a.get("sha256") == sha256 and isinstance(a.get("name"), str):
            return str(a["name"]) or None
    return None


_TOKEN_CHARS = re.compile(r"[A-Za-z0-9!#$&+.^_`|~-]")


def content_disposition(name: str, disposition: str = "attachment") -> str:
    """``Content-Disposition`` keeping a file's name (RFC 6266 §4.3, RFC 8187 ``filename*``
    in UTF-8 for every name, and a plain ASCII ``filename`` fallback for old clients).

    Only the last path segment counts, control characters are dropped, and the ASCII
    fallback replaces what it cannot carry by ``_`` (keeping the extension).
    """
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(ch for ch in base if ch.isprintable()).strip() or "download"
    base = base[:255]
    fallback = "".join(
        ch if ch.isascii() and ch.isprintable() and ch not in '"\\' else "_" for ch in base
    )
    if set(fallback.rsplit(".", 1)[0]) <= {"_"}:
        fallback = "download" + (("." + fallback.rsplit(".", 1)[1]) if "." in fallback else "")
    encoded = "".join(
        ch if _TOKEN_CHARS.fullmatch(ch) else "".join(f"%{b:02X}" for b in ch.encode())
        for ch in base
    )
    return f"{disposition}; filename=\"{fallback}\"; filename*=UTF-8''{encoded}"


@router.get(
    "/v1/objects/{sha256}",
    response_class=StreamingResponse,
    responses={
        200: {"description": "the whole object", **_BYTES},
        206: {"description": "the requested byte range", **_BYTES},
    },
)
async def get_object(
    sha256: str, request: Request, p: ObjectReader, lg: LedgerDep, objects: ObjectsDep
) -> StreamingResponse:
    """The object's bytes; a ``Range: bytes=...`` request gets 206 with that part.

    ``Content-Disposition`` carries the file name the citing record gives it (RFC 6266).
    Reads naming a read session (``X-Read-Session`` or ``?read_session=``) are recorded
    once per session (:mod:`api.read_sessions`); other reads each once.
    """
    _check_sha(sha256)
    cite = await run_in_threadpool(authorize_object, lg, p, sha256)
    with storage_errors():
        info: ObjectInfo = await run_in_threadpool(objects.require, sha256)
    headers = {
        "Accept-Ranges": "bytes",
        "ETag": f'"{info.sha256}"',
        "X-Content-SHA256": info.sha256,
        "Digest": "sha-256=" + base64.b64encode(bytes.fromhex(info.sha256)).decode(),
        "Cache-Control": "private, max-age=31536000, immutable",
    }
    try:
        span = parse_range(request.headers.get("range"), info.size)
    except RangeNotSatisfiable as e:
        raise ApiError(
            416,
            "range_not_satisfiable",
            str(e),
            "Range",
            headers={"Content-Range": f"bytes */{info.size}"},
        ) from None
    status = 200
    offset, length = 0, info.size
    what: dict[str, Any] = {"what": "object", "sha256": sha256}
    if span is not None:
        status = 206
        offset, length = span[0], span[1] - span[0] + 1
        headers["Content-Range"] = f"bytes {span[0]}-{span[1]}/{info.size}"
        what["range"] = {"first": span[0], "last": span[1]}
    try:
        read_session = session_name(
            request.headers.get(READ_SESSION_HEADER), request.query_params.get(READ_SESSION_QUERY)
        )
    except ValueError as e:
        raise ApiError(422, "invalid_parameter", str(e), READ_SESSION_HEADER) from None
    if cite is not None:
        name = await run_in_threadpool(original_name, lg, cite, sha256)
        if name:
            headers["Content-Disposition"] = content_disposition(name)
    with storage_errors():
        # Opened before the reply starts, so an unreachable store is still a clean 503.
        pieces = await run_in_threadpool(objects.read, info, offset, length)
    if cite is not None:
        c = cite

        async def record() -> None:
            await record_access(lg, p, c.project, c.trade_type, access_what(lg, c, what))

        try:
            if read_session is None:
                await record()
            else:
                what["read_session"] = read_session
                sessions: ReadSessions = request.app.state.read_sessions
                await sessions.read((p.token_id, sha256, read_session), record)
        except BaseException:
            _close(pieces)
            raise
    headers["Content-Length"] = str(length)
    return StreamingResponse(
        _close_after(pieces), status_code=status, media_type=info.media_type, headers=headers
    )


@router.get(
    "/v1/objects/{sha256}/chunks/{index}",
    responses={200: _json(CHUNK_SCHEMA, "the chunk and its inclusion proof")},
)
async def get_chunk(
    sha256: str,
    index: Annotated[int, Path(), DecimalDigits],
    p: ObjectReader,
    lg: LedgerDep,
    objects: ObjectsDep,
) -> Response:
    """Chunk ``index`` (1 MiB) with its RFC 9162 inclusion proof against ``chunk_root``."""
    _check_sha(sha256)
    if index < 0:
        raise ApiError(422, "invalid_parameter", "the chunk index must be >= 0", "index")
    cite = await run_in_threadpool(authorize_object, lg, p, sha256)
    with storage_errors():
        chunk = await run_in_threadpool(objects.chunk, sha256, index)
    if cite is not None:
        what = {"what": "object_chunk", "sha256": sha256, "chunk": index}
        await record_access(lg, p, cite.project, cite.trade_type, access_what(lg, cite, what))
    j = chunk.to_json()
    data = j.pop("data")
    # Base64 needs no JSON escaping, so the 1.4 MB string is spliced in as it is: through
    # json.dumps it would be scanned character by character (8 ms per chunk, measured).
    body = json.dumps(j)[:-1] + ', "data": "' + data + '"}'
    return Response(body.encode(), media_type="application/json")


@router.post(
    "/v1/objects/{sha256}/legal-hold",
    responses={200: _json(OBJECT_SCHEMA, "the object with its hold as now set")},
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "required": ["hold"],
                        "additionalProperties": False,
                        "properties": {
                            "hold": {"type": "boolean"},
                            "reason": {"type": "string", "maxLength": MAX_HOLD_REASON},
                        },
                    }
                }
            },
        }
    },
)
async def legal_hold(
    sha256: str, request: Request, p: HoldSetter, lg: LedgerDep, objects: ObjectsDep
) -> dict[str, Any]:
    """Place (``{"hold": true}``) or lift (``{"hold": false}``) a legal hold; an optional
    ``reason`` (e.g. the complaint's reference) goes into the record.

    The read rules apply (a sealed bid file is absent until the opening), and every change
    is recorded as a ``legal_hold_set`` / ``legal_hold_released`` event in the chain of the
    project that authorises it, before the store is changed: a change that cannot be
    recorded is not made (issue 10 §2). Setting what is already set records nothing.
    """
    _check_sha(sha256)
    cite = await run_in_threadpool(authorize_object, lg, p, sha256, HOLD_OBJECT)
    body = await read_json(request, 4096)
    if (
        not isinstance(body, dict)
        or "hold" not in body
        or not set(body) <= {"hold", "reason"}
        or not isinstance(body["hold"], bool)
    ):
        raise ApiError(
            422,
            "invalid_parameter",
            'the body must be {"hold": true|false[, "reason": "..."]}',
            "hold",
        )
    reason = check_hold_reason(body.get("reason", ""))
    info = await change_legal_hold(lg, objects, p, cite, sha256, body["hold"], reason)
    return info.to_json()


def check_hold_reason(reason: object) -> str:
    """The reason given for a legal hold change, checked (422 naming ``reason``)."""
    if not isinstance(reason, str) or len(reason) > MAX_HOLD_REASON or not reason.isprintable():
        msg = f"reason must be printable text of at most {MAX_HOLD_REASON} characters"
        raise ApiError(422, "invalid_parameter", msg, "reason")
    return reason


async def change_legal_hold(
    lg: Ledger,
    objects: EvidenceStore,
    p: Principal,
    cite: Citation | None,
    sha256: str,
    hold: bool,
    reason: str,
) -> ObjectInfo:
    """Set or lift the hold on an object ``p`` was authorised to hold through ``cite``
    (:data:`ledger.access.HOLD_OBJECT`): recorded first, then changed (the API route and
    the console's form both come here)."""
    if cite is None:  # HOLD_OBJECT admits no uncited object; never reached
        raise not_found(f"no object with SHA-256 {sha256} is stored")
    with storage_errors():
        info = await run_in_threadpool(objects.require, sha256)
    if info.legal_hold == hold:
        return info
    # A confidential file (a complaint's letter) is named by the record citing it: every
    # reader of the project sees the hold, and the hash would identify the file.
    payload = access_what(lg, cite, {"sha256": sha256})
    if reason:
        payload["reason"] = reason
    await record_event(
        lg,
        p,
        cite.project,
        cite.trade_type,
        HOLD_SET_EVENT if hold else HOLD_RELEASED_EVENT,
        payload,
        HOLD_POSTER,
        "the legal hold could not be recorded, so it was not changed",
    )
    with storage_errors():
        return await run_in_threadpool(objects.set_legal_hold, sha256, hold)


# --- events that cite attachments ------------------------------------------------------


def attachment_resolver(request: Request) -> AttachmentResolver:
    """How ``ledger.appending.append_events`` checks attachments in this app: against its
    evidence store (``storage.attachments.resolve_attachments``), off the event loop; a
    store that cannot answer is a 503, so no event cites an object nobody can confirm."""
    objects: EvidenceStore = request.app.state.objects

    async def resolve(events: list[EventSubmission], prefixes: list[str]) -> list[EventSubmission]:
        with storage_errors():
            return await run_in_threadpool(resolve_attachments, objects, events, prefixes)

    return resolve
