"""Discovery documents (``/api``, ``/apis``, ``/apis/<g>[/<v>]``, ``/version``) built from the registry."""

from __future__ import annotations

from tksh.sandbox.apiserver.errors import Obj
from tksh.sandbox.apiserver.resources import Registry, ResourceInfo

KUBERNETES_VERSION: Obj = {
    "major": "1",
    "minor": "31",
    "gitVersion": "v1.31.0-tksh-embedded",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2024-08-13T00:00:00Z",
    "goVersion": "go1.22.5",
    "compiler": "gc",
    "platform": "linux/amd64",
}


def api_versions(server_address: str) -> Obj:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    }


def _group_doc(group: str, versions: list[str]) -> Obj:
    entries = [{"groupVersion": f"{group}/{version}", "version": version} for version in versions]
    return {"name": group, "versions": entries, "preferredVersion": entries[0]}


def api_group_list(registry: Registry) -> Obj:
    groups = registry.groups()
    return {
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": [_group_doc(group, versions) for group, versions in sorted(groups.items()) if group],
    }


def api_group(registry: Registry, group: str) -> Obj | None:
    versions = registry.groups().get(group)
    if not group or not versions:
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_group_doc(group, versions)}


def _resource_doc(info: ResourceInfo) -> Obj:
    doc: Obj = {
        "name": info.plural,
        "singularName": info.singular,
        "namespaced": info.namespaced,
        "kind": info.kind,
        "verbs": list(info.verbs),
    }
    if info.short_names:
        doc["shortNames"] = list(info.short_names)
    if info.categories:
        doc["categories"] = list(info.categories)
    return doc


def api_resource_list(registry: Registry, group: str, version: str) -> Obj | None:
    infos = sorted((info for info in registry if info.group == group and info.version == version),
                   key=lambda info: info.plural)
    if not infos:
        return None
    resources: list[Obj] = []
    for info in infos:
        resources.append(_resource_doc(info))
        if info.status:
            resources.append({"name": f"{info.plural}/status", "singularName": "", "namespaced": info.namespaced,
                              "kind": info.kind, "verbs": ["get", "patch", "update"]})
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{group}/{version}" if group else version,
        "resources": resources,
    }


def root_paths(registry: Registry) -> Obj:
    paths = {"/api", "/api/v1", "/apis", "/version"}
    for group, versions in registry.groups().items():
        if group:
            paths.add(f"/apis/{group}")
            paths.update(f"/apis/{group}/{version}" for version in versions)
    return {"paths": sorted(paths)}
