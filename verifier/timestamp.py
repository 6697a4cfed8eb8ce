"""RFC 3161 trusted timestamps: verify a TimeStampResp (or a bare token) offline.

Pure: bytes in, a time or :class:`TimestampError` out. What is checked, and where it is
specified:

- the reply's PKIStatus is granted or grantedWithMods (RFC 3161 §2.4.2);
- the token is CMS SignedData over an id-ct-TSTInfo (RFC 3161 §2.4.2, RFC 5652 §5);
- the TSTInfo's messageImprint is the SHA-2 hash of ``data`` (RFC 3161 §2.4.2), and its
  nonce equals the request's when one is given;
- the signed attributes hold the content type, the message digest of the TSTInfo and an
  ESS signing-certificate(-v2) naming the signer's certificate (RFC 5652 §11.1-2,
  RFC 3161 §2.4.1, RFC 5816 / RFC 5035);
- the signature over the DER SET OF signed attributes verifies (RFC 5652 §5.4);
- the signer's certificate carries exactly one, critical, extended key usage:
  id-kp-timeStamping (RFC 3161 §2.3), and chains to a certificate in ``ca_pem``, every
  certificate valid at genTime.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from asn1crypto import cms, core, tsp  # type: ignore[import-untyped]
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID

from verifier.errors import VerifierError

MAX_TOKEN_BYTES = 256 << 10
MAX_CERTS = 16
MAX_CHAIN = 5

#: Hashes accepted in message imprints and signatures (asn1crypto name -> hashlib name).
_HASHES = {"sha256": "sha256", "sha384": "sha384", "sha512": "sha512"}
_CRYPTO_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}


class TimestampError(ValueError, VerifierError):
    """A timestamp reply or token is malformed, refused, or does not verify."""


@dataclass(frozen=True)
class TimestampInfo:
    """What a verified token says: when, under which policy, by which certificate."""

    gen_time: datetime
    serial: int
    policy: str
    nonce: int | None
    tsa_certificate: x509.Certificate


def _token_bytes(blob: bytes) -> bytes:
    """The DER TimeStampToken (CMS ContentInfo) in a TimeStampResp, or ``blob`` if bare.

    RFC 3161 §2.4.2: TimeStampResp ::= SEQUENCE { status PKIStatusInfo, timeStampToken
    OPTIONAL }, whereas a ContentInfo starts with its content type OID. The token's bytes
    are cut out as sent, never re-encoded.
    """
    if len(blob) > MAX_TOKEN_BYTES:
        raise TimestampError(f"timestamp is larger than {MAX_TOKEN_BYTES} bytes")
    try:
        outer = core.Sequence.load(blob, strict=True)
        first = outer[0]
        if first.tag == 6 and first.class_ == 0:  # a universal OBJECT IDENTIFIER
            return blob
        status = tsp.PKIStatusInfo.load(first.dump())
        state = status["status"].native
        if state not in ("granted", "granted_with_mods"):
            text = " ".join(status["status_string"].native or [])
            raise TimestampError(f"the TSA refused the request: {state} {text}".strip())
        if len(outer) < 2:
            raise TimestampError("the timestamp reply holds no token")
        raw: bytes = outer[1].dump()
        return raw
    except TimestampError:
        raise
    except (ValueError, TypeError, KeyError, IndexError) as e:
        raise TimestampError(f"malformed timestamp: {e}") from None


def _load_token(blob: bytes) -> cms.ContentInfo:
    """Accept a TimeStampResp or a bare TimeStampToken; return the token, parsed."""
    raw = _token_bytes(blob)
    try:
        token = cms.ContentInfo.load(raw, strict=True)
        if token["content_type"].native != "signed_data":
            raise TimestampError("the timestamp token is not CMS SignedData")
    except TimestampError:
        raise
    except (ValueError, TypeError, KeyError) as e:
        raise TimestampError(f"malformed timestamp token: {e}") from None
    return token


def _pem_certs(ca_pem: bytes) -> list[x509.Certificate]:
    try:
        certs = x509.load_pem_x509_certificates(ca_pem)
    except ValueError as e:
        raise TimestampError(f"the CA certificate is not PEM: {e}") from None
    if not certs:
        raise TimestampError("no CA certificate given")
    return certs


def _signer_cert(sid: cms.SignerIdentifier, certs: Sequence[x509.Certificate]) -> x509.Certificate:
    if sid.name == "issuer_and_serial_number":
        want_serial = sid.chosen["serial_number"].native
        want_issuer = sid.chosen["issuer"].dump()
        for c in certs:
            if c.serial_number == want_serial and c.issuer.public_bytes() == want_issuer:
                return c
    else:
        ski = sid.chosen.native
        for c in certs:
            try:
                ext = c.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
            except x509.ExtensionNotFound:
                continue
            if ext.value.digest == ski:
                return c
    raise TimestampError("the token does not include the certificate of its signer")


def _attr(attrs: cms.CMSAttributes, name: str) -> core.Asn1Value | None:
    found = [a for a in attrs if a["type"].native == name]
    if len(found) > 1:
        raise TimestampError(f"signed attribute {name} appears more than once")
    if not found:
        return None
    values = found[0]["values"]
    if len(values) != 1:
        raise TimestampError(f"signed attribute {name} must have exactly one value")
    v: core.Asn1Value = values[0]
    return v


def _check_ess(attrs: cms.CMSAttributes, cert: x509.Certificate) -> None:
    """RFC 5035 / RFC 2634: the first ESSCertID(v2) is the signer's certificate."""
    der = cert.public_bytes(Encoding.DER)
    v2 = _attr(attrs, "signing_certificate_v2")
    v1 = _attr(attrs, "signing_certificate")
    if v2 is not None:
        ids = v2["certs"]
        if not len(ids):
            raise TimestampError("signing-certificate-v2 names no certificate")
        first = ids[0]
        alg = first["hash_algorithm"]["algorithm"].native
        if alg not in _HASHES:
            raise TimestampError(f"signing-certificate-v2 uses unsupported hash {alg}")
        want = hashlib.new(_HASHES[alg], der).digest()
    elif v1 is not None:
        ids = v1["certs"]
        if not len(ids):
            raise TimestampError("signing-certificate names no certificate")
        first = ids[0]
        want = hashlib.sha1(der, usedforsecurity=False).digest()
    else:
        raise TimestampError("signed attributes lack signing-certificate-v2 (RFC 5816)")
    if first["cert_hash"].native != want:
        raise TimestampError("signing-certificate attribute does not match the signer certificate")
    issuer_serial = first["issuer_serial"]
    if not isinstance(issuer_serial, core.Void):
        if issuer_serial["serial_number"].native != cert.serial_number:
            raise TimestampError("signing-certificate attribute names another serial number")


