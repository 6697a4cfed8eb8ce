"""A bounded hand-off of a request body from the event loop to an upload thread.

The event loop receives the body in small pieces; the upload thread hashes and stores
it. The pipe coalesces pieces into blocks and holds at most ``depth`` of them, so a fast
client waits for a slow store (HTTP flow control then slows the client) instead of
filling memory. Every wait on either side has a timeout.
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

_EOF = b""


class BlockPipe:
    """Producer side is async (``feed``, ``close``, ``fail``); the consumer iterates it."""

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
        self._q: queue.Queue[bytes] = queue.Queue(maxsize=depth)
        self._pieces: list[memoryview] = []
        self._pending = 0
        self._space = asyncio.Event()
        self._error: BaseException | None = None
        #: Set by the consumer when it stops early; the producer then stops feeding.
        self.consumer_gone = False

    # --- producer (event loop) ---------------------------------------------------------
    async def feed(self, piece: bytes) -> None:
        """Add a piece of the body; waits (bounded) while the pipe is full."""
        # Pieces are joined once into exact blocks: with blocks a whole number of chunks,
        # the chunk tree hashes them in place instead of copying them into its own buffer.
        view = memoryview(piece)
        while view:
            take = min(self._block_size - self._pending, len(view))
            self._pieces.append(view[:take])
            self._pending += take
            view = view[take:]
            if self._pending == self._block_size:
                block = b"".join(self._pieces)
                self._pieces.clear()
                self._pending = 0
                await self._put(block)

    async def close(self) -> None:
        """The body is complete."""
        if self._pieces:
            block = b"".join(self._pieces)
            self._pieces.clear()
            self._pending = 0
            await self._put(block)
        await self._put(_EOF)

    def fail(self, error: BaseException) -> None:
        """The body will not be complete (client gone): make the consumer give up."""
        self._error = error
        try:
            self._q.put_nowait(_EOF)
        except queue.Full:
            pass  # the consumer sees the error when it takes its next block

    async def _put(self, block: bytes) -> None:
        while True:
            if self.consumer_gone:
                return  # the upload already failed; its error is reported by the consumer
            try:
                self._q.put_nowait(block)
                return
            except queue.Full:
                pass
            self._space.clear()
            if not self._q.full() or self.consumer_gone:
                continue
            try:
                await asyncio.wait_for(self._space.wait(), self._timeout)
            except TimeoutError:
                raise UploadInterrupted(
                    f"the store took no data for {self._timeout:.0f} s; upload abandoned"
                ) from None

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
                self._signal_space()
                if block is _EOF or not block:
                    return
                yield block
        finally:
            self.consumer_gone = True
            self._signal_space()
