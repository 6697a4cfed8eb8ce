"""An archived project's files are kept as long as its archive says (档案法实施条例 第四十条;
DA/T 103-2024; 政府采购法 第四十二条: procurement files at least fifteen years).

Every file is locked when it is stored, for the service's retention period
(``JIANZHENG_RETENTION``, 15 years by default). When a project records
``archive_package_created``, the lock of every file its records cite is lengthened to the
archive's ``retention_until`` where that is later: to the end of that day (24:00) in China
Standard Time, the time of the law. A lock is never shortened: an earlier date changes
nothing (and S3 Object Lock in COMPLIANCE mode, which MinIO enforces, could not shorten it
anyway). Applying it again is harmless, so a poster whose archive event was committed while
the object store was down replays the event, and the locks are lengthened then.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from ledger.clock import rfc3339
from ledger.service import Ledger
from storage.service import EvidenceStore
from verifier.rules.days import CST

ARCHIVE_EVENT = "archive_package_created"
#: Files locked per page of the project's citations.
PAGE = 500
#: Archive events of one project read at most (a project archives once, or a few times).
MAX_ARCHIVES = 1000


@dataclass(frozen=True)
class Retained:
    """What applying a project's archive retention did."""

    until: datetime
    objects: int
    extended: int

    def to_json(self) -> dict[str, object]:
        return {"until": rfc3339(self.until), "objects": self.objects, "extended": self.extended}


def end_of_day(day: date) -> datetime:
    """24:00 of ``day`` in China Standard Time (民法典 第二百零三条: a day ends at 24:00)."""
    return datetime.combine(day + timedelta(days=1), time(0), CST)


def archive_until(lg: Ledger, project: str) -> datetime | None:
    """The latest ``retention_until`` of the project's archive events, as an instant; None
    when it records none (a malformed date cannot be committed: the catalogue types it)."""
    rows = lg.project_records(project, -1, MAX_ARCHIVES, ARCHIVE_EVENT)
    days = [
        date.fromisoformat(str(json.loads(raw)["payload"]["retention_until"])) for _, _, raw in rows
    ]
    return end_of_day(max(days)) if days else None


def retain_archive(lg: Ledger, objects: EvidenceStore, project: str) -> Retained | None:
    """Lengthen the lock of every file the project cites to its archive's retention date.

    Raises the store's errors (StorageUnavailable) when the backend cannot be reached;
    whatever was lengthened before stays lengthened, and a retry finishes the rest.
    """
    until = archive_until(lg, project)
    if until is None:
        return None
    count = extended = 0
    after = ""
    while True:
        with lg.store.reader() as conn:
            page = lg.store.project_objects(conn, project, after, PAGE)
        for sha256 in page:
            count += 1
            if objects.present(sha256) is None:
                continue  # cited, but not held by this store (nothing to lock)
            extended += objects.extend_retention(sha256, until)
        if len(page) < PAGE:
            return Retained(until, count, extended)
        after = page[-1]
