"""Where each reliability test leaves its figures: one JSON file per test variant.

``$TKSH_RELIABILITY_OUT`` (default ``test-artifacts/reliability/`` of the checkout, ignored by git).
``python -m tests.reliability.report`` turns them into the table of docs/reliability.md.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def out_dir() -> Path:
    return Path(os.environ.get("TKSH_RELIABILITY_OUT") or ROOT / "test-artifacts" / "reliability")


def record(name: str, figures: dict[str, Any]) -> Path:
    """Write ``figures`` (JSON-able) as ``<out>/<name>.json`` with when and where they were measured."""
    folder = out_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.json"
    document = {
        "name": name,
        "measured_at": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs, "
                   f"Python {platform.python_version()}",
        "figures": figures,
    }
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False, sort_keys=True) + "\n", encoding="utf-8")
    return path
