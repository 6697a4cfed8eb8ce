"""Trust policy for offline verification, read from a small text file the reviewer holds.

Trust never comes from the bundle being verified: a bundle carries the keys it claims, and
an attacker who rewrites a bundle rewrites those too. The file names the log key, the
witness keys and how many witnesses must have cosigned (k of n)::

    # lines starting with '#' are comments; blank lines are ignored
    log      jianzheng.example/log+1a2b3c4d+AX...      (exactly one)
    witness  witness.example/a+5e6f7a8b+BH...          (any number, cosignature/v1 keys)
    quorum   2                                         (needed when witnesses are listed)
    tsa-ca   <SHA-256 hex of the TSA CA certificate>   (optional: pins the RFC 3161 CA and
                                                        makes a timestamp required)

Key strings are C2SP signed-note verifier keys (c2sp.org/signed-note §Verifier keys);
witness keys use the timestamped Ed25519 type 0x04 of c2sp.org/tlog-cosignature.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from verifier.errors import VerifierError
from verifier.note import ALG_COSIGNATURE_V1, ALG_ED25519, NoteError, Verifier, parse_vkey

MAX_TRUST_BYTES = 64 << 10
MAX_WITNESSES = 64
_HEX64 = re.compile(r"[0-9a-f]{64}")


class TrustError(ValueError, VerifierError):
    """The trust file is malformed; the message names the line."""


@dataclass(frozen=True)
class TrustPolicy:
    """The keys a reviewer trusts and the witness quorum they demand."""

    log: Verifier
    witnesses: tuple[Verifier, ...] = ()
    quorum: int = 0
    #: SHA-256 (hex) of the DER TSA CA certificate; when set, a valid timestamp is required.
    tsa_ca_sha256: str | None = None

    def __post_init__(self) -> None:
        if self.log.alg != ALG_ED25519:
            raise TrustError(f"log key {self.log.name} must be an Ed25519 (type 0x01) key")
        for w in self.witnesses:
            if w.alg != ALG_COSIGNATURE_V1:
                raise TrustError(f"witness key {w.name} must be a cosignature/v1 (type 0x04) key")
        if not 0 <= self.quorum <= len(self.witnesses):
            raise TrustError(
                f"quorum {self.quorum} is impossible with {len(self.witnesses)} witness key(s)"
            )

    def to_text(self) -> str:
        """The trust file text for this policy (what :func:`parse_trust` reads back)."""
        lines = [f"log {self.log.vkey}"]
        lines += [f"witness {w.vkey}" for w in self.witnesses]
        if self.witnesses:
            lines.append(f"quorum {self.quorum}")
        if self.tsa_ca_sha256:
            lines.append(f"tsa-ca {self.tsa_ca_sha256}")
        return "\n".join(lines) + "\n"


def parse_trust(data: bytes | str) -> TrustPolicy:
    """Parse a trust file; every error names its line number."""
    if isinstance(data, bytes):
        if len(data) > MAX_TRUST_BYTES:
            raise TrustError(f"trust file is larger than {MAX_TRUST_BYTES} bytes")
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError:
            raise TrustError("trust file is not valid UTF-8") from None
    log: Verifier | None = None
    witnesses: list[Verifier] = []
    quorum: int | None = None
    tsa: str | None = None
    for n, raw in enumerate(data.splitlines(), 1):
        # Keys and numbers never contain '#', so everything after one is a comment.
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        if len(parts) != 2:
            raise TrustError(f"line {n}: want '<keyword> <value>', got {raw.strip()[:80]!r}")
        word, value = parts
        try:
            if word == "log":
                if log is not None:
                    raise TrustError(f"line {n}: a second 'log' line; a trust file names one log")
                log = parse_vkey(value)
            elif word == "witness":
                w = parse_vkey(value)
                if any(x.key_id == w.key_id and x.name == w.name for x in witnesses):
                    raise TrustError(f"line {n}: witness {w.name} is listed twice")
                witnesses.append(w)
                if len(witnesses) > MAX_WITNESSES:
                    raise TrustError(f"line {n}: more than {MAX_WITNESSES} witnesses")
            elif word == "quorum":
                if quorum is not None:
                    raise TrustError(f"line {n}: a second 'quorum' line")
                # ASCII: str.isdigit() admits "²", which int() refuses.
                if not (value.isascii() and value.isdigit()) or len(value) > 3:
                    raise TrustError(f"line {n}: quorum {value!r} is not a small whole number")
                quorum = int(value)
            elif word == "tsa-ca":
                if not _HEX64.fullmatch(value):
                    raise TrustError(
                        f"line {n}: tsa-ca wants the SHA-256 of the CA certificate "
                        "(64 lowercase hex digits)"
                    )
                tsa = value
            else:
                raise TrustError(
                    f"line {n}: unknown keyword {word!r}; use log, witness, quorum or tsa-ca"
                )
        except NoteError as e:
            raise TrustError(f"line {n}: {e}") from None
    if log is None:
        raise TrustError("trust file has no 'log <verifier key>' line")
    if witnesses and quorum is None:
        raise TrustError(
            "trust file lists witnesses but no 'quorum <k>' line: say how many must cosign"
        )
    try:
        return TrustPolicy(log, tuple(witnesses), quorum or 0, tsa)
    except TrustError as e:
        raise TrustError(f"trust file: {e}") from None
