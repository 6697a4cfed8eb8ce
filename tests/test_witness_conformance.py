"""C2SP tlog-witness conformance of ``jianzheng witness serve``, from the spec's text alone.

The client here shares no code with the log: requests are built by hand from
c2sp.org/tlog-witness (§add-checkpoint), the checkpoints from c2sp.org/tlog-checkpoint,
their signatures and key strings from c2sp.org/signed-note, the Merkle hashes and
consistency proofs from RFC 6962 §2.1, and the cosignatures are checked as
c2sp.org/tlog-cosignature describes, with nothing but ``hashlib`` and ``cryptography``.
The witness is a real process on loopback, set up with the operator's command.

Each test uses its own log (origin), so the module shares one witness process.
"""

from __future__ import annotations

import base64
import hashlib
import struct
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from api.cli import main as cli_main
from tests.procs import jianzheng
from tests.witness_procs import WitnessProc

SIZE_TYPE = "text/x.tlog.size"
EM_DASH = "\u2014"


# --- RFC 6962 §2.1: Merkle Tree Hash and consistency proofs ------------------------------


def sha256(b: bytes) -> bytes:
    return hashlib.sha256(b).digest()


def split(n: int) -> int:
    """The largest power of two smaller than n (n > 1)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def mth(entries: list[bytes]) -> bytes:
    if not entries:
        return sha256(b"")
    if len(entries) == 1:
        return sha256(b"\x00" + entries[0])
    k = split(len(entries))
    return sha256(b"\x01" + mth(entries[:k]) + mth(entries[k:]))


def subproof(m: int, entries: list[bytes], whole: bool) -> list[bytes]:
    n = len(entries)
    if m == n:
        return [] if whole else [mth(entries)]
    k = split(n)
    if m <= k:
        return [*subproof(m, entries[:k], whole), mth(entries[k:])]
    return [*subproof(m - k, entries[k:], False), mth(entries[:k])]


def proof(m: int, entries: list[bytes]) -> list[bytes]:
    """PROOF(m, D[n]) for 0 < m <= n."""
    return subproof(m, entries, True)


ENTRIES = [f"entry {i}".encode() for i in range(100)]


# --- signed-note keys and signatures -----------------------------------------------------


def raw(pub: Ed25519PublicKey) -> bytes:
    return pub.public_bytes(Encoding.Raw, PublicFormat.Raw)


def key_id(name: str, alg: int, pub: bytes) -> bytes:
    return sha256(name.encode() + b"\n" + bytes([alg]) + pub)[:4]


@dataclass
class LogKey:
    """A log's Ed25519 note key (signature type 0x01), named by its origin."""

    origin: str
    private: Ed25519PrivateKey

    @classmethod
    def new(cls, origin: str) -> LogKey:
        return cls(origin, Ed25519PrivateKey.generate())

    @property
    def pub(self) -> bytes:
        return raw(self.private.public_key())

    @property
    def vkey(self) -> str:
        kid = key_id(self.origin, 0x01, self.pub).hex()
        blob = base64.b64encode(bytes([0x01]) + self.pub).decode()
        return f"{self.origin}+{kid}+{blob}"

    def checkpoint(
        self, size: int, entries: list[bytes] = ENTRIES, root: bytes | None = None
    ) -> str:
        """tlog-checkpoint: origin, size, base64 root, then the signed-note signature."""
        r = mth(entries[:size]) if root is None else root
        body = f"{self.origin}\n{size}\n{base64.b64encode(r).decode()}\n"
        sig = self.private.sign(body.encode())
        kid = key_id(self.origin, 0x01, self.pub)
        return body + f"\n{EM_DASH} {self.origin} {base64.b64encode(kid + sig).decode()}\n"


def request(old: int, checkpoint: str, hashes: list[bytes] | None = None) -> bytes:
    """tlog-witness §add-checkpoint body: old size line, proof lines, empty line, checkpoint."""
    lines = [f"old {old}\n"] + [base64.b64encode(h).decode() + "\n" for h in hashes or []]
    return ("".join(lines) + "\n" + checkpoint).encode()


def extend(old: int, new: int, log: LogKey, entries: list[bytes] = ENTRIES) -> bytes:
    hashes = proof(old, entries[:new]) if 0 < old < new else []
    return request(old, log.checkpoint(new, entries), hashes)


# --- the witness -----------------------------------------------------------------------


