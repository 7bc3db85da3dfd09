"""``kubectl tksh revoke|refuse|terminate GRANT``: ending an access grant on a §20 ground.

Each writes ``spec.termination`` {reason, by, at, note} of the ``AccessGrant`` with one merge patch through the
Kubernetes API, as the kubeconfig's user; the operator then records the termination in the status, posts an
Event and e-mails the organisation (see ``tksh.access.lifecycle``).

- ``revoke GRANT --reason TEXT``: §20.2, the revocation placed by an administrator (the reason is the note);
- ``refuse GRANT [--note TEXT]``: §20.3, the grantee refuses the access;
- ``terminate GRANT --ground G [--note TEXT] [--at TIME]``: any ground but EXPIRED (which follows from
  ``spec.agreement.validUntil``, never requested); OTHER_BY_LAW (§20.7) needs ``--note``.

``by`` is ``--by``, else the kubeconfig's user, else left out. The grant is read first: a grant that is
already terminated, or already has a termination request, is refused with a message (a request is never
changed and a terminated grant never resumed; the admission webhook enforces the same).
"""

from __future__ import annotations

import argparse
import datetime
from collections.abc import Mapping
from typing import Any, TextIO

from tksh import GROUP, VERSION
from tksh.resources.accessgrant import TerminationReason

COMMANDS = ("revoke", "refuse", "terminate")
PLURAL = "accessgrants"
GROUNDS = tuple(str(r) for r in TerminationReason if r is not TerminationReason.EXPIRED)
_KUBECONFIG = "kubeconfig file (default: $KUBECONFIG, ~/.kube/config)"


def add_parsers(sub: Any) -> None:
    """Add ``revoke``, ``refuse`` and ``terminate`` to the ``tksh`` parser's subparsers."""
    texts = {"revoke": "revoke an access grant (§20.2; writes spec.termination)",
             "refuse": "the grantee refuses an access grant (§20.3; writes spec.termination)",
             "terminate": "end an access grant on a §20 ground (writes spec.termination)"}
    for name, text in texts.items():
        p = sub.add_parser(name, help=text)
        p.add_argument("grant", help="the AccessGrant")
        p.add_argument("--namespace", "-n", default=None, help="its namespace (default: the kubeconfig's)")
        p.add_argument("--by", default=None, help="who ends it (default: the kubeconfig's user)")
        p.add_argument("--kubeconfig", default=None, help=_KUBECONFIG)
        if name == "revoke":
            p.add_argument("--reason", required=True, help="why (recorded as the note; mailed to the organisation)")
        else:
            p.add_argument("--note", default=None, help="an explanation (required for OTHER_BY_LAW: the legal act)")
        if name == "terminate":
            p.add_argument("--ground", required=True, metavar="GROUND", help=f"one of {', '.join(GROUNDS)}")
            p.add_argument("--at", default=None, help="when it takes effect, RFC 3339 with a zone (default: now)")


def _instant(text: str) -> datetime.datetime:
    try:
        moment = datetime.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"--at: {text!r} is not an RFC 3339 instant, e.g. 2026-09-01T12:00:00Z") from None
    if moment.tzinfo is None:
        raise ValueError(f"--at: {text!r} has no time zone; add Z or an offset such as +05:00")
    return moment


def termination_patch(ground: str, by: str | None, note: str | None, at: datetime.datetime) -> dict[str, Any]:
    """The merge patch of ``spec.termination``; ``ValueError`` names the option that is wrong."""
    if ground not in GROUNDS:
        if ground == TerminationReason.EXPIRED:
            raise ValueError("--ground: EXPIRED follows from spec.agreement.validUntil and is never requested")
        raise ValueError(f"--ground: {ground!r} is not a §20 ground; use one of {', '.join(GROUNDS)}")
    note = note.strip() if note else None
    if ground == TerminationReason.OTHER_BY_LAW and not note:
        raise ValueError("--note: OTHER_BY_LAW (§20.7) needs a note naming the legal act")
    for option, value in (("--note", note), ("--by", by)):
        if value is not None and len(value) > 1024:
            raise ValueError(f"{option}: at most 1024 characters (got {len(value)})")
    request: dict[str, Any] = {"reason": ground, "at": at.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}
    if by:
        request["by"] = by
    if note:
        request["note"] = note
    return {"spec": {"termination": request}}


def _refusal(obj: Mapping[str, Any]) -> str | None:
    """Why the grant cannot get a termination request now (``None``: it can)."""
    record = (obj.get("status") or {}).get("terminated")
    if record:
        return (f"already terminated on {record.get('reason')} at {record.get('at')}; a terminated grant is never "
                "resumed nor ended again (create a new AccessGrant if access is needed)")
    request = (obj.get("spec") or {}).get("termination")
    if request:
        return (f"already has a termination request ({request.get('reason')} at {request.get('at') or 'once'}); "
                "it cannot be changed")
    return None


def patch_for(args: argparse.Namespace, user: str, now: datetime.datetime) -> dict[str, Any]:
    """The patch the command line asks for (validated)."""
    if args.command == "revoke":
        if not args.reason or not args.reason.strip():
            raise ValueError("--reason: a revocation needs a reason (it is mailed to the organisation)")
        ground, note, at = str(TerminationReason.REVOKED), args.reason, now
    elif args.command == "refuse":
        ground, note, at = str(TerminationReason.REFUSED), args.note, now
    else:
        ground, note = args.ground, args.note
        at = _instant(args.at) if args.at else now
    return termination_patch(ground, args.by or user or None, note, at)


def main(args: argparse.Namespace, api: Any, namespace: str, user: str, out: TextIO, err: TextIO) -> int:
    """Run one command with a ``CustomObjectsApi``; the exit code (2: bad arguments or state, 1: API error)."""
    from kubernetes.client.exceptions import ApiException

    where = f"accessgrant {namespace}/{args.grant}"
    try:
        patch = patch_for(args, user, datetime.datetime.now(datetime.UTC))
        obj = api.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, args.grant)
        if (refusal := _refusal(obj)) is not None:
            print(f"tksh {args.command}: {where}: {refusal}", file=err)
            return 2
        api.patch_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, args.grant, patch)
    except ValueError as exc:
        print(f"tksh {args.command}: {exc}", file=err)
        return 2
    except ApiException as exc:
        if exc.status == 404:
            print(f"tksh {args.command}: {where} not found", file=err)
            return 1
        print(f"tksh {args.command}: the API server refused: {exc.status} {exc.reason}: {exc.body}", file=err)
        return 1
    request = patch["spec"]["termination"]
    reason = TerminationReason(request["reason"])
    by = f" by {request['by']}" if request.get("by") else ""
    print(f"{where}: termination requested: {reason} ({reason.paragraph}) at {request['at']}{by}", file=out)
    return 0
