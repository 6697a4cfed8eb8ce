"""Expert draws over HTTP (issue 17): ``POST /v1/projects/{project}/draws``.

The platform commits to a draw: the body is a ``draw_committed`` event for this project
(``project`` and ``type`` may be left out) whose ``payload`` has no ``checkpoint_size``:
the ledger fixes it here, :data:`DRAW_LEAD` entries beyond the log's current head, so that
no party chooses the tree head that enters the derivation (docs/formats.md, Expert draws).
The event then goes through the one append path, like ``POST /v1/events``.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from api.deps import LedgerDep, Poster, ProjectCode, app_witnessing, read_json
from api.errors import ApiError
from api.routes.events import MAX_EVENT_BODY, ReceiptsResponse, _append, receipts_json
from verifier.draw import DrawError, parse_pool

router = APIRouter(tags=["draws"])

#: How far beyond the current head the draw's tree head lies: room for the entries appended
#: between reading the head and committing the draw (the rules check that the commitment's
#: own index lies below ``checkpoint_size``).
DRAW_LEAD = 16


@router.post("/v1/projects/{project}/draws", status_code=201)
async def post_draw(
    project: ProjectCode, request: Request, p: Poster, lg: LedgerDep
) -> JSONResponse:
    """Commit to an expert draw (实施条例 第四十六条); the reply is the receipt, with the
    ``checkpoint_size`` the ledger fixed."""
    body = await read_json(request, MAX_EVENT_BODY)
    if not isinstance(body, dict) or not isinstance(body.get("payload"), dict):
        raise ApiError(422, "invalid_event", "the draw must be an event object with a payload")
    if body.setdefault("project", project) != project:
        raise ApiError(422, "invalid_event", "project differs from the path", "project")
    if body.setdefault("type", "draw_committed") != "draw_committed":
        raise ApiError(422, "invalid_event", "a draw is a draw_committed event", "type")
    payload = body["payload"]
    if "checkpoint_size" in payload:
        raise ApiError(
            422,
            "invalid_event",
            "checkpoint_size is fixed by the ledger, not by the poster",
            "payload.checkpoint_size",
        )
    try:
        parse_pool(payload.get("pool"))
    except DrawError as e:
        raise ApiError(422, "invalid_event", str(e), "payload.pool") from None
    head = await run_in_threadpool(lg.head)
    payload["checkpoint_size"] = head.size + DRAW_LEAD
    [a] = await _append(request, p, lg, [body], batch=False, dry=False)
    [j] = receipts_json(lg, [a], app_witnessing(request))
    j["checkpoint_size"] = payload["checkpoint_size"]
    return ReceiptsResponse(j, status_code=200 if a.replayed else 201)
