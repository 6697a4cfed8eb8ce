"""Posting events and reading committed records (contract: /v1/events...)."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from api.alerting import sealed_read_attempt
from api.deps import (
    MAX_INT64,
    DecimalDigits,
    LedgerDep,
    Poster,
    ProjectCode,
    Reader,
    WitnessingDep,
    app_witnessing,
    get_ledger,
    get_principal,
    not_found,
    read_json,
    require_poster,
)
from api.errors import ApiError
from api.routes.objects import attachment_resolver
from api.schemas import POSTED_EVENT_REF
from ledger.access import Principal, access_chain, authorize_project, record_access
from ledger.appending import append_events
from ledger.records import ACCESS_SUFFIX
from ledger.sealing import is_sealed_type, may_read_sealed, record_opener, redact
from ledger.sequencer import (
    Appended,
    Completion,
)
from ledger.service import Ledger, NotFound
from ledger.witnessing.view import WitnessingView, receipt_fields_for
from storage.archiving import ARCHIVE_EVENT, retain_archive
from storage.base import StorageError
from storage.service import EvidenceStore
from verifier.b64 import encode_b64
from verifier.references import RESOLVED
from verifier.rules.engine import evaluate
from verifier.sealed import OpeningError, base_project, is_sealed_chain, open_record

log = logging.getLogger("jianzheng.api")

MAX_EVENT_BODY = 1 << 20
MAX_BATCH_BODY = 16 << 20
MAX_BATCH_EVENTS = 1000
MAX_PAGE = 1000

router = APIRouter(tags=["events"])


class ReceiptsResponse(JSONResponse):
    """JSONResponse rendered by orjson: for plain JSON data (str, int, bool, None, lists
    and dicts with str keys) the same bytes as Starlette's compact ``json.dumps`` with
    ``ensure_ascii=False``, at about a ninth of its cost on a batch's 1.7 MB of receipts.
    """

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def _append(
    request: Request, p: Principal, lg: Ledger, posted: list[object], *, batch: bool, dry: bool
) -> Awaitable[list[Appended]]:
    """The one append use case (ledger.appending.append_events) with this app's poster keys
    and evidence store."""
    return append_events(
        lg,
        request.app.state.poster_keys,
        p,
        posted,
        resolve_attachments=attachment_resolver(request),
        batch=batch,
        dry=dry,
    )


def receipts_json(
    lg: Ledger, done: list[Appended], w: WitnessingView | None
) -> list[dict[str, Any]]:
    issued = lg.receipts_json(done)
    out = [j for _, j in issued]
    witnessed: dict[int, dict[str, Any]] = {}  # per checkpoint size: cosigned_by, timestamp
    refs = lg.catalogue.order.references
    for a, (cp, j) in zip(done, issued, strict=True):
        j["replayed"] = a.replayed
        c = a.completion
        if c is not None:
            sealing = c.event.sealing
            fields = refs.get(c.event.type)
            j.update(completion_json(_record_view(c, bool(fields)), fields))
            if sealing is not None:
                j["sealed_salts"] = sealed_salts(json.loads(sealing.openings))
                if not sealing.sealed_chain:
                    j["sealed_chain"] = False
        else:  # a replay (of this poster's own event): what the ledger added is in the record
            j.update(poster_completion(lg, json.loads(lg.record(a.index)[0])))
        fields = witnessed.get(cp.size)
        if fields is None:
            fields = witnessed[cp.size] = receipt_fields_for(w, cp)
        j.update(fields)
    return out


def _record_view(c: Completion, with_payload: bool) -> dict[str, Any]:
    """The members of the record :func:`completion_json` reads, without encoding it."""
    ev = c.event
    view: dict[str, Any] = {
        "seq": c.seq,
        "prev": encode_b64(c.prev),
        "recorded_at": c.recorded_at,
        "salt": encode_b64(c.salt),
        "checkpoint": {"size": c.checkpoint_size, "root": encode_b64(c.checkpoint_root)},
        "catalogue_version": ev.catalogue_version,
    }
    if ev.attachments:
        view["attachments"] = [a.to_json() for a in ev.attachments]
    if ev.poster_signature is not None:
        view["poster_signature"] = ev.poster_signature
    if with_payload:
        view["payload"] = json.loads(ev.payload)
    return view


def sealed_salts(openings: Mapping[str, Any]) -> dict[str, str]:
    """The salt of each sealed part of a record (path -> base64), from its openings.

    Only the token that posted the event gets them, in its receipt: it knows the values
    already, and with the salts rebuilds the commitments and so the record's hash
    (verifier.sealed.seal_record). Anyone else holding them could test a guess.
    """
    return {path: o["salt"] for path, o in openings.items()}


def poster_completion(lg: Ledger, record: dict[str, Any]) -> dict[str, Any]:
    """The receipt members for the poster of a committed ``record`` (see completion_json);
    for a sealed record, from the record as posted (its openings applied), with the
    sealed parts' salts. Only for the token that posted the record."""
    if "commitments" not in record:
        return completion_json(record, lg.catalogue.order.references.get(record["type"]))
    # The poster posted these values: its own record opens for it.
    openings = _openings(lg, [record], lambda _: True)[record["index"]]
    opened = _opened(record, openings)
    out = completion_json(opened, lg.catalogue.order.references.get(opened["type"]))
    out["sealed_salts"] = sealed_salts(openings)
    if not is_sealed_chain(record["project"]):
        out["sealed_chain"] = False  # confidential fields: the record stays in its chain
    return out


