"""``--log-key FILE``: every node signs with one key from a file (issue 16).

The key reaches the ledger as a :class:`verifier.note.NoteSigner`; the data directory's
own ``log.key`` stays the default. A missing, unreadable or wrong kind of key file is
refused, naming the file and the problem.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    BestAvailableEncryption,
    Encoding,
    NoEncryption,
    PrivateFormat,
)

from api.cli import main
from ledger.keys import KEY_FILE, LogKeyError, load_log_key_file
from ledger.records import validate_event
from ledger.service import Ledger
from tests.conftest import make_event
from verifier.checkpoint import open_checkpoint
from verifier.note import ALG_COSIGNATURE_V1, Signer

ORIGIN = "keys.example/log"


def write(path: Path, data: bytes | str, mode: int = 0o600) -> Path:
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    path.chmod(mode)
    return path


def pem(key: Any, password: bytes | None = None) -> bytes:
    enc = BestAvailableEncryption(password) if password else NoEncryption()
    out: bytes = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, enc)
    return out


def test_nodes_given_one_key_file_sign_one_log(db_url: str, tmp_path: Path) -> None:
    signer = Signer.generate(ORIGIN)
    key = write(tmp_path / "log-key", signer.skey + "\n")
    nodes = [Ledger.open(tmp_path / name, db_url, log_key=key) for name in ("node-a", "node-b")]
    try:
        for i, lg in enumerate(nodes):
            ev = validate_event(make_event(project=f"E33010000000{i}"), lg.catalogue)
            lg.append([ev], "p").result(30)
        for lg in nodes:
            assert lg.signer.verifier.vkey == signer.verifier.vkey
            assert not (lg.data_dir / KEY_FILE).exists()  # nothing written beside the data
            open_checkpoint(lg.head().note, signer.verifier)
        assert nodes[0].head().size == 2
    finally:
        for lg in nodes:
            lg.close()


def test_a_pem_key_takes_its_origin_from_the_command_line(tmp_path: Path) -> None:
    private = Ed25519PrivateKey.generate()
    key = write(tmp_path / "log.pem", pem(private))
    signer = load_log_key_file(key, ORIGIN)
    assert signer.name == ORIGIN
    assert signer.verifier.verify(b"x\n", signer.sign(b"x\n")) is None
    with pytest.raises(LogKeyError, match="a PEM key names no log; give --origin"):
        load_log_key_file(key, None)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: d / "absent", "no such file"),
        (lambda d: d, "not a regular file"),
        (lambda d: write(d / "k", Signer.generate(ORIGIN).skey, 0o644), "readable by others"),
        (lambda d: write(d / "k", "hello\n"), "is not a log key"),
        (lambda d: write(d / "k", "PRIVATE+KEY+x+00+AAAA"), "one algorithm byte"),
        (
            lambda d: write(d / "k", Signer.generate(ORIGIN, ALG_COSIGNATURE_V1).skey),
            "cosignature key",
        ),
        (
            lambda d: write(d / "k", pem(rsa.generate_private_key(65537, 2048))),
            "RSAPrivateKey key; the log key must be Ed25519",
        ),
        (
            lambda d: write(d / "k", pem(Ed25519PrivateKey.generate(), b"secret")),
            "is encrypted",
        ),
        (
            lambda d: write(d / "k", Signer.generate("other.example/log").skey),
            "not of --origin",
        ),
    ],
)
def test_a_bad_key_file_is_refused_by_name(tmp_path: Path, make: Any, message: str) -> None:
    path = make(tmp_path)
    with pytest.raises(LogKeyError, match=message) as e:
        load_log_key_file(path, ORIGIN)
    assert str(path) in str(e.value)


def test_serve_and_audit_name_a_bad_key_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "no-such-key"
    data = tmp_path / "data"
    assert main(["serve", "--data", str(data), "--log-key", str(missing)]) == 2
    assert f"--log-key {missing}: no such file" in capsys.readouterr().err
    assert main(["audit", "--data", str(data), "--log-key", str(missing)]) == 2
    assert f"--log-key {missing}: no such file" in capsys.readouterr().err
    assert not (data / KEY_FILE).exists()


def test_audit_checks_the_log_with_the_key_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = write(tmp_path / "log-key", Signer.generate(ORIGIN).skey)
    data = tmp_path / "data"
    lg = Ledger.open(data, None, log_key=key)
    try:
        lg.append([validate_event(make_event(), lg.catalogue)], "p").result(30)
    finally:
        lg.close()
    assert main(["audit", "--data", str(data), "--log-key", str(key)]) == 0
    assert "audit: OK" in capsys.readouterr().out
    os.chmod(key, 0o640)
    assert main(["audit", "--data", str(data), "--log-key", str(key)]) == 2
