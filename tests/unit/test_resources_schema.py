"""The converter from pydantic to structural schemas, and the structural checker itself."""

from __future__ import annotations

import enum
from typing import Annotated, Any, Literal

import pytest
from pydantic import BaseModel, Field

from tksh.resources.base import KubeModel, Timestamp
from tksh.resources.common import SET, list_map
from tksh.resources.schema import SchemaError, describe, openapi_schema
from tksh.resources.structural import check_structural


class Colour(enum.StrEnum):
    """A colour."""

    RED = "Red"
    BLUE = "Blue"


class Leaf(KubeModel):
    """A leaf.

    With a second paragraph
    over two lines.
    """

    key: str
    """The key."""
    weight_kg: float | None = Field(default=None, ge=0, le=10)
    """How heavy."""


class Sample(KubeModel):
    """A sample."""

    at: Timestamp | None = None
    """When."""
    colour: Colour = Colour.RED
    fixed: Literal["only"] = "only"
    leaf: Leaf | None = None
    """The leaf of this sample."""
    leaves: Annotated[list[Leaf], Field(json_schema_extra=list_map("key"))] = Field(default_factory=list)
    tags: Annotated[list[str], Field(json_schema_extra=SET)] = Field(default_factory=list)
    counts: dict[str, int] | None = None
    generation: int | None = Field(default=None, ge=0, json_schema_extra={"format": "int64"})


def test_the_converter_produces_a_structural_schema() -> None:
    schema = openapi_schema(Sample)
    props = schema["properties"]
    assert schema["type"] == "object"
    assert schema["description"] == "A sample."
    assert props["at"] == {"description": "When.", "type": "string", "format": "date-time"}
    assert props["colour"] == {"description": "A colour.", "type": "string", "enum": ["Red", "Blue"], "default": "Red"}
    assert props["fixed"] == {"type": "string", "enum": ["only"], "default": "only"}
    assert props["leaf"]["description"] == "The leaf of this sample."  # the field's words win over the model's
    assert props["leaf"]["required"] == ["key"]
    assert props["leaf"]["properties"]["weightKg"] == {
        "description": "How heavy.",
        "type": "number",
        "minimum": 0,
        "maximum": 10,
    }
    assert props["leaves"]["items"]["description"] == "A leaf.\n\nWith a second paragraph over two lines."
    assert props["leaves"]["x-kubernetes-list-map-keys"] == ["key"]
    assert props["tags"]["x-kubernetes-list-type"] == "set"
    assert props["counts"] == {"type": "object", "additionalProperties": {"type": "integer"}}
    assert props["generation"]["format"] == "int64"
    assert "required" not in schema
    text = repr(schema)
    for absent in ("$ref", "$defs", "anyOf", "'title'", "'null'", "'default': None", "'default': []"):
        assert absent not in text
    wrapper = {"type": "object", "properties": {"spec": schema}}
    assert check_structural(wrapper) == []


def test_unique_items_become_a_set() -> None:
    class WithSet(BaseModel):
        names: set[str]

    schema = openapi_schema(WithSet)
    assert schema["properties"]["names"]["x-kubernetes-list-type"] == "set"
    assert "uniqueItems" not in schema["properties"]["names"]


def test_unions_are_refused() -> None:
    class Union(BaseModel):
        value: int | str

    with pytest.raises(SchemaError, match=r"Union\.value: unions are not supported"):
        openapi_schema(Union)


def test_exclusive_bounds_are_refused() -> None:
    class Exclusive(BaseModel):
        value: int = Field(gt=0)

    with pytest.raises(SchemaError, match="exclusiveMinimum"):
        openapi_schema(Exclusive)


def test_describe_unwraps_paragraphs_and_code() -> None:
    assert describe("One\n   two ``x``.\n\n  Three.") == "One two `x`.\n\nThree."
    assert describe(None) == ""


