"""Bearer tokens: roles, scopes, expiry and revocation, stored only as SHA-256 hashes.

A token is ``jz_`` followed by 32 random bytes in base64url. The database keeps its
SHA-256, so a leaked database gives no usable token; the lookup is by digest and the
stored digest is compared again in constant time (``hmac.compare_digest``).

A token's scope says which projects it may touch: all of them, a list of projects, or the
trade types a supervising department oversees (e.g. the transport bureau's engineering
projects). Reads outside the scope answer 404, never 403, so a scoped reviewer cannot even
learn which other projects exist (OWASP API1, broken object-level authorization).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json
import re
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

from sqlalchemy import insert, or_, select, update

from api.errors import ApiLayerError
from ledger.access import ALL, Principal, Scope
from ledger.auth_epoch import AuthEpoch
from ledger.catalogue import TRADE_TYPES
from ledger.clock import Clock, SystemClock, rfc3339
from ledger.models import AuthEpochRow, TokenRow
from ledger.records import PROJECT_RE
from ledger.store import Store

ROLES = ("platform", "reviewer", "archivist", "admin")
PREFIX = "jz_"
_TOKEN_RE = re.compile(r"jz_[A-Za-z0-9_-]{43}")
_RFC3339_MS = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z")
MAX_SCOPE_ITEMS = 1000
MAX_TOKENS_LISTED = 1000


class AuthError(ApiLayerError):
    """No valid token (401)."""


class Forbidden(ApiLayerError):
    """A valid token whose role may not do this (403)."""


def _hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def make_scope(projects: Iterable[str] = (), trade_types: Iterable[str] = ()) -> Scope:
    """Validate a scope: known trade types, well-formed project codes, bounded lists."""
    p = sorted(set(projects))
    t = sorted(set(trade_types))
    if len(p) > MAX_SCOPE_ITEMS:
        raise ValueError(f"a token may name at most {MAX_SCOPE_ITEMS} projects")
    for x in p:
        if not PROJECT_RE.fullmatch(x):
            raise ValueError(f"{x!r} is not a project code")
    for x in t:
        if x not in TRADE_TYPES:
            raise ValueError(f"unknown trade type {x!r}: use one of {', '.join(TRADE_TYPES)}")
    return Scope(frozenset(p) if p else None, frozenset(t) if t else None)


def create_token(
    store: Store,
    role: str,
    label: str = "",
    clock: Clock | None = None,
    expires_at: datetime | None = None,
    scope: Scope = ALL,
) -> tuple[str, str]:
    """Create a token; returns (token id, token). The token itself is never stored."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}: use one of {', '.join(ROLES)}")
    token = PREFIX + base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")
    token_id = secrets.token_hex(8)
    now = rfc3339((clock or SystemClock()).now())
    sj = scope.to_json()
    with store.engine.begin() as conn:
        conn.execute(
            insert(TokenRow).values(
                id=token_id,
                token_hash=_hash(token),
                role=role,
                label=label[:128],
                created_at=now,
                expires_at=rfc3339(expires_at) if expires_at else None,
                scope_projects=json.dumps(sj["projects"]) if sj["projects"] is not None else None,
                scope_trade_types=(
                    json.dumps(sj["trade_types"]) if sj["trade_types"] is not None else None
                ),
            )
        )
    return token_id, token


def scope_of(projects: str | None, trade_types: str | None) -> Scope:
    return Scope(
        frozenset(json.loads(projects)) if projects is not None else None,
        frozenset(json.loads(trade_types)) if trade_types is not None else None,
    )


def list_tokens(store: Store, limit: int = MAX_TOKENS_LISTED) -> list[dict[str, object]]:
    """Token metadata (never the token or its hash), newest first, bounded."""
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(
                TokenRow.id,
                TokenRow.role,
                TokenRow.label,
                TokenRow.created_at,
                TokenRow.expires_at,
                TokenRow.revoked_at,
                TokenRow.scope_projects,
                TokenRow.scope_trade_types,
            )
            .order_by(TokenRow.created_at.desc(), TokenRow.id)
            .limit(min(limit, MAX_TOKENS_LISTED))
        ).all()
    return [
        {
            "id": r[0],
            "role": r[1],
            "label": r[2],
            "created_at": r[3],
            "expires_at": r[4],
            "revoked_at": r[5],
            "scope": scope_of(r[6], r[7]).to_json(),
        }
        for r in rows
    ]