def _verify_signature(
    cert: x509.Certificate, signer: cms.SignerInfo, signed: bytes, digest_alg: str
) -> None:
    sig = signer["signature"].native
    algo = signer["signature_algorithm"]
    key = cert.public_key()
    try:
        sig_name = algo.signature_algo
    except ValueError as e:
        raise TimestampError(f"unsupported signature algorithm: {e}") from None
    try:
        if sig_name == "ed25519":
            if not isinstance(key, ed25519.Ed25519PublicKey):
                raise TimestampError("signature algorithm ed25519 does not match the key")
            key.verify(sig, signed)
            return
        try:
            hash_name = algo.hash_algo
        except ValueError:
            hash_name = digest_alg
        if hash_name not in _CRYPTO_HASHES:
            raise TimestampError(f"unsupported signature hash {hash_name}")
        h = _CRYPTO_HASHES[hash_name]()
        if sig_name == "ecdsa":
            if not isinstance(key, ec.EllipticCurvePublicKey):
                raise TimestampError("signature algorithm ecdsa does not match the key")
            key.verify(sig, signed, ec.ECDSA(h))
        elif sig_name == "rsassa_pkcs1v15":
            if not isinstance(key, rsa.RSAPublicKey):
                raise TimestampError("signature algorithm RSA does not match the key")
            key.verify(sig, signed, padding.PKCS1v15(), h)
        elif sig_name == "rsassa_pss":
            if not isinstance(key, rsa.RSAPublicKey):
                raise TimestampError("signature algorithm RSA-PSS does not match the key")
            params = algo["parameters"]
            salt = params["salt_length"].native
            key.verify(sig, signed, padding.PSS(padding.MGF1(h), salt), h)
        else:
            raise TimestampError(f"unsupported signature algorithm {sig_name}")
    except InvalidSignature:
        raise TimestampError("the token's signature does not verify") from None


def _check_tsa_usage(cert: x509.Certificate) -> None:
    """RFC 3161 §2.3: one extended key usage, critical, id-kp-timeStamping only."""
    try:
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    except x509.ExtensionNotFound:
        raise TimestampError("the TSA certificate has no extended key usage") from None
    if not eku.critical:
        raise TimestampError("the TSA certificate's extended key usage is not critical")
    if list(eku.value) != [ExtendedKeyUsageOID.TIME_STAMPING]:
        raise TimestampError("the TSA certificate's extended key usage is not timeStamping only")
    try:
        ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return
    if not (ku.digital_signature or ku.content_commitment):
        raise TimestampError("the TSA certificate's key usage does not allow signatures")


