"""The bounded hand-off of a request body to the upload thread (storage/pipe.py)."""

from __future__ import annotations

import asyncio
import os
import threading
import time

import pytest

from storage.base import UploadInterrupted
from storage.pipe import BlockPipe


def consume(pipe: BlockPipe, out: list[bytes], errors: list[BaseException], delay: float) -> None:
    try:
        for piece in pipe:
            out.append(piece)
            time.sleep(delay)
    except BaseException as e:
        errors.append(e)


async def feed_all(pipe: BlockPipe, pieces: list[bytes]) -> None:
    for p in pieces:
        await pipe.feed(p)
    await pipe.close()


@pytest.mark.parametrize("delay", [0.0, 0.002], ids=["fast-consumer", "slow-consumer"])
def test_pieces_pass_unchanged_in_order_and_the_producer_waits_for_room(delay: float) -> None:
    pieces = [os.urandom(n) for n in (1, 300, 7, 1000, 4096, 0, 513) * 20]
    out: list[bytes] = []
    errors: list[BaseException] = []

    async def main() -> int:
        pipe = BlockPipe(asyncio.get_running_loop(), block_size=1024, depth=2, timeout=10)
        t = threading.Thread(target=consume, args=(pipe, out, errors, delay))
        t.start()
        await feed_all(pipe, pieces)
        await asyncio.to_thread(t.join, 30)
        # Never more than `depth` blocks queued, whatever the consumer's pace.
        return pipe._q.maxsize

    assert asyncio.run(main()) == 2
    assert errors == []
    assert out == [p for p in pieces if p]
    assert all(type(p) is bytes for p in out)


def test_the_producer_gives_up_when_nobody_takes_data() -> None:
    async def main() -> None:
        pipe = BlockPipe(asyncio.get_running_loop(), block_size=10, depth=1, timeout=0.2)
        await pipe.feed(b"x" * 10)  # fills the queue
        with pytest.raises(UploadInterrupted, match="store took no data"):
            await pipe.feed(b"y" * 10)

    asyncio.run(main())


def test_a_consumer_that_stops_releases_the_producer() -> None:
    async def main() -> None:
        pipe = BlockPipe(asyncio.get_running_loop(), block_size=10, depth=1, timeout=30)

        def take_one_then_stop() -> None:
            for _ in pipe:
                break  # the upload failed: the generator closes, consumer_gone is set

        await pipe.feed(b"a" * 10)
        t = threading.Thread(target=take_one_then_stop)
        t.start()
        started = time.monotonic()
        for _ in range(5):  # would wait for room forever if the producer were not woken
            await pipe.feed(b"b" * 10)
        await asyncio.to_thread(t.join, 10)
        assert pipe.consumer_gone
        assert time.monotonic() - started < 10

    asyncio.run(main())


def test_a_failed_body_makes_the_consumer_raise() -> None:
    out: list[bytes] = []
    errors: list[BaseException] = []

    async def main() -> None:
        pipe = BlockPipe(asyncio.get_running_loop(), block_size=4, depth=4, timeout=10)
        await pipe.feed(b"abcd")
        pipe.fail(ConnectionResetError("client went away"))
        t = threading.Thread(target=consume, args=(pipe, out, errors, 0.0))
        t.start()
        await asyncio.to_thread(t.join, 10)

    asyncio.run(main())
    assert len(errors) == 1 and isinstance(errors[0], UploadInterrupted)
    assert "client went away" in str(errors[0])


def test_no_wake_up_is_lost_when_the_queue_is_always_full() -> None:
    """Depth 1, one-byte blocks: producer and consumer meet at the full queue every time."""
    pieces = [bytes([i % 256]) for i in range(5_000)]
    out: list[bytes] = []
    errors: list[BaseException] = []

    async def main() -> None:
        # A lost wake-up would leave the producer waiting until this timeout.
        pipe = BlockPipe(asyncio.get_running_loop(), block_size=1, depth=1, timeout=5)
        t = threading.Thread(target=consume, args=(pipe, out, errors, 0.0))
        t.start()
        await feed_all(pipe, pieces)
        await asyncio.to_thread(t.join, 30)

    asyncio.run(main())
    assert errors == [] and out == pieces
