"""The witness's add-checkpoint logic and state (C2SP tlog-witness), on a real SQLite file.

Every status of the spec, the equivocation evidence and its alarm, and the one invariant
that matters most: the stored size never moves backwards, whatever runs concurrently,
including two witness processes on one database.
"""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from verifier import merkle
from verifier.checkpoint import Checkpoint
from verifier.note import ALG_COSIGNATURE_V1, Signer, parse_note, sign_note
from verifier.witnessing import AddCheckpointRequest, cosigners, parse_cosignatures
from witness.server import (
    Reply,
    Webhook,
    WitnessCore,
    WitnessKeyError,
    load_or_create_witness_key,
    normalize_prefix,
)
from witness.state import WitnessStore

ORIGIN = "log.example/witnessed"
LOG = Signer.generate(ORIGIN)
LEAVES = [merkle.leaf_hash(i.to_bytes(4, "big")) for i in range(64)]


def node(level: int, index: int) -> bytes:
    return merkle.tree_root(LEAVES[index << level : (index + 1) << level])


def cp(size: int, leaves: list[bytes] = LEAVES, signer: Signer = LOG) -> str:
    body = Checkpoint(ORIGIN, size, merkle.tree_root(leaves[:size])).body()
    return sign_note(body, [signer]).to_text()


def req(old: int, size: int, note: str | None = None, proof: list[bytes] | None = None) -> bytes:
    if proof is None:
        proof = merkle.consistency_proof(node, old, size) if 0 < old < size else []
    return AddCheckpointRequest(old, tuple(proof), note or cp(size)).to_text().encode()


@pytest.fixture
def witness(tmp_path: Path) -> Iterator[WitnessCore]:
    signer = load_or_create_witness_key(tmp_path, "witness.example/w1")
    store = WitnessStore.open(tmp_path)
    store.add_log(LOG.verifier.vkey)
    core = WitnessCore(store, signer)
    core.start()
    yield core
    core.stop()
    store.close()


def stored_size(core: WitnessCore) -> int:
    [log] = core.store.logs()
    size: int = log["size"]
    return size


def test_first_checkpoint_is_cosigned_and_the_cosignature_verifies(witness: WitnessCore) -> None:
    r = witness.add_checkpoint(req(0, 5))
    assert r.status == 200
    note = parse_cosignatures(r.body, parse_note(cp(5)))
    [(v, t)] = cosigners(note, [witness.signer.verifier])
    assert v == witness.signer.verifier and t > 1_700_000_000
    assert stored_size(witness) == 5


def test_the_statuses_of_the_spec(witness: WitnessCore) -> None:
    assert witness.add_checkpoint(req(0, 8)).status == 200
    # 409: old size is not the stored one; the body is the stored size.
    assert witness.add_checkpoint(req(3, 10)) == Reply(409, "8\n")
    assert witness.add_checkpoint(req(0, 10, proof=[])) == Reply(409, "8\n")
    # 200: extends what was stored, with a valid consistency proof.
    assert witness.add_checkpoint(req(8, 13)).status == 200
    # 400: old size above the checkpoint's, or a malformed body.
    assert witness.add_checkpoint(req(20, 13, proof=[])).status == 400
    assert witness.add_checkpoint(b"old 13\nnonsense").status == 400
    # 404: a log this witness does not witness.
    other = Signer.generate("other.example/log")
    body = Checkpoint("other.example/log", 1, LEAVES[0]).body()
    unknown = AddCheckpointRequest(0, (), sign_note(body, [other]).to_text())
    assert witness.add_checkpoint(unknown.to_text().encode()).status == 404
    # 403: signed by another key under the witnessed origin's name.
    impostor = Signer.generate(ORIGIN)
    assert witness.add_checkpoint(req(13, 20, cp(20, signer=impostor))).status == 403
    # 422: a proof that does not verify.
    assert witness.add_checkpoint(req(13, 20, proof=[bytes(32)] * 3)).status == 422
    assert witness.add_checkpoint(req(13, 13, proof=[bytes(32)])).status == 422
    # The same checkpoint again is cosigned again, and nothing moved.
    assert witness.add_checkpoint(req(13, 13)).status == 200
    assert stored_size(witness) == 13
    # A failed proof is recorded (it may show misbehaviour), but does not refuse the log.
    [ev] = witness.store.evidence()
    assert ev["kind"] == "inconsistent_proof" and ev["stored_size"] == 13
    assert witness.add_checkpoint(req(13, 20)).status == 200