def revoke_token(store: Store, token_or_id: str, clock: Clock | None = None) -> str:
    """Revoke by token id or by the token itself; returns the id. Idempotent."""
    key = token_or_id.strip()
    cond = TokenRow.token_hash == _hash(key) if key.startswith(PREFIX) else TokenRow.id == key
    now = rfc3339((clock or SystemClock()).now())
    with store.engine.begin() as conn:
        row = conn.execute(select(TokenRow.id, TokenRow.revoked_at).where(cond)).first()
        if row is None:
            raise LookupError("no such token")
        if row[1] is None:
            conn.execute(update(TokenRow).where(TokenRow.id == row[0]).values(revoked_at=now))
            # In the revoking transaction: every node drops its cached tokens at once.
            store.bump_auth_epoch(conn)
    return str(row[0])


def _instant(text: str) -> datetime | None:
    """An expiry written by :func:`rfc3339` as an aware datetime; None for any other text."""
    if not _RFC3339_MS.fullmatch(text):
        return None
    try:
        return datetime.fromisoformat(text[:-1] + "+00:00")
    except ValueError:
        return None


class TokenCheck:
    """Resolves bearer tokens to principals, with a short-lived cache, and remembers the
    tokens the database does not know, so that one never costs a query twice.

    A token unknown once stays unknown: tokens are drawn at random when created (nobody
    can present one before that), and expiry and revocation are for good. So the
    negative cache needs no expiry, only a bound (issue 10 §3: a request without a valid
    token touches the database at most once).
    """

    #: Seconds a looked-up token is trusted before the database is asked again. A
    #: revocation applies at once everywhere regardless: each request first reads the
    #: authorization epoch (:mod:`ledger.auth_epoch`), and a token cached under an older
    #: epoch is looked up again.
    CACHE_SECONDS = 5.0
    CACHE_LIMIT = 10_000
    #: Digests of unknown, expired or revoked tokens remembered (the oldest go first).
    UNKNOWN_LIMIT = 10_000

    def __init__(
        self, store: Store, clock: Clock | None = None, epoch: AuthEpoch | None = None
    ) -> None:
        self.store = store
        self.clock = clock or SystemClock()
        self.epoch = epoch or AuthEpoch(store)
        # digest -> (cached at, principal, expiry, epoch). The expiry is kept as a datetime:
        # it is rfc3339() text, whose millisecond precision makes "expiry <= now" the same
        # test as the text comparison with rfc3339(now), without formatting now per request.
        # The epoch is the one read before the token's row: the entry is good while it is
        # still the current one.
        self._cache: dict[bytes, tuple[float, Principal, datetime | None, int]] = {}
        self._unknown: OrderedDict[bytes, None] = OrderedDict()
        self._lock = threading.Lock()

    def forget(self) -> None:
        with self._lock:
            self._cache.clear()

    def authenticate(
        self, authorization: str | None, before_lookup: Callable[[], None] | None = None
    ) -> Principal:
        """The token's principal; :class:`AuthError` otherwise. ``before_lookup`` runs just
        before the database would be asked, and may refuse by raising (a throttled client)."""
        if not authorization:
            raise AuthError("missing bearer token: send 'Authorization: Bearer <token>'")
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not _TOKEN_RE.fullmatch(token):
            raise AuthError("malformed Authorization header: want 'Bearer jz_...'")
        digest = _hash(token)
        hit = self._cache.get(digest)
        if hit is not None and time.monotonic() - hit[0] < self.CACHE_SECONDS:
            # Trusted only while no revocation or key change happened since it was read.
            if hit[3] == self.epoch.refresh():
                if hit[2] is not None and hit[2] <= self.clock.now().astimezone(UTC):
                    raise AuthError("unknown, expired or revoked token")
                return hit[1]
        elif digest in self._unknown:
            raise AuthError("unknown, expired or revoked token")
        if before_lookup is not None:
            before_lookup()
        now = rfc3339(self.clock.now())
        # The epoch in the same statement as the token's row: one snapshot, one query.
        epoch_now = select(AuthEpochRow.version).where(AuthEpochRow.id == 1).scalar_subquery()
        with self.store.engine.connect() as conn:
            row = conn.execute(
                select(
                    TokenRow.id,
                    TokenRow.token_hash,
                    TokenRow.role,
                    TokenRow.expires_at,
                    TokenRow.scope_projects,
                    TokenRow.scope_trade_types,
                    epoch_now,
                ).where(
                    TokenRow.token_hash == digest,
                    TokenRow.revoked_at.is_(None),
                    or_(TokenRow.expires_at.is_(None), TokenRow.expires_at > now),
                )
            ).first()
        # One message for unknown, expired and revoked: the caller learns nothing more.
        if row is None or not hmac.compare_digest(bytes(row[1]), digest):
            with self._lock:
                self._unknown[digest] = None
                if len(self._unknown) > self.UNKNOWN_LIMIT:
                    self._unknown.popitem(last=False)
            raise AuthError("unknown, expired or revoked token")
        epoch = int(row[6]) if row[6] is not None else 0
        self.epoch.saw(epoch)
        p = Principal(row[0], row[2], scope_of(row[4], row[5]))
        expires = _instant(row[3]) if row[3] is not None else None
        if row[3] is not None and expires is None:
            return p  # an expiry not in rfc3339's form: leave it to the database each time
        with self._lock:
            if len(self._cache) >= self.CACHE_LIMIT:
                self._cache.clear()
            self._cache[digest] = (time.monotonic(), p, expires, epoch)
        return p


