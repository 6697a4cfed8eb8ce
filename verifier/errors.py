"""The project's exception base, at the bottom of the layers so every package can use it.

Every error Jianzheng raises on purpose derives from :class:`JianzhengError`, through one
base per package: :class:`VerifierError` here, ``ledger.errors.LedgerError``,
``storage.base.StorageError``, ``witness.errors.WitnessServiceError`` and
``api.errors.ApiLayerError`` (``ledger.http.ApiError``, the HTTP answer both services
share, derives from it directly). Each class keeps its standard base too
(``ValueError``, ``LookupError``...), so existing ``except`` clauses still match; a caller
that wants every project error catches one class instead of listing unrelated ones.
"""

from __future__ import annotations


class JianzhengError(Exception):
    """Any error Jianzheng raises on purpose."""


class VerifierError(JianzhengError):
    """An error of the verifier package (a format, a signature or a proof is wrong)."""
