"""The ``tksh`` command (also installed as ``kubectl-tksh``, so ``kubectl tksh ...`` works).

Subcommands:
  tksh crds [--write | --check]   print, write or check the generated CRDs and API reference
  tksh operator [...]             run the kopf operator
  tksh sandbox [...]              the whole control plane on an embedded API server, no cluster needed
  tksh approve NAME [-n NS]       approve an application (kubectl tksh approve ...)
  tksh reject NAME --reason TEXT  reject an application, saying why
  tksh status [-n NS | -A]        the queue of applications by review deadline
  tksh revoke GRANT --reason TEXT end an access grant (§20.2); also refuse, terminate --ground G
  tksh report [--from --to]       uptime, incidents, time to restore and breaches per target
  tksh authz [...]                the decision point (and the public status page /status)
  tksh version
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from tksh import __version__


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (an integer 0..65535)") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is outside the port range 0..65535")
    return value


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{value} must be greater than 0 seconds")
    return value


def repo_root() -> Path:
    """The source checkout holding charts/ and examples/ (the package lives in <root>/operator/tksh)."""
    return Path(__file__).resolve().parents[2]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tksh", description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    parser.add_argument(
        "--log-format", default=None, choices=["json", "console"], help="json (default) or console (sandbox default)"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    crds = sub.add_parser("crds", help="print (default), write or check the generated CRDs and API reference")
    mode = crds.add_mutually_exclusive_group()
    mode.add_argument("--write", action="store_true", help="write charts/tksh/crds and docs/api-reference.md")
    mode.add_argument("--check", action="store_true", help="exit 1 when the committed files differ")
    crds.add_argument("--root", type=Path, default=None, help="repository root (default: this checkout)")

    op = sub.add_parser("operator", help="run the kopf operator")
    op.add_argument("--namespace", "-n", action="append", default=[], help="watch only this namespace (repeatable)")
    op.add_argument("--server", default="", help="API server URL (default: in-cluster or kubeconfig credentials)")
    op.add_argument("--kubeconfig", default="", help="log in with this kubeconfig's current context")
    op.add_argument("--ops-port", type=_port, default=None, help="port of /healthz, /readyz, /metrics (8080)")
    op.add_argument("--standalone", action="store_true", default=None, help="no peering (a single replica)")
    op.add_argument("--peering-name", default=None, help="kopf peering object name (tksh)")
    op.add_argument("--priority", type=int, default=None, help="peering priority of this replica")

    sb = sub.add_parser("sandbox", help="run everything on an embedded API server (no cluster needed)")
    sb.add_argument("--duration", type=_positive_seconds, default=None, help="stop after N seconds (default: Ctrl-C)")
    sb.add_argument("--dir", type=Path, default=Path(".sandbox"), help="where the kubeconfig and mail go")
    sb.add_argument("--api-port", type=_port, default=8001, help="embedded API server port (8001)")
    sb.add_argument("--smtp-port", type=_port, default=2525, help="local mail sink port (2525)")
    sb.add_argument("--ops-port", type=_port, default=8080, help="operator /metrics, /healthz port (8080)")
    sb.add_argument("--targets-port", type=_port, default=18080, help="first of two sample targets' ports (18080)")
    sb.add_argument("--examples", type=Path, default=None, help="manifests to apply (default: examples/)")

    az = sub.add_parser("authz", help="run the decision point (POST /v1/decisions, JWKS, /metrics)")
    az.add_argument("--host", default="127.0.0.1", help="listen address (0.0.0.0 in a pod)")
    az.add_argument("--port", type=_port, default=8080, help="listen port (8080)")
    az.add_argument("--server", default=None, help="API server URL (default: in-cluster or kubeconfig credentials)")
    az.add_argument("--kubeconfig", default=None, help="log in with this kubeconfig's current context")
    az.add_argument("--keys-dir", type=Path, default=None, help="the signing keys' Secret ($TKSH_AUTHZ_KEYS_DIR)")
    az.add_argument("--issuer", default="tksh-operator", help="the tokens' iss (tksh-operator)")
    az.add_argument("--audience", default="tksh-authz", help="the tokens' aud (tksh-authz)")
    az.add_argument("--open-part", type=Path, default=None, help="open-part.csv (default: policies/open-part.csv)")

    from tksh import kubectl

    kubectl.add_parsers(sub)
    sub.add_parser("version", help="print the version")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from tksh.logs import configure_logging

    log_format = args.log_format or ("console" if args.command == "sandbox" else "json")
    configure_logging(level=args.log_level, json=log_format == "json")
    if args.command == "version":
        print(__version__)
        return 0
    if args.command == "crds":
        return _crds(args)
    if args.command == "operator":
        return _operator(args)
    if args.command == "sandbox":
        return _sandbox(args)
    if args.command == "authz":
        return _authz(args, log_format == "json")
    from tksh import kubectl

    if args.command in kubectl.COMMANDS:
        return kubectl.main(args)
    raise AssertionError(args.command)  # argparse refuses unknown commands


def _authz(args: argparse.Namespace, log_json: bool) -> int:
    from tksh.access.server import AuthzConfig, run_authz

    config = AuthzConfig(
        host=args.host, port=args.port, server=args.server, kubeconfig=args.kubeconfig, keys_dir=args.keys_dir,
        issuer=args.issuer, audience=args.audience, open_part_path=args.open_part,
        log_level=args.log_level, log_json=log_json,
    )
    try:
        config.key_set()  # refuse to start without keys, naming the option, before any listening
    except (ValueError, OSError) as exc:
        print(f"tksh authz: {exc}", file=sys.stderr)
        return 2
    return run_authz(config)


def _crds(args: argparse.Namespace) -> int:
    from tksh.resources import generate

    root = args.root or repo_root()
    if args.write:
        for path in generate.write_generated(root):
            print(f"wrote {path}")
        return 0
    if args.check:
        drift = generate.check_drift(root)
        for line in drift:
            print(line, file=sys.stderr)
        if drift:
            print("generated files are out of date: run `make crds`", file=sys.stderr)
        return 1 if drift else 0
    documents = generate.render_crds()
    sys.stdout.write("---\n".join(documents[name] for name in sorted(documents)))
    return 0


def _operator(args: argparse.Namespace) -> int:
    from tksh.config import ConfigError, OperatorConfig
    from tksh.run import run_operator_blocking

    try:
        config = OperatorConfig.from_env(
            namespaces=tuple(args.namespace) or None,
            server=args.server or None,
            kubeconfig=args.kubeconfig or None,
            ops_port=args.ops_port,
            standalone=args.standalone,
            peering_name=args.peering_name,
            priority=args.priority,
        )
    except ConfigError as exc:
        print(f"tksh operator: {exc}", file=sys.stderr)
        return 2
    return run_operator_blocking(config)  # 1 when kopf's core failed: Kubernetes restarts the pod


def _sandbox(args: argparse.Namespace) -> int:
    from tksh.sandbox.runner import SandboxOptions, run_sandbox_blocking

    options = SandboxOptions(
        directory=args.dir,
        api_port=args.api_port,
        smtp_port=args.smtp_port,
        ops_port=args.ops_port,
        targets_port=args.targets_port,
        examples=args.examples or repo_root() / "examples",
        duration=args.duration,
    )
    return run_sandbox_blocking(options)


if __name__ == "__main__":
    raise SystemExit(main())
