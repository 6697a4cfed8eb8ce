"""The log side of witnessing on SQLite and PostgreSQL, against a real witness process.

Cosignatures and tokens land in the ledger's database (migration 0003), survive a restart
of the submitter, and a witness nobody answers for never holds up an append.
"""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from ledger.bundle import sources_for
from ledger.records import validate_event
from ledger.service import Ledger, NotFound
from ledger.witnessing.submitter import WitnessConfigError, WitnessEndpoint, Witnessing
from ledger.witnessing.view import WitnessingView, receipt_fields_for
from tests.conftest import make_event
from tests.procs import jianzheng
from tests.servers import free_port
from tests.test_storage import LiveServer
from tests.witness_procs import WitnessProc, wait_until
from verifier.checkpoint import open_checkpoint
from verifier.note import ALG_COSIGNATURE_V1, Signer
from verifier.timestamp import verify_timestamp
from verifier.witnessing import WitnessPolicy
from witness.server import WitnessCore, create_witness_app, load_or_create_witness_key
from witness.state import WitnessStore
from witness.tsa import BuiltinTimestamper, TimestampAuthority


def post(lg: Ledger, n: int) -> None:
    subs = [validate_event(make_event(project="W1"), lg.catalogue) for _ in range(n)]
    lg.append(subs, "p1").result(timeout=60)


@pytest.fixture
def witness_for(tmp_path: Path) -> Iterator[Any]:
    procs: list[WitnessProc] = []

    def start(lg: Ledger, name: str) -> WitnessEndpoint:
        data = tmp_path / name
        out = jianzheng(
            "witness",
            "add-log",
            "--data",
            str(data),
            "--name",
            name,
            "--vkey",
            lg.signer.verifier.vkey,
        )
        p = WitnessProc(data)
        procs.append(p)
        return WitnessEndpoint.parse(f"{out.stdout.split()[-1]}@{p.prefix}")

    yield start
    for p in procs:
        p.stop()


def test_cosignatures_and_tokens_are_stored_and_reloaded(
    ledger_factory: Any, witness_for: Any, tmp_path: Path
) -> None:
    lg: Ledger = ledger_factory()
    ep = witness_for(lg, "solo.example/w")
    tsa = BuiltinTimestamper(TimestampAuthority.load_or_create(tmp_path / "tsa", "t"))
    w = Witnessing.start(lg, [ep], 1, tsa)
    try:
        # Nothing is attached to the ledger: readers get the witnessing passed explicitly.
        assert "cosigned_checkpoint" not in vars(lg) and "witnessing" not in vars(lg)
        view: WitnessingView = w
        for n in (3, 1, 7):
            post(lg, n)
        size = lg.head().size
        wait_until(lambda: w.witnessed_size() == size, 30, "not witnessed")
        wait_until(lambda: w.timestamp_reply(size) is not None, 30, "no token")
        note = w.cosigned_checkpoint(size)
        sc = open_checkpoint(note, lg.signer.verifier)
        WitnessPolicy([ep.verifier], 1).check(sc.note)
        assert w.cosigned_by(size) == ["solo.example/w"]
        reply = w.timestamp_reply(size)
        assert reply is not None
        verify_timestamp(reply, sc.note.text.encode(), w.tsa_ca_pem())
        fields = receipt_fields_for(w, lg.checkpoint_at(size))
        assert fields["cosigned_by"] == ["solo.example/w"] and fields["timestamp"]
        with pytest.raises(NotFound):
            w.cosigned_checkpoint(size + 1000)
        # The same answers through the interface the bundle exporter and the API use.
        src = sources_for(view)
        assert src.witness_policy is not None and src.cosigned_checkpoint is not None
        assert src.witness_policy() == ([ep.verifier.vkey], 1)
        assert src.cosigned_checkpoint(size) == note
        assert src.tsa_ca_pem is not None and src.tsa_ca_pem() == w.tsa_ca_pem()
        with TestClient(create_app(lg, rate_limit=0, witnessing=view)) as c:
            info = c.get("/v1/log").json()
            assert (info["witnessed_size"], info["witness_quorum"]) == (size, 1)
            assert c.get("/log/checkpoint").text == note
            assert c.get(f"/v1/checkpoints/{size}/timestamp").content == reply
    finally:
        w.close()
    # A new submitter on the same database knows what was gathered.
    again = Witnessing(lg, [ep], 1, tsa)
    again._start()
    try:
        assert again.witnessed_size() == size
        assert again.cosigned_by(size) == ["solo.example/w"]
        assert again.timestamp_reply(size) == reply
    finally:
        again.close()


