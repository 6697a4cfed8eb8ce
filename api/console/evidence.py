"""The console's evidence page: one file, played, downloaded, one chunk checked, held.

``/objects/{sha256}`` shows what the citing record says of the file (its name) and what
the store says (media type, size, chunk root, locked until, legal hold). The bytes and
chunks come through the API's own route functions (``get_object``, ``get_chunk``) with
the signed-in token's principal, so authorization, sealing and the access record are the
API's. The page's player names a read session (:mod:`api.read_sessions`) issued with the
page, so seeking through a recording is recorded as one read.
"""

from __future__ import annotations

import re
import secrets

from fastapi import Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from api.console import sessions
from api.console.pages import csrf_refused, read_form, reader, render, router
from api.console.views import beijing, size_text
from api.routes.objects import (
    change_legal_hold,
    check_hold_reason,
    get_chunk,
    get_object,
    original_name,
    storage_errors,
)
from ledger.access import HOLD_OBJECT, authorize_object
from ledger.http import ApiError
from storage.service import EvidenceStore

_SHA = re.compile(r"[0-9a-f]{64}")
#: Roles whose pages offer the legal hold form (the API's ``role("reviewer")``).
HOLDERS = ("reviewer", "admin")


def _sha(sha256: str) -> str:
    if not _SHA.fullmatch(sha256):
        raise ApiError(404, "not_found", "no such file")
    return sha256


def _objects(request: Request) -> EvidenceStore:
    objects: EvidenceStore = request.app.state.objects
    return objects


@router.get("/objects/{sha256}")
async def evidence_page(request: Request, sha256: str) -> Response:
    ctx, redirect = await reader(request)
    if redirect is not None:
        return redirect
    assert ctx.session is not None
    sha256 = _sha(sha256)
    lg, p = ctx.ledger, ctx.session.principal
    cite = await run_in_threadpool(authorize_object, lg, p, sha256)
    if cite is None:  # readers see cited files only (READ_OBJECT); never reached
        raise ApiError(404, "not_found", "no such file")
    with storage_errors():
        info = await run_in_threadpool(_objects(request).require, sha256)
    name = await run_in_threadpool(original_name, lg, cite, sha256) or sha256
    media = info.media_type.split(";")[0].strip().lower()
    player = (
        "video" if media.startswith("video/") else "audio" if media.startswith("audio/") else ""
    )
    return render(
        ctx,
        "evidence.html",
        sha256=sha256,
        file_name=name,
        info=info,
        size=size_text(info.size),
        chunk_root=info.to_json()["chunk_root"],
        retain_until=beijing(info.retain_until) if info.retain_until else "",
        project=cite.project,
        player=player,
        # A new read session per page view: the player's Range requests join it.
        read_session=secrets.token_urlsafe(12),
        may_hold=p.role in HOLDERS,
        held=request.query_params.get("held", ""),
    )


@router.get("/objects/{sha256}/content")
async def evidence_content(request: Request, sha256: str) -> Response:
    """The bytes, through the API's route (Range, read session, Content-Disposition)."""
    ctx, redirect = await reader(request)
    if redirect is not None:
        return redirect
    assert ctx.session is not None
    return await get_object(
        _sha(sha256), request, ctx.session.principal, ctx.ledger, _objects(request)
    )


@router.get("/objects/{sha256}/chunks/{index}")
async def evidence_chunk(request: Request, sha256: str, index: str) -> Response:
    """One chunk and its proof, as the API gives it (JSON), for the page's check."""
    ctx, redirect = await reader(request)
    if redirect is not None:
        return redirect
    assert ctx.session is not None
    if not re.fullmatch(r"[0-9]{1,18}", index):
        raise ApiError(422, "invalid_parameter", "the chunk index must be >= 0", "index")
    return await get_chunk(
        _sha(sha256), int(index), ctx.session.principal, ctx.ledger, _objects(request)
    )


@router.post("/objects/{sha256}/legal-hold")
async def evidence_hold(request: Request, sha256: str) -> Response:
    """Set or lift the legal hold, with a reason (recorded as a ledger event first)."""
    ctx, redirect = await reader(request)
    if redirect is not None:
        return redirect
    assert ctx.session is not None
    sha256 = _sha(sha256)
    form = await read_form(request)
    if not sessions.same_secret(form.get("csrf"), ctx.session.csrf):
        return csrf_refused(ctx)
    p, lg = ctx.session.principal, ctx.ledger
    if p.role not in HOLDERS:
        raise ApiError(403, "forbidden", "only a reviewer or an admin places legal holds")
    cite = await run_in_threadpool(authorize_object, lg, p, sha256, HOLD_OBJECT)
    hold = form.get("hold")
    if hold not in ("1", "0"):
        raise ApiError(422, "invalid_parameter", "hold: 1 or 0", "hold")
    reason = check_hold_reason(form.get("reason", "").strip())
    if not reason:
        raise ApiError(422, "invalid_parameter", "give the reason (e.g. the complaint)", "reason")
    await change_legal_hold(lg, _objects(request), p, cite, sha256, hold == "1", reason)
    return RedirectResponse(f"/objects/{sha256}?held={hold}", status_code=303)