@dataclass
class Witness:
    proc: WitnessProc
    name: str
    pub: bytes
    http: httpx.Client

    @property
    def prefix(self) -> str:
        return self.proc.prefix

    def add(self, body: bytes) -> httpx.Response:
        return self.http.post(self.prefix + "/add-checkpoint", content=body)

    def verify_cosignature(self, checkpoint: str, reply: str) -> int:
        """tlog-cosignature v1: the reply's line by this witness verifies; its timestamp."""
        body = checkpoint.split("\n\n", 1)[0] + "\n"
        kid = key_id(self.name, 0x04, self.pub)
        mine = []
        for line in reply.splitlines(keepends=True):
            assert line.startswith(EM_DASH + " ") and line.endswith("\n"), line
            name, b64 = line[2:-1].split(" ")
            blob = base64.b64decode(b64)
            if name == self.name and blob[:4] == kid:
                mine.append(blob[4:])
        [sig] = mine
        assert len(sig) == 8 + 64
        (ts,) = struct.unpack(">Q", sig[:8])
        msg = f"cosignature/v1\ntime {ts}\n{body}".encode()
        Ed25519PublicKey.from_public_bytes(self.pub).verify(sig[8:], msg)
        return int(ts)


@pytest.fixture(scope="module")
def witness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Witness]:
    data = tmp_path_factory.mktemp("conformance") / "w"
    vkey = jianzheng("witness", "key", "--data", str(data), "--name", "w.example/conf")
    name, _, b64 = vkey.stdout.strip().split("+", 2)  # base64 may hold "+"
    blob = base64.b64decode(b64)
    assert blob[0] == 0x04  # a cosignature/v1 key
    proc = WitnessProc(data)
    try:
        with httpx.Client(timeout=20) as http:
            yield Witness(proc, name, blob[1:], http)
    finally:
        proc.stop()


_n = 0


@pytest.fixture
def log(witness: Witness) -> LogKey:
    """A new log this witness witnesses (``jianzheng witness add-log``, while it runs)."""
    global _n
    _n += 1
    key = LogKey.new(f"conformance.example/log{_n}")
    # The operator's command, in this process (a subprocess per test costs seconds).
    assert (
        cli_main(["witness", "add-log", "--data", str(witness.proc.data), "--vkey", key.vkey]) == 0
    )
    return key


def assert_size(r: httpx.Response, size: int) -> None:
    """409 with the latest cosigned size: decimal, newline, Content-Type text/x.tlog.size."""
    assert r.status_code == 409, r.text
    assert r.headers["content-type"] == SIZE_TYPE
    assert r.content == f"{size}\n".encode()


# --- the tests -----------------------------------------------------------------------------


def test_200_returns_a_timestamped_cosignature_that_verifies(witness: Witness, log: LogKey) -> None:
    cp = log.checkpoint(5)
    r = witness.add(request(0, cp))
    assert r.status_code == 200, r.text
    ts = witness.verify_cosignature(cp, r.text)
    assert ts > 1_700_000_000
    # With a consistency proof from the size it holds.
    cp2 = log.checkpoint(13)
    r = witness.add(request(5, cp2, proof(5, ENTRIES[:13])))
    assert r.status_code == 200, r.text
    witness.verify_cosignature(cp2, r.text)
    # The same checkpoint again (old size = checkpoint size, same root, empty proof).
    assert witness.add(request(13, cp2)).status_code == 200


def test_400_old_size_above_the_checkpoint_and_malformed_bodies(
    witness: Witness, log: LogKey
) -> None:
    assert witness.add(request(7, log.checkpoint(5))).status_code == 400
    cp = log.checkpoint(5)
    for body in (
        b"old 01\n\n" + cp.encode(),  # leading zero
        b"old -1\n\n" + cp.encode(),
        b"new 0\n\n" + cp.encode(),  # not an old size line
        b"old 0\n" + cp.encode(),  # no empty line before the checkpoint
        b"old 0\nnot base64!\n\n" + cp.encode(),
        ("old 0\n" + "AAAA\n" + "\n" + cp).encode(),  # a proof line that is not 32 bytes
        request(0, "not a note"),
        request(0, cp, [b"\x00" * 32] * 64),  # more than 63 proof lines
    ):
        r = witness.add(body)
        assert r.status_code == 400, (body[:40], r.status_code, r.text)
    # Nothing of it was stored: the first real request still starts from 0.
    assert witness.add(request(0, cp)).status_code == 200


