"""C2SP signed-note, tlog-cosignature, tlog-checkpoint and tlog-proof: the reference
implementation's vector, every malformed input with the error it must name, and each
limit at its boundary (pure, no I/O)."""

from __future__ import annotations

import base64
import hashlib
import struct
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from verifier import merkle
from verifier.checkpoint import (
    MAX_PROOF_HASHES,
    Checkpoint,
    CheckpointError,
    InclusionProof,
    TlogProof,
    open_checkpoint,
    parse_signed_checkpoint,
    tlog_proof_text,
)
from verifier.note import (
    ALG_COSIGNATURE_V1,
    ALG_ED25519,
    MAX_NOTE_BYTES,
    MAX_SIGNATURES,
    Note,
    NoteError,
    NoteSignature,
    Signer,
    UnverifiedNoteError,
    Verifier,
    cosignature_message,
    cosignature_time,
    key_id,
    open_note,
    parse_note,
    parse_vkey,
    sign_note,
    verified_by,
)

# The example of golang.org/x/mod/sumdb/note (the signed-note reference implementation).
GO_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
GO_SIG = (
    "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM="
)
GO_NOTE = GO_TEXT + "\n\u2014 PeterNeumann " + GO_SIG + "\n"


def raises(exc: type[Exception], message: str, fn: Callable[[], object]) -> None:
    """``fn`` raises ``exc`` with exactly ``message``."""
    with pytest.raises(exc) as e:
        fn()
    assert str(e.value) == message


def seeded(n: int) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(bytes([n]) * 32)


# --- signed-note: keys --------------------------------------------------------------------


def test_the_reference_vector_signs_and_opens() -> None:
    signer = Signer.from_skey(GO_SKEY)
    assert signer.skey == GO_SKEY
    assert signer.verifier.vkey == GO_VKEY
    assert signer.verifier.key_id == bytes.fromhex("c74f20a3")
    assert key_id("PeterNeumann", ALG_ED25519, signer.public).hex() == "c74f20a3"
    v = parse_vkey(GO_VKEY)
    assert v == signer.verifier and (v.name, v.alg) == ("PeterNeumann", ALG_ED25519)
    assert parse_vkey(GO_VKEY + "\n") == v  # surrounding whitespace is ignored
    note = sign_note(GO_TEXT, [signer])
    assert note.to_text() == GO_NOTE
    [sig] = note.signatures
    assert sig.line() == "\u2014 PeterNeumann " + GO_SIG + "\n"
    opened = open_note(GO_NOTE.encode(), v)
    assert opened == parse_note(GO_NOTE) == note
    assert opened.text == GO_TEXT
    tampered = GO_NOTE.replace("cryptography", "cryptographY", 1)
    raises(NoteError, "signature by PeterNeumann does not verify", lambda: open_note(tampered, v))
    other = Signer("PeterNeumann", seeded(1)).verifier
    raises(
        UnverifiedNoteError,
        f"note is not signed by PeterNeumann ({other.key_id.hex()})",
        lambda: open_note(GO_NOTE, other),
    )


def test_key_ids_cover_name_algorithm_and_key() -> None:
    pub = Signer("a", seeded(2)).public
    want = hashlib.sha256(b"a\n\x01" + pub).digest()[:4]
    assert key_id("a", ALG_ED25519, pub) == want
    assert len({key_id("a", 1, pub), key_id("b", 1, pub), key_id("a", 4, pub)}) == 3


def test_a_base64_key_holding_a_plus_sign_is_split_correctly() -> None:
    signer = next(
        s for s in (Signer("k", seeded(n)) for n in range(200)) if "+" in s.verifier.vkey[12:]
    )
    assert parse_vkey(signer.verifier.vkey) == signer.verifier
    assert Signer.from_skey(signer.skey).verifier == signer.verifier
    assert Signer.from_skey(" " + signer.skey + "\n").skey == signer.skey


@pytest.mark.parametrize("name", ["", "a+b", "a b", "a\tb", "a\u3000b"])
def test_key_names_without_spaces_or_plus(name: str) -> None:
    msg = f"invalid key name {name!r}: it must be non-empty, without spaces or '+'"
    raises(NoteError, msg, lambda: Signer(name, seeded(3)))
    if "+" not in name:  # a vkey cannot even spell such a name
        raises(NoteError, msg, lambda: parse_vkey(f"{name}+00000000+AAAA"))


