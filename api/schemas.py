"""JSON Schemas published in the OpenAPI document and at ``GET /v1/catalogue``.

Validation itself is ``ledger.records.validate_event`` (payloads: ``verifier.payload``);
these schemas are generated from the same catalogue so that clients generated from the
OpenAPI document type-check their payloads (JSON Schema 2020-12, as OpenAPI 3.1 uses).
"""

from __future__ import annotations

import copy
from typing import Any

from ledger.catalogue import TRADE_TYPES, Catalogue, EventType, FieldSpec
from ledger.records import LEDGER_EVENTS, MAX_ATTACHMENTS, MEDIA_TYPE_RE, PROJECT_RE
from verifier.canonical import MAX_SAFE_INTEGER
from verifier.payload import EXTENSIONS, MAX_EXTENSION_KEY, RFC3339_RE

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
#: Free text holds no control characters (C0, DEL, C1); ledger.records refuses them.
NO_CONTROL_PATTERN = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$"

_TEXT: dict[str, Any] = {
    "type": "string",
    "minLength": 1,
    "maxLength": 128,
    "pattern": NO_CONTROL_PATTERN,
}

EVENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["project", "trade_type", "type", "actor", "occurred_at"],
    "properties": {
        "project": {"type": "string", "pattern": f"^{PROJECT_RE.pattern}$"},
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
            "pattern": f"^{RFC3339_RE.pattern}$",
            "description": "RFC 3339 with an offset; naive times are refused",
        },
        "payload": {"type": "object", "description": "integers only (amounts in fen)"},
        "attachments": {
            "type": "array",
            "maxItems": MAX_ATTACHMENTS,
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["sha256", "size", "media_type", "name"],
                "properties": {
                    "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
                    "size": {"type": "integer", "minimum": 0, "maximum": MAX_SAFE_INTEGER},
                    "media_type": {
                        "type": "string",
                        "minLength": 1,
                        "maxLength": 255,
                        "pattern": f"^(?:{MEDIA_TYPE_RE.pattern})$",
                        "allOf": [{"pattern": NO_CONTROL_PATTERN}],
                    },
                    "name": {**_TEXT, "maxLength": 255},
                },
            },
        },
        "idempotency_key": _TEXT,
        "signature": {
            **_TEXT,
            "maxLength": 100,
            "description": "base64 Ed25519 signature by the poster's registered key",
        },
        "late_entry": {
            "type": "object",
            "additionalProperties": False,
            "required": ["reason"],
            "properties": {"reason": {"type": "string", "minLength": 1, "maxLength": 1000}},
            "description": "a fact recorded late (e.g. after a system fault): committed even "
            "out of process order, and flagged by the verifier",
        },
    },
}


def field_schema(f: FieldSpec) -> dict[str, Any]:
    """The JSON Schema of one catalogued payload field."""
    out: dict[str, Any]
    if f.type == "int":
        out = {
            "type": "integer",
            "minimum": f.minimum if f.minimum is not None else -MAX_SAFE_INTEGER,
            "maximum": f.maximum if f.maximum is not None else MAX_SAFE_INTEGER,
        }
    elif f.type == "string":
        out = _string(f.max_length or 1, f.pattern)
    elif f.type == "instant":
        out = {
            "type": "string",
            "format": "date-time",
            "pattern": f"^{RFC3339_RE.pattern}$",
            "description": "RFC 3339 with an offset; naive times are refused",
        }
    elif f.type == "date":
        out = {"type": "string", "format": "date", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"}
    elif f.type == "bool":
        out = {"type": "boolean"}
    elif f.type == "string[]":
        out = {
            "type": "array",
            "maxItems": f.max_items,
            "items": _string(f.max_length or 1, None),
        }
    elif f.type == "enum":
        out = {"type": "string", "enum": list(f.values)}
    elif f.type == "ip":
        out = {
            "type": "string",
            "maxLength": 39,
            "anyOf": [{"format": "ipv4"}, {"format": "ipv6"}],
            "description": "IPv4 dotted decimal, or IPv6 in RFC 5952 canonical form",
        }
    else:
        out = {
            "oneOf": [
                {
                    "type": "object",
                    "required": ["idempotency_key"],
                    "additionalProperties": False,
                    "properties": {"idempotency_key": _string(128, None)},
                },
                {
                    "type": "object",
                    "required": ["index"],
                    "additionalProperties": False,
                    "properties": {
                        "index": {"type": "integer", "minimum": 0, "maximum": MAX_SAFE_INTEGER}
                    },
                },
            ],
            "x-reference-to": list(f.to),
        }
    out["title"] = f.en
    out["description"] = f"{f.zh} / {f.en}" + (
        f" (one of the project's earlier {', '.join(f.to)})" if f.to else ""
    )
    out["examples"] = [f.example]
    return out


def _string(max_length: int, pattern: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "string", "minLength": 1, "maxLength": max_length}
    out["pattern"] = pattern if pattern else NO_CONTROL_PATTERN
    return out


#: Platform-specific data: any JSON under namespaced keys; no rule reads it.
EXTENSIONS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "propertyNames": {
        "pattern": "^[a-z0-9-]+(\\.[a-z0-9-]+)+/[A-Za-z0-9_.-]{1,64}$",
        "maxLength": MAX_EXTENSION_KEY,
    },
    "description": (
        "平台自有数据，键名带命名空间（如 cn.gov.hz.ggzy/section），规则不读取 / "
        "Platform-specific data under namespaced keys (e.g. cn.gov.hz.ggzy/section); "
        "no rule reads it. Its strings hold no control characters."
    ),
}


