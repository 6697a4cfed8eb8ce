"""The ledger package's exception base (see :mod:`verifier.errors`)."""

from __future__ import annotations

from verifier.errors import JianzhengError


class LedgerError(JianzhengError):
    """An error of the ledger package (store, sequencer, catalogue, keys, export...)."""
