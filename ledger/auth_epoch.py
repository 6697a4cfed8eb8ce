"""The authorization epoch: token revocations and poster-key changes apply at once on every
node and worker process (issue 16).

Every change that takes a right away (a revoked token, a replaced or newly required poster
key) bumps the one counter in ``auth_epoch`` inside its own transaction
(:meth:`ledger.store.Store.bump_auth_epoch`). Each request reads the counter once
(:meth:`AuthEpoch.refresh`, one primary-key read; or in the statement that looks up the
token's row) before it trusts anything cached: a cached token or key is used only while
the epoch it was read under is still the current one.
"""

from __future__ import annotations

import threading

from ledger.store import Store


class AuthEpoch:
    """The epoch as this process last read it; shared by the token and poster-key caches."""

    def __init__(self, store: Store) -> None:
        self.store = store
        #: The value read by the newest :meth:`refresh` (None before the first).
        self.seen: int | None = None
        self._lock = threading.Lock()

    def refresh(self) -> int:
        """Read the current epoch (once per request, before any cache is consulted)."""
        v = self.store.auth_epoch()
        self.saw(v)
        return v

    def saw(self, v: int) -> None:
        """The epoch read along with something else (a token's row, in one statement)."""
        with self._lock:
            # Only forward: a slow reader must not set back what a later one saw.
            if self.seen is None or v > self.seen:
                self.seen = v
