"""Validation like a real server: prune, default, then validate; all violations, named fields, real messages."""

from __future__ import annotations

from typing import Any

import pytest

from tksh.sandbox.apiserver import EmbeddedAPIServer
from tksh.sandbox.apiserver.schema import process

from .helpers import WIDGETS, call, widget

MERGE = "application/merge-patch+json"


async def test_invalid_create_is_422_with_all_causes_and_stores_nothing(embedded_api: EmbeddedAPIServer) -> None:
    body = widget("bad", size="huge", replicas=0, owner={"bin": "123"}, tags=[],
                  ports=[{"port": 80}, {"name": "no-port"}])
    reply = await call(embedded_api, "POST", WIDGETS, body)
    assert reply.status == 422
    assert reply.body["kind"] == "Status" and reply.body["reason"] == "Invalid"
    details = reply.body["details"]
    assert (details["name"], details["group"], details["kind"]) == ("bad", "example.test", "Widget")
    causes = {(c["field"], c["reason"]): c["message"] for c in details["causes"]}
    assert causes == {
        ("spec.size", "FieldValueNotSupported"): 'Unsupported value: "huge": supported values: "small", "large"',
        ("spec.replicas", "FieldValueInvalid"):
            "Invalid value: 0: spec.replicas in body should be greater than or equal to 1",
        ("spec.owner.bin", "FieldValueInvalid"):
            "Invalid value: \"123\": spec.owner.bin in body should match '^[0-9]{12}$'",
        ("spec.tags", "FieldValueInvalid"): "Invalid value: 0: spec.tags in body should have at least 1 items",
        ("spec.ports[1].port", "FieldValueRequired"): "Required value",
    }
    assert reply.body["message"].startswith('Widget.example.test "bad" is invalid: [')
    assert "spec.owner.bin: Invalid value: \"123\": spec.owner.bin in body should match '^[0-9]{12}$'" \
        in reply.body["message"]
    assert embedded_api.store.get("widgets", "default", "bad") is None


async def test_a_single_violation_message_has_no_brackets(embedded_api: EmbeddedAPIServer) -> None:
    reply = await call(embedded_api, "POST", WIDGETS, widget("x", owner={"bin": "123"}))
    assert reply.body["message"] == ('Widget.example.test "x" is invalid: spec.owner.bin: Invalid value: "123": '
                                     "spec.owner.bin in body should match '^[0-9]{12}$'")


async def test_unknown_fields_are_pruned_except_where_preserved(embedded_api: EmbeddedAPIServer) -> None:
    body = widget("w1", unknown=1, extra={"anything": {"goes": [1]}}, owner={"bin": "123456789012", "nick": "n"})
    body["metadata"]["bogus"] = "x"
    body["topLevel"] = True
    reply = await call(embedded_api, "POST", WIDGETS, body)
    assert reply.status == 201
    assert reply.headers.get("Warning", "").startswith('299 - "unknown field')
    spec = reply.body["spec"]
    assert "unknown" not in spec and "nick" not in spec["owner"] and "topLevel" not in reply.body
    assert "bogus" not in reply.body["metadata"]
    assert spec["extra"] == {"anything": {"goes": [1]}}


async def test_strict_field_validation_refuses_unknown_fields_with_400(embedded_api: EmbeddedAPIServer) -> None:
    reply = await call(embedded_api, "POST", WIDGETS, widget("w1", unknown=1), params={"fieldValidation": "Strict"})
    assert reply.status == 400
    assert reply.body["message"] == 'strict decoding error: unknown field "spec.unknown"'


async def test_defaults_are_applied_on_create_and_on_updates(embedded_api: EmbeddedAPIServer) -> None:
    created = await call(embedded_api, "POST", WIDGETS, widget("w1"))
    assert created.body["spec"]["replicas"] == 1
    patched = await call(embedded_api, "PATCH", f"{WIDGETS}/w1", {"spec": {"replicas": None}}, content_type=MERGE)
    assert patched.body["spec"]["replicas"] == 1


async def test_updates_and_status_writes_are_validated_too(embedded_api: EmbeddedAPIServer) -> None:
    created = (await call(embedded_api, "POST", WIDGETS, widget("w1"))).body
    patch = await call(embedded_api, "PATCH", f"{WIDGETS}/w1", {"spec": {"replicas": 11}}, content_type=MERGE)
    assert patch.status == 422
    assert patch.body["details"]["causes"][0]["field"] == "spec.replicas"
    status = await call(embedded_api, "PATCH", f"{WIDGETS}/w1/status",
                        {"status": {"phase": "Sleeping", "conditions": [{"type": "Ready", "status": "Maybe"}]}},
                        content_type=MERGE)
    assert status.status == 422
    assert {c["field"] for c in status.body["details"]["causes"]} == {"status.phase", "status.conditions[0].status"}
    assert embedded_api.store.get("widgets", "default", "w1") == created


SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "properties": {
                "count": {"type": "integer"},
                "ratio": {"type": "number", "minimum": 0, "exclusiveMinimum": True, "maximum": 1,
                          "exclusiveMaximum": True},
                "name": {"type": "string", "minLength": 2, "maxLength": 4},
                "when": {"type": "string", "format": "date-time"},
                "day": {"type": "string", "format": "date"},
                "port": {"x-kubernetes-int-or-string": True},
                "maybe": {"type": "string", "nullable": True},
                "never": {"type": "string"},
                "flag": {"type": "boolean"},
                "items": {"type": "array", "maxItems": 2, "uniqueItems": True, "items": {"type": "string"}},
                "map": {"type": "object", "additionalProperties": {"type": "integer"}},
                "nested": {"type": "object", "properties": {"deep": {"type": "object", "required": ["x"],
                                                                     "properties": {"x": {"type": "string"}}}}},
            },
        },
    },
}


@pytest.mark.parametrize(("spec", "field", "reason", "message"), [
    ({"count": 1.5}, "spec.count", "FieldValueTypeInvalid",
     'Invalid value: "number": spec.count in body must be of type integer: "number"'),
    ({"count": "1"}, "spec.count", "FieldValueTypeInvalid",
     'Invalid value: "string": spec.count in body must be of type integer: "string"'),
    ({"flag": 1}, "spec.flag", "FieldValueTypeInvalid",
     'Invalid value: "integer": spec.flag in body must be of type boolean: "integer"'),
    ({"ratio": 0}, "spec.ratio", "FieldValueInvalid", "Invalid value: 0: spec.ratio in body should be greater than 0"),
    ({"ratio": 1}, "spec.ratio", "FieldValueInvalid", "Invalid value: 1: spec.ratio in body should be less than 1"),
    ({"name": "a"}, "spec.name", "FieldValueInvalid",
     'Invalid value: "a": spec.name in body should be at least 2 chars long'),
    ({"name": "abcde"}, "spec.name", "FieldValueTooLong", "Too long: may not be longer than 4"),
    ({"when": "yesterday"}, "spec.when", "FieldValueInvalid",
     'Invalid value: "yesterday": spec.when in body must be of type date-time: "yesterday"'),
    ({"day": "2024-02-30"}, "spec.day", "FieldValueInvalid",
     'Invalid value: "2024-02-30": spec.day in body must be of type date: "2024-02-30"'),
    ({"port": 1.5}, "spec.port", "FieldValueTypeInvalid",
     'Invalid value: "number": spec.port in body must be of type integer,string: "number"'),
    ({"never": None}, "spec.never", "FieldValueTypeInvalid",
     'Invalid value: "null": spec.never in body must be of type string: "null"'),
    ({"items": ["a", "b", "c"]}, "spec.items", "FieldValueTooMany", "Too many: 3: must have at most 2 items"),
    ({"items": ["a", "a"]}, "spec.items[1]", "FieldValueDuplicate", 'Duplicate value: "a"'),
    ({"map": {"k": "v"}}, "spec.map.k", "FieldValueTypeInvalid",
     'Invalid value: "string": spec.map.k in body must be of type integer: "string"'),
    ({"nested": {"deep": {}}}, "spec.nested.deep.x", "FieldValueRequired", "Required value"),
])
def test_each_violation_is_named_and_worded_like_the_real_server(
        spec: dict[str, Any], field: str, reason: str, message: str) -> None:
    outcome = process({"spec": spec}, SCHEMA)
    assert [(c.field, c.reason, c.body) for c in outcome.causes] == [(field, reason, message)]


@pytest.mark.parametrize("spec", [
    {"count": 2.0}, {"ratio": 0.5}, {"when": "2024-01-02T03:04:05Z"}, {"when": "2024-01-02T03:04:05.123+05:00"},
    {"day": "2024-02-29"}, {"port": 8080}, {"port": "http"}, {"maybe": None}, {"items": ["a", "b"]},
    {"map": {"a": 1, "b": 2}}, {"nested": {"deep": {"x": "y"}}},
])
def test_valid_values_pass(spec: dict[str, Any]) -> None:
    assert process({"spec": spec}, SCHEMA).causes == []
