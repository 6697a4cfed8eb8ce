"""The console's Bundles pages: export with progress, and verify an uploaded bundle.

**Export** starts an export job (:mod:`api.bundle_jobs`) for one project or many: the
projects are checked as ``GET /v1/projects/{p}/bundle`` checks them (out of scope 404,
sealed 409) and written by its code. The job page polls ``/bundles/jobs/{id}/status``
(JSON) with ``static/bundles.js`` and offers the download when done; the download checks
the session's token again and is recorded like the API's bundle download, one
``evidence_accessed`` event per project, before a byte is sent.

**Verify** takes a multipart upload (with the page's CSRF token), bounded by
``JIANZHENG_CONSOLE_VERIFY_MAX_BYTES`` (413 past it), writes it to a temporary directory,
runs the offline verifier there as ``python -m verifier --format json`` in a child process
(a time limit, a memory limit, a bound on its report, one hashing thread; at most
``running`` uploads received or
verified at once per process, the others refused before their body is read),
shows its report (both verdicts, the indicators) and removes the directory: nothing of
the upload is kept.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from api.bundle_jobs import ExportJobs, Job, export_jobs
from api.console import sessions
from api.console.pages import (
    SECURITY_HEADERS,
    Ctx,
    csrf_refused,
    read_form_pairs,
    reader,
    render,
    router,
)
from api.console.views import beijing, size_text
from api.routes.bundles import authorize_export, bundle_sources, export_access
from ledger.access import record_access
from ledger.http import ApiError
from verifier.trust import TrustError, parse_trust

_TRUST_MAX = 64 << 10


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "")
    if not raw:
        return default
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"{name} must be a positive whole number, not {raw!r}")
    return int(raw)


@dataclass
class VerifyLimits:
    """Bounds of "verify a bundle" (environment: ``JIANZHENG_CONSOLE_VERIFY_*``)."""

    #: Largest upload accepted (bytes); the body is refused (413) as soon as it exceeds it.
    max_bytes: int = 256 << 20
    #: Seconds the verifier may run before it is stopped.
    timeout: int = 300
    #: Address space of the verifier's process (bytes).
    memory: int = 4 << 30
    #: Uploads received or verified at once in one serving process (429 past it, before the
    #: body is read).
    running: int = 2
    #: Largest report the verifier may write (bytes): it is read into the serving process,
    #: and a hostile bundle's timeline (every record's payload) can be far larger than the
    #: upload.
    report_bytes: int = 64 << 20

    @classmethod
    def from_env(cls) -> VerifyLimits:
        d = cls()
        return cls(
            max_bytes=_env_int("JIANZHENG_CONSOLE_VERIFY_MAX_BYTES", d.max_bytes),
            timeout=_env_int("JIANZHENG_CONSOLE_VERIFY_TIMEOUT", d.timeout),
            memory=_env_int("JIANZHENG_CONSOLE_VERIFY_MEMORY", d.memory),
            running=_env_int("JIANZHENG_CONSOLE_VERIFY_RUNNING", d.running),
            report_bytes=_env_int("JIANZHENG_CONSOLE_VERIFY_REPORT_BYTES", d.report_bytes),
        )


class _Slots:
    """A counter of verifications running in this process (never waits: 429 when full)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.busy = 0

    @contextlib.contextmanager
    def take(self, most: int) -> Any:
        with self.lock:
            if self.busy >= most:
                raise ApiError(
                    429,
                    "busy",
                    f"{self.busy} bundles are being verified; try again shortly",
                    headers={"Retry-After": "10"},
                )
            self.busy += 1
        try:
            yield
        finally:
            with self.lock:
                self.busy -= 1


def install(app: Any) -> None:
    """The app's export jobs (``<data>/exports``) and verification bounds, from the
    environment (``JIANZHENG_EXPORT_*``, ``JIANZHENG_CONSOLE_VERIFY_*``)."""
    app.state.export_jobs = export_jobs(app.state.ledger.data_dir / "exports")
    app.state.console_verify = VerifyLimits.from_env()
    app.state.console_verify_slots = _Slots()


def jobs_of_app(request: Request) -> ExportJobs:
    jobs: ExportJobs = request.app.state.export_jobs
    return jobs


def verify_limits(request: Request) -> VerifyLimits:
    limits: VerifyLimits = request.app.state.console_verify
    return limits


# --- the Bundles page ----------------------------------------------------------------------


def _job_row(ctx: Ctx, job: Job, jobs: ExportJobs) -> dict[str, Any]:
    st = job.status(jobs.limits)
    return {
        "id": job.id,
        "projects": job.projects,
        "state": job.state,
        "created": beijing(st["created_at"]),
        "progress": progress_text(ctx, st["progress"]),
        "error": job.error,
    }


