"""One thread that drains a queue in batches: the committer the log and the witness share.

The sequencer (appends), the witness service (add-checkpoint decisions) and the log side
of witnessing (storing cosignatures) each own one such thread. It blocks for the first
queued item, then takes what else is queued, up to ``max_batch`` (each item counting
``weight(item)``), waiting at most ``max_delay`` seconds for more, and hands the batch to
``commit``. A ``commit`` that had to wait (for a lock another process held) may take what
was queued meanwhile into the same batch (:meth:`Committer.take_more`).
:meth:`Committer.stop` queues a stop mark behind what is waiting, so everything queued
before it is still committed; every wait in it is bounded.

It imports nothing of the project, so the witness service may use it too.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

log = logging.getLogger("jianzheng.committer")

T = TypeVar("T")


def _one(_item: object) -> int:
    return 1


class Committer(Generic[T]):
    """A queue of ``T`` and the thread that commits it batch by batch.

    ``commit`` owns its errors: whatever it raises ends the thread (as a bare loop would),
    so callers catch what they can recover from and answer their waiters themselves.
    """

    def __init__(
        self,
        commit: Callable[[list[T]], None],
        *,
        name: str,
        max_batch: int,
        max_delay: float = 0.0,
        maxsize: int = 0,
        weight: Callable[[T], int] = _one,
    ) -> None:
        self._commit = commit
        self.name = name
        self.max_batch = max_batch
        self.max_delay = max_delay
        self._weight = weight
        self._queue: queue.Queue[T | None] = queue.Queue(maxsize)
        self._thread: threading.Thread | None = None
        #: The stop mark was taken by :meth:`take_more`: end after this batch.
        self._stop_taken = False

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Commit what is queued, then end the thread; wait at most ``timeout`` seconds."""
        if self._thread is None:
            return
        deadline = time.monotonic() + timeout
        try:
            self._queue.put(None, timeout=timeout)
        except queue.Full:
            log.error("%s: queue still full after %.1f s; not waiting for it", self.name, timeout)
        self._thread.join(max(0.0, deadline - time.monotonic()))
        self._thread = None

    def put(self, item: T) -> None:
        """Queue ``item``, waiting for room (an unbounded queue always has room)."""
        self._queue.put(item)

    def put_nowait(self, item: T) -> None:
        """Queue ``item``; :class:`queue.Full` when a bounded queue has no room."""
        self._queue.put_nowait(item)

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch, stop = self._gather(first)
            self._commit(batch)
            if stop or self._stop_taken:
                return

    def take_more(self, have: int) -> list[T]:
        """What is queued now, without waiting, up to ``max_batch`` beside the ``have`` the
        batch weighs already (within the same bound as a batch gathered at once).

        Only for ``commit``, on the committer's thread, once it is ready to commit: the items
        it takes are part of the batch it is committing, and it answers them as it answers
        the others. A stop mark taken here ends the thread after this batch, as it would
        have after the next.
        """
        out: list[T] = []
        while have < self.max_batch and not self._stop_taken:
            try:
                nxt = self._queue.get_nowait()
            except queue.Empty:
                break
            if nxt is None:
                self._stop_taken = True
                break
            out.append(nxt)
            have += self._weight(nxt)
        return out

    def _gather(self, first: T) -> tuple[list[T], bool]:
        """``first`` and what else is queued (within the bounds); True when told to stop."""
        batch = [first]
        count = self._weight(first)
        deadline = time.monotonic() + self.max_delay
        while count < self.max_batch:
            wait = deadline - time.monotonic()
            try:
                nxt = self._queue.get(timeout=wait) if wait > 0 else self._queue.get_nowait()
            except queue.Empty:
                break
            if nxt is None:
                return batch, True
            batch.append(nxt)
            count += self._weight(nxt)
        return batch, False
