"""``python -m tksh.resources [--write | --check] [--root DIR]``: the same as ``tksh crds``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from tksh.resources.generate import check_drift, render_crds, write_generated


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tksh.resources", description=__doc__)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--write", action="store_true", help="write charts/tksh/crds and docs/api-reference.md")
    mode.add_argument("--check", action="store_true", help="exit 1 when the committed files differ")
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parents[3], help="repository root")
    args = parser.parse_args(argv)
    if args.write:
        for path in write_generated(args.root):
            print(f"wrote {path}")
        return 0
    if args.check:
        drift = check_drift(args.root)
        for line in drift:
            print(line, file=sys.stderr)
        if drift:
            print("generated files are out of date: run `make crds`", file=sys.stderr)
        return 1 if drift else 0
    documents = render_crds()
    sys.stdout.write("---\n".join(documents[name] for name in sorted(documents)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