def test_malformed_verifier_keys_are_named() -> None:
    v = Signer("log", seeded(4)).verifier
    blob = base64.b64encode(bytes([ALG_ED25519]) + v.public).decode()
    kid = v.key_id.hex()
    cases = {
        "log+" + kid: "must have the form name+keyid+key",
        f"log+{kid}+%%%%": "bad hex key ID or base64 key",
        f"log+zz+{blob}": "bad hex key ID or base64 key",
        f"log+{kid[:6]}+{blob}": "want a 4-byte key ID and a 32-byte key",
        f"log+{kid}+{base64.b64encode(v.public).decode()}": (
            "want a 4-byte key ID and a 32-byte key"
        ),
        f"log+00000000+{blob}": "key ID does not match the key",
    }
    for vkey, why in cases.items():
        sep = " " if why.startswith("must") else ": "
        raises(NoteError, f"verifier key {vkey!r}{sep}{why}", lambda vkey=vkey: parse_vkey(vkey))
    odd = bytes([0x02]) + v.public
    vkey = f"log+{key_id('log', 2, v.public).hex()}+{base64.b64encode(odd).decode()}"
    raises(
        NoteError, f"verifier key {vkey!r}: unsupported algorithm 0x02", lambda: parse_vkey(vkey)
    )
    cos = Signer("w", seeded(5), ALG_COSIGNATURE_V1).verifier
    assert parse_vkey(cos.vkey) == cos and cos.alg == ALG_COSIGNATURE_V1


def test_malformed_private_keys_are_named() -> None:
    good = Signer("log", seeded(6)).skey
    name_kid = good.rsplit("+", 1)[0]
    seed = base64.b64encode(b"\x01" + bytes(31)).decode()
    cases = {
        "PRIVATE+KEY+log": "private key must have the form PRIVATE+KEY+name+keyid+key",
        good.replace("PRIVATE+KEY", "PUBLIC+KEY"): (
            "private key must have the form PRIVATE+KEY+name+keyid+key"
        ),
        good.replace("PRIVATE+KEY", "PRIVATE+KEYS"): (
            "private key must have the form PRIVATE+KEY+name+keyid+key"
        ),
        name_kid + "+%%%%": "private key: bad base64",
        name_kid + "+\u00e9": "private key: bad base64",
        name_kid + "+" + seed: "private key: want one algorithm byte and a 32-byte seed",
        "PRIVATE+KEY+log+00000000+" + good.rsplit("+", 1)[1]: (
            "private key: key ID does not match the key"
        ),
    }
    for skey, msg in cases.items():
        raises(NoteError, msg, lambda skey=skey: Signer.from_skey(skey))
    raises(NoteError, "unsupported signature algorithm 0x02", lambda: Signer("x", seeded(7), 2))
    cos = Signer("w", seeded(8), ALG_COSIGNATURE_V1)
    assert Signer.from_skey(cos.skey).verifier == cos.verifier
    assert Signer.generate("g").verifier.alg == ALG_ED25519
    assert Signer.generate("g", ALG_COSIGNATURE_V1).alg == ALG_COSIGNATURE_V1


# --- tlog-cosignature/v1 ----------------------------------------------------------------------


def test_cosignatures_sign_the_time_and_the_body() -> None:
    body = b"example.com/log\n7\n" + base64.b64encode(bytes(32)) + b"\n"
    assert cosignature_message(body, 1700000000) == b"cosignature/v1\ntime 1700000000\n" + body
    w = Signer("witness", seeded(9), ALG_COSIGNATURE_V1)
    sig = w.sign(body, 1700000000)
    assert len(sig) == 72 and sig[:8] == struct.pack(">Q", 1700000000)
    assert cosignature_time(sig) == 1700000000
    # Unsigned 64-bit seconds: the largest time reads back as itself, not negative.
    last = w.sign(body, 2**64 - 1)
    assert last[:8] == b"\xff" * 8 and cosignature_time(last) == 2**64 - 1
    w.verifier.verify(body, last)
    seeded(9).public_key().verify(sig[8:], cosignature_message(body, 1700000000))
    w.verifier.verify(body, sig)
    later = struct.pack(">Q", 1700000001) + sig[8:]
    raises(
        NoteError, "signature by witness does not verify", lambda: w.verifier.verify(body, later)
    )
    for short in (sig[:71], sig + b"\0"):
        msg = f"cosignature by witness is {len(short)} bytes, want 72"
        raises(NoteError, msg, lambda short=short: w.verifier.verify(body, short))
        raises(
            NoteError,
            f"cosignature is {len(short)} bytes, want 72",
            lambda short=short: cosignature_time(short),
        )
    raises(NoteError, "a cosignature needs a timestamp", lambda: w.sign(body))
    odd = Verifier("odd", 0x02, w.public)
    raises(
        NoteError,
        "unsupported signature algorithm 0x02 for odd",
        lambda: odd.verify(body, bytes(64)),
    )
    # An Ed25519 note signature is over the text alone; a cosignature key signs with a time.
    note = sign_note("example.com/log\n1\n" + base64.b64encode(bytes(32)).decode() + "\n", [w], 5)
    assert cosignature_time(note.signatures[0].sig) == 5
    assert verified_by(note, [w.verifier]) == [w.verifier]