def progress_text(ctx: Ctx, p: dict[str, int]) -> str:
    values: dict[str, object] = dict(p)
    for k in ("bytes_done", "bytes_total", "zip_bytes"):
        values[k] = size_text(p.get(k, 0)).split(" (")[0]
    return ctx.t("bundles.progress_text", **values)


def _trust_text(request: Request) -> str:
    """This service's keys as a trust file (the reviewer checks them independently)."""
    lg = request.app.state.ledger
    lines = [f"log {lg.info().verifier_key}"]
    w = getattr(request.app.state, "witnessing", None)
    if w is not None:
        policy = w.policy
        lines += [f"witness {v.vkey}" for v in policy.witnesses]
        if policy.witnesses:
            lines.append(f"quorum {policy.quorum}")
    return "\n".join(lines) + "\n"


@router.get("/bundles")
async def bundles_page(request: Request) -> Response:
    ctx, redirect = await reader(request)
    if redirect is not None:
        return redirect
    assert ctx.session is not None
    jobs = jobs_of_app(request)
    mine = await run_in_threadpool(jobs.jobs_of, ctx.session.principal)
    limits = verify_limits(request)
    return render(
        ctx,
        "bundles.html",
        jobs=[_job_row(ctx, j, jobs) for j in mine],
        jobs_per_token=jobs.limits.jobs_per_token,
        lifetime_hours=f"{jobs.limits.lifetime / 3600:g}",
        project=request.query_params.get("project", "")[:120],
        trust_text=_trust_text(request),
        max_upload=size_text(limits.max_bytes).split(" (")[0],
    )


# --- export jobs -----------------------------------------------------------------------------


@router.post("/bundles/export")
async def start_export(request: Request) -> Response:
    """Start an export job: ``project`` (repeatable) or ``projects`` (codes separated by
    spaces, commas or lines), ``files`` ("1" for the attachments' files), ``csrf``."""
    ctx, redirect = await reader(request)
    if redirect is not None:
        return redirect
    assert ctx.session is not None
    jobs = jobs_of_app(request)
    most = jobs.limits.max_projects
    pairs = await read_form_pairs(request, max_fields=most + 10, max_bytes=most * 130 + 4096)
    form = dict(pairs)
    if not sessions.same_secret(form.get("csrf"), ctx.session.csrf):
        return csrf_refused(ctx)
    projects = [v.strip() for k, v in pairs if k == "project" and v.strip()]
    for k, v in pairs:
        if k == "projects":
            projects += v.replace(",", " ").split()
    job = await run_in_threadpool(
        jobs.start,
        ctx.ledger,
        ctx.session.principal,
        projects,
        form.get("files") == "1",
        bundle_sources(request),
    )
    return RedirectResponse(f"/bundles/jobs/{job.id}", status_code=303)


@router.get("/bundles/jobs/{job_id}")
async def job_page(request: Request, job_id: str) -> Response:
    ctx, redirect = await reader(request)
    if redirect is not None:
        return redirect
    assert ctx.session is not None
    jobs = jobs_of_app(request)
    job = await run_in_threadpool(jobs.job_of, ctx.session.principal, job_id)
    st = job.status(jobs.limits)
    return render(
        ctx,
        "bundle_job.html",
        job=job,
        st=st,
        progress=progress_text(ctx, st["progress"]),
        pattern=ctx.t("bundles.progress_text"),
        states={s: ctx.t(f"bundles.state.{s}") for s in ("queued", "running", "done", "failed")},
        expires=beijing(st["expires_at"]) if st["expires_at"] else "",
        size=size_text(st["size"]) if st["size"] is not None else "",
        failed_pattern=ctx.t("bundles.failed", message="{message}"),
    )


@router.get("/bundles/jobs/{job_id}/status")
async def job_status(request: Request, job_id: str) -> Response:
    """The job's state and progress as JSON (polled by the job page)."""
    ctx, redirect = await reader(request)
    if redirect is not None:
        return redirect
    assert ctx.session is not None
    jobs = jobs_of_app(request)
    job = await run_in_threadpool(jobs.job_of, ctx.session.principal, job_id)
    st = job.status(jobs.limits)
    st["download"] = f"/bundles/jobs/{job.id}/download" if job.state == "done" else None
    st["expires_beijing"] = beijing(st["expires_at"]) if st["expires_at"] else None
    st["size_text"] = size_text(st["size"]) if st["size"] is not None else None
    return JSONResponse(st, headers=SECURITY_HEADERS)


