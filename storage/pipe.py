"""A bounded hand-off of a request body from the event loop to an upload thread.

The event loop receives the body in small pieces; the upload thread hashes and stores
it. The pipe passes the pieces on as they came (no copy), grouped into blocks of about
``block_size`` bytes, and holds at most ``depth`` blocks, so a fast client waits for a
slow store (HTTP flow control then slows the client) instead of filling memory. Every
wait on either side has a timeout.
"""

from __future__ import annotations

import asyncio
import queue
from collections.abc import Iterator

from storage.base import UploadInterrupted

BLOCK_SIZE = 1 << 20
DEPTH = 4
#: Longest pause of the client (or of the store) tolerated in the middle of an upload.
IDLE_TIMEOUT = 60.0

#: Queued after the last block (and by ``fail``); an empty block is never queued otherwise.
_EOF: list[bytes] = []


class BlockPipe:
    """Producer side is async (``feed``, ``close``, ``fail``); the consumer iterates it.

    The consumer gets the pieces fed, in order and unchanged; the pipe holds at most
    ``depth`` blocks of at least ``block_size`` bytes, plus the pieces of the block being
    gathered (less than ``block_size`` bytes).
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        *,
        block_size: int = BLOCK_SIZE,
        depth: int = DEPTH,
        timeout: float = IDLE_TIMEOUT,
    ) -> None:
        self._loop = loop
        self._block_size = block_size
        self._timeout = timeout
        self._q: queue.Queue[list[bytes]] = queue.Queue(maxsize=depth)
        self._pieces: list[bytes] = []
        self._pending = 0
        self._space = asyncio.Event()
        #: True while the producer waits for space: only then does the consumer wake the
        #: event loop (one cross-thread wake-up per block taken would be wasted work).
        self._waiting = False
        self._error: BaseException | None = None
        #: Set by the consumer when it stops early; the producer then stops feeding.
        self.consumer_gone = False

    # --- producer (event loop) ---------------------------------------------------------
    async def feed(self, piece: bytes) -> None:
        """Add a piece of the body; waits (bounded) while the pipe is full."""
        if not piece:
            return
        self._pieces.append(piece)
        self._pending += len(piece)
        if self._pending >= self._block_size:
            block, self._pieces, self._pending = self._pieces, [], 0
            await self._put(block)

    async def close(self) -> None:
        """The body is complete."""
        if self._pieces:
            block, self._pieces, self._pending = self._pieces, [], 0
            await self._put(block)
        await self._put(_EOF)

    def fail(self, error: BaseException) -> None:
        """The body will not be complete (client gone): make the consumer give up."""
        self._error = error
        try:
            self._q.put_nowait(_EOF)
        except queue.Full:
            pass  # the consumer sees the error when it takes its next block

    async def _put(self, block: list[bytes]) -> None:
        while True:
            if self.consumer_gone:
                return  # the upload already failed; its error is reported by the consumer
            try:
                self._q.put_nowait(block)
                return
            except queue.Full:
                pass
            self._space.clear()
            # Announce the wait before looking again: a block taken after this look is
            # followed by a wake-up, one taken before it leaves room for the next try.
            self._waiting = True
            try:
                if not self._q.full() or self.consumer_gone:
                    continue
                await asyncio.wait_for(self._space.wait(), self._timeout)
            except TimeoutError:
                raise UploadInterrupted(
                    f"the store took no data for {self._timeout:.0f} s; upload abandoned"
                ) from None
            finally:
                self._waiting = False

    # --- consumer (upload thread) ------------------------------------------------------
    def _signal_space(self) -> None:
        try:
            self._loop.call_soon_threadsafe(self._space.set)
        except RuntimeError:
            pass  # the loop is closed: nobody is feeding any more

    def __iter__(self) -> Iterator[bytes]:
        try:
            while True:
                try:
                    block = self._q.get(timeout=self._timeout)
                except queue.Empty:
                    raise UploadInterrupted(
                        f"the client sent nothing for {self._timeout:.0f} s; upload abandoned"
                    ) from None
                if self._error is not None:
                    raise UploadInterrupted(f"the upload was interrupted: {self._error}")
                if self._waiting:
                    self._signal_space()
                if not block:
                    return
                yield from block
        finally:
            self.consumer_gone = True
            self._signal_space()