# --- signed-note: parsing -------------------------------------------------------------------


def sig_line(name: str = "log", raw: bytes = bytes(68)) -> str:
    return f"\u2014 {name} {base64.b64encode(raw).decode()}\n"


def test_malformed_notes_are_named() -> None:
    line = sig_line()
    cases: dict[bytes | str, str] = {
        b"\xff\n\n" + line.encode(): "note is not valid UTF-8",
        "text\n" + line: "note has no blank line before its signatures",
        "text\n\n" + line[:-1]: "note signatures must end with a newline",
        "text\n\n- log AAAAAAAA\n": "malformed signature line '- log AAAAAAAA'",
        "text\n\n\u2014 log a b\n": "malformed signature line '\u2014 log a b'",
        "text\n\n\u2014 log\n": "malformed signature line '\u2014 log'",
        # A trailing blank line moves the split: the signatures are then "" (no newline).
        "text\n\n" + line + "\n": "note signatures must end with a newline",
        "text\n\n\u2014 log %%%%\n": "signature by log is not valid base64",
        "text\n\n\u2014 log \u00e9\u00e9\u00e9\u00e9\n": "signature by log is not valid base64",
        "text\n\n" + sig_line(raw=bytes(4)): "signature by log is too short",
        "text\n\n" + sig_line(name="a+b"): (
            "invalid key name 'a+b': it must be non-empty, without spaces or '+'"
        ),
        "te\x01xt\n\n" + line: "note text contains a control character 0x01",
        "te\x7fxt\n\n" + line: "note text contains a control character 0x7f",
        "te\txt\n\n" + line: "note text contains a control character 0x09",
    }
    for data, msg in cases.items():
        raises(NoteError, msg, lambda data=data: parse_note(data))
    long_line = "\u2014 " + "x" * 100 + "\n"
    raises(
        NoteError,
        f"malformed signature line {long_line[:80]!r}",
        lambda: parse_note("text\n\n" + long_line),
    )
    raises(NoteError, "note text must end with a newline", lambda: sign_note("text", []))
    long_plain = "- " + "x" * 100
    raises(
        NoteError,
        f"malformed signature line {long_plain[:80]!r}",
        lambda: parse_note("text\n\n" + long_plain + "\n"),
    )
    # Exactly one space between name and signature: no other whitespace splits them.
    for spaced in ("\u2014 log  AAAAAAAA\n", "\u2014 log\tAAAAAAAA\n", "\u2014 log AAAAAAAA \n"):
        raises(
            NoteError,
            f"malformed signature line {spaced[:-1]!r}",
            lambda spaced=spaced: parse_note("text\n\n" + spaced),
        )
    # The text may be a single empty line: the blank line then starts the note.
    assert parse_note("\n\n" + sig_line(raw=bytes(5))).text == "\n"
    # Printable text, tabs excepted, and any Unicode: "\x20" and "\x7e" are fine.
    ok = parse_note("a ~\u00e9\u3000\n\n" + sig_line(raw=bytes(5)))
    assert ok.text == "a ~\u00e9\u3000\n" and ok.signatures[0] == NoteSignature(
        "log", bytes(4), b"\0"
    )


def test_note_limits_at_the_boundary() -> None:
    one = sig_line()
    at_most = "text\n\n" + one * MAX_SIGNATURES
    assert len(parse_note(at_most).signatures) == MAX_SIGNATURES
    raises(
        NoteError,
        f"note has more than {MAX_SIGNATURES} signatures",
        lambda: parse_note(at_most + one),
    )
    head = "text\n\n" + one
    fill = MAX_NOTE_BYTES - len(head.encode())
    exact = ("t" * fill + head).encode()
    assert len(exact) == MAX_NOTE_BYTES
    assert parse_note(exact).text == "t" * fill + "text\n"
    raises(
        NoteError, f"note is larger than {MAX_NOTE_BYTES} bytes", lambda: parse_note(b"t" + exact)
    )


