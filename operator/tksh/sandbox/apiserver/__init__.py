"""A faithful embedded Kubernetes API server for tests and ``tksh sandbox`` (see docs/embedded-apiserver.md).

Loopback only and without authentication: never expose it beyond 127.0.0.1.
"""

from __future__ import annotations

import os
from pathlib import Path

from tksh.sandbox.apiserver.errors import APIError
from tksh.sandbox.apiserver.faults import Fault, Faults
from tksh.sandbox.apiserver.server import EmbeddedAPIServer, load_crds
from tksh.sandbox.apiserver.store import Store

__all__ = ["APIError", "EmbeddedAPIServer", "Fault", "Faults", "Store", "load_crds", "project_crd_paths"]


def project_crd_paths() -> list[Path]:
    """The project's CRDs: ``charts/tksh/crds/*.yaml`` of the repository, or of ``$TKSH_CRDS_DIR``.

    The repository root is found relative to this package (``operator/tksh/sandbox/apiserver``);
    when the package is installed elsewhere, set ``TKSH_CRDS_DIR``. May be empty.
    """
    override = os.environ.get("TKSH_CRDS_DIR")
    folder = Path(override) if override else Path(__file__).resolve().parents[4] / "charts" / "tksh" / "crds"
    if not folder.is_dir():
        return []
    return sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")])
