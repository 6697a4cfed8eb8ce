"""Shared route dependencies: the ledger, the caller's identity and role, bounded bodies.

Route signatures read as types (``p: Poster``, ``lg: LedgerDep``), after the FastAPI
full-stack template's ``deps.py``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BeforeValidator

from api.auth import (
    AuthError,
    Forbidden,
    RateLimiter,
    TokenCheck,
    client_key,
    require,
)
from api.errors import ApiError
from ledger.access import Principal
from ledger.http import read_body
from ledger.records import PROJECT_RE
from ledger.service import Ledger
from ledger.witnessing.view import WitnessingView
from verifier.canonical import CanonicalError, MalformedJSON, parse_strict_json

# Dependencies are `async def` on purpose: FastAPI runs plain `def` dependencies in a worker
# thread, and those hops cost more than the work itself on the append path.


async def get_ledger(request: Request) -> Ledger:
    lg: Ledger = request.app.state.ledger
    return lg


def app_witnessing(request: Request) -> WitnessingView | None:
    """The log side of witnessing the composition root gave the app (None: none runs)."""
    w: WitnessingView | None = request.app.state.witnessing
    return w


async def get_witnessing(request: Request) -> WitnessingView | None:
    return app_witnessing(request)


def _too_many(wait: float, msg: str) -> ApiError:
    retry = str(max(1, math.ceil(wait)))
    return ApiError(429, "rate_limited", msg, headers={"Retry-After": retry})


#: Documentation only: through it every operation whose route checks a token declares the
#: bearer scheme in the OpenAPI document (``components.securitySchemes.bearer`` and the
#: operation's ``security``), so /docs offers "Authorize". It never refuses anything
#: (``auto_error=False``) and its answer is ignored: :func:`principal_from` checks the token.
bearer_scheme = HTTPBearer(
    scheme_name="bearer",
    bearerFormat="jz_ token",
    description=(
        "A token from `jianzheng token create` (or `POST /v1/tokens`), sent as "
        "`Authorization: Bearer <token>`. Its role and scope decide what it may read or post."
    ),
    auto_error=False,
)
BearerDoc = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)]


async def get_principal(request: Request, _documented: BearerDoc = None) -> Principal:
    """The caller, authenticated and within its rate limit (401 / 429 otherwise).

    Requests without a valid token are limited per client address: past the limit they
    get 429 before the database is asked, so nobody without a token can keep it busy
    (issue 10 §3).
    """
    return principal_from(request, request.headers.get("authorization"))


def _client(request: Request) -> str:
    return client_key(request.client.host if request.client else None)


def _no_token_message(failures: RateLimiter) -> str:
    return f"more than {failures.rate:g} requests per second without a valid token"


def unauthenticated_gate(request: Request) -> None:
    """Refuse (429) a client over its budget of requests without a valid token, before
    the database is asked about its credential (a token, or a console session)."""
    failures: RateLimiter = request.app.state.auth_failures
    wait = failures.peek(_client(request))
    if wait > 0:
        raise _too_many(wait, _no_token_message(failures))


def unauthenticated(request: Request) -> None:
    """Spend one request of the client's budget without a valid token (429 past it)."""
    failures: RateLimiter = request.app.state.auth_failures
    wait = failures.check(_client(request))
    if wait > 0:
        raise _too_many(wait, _no_token_message(failures))


def within_rate(request: Request, p: Principal) -> Principal:
    """``p``, unless its token is over its rate limit (429)."""
    limiter: RateLimiter = request.app.state.limiter
    wait = limiter.check(p.token_id)
    if wait > 0:
        raise _too_many(wait, f"more than {limiter.rate:g} requests per second for this token")
    return p


def principal_from(request: Request, authorization: str | None) -> Principal:
    """The principal of an ``Authorization`` value (the API's header, or ``Bearer`` and
    the token typed into the console's sign-in form): one authentication for both."""
    tokens: TokenCheck = request.app.state.tokens
    try:
        p = tokens.authenticate(authorization, lambda: unauthenticated_gate(request))
    except AuthError as e:
        unauthenticated(request)
        raise ApiError(
            401, "unauthorized", str(e), headers={"WWW-Authenticate": "Bearer"}
        ) from None
    return within_rate(request, p)


def not_found(what: str) -> ApiError:
    return ApiError(404, "not_found", what)


def role(*roles: str) -> Callable[[Principal], Awaitable[Principal]]:
    """A dependency admitting ``roles`` (and admin)."""

    async def dep(p: Annotated[Principal, Depends(get_principal)]) -> Principal:
        try:
            require(p, *roles)
        except Forbidden as e:
            raise ApiError(403, "forbidden", str(e)) from None
        return p

    return dep


#: Log positions, sizes and sequence numbers fit a signed 64-bit database column.
MAX_INT64 = 2**63 - 1
_DECIMAL_RE = re.compile(r"-?[0-9]{1,19}")


def _decimal_digits(value: object) -> object:
    """Refuse integers that are not written in decimal digits: pydantic's lax mode reads
    ``0.0`` and ``1e0`` as integers, which the OpenAPI schema (type integer) forbids."""
    if isinstance(value, str) and not _DECIMAL_RE.fullmatch(value):
        raise ValueError("must be a whole number in decimal digits (at most 19)")
    return value


#: Put after ``Query(...)``/``Path(...)`` on every integer parameter (order matters: FastAPI
#: reads the bounds from the first piece of metadata).
DecimalDigits = BeforeValidator(_decimal_digits)

#: A project code in a path. Anything else (a NUL byte, say, which PostgreSQL refuses in
#: text) is a 422 naming ``project`` before it reaches the database (issue 10 §4).
ProjectCode = Annotated[
    str, Path(pattern=f"^{PROJECT_RE.pattern}$", description="project code (event `project`)")
]
#: A token id in a path (16 hex digits; DELETE also takes the token itself, ``jz_`` and
#: base64url). Refused (422) before the database sees it, like :data:`ProjectCode`.
TokenId = Annotated[str, Path(pattern="^[A-Za-z0-9_-]{1,64}$", description="token id")]

LedgerDep = Annotated[Ledger, Depends(get_ledger)]
WitnessingDep = Annotated[WitnessingView | None, Depends(get_witnessing)]
#: The check behind :data:`Poster`, also called directly (api/routes/events.py, PosterRoute).
require_poster = role("platform")
Poster = Annotated[Principal, Depends(require_poster)]
Reader = Annotated[Principal, Depends(role("reviewer", "archivist"))]
Admin = Annotated[Principal, Depends(role("admin"))]


async def read_json(request: Request, limit: int) -> object:
    """The request body parsed as strict JSON, refused past ``limit`` bytes (413)."""
    chunks = await read_body(request, limit)
    if not chunks:
        raise ApiError(400, "malformed", "request body is empty; send a JSON object")
    try:
        return parse_strict_json(chunks)
    except MalformedJSON as e:
        # Only what no JSON parser accepts is malformed (400); the body is parsed once, and
        # never again by a parser without a nesting limit (issue 10 §4).
        raise ApiError(400, "malformed", f"request body is not JSON: {e}") from None
    except CanonicalError as e:
        # Floats, duplicate keys, huge integers, deep nesting: well-formed JSON we refuse.
        raise ApiError(422, "invalid_event", str(e)) from None
