"""verifier.witnessing: tlog-witness bodies, cosignatures, k-of-n policies (pure, no I/O)."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from verifier import merkle
from verifier.checkpoint import Checkpoint
from verifier.note import (
    ALG_COSIGNATURE_V1,
    NoteError,
    NoteSignature,
    Signer,
    parse_note,
    sign_note,
)
from verifier.witnessing import (
    AddCheckpointFormatError,
    AddCheckpointRequest,
    QuorumError,
    WitnessError,
    WitnessPolicy,
    cosigners,
    format_cosignatures,
    format_size,
    parse_cosignatures,
    parse_size,
)

LOG = Signer.generate("example.com/log")
WITNESSES = [Signer.generate(f"w{i}.example", ALG_COSIGNATURE_V1) for i in range(3)]


def checkpoint(size: int = 5) -> str:
    leaves = [merkle.leaf_hash(bytes([i])) for i in range(size)]
    body = Checkpoint(LOG.name, size, merkle.tree_root(leaves)).body()
    return sign_note(body, [LOG]).to_text()


def cosign(note_text: str, signers: list[Signer], ts: int = 1_700_000_000) -> str:
    note = parse_note(note_text)
    for s in signers:
        sig = s.sign(note.text.encode(), ts)
        note = note.add(NoteSignature(s.name, s.verifier.key_id, sig))
    return note.to_text()


def test_request_round_trip_matches_the_spec_layout() -> None:
    proof = (b"\x01" * 32, b"\x02" * 32)
    req = AddCheckpointRequest(20852014, proof, checkpoint())
    text = req.to_text()
    lines = text.split("\n")
    assert lines[0] == "old 20852014"
    assert lines[1] == base64.b64encode(b"\x01" * 32).decode()
    assert lines[3] == ""  # the blank line before the checkpoint
    assert AddCheckpointRequest.parse(text.encode()) == req
    assert (
        AddCheckpointRequest.parse(AddCheckpointRequest(0, (), checkpoint()).to_text()).proof == ()
    )


HASH_LINE = base64.b64encode(b"x" * 32).decode() + "\n"


@pytest.mark.parametrize(
    "head, why",
    [
        ("olde 5\n\n", "old <size>"),
        ("old 05\n\n", "decimal"),
        ("old -1\n\n", "decimal"),
        ("old 5\nnot base64!\n\n", "not base64"),
        ("old 5\n" + base64.b64encode(b"x" * 31).decode() + "\n\n", "31 bytes"),
        ("old 5\n" + HASH_LINE * 64 + "\n", "63"),
    ],
)
def test_malformed_requests_say_what_is_wrong(head: str, why: str) -> None:
    with pytest.raises(AddCheckpointFormatError, match=why):
        AddCheckpointRequest.parse(head + checkpoint())


@pytest.mark.parametrize(
    "body, why",
    [("old 5\nno blank line\n", "blank line"), ("old 5\n\nnot a note\n", "checkpoint")],
)
def test_requests_without_a_checkpoint_note_are_refused(body: str, why: str) -> None:
    with pytest.raises(AddCheckpointFormatError, match=why):
        AddCheckpointRequest.parse(body)


def test_oversized_and_non_utf8_requests_are_refused() -> None:
    with pytest.raises(AddCheckpointFormatError, match="larger"):
        AddCheckpointRequest.parse(b"old 0\n\n" + b"x" * (65 << 10))
    with pytest.raises(AddCheckpointFormatError, match="UTF-8"):
        AddCheckpointRequest.parse(b"old 0\n\n\xff\n")


def test_size_bodies() -> None:
    assert format_size(42) == "42\n"
    assert parse_size(b"42\n") == 42
    for bad in (b"42", b"042\n", b"x\n", b""):
        with pytest.raises(AddCheckpointFormatError):
            parse_size(bad)


def test_cosigners_returns_valid_cosignatures_and_their_times() -> None:
    text = cosign(checkpoint(), WITNESSES[:2], ts=1_700_000_123)
    found = cosigners(parse_note(text), [w.verifier for w in WITNESSES])
    assert [(v.name, t) for v, t in found] == [
        ("w0.example", 1_700_000_123),
        ("w1.example", 1_700_000_123),
    ]


def test_unknown_cosigners_are_ignored_and_a_tampered_known_one_raises() -> None:
    stranger = Signer.generate("stranger.example", ALG_COSIGNATURE_V1)
    text = cosign(checkpoint(), [stranger, WITNESSES[0]])
    assert [v.name for v, _ in cosigners(parse_note(text), [WITNESSES[0].verifier])] == [
        "w0.example"
    ]
    note = parse_note(text)
    bad = note.signatures[-1]
    forged = NoteSignature(bad.name, bad.key_id, bad.sig[:8] + bytes(64))
    tampered = parse_note(note.text + "\n" + note.signatures[0].line() + forged.line())
    with pytest.raises(NoteError, match="does not verify"):
        cosigners(tampered, [WITNESSES[0].verifier])


def test_a_cosignature_with_another_time_does_not_verify() -> None:
    note = parse_note(cosign(checkpoint(), [WITNESSES[0]], ts=100))
    s = note.signatures[-1]
    moved = NoteSignature(s.name, s.key_id, (101).to_bytes(8, "big") + s.sig[8:])
    with pytest.raises(NoteError):
        cosigners(
            parse_note(note.text + "\n" + note.signatures[0].line() + moved.line()),
            [WITNESSES[0].verifier],
        )


def test_policy_k_of_n() -> None:
    policy = WitnessPolicy([w.verifier for w in WITNESSES], 2)
    one = parse_note(cosign(checkpoint(), WITNESSES[:1]))
    two = parse_note(cosign(checkpoint(), [WITNESSES[0], WITNESSES[2]]))
    assert {v.name for v, _ in policy.check(two)} == {"w0.example", "w2.example"}
    with pytest.raises(QuorumError, match="needs 2 of 3") as e:
        policy.check(one)
    assert e.value.have == ("w0.example",)
    assert policy.met_by([WITNESSES[1].verifier, WITNESSES[2].verifier])
    assert not policy.met_by([WITNESSES[1].verifier, LOG.verifier])


def test_policy_refuses_nonsense() -> None:
    ws = [w.verifier for w in WITNESSES]
    with pytest.raises(WitnessError, match="between 1 and 3"):
        WitnessPolicy(ws, 4)
    with pytest.raises(WitnessError, match="between 1 and 3"):
        WitnessPolicy(ws, 0)
    with pytest.raises(WitnessError, match="twice"):
        WitnessPolicy([ws[0], ws[0]], 1)
    with pytest.raises(WitnessError, match="type 0x04"):
        WitnessPolicy([LOG.verifier], 1)
    assert WitnessPolicy([], 0).check(parse_note(checkpoint())) == []


def test_a_reply_is_appended_to_the_checkpoint_like_a_note() -> None:
    cp = parse_note(checkpoint())
    w = WITNESSES[1]
    sig = NoteSignature(w.name, w.verifier.key_id, w.sign(cp.text.encode(), 7))
    reply = format_cosignatures([sig])
    assert reply.startswith("\u2014 w1.example ") and reply.endswith("\n")
    merged = parse_cosignatures(reply.encode(), cp)
    assert [v.name for v, _ in cosigners(merged, [w.verifier])] == ["w1.example"]
    for bad in ("", "no dash\n", "\u2014 w1.example AAAA"):
        with pytest.raises(AddCheckpointFormatError):
            parse_cosignatures(bad, cp)


def test_non_ascii_proof_lines_are_a_format_error() -> None:
    with pytest.raises(AddCheckpointFormatError, match="not base64"):
        AddCheckpointRequest.parse("old 1\n\u00e9\n\n" + checkpoint())


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600) | st.text(max_size=600).map(str.encode))
def test_any_body_parses_or_fails_with_a_format_error(body: bytes) -> None:
    for candidate in (body, b"old 0\n\n" + body, b"old 3\n" + body + b"\n\n" + body):
        try:
            AddCheckpointRequest.parse(candidate)
        except AddCheckpointFormatError:
            pass
