"""What the log side of witnessing needs of a time-stamping authority (RFC 3161).

The implementations, the built-in TSA and a client of an external one, live with the
witness service in ``witness/tsa.py``; the log side depends only on this interface.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from ledger.errors import LedgerError


class TsaError(RuntimeError, LedgerError):
    """The TSA is unreachable, refused, or its key material is unusable."""


class Timestamper(Protocol):
    """Something that returns an RFC 3161 TimeStampResp over some bytes (``issue``: with
    its genTime)."""

    @property
    def ca_pem(self) -> bytes: ...

    @property
    def source(self) -> str: ...

    def timestamp(self, data: bytes) -> bytes: ...

    def issue(self, data: bytes) -> tuple[bytes, datetime]: ...
