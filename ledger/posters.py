r"""Poster signing keys: which Ed25519 key a platform token signs its events with.

A platform registers its own key once; after that only an admin can replace it or lift
the ``required`` flag, so a stolen token cannot swap the key or turn signing off.

Refusals are :class:`PosterKeyError`\ s; ``api/errors.py`` answers each with its HTTP
status and code.
"""

from __future__ import annotations

import base64
import dataclasses
import threading
import time
from typing import Any

from sqlalchemy import delete, insert, select, update

from ledger.auth_epoch import AuthEpoch
from ledger.clock import SystemClock, rfc3339
from ledger.errors import LedgerError
from ledger.models import PosterKeyHistoryRow, PosterKeyRow
from ledger.records import EventSubmission
from ledger.store import Store
from verifier.poster import PosterSignatureError, verify_event_signature


class PosterKeyError(LedgerError):
    """A poster key or an event's signature is refused; ``field`` names the field (with
    its position in a batch), ``reason`` says why without it."""

    def __init__(self, reason: str, field: str | None = None) -> None:
        super().__init__(f"{field}: {reason}" if field else reason)
        self.reason = reason
        self.field = field


class PosterKeyExists(PosterKeyError):
    """The token already has a key; only an admin may replace it."""


class SignatureRequired(PosterKeyError):
    """The poster's key is ``required`` and the event is unsigned."""


class NoPosterKey(PosterKeyError):
    """A signed event from a token that registered no key."""


class BadPosterSignature(PosterKeyError):
    """The event's signature does not verify under the poster's key."""


@dataclasses.dataclass(frozen=True)
class PosterKey:
    public_key: bytes
    required: bool


class PosterKeys:
    """Registered poster keys, cached in memory (the table is small and rarely written).

    A change applies at once on every node and worker process: it bumps the authorization
    epoch (:mod:`ledger.auth_epoch`), which the request read when its token was checked,
    and a key cached under an older epoch is read again.
    """

    #: As long as a looked-up token is trusted (``api.auth.TokenCheck.CACHE_SECONDS``).
    CACHE_SECONDS = 5.0

    def __init__(self, store: Store, epoch: AuthEpoch | None = None) -> None:
        self.store = store
        self.epoch = epoch or AuthEpoch(store)
        self._cache: dict[str, tuple[float, PosterKey | None, int | None]] = {}
        self._lock = threading.Lock()

    def get(self, token_id: str) -> PosterKey | None:
        # The epoch this request's token check read (shared with api.auth.TokenCheck).
        epoch = self.epoch.seen
        with self._lock:
            hit = self._cache.get(token_id)
            if (
                hit is not None
                and hit[2] == epoch
                and epoch is not None
                and time.monotonic() - hit[0] < self.CACHE_SECONDS
            ):
                return hit[1]
        with self.store.engine.connect() as conn:
            row = conn.execute(
                select(PosterKeyRow.public_key, PosterKeyRow.required).where(
                    PosterKeyRow.token_id == token_id
                )
            ).first()
        key = PosterKey(bytes(row[0]), bool(row[1])) if row else None
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[token_id] = (time.monotonic(), key, epoch)
        return key

    def set(self, token_id: str, public_key: bytes, required: bool, *, replace: bool) -> None:
        """Register (or, with ``replace``, rotate) the key, keeping its history.

        Under the ledger's writer lock, so the log size read here is exact: the key covers
        the records committed from that index on, and a replaced key those before it.
        """
        now = rfc3339(SystemClock().now())
        with self.store.writer() as conn:
            have = conn.scalar(
                select(PosterKeyRow.token_id).where(PosterKeyRow.token_id == token_id)
            )
            if have is not None and not replace:
                raise PosterKeyExists(
                    "a key is already registered for this token; an admin may "
                    "replace it (PUT /v1/tokens/{id}/poster-key)"
                )
            head = self.store.head(conn)
            size = head.size if head else 0
            conn.execute(delete(PosterKeyRow).where(PosterKeyRow.token_id == token_id))
            conn.execute(
                insert(PosterKeyRow).values(
                    token_id=token_id, public_key=public_key, required=required, created_at=now
                )
            )
            hist = PosterKeyHistoryRow
            open_span = (hist.token_id == token_id) & hist.until_index.is_(None)
            # Two changes with no record in between: the first never covered a record.
            conn.execute(delete(hist).where(open_span, hist.from_index == size))
            conn.execute(update(hist).where(open_span).values(until_index=size))
            conn.execute(
                insert(hist).values(
                    token_id=token_id,
                    from_index=size,
                    until_index=None,
                    public_key=public_key,
                    required=required,
                    registered_at=now,
                )
            )
            # In the changing transaction: every node re-reads the key at once.
            self.store.bump_auth_epoch(conn)
        with self._lock:
            self._cache.pop(token_id, None)

    def check(
        self, token_id: str, ev: EventSubmission, posted: dict[str, Any], prefix: str = ""
    ) -> EventSubmission:
        """Verify the event's signature against the key of the poster ``token_id``; commit
        it in the record. ``prefix`` places the field in a batch (``events[3].``)."""
        key = self.get(token_id)
        field = prefix + "signature"
        if ev.signature is None:
            if key is not None and key.required:
                raise SignatureRequired("this poster must sign every event", field)
            return ev
        if key is None:
            raise NoPosterKey("no signing key is registered for this token", field)
        try:
            verify_event_signature(posted, key.public_key, ev.signature)
        except PosterSignatureError as e:
            raise BadPosterSignature(str(e), field) from None
        sig = {"public_key": base64.b64encode(key.public_key).decode(), "signature": ev.signature}
        return dataclasses.replace(ev, poster_signature=sig)
