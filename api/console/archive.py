"""The console's archivist pages: projects by date range and trade type, with their files
and until when each file is locked.

``/archive`` lists the projects the signed-in token may see (:func:`list_projects`, the
same bounded, paged search as ``/projects``, scope applied through
:func:`ledger.access.authorize`), each with its event count, phase and the first
:data:`FILES_SHOWN` evidence files it cites, and a checkbox: the ticked projects go to one
export job of the Bundles pages (``POST /bundles/export``), whose page shows its progress
and offers one download; ``/archive/projects/{project}`` pages through
all of one project's files. Each file shows its media type, size, the date its lock ends
(the COMPLIANCE retain-until date in MinIO, or the retention the service enforces on the
local store, both recorded in the database's ``objects`` table) and whether a legal hold
is on, and links to its evidence page (``/objects/{sha256}``), where holds are placed and
lifted with a reason.

Which files a project shows is the object read rule of :func:`ledger.access.object_allowed_in`:
a sealed bid file before the opening and a confidential file (a complaint's letter) to
anyone but its readers are left out, as if the project did not cite them. These pages
show what the object store records of a file, not its bytes nor its record, so they are
not recorded as reads (``evidence_accessed``); opening a file, its record or a bundle is.
"""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from api.console.bundles import jobs_of_app
from api.console.listing import ProjectPage, list_projects
from api.console.pages import (
    _project_code,
    filter_query,
    project_filter,
    reader,
    render,
    router,
)
from api.console.views import beijing, size_text
from api.routes.objects import original_name, storage_errors
from ledger.access import Principal, authorize_project, project_objects_visible
from ledger.catalogue import PHASES
from ledger.http import ApiError
from ledger.service import Ledger
from storage.service import EvidenceStore

#: Files shown under each project of the list; the project's own page shows them all.
FILES_SHOWN = 5
#: Files on one page of a project's own file list.
FILES_PAGE = 100
_SHA = re.compile(r"[0-9a-f]{0,64}")


@dataclass(frozen=True)
class FileView:
    """One evidence file as the archive pages show it."""

    sha256: str
    name: str
    media_type: str
    size: str
    locked_until: str  # Beijing time, or "" when the store records no retention
    legal_hold: bool


@dataclass(frozen=True)
class FilePage:
    files: list[FileView]
    next_after: str | None


def project_files(
    lg: Ledger, objects: EvidenceStore, p: Principal, project: str, after: str, limit: int
) -> FilePage:
    """A page of the files ``project`` cites that ``p`` may read, with their locks."""
    stored = lg.project_trade_type(project)
    cites, nxt = project_objects_visible(lg, p, project, stored, after, limit)
    with storage_errors():
        infos = objects.infos(list(cites))
    files = []
    for sha, cite in cites.items():
        info = infos.get(sha)
        if info is None:  # cited but not (or no longer) recorded by the store
            continue
        # The name the project's first citing record gives it, as on the evidence page.
        name = original_name(lg, cite, sha)
        files.append(
            FileView(
                sha,
                name or "",
                info.media_type,
                size_text(info.size),
                beijing(info.retain_until) if info.retain_until else "",
                info.legal_hold,
            )
        )
    return FilePage(files, nxt)


def _objects(request: Request) -> EvidenceStore:
    objects: EvidenceStore = request.app.state.objects
    return objects


@dataclass(frozen=True)
class ArchiveRow:
    project: str
    trade_type: str
    registered: str
    latest_type: str
    phase: str
    events: int
    files: FilePage


def archive_rows(
    lg: Ledger, objects: EvidenceStore, p: Principal, page: ProjectPage
) -> list[ArchiveRow]:
    return [
        ArchiveRow(
            r.project,
            r.trade_type,
            r.registered,
            r.latest_type,
            r.phase,
            r.events,
            project_files(lg, objects, p, r.project, "", FILES_SHOWN),
        )
        for r in page.rows
    ]


@router.get("/archive")
async def archive(request: Request) -> Response:
    """Projects by date range and trade type, with their files and locks."""
    ctx, redirect = await reader(request)
    if redirect is not None:
        return redirect
    assert ctx.session is not None
    lg, p = ctx.ledger, ctx.session.principal
    f, after, limit = project_filter(request, lg)
    page = await run_in_threadpool(list_projects, lg, p, f, after, limit)
    rows = await run_in_threadpool(archive_rows, lg, _objects(request), p, page)
    base = filter_query(f, limit)
    return render(
        ctx,
        "archive.html",
        rows=rows,
        page=page,
        f=f,
        trade_types=lg.catalogue.trade_types,
        phases=[x for x in PHASES if x != "access"],
        catalogue=lg.catalogue,
        files_shown=FILES_SHOWN,
        next_url=(
            "/archive?" + urllib.parse.urlencode({**base, "after": page.next_after})
            if page.next_after
            else None
        ),
        first_url=("/archive?" + urllib.parse.urlencode(base)) if after else None,
        **export_values(request),
    )


def export_values(request: Request) -> dict[str, Any]:
    """What the page's export form needs: it posts the ticked projects (``project``, one
    field each) to the Bundles pages' ``/bundles/export``, which makes them one export job
    (:class:`api.bundle_jobs.ExportJobs`, the one implementation), checked project by
    project as the API's bundle route checks them (out of scope: 404)."""
    return {"max_export": jobs_of_app(request).limits.max_projects}


@router.get("/archive/projects/{project}")
async def archive_project(request: Request, project: str) -> Response:
    """All the files of one project, a page at a time, with their locks."""
    ctx, redirect = await reader(request)
    if redirect is not None:
        return redirect
    assert ctx.session is not None
    lg, p = ctx.ledger, ctx.session.principal
    project = _project_code(project)
    await run_in_threadpool(authorize_project, lg, p, project, "no such project")
    after = request.query_params.get("after", "")
    if not _SHA.fullmatch(after):
        raise ApiError(422, "invalid_parameter", "after: a SHA-256 in hex", "after")
    files = await run_in_threadpool(
        project_files, lg, _objects(request), p, project, after, FILES_PAGE
    )
    return render(
        ctx,
        "archive_project.html",
        project=project,
        files=files,
        next_url=(
            f"/archive/projects/{project}?after={files.next_after}" if files.next_after else None
        ),
    )
