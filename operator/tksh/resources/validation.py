"""What the API server does to one of our objects, done in Python: prune, default, validate.

For tests and dry runs: example objects must be admitted and bad ones refused naming the field.
There is one implementation of those semantics in the project, the embedded API server's
(``tksh.sandbox.apiserver.schema``, written against a real kube-apiserver's behaviour and
messages); this module applies it to the schemas generated from our models.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from tksh.resources.base import CRDInfo
from tksh.resources.schema import resource_schema
from tksh.sandbox.apiserver.schema import process


@functools.cache
def _schema_of(info: CRDInfo) -> dict[str, Any]:
    return resource_schema(info)


def admit(info: CRDInfo, body: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Treat ``body`` as the API server would on create: prune unknown fields, default, validate.

    Returns the object as it would be stored and the violations as ``field: message`` lines
    (empty when accepted).
    """
    outcome = process(dict(body), _schema_of(info))
    return outcome.obj, [cause.message for cause in outcome.causes]


def unknown_fields(schema: Mapping[str, Any], body: Mapping[str, Any]) -> list[str]:
    """The field paths the API server would prune from ``body`` (not declared in ``schema``)."""
    return process(dict(body), schema).pruned