def test_the_signature_block_starts_at_the_last_blank_line() -> None:
    note = parse_note("a\n\nb\n\n" + sig_line("one") + sig_line("two"))
    assert note.text == "a\n\nb\n"
    assert [s.name for s in note.signatures] == ["one", "two"]
    assert note.to_text() == "a\n\nb\n\n" + sig_line("one") + sig_line("two")


def test_adding_signatures_and_verifying_several() -> None:
    a, b = Signer("a", seeded(10)), Signer("b", seeded(11))
    note = sign_note(GO_TEXT, [a])
    [sa] = note.signatures
    sb = sign_note(GO_TEXT, [b]).signatures[0]
    assert note.add(sa) is note
    both = note.add(sb)
    assert both.signatures == (sa, sb) and both.text == GO_TEXT
    # The same key ID under another name, or the same name with another key ID, is another key.
    assert note.add(NoteSignature("a2", sa.key_id, sa.sig)).signatures[1].name == "a2"
    assert len(note.add(NoteSignature("a", b"\0\0\0\0", sa.sig)).signatures) == 2
    assert verified_by(both, [b.verifier, a.verifier]) == [a.verifier, b.verifier]
    assert verified_by(both, [b.verifier]) == [b.verifier]  # unknown keys are skipped
    assert verified_by(both, []) == []
    twice = Note(GO_TEXT, (sa, sa))
    assert verified_by(twice, [a.verifier]) == [a.verifier]
    forged = Note(GO_TEXT, (sa, NoteSignature("b", b.verifier.key_id, sa.sig)))
    raises(NoteError, "signature by b does not verify", lambda: verified_by(forged, [b.verifier]))


# --- tlog-checkpoint ------------------------------------------------------------------------

ROOT = hashlib.sha256(b"root").digest()
ROOT_B64 = base64.b64encode(ROOT).decode()


def test_checkpoint_bodies_round_trip() -> None:
    cp = Checkpoint("example.com/log", 42, ROOT, ("ext one", "ext two"))
    assert cp.body() == f"example.com/log\n42\n{ROOT_B64}\next one\next two\n"
    assert Checkpoint.parse_body(cp.body()) == cp
    assert Checkpoint("o", 0, ROOT).body() == f"o\n0\n{ROOT_B64}\n"
    top = 2**64 - 1
    assert Checkpoint.parse_body(f"o\n{top}\n{ROOT_B64}\n").size == top


def test_malformed_checkpoint_bodies_are_named() -> None:
    cases = {
        f"o\n1\n{ROOT_B64}": "checkpoint body must end with a newline",
        "o\n1\n": "checkpoint body needs origin, size and root lines",
        f"\n1\n{ROOT_B64}\n": "checkpoint origin is empty",
        f"o\n01\n{ROOT_B64}\n": "checkpoint size '01' is not a decimal uint64",
        f"o\n-1\n{ROOT_B64}\n": "checkpoint size '-1' is not a decimal uint64",
        f"o\n+1\n{ROOT_B64}\n": "checkpoint size '+1' is not a decimal uint64",
        f"o\n{2**64}\n{ROOT_B64}\n": f"checkpoint size '{2**64}' is not a decimal uint64",
        f"o\n{'9' * 21}\n{ROOT_B64}\n": f"checkpoint size '{'9' * 21}' is not a decimal uint64",
        "o\n1\n%%%%\n": "checkpoint root is not valid base64",
        "o\n1\n\u00e9\n": "checkpoint root is not valid base64",
        f"o\n1\n{base64.b64encode(ROOT[:31]).decode()}\n": "checkpoint root is 31 bytes, want 32",
        f"o\n1\n{ROOT_B64}\n\n": "checkpoint has an empty extension line",
        f"o\n1\n{ROOT_B64}\nx\n\ny\n": "checkpoint has an empty extension line",
    }
    for text, msg in cases.items():
        raises(CheckpointError, msg, lambda text=text: Checkpoint.parse_body(text))


def test_signed_checkpoints_need_the_log_signature_and_its_origin() -> None:
    log = Signer("example.com/log", seeded(12))
    body = Checkpoint("example.com/log", 3, ROOT).body()
    text = sign_note(body, [log]).to_text()
    sc = open_checkpoint(text, log.verifier)
    assert sc.checkpoint == Checkpoint("example.com/log", 3, ROOT) and sc.to_text() == text
    assert parse_signed_checkpoint(text.encode()) == sc
    stranger = Signer("example.com/log", seeded(13)).verifier
    raises(
        CheckpointError,
        f"checkpoint: note is not signed by example.com/log ({stranger.key_id.hex()})",
        lambda: open_checkpoint(text, stranger),
    )
    raises(
        CheckpointError,
        "checkpoint: note has no blank line before its signatures",
        lambda: parse_signed_checkpoint(body),
    )
    raises(
        CheckpointError,
        "checkpoint: note has no blank line before its signatures",
        lambda: open_checkpoint(body, log.verifier),
    )
    other = Signer("other.example/log", seeded(12))
    signed_elsewhere = sign_note(body, [other]).to_text()
    raises(
        CheckpointError,
        "checkpoint origin 'example.com/log' is not the log key's 'other.example/log'",
        lambda: open_checkpoint(signed_elsewhere, other.verifier),
    )


