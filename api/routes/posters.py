"""Registering poster signing keys."""

from __future__ import annotations

import base64
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from api.deps import Admin, Poster, TokenId
from api.errors import ApiError
from ledger.posters import PosterKeys

router = APIRouter(tags=["posters"])


class PosterKeyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    public_key: str = Field(description="base64 Ed25519 public key (32 bytes)", max_length=64)
    required: bool = Field(default=True, description="refuse this token's unsigned events")


def _key(body: PosterKeyRequest) -> bytes:
    try:
        raw = base64.b64decode(body.public_key, validate=True)
    except ValueError:  # binascii.Error, or non-ASCII text
        raw = b""
    if len(raw) != 32:
        raise ApiError(
            422, "invalid_parameter", "public_key must be 32 bytes in base64", "public_key"
        )
    return raw


@router.put("/v1/poster-key")
def put_own_key(body: PosterKeyRequest, request: Request, p: Poster) -> dict[str, Any]:
    """Register the calling platform token's signing key (once)."""
    keys: PosterKeys = request.app.state.poster_keys
    keys.set(p.token_id, _key(body), body.required, replace=False)
    return {"token_id": p.token_id, "public_key": body.public_key, "required": body.required}


@router.put("/v1/tokens/{token_id}/poster-key")
def put_key(
    token_id: TokenId, body: PosterKeyRequest, request: Request, _: Admin
) -> dict[str, Any]:
    """Admin: set or rotate a token's signing key, or change whether it is required."""
    keys: PosterKeys = request.app.state.poster_keys
    keys.set(token_id, _key(body), body.required, replace=True)
    return {"token_id": token_id, "public_key": body.public_key, "required": body.required}
