"""The HTTP API (FastAPI). Paths, fields and status codes are a public contract.

Routes read raw bodies and parse them with the ledger's strict JSON parser, so floats,
duplicate keys and oversized bodies are refused with a clear error before anything else;
the event schema is still published in the OpenAPI document.
"""

from __future__ import annotations

from fastapi import FastAPI

from api.auth import RateLimiter, TokenCheck
from api.errors import install_error_handlers
from api.routes import events, log, tokens
from ledger.service import Ledger

#: Requests per second per token unless ``jianzheng serve --rate-limit`` says otherwise.
DEFAULT_RATE_LIMIT = 1000.0


def create_app(ledger: Ledger, *, rate_limit: float = DEFAULT_RATE_LIMIT) -> FastAPI:
    """Build the API around an open :class:`Ledger`."""
    app = FastAPI(
        title="Jianzheng 见证 audit ledger",
        version="1",
        description="Append-only, witnessed audit ledger for public resource trading.",
    )
    app.state.ledger = ledger
    app.state.tokens = TokenCheck(ledger.store)
    app.state.limiter = RateLimiter(rate_limit)
    install_error_handlers(app)
    app.include_router(events.router)
    app.include_router(log.router)
    app.include_router(tokens.router)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