# --- tlog-proof ---------------------------------------------------------------------------


def leaves(n: int) -> list[bytes]:
    return [merkle.leaf_hash(i.to_bytes(2, "big")) for i in range(n)]


def proof_of(index: int, hashes: list[bytes]) -> list[bytes]:
    def node(level: int, i: int) -> bytes:
        return merkle.tree_root(hashes[i << level : (i + 1) << level])

    return merkle.inclusion_proof(node, index, len(hashes))


def test_tlog_proofs_round_trip_and_verify() -> None:
    log = Signer("example.com/log", seeded(14))
    hs = leaves(5)
    root = merkle.tree_root(hs)
    cp_text = sign_note(Checkpoint("example.com/log", 5, root).body(), [log]).to_text()
    path = proof_of(3, hs)
    tp = TlogProof(3, tuple(path), cp_text)
    b64 = [base64.b64encode(h).decode() for h in path]
    text = "c2sp.org/tlog-proof@v1\nindex 3\n" + "\n".join(b64) + "\n\n" + cp_text
    assert tp.to_text() == text == tlog_proof_text(3, b64, cp_text)
    assert TlogProof.parse(text) == tp == TlogProof.parse(text.encode())
    assert tp.verify(hs[3], log.verifier).checkpoint.size == 5
    with pytest.raises(merkle.RootMismatchError):
        tp.verify(hs[2], log.verifier)
    InclusionProof(3, 5, tuple(path)).verify(hs[3], root)
    with pytest.raises(merkle.ProofError):
        InclusionProof(2, 5, tuple(path)).verify(hs[3], root)
    # With extra data, and a one-leaf tree (no hashes).
    extra = TlogProof(0, (), cp_text, b"\x00extra")
    assert (
        extra.to_text()
        == ("c2sp.org/tlog-proof@v1\nextra AGV4dHJh\nindex 0\n\n" + cp_text)
        == tlog_proof_text(0, [], cp_text, b"\x00extra")
    )
    assert TlogProof.parse(extra.to_text()) == extra
    assert TlogProof.parse(TlogProof(0, (), cp_text).to_text()).hashes == ()


def test_malformed_tlog_proofs_are_named() -> None:
    h = base64.b64encode(bytes(32)).decode()
    head = "c2sp.org/tlog-proof@v1"
    cases: dict[bytes | str, str] = {
        f"{head}\nindex 1\n": "tlog-proof has no blank line before its checkpoint",
        "c2sp.org/tlog-proof@v2\nindex 1\n\ncp": (
            "tlog-proof must start with 'c2sp.org/tlog-proof@v1'"
        ),
        f"{head}\n\ncp": "tlog-proof has no index line",
        f"{head}\nextra AA==\n\ncp": "tlog-proof has no index line",
        f"{head}\n{h}\n\ncp": "tlog-proof has no index line",
        f"{head}\nextra %%\nindex 1\n\ncp": "tlog-proof extra is not valid base64",
        f"{head}\nindex 01\n\ncp": "tlog-proof index '01' is not a decimal number",
        f"{head}\nindex -1\n\ncp": "tlog-proof index '-1' is not a decimal number",
        f"{head}\nindex 1\n{h}\n%%\n\ncp": "tlog-proof hash 1 is not valid base64",
        f"{head}\nindex 1\n" + f"{h}\n" * (MAX_PROOF_HASHES + 1) + "\ncp": (
            f"tlog-proof has more than {MAX_PROOF_HASHES} hashes"
        ),
    }
    cases[b"\xff\n\n"] = "tlog-proof is not valid UTF-8"
    for data, msg in cases.items():
        raises(CheckpointError, msg, lambda data=data: TlogProof.parse(data))
    most = f"{head}\nindex 1\n" + f"{h}\n" * MAX_PROOF_HASHES + "\ncp"
    assert len(TlogProof.parse(most).hashes) == MAX_PROOF_HASHES
