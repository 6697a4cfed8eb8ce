"""Evidence-bundle export jobs: one or many projects' bundles written in the server, with
progress, kept in the data directory for a bounded time (issue 15, the console's Bundles
and Archivists pages).

A job belongs to the token that started it and names a list of projects. Every project is
checked when the job is created, exactly as ``GET /v1/projects/{p}/bundle`` checks it
(:func:`api.routes.bundles.authorize_export`: out of scope 404, sealed 409), and planned and
written by the same code (:func:`~api.routes.bundles.plan_export`,
:func:`ledger.bundle.iter_bundle`). One project gives that project's bundle as the API
serves it; several give one zip holding one bundle per project (``bundles/<p>.evidence.zip``)
and ``export.json`` (docs/bundle-format.md, "Exports of many projects").

Nothing is handed out by the job itself: the download (:func:`ExportJobs.download_path`
after the caller's own checks) is what the API's bundle route is, a read recorded as one
``evidence_accessed`` event per project (:func:`api.routes.bundles.export_access`).

State lives in files, ``<data>/exports/<id>/job.json`` beside the zip, so that every worker
process of ``jianzheng serve --workers N`` answers for every job; the process running a job
is named by its pid and start time (a restarted container gives its new server the same pid),
so a job whose process died shows as failed. Bounds
(:class:`ExportLimits`): jobs kept per token and in all, projects per job, running at once
per process, how long a job may run, how long its zip is kept, and the disk space left free
in the data directory (which holds the ledger too: a full disk would stop its appends).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import re
import secrets
import shutil
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from api.errors import ApiLayerError
from api.routes.bundles import authorize_export, plan_export
from ledger.access import Principal
from ledger.bundle import BundleExportError, BundleSources, ExportProgress, iter_bundle
from ledger.http import ApiError
from ledger.records import PROJECT_RE
from ledger.service import Ledger

log = logging.getLogger("jianzheng.api.bundle_jobs")

JOB_FILE = "job.json"
#: The member of a many-project export that lists its bundles.
EXPORT_INDEX = "export.json"
EXPORT_FORMAT = "jianzheng-export"
EXPORT_VERSION = 1
BUNDLES_PREFIX = "bundles/"
_ID_RE = re.compile(r"[0-9a-f]{32}")
#: How often a running job writes its progress to job.json (seconds).
PROGRESS_EVERY = 0.25
#: Bytes a running job writes between two looks at the disk's free space (at least).
FREE_CHECK_BYTES = 16 << 20


def _env_number(name: str, default: float) -> float:
    raw = os.environ.get(name, "")
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name} must be a number, not {raw!r}") from None
    if value <= 0:
        raise ValueError(f"{name} must be positive")
    return value


@dataclass(frozen=True)
class ExportLimits:
    """The bounds of export jobs (environment: ``JIANZHENG_EXPORT_*``, see docs/operations.md)."""

    #: Jobs one token may hold at once (queued, running, or finished and not yet expired).
    jobs_per_token: int = 4
    #: Jobs in the data directory at once, all tokens together.
    max_jobs: int = 64
    #: Projects in one job.
    max_projects: int = 500
    #: Jobs writing at once in one process (the others wait their turn, queued).
    running: int = 2
    #: Seconds a job may take from its creation; past it, it fails.
    timeout: float = 3600.0
    #: Seconds a finished job (its zip, or its error) is kept.
    lifetime: float = 86400.0
    #: Bytes kept free on the data directory's disk: a job that would leave less (by its
    #: files' size, before it starts) or that gets there while writing fails.
    min_free: int = 1 << 30

    @classmethod
    def from_env(cls) -> ExportLimits:
        d = cls()
        return cls(
            jobs_per_token=int(_env_number("JIANZHENG_EXPORT_JOBS_PER_TOKEN", d.jobs_per_token)),
            max_jobs=int(_env_number("JIANZHENG_EXPORT_MAX_JOBS", d.max_jobs)),
            max_projects=int(_env_number("JIANZHENG_EXPORT_MAX_PROJECTS", d.max_projects)),
            running=int(_env_number("JIANZHENG_EXPORT_RUNNING", d.running)),
            timeout=_env_number("JIANZHENG_EXPORT_TIMEOUT", d.timeout),
            lifetime=_env_number("JIANZHENG_EXPORT_LIFETIME", d.lifetime),
            min_free=int(_env_number("JIANZHENG_EXPORT_MIN_FREE", d.min_free)),
        )


class JobFailed(RuntimeError, ApiLayerError):
    """The job could not finish; the message says why (shown to its owner)."""


def _now() -> float:
    return time.time()


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def process_start(pid: int) -> int | None:
    """When process ``pid`` started (clock ticks since boot, ``/proc/<pid>/stat`` field 22),
    or None where there is no /proc to ask."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        # The command name (field 2) is in parentheses and may hold spaces or ")".
        return int(stat[stat.rindex(")") + 2 :].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def _alive(pid: int, started: int | None = None) -> bool:
    """Does the process that wrote a job still run: pid ``pid``, started at ``started``
    (another process with the same pid, after a restart, is not it)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return started is None or process_start(pid) in (None, started)


@dataclass
class Job:
    """One export job as ``job.json`` holds it."""

    id: str
    token_id: str
    projects: list[str]
    files: bool
    state: str
    created_at: float
    updated_at: float
    pid: int
    finished_at: float | None = None
    #: When the process ``pid`` started (:func:`process_start`), None where unknown.
    pid_started: int | None = None
    error: str = ""
    file_name: str = ""
    #: Per project, once written: {"project", "trade_type", "records", "checkpoint", ...}.
    bundles: list[dict[str, Any]] | None = None
    progress: dict[str, int] | None = None

    @property
    def active(self) -> bool:
        return self.state in ("queued", "running")

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "token_id": self.token_id,
            "projects": self.projects,
            "files": self.files,
            "state": self.state,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "pid": self.pid,
            "pid_started": self.pid_started,
            "finished_at": self.finished_at,
            "error": self.error,
            "file_name": self.file_name,
            "bundles": self.bundles or [],
            "progress": self.progress or {},
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Job:
        return cls(
            id=str(d["id"]),
            token_id=str(d["token_id"]),
            projects=[str(p) for p in d["projects"]],
            files=bool(d["files"]),
            state=str(d["state"]),
            created_at=float(d["created_at"]),
            updated_at=float(d["updated_at"]),
            pid=int(d["pid"]),
            pid_started=None if d.get("pid_started") is None else int(d["pid_started"]),
            finished_at=None if d.get("finished_at") is None else float(d["finished_at"]),
            error=str(d.get("error", "")),
            file_name=str(d.get("file_name", "")),
            bundles=list(d.get("bundles") or []),
            progress=dict(d.get("progress") or {}),
        )

    def status(self, limits: ExportLimits) -> dict[str, Any]:
        """What the status endpoint answers (no token, no path)."""
        expires = self.finished_at + limits.lifetime if self.finished_at is not None else None
        p = self.progress or {}
        return {
            "id": self.id,
            "state": self.state,
            "projects": self.projects,
            "files": self.files,
            "created_at": _iso(self.created_at),
            "finished_at": _iso(self.finished_at),
            "expires_at": _iso(expires),
            "error": self.error or None,
            "progress": {k: int(p.get(k, 0)) for k in PROGRESS_KEYS},
            "size": int(p.get("zip_bytes", 0)) if self.state == "done" else None,
        }


#: The progress counts of a job, summed over its projects.
PROGRESS_KEYS = (
    "projects_done",
    "projects_total",
    "records_done",
    "records_total",
    "files_done",
    "files_total",
    "bytes_done",
    "bytes_total",
    "zip_bytes",
)


class ExportJobs:
    """The export jobs of one data directory, as seen from one serving process."""

    def __init__(self, root: Path, limits: ExportLimits | None = None) -> None:
        self.root = root
        self.limits = limits or ExportLimits()
        #: Free bytes on the disk of ``root`` now (an attribute so a test can stand in for
        #: a disk filling up).
        self.free_bytes: Callable[[], int] = lambda: shutil.disk_usage(self.root).free
        self._running = threading.BoundedSemaphore(max(1, self.limits.running))
        self._lock = threading.Lock()

    # --- files -------------------------------------------------------------------------

    def _dir(self, job_id: str) -> Path:
        return self.root / job_id

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Across threads and processes: counting jobs and creating one is one step."""
        self.root.mkdir(parents=True, exist_ok=True)
        with self._lock, open(self.root / ".lock", "a+b") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def _write(self, job: Job) -> None:
        d = self._dir(job.id)
        tmp = d / f".{JOB_FILE}.{threading.get_ident()}.tmp"
        tmp.write_text(json.dumps(job.to_json(), ensure_ascii=False))
        os.replace(tmp, d / JOB_FILE)

    def _read(self, job_id: str) -> Job | None:
        if not _ID_RE.fullmatch(job_id):
            return None
        try:
            raw = (self._dir(job_id) / JOB_FILE).read_text()
            job = Job.from_json(json.loads(raw))
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return self._settled(job)

    def _settled(self, job: Job) -> Job:
        """A job whose process died, or that ran past its time, as the failure it is.

        Its end is a fixed moment, the last time its process wrote it or its deadline
        (never the time of reading, or it would never expire, its place and partial zip
        held for good)."""
        if not job.active:
            return job
        deadline = job.created_at + self.limits.timeout
        if not _alive(job.pid, job.pid_started):
            why = "the server process running the export stopped; start it again"
            ended = min(job.updated_at, deadline)
        elif _now() > deadline + 5:
            why = f"the export took longer than {self.limits.timeout:.0f} s and was stopped"
            ended = deadline
        else:
            return job
        job.state, job.error, job.finished_at = "failed", why, job.finished_at or ended
        return job

    def _expired(self, job: Job, now: float) -> bool:
        return job.finished_at is not None and now > job.finished_at + self.limits.lifetime

    def _all(self) -> list[Job]:
        """Every unexpired job; expired ones (and leftovers without a job file) are removed."""
        if not self.root.is_dir():
            return []
        now = _now()
        jobs: list[Job] = []
        # Bounded: at most max_jobs are ever created, plus what is being removed.
        for entry in sorted(self.root.iterdir())[: 4 * self.limits.max_jobs + 16]:
            if not _ID_RE.fullmatch(entry.name):
                continue
            job = self._read(entry.name)
            if job is None:
                with contextlib.suppress(OSError):  # removed meanwhile by another worker
                    if now - entry.stat().st_mtime > 60:  # a job being created has its file
                        shutil.rmtree(entry, ignore_errors=True)
                continue
            if self._expired(job, now):
                shutil.rmtree(entry, ignore_errors=True)
                continue
            jobs.append(job)
        return jobs

    # --- the owner's view -----------------------------------------------------------------

    def jobs_of(self, p: Principal) -> list[Job]:
        """The token's unexpired jobs, newest first (bounded by ``jobs_per_token``)."""
        with self._locked():
            mine = [j for j in self._all() if j.token_id == p.token_id]
        return sorted(mine, key=lambda j: j.created_at, reverse=True)

    def job_of(self, p: Principal, job_id: str) -> Job:
        """The job if it is the token's, else 404 (exactly as a job that does not exist)."""
        job = self._read(job_id)
        if job is None or job.token_id != p.token_id or self._expired(job, _now()):
            raise ApiError(404, "not_found", "no such export job (or it has expired)")
        return job

    def delete(self, p: Principal, job_id: str) -> None:
        """Remove a finished job of the token (and its zip), freeing its place."""
        job = self.job_of(p, job_id)
        if job.active:
            raise ApiError(409, "running", "the export is still running; wait for it to end")
        with self._locked():
            shutil.rmtree(self._dir(job.id), ignore_errors=True)

    def download_path(self, p: Principal, job_id: str) -> tuple[Job, Path]:
        """The finished job's zip; 404 for another token's job, 409 while not done."""
        job = self.job_of(p, job_id)
        if job.state != "done":
            raise ApiError(409, "not_ready", f"the export is {job.state}, not done")
        path = self._dir(job.id) / job.file_name
        if not path.is_file():
            raise ApiError(404, "not_found", "the export's file is gone; start it again")
        return job, path

    # --- starting one ---------------------------------------------------------------------

    def start(
        self, lg: Ledger, p: Principal, projects: list[str], files: bool, sources: BundleSources
    ) -> Job:
        """Check every project as the API's bundle route does, then queue the job.

        Refusals: 422 for no project, too many or a malformed code; 404 for a project out
        of scope (or without records); 409 ``sealed``; 429 when the token holds
        ``jobs_per_token`` jobs or the directory ``max_jobs``. Runs in a worker thread.
        """
        wanted = list(dict.fromkeys(projects))
        if not wanted:
            raise ApiError(422, "invalid_parameter", "name at least one project", "projects")
        if len(wanted) > self.limits.max_projects:
            raise ApiError(
                422,
                "invalid_parameter",
                f"at most {self.limits.max_projects} projects in one export",
                "projects",
            )
        for code in wanted:
            if not PROJECT_RE.fullmatch(code):
                raise ApiError(404, "not_found", f"no such project: {code[:64]}")
            try:
                authorize_export(lg, p, code)
            except ApiError as e:
                if e.status == 404:
                    raise ApiError(404, "not_found", f"no such project: {code}") from None
                raise
        with self._locked():
            jobs = self._all()
            mine = [j for j in jobs if j.token_id == p.token_id]
            if len(mine) >= self.limits.jobs_per_token:
                raise ApiError(
                    429,
                    "too_many_jobs",
                    f"this token already holds {len(mine)} export jobs (at most "
                    f"{self.limits.jobs_per_token}); delete a finished one or wait until "
                    "one expires",
                )
            if len(jobs) >= self.limits.max_jobs:
                raise ApiError(
                    429,
                    "too_many_jobs",
                    f"the server holds {len(jobs)} export jobs (at most "
                    f"{self.limits.max_jobs}); try again later",
                    headers={"Retry-After": "60"},
                )
            now = _now()
            job = Job(
                id=secrets.token_hex(16),
                token_id=p.token_id,
                projects=wanted,
                files=files,
                state="queued",
                created_at=now,
                updated_at=now,
                pid=os.getpid(),
                pid_started=process_start(os.getpid()),
                progress={"projects_total": len(wanted)},
            )
            self._dir(job.id).mkdir()
            self._write(job)
        threading.Thread(
            target=self._run, args=(job, lg, p, sources), name=f"export-{job.id[:8]}", daemon=True
        ).start()
        return job

    # --- running one -----------------------------------------------------------------------

    def _run(self, job: Job, lg: Ledger, p: Principal, sources: BundleSources) -> None:
        deadline = job.created_at + self.limits.timeout
        if not self._running.acquire(timeout=max(0.0, deadline - _now())):
            self._finish(job, f"the export waited its turn past {self.limits.timeout:.0f} s")
            return
        try:
            job.state = "running"
            self._write(job)
            self._export(job, lg, p, sources, deadline)
        except (JobFailed, BundleExportError) as e:
            self._finish(job, str(e))
        except ApiError as e:
            self._finish(job, e.message)
        except Exception as e:  # the job must end in a state its owner can read
            log.exception("export job %s failed", job.id)
            self._finish(job, f"the export failed: {type(e).__name__}")
        finally:
            self._running.release()

    def _finish(self, job: Job, error: str = "") -> None:
        job.state = "failed" if error else "done"
        job.error = error
        job.finished_at = job.updated_at = _now()
        if error:
            for leftover in self._dir(job.id).glob("*.zip*"):
                leftover.unlink(missing_ok=True)
        self._write(job)

    def _export(
        self, job: Job, lg: Ledger, p: Principal, sources: BundleSources, deadline: float
    ) -> None:
        totals = dict.fromkeys(PROGRESS_KEYS, 0)
        totals["projects_total"] = len(job.projects)
        plans = []
        for code in job.projects:
            # The same checks again: the token's scope or a sealed state may have changed.
            trade_type = authorize_export(lg, p, code)
            plan = plan_export(lg, p, code, sources, job.files)
            records, files, nbytes = ExportProgress.totals(plan)
            totals["records_total"] += records
            totals["files_total"] += files
            totals["bytes_total"] += nbytes
            plans.append((trade_type, plan))
            self._check_time(deadline)
        job.progress = dict(totals)
        self._write(job)
        self._check_space(totals["bytes_total"])
        single = len(plans) == 1
        name = f"{job.projects[0]}.evidence.zip" if single else f"export-{job.id[:8]}.zip"
        tmp = self._dir(job.id) / (name + ".part")
        done = dict.fromkeys(("records_done", "files_done", "bytes_done", "zip_bytes"), 0)
        last = 0.0
        space_at = 0
        bundles: list[dict[str, Any]] = []

        def tick(pr: ExportProgress, written: int, force: bool = False) -> None:
            nonlocal last, space_at
            self._check_time(deadline)
            if written - space_at >= FREE_CHECK_BYTES:
                space_at = written
                self._check_space(0)
            now = _now()
            if force or now - last >= PROGRESS_EVERY:
                last = now
                prog = dict(totals)
                prog["records_done"] = done["records_done"] + pr.records_done
                prog["files_done"] = done["files_done"] + pr.files_done
                prog["bytes_done"] = done["bytes_done"] + pr.file_bytes_done
                prog["zip_bytes"] = written
                prog["projects_done"] = len(bundles)
                job.progress, job.updated_at = prog, now
                self._write(job)

        with open(tmp, "wb") as out, contextlib.ExitStack() as closing:
            outer = None if single else zipfile.ZipFile(out, "w", zipfile.ZIP_STORED)
            if outer is not None:
                # A job stopped midway closes its zip while the file is open (else the zip
                # would, once collected, write to a closed file); the part is removed.
                closing.callback(_close_quietly, outer)
            for trade_type, plan in plans:
                pr = ExportProgress()
                h = hashlib.sha256()
                member = f"{BUNDLES_PREFIX}{plan.project}.evidence.zip"
                sink: Any = out if outer is None else outer.open(member, "w", force_zip64=True)
                with contextlib.ExitStack() as stack:
                    if outer is not None:
                        stack.enter_context(sink)
                    for piece in iter_bundle(plan, sources, pr):
                        sink.write(piece)
                        h.update(piece)
                        tick(pr, out.tell())
                bundles.append(
                    {
                        "project": plan.project,
                        "trade_type": trade_type,
                        "file": member if outer is not None else name,
                        "sha256": h.hexdigest(),
                        "size": pr.zip_bytes,
                        "records": len(plan.records),
                        "checkpoint": plan.checkpoint.size,
                        "files_included": plan.with_files,
                    }
                )
                done["records_done"] += pr.records_done
                done["files_done"] += pr.files_done
                done["bytes_done"] += pr.file_bytes_done
            if outer is not None:
                index = {
                    "format": EXPORT_FORMAT,
                    "version": EXPORT_VERSION,
                    "exported_at": _iso(_now()),
                    "bundles": [
                        {k: b[k] for k in ("project", "file", "sha256", "size", "records")}
                        for b in bundles
                    ],
                }
                outer.writestr(
                    EXPORT_INDEX, json.dumps(index, ensure_ascii=False, sort_keys=True) + "\n"
                )
                outer.close()
            out.flush()
            os.fsync(out.fileno())
            size = out.tell()
        os.replace(tmp, self._dir(job.id) / name)
        job.bundles, job.file_name = bundles, name
        tick(ExportProgress(), size, force=True)
        self._finish(job)

    def _check_time(self, deadline: float) -> None:
        if _now() > deadline:
            raise JobFailed(f"the export took longer than {self.limits.timeout:.0f} s; stopped")

    def _check_space(self, needed: int) -> None:
        """Fail the job rather than leave less than ``min_free`` bytes on the disk of the
        data directory (the ledger's own), counting ``needed`` more bytes to be written."""
        free = self.free_bytes()
        if free - needed < self.limits.min_free:
            more = f", the files alone take {needed}" if needed else ""
            raise JobFailed(
                f"not enough disk space for the export: {free} bytes free{more}, and "
                f"{self.limits.min_free} are kept free for the ledger; stopped"
            )


def _close_quietly(zf: zipfile.ZipFile) -> None:
    with contextlib.suppress(Exception):
        zf.close()


def export_jobs(root: Path, limits: ExportLimits | None = None) -> ExportJobs:
    """The jobs of ``<data>/exports`` (``limits`` from the environment by default)."""
    return ExportJobs(root, limits or ExportLimits.from_env())
