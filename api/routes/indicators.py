"""Collusion indicators over HTTP (issue 17): ``GET /v1/projects/{project}/indicators``.

After the opening only, and only for the sealed readers: the indicators draw on the bids,
so before ``bid_opening_started`` every project in the caller's scope answers the same 409
``sealed`` (whether or not it has bids, colluding or not), from the same two lookups and
before any record is read; a project outside the scope answers 404 like a missing one.
Nothing is computed or stored before the opening; afterwards each read computes afresh from
the committed records and is recorded as an ``evidence_accessed`` event before it is served.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from api.alerting import sealed_read_attempt
from api.deps import LedgerDep, ProjectCode, Reader
from ledger.access import StillSealed, authorize_sealed, record_access
from ledger.indicators import project_indicators

router = APIRouter(tags=["indicators"])


@router.get("/v1/projects/{project}/indicators")
async def get_indicators(
    request: Request, project: ProjectCode, p: Reader, lg: LedgerDep
) -> dict[str, Any]:
    """The project's collusion indicators (招标投标法实施条例 第四十条), each with its id,
    article, strength and evidence (log index, seq, field and value of each record).

    An indicator is a warning for a person to examine, never a verdict (``notice``).
    """
    try:
        trade_type = await run_in_threadpool(authorize_sealed, lg, p, project, "no such project")
    except StillSealed:
        if not await run_in_threadpool(lg.unsealed, project):
            stored = lg.project_trade_type(project) or ""
            sealed_read_attempt(request, p, project, stored, "the collusion indicators")
        raise
    found = await run_in_threadpool(project_indicators, lg, project)
    await record_access(lg, p, project, trade_type, {"what": "indicators"})
    return {"project": project, **found.to_json()}
