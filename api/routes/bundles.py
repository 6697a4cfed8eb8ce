"""Evidence bundles over HTTP (contract: ``GET /v1/projects/{project}/bundle``).

The bundle is planned first (records read, checkpoint chosen, project head signed), so an
unknown project or a missing provider is refused with the usual JSON error. A project
outside the token's scope answers 404, like any other read. Sealed bids are never handed
out early: while the caller may not read a project's sealed events (before the opening,
or for roles that are not sealed readers) the export is refused, because a bundle with
records withheld could not be verified. The export is recorded as an ``evidence_accessed``
event before a byte is sent; then the zip streams, files read from the object store in
1 MiB blocks.

The checks and the plan are :func:`authorize_export` and :func:`plan_export`, and the
access record's payload is :func:`export_access`: the console's export jobs
(:mod:`api.bundle_jobs`) use the same three, so a bundle is the same however it is asked for.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from api.deps import LedgerDep, ProjectCode, Reader, app_witnessing
from api.errors import ApiError
from ledger.access import Principal, authorize_project, record_access
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

MISSING = "no such project"


def bundle_sources(request: Request) -> BundleSources:
    """The app's witnessing and evidence store, as the exporter's providers."""
    objects: EvidenceStore = request.app.state.objects
    return sources_for(app_witnessing(request), objects.open_object)


def authorize_export(lg: Ledger, p: Principal, project: str) -> str:
    """The project's trade type if ``p`` may export its bundle: 404 out of scope (exactly
    as a missing project), 409 ``sealed`` while its sealed bids may not be read."""
    # Scope first, by the project's stored trade type: a project outside the token's scope
    # must look exactly like a missing one, whatever else would go wrong with it.
    trade_type = authorize_project(lg, p, project, MISSING)
    # A project with sealed events (its sealed chain) is exported only to those who may
    # read them: a bundle without them would not be the project, and one with them would
    # hand out bids early. The refusal says sealed events exist, never how many.
    if lg.has_sealed(project):
        _require_unsealed(lg, project, p.role)
    return trade_type


def plan_export(
    lg: Ledger, p: Principal, project: str, sources: BundleSources, files: bool
) -> BundlePlan:
    """The bundle's plan for ``p`` (after :func:`authorize_export`), refusals as API errors."""
    try:
        # Confidential fields (a complainant, the committee before the result) go out
        # opened only to their readers; everyone else's bundle carries the commitments.
        opens = record_opener(lg.catalogue, p.role, lambda code: lg.reached(project, code))
        plan = plan_bundle(lg, project, sources, with_files=files, opens=opens)
    except ProjectNotFound:
        raise ApiError(404, "not_found", MISSING) from None
    except BundleTooLarge as e:
        raise ApiError(413, "too_large", str(e)) from None
    except BundleExportError as e:
        raise ApiError(503, "bundle_unavailable", str(e), headers={"Retry-After": "5"}) from None
    if any(is_sealed_type(lg.catalogue, t) for t in plan.event_types):
        # Records of the old form: sealed events in the process chain.
        _require_unsealed(lg, project, p.role)
    return plan


def export_access(files: bool, records: int, checkpoint: int) -> dict[str, Any]:
    """The ``evidence_accessed`` payload of handing out one project's bundle."""
    return {"what": "bundle", "files": files, "records": records, "checkpoint": checkpoint}


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
    trade_type = await run_in_threadpool(authorize_export, lg, p, project)
    sources = bundle_sources(request)
    plan = await run_in_threadpool(plan_export, lg, p, project, sources, files)
    await record_access(
        lg, p, project, trade_type, export_access(files, len(plan.records), plan.checkpoint.size)
    )
    return StreamingResponse(
        _stream(plan, sources),
        media_type="application/zip",
        headers={
            "Content-Disposition": f'attachment; filename="{project}.evidence.zip"',
            "Cache-Control": "no-store",
        },
    )


def _require_unsealed(lg: Ledger, project: str, role: str) -> None:
    if not may_read_sealed(lg.catalogue, opened=lg.unsealed(project), role=role):
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
