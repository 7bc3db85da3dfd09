"""The OpenAPI 3.1 document of the decision point (``GET /openapi.json``).

Written by hand as data, next to the code it describes; the integration tests validate real requests and
responses against its schemas (JSON Schema 2020-12, as OpenAPI 3.1 uses), so it cannot drift silently.
"""

from __future__ import annotations

from typing import Any, Final

from tksh import __version__
from tksh.access.reasons import DenyReason
from tksh.access.tokens import TokenReason
from tksh.resources.accessgrant import SUBJECT_ID_PATTERN, TerminationReason
from tksh.resources.common import BIN_PATTERN

__all__ = ["MAX_BODY_BYTES", "openapi_document"]

MAX_BODY_BYTES: Final = 16 * 1024
"""The largest request body accepted (a decision request is a few hundred bytes)."""

_TEXTS: Final = {
    "type": "object",
    "required": ["kk", "ru", "en"],
    "properties": {lang: {"type": "string"} for lang in ("kk", "ru", "en")},
}
_REF = "#/components/schemas/"


def _json(schema: str, description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": {"$ref": _REF + schema}}}}


def openapi_document() -> dict[str, Any]:
    """The document; a fresh dict each call (callers may mutate it)."""
    schemas: dict[str, Any] = {
        "DecisionRequest": {
            "type": "object",
            "additionalProperties": False,
            "required": ["action", "resource"],
            "properties": {
                "subject": {
                    "type": "string", "pattern": SUBJECT_ID_PATTERN, "maxLength": 63,
                    "not": {"pattern": "^[0-9]{12}$"},
                    "description": "The subject id, for a trusted enforcement point; not with a bearer token. "
                                   "Without both, the anonymous principal of the open part (§21) asks.",
                },
                "action": {"type": "string", "enum": ["read", "write", "sign"]},
                "resource": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["category", "ownerBin"],
                    "properties": {
                        "category": {"type": "integer", "minimum": 1, "maximum": 15,
                                     "description": "The §4 information category."},
                        "ownerBin": {"type": "string", "pattern": BIN_PATTERN,
                                     "description": "The BIN of the subject whose information it is."},
                        "digitalObject": {"type": "string", "pattern": r"^[a-z0-9-]{1,63}/[a-z0-9.-]{1,253}$",
                                          "description": "namespace/name of the DigitalObject asking; absent: "
                                                         "the personal cabinet."},
                    },
                },
            },
        },
        "Decision": {
            "type": "object",
            "required": ["decisionId", "allowed", "reason", "code", "texts"],
            "properties": {
                "decisionId": {"type": "string", "format": "uuid"},
                "allowed": {"type": "boolean"},
                "reason": {"type": "string", "enum": ["ALLOW", *DenyReason]},
                "code": {"type": "string", "enum": ["ALLOW", *DenyReason]},
                "subject": {"type": "string"},
                "grant": {"type": "string", "description": "The grant that allowed, or the one a deny is about."},
                "openPart": {"type": "boolean"},
                "principal": {"type": "string", "description": "Delegation: the grant up the chain at issue."},
                "instant": {"type": "string", "format": "date-time"},
                "record": {
                    "type": "object",
                    "required": ["reason", "paragraph"],
                    "properties": {
                        "reason": {"type": "string", "enum": list(TerminationReason)},
                        "paragraph": {"type": "string"},
                        "at": {"type": "string", "format": "date-time"},
                        "by": {"type": "string"},
                        "note": {"type": "string"},
                        "cascadeFrom": {"type": "string"},
                    },
                },
                "scope": {"type": "string", "enum": ["category", "owner", "digital-object"]},
                "missingFunctions": {"type": "array", "items": {"type": "string"}},
                "considered": {
                    "type": "array",
                    "items": {"type": "object", "required": ["grant", "code"],
                              "properties": {"grant": {"type": "string"}, "code": {"type": "string"}}},
                },
                "texts": {"$ref": _REF + "Texts"},
            },
        },
        "Texts": _TEXTS,
        "InvalidRequest": {
            "type": "object",
            "additionalProperties": False,
            "required": ["error", "field", "rule"],
            "properties": {
                "error": {"const": "invalid_request"},
                "field": {"type": "string", "description": "Where: e.g. resource.ownerBin, body."},
                "rule": {"type": "string", "description": "What is expected (never echoes the value)."},
            },
        },
        "InvalidToken": {
            "type": "object",
            "additionalProperties": False,
            "required": ["error", "reason", "texts"],
            "properties": {
                "error": {"const": "invalid_token"},
                "reason": {"type": "string", "enum": list(TokenReason)},
                "texts": {"$ref": _REF + "Texts"},
            },
        },
        "Jwks": {
            "type": "object",
            "required": ["keys"],
            "properties": {"keys": {"type": "array", "items": {
                "type": "object",
                "required": ["kty", "crv", "x", "kid", "alg", "use"],
                "properties": {"kty": {"const": "OKP"}, "crv": {"const": "Ed25519"}, "x": {"type": "string"},
                               "kid": {"type": "string"}, "alg": {"const": "EdDSA"}, "use": {"const": "sig"}},
                "not": {"required": ["d"]},
            }}},
        },
        "Health": {"type": "object", "required": ["status"], "properties": {"status": {"type": "string"}}},
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "tksh decision point",
            "version": __version__,
            "description": "Access per agreement (§19-22, §31) and its termination (§20): allow or deny, with the "
                           "grant that allowed it or the reason of a deny in kk/ru/en. A deny is an answer (200).",
        },
        "paths": {
            "/v1/decisions": {"post": {
                "operationId": "decide",
                "security": [{}, {"bearer": []}],
                "requestBody": {"required": True, "content": {"application/json": {
                    "schema": {"$ref": _REF + "DecisionRequest"}}}},
                "responses": {
                    "200": _json("Decision", "The decision: allow or deny (a deny is not an error)."),
                    "400": _json("InvalidRequest", "A field breaks its rule, or the body is not a JSON object."),
                    "401": _json("InvalidToken", "The bearer token is refused; the reason says why."),
                    "413": _json("InvalidRequest", f"The body is larger than {MAX_BODY_BYTES} bytes."),
                },
            }},
            "/.well-known/jwks.json": {"get": {"operationId": "jwks", "responses": {
                "200": _json("Jwks", "The current and next public keys (and the previous one while in use).")}}},
            "/healthz": {"get": {"operationId": "healthz", "responses": {"200": _json("Health", "Alive.")}}},
            "/readyz": {"get": {"operationId": "readyz", "responses": {
                "200": _json("Health", "Grants and functions are listed: decisions are answered."),
                "503": _json("Health", "Not synchronised with the cluster yet."),
            }}},
            "/metrics": {"get": {"operationId": "metrics", "responses": {"200": {
                "description": "Prometheus metrics", "content": {"text/plain": {"schema": {"type": "string"}}}}}}},
            "/openapi.json": {"get": {"operationId": "openapi", "responses": {"200": {
                "description": "This document", "content": {"application/json": {"schema": {"type": "object"}}}}}}},
        },
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT (EdDSA)"}},
        },
    }
