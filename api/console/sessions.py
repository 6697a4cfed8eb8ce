"""Console sessions: a token signed in once, held server-side, checked on every page.

The cookie carries a random session id (32 bytes, base64url); the database keeps only its
SHA-256 (``console_sessions``), with the token it stands for, the session's form secret
(CSRF) and its expiry. Each page looks the session up *joined with the token's row*, so a
revoked or expired token ends all its console sessions at the next request, in every
worker process, with no cache to wait out. Signing out deletes the row.

Forms carry the session's CSRF secret in a hidden field and every POST compares it in
constant time (OWASP CSRF cheat sheet, synchronizer token). Before sign-in there is no
session: the sign-in form uses a double-submit cookie instead.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, insert, or_, select

from api.auth import scope_of
from ledger.access import Principal
from ledger.clock import Clock, rfc3339
from ledger.models import ConsoleSessionRow, TokenRow
from ledger.store import Store

#: A console session lasts at most this long (and never past its token's expiry).
SESSION_SECONDS = 8 * 3600
#: Sessions one token may hold at once; signing in past it ends the oldest.
MAX_SESSIONS_PER_TOKEN = 20
_ID_RE = re.compile(r"[A-Za-z0-9_-]{43}")


def new_secret() -> str:
    """32 random bytes in unpadded base64url (43 characters)."""
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")


def well_formed(secret: str | None) -> bool:
    return secret is not None and _ID_RE.fullmatch(secret) is not None


def same_secret(a: str | None, b: str | None) -> bool:
    """Constant-time equality of two secrets, both present and well formed."""
    return well_formed(a) and well_formed(b) and hmac.compare_digest(str(a), str(b))


def _digest(session_id: str) -> bytes:
    return hashlib.sha256(session_id.encode()).digest()


@dataclass(frozen=True)
class Session:
    """A live console session: who is signed in, the form secret, until when."""

    principal: Principal
    csrf: str
    expires_at: datetime


def open_session(store: Store, principal: Principal, clock: Clock) -> tuple[str, Session]:
    """Start a session for ``principal`` (already authenticated); returns (cookie value,
    session). Expired sessions are swept, and a token keeps at most
    :data:`MAX_SESSIONS_PER_TOKEN`."""
    now = clock.now().astimezone(UTC)
    expires = now + timedelta(seconds=SESSION_SECONDS)
    with store.engine.begin() as conn:
        token_expiry = conn.execute(
            select(TokenRow.expires_at).where(TokenRow.id == principal.token_id)
        ).scalar()
        if token_expiry is not None:
            try:
                cap = datetime.fromisoformat(str(token_expiry).replace("Z", "+00:00"))
                expires = min(expires, cap)
            except ValueError:
                pass
        conn.execute(delete(ConsoleSessionRow).where(ConsoleSessionRow.expires_at <= rfc3339(now)))
        held = conn.execute(
            select(ConsoleSessionRow.id_hash)
            .where(ConsoleSessionRow.token_id == principal.token_id)
            .order_by(ConsoleSessionRow.created_at.desc())
            .offset(MAX_SESSIONS_PER_TOKEN - 1)
        ).scalars()
        stale = [bytes(h) for h in held]
        if stale:
            conn.execute(delete(ConsoleSessionRow).where(ConsoleSessionRow.id_hash.in_(stale)))
        session_id, csrf = new_secret(), new_secret()
        conn.execute(
            insert(ConsoleSessionRow).values(
                id_hash=_digest(session_id),
                token_id=principal.token_id,
                csrf=csrf,
                created_at=rfc3339(now),
                expires_at=rfc3339(expires),
            )
        )
    return session_id, Session(principal, csrf, expires)


def find_session(store: Store, session_id: str, clock: Clock) -> Session | None:
    """The live session of a cookie value: None when unknown, expired, or when its token
    is revoked or expired (one query, joined with the token)."""
    if not well_formed(session_id):
        return None
    now = rfc3339(clock.now())
    with store.engine.connect() as conn:
        row = conn.execute(
            select(
                ConsoleSessionRow.id_hash,
                ConsoleSessionRow.csrf,
                ConsoleSessionRow.expires_at,
                TokenRow.id,
                TokenRow.role,
                TokenRow.scope_projects,
                TokenRow.scope_trade_types,
            )
            .join(TokenRow, TokenRow.id == ConsoleSessionRow.token_id)
            .where(
                ConsoleSessionRow.id_hash == _digest(session_id),
                ConsoleSessionRow.expires_at > now,
                TokenRow.revoked_at.is_(None),
                or_(TokenRow.expires_at.is_(None), TokenRow.expires_at > now),
            )
        ).first()
    if row is None or not hmac.compare_digest(bytes(row[0]), _digest(session_id)):
        return None
    expires = datetime.fromisoformat(str(row[2]).replace("Z", "+00:00"))
    return Session(Principal(row[3], row[4], scope_of(row[5], row[6])), row[1], expires)


def close_session(store: Store, session_id: str) -> None:
    """Sign out: the session is gone for good (idempotent)."""
    if well_formed(session_id):
        with store.engine.begin() as conn:
            conn.execute(
                delete(ConsoleSessionRow).where(ConsoleSessionRow.id_hash == _digest(session_id))
            )