def test_a_witness_that_never_answers_does_not_hold_up_appends(ledger_factory: Any) -> None:
    lg: Ledger = ledger_factory()
    # A socket that accepts connections and never answers: the worst kind of witness.
    hole = socket.socket()
    hole.bind(("127.0.0.1", 0))
    hole.listen(64)
    key = Signer.generate("hole.example", ALG_COSIGNATURE_V1).verifier
    ep = WitnessEndpoint.parse(f"{key.vkey}@http://127.0.0.1:{hole.getsockname()[1]}")
    w = Witnessing.start(lg, [ep], 1, None, timeout=3.0)
    try:
        t = time.perf_counter()
        for _ in range(20):
            post(lg, 1)
        assert time.perf_counter() - t < 5.0
        assert w.witnessed_size() == 0
        assert receipt_fields_for(w, lg.head())["cosigned_by"] == []
        with pytest.raises(NotFound):
            w.tsa_ca_pem()
    finally:
        t = time.perf_counter()
        w.close()
        hole.close()
    assert time.perf_counter() - t < 10.0  # close waits at most for one request timeout


def test_a_witness_that_comes_back_catches_up_on_an_idle_log(
    ledger_factory: Any, tmp_path: Path
) -> None:
    lg: Ledger = ledger_factory()
    data = tmp_path / "late"
    out = jianzheng(
        "witness",
        "add-log",
        "--data",
        str(data),
        "--name",
        "late.example/w",
        "--vkey",
        lg.signer.verifier.vkey,
    )
    port = free_port()
    ep = WitnessEndpoint.parse(f"{out.stdout.split()[-1]}@http://127.0.0.1:{port}/witness")
    w = Witnessing.start(lg, [ep], 1, None, timeout=2.0)
    proc = None
    try:
        post(lg, 4)  # the witness is not up yet: refused connections, back-off
        time.sleep(0.5)
        assert w.witnessed_size() == 0
        proc = WitnessProc(data, port)
        # No new checkpoint: the retry after the back-off brings the witness up to date.
        wait_until(lambda: w.witnessed_size() == lg.head().size, 30, "did not catch up")
    finally:
        w.close()
        if proc is not None:
            proc.stop()


def test_the_log_submits_to_a_witness_at_a_plain_prefix(
    ledger_factory: Any, tmp_path: Path
) -> None:
    """tlog-witness: the log posts to ``<submission prefix>/add-checkpoint``, whatever the
    prefix; a URL that is not the prefix (404) is named as the likely cause in /v1/log."""
    lg: Ledger = ledger_factory()
    signer = load_or_create_witness_key(tmp_path / "w", "prefixed.example/w")
    store = WitnessStore.open(tmp_path / "w")
    store.add_log(lg.signer.verifier.vkey)
    core = WitnessCore(store, signer)
    core.start()
    server = LiveServer(create_witness_app(core, "/some/prefix"))
    good = WitnessEndpoint.parse(f"{signer.verifier.vkey}@{server.url}/some/prefix")
    # Another witness configured with the service's bare URL instead of its prefix.
    stray = Signer.generate("stray.example/w", ALG_COSIGNATURE_V1).verifier
    wrong = WitnessEndpoint.parse(f"{stray.vkey}@{server.url}")
    w = Witnessing.start(lg, [good, wrong], 1, None, timeout=5.0)
    try:
        post(lg, 3)
        size = lg.head().size
        wait_until(lambda: w.witnessed_size() == size, 30, "not witnessed via the prefix")
        assert w.cosigned_by(size) == ["prefixed.example/w"]
        assert core.store.logs()[0]["size"] == size

        def stray_status() -> dict[str, Any]:
            [st] = [s for s in w.status() if s["name"] == "stray.example/w"]
            return st

        wait_until(lambda: stray_status()["message"] is not None, 30, "no message")
        st = stray_status()
        assert st["reachable"] is False and "404" in st["message"]
        assert "submission prefix" in st["message"] and server.url not in st["message"]
        [ok] = [s for s in w.status() if s["name"] == "prefixed.example/w"]
        assert ok["reachable"] is True and ok["message"] is None
        with TestClient(create_app(lg, rate_limit=0, witnessing=w)) as c:
            shown = {s["name"]: s for s in c.get("/v1/log").json()["witnesses"]}
            assert "submission prefix" in shown["stray.example/w"]["message"]
    finally:
        w.close()
        server.stop()
        core.stop()
        store.close()


@pytest.mark.parametrize(
    "url, why",
    [
        ("http://w.example/witness/add-checkpoint", "without '/add-checkpoint'"),
        ("ftp://w.example/witness", "http(s)"),
        ("http://w.example/witness?x=1", "plain prefix"),
    ],
)
def test_witness_urls_that_are_not_a_submission_prefix_are_refused(url: str, why: str) -> None:
    key = Signer.generate("w.example", ALG_COSIGNATURE_V1).verifier
    with pytest.raises(WitnessConfigError, match=re.escape(why)):
        WitnessEndpoint.parse(f"{key.vkey}@{url}")
    ep = WitnessEndpoint.parse(f"{key.vkey}@http://w.example/witness/")
    assert ep.prefix == "http://w.example/witness"
    assert ep.url == "http://w.example/witness/add-checkpoint"
