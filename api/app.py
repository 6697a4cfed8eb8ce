"""The HTTP API (FastAPI). Paths, fields and status codes are a public contract.

Routes read raw bodies and parse them with the ledger's strict JSON parser, so floats,
duplicate keys and oversized bodies are refused with a clear error before anything else;
the event schema is still published in the OpenAPI document.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from starlette.types import Lifespan

from api import metrics as metrics_routes
from api.alerting import AlertService, AlertSettings
from api.apidocs import install_api_docs
from api.auth import AUTH_FAILURES_PER_SECOND, RateLimiter, TokenCheck
from api.console.install import install_console
from api.errors import ERROR_RESPONSES, install_error_handlers
from api.health import install_health
from api.limits import ServeLimits, StreamSlots
from api.metrics import Exposition
from api.read_sessions import ReadSessions
from api.routes import alerts as alerts_routes
from api.routes import bundles, draws, events, indicators, log, posters, tokens
from api.routes import objects as objects_routes
from api.routes import witnessing as witnessing_routes
from api.schemas import openapi_components
from ledger.auth_epoch import AuthEpoch
from ledger.http import answer_head
from ledger.posters import PosterKeys
from ledger.service import Ledger
from ledger.witnessing.view import WitnessingView
from storage.service import EvidenceStore, open_evidence_store

#: Requests per second per token unless ``jianzheng serve --rate-limit`` says otherwise.
DEFAULT_RATE_LIMIT = 1000.0


def create_app(
    ledger: Ledger,
    *,
    rate_limit: float = DEFAULT_RATE_LIMIT,
    auth_failure_rate: float = AUTH_FAILURES_PER_SECOND,
    objects: EvidenceStore | None = None,
    witnessing: WitnessingView | None = None,
    limits: ServeLimits | None = None,
    lifespan: Lifespan[FastAPI] | None = None,
    monitor_state: Path | None = None,
    alerts: AlertSettings | None = None,
) -> FastAPI:
    """Build the API around an open :class:`Ledger` (and the evidence store, by default
    the one the JIANZHENG_S3_* environment or the data directory describes, with the
    upload slots of ``limits``).

    ``monitor_state`` is the state directory of a ``jianzheng monitor`` of this log, whose
    alarms the console shows (None: none is known).

    ``witnessing`` is the log side of witnessing whose cosignatures and tokens receipts,
    ``GET /v1/log`` and bundles show (None: the log runs without). ``jianzheng serve``
    builds all of it in one place, :func:`api.serving.serving_app`.

    ``alerts`` starts the alert workers (:mod:`api.alerting`) for the app's lifespan:
    detection and webhook delivery. Without it (None) the alert routes still serve what
    the supervision chain holds, and nothing new is detected or delivered by this app.
    """
    limits = limits or ServeLimits()
    service = (
        AlertService(ledger, alerts, witnessing=witnessing, monitor_state=monitor_state)
        if alerts is not None
        else None
    )
    given = lifespan

    @contextlib.asynccontextmanager
    async def with_alerts(app: FastAPI) -> AsyncIterator[None]:
        if service is not None:
            service.start()
        try:
            if given is None:
                yield
            else:
                async with given(app):
                    yield
        finally:
            if service is not None:
                service.close()

    app = FastAPI(
        title="Jianzheng 见证 audit ledger",
        version="1",
        description="Append-only, witnessed audit ledger for public resource trading.",
        lifespan=with_alerts,
        # No OpenTelemetry is set up here, and the built-in hooks read the environment on
        # every request (5 µs of a single append's ~500).
        telemetry={"tracing": False, "metrics": False, "logs": False},
        # FastAPI's own /docs and /redoc load their scripts from a CDN; ours are vendored
        # (api/apidocs.py), so they work on an intranet.
        docs_url=None,
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
    )
    app.state.ledger = ledger
    app.state.witnessing = witnessing
    app.state.monitor_state = monitor_state
    app.state.alerts = service
    app.state.alert_poll = alerts.poll if alerts is not None else 0.5
    app.state.webhook_allow = alerts.webhook_allow if alerts is not None else ()
    app.state.alert_streams = StreamSlots(limits.max_streams, limits.streams_per_token)
    # One authorization epoch per app: read once per request by the token check, and
    # what the poster-key cache compares with (revocations apply at once everywhere).
    epoch = AuthEpoch(ledger.store)
    app.state.tokens = TokenCheck(ledger.store, epoch=epoch)
    app.state.limiter = RateLimiter(rate_limit)
    # Requests without a valid token, per client address (0 disables).
    app.state.auth_failures = RateLimiter(auth_failure_rate)
    app.state.poster_keys = PosterKeys(ledger.store, epoch)
    app.state.read_sessions = ReadSessions()
    app.state.objects = objects or open_evidence_store(
        ledger.data_dir,
        ledger.store.engine,
        max_uploads=limits.max_uploads,
        uploads_per_owner=limits.uploads_per_token,
    )
    install_error_handlers(app)
    # HEAD wherever GET works (tiles, checkpoint, entries, every read): mirrors use it.
    answer_head(app)
    app.include_router(events.router, responses=ERROR_RESPONSES)
    app.include_router(log.router, responses=ERROR_RESPONSES)
    app.include_router(tokens.router, responses=ERROR_RESPONSES)
    app.include_router(posters.router, responses=ERROR_RESPONSES)
    app.include_router(objects_routes.router, responses=ERROR_RESPONSES)
    app.include_router(witnessing_routes.router, responses=ERROR_RESPONSES)
    app.include_router(bundles.router, responses=ERROR_RESPONSES)
    app.include_router(indicators.router, responses=ERROR_RESPONSES)
    app.include_router(alerts_routes.router, responses=ERROR_RESPONSES)
    app.include_router(draws.router, responses=ERROR_RESPONSES)
    # The web console (issue 15): HTML pages at / over the same reads, and their assets.
    install_console(app)
    install_api_docs(app)

    def openapi() -> dict[str, Any]:
        # The posted event is a union of one schema per event type, discriminated on
        # ``type`` and generated from the catalogue, so generated clients check payloads.
        if app.openapi_schema is None:
            doc = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            doc.setdefault("components", {}).setdefault("schemas", {}).update(
                openapi_components(ledger.catalogue)
            )
            app.openapi_schema = doc
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    # For load balancers: database, object store and sequencer (issue 16).
    install_health(app, ledger, app.state.objects)
    app.state.metrics = Exposition(ledger, witnessing)
    app.include_router(metrics_routes.router)

    return app