def test_a_fork_is_kept_and_alarmed_and_extensions_are_still_cosigned(tmp_path: Path) -> None:
    alarms: list[dict[str, object]] = []
    signer = load_or_create_witness_key(tmp_path, "witness.example/w1")
    store = WitnessStore.open(tmp_path)
    store.add_log(LOG.verifier.vkey)
    witness = WitnessCore(store, signer, on_equivocation=alarms.append)
    witness.start()
    try:
        assert witness.add_checkpoint(req(0, 10)).status == 200
        forked = [merkle.leaf_hash(b"rewritten"), *LEAVES[1:]]
        fork = cp(10, forked)
        # Same size, another root, both signed by the log: 409 (tlog-witness) and evidence.
        assert witness.add_checkpoint(req(10, 10, fork)) == Reply(409, "10\n")
        [ev] = witness.store.evidence()
        assert ev["kind"] == "fork" and ev["submitted_checkpoint"] == fork
        assert ev["stored_checkpoint"] == cp(10)
        # The alarm: the callback (the webhook) and the counters of GET <prefix>/.
        assert [a["id"] for a in alarms] == [ev["id"]]
        metrics = witness.info()["metrics"]
        assert metrics["jianzheng_witness_equivocations_total"] == 1
        assert metrics["jianzheng_witness_open_equivocations"] == 1
        # All checks pass for what extends the cosigned tree: the witness MUST cosign it.
        assert witness.add_checkpoint(req(10, 12)).status == 200
        assert stored_size(witness) == 12
        # The same evidence submitted again is not stored (nor alarmed) twice.
        witness.add_checkpoint(req(12, 12, cp(12, forked)))
        witness.add_checkpoint(req(12, 12, cp(12, forked)))
        assert len(witness.store.evidence()) == 2 and len(alarms) == 2
        assert witness.info()["logs"][0]["refused"] is None
        # An operator who examined it clears it: kept on record, no longer open.
        assert len(witness.store.clear(ORIGIN)) == 2
        metrics = witness.info()["metrics"]
        assert metrics["jianzheng_witness_equivocations_total"] == 2
        assert metrics["jianzheng_witness_open_equivocations"] == 0
    finally:
        witness.stop()
        store.close()


def test_refuse_after_equivocation_keeps_the_log_refused_until_cleared(tmp_path: Path) -> None:
    signer = load_or_create_witness_key(tmp_path, "witness.example/w1")
    store = WitnessStore.open(tmp_path)
    store.add_log(LOG.verifier.vkey)
    witness = WitnessCore(store, signer, refuse_after_equivocation=True)
    witness.start()
    try:
        assert witness.add_checkpoint(req(0, 10)).status == 200
        fork = cp(10, [merkle.leaf_hash(b"rewritten"), *LEAVES[1:]])
        assert witness.add_checkpoint(req(10, 10, fork)) == Reply(409, "10\n")
        [ev] = witness.store.evidence()
        # Refused until an operator acts, even for the honest history.
        r = witness.add_checkpoint(req(10, 12))
        assert r.status == 403 and "equivocation" in r.body
        assert witness.store.clear(ORIGIN) == [ev["id"]]
        assert witness.add_checkpoint(req(10, 12)).status == 200
        assert witness.store.evidence()[0]["cleared_at"] is not None
    finally:
        witness.stop()
        store.close()


def test_state_survives_a_restart(tmp_path: Path) -> None:
    signer = load_or_create_witness_key(tmp_path, "witness.example/w1")
    for size, old, want in ((7, 0, 200), (9, 0, 409), (9, 7, 200)):
        store = WitnessStore.open(tmp_path)
        store.add_log(LOG.verifier.vkey)
        core = WitnessCore(store, load_or_create_witness_key(tmp_path, None))
        core.start()
        try:
            assert core.add_checkpoint(req(old, size)).status == want
        finally:
            core.stop()
            store.close()
    assert load_or_create_witness_key(tmp_path, None).skey == signer.skey
    with pytest.raises(WitnessKeyError, match="named"):
        load_or_create_witness_key(tmp_path, "another.name")


def test_the_key_is_a_cosignature_key_kept_private(tmp_path: Path) -> None:
    s = load_or_create_witness_key(tmp_path, "w.example")
    assert s.alg == ALG_COSIGNATURE_V1
    assert (tmp_path / "witness.key").stat().st_mode & 0o077 == 0
    unnamed = load_or_create_witness_key(tmp_path / "unnamed", None)
    assert unnamed.name.endswith("/witness") and " " not in unnamed.name


