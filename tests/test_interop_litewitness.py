"""Our log against a C2SP tlog-witness nobody here wrote: litewitness (filippo.io/torchwood).

scripts/test builds litewitness and witnessctl (version pinned in scripts/versions.env);
litewitness keeps its Ed25519 key in an ssh-agent of its own. It serves tlog-witness at
the root of its listener, so its submission prefix is ``http://127.0.0.1:PORT``, and
``jianzheng serve --witness VKEY@PREFIX`` is given exactly that. litewitness starts every
log at size 0 with the empty tree, as tlog-witness suggests, so the log's first request
(old size 0, empty proof) and every later one (with consistency proofs) must pass its
checks; the cosigned checkpoint on ``/log/checkpoint`` then verifies with the witness's
key under a 1-of-1 policy.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import make_event
from tests.fixtures_servers import _unavailable
from tests.procs import Server, jianzheng
from tests.servers import free_port, torchwood_dir
from tests.test_witness_e2e import ORIGIN, write_log_key
from tests.witness_procs import wait_until
from verifier.checkpoint import open_checkpoint
from verifier.note import Signer, parse_vkey
from verifier.witnessing import WitnessPolicy

pytestmark = pytest.mark.slow


@dataclass
class LiteWitness:
    prefix: str
    vkey: str


def _run(*cmd: str | Path, env: dict[str, str] | None = None) -> str:
    out = subprocess.run(
        [str(c) for c in cmd], capture_output=True, text=True, timeout=30, env=env, check=False
    )
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout + out.stderr


@pytest.fixture
def litewitness(tmp_path: Path) -> Iterator[tuple[LiteWitness, Signer]]:
    bins = torchwood_dir()
    if bins is None:
        _unavailable("litewitness", "not built; run scripts/test")
    log_key = write_log_key(tmp_path / "log")
    sock = tmp_path / "agent.sock"
    agent = subprocess.Popen(
        ["ssh-agent", "-D", "-a", str(sock)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    lw: subprocess.Popen[bytes] | None = None
    try:
        wait_until(sock.exists, 10, "ssh-agent did not start")
        key = tmp_path / "witness_key"
        _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key)
        _run("ssh-add", key, env={**os.environ, "SSH_AUTH_SOCK": str(sock)})
        fingerprint = _run("ssh-keygen", "-l", "-E", "sha256", "-f", f"{key}.pub").split()[1]
        db = tmp_path / "litewitness.db"
        _run(bins / "witnessctl", "add-log", "-db", db, "-origin", ORIGIN)
        _run(
            bins / "witnessctl",
            "add-key",
            "-db",
            db,
            "-origin",
            ORIGIN,
            "-key",
            log_key.verifier.vkey,
        )
        port = free_port()
        log = open(tmp_path / "litewitness.log", "w")
        lw = subprocess.Popen(
            [
                str(bins / "litewitness"),
                "-db", str(db),
                "-name", "interop.example/litewitness",
                "-key", fingerprint,
                "-ssh-agent", str(sock),
                "-listen", f"127.0.0.1:{port}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip

        def printed_vkey() -> str | None:
            assert lw is not None and lw.poll() is None, (tmp_path / "litewitness.log").read_text()
            m = re.search(r"vkey=(\S+)", (tmp_path / "litewitness.log").read_text())
            return m.group(1) if m else None

        wait_until(lambda: printed_vkey() is not None, 30, "litewitness did not start")
        vkey = printed_vkey()
        assert vkey is not None
        prefix = f"http://127.0.0.1:{port}"
        wait_until(lambda: _answers(prefix), 30, "litewitness does not answer")
        yield LiteWitness(prefix, vkey), log_key
    finally:
        for p in (lw, agent):
            if p is not None and p.poll() is None:
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(10)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url + "/", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_our_log_is_cosigned_by_litewitness(
    litewitness: tuple[LiteWitness, Signer], tmp_path: Path
) -> None:
    lw, log_key = litewitness
    data = tmp_path / "log"
    srv = Server(data, None, "--witness", f"{lw.vkey}@{lw.prefix}", origin=ORIGIN)
    try:
        tok = jianzheng("token", "create", "--data", str(data), "--role", "platform")
        h = {"Authorization": f"Bearer {tok.stdout.split()[-1]}"}
        with httpx.Client(base_url=srv.url, headers=h, timeout=30) as c:
            for n in (1, 7, 3):  # several checkpoints: the later ones carry proofs
                evs = [make_event(project="LW1") for _ in range(n)]
                assert c.post("/v1/events:batch", json={"events": evs}).status_code == 201
                time.sleep(0.3)

            def witnessed() -> bool:
                info = c.get("/v1/log").json()
                return bool(info["witnessed_size"] == info["size"] == 11)

            wait_until(witnessed, 60, "litewitness did not cosign the head")
            info = c.get("/v1/log").json()
            [w] = info["witnesses"]
            assert w["reachable"] and w["message"] is None and w["cosigned_size"] == 11
            note = c.get("/log/checkpoint").text
        sc = open_checkpoint(note, log_key.verifier)
        assert sc.checkpoint.size == 11
        WitnessPolicy([parse_vkey(lw.vkey)], 1).check(sc.note)
    finally:
        srv.stop()
