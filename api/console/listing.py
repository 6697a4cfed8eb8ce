"""The project list of the console: search within the token's scope, bounded and paged.

Projects are listed by code. Each page scans at most :data:`MAX_SCAN` projects after the
last one shown; the scope is applied in SQL (to scan only what the token may see) and
again per project through :func:`ledger.access.authorize`, the one authorization check.
A project's date is the date (Beijing time) its first event occurred; its phase is the
catalogue phase of the newest record of its process chain, which never holds a sealed
event of the new form, so nothing about the bids shows.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from sqlalchemy import func, select, tuple_

from ledger.access import Principal, authorize
from ledger.models import ProjectRow, RecordRow
from ledger.service import Ledger

PAGE = 50
MAX_PAGE = 200
MAX_SCAN = 2000
_BATCH = 200
CODE_PREFIX_RE = re.compile(r"[A-Za-z0-9-]{0,64}")


@dataclass(frozen=True)
class ProjectFilter:
    code: str = ""
    trade_type: str = ""
    date_from: str = ""  # YYYY-MM-DD, inclusive
    date_to: str = ""
    phase: str = ""


@dataclass(frozen=True)
class ProjectRowView:
    project: str
    trade_type: str
    registered: str  # YYYY-MM-DD Beijing
    latest_type: str
    phase: str
    events: int


@dataclass(frozen=True)
class ProjectPage:
    rows: list[ProjectRowView]
    next_after: str | None
    scanned_out: bool  # MAX_SCAN projects scanned without filling the page


def list_projects(
    lg: Ledger, p: Principal, f: ProjectFilter, after: str = "", limit: int = PAGE
) -> ProjectPage:
    """One page of the projects ``p`` may see that match ``f``, after code ``after``."""
    from api.console.views import beijing_date

    rows: list[ProjectRowView] = []
    scanned = 0
    cursor = after
    while scanned < MAX_SCAN:
        q = select(ProjectRow.project, ProjectRow.trade_type, ProjectRow.first_index).where(
            ProjectRow.project > cursor
        )
        if p.scope.projects is not None:
            q = q.where(ProjectRow.project.in_(sorted(p.scope.projects)))
        if p.scope.trade_types is not None:
            q = q.where(ProjectRow.trade_type.in_(sorted(p.scope.trade_types)))
        if f.trade_type:
            q = q.where(ProjectRow.trade_type == f.trade_type)
        if f.code:
            # The prefix is [A-Za-z0-9-] only (CODE_PREFIX_RE), so no LIKE wildcard in it.
            q = q.where(ProjectRow.project.like(f.code + "%"))
        q = q.order_by(ProjectRow.project).limit(_BATCH)
        with lg.store.engine.connect() as conn:
            batch = conn.execute(q).all()
            if not batch:
                return ProjectPage(rows, None, False)
            names = [b[0] for b in batch]
            firsts = {
                r[0]: r[1]
                for r in conn.execute(
                    select(RecordRow.project, RecordRow.record).where(
                        RecordRow.idx.in_([b[2] for b in batch])
                    )
                )
            }
            newest = (
                select(RecordRow.project, func.max(RecordRow.seq).label("seq"))
                .where(RecordRow.project.in_(names))
                .group_by(RecordRow.project)
                .subquery()
            )
            latest = {
                r[0]: (r[1], r[2])
                for r in conn.execute(
                    select(RecordRow.project, RecordRow.type, RecordRow.seq).where(
                        tuple_(RecordRow.project, RecordRow.seq).in_(
                            select(newest.c.project, newest.c.seq)
                        )
                    )
                )
            }
        for project, trade_type, _ in batch:
            scanned += 1
            cursor = project
            if authorize(p, project, trade_type) is None:
                continue
            first = json.loads(bytes(firsts[project])) if project in firsts else {}
            date = beijing_date(first.get("occurred_at", ""))
            latest_type, seq = latest.get(project, ("", -1))
            et = lg.catalogue.events.get(latest_type)
            phase = et.phase if et else ""
            if f.date_from and date < f.date_from:
                continue
            if f.date_to and date > f.date_to:
                continue
            if f.phase and phase != f.phase:
                continue
            rows.append(ProjectRowView(project, trade_type, date, latest_type, phase, seq + 1))
            if len(rows) == limit:
                return ProjectPage(rows, project, False)
        if len(batch) < _BATCH:
            return ProjectPage(rows, None, False)
    return ProjectPage(rows, cursor, True)