def _hammer(cores: list[WitnessCore], seconds_of_work: int = 400) -> list[tuple[int, int]]:
    """Many threads submit random (old, new) pairs; returns the accepted transitions."""
    accepted: list[tuple[int, int]] = []
    lock = threading.Lock()

    def client(seed: int) -> None:
        rnd = random.Random(seed)
        core = cores[seed % len(cores)]
        for _ in range(seconds_of_work // 8):
            new = rnd.randint(1, 63)
            old = rnd.choice([0, rnd.randint(1, new), new - 1 if new > 1 else 0])
            r = core.add_checkpoint(req(old, new))
            assert r.status in (200, 409), r
            if r.status == 200:
                with lock:
                    accepted.append((old, new))

    threads = [threading.Thread(target=client, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return accepted


def _assert_never_backwards(accepted: list[tuple[int, int]], final: int) -> None:
    # Every accepted step started from the size stored at that moment, so the steps that
    # grew the tree form one chain 0 -> s1 -> s2 ... -> final, each size reached once.
    growth = sorted((new, old) for old, new in accepted if new != old)
    assert growth, "nothing was accepted"
    prev = 0
    for new, old in growth:
        assert old == prev, f"step {old}->{new} did not start from the stored {prev}"
        prev = new
    assert prev == final
    assert all(old == new and new <= final for old, new in accepted if old == new)


def test_concurrent_requests_never_move_the_state_backwards(witness: WitnessCore) -> None:
    accepted = _hammer([witness])
    _assert_never_backwards(accepted, stored_size(witness))


def test_two_witness_processes_on_one_database_never_move_it_backwards(tmp_path: Path) -> None:
    """Two committers (as two processes would) on the same SQLite file: CAS holds."""
    signer = load_or_create_witness_key(tmp_path, "witness.example/w1")
    stores = [WitnessStore.open(tmp_path) for _ in range(2)]
    stores[0].add_log(LOG.verifier.vkey)
    cores = [WitnessCore(s, signer) for s in stores]
    for c in cores:
        c.start()
    try:
        accepted = _hammer(cores)
        _assert_never_backwards(accepted, stored_size(cores[0]))
    finally:
        for c, s in zip(cores, stores, strict=True):
            c.stop()
            s.close()


class _Hook(BaseHTTPRequestHandler):
    received: ClassVar[list[bytes]] = []

    def do_POST(self) -> None:
        n = int(self.headers.get("content-length", "0"))
        _Hook.received.append(self.rfile.read(n))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def test_a_new_fork_is_posted_to_the_webhook_once(tmp_path: Path) -> None:
    server = HTTPServer(("127.0.0.1", 0), _Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    hook = Webhook(f"http://127.0.0.1:{server.server_address[1]}/alarm", timeout=5)
    signer = load_or_create_witness_key(tmp_path, "witness.example/w1")
    store = WitnessStore.open(tmp_path)
    store.add_log(LOG.verifier.vkey)
    witness = WitnessCore(store, signer, on_equivocation=hook.post)
    witness.start()
    try:
        assert witness.add_checkpoint(req(0, 10)).status == 200
        fork = cp(10, [merkle.leaf_hash(b"rewritten"), *LEAVES[1:]])
        for _ in range(3):  # repeated: one alarm
            assert witness.add_checkpoint(req(10, 10, fork)).status == 409
    finally:
        witness.stop()
        hook.close()  # drains the queue: every post is done
        server.shutdown()
        store.close()
    [body] = _Hook.received
    alarm = json.loads(body)
    assert alarm["alarm"] == "equivocation"
    assert alarm["evidence"]["kind"] == "fork" and alarm["evidence"]["submitted_checkpoint"] == fork


@pytest.mark.parametrize(
    "given, want", [("/witness", "/witness"), ("witness/", "/witness"), ("/", ""), ("/a/b", "/a/b")]
)
def test_prefixes_are_normalized(given: str, want: str) -> None:
    assert normalize_prefix(given) == want


@pytest.mark.parametrize("bad", ["/a?b", "/a#b", "/a//b", "/a b", "/a%2f"])
def test_prefixes_that_are_not_plain_paths_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="plain URL path"):
        normalize_prefix(bad)
