"""The witness package's exception base (see :mod:`verifier.errors`)."""

from __future__ import annotations

from verifier.errors import JianzhengError


class WitnessServiceError(JianzhengError):
    """An error of the witness service, its state, the monitor or the TSA keys."""
