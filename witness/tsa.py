"""Trusted time: a built-in RFC 3161 time-stamping authority, and clients for it or an external one.

The built-in TSA keeps a small PKI in ``<data>/tsa/``, created on first start: a
self-signed CA (ECDSA P-256) and a TSA certificate it issues, whose only extended key usage
is id-kp-timeStamping, marked critical (RFC 3161 §2.3). Tokens are CMS SignedData over a
TSTInfo (RFC 3161 §2.4.2), with content-type, message-digest and signing-certificate-v2
signed attributes (RFC 5816), so ``openssl ts -verify`` accepts them. An external TSA's
replies are all checked with :func:`verifier.timestamp.timestamp_info` before they are
stored; the built-in TSA's first token and a sample after it.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import ClassVar

import httpx
from asn1crypto import algos, cms, core, tsp  # type: ignore[import-untyped]
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ledger.witnessing.timestamper import Timestamper as Timestamper
from ledger.witnessing.timestamper import TsaError as TsaError
from verifier.timestamp import TimestampError, timestamp_info

TSA_DIR = "tsa"
#: TSA policy (RFC 3161 §2.4.2 "policy"): an OID under the UUID arc 2.25 (ITU-T X.667),
#: which anyone may mint without registration; it names "Jianzheng built-in TSA policy v1".
POLICY_OID = "2.25.181308386270335626377355316567412397121"
MAX_REQUEST_BYTES = 16 << 10
MAX_REPLY_BYTES = 256 << 10
_DIGESTS = {"sha256": 32, "sha384": 48, "sha512": 64}


def gen_time(now: datetime) -> datetime:
    """The genTime the built-in TSA writes for ``now``: UTC, whole milliseconds.

    RFC 3161 §2.4.2 allows fractions of a second (without trailing zeros).
    """
    now = now.astimezone(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def make_request(data: bytes, *, nonce: int | None = None) -> tuple[bytes, int]:
    """A DER TimeStampReq over SHA-256(``data``) with a random nonce and certReq set.

    RFC 3161 §2.4.1: the nonce lets the client match the reply to its request; certReq
    makes the TSA include its certificate, so the token verifies with the CA alone.
    """
    nonce = secrets.randbits(63) if nonce is None else nonce
    req = tsp.TimeStampReq(
        {
            "version": "v1",
            "message_imprint": {
                "hash_algorithm": {"algorithm": "sha256"},
                "hashed_message": hashlib.sha256(data).digest(),
            },
            "nonce": nonce,
            "cert_req": True,
        }
    )
    return req.dump(), nonce


def _write(path: Path, data: bytes, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def _name(cn: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Jianzheng"),
            x509.NameAttribute(NameOID.COMMON_NAME, cn[:64]),
        ]
    )


def _create_pki(directory: Path, label: str) -> None:
    """Write a CA and a TSA certificate into a fresh directory, then move it into place.

    The rename makes creation all-or-nothing: a crash leaves either no ``tsa/`` directory
    or a complete one, and of two processes starting at once only one wins.
    """
    now = datetime.now(UTC) - timedelta(minutes=5)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    tsa_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name(f"{label} timestamp CA")
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=365 * 30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    tsa = (
        x509.CertificateBuilder()
        .subject_name(_name(f"{label} TSA"))
        .issuer_name(ca_name)
        .public_key(tsa_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=365 * 20))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=True,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        # RFC 3161 §2.3: exactly one EKU, id-kp-timeStamping, and it MUST be critical.
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(tsa_key.public_key()), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )

    def key_pem(k: ec.EllipticCurvePrivateKey) -> bytes:
        return k.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tsa-", dir=directory.parent))
    try:
        _write(tmp / "ca.key", key_pem(ca_key), 0o600)
        _write(tmp / "ca.pem", ca.public_bytes(serialization.Encoding.PEM), 0o644)
        _write(tmp / "tsa.key", key_pem(tsa_key), 0o600)
        _write(tmp / "tsa.pem", tsa.public_bytes(serialization.Encoding.PEM), 0o644)
        try:
            os.rename(tmp, directory)
        except OSError:
            if not (directory / "tsa.pem").exists():
                raise
            # Another process created it first: use theirs.
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    dfd = os.open(directory.parent, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


class _Refusal(core.Sequence):  # type: ignore[misc]
    """TimeStampResp without a token (asn1crypto's class makes the token mandatory)."""

    _fields: ClassVar[list[tuple[str, type]]] = [("status", tsp.PKIStatusInfo)]


class TimestampAuthority:
    """The built-in RFC 3161 TSA: answers DER TimeStampReq with DER TimeStampResp."""

    def __init__(
        self,
        ca_cert: x509.Certificate,
        tsa_cert: x509.Certificate,
        tsa_key: ec.EllipticCurvePrivateKey,
        *,
        policy: str = POLICY_OID,
    ) -> None:
        self.ca_cert = ca_cert
        self.tsa_cert = tsa_cert
        self._key = tsa_key
        self.policy = policy
        der = tsa_cert.public_bytes(serialization.Encoding.DER)
        self._cert_asn1 = asn1_x509.Certificate.load(der)
        issuer = self._cert_asn1.issuer
        serial = self._cert_asn1.serial_number
        # The parts that name the certificate never change: encode them once, since
        # asn1crypto re-encodes nested parsed values slowly each time they are reused.
        self._sid = cms.SignerIdentifier(
            name="issuer_and_serial_number", value={"issuer": issuer, "serial_number": serial}
        ).dump()
        self._ess = cms.CMSAttribute(
            {
                "type": "signing_certificate_v2",
                "values": [
                    {
                        "certs": [
                            {
                                # hashAlgorithm defaults to SHA-256 and is left out (DER).
                                "cert_hash": hashlib.sha256(der).digest(),
                                "issuer_serial": {
                                    "issuer": [
                                        asn1_x509.GeneralName(name="directory_name", value=issuer)
                                    ],
                                    "serial_number": serial,
                                },
                            }
                        ]
                    }
                ],
            }
        ).dump()

    @classmethod
    def load_or_create(cls, data_dir: Path, label: str = "jianzheng") -> TimestampAuthority:
        """The TSA whose keys live in ``<data_dir>/tsa``; created on first start."""
        directory = data_dir / TSA_DIR
        if not (directory / "tsa.pem").exists():
            _create_pki(directory, label)
        key_path = directory / "tsa.key"
        if key_path.stat().st_mode & 0o077:
            raise TsaError(f"{key_path} is readable by others; chmod 600 it")
        try:
            ca = x509.load_pem_x509_certificate((directory / "ca.pem").read_bytes())
            cert = x509.load_pem_x509_certificate((directory / "tsa.pem").read_bytes())
            key = serialization.load_pem_private_key(key_path.read_bytes(), None)
        except (OSError, ValueError) as e:
            raise TsaError(f"cannot read the TSA keys in {directory}: {e}") from None
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise TsaError(f"{key_path} is not an EC key")
        return cls(ca, cert, key)

    @property
    def ca_pem(self) -> bytes:
        return self.ca_cert.public_bytes(serialization.Encoding.PEM)

    @staticmethod
    def _refuse(failure: str, text: str) -> bytes:
        reply: bytes = _Refusal(
            {
                "status": {
                    "status": "rejection",
                    "status_string": [text],
                    "fail_info": tsp.PKIFailureInfo({failure}),
                }
            }
        ).dump()
        return reply

    def respond(self, request: bytes, now: datetime | None = None) -> bytes:
        """RFC 3161 §2.4: a granted TimeStampResp, or a rejection naming the problem."""
        if len(request) > MAX_REQUEST_BYTES:
            return self._refuse("bad_request", "request too large")
        try:
            req = tsp.TimeStampReq.load(request, strict=True)
            version = req["version"].native
            alg = req["message_imprint"]["hash_algorithm"]["algorithm"].native
            digest = req["message_imprint"]["hashed_message"].native
            policy = req["req_policy"].dotted if req["req_policy"].native else None
            nonce = req["nonce"].native
            cert_req = bool(req["cert_req"].native)
            has_ext = req["extensions"].native is not None
        except (ValueError, TypeError, KeyError):
            return self._refuse("bad_data_format", "not a DER TimeStampReq")
        if version != "v1":
            return self._refuse("bad_request", "version must be 1")
        if alg not in _DIGESTS or len(digest) != _DIGESTS[alg]:
            return self._refuse("bad_alg", "message imprint must be SHA-256, -384 or -512")
        if policy is not None and policy != self.policy:
            return self._refuse("unaccepted_policy", f"this TSA issues under {self.policy}")
        if has_ext:
            return self._refuse("unaccepted_extensions", "no request extensions are supported")
        return self._grant(alg, digest, nonce, cert_req, now or datetime.now(UTC))

    def _grant(
        self, alg: str, digest: bytes, nonce: int | None, cert_req: bool, now: datetime
    ) -> bytes:
        info: dict[str, object] = {
            "version": "v1",
            "policy": self.policy,
            "message_imprint": {"hash_algorithm": {"algorithm": alg}, "hashed_message": digest},
            # RFC 3161 §2.4.2: serials are unique per TSA; 127 random bits need no state.
            "serial_number": secrets.randbits(127) | 1,
            "gen_time": gen_time(now),
            "accuracy": {"millis": 1},
        }
        if nonce is not None:
            info["nonce"] = nonce
        tst_der = tsp.TSTInfo(info).dump()
        attrs = cms.CMSAttributes(
            [
                cms.CMSAttribute({"type": "content_type", "values": ["tst_info"]}),
                cms.CMSAttribute(
                    {"type": "message_digest", "values": [hashlib.sha256(tst_der).digest()]}
                ),
                cms.CMSAttribute.load(self._ess),
            ]
        )
        # RFC 5652 §5.4: sign the DER SET OF the attributes (asn1crypto sorts a SET OF).
        signature = self._key.sign(attrs.dump(), ec.ECDSA(hashes.SHA256()))
        signer = cms.SignerInfo(
            {
                "version": "v1",
                "sid": cms.SignerIdentifier.load(self._sid),
                "digest_algorithm": algos.DigestAlgorithm({"algorithm": "sha256"}),
                "signed_attrs": attrs,
                "signature_algorithm": algos.SignedDigestAlgorithm({"algorithm": "sha256_ecdsa"}),
                "signature": signature,
            }
        )
        signed_data: dict[str, object] = {
            # RFC 5652 §5.1: version 3 because the content type is not id-data.
            "version": "v3",
            "digest_algorithms": [algos.DigestAlgorithm({"algorithm": "sha256"})],
            "encap_content_info": {
                "content_type": "tst_info",
                "content": core.ParsableOctetString(tst_der),
            },
            "signer_infos": [signer],
        }
        if cert_req:
            signed_data["certificates"] = [self._cert_asn1]
        token = cms.ContentInfo(
            {"content_type": "signed_data", "content": cms.SignedData(signed_data)}
        )
        reply: bytes = tsp.TimeStampResp(
            {"status": {"status": "granted"}, "time_stamp_token": token}
        ).dump()
        return reply


#: The built-in TSA checks its first token, then one in this many, with the verifier.
SELF_CHECK_EVERY = 64


class BuiltinTimestamper:
    """Timestamps from the in-process :class:`TimestampAuthority`.

    Its tokens are checked with :func:`verifier.timestamp.timestamp_info` (the first one,
    then a sample): that catches a broken key or certificate at once, without doubling
    the cost of every token in a process that also serves appends.
    """

    source = "builtin"

    def __init__(self, tsa: TimestampAuthority) -> None:
        self.tsa = tsa
        self._issued = 0

    @property
    def ca_pem(self) -> bytes:
        return self.tsa.ca_pem

    def timestamp(self, data: bytes) -> bytes:
        """A DER TimeStampResp over ``data``."""
        return self.issue(data)[0]

    def issue(self, data: bytes) -> tuple[bytes, datetime]:
        """A DER TimeStampResp over ``data`` and the genTime it states."""
        req, nonce = make_request(data)
        now = datetime.now(UTC)
        reply = self.tsa.respond(req, now)
        if self._issued % SELF_CHECK_EVERY == 0:
            try:
                timestamp_info(reply, data, self.ca_pem, nonce=nonce)
            except TimestampError as e:
                raise TsaError(
                    f"the built-in TSA issued a token that does not verify: {e}"
                ) from None
        self._issued += 1
        return reply, gen_time(now)


class HttpTimestamper:
    """An external RFC 3161 TSA over HTTP (RFC 3161 §3.4: application/timestamp-query)."""

    def __init__(self, url: str, ca_pem: bytes, timeout: float = 10.0) -> None:
        self.url = url
        self.source = url
        self._ca_pem = ca_pem
        self._http = httpx.Client(timeout=timeout)

    @property
    def ca_pem(self) -> bytes:
        return self._ca_pem

    def timestamp(self, data: bytes) -> bytes:
        """A DER TimeStampResp over ``data``, checked against the CA certificate."""
        return self.issue(data)[0]

    def issue(self, data: bytes) -> tuple[bytes, datetime]:
        """A DER TimeStampResp over ``data`` (checked) and the genTime it states."""
        req, nonce = make_request(data)
        try:
            r = self._http.post(
                self.url, content=req, headers={"Content-Type": "application/timestamp-query"}
            )
        except httpx.HTTPError as e:
            raise TsaError(f"TSA {self.url} is unreachable: {e}") from None
        if r.status_code != 200:
            raise TsaError(f"TSA {self.url} answered HTTP {r.status_code}")
        if len(r.content) > MAX_REPLY_BYTES:
            raise TsaError(f"TSA {self.url} sent a reply larger than {MAX_REPLY_BYTES} bytes")
        try:
            info = timestamp_info(r.content, data, self._ca_pem, nonce=nonce)
        except TimestampError as e:
            raise TsaError(f"TSA {self.url} sent a reply that does not verify: {e}") from None
        return r.content, info.gen_time

    def close(self) -> None:
        self._http.close()
