"""Bearer tokens with roles: created by the CLI, stored only as SHA-256 hashes.

A token is ``jz_`` followed by 32 random bytes in base64url. The database keeps its
SHA-256, so a leaked database gives no usable token, and lookup by hash compares no
secret bytes in Python (the comparison that matters happens on digests of the token).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert, select

from ledger.clock import Clock, SystemClock, rfc3339
from ledger.models import TokenRow
from ledger.store import Store

ROLES = ("platform", "reviewer", "archivist", "admin")
PREFIX = "jz_"


class AuthError(Exception):
    """No valid token (401)."""


class Forbidden(Exception):
    """A valid token whose role may not do this (403)."""


@dataclass(frozen=True)
class Principal:
    """Who is calling: the token's id (used as the poster identity) and role."""

    token_id: str
    role: str


def _hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def create_token(
    store: Store,
    role: str,
    label: str = "",
    clock: Clock | None = None,
    expires_at: datetime | None = None,
) -> tuple[str, str]:
    """Create a token; returns (token id, token). The token itself is never stored."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}: use one of {', '.join(ROLES)}")
    token = PREFIX + base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")
    token_id = secrets.token_hex(8)
    now = rfc3339((clock or SystemClock()).now())
    with store.engine.begin() as conn:
        conn.execute(
            insert(TokenRow).values(
                id=token_id,
                token_hash=_hash(token),
                role=role,
                label=label[:128],
                created_at=now,
                expires_at=rfc3339(expires_at) if expires_at else None,
            )
        )
    return token_id, token


class TokenCheck:
    """Resolves bearer tokens to principals."""

    #: Seconds a looked-up token is trusted before the database is asked again; bounds how
    #: long a revoked token keeps working.
    CACHE_SECONDS = 5.0
    CACHE_LIMIT = 10_000

    def __init__(self, store: Store, clock: Clock | None = None) -> None:
        self.store = store
        self.clock = clock or SystemClock()
        self._cache: dict[bytes, tuple[float, Principal]] = {}

    def authenticate(self, authorization: str | None) -> Principal:
        if not authorization:
            raise AuthError("missing bearer token: send 'Authorization: Bearer <token>'")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.startswith(PREFIX) or len(token) > 200:
            raise AuthError("malformed Authorization header: want 'Bearer jz_...'")
        digest = _hash(token.strip())
        hit = self._cache.get(digest)
        if hit is not None and time.monotonic() - hit[0] < self.CACHE_SECONDS:
            return hit[1]
        with self.store.engine.connect() as conn:
            row = conn.execute(
                select(
                    TokenRow.id,
                    TokenRow.token_hash,
                    TokenRow.role,
                    TokenRow.expires_at,
                    TokenRow.revoked_at,
                ).where(TokenRow.token_hash == digest)
            ).first()
        if row is None:
            raise AuthError("unknown or revoked token")
        token_id, stored, role, expires_at, revoked_at = row
        # Defence in depth: compare the stored digest in constant time as well.
        if not hmac.compare_digest(bytes(stored), digest):
            raise AuthError("unknown or revoked token")
        now = rfc3339(self.clock.now())
        if revoked_at is not None or (expires_at is not None and expires_at <= now):
            raise AuthError("unknown or revoked token")
        p = Principal(token_id, role)
        if len(self._cache) >= self.CACHE_LIMIT:
            self._cache.clear()
        self._cache[digest] = (time.monotonic(), p)
        return p


def require(principal: Principal, *roles: str) -> None:
    """Admin may do anything; otherwise the role must be one of ``roles``."""
    if principal.role != "admin" and principal.role not in roles:
        raise Forbidden(f"role {principal.role!r} may not do this; needs {' or '.join(roles)}")