def completion_json(
    record: dict[str, Any], refs: Mapping[str, tuple[str, ...]] | None
) -> dict[str, Any]:
    """The receipt members a poster needs, beside what it posted, to rebuild the record
    and recompute its event hash (verifier.receipt.record_from_event): ``seq``, ``prev``,
    ``recorded_at``, ``salt``, the checkpoint the record embeds, the catalogue version it
    was checked under, and when they apply the resolved references, the attachments' chunk
    roots and the poster key."""
    out: dict[str, Any] = {
        "seq": record["seq"],
        "prev": record["prev"],
        "recorded_at": record["recorded_at"],
        "salt": record["salt"],
        "record_checkpoint": record["checkpoint"],
    }
    if "catalogue_version" in record:
        out["catalogue_version"] = record["catalogue_version"]
    payload = record.get("payload")
    if refs and isinstance(payload, dict):
        # A reference to a sealed record from an open one resolves to the index only.
        resolved = {
            name: {k: v[k] for k in RESOLVED if k in v}
            for name in refs
            if isinstance(v := payload.get(name), dict) and "index" in v
        }
        if resolved:
            out["resolved"] = resolved
    atts = record.get("attachments")
    if atts and any("chunk_root" in a for a in atts):
        out["chunk_roots"] = [a.get("chunk_root") for a in atts]
    sig = record.get("poster_signature")
    if isinstance(sig, dict):
        out["poster_key"] = sig.get("public_key")
    return out


def _body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


BATCH_SCHEMA = {
    "type": "object",
    "required": ["events"],
    "additionalProperties": False,
    "properties": {
        "events": {
            "type": "array",
            "minItems": 1,
            "maxItems": MAX_BATCH_EVENTS,
            "items": POSTED_EVENT_REF,
        },
    },
}


class PosterRoute(APIRoute):
    """A route whose endpoint is ``endpoint(request, p: Poster, lg: LedgerDep)`` and answers
    a Response, called without FastAPI's dependency solving.

    It is the same APIRoute (so the same OpenAPI operation, tests/test_fast_routes.py) and
    makes the same checks: ``p`` and ``lg`` come from the very functions those dependencies
    name, called in the same order. On the append path, solving them generically cost
    about a tenth of a request (issue 18). The endpoint may declare nothing else: a
    parameter FastAPI would have to fill is refused when the route is made.
    """

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, endpoint, **kwargs)
        d = self.dependant
        calls = [sub.call for sub in d.dependencies]
        params = d.path_params + d.query_params + d.header_params + d.cookie_params
        if calls != [require_poster, get_ledger] or params or d.body_params:
            raise TypeError(f"{path}: PosterRoute endpoints take (request, Poster, LedgerDep)")

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        endpoint = self.endpoint

        async def handler(request: Request) -> Response:
            p = await require_poster(await get_principal(request))
            response: Response = await endpoint(request, p, await get_ledger(request))
            return response

        return handler


