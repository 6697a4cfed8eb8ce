"""The queue-draining committer thread the sequencer, the witness and the cosignature store
share (ledger/committer.py, issue 14 §6): batch bounds, the wait for more, and a stop that
commits everything queued before it and never waits unbounded."""

from __future__ import annotations

import queue
import threading
import time

import pytest

from ledger.committer import Committer


def test_batches_are_bounded_by_weight_and_stop_drains_the_queue() -> None:
    gate = threading.Event()
    batches: list[list[int]] = []

    def commit(batch: list[int]) -> None:
        gate.wait(5)
        batches.append(batch)

    c: Committer[int] = Committer(commit, name="t", max_batch=5, weight=lambda n: n)
    c.start()
    c.put(1)  # taken alone while the others queue behind the gate
    time.sleep(0.05)
    for n in (2, 2, 1, 3, 4):
        c.put(n)
    gate.set()
    c.stop(5)
    # Everything queued before stop was committed, in order, each batch within its weight
    # (a batch stops once it reaches max_batch, so the last item may pass it).
    assert [n for b in batches for n in b] == [1, 2, 2, 1, 3, 4]
    assert batches == [[1], [2, 2, 1], [3, 4]]


def test_max_delay_waits_for_more() -> None:
    batches: list[list[str]] = []
    c: Committer[str] = Committer(batches.append, name="t", max_batch=10, max_delay=0.3)
    c.start()
    c.put("a")
    time.sleep(0.05)
    c.put("b")  # within the delay: same batch
    time.sleep(0.5)
    c.put("c")  # after it: a new one
    c.stop(5)
    assert batches == [["a", "b"], ["c"]]

    # Without a delay, only what is already queued joins the first item.
    batches.clear()
    c = Committer(batches.append, name="t", max_batch=10)
    c.start()
    c.put("a")
    time.sleep(0.1)
    c.put("b")
    c.stop(5)
    assert batches == [["a"], ["b"]]


def test_a_full_queue_refuses_and_stop_is_bounded() -> None:
    release = threading.Event()
    c: Committer[int] = Committer(lambda _b: release.wait(10), name="t", max_batch=1, maxsize=2)
    c.start()
    c.put(0)  # the thread takes it and blocks in commit
    time.sleep(0.05)
    c.put_nowait(1)
    c.put_nowait(2)
    with pytest.raises(queue.Full):
        c.put_nowait(3)
    t0 = time.monotonic()
    c.stop(0.3)  # no room for the stop mark and the thread is busy: give up in time
    assert time.monotonic() - t0 < 2
    release.set()


def test_take_more_joins_what_queued_during_the_wait() -> None:
    """A commit that waited (as for the writer lock another worker held) takes what was
    queued meanwhile into its batch, within max_batch; a stop mark it meets ends the
    thread after that batch, everything before the mark committed."""
    gate = threading.Event()
    batches: list[list[int]] = []
    c: Committer[int] = Committer(lambda b: None, name="t", max_batch=5, weight=lambda n: n)

    def commit(batch: list[int]) -> None:
        gate.wait(5)
        batch += c.take_more(sum(batch))
        batches.append(batch)

    c._commit = commit
    c.start()
    c.put(1)  # taken alone; the others queue while its commit waits
    time.sleep(0.05)
    for n in (2, 1, 3, 1):
        c.put(n)
    gate.set()
    time.sleep(0.2)
    # 1 + 2 + 1 is below max_batch (5), so 3 joins too (the last may pass it, as in a
    # batch gathered at once); the last 1 is left for the next batch.
    assert batches == [[1, 2, 1, 3], [1]]

    gate.clear()
    c.put(2)
    time.sleep(0.05)
    c.put(1)
    # The stop mark queues behind 1 while the commit of 2 waits; stop returns once the
    # thread has ended.
    worker = c._thread
    assert worker is not None
    stopper = threading.Thread(target=c.stop, args=(5,))
    stopper.start()
    time.sleep(0.05)
    gate.set()
    stopper.join(10)
    assert not stopper.is_alive()
    assert not worker.is_alive()  # ended by the mark take_more met, not by stop's timeout
    assert batches[2:] == [[2, 1]]
