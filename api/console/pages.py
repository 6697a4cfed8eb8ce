"""The console's pages: server-rendered HTML over the same reads as the API.

Every page that shows evidence calls the API's own route function (``project_events``,
``get_event``, ``project_access``, ``log_info``) with the signed-in token's principal,
so the one authorization check (:func:`ledger.access.authorize`), the sealing rules and
the access record (``evidence_accessed``) are exactly the API's: out of scope is 404,
sealed stays sealed, every read is recorded. Refusals become pages with the same status.
"""

from __future__ import annotations

import json
import re
import time
import urllib.parse
from collections.abc import Callable, Coroutine
from datetime import UTC, date
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool

from api.auth import Forbidden, require
from api.console import sessions
from api.console.i18n import DEFAULT_LANG, LANGS, MESSAGES, translator
from api.console.listing import (
    CODE_PREFIX_RE,
    MAX_PAGE,
    PAGE,
    ProjectFilter,
    list_projects,
)
from api.console.rows import RowCache
from api.console.views import CONFIDENTIAL_MARK, SEALED_MARK, beijing, event_view, key_facts
from api.deps import principal_from, unauthenticated, unauthenticated_gate, within_rate
from api.errors import as_api_error
from ledger.access import ACCESS_POSTER
from ledger.catalogue import PHASES
from ledger.http import ApiError, read_body
from ledger.service import Ledger
from ledger.store import StoreError
from verifier.errors import JianzhengError

HERE = Path(__file__).resolve().parent
SESSION_COOKIE = "jz_session"
FORM_COOKIE = "jz_form"  # the sign-in form's double-submit CSRF secret
LANG_COOKIE = "jz_lang"
MAX_FORM_BYTES = 16 << 10
#: Records on one timeline page: a whole 2,000-event project at once (bench/bench_console.py).
TIMELINE_PAGE = 2000
ACCESS_PAGE = 200
READERS = ("reviewer", "archivist")
#: 429s that are no rate limit but a bound the page explains (export jobs, verifications).
LIMIT_CODES = ("too_many_jobs", "busy")
_DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _is_date(v: str) -> bool:
    """Whether ``v`` is a calendar date written YYYY-MM-DD (2026-02-30 is not)."""
    if not _DATE_RE.fullmatch(v):
        return False
    try:
        date.fromisoformat(v)
    except ValueError:
        return False
    return True


templates = Jinja2Templates(directory=str(HERE / "templates"))
templates.env.globals["SEALED"] = SEALED_MARK
templates.env.globals["CONFIDENTIAL"] = CONFIDENTIAL_MARK
templates.env.globals["beijing"] = beijing

#: The console's Content-Security-Policy, directive by directive: no script or style from
#: elsewhere (nor inline), no framing, forms only to this site. ``/docs`` and ``/redoc``
#: start from it (api/apidocs.py).
CSP = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self' data:",
    "media-src": "'self'",
    "object-src": "'none'",
    "base-uri": "'none'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
}


def csp_header(policy: dict[str, str]) -> str:
    """A Content-Security-Policy header value from its directives."""
    return "; ".join(f"{name} {value}" for name, value in policy.items())


