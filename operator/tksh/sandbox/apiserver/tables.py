"""``meta.k8s.io/v1`` Table output (what ``kubectl get`` asks for), with printer columns and a JSONPath subset."""

from __future__ import annotations

import datetime
import json
import re
from collections.abc import Iterable, Mapping

from tksh.sandbox.apiserver.errors import JSON, Obj
from tksh.sandbox.apiserver.resources import PrinterColumn, ResourceInfo

NAME_COLUMN: Obj = {
    "name": "Name", "type": "string", "format": "name", "priority": 0,
    "description": "Name must be unique within a namespace. More info: "
                   "https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names",
}
AGE_COLUMN = PrinterColumn("Age", "date", ".metadata.creationTimestamp",
                           "CreationTimestamp is a timestamp representing the server time when this object was "
                           "created.")

_STEP = re.compile(r"""
    \.(?P<field>[^.\[\]]+)
  | \[(?P<index>-?\d+)\]
  | (?P<wildcard>\[\*\]|\.\*)
  | \[['"](?P<quoted>[^'"]+)['"]\]
  | \[\?\(@(?P<fpath>(?:\.[^.\s=!<>()]+)+)\s*(?:(?P<op>==|!=)\s*(?P<lit>"[^"]*"|'[^']*'|[^)\s]+))?\s*\)\]
""", re.VERBOSE)


def table_version(accept: str | None) -> str | None:
    """``v1``/``v1beta1`` if the Accept header asks for a Table (the first acceptable type wins), else None."""
    for item in (accept or "").split(","):
        parts = [part.strip() for part in item.split(";")]
        params = dict(part.split("=", 1) for part in parts[1:] if "=" in part)
        if parts[0] in ("application/json", "*/*") and params.get("as") is None:
            return None
        if params.get("as") == "Table" and params.get("g") == "meta.k8s.io" and params.get("v") in ("v1", "v1beta1"):
            return params["v"]
    return None


def _literal(text: str) -> JSON:
    if text[:1] in ("'", '"'):
        return text[1:-1]
    try:
        return json.loads(text)
    except ValueError:
        return text


def jsonpath(obj: JSON, path: str) -> list[JSON]:
    """Evaluate a simple JSONPath (``.a.b``, ``[0]``, ``[*]``, ``[?(@.type=="Ready")]``); all matches."""
    path = path.strip()
    if path.startswith("{") and path.endswith("}"):
        path = path[1:-1]
    values: list[JSON] = [obj]
    pos = 0
    while pos < len(path):
        match = _STEP.match(path, pos)
        if match is None:
            return []
        pos = match.end()
        next_values: list[JSON] = []
        for value in values:
            if match["field"] is not None or match["quoted"] is not None:
                key = match["field"] if match["field"] is not None else match["quoted"]
                if isinstance(value, Mapping) and key in value:
                    next_values.append(value[key])
            elif match["index"] is not None:
                index = int(match["index"])
                if isinstance(value, list) and -len(value) <= index < len(value):
                    next_values.append(value[index])
            elif match["wildcard"] is not None:
                next_values.extend(value.values() if isinstance(value, Mapping) else
                                   value if isinstance(value, list) else [])
            elif isinstance(value, list):
                for item in value:
                    found = jsonpath(item, match["fpath"])
                    if match["op"] is None:
                        ok = bool(found)
                    else:
                        equal = bool(found) and found[0] == _literal(match["lit"])
                        ok = equal if match["op"] == "==" else not equal
                    if ok:
                        next_values.append(item)
        values = next_values
    return values


def human_duration(seconds: float) -> str:
    """Go's ``duration.HumanDuration``: 45s, 3m20s, 17m, 5h3m, 20h, 3d4h, 40d, 2y30d."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    minutes, hours = s // 60, s // 3600
    if minutes < 10:
        return f"{minutes}m{s % 60}s" if s % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return f"{hours // 24}d{hours % 24}h" if hours % 24 else f"{hours // 24}d"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = (hours // 24) % 365
        return f"{hours // 24 // 365}y{days}d" if days else f"{hours // 24 // 365}y"
    return f"{hours // 24 // 365}y"


def _cell(column: PrinterColumn, obj: Obj, now: datetime.datetime) -> JSON:
    found = jsonpath(obj, column.json_path)
    if not found or found[0] is None:
        return None
    value = found[0]
    if column.type == "string":
        return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
    if column.type == "date" and isinstance(value, str):
        try:
            stamp = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return human_duration((now - stamp).total_seconds())
    if column.type == "integer" and isinstance(value, int | float) and not isinstance(value, bool):
        return int(value)
    if column.type == "number" and isinstance(value, int | float) and not isinstance(value, bool):
        return value
    if column.type == "boolean" and isinstance(value, bool):
        return value
    return None


def columns_for(info: ResourceInfo) -> list[PrinterColumn]:
    if info.crd:
        return list(info.printer_columns) or [AGE_COLUMN]
    declared = list(info.printer_columns)
    return declared if any(c.type == "date" for c in declared) else [*declared, AGE_COLUMN]


def table(info: ResourceInfo, objs: Iterable[Obj], resource_version: str, *, version: str = "v1",
          include_object: str | None = None, with_columns: bool = True) -> Obj:
    columns = columns_for(info)
    now = datetime.datetime.now(datetime.UTC)
    rows: list[Obj] = []
    for obj in objs:
        row: Obj = {"cells": [obj.get("metadata", {}).get("name"), *(_cell(c, obj, now) for c in columns)]}
        if include_object == "Object":
            row["object"] = obj
        elif include_object != "None":
            row["object"] = {"kind": "PartialObjectMetadata", "apiVersion": f"meta.k8s.io/{version}",
                             "metadata": obj.get("metadata", {})}
        rows.append(row)
    result: Obj = {"kind": "Table", "apiVersion": f"meta.k8s.io/{version}",
                   "metadata": {"resourceVersion": resource_version}}
    if with_columns:
        result["columnDefinitions"] = [NAME_COLUMN, *(_column_doc(c) for c in columns)]
    result["rows"] = rows
    return result


def _column_doc(column: PrinterColumn) -> Obj:
    return {"name": column.name, "type": column.type, "format": column.format,
            "description": column.description, "priority": column.priority}


