"""A value that unauthenticated or frequent requests may ask for, rebuilt at most every
few seconds and by one request at a time (``/healthz/ready``, ``/metrics``).

A request never waits for a rebuild another one is running: its reads may hang (a
database going away), and requests queued behind it would each hold a server thread.
It gets the value before instead, or None while there has never been one.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Reused(Generic[T]):
    """The newest value of a build, reused for ``every`` seconds."""

    def __init__(self, every: float) -> None:
        self.every = every
        self._mu = threading.Lock()
        self._at = float("-inf")
        self._value: T | None = None

    def _reused(self, build: Callable[[], T]) -> T | None:
        """The value, built anew when older than :attr:`every`, unless another request is
        building it: then the value before (None before the first)."""
        if not self._mu.acquire(blocking=False):
            return self._value
        try:
            now = time.monotonic()
            if now - self._at >= self.every:
                self._value = build()
                self._at = now
            return self._value
        finally:
            self._mu.release()
