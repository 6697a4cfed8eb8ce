"""Evidence bundles over HTTP (contract: ``GET /v1/projects/{project}/bundle``).

The bundle is planned first (records read, checkpoint chosen, project head signed), so an
unknown project or a missing provider is refused with the usual JSON error. A project
outside the token's scope answers 404, like any other read. Sealed bids are never handed
out early: while the caller may not read a project's sealed events (before the opening,
or for roles that are not sealed readers) the export is refused, because a bundle with
records withheld could not be verified. The export is recorded as an ``evidence_accessed``
event before a byte is sent; then the zip streams, files read from the object store in
1 MiB blocks.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from api.deps import LedgerDep, ProjectCode, Reader, app_witnessing
from api.errors import ApiError
from ledger.access import authorize_project, record_access
from ledger.bundle import (
    BundleExportError,
    BundlePlan,
    BundleSources,
    BundleTooLarge,
    ProjectNotFound,
    iter_bundle,
    plan_bundle,
    sources_for,
)
from ledger.sealing import is_sealed_type, may_read_sealed, record_opener
from ledger.service import Ledger
from storage.service import EvidenceStore

log = logging.getLogger("jianzheng.api.bundles")

router = APIRouter(tags=["bundles"])


def bundle_sources(request: Request) -> BundleSources:
    """The app's witnessing and evidence store, as the exporter's providers."""
    objects: EvidenceStore = request.app.state.objects
    return sources_for(app_witnessing(request), objects.open_object)


@router.get(
    "/v1/projects/{project}/bundle",
    responses={200: {"content": {"application/zip": {}}, "description": "the evidence bundle"}},
)
async def project_bundle(
    project: ProjectCode,
    request: Request,
    p: Reader,
    lg: LedgerDep,
    files: Annotated[bool, Query(description="include the attachments' files")] = False,
) -> StreamingResponse:
    """The project's evidence bundle (zip; format in docs/bundle-format.md).

    Verify it offline with ``jianzheng verify BUNDLE --trust FILE``.
    """
    missing = "no such project"
    # Scope first, by the project's stored trade type: a project outside the token's scope
    # must look exactly like a missing one, whatever else would go wrong with it.
    trade_type = await run_in_threadpool(authorize_project, lg, p, project, missing)
    # A project with sealed events (its sealed chain) is exported only to those who may
    # read them: a bundle without them would not be the project, and one with them would
    # hand out bids early. The refusal says sealed events exist, never how many.
    if await run_in_threadpool(lg.has_sealed, project):
        await _require_unsealed(lg, project, p.role)
    sources = bundle_sources(request)
    try:
        # Confidential fields (a complainant, the committee before the result) go out
        # opened only to their readers; everyone else's bundle carries the commitments.
        opens = record_opener(lg.catalogue, p.role, lambda code: lg.reached(project, code))
        plan = await run_in_threadpool(
            plan_bundle, lg, project, sources, with_files=files, opens=opens
        )
    except ProjectNotFound:
        raise ApiError(404, "not_found", missing) from None
    except BundleTooLarge as e:
        raise ApiError(413, "too_large", str(e)) from None
    except BundleExportError as e:
        raise ApiError(503, "bundle_unavailable", str(e), headers={"Retry-After": "5"}) from None
    if any(is_sealed_type(lg.catalogue, t) for t in plan.event_types):
        # Records of the old form: sealed events in the process chain.
        await _require_unsealed(lg, project, p.role)
    await record_access(
        lg,
        p,
        project,
        trade_type,
        {
            "what": "bundle",
            "files": files,
            "records": len(plan.records),
            "checkpoint": plan.checkpoint.size,
        },
    )
    return StreamingResponse(
        _stream(plan, sources),
        media_type="application/zip",
        headers={
            "Content-Disposition": f'attachment; filename="{project}.evidence.zip"',
            "Cache-Control": "no-store",
        },
    )


async def _require_unsealed(lg: Ledger, project: str, role: str) -> None:
    opened = await run_in_threadpool(lg.unsealed, project)
    if not may_read_sealed(lg.catalogue, opened=opened, role=role):
        raise ApiError(
            409,
            "sealed",
            f"project {project} holds sealed bids, which only "
            f"{' and '.join(lg.catalogue.sealed_readers)} may read, and only after "
            f"{lg.catalogue.sealed_until}; its bundle can be exported then",
        )


def _stream(plan: BundlePlan, sources: BundleSources) -> Iterator[bytes]:
    """The zip pieces; a failure mid-stream cuts the response, which no zip reader accepts."""
    try:
        yield from iter_bundle(plan, sources)
    except BundleExportError:
        log.exception("bundle of project %s aborted", plan.project)
        raise