def test_403_no_signature_from_a_trusted_key(witness: Witness, log: LogKey) -> None:
    impostor = LogKey(log.origin, Ed25519PrivateKey.generate())  # same origin, other key
    assert witness.add(request(0, impostor.checkpoint(3))).status_code == 403
    # A signature line with the log's name and key ID but a wrong signature.
    cp = log.checkpoint(3)
    body, sig_line = cp.rsplit("\n\n", 1)
    blob = bytearray(base64.b64decode(sig_line.split(" ")[2]))
    blob[10] ^= 1
    bad = body + f"\n\n{EM_DASH} {log.origin} {base64.b64encode(bytes(blob)).decode()}\n"
    assert witness.add(request(0, bad)).status_code == 403
    # Unknown keys are ignored: a trusted signature among them is enough.
    other = LogKey("someone.example/else", Ed25519PrivateKey.generate())
    extra = other.checkpoint(3).rsplit("\n\n", 1)[1]
    assert witness.add(request(0, cp + extra)).status_code == 200


def test_404_unknown_origin(witness: Witness) -> None:
    stranger = LogKey.new("not-witnessed.example/log")
    assert witness.add(request(0, stranger.checkpoint(3))).status_code == 404


def test_409_old_size_mismatch_and_same_size_other_root(witness: Witness, log: LogKey) -> None:
    assert witness.add(request(0, log.checkpoint(8))).status_code == 200
    assert_size(witness.add(extend(3, 10, log)), 8)
    assert_size(witness.add(request(0, log.checkpoint(10))), 8)
    # Same size as stored, another root (both signed by the log): 409 as well.
    forked = [b"rewritten", *ENTRIES[1:]]
    assert_size(witness.add(request(8, log.checkpoint(8, forked))), 8)


def test_422_consistency_proof_that_does_not_verify(witness: Witness, log: LogKey) -> None:
    assert witness.add(request(0, log.checkpoint(8))).status_code == 200
    good = proof(8, ENTRIES[:20])
    assert (
        witness.add(request(8, log.checkpoint(20), [b"\x07" * 32] * len(good))).status_code == 422
    )
    assert witness.add(request(8, log.checkpoint(20), good[:-1])).status_code == 422
    # A tree that does not extend the stored one, with its own (valid) proof: 422.
    other = [b"rewritten", *ENTRIES[1:]]
    assert witness.add(extend(8, 20, log, other)).status_code == 422
    # Equal sizes need an empty proof.
    assert witness.add(request(8, log.checkpoint(8), [good[0]])).status_code == 422
    assert witness.add(extend(8, 20, log)).status_code == 200


def test_size_zero_first_then_extensions(witness: Witness, log: LogKey) -> None:
    """A log that publishes the empty tree first (Tessera does): 0 -> 0 -> n -> 409."""
    empty = log.checkpoint(0)
    assert log.checkpoint(0).split("\n")[2] == base64.b64encode(sha256(b"")).decode()
    r = witness.add(request(0, empty))
    assert r.status_code == 200, r.text
    witness.verify_cosignature(empty, r.text)
    # 0 -> 0 again: the same checkpoint, cosigned again.
    assert witness.add(request(0, empty)).status_code == 200
    # "The proof MUST be empty if the old size is zero": a proof line makes it 422.
    assert witness.add(request(0, log.checkpoint(6), [mth(ENTRIES[:1])])).status_code == 422
    # 0 -> n with the empty proof.
    cp = log.checkpoint(6)
    r = witness.add(request(0, cp))
    assert r.status_code == 200, r.text
    witness.verify_cosignature(cp, r.text)
    # A second 0 -> n after one was cosigned: the witness holds 6, so 409 with "6\n".
    assert_size(witness.add(request(0, log.checkpoint(9))), 6)
    assert_size(witness.add(request(0, empty)), 6)
    # And the log carries on from what the witness holds.
    assert witness.add(extend(6, 9, log)).status_code == 200


def test_size_zero_to_n_without_an_empty_checkpoint_first(witness: Witness, log: LogKey) -> None:
    assert witness.add(request(0, log.checkpoint(1))).status_code == 200
    assert_size(witness.add(request(0, log.checkpoint(1))), 1)
    assert witness.add(request(1, log.checkpoint(1))).status_code == 200