async def post_event(request: Request, p: Poster, lg: LedgerDep) -> JSONResponse:
    """Append one event; the reply is its receipt, sent once the event is durable."""
    obj = await read_json(request, MAX_EVENT_BODY)
    [a] = await _append(request, p, lg, [obj], batch=False, dry=False)
    [j] = receipts_json(lg, [a], app_witnessing(request))
    await _retain_archives(request, lg, [a], [j])
    return ReceiptsResponse(j, status_code=200 if a.replayed else 201)


router.add_api_route(
    "/v1/events",
    post_event,
    methods=["POST"],
    status_code=201,
    openapi_extra=_body(POSTED_EVENT_REF),
    route_class_override=PosterRoute,
)


async def post_batch(request: Request, p: Poster, lg: LedgerDep) -> JSONResponse:
    """Append up to 1000 events, all or nothing; receipts in the order posted."""
    items = _batch_items(await read_json(request, MAX_BATCH_BODY))
    done = await _append(request, p, lg, items, batch=True, dry=False)
    receipts = receipts_json(lg, done, app_witnessing(request))
    await _retain_archives(request, lg, done, receipts)
    return ReceiptsResponse({"receipts": receipts}, status_code=201)


async def _retain_archives(
    request: Request, lg: Ledger, done: list[Appended], receipts: list[dict[str, Any]]
) -> None:
    """After an ``archive_package_created`` is committed (or replayed), lengthen the locks
    of the project's files to its retention date (storage.archiving); its receipt says what
    was done under ``retention``, or why not (``{"error"}``: replay the event to retry).
    The event is committed either way: the archive is a fact, the locks follow it."""
    objects: EvidenceStore | None = getattr(request.app.state, "objects", None)
    if objects is None:
        return
    if all(a.completion is not None and a.completion.event.type != ARCHIVE_EVENT for a in done):
        # Nothing archived and no replay to read: no hop to a worker thread, which cost
        # more than the rest of a single append's receipt (issue 18).
        return
    archived = await run_in_threadpool(_archives, lg, done)
    for a, j in zip(done, receipts, strict=True):
        project = archived.get(a.index)
        if project is None:
            continue
        try:
            done_ = await run_in_threadpool(retain_archive, lg, objects, project)
        except StorageError as e:
            log.warning("retention of project %s not lengthened: %s", project, e)
            j["retention"] = {"error": f"the files' retention was not lengthened: {e}"}
            continue
        if done_ is not None:
            j["retention"] = done_.to_json()


def _archives(lg: Ledger, done: list[Appended]) -> dict[int, str]:
    """log index -> project of the archive events among ``done``, committed or replayed
    (a replay's type is read from its record)."""
    out: dict[int, str] = {}
    for a in done:
        c = a.completion
        if c is not None:
            if c.event.type == ARCHIVE_EVENT:
                out[a.index] = c.event.project
            continue
        record = json.loads(lg.record(a.index)[0])
        if record["type"] == ARCHIVE_EVENT:
            out[a.index] = record["project"]
    return out


router.add_api_route(
    "/v1/events:batch",
    post_batch,
    methods=["POST"],
    status_code=201,
    openapi_extra=_body(BATCH_SCHEMA),
    route_class_override=PosterRoute,
)


def _batch_items(body: object) -> list[object]:
    """The events of a ``{"events": [...]}`` body (422 / 413 naming the problem)."""
    if not isinstance(body, dict) or set(body) != {"events"}:
        raise ApiError(422, "invalid_event", 'the body must be {"events": [...]}', "events")
    items = body["events"]
    if not isinstance(items, list) or not items:
        raise ApiError(422, "invalid_event", "events must be a non-empty list", "events")
    if len(items) > MAX_BATCH_EVENTS:
        msg = f"a batch holds at most {MAX_BATCH_EVENTS} events"
        raise ApiError(413, "too_large", msg, "events")
    return items


#: Committed records of one project the dry run's rule evaluation reads, at most; and the
#: projects of one batch it evaluates (a bound on the work of one request).
DRY_RUN_RECORDS = 20_000
DRY_RUN_PROJECTS = 20