def _root(**spec: Any) -> dict[str, Any]:
    return {"type": "object", "properties": {"metadata": {"type": "object"}, "spec": {"type": "object", **spec}}}


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"properties": {"a": {"description": "untyped"}}}, "spec.properties.a.type: required"),
        ({"properties": {"a": {"type": "array"}}}, "spec.properties.a.items: an array must describe its items"),
        ({"properties": {"a": {"type": "array", "items": {"type": "string"}, "uniqueItems": True}}}, "uniqueItems"),
        ({"properties": {"a": {"$ref": "#/definitions/x"}}}, "spec.properties.a.$ref: $ref is not supported"),
        ({"properties": {"a": {"type": "string", "const": "x"}}}, "const is not supported"),
        ({"properties": {"a": {"type": "string", "examples": ["x"]}}}, "spec.properties.a.examples: unknown keyword"),
        ({"properties": {"a": {"type": "null"}}}, "'null' is not one of"),
        ({"properties": {"a": {"type": "string"}}, "additionalProperties": {"type": "string"}}, "mutually exclusive"),
        ({"additionalProperties": False}, "spec.additionalProperties: cannot be false"),
        ({"properties": {"a": {"type": "string"}}, "required": ["b"]}, "'b' is not a declared property"),
        ({"properties": {"a": {"type": "string", "format": "colour"}}}, "not a format the API server knows"),
        ({"properties": {"a": {"type": "integer", "exclusiveMinimum": 0}}}, "must be a boolean in OpenAPI v3.0"),
        ({"properties": {"a": {"type": "integer", "default": "x"}}}, "spec.properties.a.default: 'x' is not of type"),
        ({"properties": {"a": {"type": "string", "enum": ["x"], "default": "y"}}}, "default: 'y' is not one of"),
        (
            {"properties": {"a": {"type": "string"}}, "anyOf": [{"type": "object", "required": ["a"]}]},
            "spec.anyOf[0].type: must not be set inside allOf/anyOf/oneOf/not",
        ),
        (
            {"properties": {"a": {"type": "string"}}, "anyOf": [{"properties": {"b": {"minLength": 1}}}]},
            "spec.anyOf[0].properties.b: must also be specified outside anyOf",
        ),
        (
            {
                "properties": {
                    "a": {
                        "type": "array",
                        "x-kubernetes-list-type": "set",
                        "items": {"type": "object", "properties": {"k": {"type": "string"}}},
                    }
                }
            },
            "the items of a set must be scalars",
        ),
        (
            {
                "properties": {
                    "a": {
                        "type": "array",
                        "x-kubernetes-list-type": "map",
                        "x-kubernetes-list-map-keys": ["k"],
                        "items": {"type": "object", "properties": {"k": {"type": "string"}}},
                    }
                }
            },
            "spec.properties.a.items.properties.k: a map key must be required or have a default",
        ),
        (
            {
                "properties": {
                    "a": {
                        "type": "array",
                        "x-kubernetes-list-type": "map",
                        "x-kubernetes-list-map-keys": ["z"],
                        "items": {"type": "object", "properties": {"k": {"type": "string"}}},
                    }
                }
            },
            "'z' is not a property of the items",
        ),
        ({"properties": {"a": {"type": "string", "x-kubernetes-list-type": "set"}}}, "must be array if"),
    ],
)
def test_the_checker_finds_what_the_api_server_refuses(spec: dict[str, Any], expected: str) -> None:
    problems = check_structural(_root(**spec))
    assert any(expected in problem for problem in problems), problems


def test_the_checker_accepts_int_or_string_and_preserved_fields() -> None:
    schema = _root(
        properties={
            "port": {"x-kubernetes-int-or-string": True, "anyOf": [{"type": "integer"}, {"type": "string"}]},
            "raw": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
        }
    )
    assert check_structural(schema) == []


def test_the_checker_refuses_described_metadata_and_a_non_object_root() -> None:
    problems = check_structural({"type": "object", "properties": {"metadata": {"type": "object", "properties": {}}}})
    assert any("root metadata" in problem for problem in problems)
    assert any("root must be of type object" in problem for problem in check_structural({"type": "string"}))
