"""Live alerts over HTTP (issue 17): the stream, a page of alerts, and webhooks.

Supervisors are the ``reviewer`` role (the supervising department, 行政监督部门) and admin.
Every alert a token gets is one its scope covers (:func:`ledger.alerts.visible_alerts`,
through :func:`ledger.access.authorize`); an alert's id is its ``seq`` in the supervision
chain, so ``Last-Event-ID`` (or ``?after=``) resumes a stream exactly where it stopped.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Header, Path, Query, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from api.deps import MAX_INT64, DecimalDigits, LedgerDep, read_json, role
from api.errors import ApiError
from api.limits import StreamSlots
from ledger.access import Principal
from ledger.alerts import (
    MAX_PAGE,
    AlertError,
    TooManySubscriptions,
    create_subscription,
    delete_subscription,
    last_alert_id,
    list_subscriptions,
    visible_alerts,
)
from ledger.service import Ledger

router = APIRouter(tags=["alerts"])
Supervisor = Annotated[Principal, Depends(role("reviewer"))]
#: A stream ends after this long (the client reconnects with Last-Event-ID), so that no
#: connection is held for ever; a comment every KEEP_ALIVE seconds shows it is alive.
STREAM_SECONDS = 3600.0
KEEP_ALIVE = 15.0
#: Seconds between two reads of the chain while a stream waits (unless the app says).
STREAM_POLL = 0.5
MAX_WEBHOOK_BODY = 4096


def _slots(request: Request) -> StreamSlots:
    slots: StreamSlots = request.app.state.alert_streams
    return slots


def _page(lg: Ledger, p: Principal, after: int, limit: int) -> tuple[list[dict[str, Any]], int]:
    found, upto = visible_alerts(lg, p, after, limit)
    return [a.to_json(lg) for a in found], upto


def _start(lg: Ledger, last_event_id: str | None, after: int | None) -> int:
    if last_event_id is not None:
        v = last_event_id.strip()
        if not v.lstrip("-").isdigit() or len(v) > 19 or int(v) < -1:
            raise ApiError(
                422, "invalid_parameter", "Last-Event-ID must be an alert id", "Last-Event-ID"
            )
        return int(v)
    if after is not None:
        return after
    return last_alert_id(lg)


@router.get(
    "/v1/alerts/stream",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "Server-Sent Events, one per alert",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        }
    },
)
async def alert_stream(
    request: Request,
    p: Supervisor,
    lg: LedgerDep,
    after: Annotated[int | None, Query(ge=-1, le=MAX_INT64), DecimalDigits] = None,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> StreamingResponse:
    """Server-Sent Events: each alert the token's scope covers, as ``event: alert`` with
    ``id:`` its alert id and ``data:`` the alert (with its record and receipt).

    Starts after ``Last-Event-ID`` (a reconnecting client), else after ``?after=`` (-1:
    from the first alert), else with the alerts raised from now on. Ends after an hour;
    reconnect with the last id seen. 429 past the stream limits of ``serve``.
    """
    cursor = await run_in_threadpool(_start, lg, last_event_id, after)
    slots = _slots(request)
    refused = slots.take(p.token_id)
    if refused is not None:
        raise ApiError(429, "rate_limited", refused, headers={"Retry-After": "5"})
    poll: float = getattr(request.app.state, "alert_poll", STREAM_POLL)

    async def events() -> AsyncIterator[bytes]:
        nonlocal cursor
        try:
            yield b"retry: 2000\n\n"
            end = time.monotonic() + STREAM_SECONDS
            quiet_since = time.monotonic()
            while time.monotonic() < end:
                if await request.is_disconnected():
                    return
                found, upto = await run_in_threadpool(_page, lg, p, cursor, MAX_PAGE)
                for a in found:
                    data = orjson.dumps(a)
                    yield b"id: " + a["id"].encode() + b"\nevent: alert\ndata: " + data + b"\n\n"
                cursor = upto
                if found:
                    quiet_since = time.monotonic()
                    continue
                if time.monotonic() - quiet_since > KEEP_ALIVE:
                    quiet_since = time.monotonic()
                    yield b": keep-alive\n\n"
                await asyncio.sleep(poll)
        finally:
            slots.give_back(p.token_id)

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


@router.get("/v1/alerts")
async def alert_page(
    p: Supervisor,
    lg: LedgerDep,
    after: Annotated[int, Query(ge=-1, le=MAX_INT64), DecimalDigits] = -1,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE), DecimalDigits] = MAX_PAGE,
) -> dict[str, Any]:
    """Alerts after ``after`` that the token's scope covers, at most ``limit``; ``next``
    is the ``after`` of the next page (alerts outside the scope are passed over)."""
    found, upto = await run_in_threadpool(_page, lg, p, after, limit)
    return {"alerts": found, "next": upto}


@router.post("/v1/alerts/webhooks", status_code=201)
async def add_webhook(request: Request, p: Supervisor, lg: LedgerDep) -> dict[str, Any]:
    """Subscribe a webhook: ``{"url": "https://..."}``, whose host resolves to public
    addresses only (or to networks ``serve --alert-webhook-allow`` names; 422 otherwise,
    naming the address and why). The reply's ``secret`` (shown once)
    keys the HMAC-SHA256 signature of every delivery. It gets the alerts raised from now
    on that the token's scope covers, at least once, in order, retried with backoff."""
    body = await read_json(request, MAX_WEBHOOK_BODY)
    if not isinstance(body, dict) or set(body) != {"url"} or not isinstance(body["url"], str):
        raise ApiError(422, "invalid_parameter", 'send {"url": "https://..."}', "url")
    try:
        return await run_in_threadpool(
            lambda: create_subscription(
                lg, p.token_id, body["url"], allow=request.app.state.webhook_allow
            )
        )
    except TooManySubscriptions as e:
        raise ApiError(409, "too_many", e.message, e.field) from None
    except AlertError as e:
        raise ApiError(422, "invalid_parameter", e.message, e.field) from None


@router.get("/v1/alerts/webhooks")
async def get_webhooks(p: Supervisor, lg: LedgerDep) -> dict[str, Any]:
    """The token's webhooks (admin: everyone's) and how far delivery got; no secrets."""
    owner = None if p.role == "admin" else p.token_id
    return {"webhooks": await run_in_threadpool(list_subscriptions, lg.store, owner)}


@router.delete("/v1/alerts/webhooks/{sub_id}", status_code=204)
async def remove_webhook(
    sub_id: Annotated[str, Path(pattern="^[0-9a-f]{16}$")], p: Supervisor, lg: LedgerDep
) -> None:
    """Delete one of the token's webhooks (admin: anyone's); 404 for any other."""
    owner = None if p.role == "admin" else p.token_id
    if not await run_in_threadpool(delete_subscription, lg.store, sub_id, owner):
        raise ApiError(404, "not_found", f"no webhook {sub_id}")
