"""JSON Schemas published in the OpenAPI document (validation itself is in ledger.records)."""

from __future__ import annotations

from typing import Any

from ledger.catalogue import TRADE_TYPES

_TEXT: dict[str, Any] = {"type": "string", "minLength": 1, "maxLength": 128}

EVENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["project", "trade_type", "type", "actor", "occurred_at"],
    "properties": {
        "project": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]{0,119}$"},
        "trade_type": {"type": "string", "enum": list(TRADE_TYPES)},
        "type": {
            "type": "string",
            "minLength": 1,
            "maxLength": 64,
            "description": "an event code from GET /v1/catalogue",
        },
        "actor": {
            "type": "object",
            "additionalProperties": False,
            "required": ["id", "role"],
            "properties": {"id": _TEXT, "role": {**_TEXT, "maxLength": 64}},
        },
        "occurred_at": {
            "type": "string",
            "format": "date-time",
            "description": "RFC 3339 with an offset; naive times are refused",
        },
        "payload": {"type": "object", "description": "integers only (amounts in fen)"},
        "attachments": {
            "type": "array",
            "maxItems": 256,
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["sha256", "size", "media_type", "name"],
                "properties": {
                    "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
                    "size": {"type": "integer", "minimum": 0},
                    "media_type": {"type": "string", "maxLength": 255},
                    "name": {"type": "string", "minLength": 1, "maxLength": 255},
                },
            },
        },
        "idempotency_key": _TEXT,
    },
}
