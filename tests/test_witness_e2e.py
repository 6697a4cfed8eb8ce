"""Witnessing with real processes on loopback: one log, three witnesses, a 2-of-3 policy.

Everything runs as the operator runs it: ``jianzheng witness add-log`` and ``witness serve``
for the witnesses, ``jianzheng serve --witness VKEY@URL ... --witness-quorum 2`` for the
log, ``jianzheng monitor`` for the monitor, ``openssl ts -verify`` for the tokens. The test
checks what an outsider can check: cosigned checkpoints that meet the policy, a forked
checkpoint signed with the log's own key refused, kept as evidence and alarmed, a witness that keeps
its state across kill -9, receipts that do not wait for a hung witness, and a monitor that
catches a fork, a rollback and a wrong key.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import statistics
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest

from tests.conftest import make_event
from tests.procs import Server, jianzheng
from tests.servers import free_port
from tests.witness_procs import WitnessProc, wait_until
from verifier import merkle
from verifier.checkpoint import Checkpoint, open_checkpoint
from verifier.note import Signer, parse_vkey, sign_note
from verifier.receipt import Receipt
from verifier.timestamp import token_of, verify_timestamp
from verifier.witnessing import SIZE_CONTENT_TYPE, AddCheckpointRequest, WitnessPolicy

ORIGIN = "witnessed.example/log"


def write_log_key(data: Path) -> Signer:
    """Create the log's key the way ``jianzheng serve`` would, so witnesses can be set up first."""
    data.mkdir(parents=True)
    signer = Signer.generate(ORIGIN)
    fd = os.open(data / "log.key", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(signer.skey + "\n")
    return signer


class Cluster:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.log_key = write_log_key(tmp / "log")
        self.witness_keys = []
        for i in (1, 2, 3):
            out = jianzheng(
                "witness",
                "add-log",
                "--data",
                str(tmp / f"w{i}"),
                "--name",
                f"w{i}.example/witness",
                "--vkey",
                self.log_key.verifier.vkey,
            )
            self.witness_keys.append(parse_vkey(out.stdout.strip().splitlines()[-1]))
        self.witnesses = [WitnessProc(tmp / f"w{i}") for i in (1, 2, 3)]
        args = []
        for k, w in zip(self.witness_keys, self.witnesses, strict=True):
            args += ["--witness", f"{k.vkey}@{w.prefix}"]
        self.log = Server(tmp / "log", None, *args, "--witness-quorum", "2", origin=ORIGIN)
        self.token = jianzheng(
            "token", "create", "--data", str(tmp / "log"), "--role", "platform"
        ).stdout.split()[-1]
        self.reader = jianzheng(
            "token", "create", "--data", str(tmp / "log"), "--role", "reviewer"
        ).stdout.split()[-1]
        self.http = httpx.Client(base_url=self.log.url, timeout=30)
        self.policy = WitnessPolicy(self.witness_keys, 2)

    def close(self) -> None:
        self.http.close()
        self.log.stop()
        for w in self.witnesses:
            w.stop()

    def post(self, n: int = 1) -> list[dict[str, Any]]:
        h = {"Authorization": f"Bearer {self.token}"}
        if n == 1:
            r = self.http.post("/v1/events", json=make_event(project="E1"), headers=h)
            assert r.status_code == 201, r.text
            return [r.json()]
        evs = [make_event(project="E1") for _ in range(n)]
        r = self.http.post("/v1/events:batch", json={"events": evs}, headers=h)
        assert r.status_code == 201, r.text
        receipts: list[dict[str, Any]] = r.json()["receipts"]
        return receipts

    def log_info(self) -> dict[str, Any]:
        out: dict[str, Any] = self.http.get("/v1/log").json()
        return out

    def wait_witnessed(self, timeout: float = 30) -> dict[str, Any]:
        wait_until(
            lambda: self.log_info()["witnessed_size"] == self.log_info()["size"],
            timeout,
            "the head was not witnessed",
        )
        return self.log_info()

    def monitor(
        self, state: Path, url: str | None = None, *extra: str
    ) -> subprocess.CompletedProcess[str]:
        """``jianzheng monitor --once`` of the log (or ``url``), with ``extra`` options."""
        args = ["monitor", "--log", url or self.log.url, "--vkey", self.log_key.verifier.vkey]
        for k in self.witness_keys:
            args += ["--witness", k.vkey]
        return jianzheng(*args, "--state", str(state), "--once", *extra, check=False)


@pytest.fixture
def cluster(tmp_path: Path) -> Any:
    c = Cluster(tmp_path)
    try:
        yield c
    finally:
        c.close()


def forged(size: int, root: bytes, key: Signer) -> str:
    return sign_note(Checkpoint(ORIGIN, size, root).body(), [key]).to_text()


@pytest.mark.slow
def test_cosigned_checkpoints_timestamps_and_receipts(cluster: Cluster, tmp_path: Path) -> None:
    for n in (1, 20, 5, 1):
        cluster.post(n)
    info = cluster.wait_witnessed()
    assert info["witness_quorum"] == 2 and len(info["witnesses"]) == 3
    # The published checkpoint carries the cosignatures and meets the 2-of-3 policy.
    text = cluster.http.get("/log/checkpoint").text
    sc = open_checkpoint(text, cluster.log_key.verifier)
    assert sc.checkpoint.size == info["size"]
    assert len(cluster.policy.check(sc.note)) >= 2
    witnessed = open_checkpoint(info["witnessed_checkpoint"], cluster.log_key.verifier)
    cluster.policy.check(witnessed.note)
    # A receipt read back names its cosigners; its cosigned checkpoint verifies offline.
    h = {"Authorization": f"Bearer {cluster.reader}"}
    last = cluster.http.get(f"/v1/events/{info['size'] - 1}", headers=h).json()["receipt"]
    Receipt.from_json(last).verify(cluster.log_key.verifier)
    assert len(last["cosigned_by"]) >= 2
    assert set(last["cosigned_by"]) <= {k.name for k in cluster.witness_keys}
    cluster.policy.check(
        open_checkpoint(last["cosigned_checkpoint"], cluster.log_key.verifier).note
    )
    # Trusted time: the token over the checkpoint body verifies with OpenSSL and with ours.
    size = sc.checkpoint.size
    wait_until(
        lambda: cluster.http.get(f"/v1/checkpoints/{size}/timestamp").status_code == 200,
        30,
        "no timestamp",
    )
    r = cluster.http.get(f"/v1/checkpoints/{size}/timestamp")
    assert r.headers["content-type"] == "application/timestamp-reply"
    ca = cluster.http.get("/v1/tsa/certificate").content
    assert ca.startswith(b"-----BEGIN CERTIFICATE-----")
    body = sc.note.text.encode()
    verify_timestamp(r.content, body, ca)
    (tmp_path / "body").write_bytes(body)
    (tmp_path / "reply.tsr").write_bytes(r.content)
    (tmp_path / "token.der").write_bytes(token_of(r.content))
    (tmp_path / "ca.pem").write_bytes(ca)
    for args in (["-in", "reply.tsr"], ["-in", "token.der", "-token_in"]):
        out = subprocess.run(
            ["openssl", "ts", "-verify", "-data", "body", *args, "-CAfile", "ca.pem"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert "Verification: OK" in out.stdout, out.stdout + out.stderr
    assert cluster.http.get("/v1/checkpoints/999999/timestamp").status_code == 404
    # The fresh receipt of a POST is never held back for witnesses; its fields are present.
    [fresh] = cluster.post(1)
    assert "cosigned_by" in fresh and "timestamp" in fresh


@pytest.mark.slow
def test_hung_and_killed_witnesses(cluster: Cluster) -> None:
    cluster.post(10)
    cluster.wait_witnessed()
    baseline = []
    for _ in range(20):
        t = time.perf_counter()
        cluster.post(1)
        baseline.append(time.perf_counter() - t)
    w3 = cluster.witnesses[2]
    before = w3.size()
    assert before > 0
    # A hung witness (SIGSTOP: connections open, no answer) must not slow receipts.
    os.kill(w3.proc.pid, signal.SIGSTOP)
    try:
        slow = []
        for _ in range(20):
            t = time.perf_counter()
            cluster.post(1)
            slow.append(time.perf_counter() - t)
        assert max(slow) < 2.0, slow
        assert statistics.median(slow) < 3 * statistics.median(baseline) + 0.05, (baseline, slow)
        # Two witnesses still make the quorum.
        cluster.wait_witnessed()
    finally:
        w3.kill()  # SIGKILL works on a stopped process
    # A witness killed and restarted keeps its state: it does not start again from zero.
    w3.start()
    kept = w3.size()
    assert kept >= before
    r = w3.post(AddCheckpointRequest(0, (), cluster.http.get("/log/checkpoint").text).to_text())
    assert r.status_code == 409
    assert r.headers["content-type"] == SIZE_CONTENT_TYPE
    # The 409 names the witness's size at that moment. The log is catching the restarted
    # witness up at the same time, so its size may move between our reads: the size named
    # lies between the one read before the request and the one read after.
    assert kept <= int(r.text) <= w3.size()
    # Someone else moves the witness ahead of what the log knows: the log gets 409, retries
    # from the witness's size with a proof, and keeps getting cosignatures from it.
    cluster.post(3)
    head = open_checkpoint(cluster.http.get("/log/checkpoint").text, cluster.log_key.verifier)
    old = w3.size()
    # The log submits to w3 too, at the same time: a 409 here means it moved w3 between our
    # read of the size and our request, and names the new size (C2SP tlog-witness); go on
    # from there, a bounded number of times.
    for _ in range(10):
        if old >= head.checkpoint.size:
            break
        h = {"Authorization": f"Bearer {cluster.reader}"}
        q = f"/v1/proofs/consistency?first={old}&second={head.checkpoint.size}"
        proof = [base64.b64decode(x) for x in cluster.http.get(q, headers=h).json()["hashes"]]
        req = AddCheckpointRequest(old, tuple(proof), head.to_text()).to_text()
        r = w3.post(req)
        if r.status_code == 200:
            break
        assert r.status_code == 409, (r.status_code, r.text)
        assert int(r.text) > old, "a 409 must name a size the witness moved on to"
        old = int(r.text)
    else:
        pytest.fail("the witness kept moving without cosigning the head")
    cluster.post(2)
    name = cluster.witness_keys[2].name

    def w3_current() -> bool:
        info = cluster.log_info()
        [w] = [w for w in info["witnesses"] if w["name"] == name]
        return bool(w["cosigned_size"] == info["size"])

    wait_until(w3_current, 30, "the restarted witness did not catch up")


@pytest.mark.slow
def test_forks_signed_with_the_log_key_are_kept_alarmed_and_cosigning_goes_on(
    cluster: Cluster, tmp_path: Path
) -> None:
    cluster.post(8)
    cluster.wait_witnessed()
    w1, w2 = cluster.witnesses[0], cluster.witnesses[1]
    key = cluster.log_key
    # Same size as w1 holds, another root, signed with the log's own key: 409 and evidence.
    size = w1.size()
    fork = forged(size, merkle.leaf_hash(b"another history"), key)
    r = w1.post(AddCheckpointRequest(size, (), fork).to_text())
    assert r.status_code == 409 and r.headers["content-type"] == SIZE_CONTENT_TYPE
    ev = httpx.get(w1.prefix + "/evidence").json()["evidence"]
    assert [e["kind"] for e in ev] == ["fork"] and ev[0]["submitted_checkpoint"] == fork
    # The alarm: the counters in the witness's status, and a monitor watching its evidence.
    info = w1.info()
    assert info["metrics"]["jianzheng_witness_equivocations_total"] == 1
    assert info["metrics"]["jianzheng_witness_open_equivocations"] == 1
    watch = cluster.monitor(tmp_path / "mon", None, "--witness-evidence", w1.prefix)
    assert watch.returncode == 1, watch.stdout + watch.stderr
    [finding] = json.loads(watch.stdout)["findings"]
    assert finding["kind"] == "fork" and finding["checkpoint"] == fork
    # w1 goes on cosigning the log's honest checkpoints, which extend what it cosigned.
    [log_state] = w1.info()["logs"]
    assert log_state["refused"] is None
    cluster.post(2)
    name = cluster.witness_keys[0].name

    def w1_current() -> bool:
        info = cluster.log_info()
        [w] = [w for w in info["witnesses"] if w["name"] == name]
        return bool(w["cosigned_size"] == info["size"])

    wait_until(w1_current, 30, "w1 stopped cosigning after the fork")
    # A larger forked checkpoint with a proof that cannot verify: 422, and kept too.
    size2 = w2.size()
    bigger = forged(size2 + 5, merkle.leaf_hash(b"yet another"), key)
    r = w2.post(AddCheckpointRequest(size2, (bytes(32),) * 3, bigger).to_text())
    assert r.status_code == 422
    kinds = [e["kind"] for e in httpx.get(w2.prefix + "/evidence").json()["evidence"]]
    assert kinds == ["inconsistent_proof"]
    # Signed by someone else: 403, and not evidence against the log.
    r = w2.post(
        AddCheckpointRequest(size2, (), forged(size2, bytes(32), Signer.generate(ORIGIN))).to_text()
    )
    assert r.status_code == 403
    # The operator examined it and clears it (while w1 runs): kept, no longer open.
    out = jianzheng("witness", "clear", "--data", str(w1.data), "--origin", ORIGIN)
    assert "accepted again" in out.stdout
    assert w1.info()["metrics"]["jianzheng_witness_open_equivocations"] == 0
    calm = cluster.monitor(tmp_path / "mon", None, "--witness-evidence", w1.prefix)
    assert calm.returncode == 0, calm.stdout + calm.stderr
    printed = jianzheng("witness", "evidence", "--data", str(w1.data)).stdout.splitlines()
    assert json.loads(printed[0])["cleared_at"] is not None


class _Hook(BaseHTTPRequestHandler):
    received: ClassVar[list[bytes]] = []

    def do_POST(self) -> None:
        n = int(self.headers.get("content-length", "0"))
        _Hook.received.append(self.rfile.read(n))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.mark.slow
def test_monitor_catches_fork_rollback_and_wrong_key(cluster: Cluster, tmp_path: Path) -> None:
    state = tmp_path / "mon"
    cluster.post(5)
    first = cluster.monitor(state)
    assert first.returncode == 0 and first.stdout.startswith("ok: size"), first.stderr
    cluster.post(7)  # grows: checked with a consistency proof computed from public tiles
    cluster.wait_witnessed()
    again = cluster.monitor(state)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "w1.example/witness" in again.stdout or "w2.example/witness" in again.stdout
    saved = json.loads((state / "witnessed.example_log.json").read_text())
    # A second log process with the same key and another database: a real fork.
    forkdata = tmp_path / "fork"
    forkdata.mkdir()
    (forkdata / "log.key").write_text((tmp_path / "log" / "log.key").read_text())
    (forkdata / "log.key").chmod(0o600)
    fork = Server(forkdata, None, origin=ORIGIN)
    try:
        tok = jianzheng("token", "create", "--data", str(forkdata), "--role", "platform")
        h = {"Authorization": f"Bearer {tok.stdout.split()[-1]}"}
        evs = [make_event(project="F1") for _ in range(saved["size"] + 4)]
        assert (
            httpx.post(fork.url + "/v1/events:batch", json={"events": evs}, headers=h).status_code
            == 201
        )
        server = HTTPServer(("127.0.0.1", 0), _Hook)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        hook = f"http://127.0.0.1:{server.server_address[1]}/alarm"
        try:
            out = cluster.monitor(state, fork.url, "--webhook", hook)
        finally:
            server.shutdown()
        assert out.returncode == 1, out.stdout + out.stderr
        report = json.loads(out.stdout)
        [finding] = report["findings"]
        assert finding["kind"] == "fork"
        assert finding["previous_checkpoint"] == saved["checkpoint"]
        assert json.loads(_Hook.received[-1])["findings"][0]["kind"] == "fork"
        assert list(state.glob("evidence-*.json"))
        # The state still holds the good view; the monitor still accepts the real log.
        assert cluster.monitor(state).returncode == 0
        # Seen the (bigger) fork first, the real log looks like a rollback.
        other = tmp_path / "mon2"
        assert cluster.monitor(other, fork.url).returncode == 0
        back = cluster.monitor(other)
        assert back.returncode == 1 and json.loads(back.stdout)["findings"][0]["kind"] == "rollback"
    finally:
        fork.stop()
    # A key that did not sign the checkpoint: bad signature, exit 1.
    wrong = Signer.generate(ORIGIN).verifier.vkey
    bad = jianzheng(
        "monitor",
        "--log",
        cluster.log.url,
        "--vkey",
        wrong,
        "--state",
        str(tmp_path / "m3"),
        "--once",
        check=False,
    )
    assert bad.returncode == 1 and "bad_signature" in bad.stdout
    # A log that cannot be reached: exit 2, no verdict.
    gone = jianzheng(
        "monitor",
        "--log",
        f"http://127.0.0.1:{free_port()}",
        "--vkey",
        wrong,
        "--state",
        str(tmp_path / "m4"),
        "--once",
        check=False,
    )
    assert gone.returncode == 2