VALIDATE_SCHEMA = {"oneOf": [POSTED_EVENT_REF, BATCH_SCHEMA]}
VALIDATE_REPLY = {
    "type": "object",
    "required": ["ok", "warnings"],
    "properties": {
        "ok": {"type": "boolean", "enum": [True]},
        "warnings": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["project", "rule", "status", "message", "message_zh"],
                "properties": {
                    "project": {"type": "string"},
                    "rule": {"type": "string"},
                    "status": {"type": "string", "enum": ["fail", "warn", "cannot_evaluate"]},
                    "message": {"type": "string"},
                    "message_zh": {"type": "string"},
                    "events": {"type": "array", "items": {"type": "integer"}},
                },
            },
        },
    },
}


@router.post(
    "/v1/events:validate",
    openapi_extra={
        **_body(VALIDATE_SCHEMA),
        "responses": {
            "200": {
                "description": "what a POST would accept, with the process-rule warnings",
                "content": {"application/json": {"schema": VALIDATE_REPLY}},
            }
        },
    },
)
async def validate_events(request: Request, p: Poster, lg: LedgerDep) -> JSONResponse:
    """Dry run: check one event or a ``{"events": [...]}`` batch exactly as POST would, and
    commit nothing. Refusals are POST's (422, 409 ``out_of_order`` ...); otherwise
    ``{"ok": true, "warnings": [...]}``: the process rules the verifier would flag on the
    project so far plus these events (e.g. "E01: ...")."""
    body = await read_json(request, MAX_BATCH_BODY)
    if isinstance(body, dict) and "events" in body:
        posted, batch = _batch_items(body), True
    else:
        if len(orjson.dumps(body)) > MAX_EVENT_BODY:
            raise ApiError(413, "too_large", f"an event is at most {MAX_EVENT_BODY} bytes")
        posted, batch = [body], False
    done = await _append(request, p, lg, posted, batch=batch, dry=True)
    warnings = await run_in_threadpool(_dry_run_warnings, lg, p, done)
    return ReceiptsResponse({"ok": True, "warnings": warnings})


def _dry_run_warnings(lg: Ledger, p: Principal, done: list[Appended]) -> list[dict[str, Any]]:
    """Evaluate the verifier's process rules on each project with its candidate records.

    The rules see what this token's role may see: sealed fields stay hidden as in a
    record read, and before the opening a project's sealed records (bids) are left out
    altogether, so a dry run cannot count or read them.
    """
    candidates: dict[str, list[dict[str, Any]]] = {}
    for a in done:
        if a.completion is not None:
            rec = json.loads(a.completion.record.canonical)
            candidates.setdefault(rec["project"], []).append(rec)
    out: list[dict[str, Any]] = []
    for n, (project, new) in enumerate(candidates.items()):
        if n >= DRY_RUN_PROJECTS:
            out.append(_note(project, f"not evaluated: more than {DRY_RUN_PROJECTS} projects"))
            continue
        rows = lg.project_records(project, -1, DRY_RUN_RECORDS)
        if len(rows) == DRY_RUN_RECORDS:
            out.append(_note(project, f"not evaluated: more than {DRY_RUN_RECORDS} records"))
            continue
        records = [orjson.loads(r) for _, _, r in rows] + new
        sealed_until = lg.catalogue.sealed_until
        opened = any(r["type"] == sealed_until for r in records)
        records = [
            redact(r, lg.catalogue, opened=opened, role=p.role)
            for r in records
            if opened or not is_sealed_type(lg.catalogue, r["type"])
        ]
        for res in evaluate(records):
            if res.status in ("pass", "not_applicable"):
                continue
            out.append(
                {
                    "project": project,
                    "rule": res.rule.id,
                    "status": res.status,
                    "message": f"{res.rule.id}: {res.message_en}",
                    "message_zh": f"{res.rule.id}：{res.message_zh}",
                    "events": res.events,
                }
            )
    return out


def _note(project: str, en: str) -> dict[str, Any]:
    return {
        "project": project,
        "rule": "-",
        "status": "cannot_evaluate",
        "message": en,
        "message_zh": "未评估：项目或批次过大",
    }