@router.get("/bundles/jobs/{job_id}/download")
async def job_download(request: Request, job_id: str) -> Response:
    """The job's zip, after the API's checks for every project in it, each download
    recorded as the API's bundle download is (one ``evidence_accessed`` per project)."""
    ctx, redirect = await reader(request)
    if redirect is not None:
        return redirect
    assert ctx.session is not None
    p, lg = ctx.session.principal, ctx.ledger
    job, path = await run_in_threadpool(jobs_of_app(request).download_path, p, job_id)
    # Every project is checked before any read is recorded: a refusal of the last one must
    # not leave reads recorded of the others, whose bundles were not handed out.
    checked = [
        (b, await run_in_threadpool(authorize_export, lg, p, b["project"]))
        for b in job.bundles or []
    ]
    for b, trade_type in checked:
        payload = export_access(bool(b["files_included"]), int(b["records"]), int(b["checkpoint"]))
        await record_access(lg, p, b["project"], trade_type, payload)
    return FileResponse(
        path,
        media_type="application/zip",
        filename=job.file_name,
        headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"},
    )


@router.post("/bundles/jobs/{job_id}/delete")
async def job_delete(request: Request, job_id: str) -> Response:
    ctx, redirect = await reader(request)
    if redirect is not None:
        return redirect
    assert ctx.session is not None
    form = dict(await read_form_pairs(request))
    if not sessions.same_secret(form.get("csrf"), ctx.session.csrf):
        return csrf_refused(ctx)
    await run_in_threadpool(jobs_of_app(request).delete, ctx.session.principal, job_id)
    return RedirectResponse("/bundles", status_code=303)


# --- verify an uploaded bundle ----------------------------------------------------------------


class _Bounded:
    """The request's ``receive``, refusing (413) a body past ``limit`` bytes as it arrives."""

    def __init__(self, request: Request, limit: int, slack: int) -> None:
        self.receive = request.receive
        self.limit = limit
        self.cutoff = limit + slack
        self.seen = 0

    async def __call__(self) -> Any:
        message = await self.receive()
        if message.get("type") == "http.request":
            self.seen += len(message.get("body", b""))
            if self.seen > self.cutoff:
                raise ApiError(
                    413, "too_large", f"the upload is larger than {self.limit} bytes", "bundle"
                )
        return message