def payload_schema(ev: EventType) -> dict[str, Any]:
    """The JSON Schema (2020-12) of one event type's payload."""
    props = {name: field_schema(f) for name, f in ev.fields.items()}
    props[EXTENSIONS] = EXTENSIONS_SCHEMA
    out: dict[str, Any] = {
        "type": "object",
        "title": f"{ev.code} payload",
        "description": f"{ev.name_zh} / {ev.name_en}",
        "additionalProperties": False,
        "required": [n for n, f in ev.fields.items() if f.required],
        "properties": props,
    }
    if ev.one_of_required:
        out["allOf"] = [
            {"anyOf": [{"required": [n]} for n in group]} for group in ev.one_of_required
        ]
    return out


def event_schema(ev: EventType) -> dict[str, Any]:
    """The JSON Schema of a posted event of type ``ev``: the envelope with its payload."""
    out = copy.deepcopy(EVENT_SCHEMA)
    out["title"] = ev.code
    out["description"] = f"{ev.name_zh} / {ev.name_en}"
    props = out["properties"]
    props["type"] = {"type": "string", "const": ev.code}
    props["trade_type"] = {"type": "string", "enum": list(ev.trade_types)}
    props["payload"] = payload_schema(ev)
    if ev.one_of_required or any(f.required for f in ev.fields.values()):
        out["required"] = [*out["required"], "payload"]
    return out


#: The request body of POST /v1/events (and each item of a batch) in the OpenAPI document.
POSTED_EVENT_REF: dict[str, Any] = {"$ref": "#/components/schemas/PostedEvent"}


def posted_types(catalogue: Catalogue) -> list[EventType]:
    """The event types a platform may post (access records and legal holds are the
    ledger's own)."""
    return [ev for ev in catalogue if ev.code not in LEDGER_EVENTS]


def schema_name(code: str) -> str:
    """The OpenAPI component name of one event type's schema."""
    return "Event_" + code


def openapi_components(catalogue: Catalogue) -> dict[str, Any]:
    """Per-type event schemas and their union ``PostedEvent``, discriminated on ``type``."""
    schemas: dict[str, Any] = {
        schema_name(ev.code): event_schema(ev) for ev in posted_types(catalogue)
    }
    refs = {
        ev.code: f"#/components/schemas/{schema_name(ev.code)}" for ev in posted_types(catalogue)
    }
    schemas["PostedEvent"] = {
        "description": (
            f"An event to append; its payload as the event catalogue (version "
            f"{catalogue.version}, GET /v1/catalogue) describes for its type"
        ),
        "oneOf": [{"$ref": r} for r in refs.values()],
        "discriminator": {"propertyName": "type", "mapping": refs},
    }
    return schemas


def catalogue_entry(catalogue: Catalogue, ev: EventType) -> dict[str, Any]:
    """One event type as ``GET /v1/catalogue[/{type}]`` shows it."""
    return {
        "code": ev.code,
        "name_zh": ev.name_zh,
        "name_en": ev.name_en,
        "trade_types": list(ev.trade_types),
        "phase": ev.phase,
        "sources": list(ev.sources),
        "status": ev.status,
        "sealed_fields": list(ev.sealed_fields),
        "sealed_attachments": ev.sealed_attachments,
        "posted": ev.code not in LEDGER_EVENTS,
        "fields": [
            {
                "name": f.name,
                "type": f.type,
                "required": f.required,
                "zh": f.zh,
                "en": f.en,
                **({"min": f.minimum} if f.minimum is not None else {}),
                **({"max": f.maximum} if f.maximum is not None else {}),
                **({"max_length": f.max_length} if f.max_length is not None else {}),
                **({"max_items": f.max_items} if f.max_items is not None else {}),
                **({"pattern": f.pattern} if f.pattern else {}),
                **({"values": list(f.values)} if f.values else {}),
                **({"to": list(f.to)} if f.to else {}),
                "example": f.example,
            }
            for f in ev.fields.values()
        ],
        "one_of_required": [list(g) for g in ev.one_of_required],
        "example_payload": ev.example_payload(),
        "schema": {"$schema": JSON_SCHEMA_DIALECT, **event_schema(ev)},
    }