@router.get("/v1/receipts/{index}")
async def get_receipt(
    index: Annotated[int, Path(ge=0, le=MAX_INT64), DecimalDigits],
    p: Poster,
    lg: LedgerDep,
    w: WitnessingDep,
) -> dict[str, Any]:
    """The newest receipt of the event at ``index``, for the token that posted it (others
    get 404): the same proof, with the witnesses' cosignatures and the RFC 3161
    timestamp once they have arrived, and the fields the poster needs to rebuild its record."""
    missing = f"no receipt of yours at index {index}"
    row = await run_in_threadpool(lg.record_with_poster, index)
    if row is None or row[2] != p.token_id:
        raise not_found(missing)
    canonical, event_hash, _ = row
    record = json.loads(canonical)
    cp = lg.checkpoint_for(index)
    receipt = lg.receipt(index, event_hash, cp).to_json()
    receipt["replayed"] = False
    receipt.update(await run_in_threadpool(poster_completion, lg, record))
    receipt.update(receipt_fields_for(w, cp))
    return receipt


@router.get("/v1/events/{index}")
async def get_event(
    request: Request,
    index: Annotated[int, Path(ge=0, le=MAX_INT64), DecimalDigits],
    p: Reader,
    lg: LedgerDep,
    w: WitnessingDep,
) -> dict[str, Any]:
    """The committed record at a log index, with its event hash and receipt.

    A sealed record (in the project's sealed chain) is 404 like a missing index until the
    caller may read sealed events; then the reply adds its ``openings`` and the ``opened``
    record (each opening checked against its commitment).
    """
    if index < 0:
        raise ApiError(422, "invalid_parameter", "index must be >= 0", "index")
    missing = f"index {index} is not in the log"
    try:
        canonical, event_hash = lg.record(index)
    except NotFound:
        raise not_found(missing) from None
    record = json.loads(canonical)
    chain = str(record["project"])
    # An access record belongs to its project, whose readers read it (and whose access
    # chain records that read); so does a sealed record.
    project = base_project(chain.removesuffix(ACCESS_SUFFIX))
    trade_type = authorize_project(lg, p, project, missing)
    extra: dict[str, Any] = {}
    if is_sealed_chain(chain):
        # Before the opening (or for others than sealed readers) a sealed record is not
        # there: 404 exactly as for an index not in the log.
        opened = lg.unsealed(project)
        if not may_read_sealed(lg.catalogue, opened=opened, role=p.role):
            if not opened:
                sealed_read_attempt(request, p, project, trade_type, f"the record at index {index}")
            raise not_found(missing)
        openings = _openings(lg, [record])
        extra = {"openings": openings[index], "opened": _opened(record, openings[index])}
    elif is_sealed_type(lg.catalogue, record["type"]):
        record = redact(record, lg.catalogue, opened=lg.unsealed(project), role=p.role)
    elif _opener(lg, project, p)(record):
        # Confidential fields (a complainant, the committee): their readers get them.
        openings = _openings(lg, [record], lambda _: True)
        extra = {"openings": openings[index], "opened": _opened(record, openings[index])}
    cp = lg.checkpoint_for(index)
    receipt = lg.receipt(index, event_hash, cp).to_json()
    receipt.update(receipt_fields_for(w, cp))
    await record_access(lg, p, project, trade_type, {"what": "record", "index": index})
    return {
        "record": record,
        "event_hash": base64.b64encode(event_hash).decode(),
        "receipt": receipt,
        **extra,
    }


def _opener(lg: Ledger, project: str, p: Principal) -> Callable[[Mapping[str, Any]], bool]:
    """Whether ``p`` may read a committed record of ``project``'s openings now."""
    return record_opener(lg.catalogue, p.role, lambda code: lg.reached(project, code))


