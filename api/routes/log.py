"""Public log state, proofs, the event catalogue and C2SP tlog-tiles."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import PlainTextResponse, Response

from api.deps import MAX_INT64, DecimalDigits, LedgerDep, Reader, WitnessingDep
from api.errors import ApiError
from api.schemas import EXTENSIONS_SCHEMA, JSON_SCHEMA_DIALECT, catalogue_entry
from ledger.catalogue import Catalogue, UnknownEventType
from ledger.publish import CHECKPOINT_TYPE
from ledger.service import NotFound
from ledger.tiles import TILE_WIDTH, parse_tile_path
from ledger.witnessing.view import log_fields
from verifier.b64 import encode_b64

router = APIRouter()
IMMUTABLE = {"Cache-Control": "public, max-age=31536000, immutable"}


def _proof_hashes(prove: Callable[[int, int], list[bytes]], a: int, b: int) -> list[str]:
    """The proof's hashes in base64; a size or index the log cannot prove is a 404."""
    try:
        hashes = prove(a, b)
    except NotFound as e:
        raise ApiError(404, "not_found", str(e)) from None
    return [encode_b64(h) for h in hashes]


@router.get("/v1/proofs/inclusion", tags=["proofs"])
def proof_inclusion(
    _: Reader,
    lg: LedgerDep,
    index: Annotated[int, Query(ge=0, le=MAX_INT64), DecimalDigits],
    tree_size: Annotated[int, Query(ge=1, le=MAX_INT64), DecimalDigits],
) -> dict[str, Any]:
    """RFC 9162 §2.1.3 inclusion proof of ``index`` in the tree of ``tree_size``."""
    hashes = _proof_hashes(lg.inclusion_proof, index, tree_size)
    return {"index": index, "tree_size": tree_size, "hashes": hashes}


@router.get("/v1/proofs/consistency", tags=["proofs"])
def proof_consistency(
    _: Reader,
    lg: LedgerDep,
    first: Annotated[int, Query(ge=1, le=MAX_INT64), DecimalDigits],
    second: Annotated[int, Query(ge=1, le=MAX_INT64), DecimalDigits],
) -> dict[str, Any]:
    """RFC 9162 §2.1.4 consistency proof from tree size ``first`` to ``second``."""
    hashes = _proof_hashes(lg.consistency_proof, first, second)
    return {"first": first, "second": second, "hashes": hashes}


@router.get("/v1/log", tags=["log"])
def log_info(lg: LedgerDep, w: WitnessingDep) -> dict[str, Any]:
    """Public: origin, verifier key, the newest signed checkpoint, and its witnessing.

    ``witnessed_size`` is the newest size cosigned by the k-of-n witness policy
    (``witness_quorum`` of ``witnesses``); ``witnessed_checkpoint`` is that checkpoint.
    """
    i = lg.info()
    return {
        "origin": i.origin,
        "verifier_key": i.verifier_key,
        "size": i.size,
        "root": encode_b64(i.root),
        "checkpoint": i.checkpoint,
        **log_fields(w),
    }


@functools.cache
def _catalogue_json(catalogue: Catalogue) -> dict[str, Any]:
    return {
        "version": catalogue.version,
        "json_schema_dialect": JSON_SCHEMA_DIALECT,
        "extensions": EXTENSIONS_SCHEMA["description"],
        "events": [catalogue_entry(catalogue, e) for e in catalogue],
    }


@router.get("/v1/catalogue", tags=["log"])
def catalogue(lg: LedgerDep) -> dict[str, Any]:
    """Public: the event types the ledger accepts, per trade type, each with its payload
    fields (type, required, constraints, meaning in Chinese and English), an example
    payload and the JSON Schema (2020-12) of the event."""
    return _catalogue_json(lg.catalogue)


@router.get("/v1/catalogue/{type}", tags=["log"])
def catalogue_type(
    type: Annotated[str, Path(min_length=1, max_length=64)],
    lg: LedgerDep,
) -> dict[str, Any]:
    """Public: one event type with its fields, example payload and JSON Schema."""
    cat = lg.catalogue
    try:
        cat.get(type)
    except UnknownEventType as e:
        hint = f"; did you mean {', '.join(e.suggestions)}?" if e.suggestions else ""
        zh = f"；是否应为 {'、'.join(e.suggestions)}？" if e.suggestions else ""
        raise ApiError(
            404,
            "not_found",
            f"unknown event type {type[:64]!r}{hint} (GET /v1/catalogue lists them)",
            "type",
            message_zh=f"未知事件类型 {type[:64]!r}{zh}（见 GET /v1/catalogue）",
        ) from None
    return {"version": cat.version, **catalogue_entry(cat, cat.get(type))}


@router.get("/log/checkpoint", tags=["tiles"], response_class=PlainTextResponse)
def checkpoint(lg: LedgerDep, w: WitnessingDep, request: Request) -> Response:
    """C2SP tlog-tiles checkpoint: the newest signed checkpoint (changes; never cached).

    It carries every witness cosignature gathered for it so far (C2SP tlog-witness).
    With ``serve --log-from-bucket`` it is the bucket's (published after every tile it
    covers, cosigned), unless the bucket holds none, does not answer, or holds one older
    than a checkpoint this process already served: then the database's head.
    """
    bucket = getattr(request.app.state, "tile_bucket", None)
    if bucket is not None and (got := bucket.checkpoint()) is not None:
        return Response(got, media_type=CHECKPOINT_TYPE, headers={"Cache-Control": "no-cache"})
    i = lg.info()
    if not i.checkpoint:
        raise ApiError(404, "not_found", "the log is empty: no checkpoint yet")
    note = w.cosigned_checkpoint(i.size) if w is not None else i.checkpoint
    if bucket is not None:
        bucket.served(i.size)
    return Response(note, media_type=CHECKPOINT_TYPE, headers={"Cache-Control": "no-cache"})


@router.get(
    "/log/tile/{path:path}",
    tags=["tiles"],
    response_class=Response,
    responses={200: {"content": {"application/octet-stream": {}}, "description": "tile bytes"}},
)
def tile(path: str, lg: LedgerDep, request: Request) -> Response:
    """C2SP tlog-tiles: /log/tile/<L>/<N>[.p/<W>] and /log/tile/entries/<N>[.p/<W>]."""
    try:
        where = parse_tile_path(path)
    except ValueError as e:
        raise ApiError(404, "not_found", str(e)) from None
    bucket = getattr(request.app.state, "tile_bucket", None)
    if bucket is not None:  # serve --log-from-bucket: published tiles never change
        got = bucket.get(where.level, where.index, where.width or TILE_WIDTH)
        if got is not None:
            return Response(got, media_type="application/octet-stream", headers=IMMUTABLE)
    try:
        if where.level is None:
            data = lg.entry_bundle(where.index, where.width)
        else:
            data = lg.tile(where.level, where.index, where.width)
    except NotFound as e:
        raise ApiError(404, "not_found", str(e)) from None
    return Response(data, media_type="application/octet-stream", headers=IMMUTABLE)
