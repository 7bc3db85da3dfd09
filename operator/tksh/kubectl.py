"""``kubectl tksh approve|reject|status``: the Administrator's side of the registration (§16); ``report``:
see :mod:`tksh.report`; ``revoke|refuse|terminate`` (access grants, §20): see :mod:`tksh.kubectl_grants`.

``approve`` and ``reject`` write ``spec.review`` {decision, reviewer, reason, decidedAt} with one merge
patch through the Kubernetes API, as the kubeconfig's user (the admission webhook checks that user is
an administrator); ``status`` prints the queue of applications by review deadline. No personal data
is printed: names, phases and dates only (the owner's details stay in the object).
"""

from __future__ import annotations

import argparse
import datetime
import sys
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

from tksh import GROUP, VERSION

COMMANDS = ("approve", "reject", "status", "report", "revoke", "refuse", "terminate")
PLURAL = "digitalobjects"


def add_parsers(sub: Any) -> None:
    """Add the subcommands to the ``tksh`` parser's subparsers."""
    for name, text in (("approve", "approve an application (writes spec.review)"),
                       ("reject", "reject an application with a reason (writes spec.review)")):
        p = sub.add_parser(name, help=text)
        p.add_argument("name", help="the DigitalObject")
        p.add_argument("--namespace", "-n", default=None, help="its namespace (default: the kubeconfig's)")
        p.add_argument("--reviewer", default=None, help="who decides (default: the kubeconfig's user)")
        p.add_argument("--reason", required=name == "reject", default=None,
                       help="why (required to reject; sent to the applicant)")
        p.add_argument("--kubeconfig", default=None, help="kubeconfig file (default: $KUBECONFIG, ~/.kube/config)")
    st = sub.add_parser("status", help="the queue of applications by review deadline")
    where = st.add_mutually_exclusive_group()
    where.add_argument("--namespace", "-n", default=None, help="one namespace (default: the kubeconfig's)")
    where.add_argument("--all-namespaces", "-A", action="store_true", help="all namespaces")
    st.add_argument("--kubeconfig", default=None, help="kubeconfig file (default: $KUBECONFIG, ~/.kube/config)")
    from tksh import kubectl_grants, report

    report.add_parser(sub)
    kubectl_grants.add_parsers(sub)  # revoke, refuse, terminate (§20)


def review_patch(decision: str, reviewer: str, reason: str | None, now: datetime.datetime) -> dict[str, Any]:
    """The merge patch of ``spec.review`` (a ``None`` reason removes an earlier one)."""
    reason = reason.strip() if reason else None
    if decision == "Rejected" and not reason:
        raise ValueError("--reason: a rejection needs a reason")
    return {"spec": {"review": {"decision": decision, "reviewer": reviewer, "reason": reason,
                                "decidedAt": now.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}}}


_AWAITING_DECISION = ("Submitted", "UnderReview")


def queue_rows(items: Sequence[Mapping[str, Any]]) -> list[tuple[str, str, str, str, str, str]]:
    """(name, namespace, phase, deadline, overdue, missing) per application: first the applications waiting for a
    decision (``Submitted``, ``UnderReview``), the nearest deadline first; then the others (decided, or refused as
    incomplete and waiting for the owner), whose old deadline no longer matters, by namespace and name."""
    rows = []
    for obj in items:
        meta, status = obj.get("metadata") or {}, obj.get("status") or {}
        overdue = any(c.get("type") == "ReviewOverdue" and c.get("status") == "True"
                      for c in status.get("conditions") or ())
        rows.append((str(meta.get("name", "")), str(meta.get("namespace", "")), str(status.get("phase") or "-"),
                     str(status.get("reviewDeadline") or "-"), "yes" if overdue else "no",
                     str(len(status.get("missing") or ()))))
    def key(row: tuple[str, ...]) -> tuple[bool, bool, str, str, str]:
        waiting = row[2] in _AWAITING_DECISION
        return (not waiting, row[3] == "-" or not waiting, row[3] if waiting else "", row[1], row[0])

    return sorted(rows, key=key)


def format_table(rows: Sequence[Sequence[str]]) -> str:
    header = ("NAME", "NAMESPACE", "PHASE", "DEADLINE", "OVERDUE", "MISSING")
    table = [header, *rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    return "\n".join("   ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in table)


def _client(kubeconfig: str | None) -> tuple[Any, str, str]:
    """The API client, the context's namespace and its user."""
    import kubernetes

    _, active = kubernetes.config.list_kube_config_contexts(config_file=kubeconfig)  # type: ignore[no-untyped-call]
    context = (active or {}).get("context") or {}
    api = kubernetes.config.new_client_from_config(config_file=kubeconfig)  # type: ignore[no-untyped-call]
    return kubernetes.client.CustomObjectsApi(api), context.get("namespace") or "default", context.get("user") or ""


def main(args: argparse.Namespace, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    if args.command == "report":
        from tksh import report

        return report.main(args, out, err)
    from kubernetes.client.exceptions import ApiException

    try:
        api, namespace, user = _client(args.kubeconfig)
        namespace = args.namespace or namespace
        if args.command in ("revoke", "refuse", "terminate"):
            from tksh import kubectl_grants

            return kubectl_grants.main(args, api, namespace, user, out, err)
        if args.command == "status":
            if args.all_namespaces:
                listed = api.list_cluster_custom_object(GROUP, VERSION, PLURAL)
            else:
                listed = api.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)
            print(format_table(queue_rows(listed.get("items") or [])), file=out)
            return 0
        decision = "Approved" if args.command == "approve" else "Rejected"
        reviewer = args.reviewer or user
        if not reviewer:
            print(f"tksh {args.command}: --reviewer: the kubeconfig names no user; say who decides", file=err)
            return 2
        patch = review_patch(decision, reviewer, args.reason, datetime.datetime.now(datetime.UTC))
        api.patch_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, args.name, patch)
    except ValueError as exc:
        print(f"tksh {args.command}: {exc}", file=err)
        return 2
    except ApiException as exc:
        print(f"tksh {args.command}: the API server refused: {exc.status} {exc.reason}: {exc.body}", file=err)
        return 1
    print(f"digitalobject {namespace}/{args.name}: {decision.lower()} by {reviewer}", file=out)
    return 0
