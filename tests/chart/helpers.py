"""Finding the chart tests' tools, rendering the chart with helm, and picking objects out of the result.

Tools are found by an environment override (``TKSH_HELM``, ``TKSH_PROMTOOL``), then in the cache that
``hack/tools/install.sh`` fills (``${TKSH_CACHE_DIR:-~/.cache/tksh}/tools/bin``), then on ``PATH``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
CHART = REPO_ROOT / "charts" / "tksh"
CRDS = CHART / "crds"
HERE = Path(__file__).resolve().parent
INSTALL_SCRIPT = REPO_ROOT / "hack" / "tools" / "install.sh"
VALUES_ALL = HERE / "values-all.yaml"
VALUES_NAMESPACED = HERE / "values-namespaced.yaml"
RELEASE = "tksh"
NAMESPACE = "tksh-system"
TOOL_ENV = {"helm": "TKSH_HELM", "promtool": "TKSH_PROMTOOL"}

Obj = dict[str, Any]


def tools_cache() -> Path:
    root = os.environ.get("TKSH_CACHE_DIR") or str(Path.home() / ".cache" / "tksh")
    return Path(root) / "tools" / "bin"


def find_tool(name: str) -> Path | None:
    """The tool's path (override, cache, PATH), or None when it is nowhere."""
    override = os.environ.get(TOOL_ENV.get(name, ""), "")
    if override:
        path = Path(override)
        return path if os.access(path, os.X_OK) else None
    cached = tools_cache() / name
    if os.access(cached, os.X_OK):
        return cached
    found = shutil.which(name)
    return Path(found) if found else None


def ci() -> bool:
    return os.environ.get("CI", "").strip().lower() == "true"


class HelmError(AssertionError):
    """helm exited non-zero; the message has its stderr."""


def run_helm(helm: Path, args: Sequence[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([str(helm), *args], capture_output=True, text=True, timeout=120, check=False)
    if check and proc.returncode != 0:
        raise HelmError(f"helm {' '.join(args)} exited {proc.returncode}:\n{proc.stderr}{proc.stdout}")
    return proc


def template_args(
    values_files: Iterable[Path] = (),
    set_values: Mapping[str, str] | None = None,
    *,
    release: str = RELEASE,
    namespace: str = NAMESPACE,
    extra: Sequence[str] = (),
) -> list[str]:
    args = ["template", release, str(CHART), "--namespace", namespace, *extra]
    for path in values_files:
        args += ["--values", str(path)]
    for key, value in (set_values or {}).items():
        args += ["--set", f"{key}={value}"]
    return args


def render(
    helm: Path,
    values_files: Iterable[Path] = (),
    set_values: Mapping[str, str] | None = None,
    **kwargs: Any,
) -> list[Obj]:
    """``helm template`` of the chart: the rendered objects (CRDs of crds/ not included)."""
    out = run_helm(helm, template_args(values_files, set_values, **kwargs)).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def crd_documents() -> list[Obj]:
    """Every CustomResourceDefinition in charts/tksh/crds (ours, generated, and kopf's peering)."""
    docs: list[Obj] = []
    for path in sorted(CRDS.glob("*.yaml")):
        docs += [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    return docs


def of_kind(objs: Iterable[Obj], kind: str) -> list[Obj]:
    return [o for o in objs if o.get("kind") == kind]


def one(objs: Iterable[Obj], kind: str, name: str | None = None) -> Obj:
    found = [o for o in of_kind(objs, kind) if name is None or o["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {[o['metadata']['name'] for o in found]}"
    return found[0]


def workloads(objs: Iterable[Obj]) -> Iterator[Obj]:
    for o in objs:
        if o.get("kind") in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
            yield o


def containers(workload: Obj) -> list[Obj]:
    spec = workload["spec"]["template"]["spec"]
    return [*spec.get("initContainers", []), *spec["containers"]]


def env_of(container: Obj) -> dict[str, Obj]:
    return {e["name"]: e for e in container.get("env", [])}


def bound_roles(objs: Sequence[Obj], sa_name: str, sa_namespace: str) -> list[Obj]:
    """The ClusterRoles and Roles that the rendered bindings grant to one ServiceAccount."""
    roles: list[Obj] = []
    for binding in [*of_kind(objs, "ClusterRoleBinding"), *of_kind(objs, "RoleBinding")]:
        subjects = binding.get("subjects") or []
        if not any(
            s["kind"] == "ServiceAccount" and s["name"] == sa_name and s.get("namespace") == sa_namespace
            for s in subjects
        ):
            continue
        ref = binding["roleRef"]
        namespace = binding["metadata"].get("namespace") if ref["kind"] == "Role" else None
        roles += [
            r
            for r in of_kind(objs, ref["kind"])
            if r["metadata"]["name"] == ref["name"] and r["metadata"].get("namespace") == namespace
        ]
    return roles