def require(principal: Principal, *roles: str) -> None:
    """Admin may do anything; otherwise the role must be one of ``roles``."""
    if principal.role != "admin" and principal.role not in roles:
        raise Forbidden(f"role {principal.role!r} may not do this; needs {' or '.join(roles)}")


class RateLimiter:
    """Token bucket per key (a token id, or a client address): ``rate`` requests per
    second, bursts up to ``2 × rate``.

    OWASP API4 (unrestricted resource consumption). ``rate <= 0`` disables it. At most
    :attr:`MAX_BUCKETS` keys are kept; the one unseen longest goes first (its bucket would
    have refilled by then anyway), so no flood of new keys grows the table or resets it.
    """

    MAX_BUCKETS = 100_000

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.burst = max(1.0, 2 * rate)
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def peek(self, key: str) -> float:
        """Like :meth:`check`, without spending anything."""
        if self.rate <= 0:
            return 0.0
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        return 0.0 if tokens >= 1 else (1 - tokens) / self.rate

    def check(self, key: str) -> float:
        """0 if the request may go ahead, else seconds until it may (for Retry-After)."""
        if self.rate <= 0:
            return 0.0
        now = time.monotonic()
        with self._lock:
            buckets = self._buckets
            tokens, last = buckets.get(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            ok = tokens >= 1
            buckets[key] = (tokens - 1 if ok else tokens, now)
            buckets.move_to_end(key)
            if len(buckets) > self.MAX_BUCKETS:
                buckets.popitem(last=False)
        return 0.0 if ok else (1 - tokens) / self.rate


#: Requests per second without a valid token (401) allowed per client address, in bursts
#: of twice that; past it 429, before the database is asked (issue 10 §3).
AUTH_FAILURES_PER_SECOND = 10.0


def client_key(host: str | None) -> str:
    """The rate-limit key of a client address: the address, or its /64 for IPv6 (one
    subscriber usually holds a whole /64, so per address would be no limit at all)."""
    if not host:
        return "-"
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        return host[:64]
    if isinstance(addr, ipaddress.IPv6Address):
        if addr.ipv4_mapped is not None:
            return str(addr.ipv4_mapped)
        return str(ipaddress.IPv6Network((addr, 64), strict=False))
    return str(addr)