SECURITY_HEADERS = {
    "Content-Security-Policy": csp_header(CSP),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


class Ctx:
    """What every page needs: the request, its language, and the session if any."""

    def __init__(self, request: Request, session: sessions.Session | None) -> None:
        self.request = request
        self.session = session
        self.lang = page_lang(request)
        self.t = translator(self.lang)

    @property
    def ledger(self) -> Ledger:
        lg: Ledger = self.request.app.state.ledger
        return lg


def page_lang(request: Request) -> str:
    """``?lang=`` first, then the cookie, then Chinese."""
    q = request.query_params.get("lang")
    if q in LANGS:
        return str(q)
    c = request.cookies.get(LANG_COOKIE)
    return str(c) if c in LANGS else DEFAULT_LANG


def secure(request: Request) -> bool:
    """Whether the client reached us over TLS (uvicorn applies the trusted proxy's
    X-Forwarded-Proto to the scheme: ``--forwarded-allow-ips``)."""
    return request.url.scheme == "https"


def render(ctx: Ctx, name: str, status: int = 200, **values: Any) -> HTMLResponse:
    session = ctx.session
    resp = templates.TemplateResponse(
        ctx.request,
        name,
        {
            "t": ctx.t,
            "lang": ctx.lang,
            "session": session,
            "csrf": session.csrf if session else "",
            "path": ctx.request.url.path,
            "lang_url": lang_url(ctx),
            **values,
        },
        status_code=status,
        headers=SECURITY_HEADERS,
    )
    remember_lang(ctx, resp)
    return resp


def lang_url(ctx: Ctx) -> str:
    """This page in the other language."""
    other = "en" if ctx.lang == "zh" else "zh"
    q = [(k, v) for k, v in ctx.request.query_params.multi_items() if k != "lang"]
    return ctx.request.url.path + "?" + urllib.parse.urlencode([*q, ("lang", other)])


def remember_lang(ctx: Ctx, resp: Response) -> None:
    if ctx.request.query_params.get("lang") in LANGS:
        resp.set_cookie(
            LANG_COOKIE,
            ctx.lang,
            max_age=365 * 86400,
            httponly=True,
            samesite="strict",
            secure=secure(ctx.request),
        )


def error_page(ctx: Ctx, e: ApiError) -> HTMLResponse:
    t = ctx.t
    if e.status == 429 and e.code in LIMIT_CODES:
        text = t("error.limit", message=e.message)
    elif e.status in (403, 404, 429):
        text = t(f"error.{e.status}")
    elif e.status in (422, 503):
        text = t(f"error.{e.status}", message=e.message)
    else:
        text = t("error.other", status=e.status, message=e.message)
    resp = render(ctx, "error.html", e.status, message=text, code=e.code)
    for k, v in (e.headers or {}).items():
        resp.headers[k] = v
    return resp


class ConsoleRoute(APIRoute):
    """Answers the console's refusals as HTML pages (the API answers them as JSON)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def answer(request: Request) -> Response:
            start = time.perf_counter()
            resp = await refusals_as_pages(request)
            # The page's time in the service, for operators and bench/bench_console.py.
            resp.headers["Server-Timing"] = f"app;dur={(time.perf_counter() - start) * 1e3:.1f}"
            return resp

        async def refusals_as_pages(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError as e:
                first = e.errors()[0] if e.errors() else {}
                err = ApiError(422, "invalid_parameter", str(first.get("msg", "invalid")))
            except ApiError as e:
                err = e
            except StoreError as e:
                err = ApiError(503, "store_unavailable", str(e))
            except JianzhengError as e:
                try:
                    err = as_api_error(e)
                except TypeError:
                    raise e from None
            return error_page(Ctx(request, getattr(request.state, "session", None)), err)

        return answer


router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)


async def current_session(request: Request) -> sessions.Session | None:
    """The signed-in session of the request, or None. A cookie naming no live session
    counts against the client's budget of requests without a valid token (429 past it),
    as a bad token does in the API."""
    sid = request.cookies.get(SESSION_COOKIE)
    if not sid:
        return None
    unauthenticated_gate(request)
    lg: Ledger = request.app.state.ledger
    s = await run_in_threadpool(sessions.find_session, lg.store, sid, lg.clock)
    if s is None:
        unauthenticated(request)
        return None
    within_rate(request, s.principal)
    request.state.session = s
    return s


def to_sign_in(request: Request, *, expired: bool = False) -> RedirectResponse:
    nxt = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    q = {"next": nxt}
    if expired:
        q["expired"] = "1"
    resp = RedirectResponse("/sign-in?" + urllib.parse.urlencode(q), status_code=303)
    if expired:
        resp.delete_cookie(SESSION_COOKIE, path="/")
    return resp


async def reader(request: Request) -> tuple[Ctx, Response | None]:
    """The page context of a signed-in reader; or the redirect to sign in."""
    s = await current_session(request)
    ctx = Ctx(request, s)
    if s is None:
        return ctx, to_sign_in(request, expired=SESSION_COOKIE in request.cookies)
    try:
        require(s.principal, *READERS)
    except Forbidden as e:
        raise ApiError(403, "forbidden", str(e)) from None
    return ctx, None


def safe_next(value: str | None) -> str:
    """A local path to go to after signing in (never another site)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/projects"
    return value[:2000]


async def read_form(request: Request) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body, bounded (413) and parsed strictly."""
    return dict(await read_form_pairs(request))


async def read_form_pairs(
    request: Request, max_fields: int = 20, max_bytes: int = MAX_FORM_BYTES
) -> list[tuple[str, str]]:
    """The form's fields in order, repeated names kept (a list of projects, say)."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/x-www-form-urlencoded":
        raise ApiError(415, "unsupported_media_type", "send the form as the page does")
    body = await read_body(request, max_bytes)
    try:
        return urllib.parse.parse_qsl(
            body.decode("utf-8"), keep_blank_values=True, max_num_fields=max_fields
        )
    except (UnicodeDecodeError, ValueError):
        raise ApiError(400, "malformed", "the form is not valid") from None


def csrf_refused(ctx: Ctx) -> HTMLResponse:
    return render(ctx, "error.html", 403, message=ctx.t("csrf.refused"), code="csrf")


# --- sign-in and sign-out ---------------------------------------------------------------


@router.get("/")
async def home(request: Request) -> Response:
    s = await current_session(request)
    return RedirectResponse("/projects" if s else "/sign-in", status_code=303)


@router.get("/sign-in")
async def sign_in_page(request: Request) -> Response:
    ctx = Ctx(request, None)
    form_secret = request.cookies.get(FORM_COOKIE)
    if not sessions.well_formed(form_secret):
        form_secret = sessions.new_secret()
    notice = ""
    if request.query_params.get("out"):
        notice = ctx.t("signin.signed_out")
    elif request.query_params.get("expired"):
        notice = ctx.t("signin.expired")
    resp = render(
        ctx,
        "sign_in.html",
        form_csrf=form_secret,
        next=safe_next(request.query_params.get("next")),
        notice=notice,
        failed=False,
    )
    resp.set_cookie(
        FORM_COOKIE,
        str(form_secret),
        max_age=3600,
        path="/",
        httponly=True,
        samesite="strict",
        secure=secure(request),
    )
    return resp


@router.post("/sign-in")
async def sign_in(request: Request) -> Response:
    ctx = Ctx(request, None)
    form = await read_form(request)
    if not sessions.same_secret(form.get("csrf"), request.cookies.get(FORM_COOKIE)):
        return csrf_refused(ctx)
    token = form.get("token", "").strip()
    nxt = safe_next(form.get("next"))
    try:
        p = principal_from(request, f"Bearer {token}")
    except ApiError as e:
        if e.status != 401:
            raise
        return render(
            ctx,
            "sign_in.html",
            401,
            form_csrf=request.cookies.get(FORM_COOKIE),
            next=nxt,
            notice="",
            failed=True,
        )
    lg = ctx.ledger
    sid, s = await run_in_threadpool(sessions.open_session, lg.store, p, lg.clock)
    resp = RedirectResponse(nxt, status_code=303)
    max_age = int((s.expires_at - lg.clock.now().astimezone(UTC)).total_seconds())
    resp.set_cookie(
        SESSION_COOKIE,
        sid,
        max_age=max(1, max_age),
        path="/",
        httponly=True,
        samesite="strict",
        secure=secure(request),
    )
    resp.delete_cookie(FORM_COOKIE, path="/")
    return resp


@router.post("/sign-out")
async def sign_out(request: Request) -> Response:
    s = await current_session(request)
    ctx = Ctx(request, s)
    form = await read_form(request)
    if s is None:
        return RedirectResponse("/sign-in", status_code=303)
    if not sessions.same_secret(form.get("csrf"), s.csrf):
        return csrf_refused(ctx)
    lg = ctx.ledger
    await run_in_threadpool(sessions.close_session, lg.store, request.cookies[SESSION_COOKIE])
    resp = RedirectResponse("/sign-in?out=1", status_code=303)
    resp.delete_cookie(SESSION_COOKIE, path="/")
    return resp


# --- projects ----------------------------------------------------------------------------


def project_filter(request: Request, ledger: Ledger) -> tuple[ProjectFilter, str, int]:
    """The project search of /projects and /archive from the query string: the filter, the
    code to list after, the page size; 422 naming the parameter that is wrong."""
    q = request.query_params
    code = q.get("code", "").strip()
    if not CODE_PREFIX_RE.fullmatch(code):
        raise ApiError(422, "invalid_parameter", "code: letters, digits and '-' only", "code")
    trade_type = q.get("trade_type", "")
    if trade_type and trade_type not in ledger.catalogue.trade_types:
        raise ApiError(422, "invalid_parameter", "trade_type: unknown trade type", "trade_type")
    dates = {}
    for name in ("from", "to"):
        v = q.get(name, "")
        if v and not _is_date(v):
            raise ApiError(422, "invalid_parameter", f"{name}: want a date, YYYY-MM-DD", name)
        dates[name] = v
    phase = q.get("phase", "")
    if phase and phase not in PHASES:
        raise ApiError(422, "invalid_parameter", "phase: unknown phase", "phase")
    after = q.get("after", "")
    if not CODE_PREFIX_RE.fullmatch(after):
        raise ApiError(422, "invalid_parameter", "after: a project code", "after")
    limit = _int_param(request, "limit", PAGE)
    if not 1 <= limit <= MAX_PAGE:
        raise ApiError(422, "invalid_parameter", f"limit: from 1 to {MAX_PAGE}", "limit")
    return ProjectFilter(code, trade_type, dates["from"], dates["to"], phase), after, limit


def filter_query(f: ProjectFilter, limit: int) -> dict[str, str]:
    """The query parameters that repeat the search ``f`` (links to the next and first page)."""
    return {
        k: v
        for k, v in (
            ("code", f.code),
            ("trade_type", f.trade_type),
            ("from", f.date_from),
            ("to", f.date_to),
            ("phase", f.phase),
            ("limit", str(limit) if limit != PAGE else ""),
        )
        if v
    }


@router.get("/projects")
async def projects(request: Request) -> Response:
    ctx, redirect = await reader(request)
    if redirect is not None:
        return redirect
    assert ctx.session is not None
    f, after, limit = project_filter(request, ctx.ledger)
    page = await run_in_threadpool(
        list_projects, ctx.ledger, ctx.session.principal, f, after, limit
    )
    base = filter_query(f, limit)
    next_url = (
        "/projects?" + urllib.parse.urlencode({**base, "after": page.next_after})
        if page.next_after
        else None
    )
    return render(
        ctx,
        "projects.html",
        page=page,
        f=f,
        trade_types=ctx.ledger.catalogue.trade_types,
        phases=[x for x in PHASES if x != "access"],
        next_url=next_url,
        first_url=("/projects?" + urllib.parse.urlencode(base)) if after else None,
        catalogue=ctx.ledger.catalogue,
    )


# --- timeline -----------------------------------------------------------------------------


def _project_code(project: str) -> str:
    from ledger.records import PROJECT_RE

    if not PROJECT_RE.fullmatch(project):
        raise ApiError(404, "not_found", "no such project")
    return project


def _int_param(request: Request, name: str, default: int) -> int:
    v = request.query_params.get(name)
    if v is None or v == "":
        return default
    if not re.fullmatch(r"-?[0-9]{1,18}", v) or int(v) < -1:
        raise ApiError(422, "invalid_parameter", f"{name}: a whole number >= -1", name)
    return int(v)


@router.get("/projects/{project}")
async def timeline(request: Request, project: str) -> Response:
    from api.routes.events import project_events

    ctx, redirect = await reader(request)
    if redirect is not None:
        return redirect
    assert ctx.session is not None
    project = _project_code(project)
    after = _int_param(request, "after", -1)
    after_index = request.query_params.get("after_index")
    lg = ctx.ledger
    reply = await project_events(
        project,
        ctx.session.principal,
        lg,
        limit=TIMELINE_PAGE,
        after=after,
        after_index=_int_param(request, "after_index", -1) if after_index else None,
    )
    records: list[dict[str, Any]] = reply["records"]
    raw_openings = reply.get("openings") or {}
    openings = {int(k): v for k, v in raw_openings.items()}
    cat = lg.catalogue
    cache: RowCache = request.app.state.console_rows
    rows = cache.rows(records, openings, cat, ctx.lang)
    facts = key_facts(records, cat, openings)
    trade_type = lg.project_trade_type(project) or ""
    tt = cat.trade_types.get(trade_type)
    next_url = None
    if reply.get("next_after_index") is not None:
        next_url = f"/projects/{project}?after_index={reply['next_after_index']}"
    elif reply.get("next_after") is not None:
        next_url = f"/projects/{project}?after={reply['next_after']}"
    return render(
        ctx,
        "timeline.html",
        project=project,
        trade_type=tt,
        has_events=bool(records),
        rows=rows,
        facts=facts,
        sealed_withheld=bool(reply.get("sealed_withheld")),
        merged="openings" in reply,
        next_url=next_url,
    )


# --- one event, and its in-browser verification -----------------------------------------------


@router.get("/events/{index}")
async def event_page(request: Request, index: str) -> Response:
    from api.routes.events import get_event

    ctx, redirect = await reader(request)
    if redirect is not None:
        return redirect
    assert ctx.session is not None
    if not re.fullmatch(r"[0-9]{1,18}", index):
        raise ApiError(404, "not_found", f"index {index[:20]} is not in the log")
    lg = ctx.ledger
    reply = await get_event(
        request, int(index), ctx.session.principal, lg, request.app.state.witnessing
    )
    record = reply["record"]
    view = event_view(record, lg.catalogue, reply.get("openings"))
    chain = str(record.get("project", ""))
    project = chain.split("~", 1)[0]
    return render(
        ctx,
        "event.html",
        index=int(index),
        view=view,
        project=project,
        event_hash=reply["event_hash"],
        record_json=json.dumps(record, ensure_ascii=False, indent=2),
        receipt_json=json.dumps(reply["receipt"], ensure_ascii=False, indent=2),
        opened_json=(
            json.dumps(reply["opened"], ensure_ascii=False, indent=2) if "opened" in reply else ""
        ),
        redacted="sealed" in record,
        log_key=lg.info().verifier_key,
        verify_messages={
            k.removeprefix("verify.err."): ctx.t(k) for k in MESSAGES if k.startswith("verify.err.")
        },
    )


# --- access log -------------------------------------------------------------------------------


@router.get("/projects/{project}/access")
async def access_log(request: Request, project: str) -> Response:
    from api.routes.events import project_access

    ctx, redirect = await reader(request)
    if redirect is not None:
        return redirect
    assert ctx.session is not None
    project = _project_code(project)
    after = _int_param(request, "after", -1)
    reply = await run_in_threadpool(
        project_access, project, ctx.session.principal, ctx.ledger, ACCESS_PAGE, after
    )
    rows = []
    for rec in reply["access"]:
        payload = rec.get("payload") or {}
        actor = rec.get("actor") or {}
        what = ", ".join(f"{k}={v}" for k, v in payload.items())
        rows.append(
            {
                "when": beijing(rec.get("recorded_at")),
                "who": actor.get("id", ""),
                "role": actor.get("role", ""),
                "what": what,
                "index": rec.get("index"),
                "poster": ACCESS_POSTER,
            }
        )
    nxt = reply.get("next_after")
    return render(
        ctx,
        "access.html",
        project=project,
        rows=rows,
        next_url=f"/projects/{project}/access?after={nxt}" if nxt is not None else None,
    )


# --- collusion indicators (issue 17) -------------------------------------------------------------


@router.get("/projects/{project}/indicators")
async def indicators_page(request: Request, project: str) -> Response:
    """The API's ``get_indicators`` as a page: each indicator with its article, strength and
    evidence (links to the records), under the notice that it is no verdict. Before the
    opening the page says only that: the same 409 for every project."""
    from api.routes.indicators import get_indicators
    from ledger.access import StillSealed

    ctx, redirect = await reader(request)
    if redirect is not None:
        return redirect
    assert ctx.session is not None
    project = _project_code(project)
    try:
        reply = await get_indicators(request, project, ctx.session.principal, ctx.ledger)
    except StillSealed:
        return render(ctx, "indicators.html", 409, project=project, sealed=True, reply={})
    for ind in reply["indicators"]:
        for e in ind["evidence"]:
            e["shown"] = json.dumps(e["value"], ensure_ascii=False)
    return render(ctx, "indicators.html", project=project, sealed=False, reply=reply)


# --- log status ---------------------------------------------------------------------------------


@router.get("/status")
async def log_status(request: Request) -> Response:
    from api.console.status import log_status_view

    ctx, redirect = await reader(request)
    if redirect is not None:
        return redirect
    view = await run_in_threadpool(
        log_status_view,
        ctx.ledger,
        request.app.state.witnessing,
        request.app.state.monitor_state,
    )
    return render(ctx, "status.html", v=view)
