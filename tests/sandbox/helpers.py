"""Helpers of the embedded API server tests: the test CRDs and small HTTP wrappers."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

from tksh.sandbox.apiserver import EmbeddedAPIServer

WIDGETS = "/apis/example.test/v1/namespaces/default/widgets"
GADGETS = "/apis/example.test/v1/gadgets"

TEST_CRDS = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.test
spec:
  group: example.test
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, shortNames: [wdg], categories: [examples]}
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {status: {}}
    selectableFields: [{jsonPath: .spec.size}]
    additionalPrinterColumns:
    - {name: Size, type: string, jsonPath: .spec.size}
    - {name: Replicas, type: integer, jsonPath: .spec.replicas}
    - {name: Phase, type: string, jsonPath: .status.phase}
    - {name: Ready, type: string, jsonPath: '.status.conditions[?(@.type=="Ready")].status'}
    - {name: Age, type: date, jsonPath: .metadata.creationTimestamp}
    schema:
      openAPIV3Schema:
        type: object
        required: [spec]
        properties:
          spec:
            type: object
            required: [owner, size]
            properties:
              size: {type: string, enum: [small, large]}
              replicas: {type: integer, minimum: 1, maximum: 10, default: 1}
              ratio: {type: number, minimum: 0, exclusiveMinimum: true}
              title: {type: string, minLength: 1, maxLength: 20}
              owner:
                type: object
                required: [bin]
                properties:
                  bin: {type: string, pattern: '^[0-9]{12}$'}
                  name: {type: string}
              tags: {type: array, minItems: 1, maxItems: 3, items: {type: string}}
              ports:
                type: array
                items:
                  type: object
                  required: [port]
                  properties:
                    port: {type: integer, minimum: 1, maximum: 65535}
                    name: {type: string}
              labels: {type: object, additionalProperties: {type: string}}
              startsAt: {type: string, format: date-time}
              birthday: {type: string, format: date}
              extra: {type: object, x-kubernetes-preserve-unknown-fields: true}
              target: {x-kubernetes-int-or-string: true}
              note: {type: string, nullable: true}
              aliases: {type: array, uniqueItems: true, items: {type: string}}
          status:
            type: object
            properties:
              phase: {type: string, enum: [Pending, Ready, Failed]}
              observedGeneration: {type: integer}
              conditions:
                type: array
                items:
                  type: object
                  required: [type, status]
                  properties:
                    type: {type: string}
                    status: {type: string, enum: ["True", "False", "Unknown"]}
                    reason: {type: string}
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: gadgets.example.test
spec:
  group: example.test
  scope: Cluster
  names: {plural: gadgets, singular: gadget, kind: Gadget}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec: {type: object, x-kubernetes-preserve-unknown-fields: true}
          status: {type: object, x-kubernetes-preserve-unknown-fields: true}
"""


def widget(name: str = "w1", **spec: Any) -> dict[str, Any]:
    """A valid Widget; keyword arguments override/extend its spec."""
    return {
        "apiVersion": "example.test/v1",
        "kind": "Widget",
        "metadata": {"name": name},
        "spec": {"size": "small", "owner": {"bin": "123456789012"}, **spec},
    }


@dataclass
class Reply:
    status: int
    body: Any
    headers: Mapping[str, str]


async def call(api: EmbeddedAPIServer, method: str, path: str, body: Any = None, *,
               content_type: str = "application/json", params: Mapping[str, str] | None = None,
               headers: Mapping[str, str] | None = None) -> Reply:
    """One HTTP request to the server; the JSON body decoded (or the text if not JSON)."""
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    all_headers = {"Content-Type": content_type, **(headers or {})}
    async with api.request(method, path, data=data, params=params, headers=all_headers) as response:
        text = await response.text()
        try:
            decoded: Any = json.loads(text)
        except ValueError:
            decoded = text
        return Reply(response.status, decoded, response.headers.copy())


async def watch_lines(api: EmbeddedAPIServer, path: str, params: Mapping[str, str]) -> list[dict[str, Any]]:
    """All events of a watch stream that ends by itself (e.g. by timeoutSeconds)."""
    async with api.request("GET", path, params={"watch": "true", **params}) as response:
        assert response.status == 200
        return [json.loads(line) for line in (await response.text()).splitlines() if line.strip()]


class LiveWatch:
    """An open watch stream, read event by event (a generous deadline only bounds a broken test)."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self.response = response

    deadline = 20.0  # seconds

    async def next(self) -> dict[str, Any]:
        while True:
            line = await asyncio.wait_for(self.response.content.readline(), self.deadline)
            if not line:
                raise EOFError("the watch stream has ended")
            if line.strip():
                event: dict[str, Any] = json.loads(line)
                return event

    async def ended(self) -> bool:
        """Whether the stream ends (cleanly or not) with no more events."""
        try:
            line = await asyncio.wait_for(self.response.content.readline(), self.deadline)
        except aiohttp.ClientPayloadError:
            return True
        return not line


@contextlib.asynccontextmanager
async def live_watch(api: EmbeddedAPIServer, path: str, **params: str) -> AsyncIterator[LiveWatch]:
    async with api.request("GET", path, params={"watch": "true", **params}) as response:
        assert response.status == 200
        yield LiveWatch(response)