def _valid_at(cert: x509.Certificate, t: datetime) -> None:
    if not cert.not_valid_before_utc <= t <= cert.not_valid_after_utc:
        raise TimestampError(
            f"certificate {cert.subject.rfc4514_string()} is not valid at {t.isoformat()}"
        )


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def _chain(
    leaf: x509.Certificate,
    pool: Sequence[x509.Certificate],
    anchors: Sequence[x509.Certificate],
    at: datetime,
) -> None:
    """Walk leaf -> (intermediates from the token) -> an anchor, checking each signature."""
    cur = leaf
    for _ in range(MAX_CHAIN):
        _valid_at(cur, at)
        if cur in anchors:
            return  # the signer itself is trusted directly
        for a in anchors:
            if _issued_by(cur, a):
                _valid_at(a, at)
                return
        nxt = next((c for c in pool if c != cur and _is_ca(c) and _issued_by(cur, c)), None)
        if nxt is None:
            break
        cur = nxt
    raise TimestampError("the TSA certificate does not chain to the given CA certificate")


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    if cert.issuer != issuer.subject:
        return False
    if issuer is not cert and not _is_ca(issuer):
        return False
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def timestamp_info(
    reply_or_token: bytes, data: bytes, ca_pem: bytes, *, nonce: int | None = None
) -> TimestampInfo:
    """Verify an RFC 3161 reply or token over ``data``; see the module docstring."""
    token = _load_token(reply_or_token)
    try:
        sd = token["content"]
        # Take the raw encodings first: asn1crypto re-encodes a value once its parts were
        # read, and a signature covers the bytes as sent, not a re-encoding of them.
        signer_infos = sd["signer_infos"]
        if len(signer_infos) != 1:
            raise TimestampError("a timestamp token must have exactly one signer")
        signer: cms.SignerInfo = signer_infos[0]
        attrs = signer["signed_attrs"]
        if isinstance(attrs, core.Void):
            raise TimestampError("the token's signer has no signed attributes")
        # RFC 5652 §5.4: the signature covers the DER SET OF the attributes, not the [0] tag.
        signed = b"\x31" + attrs.dump()[1:]
        certs_field = sd["certificates"]
        raw_certs = (
            [] if isinstance(certs_field, core.Void) else [c.chosen.dump() for c in certs_field]
        )
        encap = sd["encap_content_info"]
        if encap["content_type"].native != "tst_info":
            raise TimestampError("the token's content is not an RFC 3161 TSTInfo")
        content = encap["content"]
        if isinstance(content, core.Void):
            raise TimestampError("the token carries no TSTInfo")
        tst_der = content.contents
        tst = tsp.TSTInfo.load(tst_der, strict=True)
        gen_time: datetime = tst["gen_time"].native
        imprint_alg = tst["message_imprint"]["hash_algorithm"]["algorithm"].native
        imprint = tst["message_imprint"]["hashed_message"].native
        serial = tst["serial_number"].native
        policy = tst["policy"].dotted
        tst_nonce = tst["nonce"].native
        version = tst["version"].native
    except TimestampError:
        raise
    except (ValueError, TypeError, KeyError) as e:
        raise TimestampError(f"malformed timestamp token: {e}") from None
    if version != "v1":
        raise TimestampError("TSTInfo version must be 1")
    if imprint_alg not in _HASHES:
        raise TimestampError(f"message imprint uses unsupported hash {imprint_alg}")
    if hashlib.new(_HASHES[imprint_alg], data).digest() != imprint:
        raise TimestampError("the token's message imprint is not the hash of the data")
    if nonce is not None and tst_nonce != nonce:
        raise TimestampError("the token's nonce is not the request's")
    if len(raw_certs) > MAX_CERTS:
        raise TimestampError(f"the token holds more than {MAX_CERTS} certificates")
    try:
        pool = [x509.load_der_x509_certificate(c) for c in raw_certs]
    except ValueError as e:
        raise TimestampError(f"a certificate in the token is malformed: {e}") from None
    anchors = _pem_certs(ca_pem)
    cert = _signer_cert(signer["sid"], [*pool, *anchors])
    digest_alg = signer["digest_algorithm"]["algorithm"].native
    if digest_alg not in _HASHES:
        raise TimestampError(f"unsupported digest algorithm {digest_alg}")
    ctype = _attr(attrs, "content_type")
    if ctype is None or ctype.native != "tst_info":
        raise TimestampError("the signed content-type attribute is not id-ct-TSTInfo")
    md = _attr(attrs, "message_digest")
    if md is None or md.native != hashlib.new(_HASHES[digest_alg], tst_der).digest():
        raise TimestampError("the signed message-digest attribute does not match the TSTInfo")
    _check_ess(attrs, cert)
    _verify_signature(cert, signer, signed, digest_alg)
    _check_tsa_usage(cert)
    gen_time = gen_time.astimezone(UTC)
    _chain(cert, pool, anchors, gen_time)
    return TimestampInfo(gen_time, serial, policy, tst_nonce, cert)


def verify_timestamp(
    reply_or_token: bytes, data: bytes, ca_pem: bytes, *, nonce: int | None = None
) -> datetime:
    """Verify an RFC 3161 TimeStampResp or token over ``data``; return its genTime (UTC).

    Raises :class:`TimestampError` on any failure (see the module docstring).
    """
    return timestamp_info(reply_or_token, data, ca_pem, nonce=nonce).gen_time


def token_of(reply: bytes) -> bytes:
    """The DER TimeStampToken inside a TimeStampResp (what ``openssl ts -token_in`` reads).

    A bare token is returned unchanged. The bytes are cut out as sent, never re-encoded.
    """
    _load_token(reply)  # raises on a refused or malformed reply
    return _token_bytes(reply)
