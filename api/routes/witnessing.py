"""Trusted time and witnessing, public: RFC 3161 tokens per checkpoint and the TSA's CA.

The cosigned checkpoint itself is served at ``/log/checkpoint`` and the witnessed size in
``GET /v1/log`` (routes/log.py); all read the log side of witnessing through
:class:`ledger.witnessing.view.WitnessingView`.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from fastapi.responses import Response

from api.deps import DecimalDigits, LedgerDep, WitnessingDep
from api.errors import ApiError
from ledger.service import NotFound
from ledger.witnessing.view import WitnessingView

router = APIRouter(tags=["witnessing"])

#: A stored token never changes (the first one stored for a checkpoint is kept).
IMMUTABLE = {"Cache-Control": "public, max-age=31536000, immutable"}


def _witnessing(w: WitnessingView | None) -> WitnessingView:
    if w is None:
        raise ApiError(
            404, "not_found", "this log runs without witnessing or a timestamp authority"
        )
    return w


@router.get(
    "/v1/checkpoints/{size}/timestamp",
    responses={200: {"content": {"application/timestamp-reply": {}}}},
)
def checkpoint_timestamp(
    size: Annotated[int, Path(), DecimalDigits], lg: LedgerDep, witnessing: WitnessingDep
) -> Response:
    """RFC 3161 TimeStampResp (DER) over checkpoint ``size``'s note body (RFC 3161 §3.4)."""
    w = _witnessing(witnessing)
    reply = w.timestamp_reply(size) if size >= 0 else None
    if reply is None:
        try:
            lg.checkpoint_at(size)
        except NotFound as e:
            raise ApiError(404, "not_found", str(e)) from None
        raise ApiError(
            404,
            "not_timestamped",
            f"checkpoint {size} has no timestamp yet; tokens are fetched in the background",
            headers={"Retry-After": "1"},
        )
    return Response(reply, media_type="application/timestamp-reply", headers=IMMUTABLE)


@router.get(
    "/v1/tsa/certificate",
    responses={200: {"content": {"application/pem-certificate-chain": {}}}},
)
def tsa_certificate(w: WitnessingDep) -> Response:
    """The PEM CA certificate the timestamp tokens chain to (``openssl ts -verify -CAfile``)."""
    try:
        pem = _witnessing(w).tsa_ca_pem()
    except NotFound as e:
        raise ApiError(404, "not_found", str(e)) from None
    return Response(pem, media_type="application/pem-certificate-chain")
