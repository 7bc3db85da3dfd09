"""URL paths of the Kubernetes API, parsed into group/version/resource/namespace/name/subresource."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import kmock


@dataclass(frozen=True)
class Route:
    group: str | None = None  # "" for the core API (/api/v1); None for non-API paths (/version, /openapi/v2)
    version: str | None = None
    plural: str | None = None  # None for discovery paths
    namespace: str | None = None
    name: str | None = None
    subresource: str | None = None

    def action(self, method: str, params: Mapping[str, str]) -> kmock.action | None:
        """KMock's idea of the request, so that users' reactions can filter by it."""
        if self.plural is None:
            return None
        method = method.upper()
        if method == "GET" and params.get("watch") in ("true", "1"):
            return kmock.action.WATCH
        if self.name is None:
            return {"GET": kmock.action.LIST, "POST": kmock.action.CREATE}.get(method)
        return {"GET": kmock.action.FETCH, "PATCH": kmock.action.UPDATE, "PUT": kmock.action.UPDATE,
                "DELETE": kmock.action.DELETE}.get(method)


def parse_route(path: str) -> Route:
    """``/apis/g/v/namespaces/ns/plural/name/status`` and friends; unparseable paths give ``Route()``."""
    parts = [part for part in path.split("/") if part]
    if parts[:1] == ["api"]:
        group, rest = "", parts[1:]
    elif parts[:1] == ["apis"] and len(parts) >= 2:
        group, rest = parts[1], parts[2:]
    elif parts == ["apis"]:
        return Route()
    else:
        return Route()
    if not rest:
        return Route(group=group if group else None)
    version, rest = rest[0], rest[1:]
    namespace: str | None = None
    is_namespace_subresource = group == "" and len(rest) == 3 and rest[2] in ("status", "finalize")
    if len(rest) >= 3 and rest[0] == "namespaces" and not is_namespace_subresource:
        namespace, rest = rest[1], rest[2:]
    if not rest:
        return Route(group=group, version=version)
    if len(rest) > 3:
        return Route(group=group, version=version, plural="", namespace=namespace)  # served as 404
    plural, name, subresource = [*rest, None, None][:3]
    return Route(group=group, version=version, plural=plural, namespace=namespace, name=name, subresource=subresource)