@contextlib.asynccontextmanager
async def _upload(request: Request, limit: int) -> AsyncIterator[dict[str, Any]]:
    """The multipart form (one file, the CSRF token and the trust text), bounded; the
    spooled file is closed (and so deleted) afterwards."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "multipart/form-data":
        raise ApiError(415, "unsupported_media_type", "send the form as the page does")
    slack = 64 << 10  # the other fields and the part headers
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit + slack:
        raise ApiError(413, "too_large", f"the upload is larger than {limit} bytes", "bundle")
    bounded = Request(request.scope, _Bounded(request, limit, slack))
    try:
        form = await bounded.form(max_files=1, max_fields=8, max_part_size=_TRUST_MAX)
    except ApiError:
        raise
    except Exception as e:  # the parser's refusals: malformed multipart, too many parts
        raise ApiError(400, "malformed", f"the upload is not a valid form: {e}") from None
    try:
        yield {k: form.get(k) for k in ("csrf", "trust", "bundle")}
    finally:
        await form.close()


#: Run in the child: its limits first, then ``python -m verifier`` with the arguments after.
#: Its output goes to files, each held to the report's bound (``RLIMIT_FSIZE``: past it the
#: child is stopped by SIGXFSZ), and no limit's signal leaves a core file behind.
_BOOT = (
    "import resource, runpy, sys\n"
    "mem, cpu, fsize = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])\n"
    "resource.setrlimit(resource.RLIMIT_AS, (mem, mem))\n"
    "resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))\n"
    "resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))\n"
    "resource.setrlimit(resource.RLIMIT_CORE, (0, 0))\n"
    "sys.argv = ['python -m verifier', *sys.argv[4:]]\n"
    "runpy.run_module('verifier', run_name='__main__', alter_sys=True)\n"
)
#: What of the verifier's standard error is read (its refusal is on the first lines).
_STDERR_READ = 64 << 10


def run_verifier(bundle: Path, trust: Path | None, limits: VerifyLimits) -> tuple[int, str, str]:
    """``python -m verifier BUNDLE --format json`` in a child process under a memory, a
    CPU and an output limit: (exit code, stdout, stderr); 504 when it runs past the time
    limit (the child is killed), 422 when its report is larger than ``report_bytes``. Its
    output is written to files beside the bundle (the caller's private directory)."""
    fsize = limits.report_bytes + 1  # one byte more than allowed tells "too large"
    args = [sys.executable, "-c", _BOOT, str(limits.memory), str(limits.timeout + 5), str(fsize)]
    args += [str(bundle), "--format", "json", "--workers", "1"]
    args += ["--trust", str(trust)] if trust is not None else ["--no-trust"]
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL", "HOME")}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
    out_path, err_path = bundle.parent / "report.json", bundle.parent / "stderr.txt"
    try:
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            done = subprocess.run(
                args,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                timeout=limits.timeout,
                cwd=bundle.parent,
                env=env,
            )
    except subprocess.TimeoutExpired:
        raise ApiError(
            504, "timeout", f"the verifier ran longer than {limits.timeout} s and was stopped"
        ) from None
    if done.returncode == -signal.SIGXFSZ or out_path.stat().st_size > limits.report_bytes:
        raise ApiError(
            422,
            "report_too_large",
            f"the verifier's report on this file is larger than {limits.report_bytes} bytes; "
            "verify it offline (python -m verifier)",
            "bundle",
        )
    with open(err_path, "rb") as f:
        err_text = f.read(_STDERR_READ).decode("utf-8", "replace")
    return done.returncode, out_path.read_text("utf-8", "replace"), err_text


def _report_or_refusal(code: int, out: str, err: str) -> dict[str, Any]:
    if code in (0, 1, 3):
        try:
            report: dict[str, Any] = json.loads(out)
            return report
        except ValueError:
            pass
    # 2: not a bundle, or unusable input; anything else: the child failed (memory, CPU).
    lines = [
        ln.removeprefix("jianzheng verify: ")
        for ln in err.splitlines()
        if ln.startswith("jianzheng verify: ")
    ]
    if code == 2 and lines:
        raise ApiError(422, "not_a_bundle", lines[0][:500], "bundle")
    raise ApiError(
        422, "not_verifiable", "the verifier could not read this file as a bundle", "bundle"
    )


@router.post("/bundles/verify")
async def verify_upload(request: Request) -> Response:
    ctx, redirect = await reader(request)
    if redirect is not None:
        return redirect
    assert ctx.session is not None
    limits = verify_limits(request)
    slots: _Slots = request.app.state.console_verify_slots
    # The slot covers receiving the upload too: a body is spooled to disk as it arrives,
    # so uploads waiting for a slot would be bounded in size but not in number.
    with slots.take(limits.running):
        return await _verify_upload(ctx, request, limits)


async def _verify_upload(ctx: Ctx, request: Request, limits: VerifyLimits) -> Response:
    assert ctx.session is not None
    async with _upload(request, limits.max_bytes) as form:
        if not isinstance(form["csrf"], str) or not sessions.same_secret(
            form["csrf"], ctx.session.csrf
        ):
            return csrf_refused(ctx)
        upload = form["bundle"]
        if not isinstance(upload, UploadFile) or not upload.filename:
            raise ApiError(422, "invalid_parameter", "choose the bundle (zip) to verify", "bundle")
        if upload.size is not None and upload.size > limits.max_bytes:
            # The body's bound leaves room for the other fields; the file has its own.
            raise ApiError(
                413, "too_large", f"the upload is larger than {limits.max_bytes} bytes", "bundle"
            )
        trust_text = form["trust"] if isinstance(form["trust"], str) else ""
        trust_text = trust_text.replace("\r\n", "\n").strip()
        if trust_text:
            try:
                parse_trust(trust_text.encode())
            except TrustError as e:
                raise ApiError(422, "invalid_parameter", f"trust file: {e}", "trust") from None
        report = await run_in_threadpool(_verify_file, upload, trust_text, limits)
    return render(
        ctx,
        "bundle_report.html",
        r=report,
        file_name=upload.filename[:200],
        verified_at=beijing(report.get("verified_at", "")),
    )


def _verify_file(upload: UploadFile, trust_text: str, limits: VerifyLimits) -> dict[str, Any]:
    """Copy the upload into a private temporary directory, verify it there, remove it."""
    tmp = Path(tempfile.mkdtemp(prefix="jz-verify-"))
    try:
        bundle = tmp / "bundle.zip"
        upload.file.seek(0)
        with open(bundle, "wb") as f:
            shutil.copyfileobj(upload.file, f, 1 << 20)
        trust = None
        if trust_text:
            trust = tmp / "trust.txt"
            trust.write_text(trust_text + "\n")
        code, out, err = run_verifier(bundle, trust, limits)
        return _report_or_refusal(code, out, err)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