def _openings(
    lg: Ledger,
    records: list[dict[str, Any]],
    opens: Callable[[Mapping[str, Any]], bool] | None = None,
) -> dict[int, Any]:
    """index -> openings of the committed records among ``records``: every one of the
    sealed chain (the caller has checked that they may be read), and those others that
    ``opens`` admits (confidential fields; by default only sealed ones)."""
    sealed = [
        r["index"]
        for r in records
        if is_sealed_chain(r["project"]) or ("commitments" in r and opens and opens(r))
    ]
    if not sealed:
        return {}
    found = lg.openings(sealed)
    if len(found) != len(sealed):
        lost = sorted(set(sealed) - set(found))[0]
        raise ApiError(
            503,
            "store_inconsistent",
            f"the openings of the sealed record at index {lost} are missing; run jianzheng audit",
        )
    return {i: json.loads(raw) for i, raw in found.items()}


def _opened(record: dict[str, Any], openings: Any) -> dict[str, Any]:
    """The record as posted; a stored opening that does not match is the store's fault."""
    try:
        return open_record(record, openings)
    except OpeningError as e:
        raise ApiError(
            503,
            "store_inconsistent",
            f"the stored openings of the record at index {record.get('index')} do not match "
            f"its commitments ({e}); run jianzheng audit",
        ) from None


@router.get("/v1/projects/{project}/events")
async def project_events(
    project: ProjectCode,
    p: Reader,
    lg: LedgerDep,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE), DecimalDigits] = 100,
    after: Annotated[int, Query(ge=-1, le=MAX_INT64), DecimalDigits] = -1,
    after_index: Annotated[int | None, Query(ge=-1, le=MAX_INT64), DecimalDigits] = None,
) -> dict[str, Any]:
    """A project's records with seq > ``after`` (the last seq already seen).

    Until the caller may read the project's sealed events, only its process chain is
    listed, and ``sealed_withheld`` says whether sealed events exist (never how many).
    Afterwards the process and sealed chains are listed merged in log order, paged by log
    index: ``after_index`` and ``next_after_index`` (``after`` still names a process
    record to start after), with the sealed records' ``openings`` by index.
    """
    trade_type = authorize_project(lg, p, project, "no such project")
    sealed = lg.has_sealed(project)
    opened = lg.unsealed(project) if sealed else False
    merged = sealed and may_read_sealed(lg.catalogue, opened=opened, role=p.role)
    extra: dict[str, Any] = {}
    if merged:
        start = -1 if after_index is None else after_index
        if after_index is None and after >= 0:
            at = lg.project_records(project, after - 1, 1)
            start = at[0][0] if at and at[0][1] == after else MAX_INT64
        rows = lg.merged_records(project, start, limit)
        records = [orjson.loads(r) for _, _, r in rows]
        openings = _openings(lg, records, _opener(lg, project, p))
        full = len(rows) == limit
        last_chain = records[-1]["project"] if records else ""
        nxt = rows[-1][1] if full and not is_sealed_chain(last_chain) else None
        extra = {
            "openings": {str(i): o for i, o in sorted(openings.items())},
            "next_after_index": rows[-1][0] if full else None,
        }
    else:
        rows = lg.project_records(project, after, limit)
        records = [orjson.loads(r) for _, _, r in rows]
        if any(is_sealed_type(lg.catalogue, r["type"]) for r in records):
            opened = lg.unsealed(project)
            records = [redact(r, lg.catalogue, opened=opened, role=p.role) for r in records]
        nxt = rows[-1][1] if len(rows) == limit else None
        extra = {"sealed_withheld": sealed}
        openings = _openings(lg, records, _opener(lg, project, p))
        if openings:
            extra["openings"] = {str(i): o for i, o in sorted(openings.items())}
    if records:
        await record_access(
            lg, p, project, trade_type, {"what": "records", "after": after, "count": len(records)}
        )
    return {"project": project, "records": records, "next_after": nxt, **extra}


@router.get("/v1/projects/{project}/access")
def project_access(
    project: ProjectCode,
    p: Reader,
    lg: LedgerDep,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE), DecimalDigits] = 100,
    after: Annotated[int, Query(ge=-1, le=MAX_INT64), DecimalDigits] = -1,
) -> dict[str, Any]:
    """Who read this project's evidence, and when: its evidence_accessed records."""
    authorize_project(lg, p, project, "no such project")
    rows = lg.project_records(access_chain(project), after, limit)
    nxt = rows[-1][1] if len(rows) == limit else None
    return {"project": project, "access": [json.loads(r) for _, _, r in rows], "next_after": nxt}
