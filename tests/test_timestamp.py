"""RFC 3161: the built-in TSA's tokens, checked by verifier.timestamp and by OpenSSL.

OpenSSL (``openssl ts -verify``) is the independent judge: a tool nobody here wrote must
accept every token the ledger issues, and our verifier must refuse what is wrong with one.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from verifier.timestamp import TimestampError, timestamp_info, token_of, verify_timestamp
from witness.tsa import (
    BuiltinTimestamper,
    HttpTimestamper,
    TimestampAuthority,
    TsaError,
    make_request,
)

BODY = b"example.com/log\n12\nHkFIDUYQXUgLgLrzzNvOaDvJPzB8CtJ8ZiJbMUyj4kU=\n"


@pytest.fixture(scope="module")
def tsa(tmp_path_factory: pytest.TempPathFactory) -> TimestampAuthority:
    return TimestampAuthority.load_or_create(tmp_path_factory.mktemp("tsa"), "test.example/log")


def openssl_verify(tmp: Path, data: bytes, blob: bytes, ca: bytes, token: bool = False) -> None:
    if shutil.which("openssl") is None:
        pytest.fail("openssl is not installed")
    (tmp / "data").write_bytes(data)
    (tmp / "ts.der").write_bytes(blob)
    (tmp / "ca.pem").write_bytes(ca)
    cmd = ["openssl", "ts", "-verify", "-data", str(tmp / "data"), "-in", str(tmp / "ts.der")]
    cmd += ["-CAfile", str(tmp / "ca.pem")] + (["-token_in"] if token else [])
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    assert out.returncode == 0 and "Verification: OK" in out.stdout, out.stdout + out.stderr


def test_openssl_accepts_the_reply_and_the_bare_token(
    tsa: TimestampAuthority, tmp_path: Path
) -> None:
    reply, when = BuiltinTimestamper(tsa).issue(BODY)
    assert verify_timestamp(reply, BODY, tsa.ca_pem) == when
    openssl_verify(tmp_path, BODY, reply, tsa.ca_pem)
    openssl_verify(tmp_path, BODY, token_of(reply), tsa.ca_pem, token=True)


def test_our_verifier_accepts_it_and_reads_time_nonce_policy(tsa: TimestampAuthority) -> None:
    req, nonce = make_request(BODY)
    before = datetime.now(UTC) - timedelta(seconds=1)
    reply = tsa.respond(req)
    info = timestamp_info(reply, BODY, tsa.ca_pem, nonce=nonce)
    assert before <= info.gen_time <= datetime.now(UTC) + timedelta(seconds=1)
    assert info.nonce == nonce and info.policy == tsa.policy
    assert verify_timestamp(token_of(reply), BODY, tsa.ca_pem) == info.gen_time
    with pytest.raises(TimestampError, match="nonce"):
        verify_timestamp(reply, BODY, tsa.ca_pem, nonce=nonce + 1)


def test_the_ca_is_kept_across_restarts(tmp_path: Path) -> None:
    a = TimestampAuthority.load_or_create(tmp_path, "x")
    b = TimestampAuthority.load_or_create(tmp_path, "x")
    assert a.ca_pem == b.ca_pem
    assert (tmp_path / "tsa" / "tsa.key").stat().st_mode & 0o077 == 0
    eku = b.tsa_cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    assert eku.critical and list(eku.value) == [ExtendedKeyUsageOID.TIME_STAMPING]


def test_wrong_data_wrong_ca_and_tampering_are_refused(
    tsa: TimestampAuthority, tmp_path: Path
) -> None:
    reply = BuiltinTimestamper(tsa).timestamp(BODY)
    with pytest.raises(TimestampError, match="imprint"):
        verify_timestamp(reply, BODY + b"x", tsa.ca_pem)
    other = TimestampAuthority.load_or_create(tmp_path, "other")
    with pytest.raises(TimestampError, match="chain"):
        verify_timestamp(reply, BODY, other.ca_pem)
    # Flip one byte of the signature (the token ends with the signer's signature value).
    bad = reply[:-3] + bytes([reply[-3] ^ 1]) + reply[-2:]
    with pytest.raises(TimestampError):
        verify_timestamp(bad, BODY, tsa.ca_pem)
    with pytest.raises(TimestampError):
        verify_timestamp(b"not DER", BODY, tsa.ca_pem)
    with pytest.raises(TimestampError, match="PEM"):
        verify_timestamp(reply, BODY, b"junk")


def test_a_refusal_is_a_readable_error(tsa: TimestampAuthority) -> None:
    refused = tsa.respond(b"\x30\x00")
    with pytest.raises(TimestampError, match="refused"):
        verify_timestamp(refused, BODY, tsa.ca_pem)
    req, _ = make_request(BODY)
    assert b"granted" not in req  # a request is not a reply
    with pytest.raises(TimestampError):
        verify_timestamp(req, BODY, tsa.ca_pem)


def _pki(
    *, eku_critical: bool = True, eku: list[x509.ObjectIdentifier] | None = None, days: int = 30
) -> TimestampAuthority:
    """A CA and TSA certificate with one thing changed, to show the verifier notices."""
    now = datetime.now(UTC) - timedelta(minutes=1)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test TSA")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(2)
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=days))
        .add_extension(
            x509.ExtendedKeyUsage(eku or [ExtendedKeyUsageOID.TIME_STAMPING]),
            critical=eku_critical,
        )
        .sign(ca_key, hashes.SHA256())
    )
    return TimestampAuthority(ca, cert, key)


def test_tsa_certificate_rules_of_rfc_3161_section_2_3(tmp_path: Path) -> None:
    good = _pki()
    verify_timestamp(BuiltinTimestamper(good).timestamp(BODY), BODY, good.ca_pem)
    soft = _pki(eku_critical=False)
    reply = soft.respond(make_request(BODY)[0])
    with pytest.raises(TimestampError, match="not critical"):
        verify_timestamp(reply, BODY, soft.ca_pem)
    wide = _pki(eku=[ExtendedKeyUsageOID.TIME_STAMPING, ExtendedKeyUsageOID.CODE_SIGNING])
    with pytest.raises(TimestampError, match="timeStamping only"):
        verify_timestamp(wide.respond(make_request(BODY)[0]), BODY, wide.ca_pem)
    with pytest.raises(TsaError):
        BuiltinTimestamper(soft).timestamp(BODY)  # the TSA checks its own output


def test_a_token_dated_outside_the_certificate_is_refused() -> None:
    short = _pki(days=1)
    late = datetime.now(UTC) + timedelta(days=3)
    reply = short.respond(make_request(BODY)[0], now=late)
    with pytest.raises(TimestampError, match="not valid at"):
        verify_timestamp(reply, BODY, short.ca_pem)


def test_requests_the_tsa_refuses(tsa: TimestampAuthority) -> None:
    from asn1crypto import core, tsp  # type: ignore[import-untyped]

    req = tsp.TimeStampReq(
        {
            "version": "v1",
            "message_imprint": {
                "hash_algorithm": {"algorithm": "sha256"},
                "hashed_message": b"short",
            },
        }
    ).dump()
    # A refusal carries no token, which asn1crypto's TimeStampResp cannot parse: read the
    # PKIStatusInfo, the reply's first element, directly.
    outer = core.Sequence.load(tsa.respond(req))
    status = tsp.PKIStatusInfo.load(outer[0].dump())
    assert status["status"].native == "rejection"
    assert "bad_alg" in status["fail_info"].native
    pem = tsa.ca_cert.public_bytes(serialization.Encoding.PEM)
    assert pem == tsa.ca_pem


def test_an_external_tsa_over_http(tsa: TimestampAuthority) -> None:
    """``--tsa-url``: RFC 3161 §3.4 over HTTP, every reply checked against the given CA."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["content-length"]))
            ok = self.headers["content-type"] == "application/timestamp-query"
            reply = tsa.respond(body) if ok else b""
            self.send_response(200 if ok else 415)
            self.send_header("Content-Type", "application/timestamp-reply")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/tsa"
    try:
        ext = HttpTimestamper(url, tsa.ca_pem, timeout=5)
        reply, when = ext.issue(BODY)
        assert ext.timestamp(BODY) != reply  # a fresh token each time
        assert verify_timestamp(reply, BODY, tsa.ca_pem) == when
        assert ext.source == url
        with pytest.raises(TsaError, match="does not verify"):
            HttpTimestamper(url, _pki().ca_pem, timeout=5).timestamp(BODY)
        ext.close()
    finally:
        server.shutdown()
    with pytest.raises(TsaError, match="unreachable"):
        HttpTimestamper(url, tsa.ca_pem, timeout=2).timestamp(BODY)