@pytest.mark.parametrize("start", [0, 4])
def test_concurrent_requests_with_the_same_old_size_one_wins(
    witness: Witness, log: LogKey, start: int
) -> None:
    if start:
        assert witness.add(request(0, log.checkpoint(start))).status_code == 200
    sizes = list(range(start + 1, start + 17))
    bodies = [extend(start, n, log) for n in sizes]
    replies: list[httpx.Response | None] = [None] * len(bodies)
    gate = threading.Barrier(len(bodies))

    def send(i: int) -> None:
        with httpx.Client(timeout=20) as c:
            gate.wait(10)
            replies[i] = c.post(witness.prefix + "/add-checkpoint", content=bodies[i])

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(bodies))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    got = [r for r in replies if r is not None]
    assert len(got) == len(bodies)
    won = [i for i, r in enumerate(got) if r.status_code == 200]
    assert len(won) == 1, [r.status_code for r in got]
    winner = sizes[won[0]]
    for i, r in enumerate(got):
        if i != won[0]:
            assert_size(r, winner)


def test_after_equivocation_extensions_are_still_cosigned(witness: Witness, log: LogKey) -> None:
    """tlog-witness: when all checks pass, the witness MUST cosign; the fork is kept."""
    before = httpx.get(witness.prefix + "/").json()["metrics"]
    assert witness.add(request(0, log.checkpoint(10))).status_code == 200
    fork = log.checkpoint(10, [b"rewritten", *ENTRIES[1:]])
    assert_size(witness.add(request(10, fork)), 10)
    after = httpx.get(witness.prefix + "/").json()
    metric = "jianzheng_witness_equivocations_total"
    assert after["metrics"][metric] == before[metric] + 1
    ev = httpx.get(witness.prefix + "/evidence").json()["evidence"]
    assert any(e["submitted_checkpoint"] == fork for e in ev)
    r = witness.add(extend(10, 15, log))
    assert r.status_code == 200
    witness.verify_cosignature(log.checkpoint(15), r.text)


def test_status_names_the_submission_prefix_and_head_mirrors_get(witness: Witness) -> None:
    info = httpx.get(witness.prefix + "/")
    assert info.json()["submission_prefix"] == witness.prefix
    # ``jianzheng witness serve`` prints it for the operator to hand to logs.
    printed = Path(witness.proc.log.name).read_text()
    assert f"submission prefix: {witness.prefix}\n" in printed
    for path in ("/", "/evidence", "/evidence?after=0&limit=5"):
        get = httpx.get(witness.prefix + path)
        head = httpx.head(witness.prefix + path)
        assert head.status_code == get.status_code == 200
        assert head.content == b""
        for h in ("content-type", "content-length"):
            assert head.headers[h] == get.headers[h], h
    # The bare URL is not the prefix: the 404 says which URL is.
    r = witness.http.post(witness.proc.url + "/add-checkpoint", content=b"old 0\n\n")
    assert r.status_code == 404 and witness.prefix in r.json()["error"]["message"]


def test_serve_options_prefix_at_the_root_and_refusal_after_equivocation(
    tmp_path: Path,
) -> None:
    """``witness serve --prefix / --refuse-after-equivocation``, as litewitness serves."""
    data = tmp_path / "root"
    log = LogKey.new("conformance.example/root")
    assert cli_main(["witness", "add-log", "--data", str(data), "--vkey", log.vkey]) == 0
    proc = WitnessProc(data, None, "--prefix", "/", "--refuse-after-equivocation")
    try:
        assert proc.prefix == proc.url
        info = httpx.get(proc.prefix + "/").json()
        assert info["submission_prefix"] == proc.url and info["refuse_after_equivocation"]
        add = proc.prefix + "/add-checkpoint"
        assert httpx.post(add, content=request(0, log.checkpoint(4))).status_code == 200
        fork = log.checkpoint(4, [b"rewritten", *ENTRIES[1:]])
        assert httpx.post(add, content=request(4, fork)).status_code == 409
        # In this mode the honest extension is refused until an operator clears the log.
        assert httpx.post(add, content=extend(4, 6, log)).status_code == 403
        assert cli_main(["witness", "clear", "--data", str(data), "--origin", log.origin]) == 0
        assert httpx.post(add, content=extend(4, 6, log)).status_code == 200
    finally:
        proc.stop()
