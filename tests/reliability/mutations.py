"""Invalid variants of valid objects, derived from the CRD schemas: what the hostile-input properties feed in.

:func:`sites` walks a valid object (an example manifest) along its schema and lists every place a rule
can be broken there: a wrong JSON type, a string outside its pattern, enum, length or format, a number
out of range, a required field removed, a duplicate in a set. :func:`violation` is a hypothesis
strategy for a value that breaks the rule of one site; :func:`mutate` puts it in a copy of the object.
Each site knows its field path in the API server's notation (``spec.rights[0].category``), which the
refusal must name.
"""

from __future__ import annotations

import copy
import dataclasses
import re
from collections.abc import Mapping
from typing import Any

from hypothesis import strategies as st

_REMOVE = object()
JSON_TYPES = ("string", "integer", "number", "boolean", "array", "object")
Path = tuple[str | int, ...]


@dataclasses.dataclass(frozen=True)
class Site:
    path: Path  # keys and indexes from the object's root
    rule: str  # type, pattern, enum, maxLength, minLength, format, minimum, maximum, required, set
    schema: Mapping[str, Any]
    value: Any = None  # the valid value found there (for sets: the list)

    @property
    def field(self) -> str:
        text = ""
        for part in self.path:
            text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
        return text


def sites(obj: Mapping[str, Any], schema: Mapping[str, Any], path: Path = ()) -> list[Site]:
    """Every breakable rule along ``obj`` (the ``spec`` only: metadata and status are not user input here)."""
    found: list[Site] = []
    if not path:
        spec_schema = (schema.get("properties") or {}).get("spec")
        return sites(obj["spec"], spec_schema, ("spec",)) if spec_schema and "spec" in obj else []
    kind = schema.get("type")
    if kind in JSON_TYPES and not schema.get("x-kubernetes-int-or-string"):
        found.append(Site(path, "type", schema, obj))
    if isinstance(obj, str):
        for rule in ("pattern", "enum", "maxLength", "minLength", "format"):
            breakable = not (rule == "minLength" and schema.get(rule) == 0) and (
                rule != "format" or schema.get(rule) in ("date-time", "date"))
            if rule in schema and breakable:
                found.append(Site(path, rule, schema, obj))
    if isinstance(obj, int | float) and not isinstance(obj, bool):
        found.extend(Site(path, rule, schema, obj) for rule in ("minimum", "maximum") if rule in schema)
    if isinstance(obj, dict):
        properties = schema.get("properties") or {}
        for key in schema.get("required") or ():
            if key in obj:
                found.append(Site((*path, key), "required", properties.get(key) or {}, obj[key]))
        for key, value in obj.items():
            if key in properties:
                found.extend(sites(value, properties[key], (*path, key)))
    if isinstance(obj, list):
        items = schema.get("items") or {}
        if obj and schema.get("x-kubernetes-list-type") == "set":
            found.append(Site(path, "set", schema, obj))
        for index, value in enumerate(obj):
            found.extend(sites(value, items, (*path, index)))
    return found


def _wrong_type(expected: str) -> st.SearchStrategy[Any]:
    by_type: dict[str, st.SearchStrategy[Any]] = {
        "string": st.text(max_size=20),
        "integer": st.integers(min_value=-(2**40), max_value=2**40),
        "boolean": st.booleans(),
        "array": st.lists(st.integers(), max_size=3),
        "object": st.dictionaries(st.text(min_size=1, max_size=5), st.integers(), min_size=1, max_size=3),
    }
    if expected == "number":
        by_type.pop("integer")  # an integer is a number
    return st.one_of([strategy for kind, strategy in by_type.items() if kind != expected])


def violation(site: Site) -> st.SearchStrategy[Any]:
    """Values that break ``site``'s rule (``_REMOVE`` for a required field)."""
    schema = site.schema
    if site.rule == "type":
        return _wrong_type(str(schema["type"]))
    if site.rule == "pattern":
        pattern = re.compile(str(schema["pattern"]))
        return st.text(max_size=40).filter(lambda s: pattern.search(s) is None)
    if site.rule == "enum":
        allowed = set(schema["enum"])
        return st.text(max_size=30).filter(lambda s: s not in allowed)
    if site.rule == "maxLength":
        limit = int(schema["maxLength"])
        return st.integers(min_value=limit + 1, max_value=limit + 50).map(lambda n: "я" * n)
    if site.rule == "minLength":
        return st.text(max_size=int(schema["minLength"]) - 1)
    if site.rule == "format":
        return st.text(alphabet="abcxyz -:/", max_size=25)
    if site.rule == "minimum":
        return st.integers(max_value=int(schema["minimum"]) - 1, min_value=-(2**40))
    if site.rule == "maximum":
        return st.integers(min_value=int(schema["maximum"]) + 1, max_value=2**40)
    if site.rule == "required":
        return st.just(_REMOVE)
    if site.rule == "set":
        return st.sampled_from(range(len(site.value))).map(lambda i: [*site.value, site.value[i]])
    raise AssertionError(site.rule)


def mutate(obj: Mapping[str, Any], site: Site, value: Any) -> dict[str, Any]:
    """A copy of ``obj`` with ``value`` at the site (or the field removed)."""
    result = copy.deepcopy(dict(obj))
    parent: Any = result
    for part in site.path[:-1]:
        parent = parent[part]
    if value is _REMOVE:
        del parent[site.path[-1]]
    else:
        parent[site.path[-1]] = value
    return result
