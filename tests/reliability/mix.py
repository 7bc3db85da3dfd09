"""A mix of every kind of workflow the suite drives, cycling: registrations, grants and their terminations, outages."""

from __future__ import annotations

from tests.reliability.grant_workflows import delegation, expired, false_information, refused, revoked
from tests.reliability.harness import Harness
from tests.reliability.incident_workflows import outage
from tests.reliability.workflows import Workflow, integrated, rejected
from tests.reliability.workflows import refused as incomplete

KINDS = ("integrated", "revoked", "outage", "cascade", "incomplete", "expired", "false-information", "rejected",
         "refused", "outage")


async def every_kind(harness: Harness, count: int, prefix: str = "k", start: int = 0) -> list[Workflow]:
    """``count`` workflows cycling through :data:`KINDS` (each outage gets a real HTTP target of its own)."""
    ns, url = harness.namespace, harness.target.url
    found: list[Workflow] = []
    for i in range(start, start + count):
        kind, name = KINDS[i % len(KINDS)], f"{prefix}{i:03d}"
        if kind == "outage":
            found.append(outage(name, ns, await harness.new_target(name), harness.hooks))
        elif kind in ("integrated", "incomplete", "rejected"):
            maker = {"integrated": integrated, "incomplete": incomplete, "rejected": rejected}[kind]
            found.append(maker(name, ns, url))
        elif kind == "revoked":
            found.append(revoked(name, ns))
        elif kind == "refused":
            found.append(refused(name, ns))
        elif kind == "expired":
            found.append(expired(name, ns))
        elif kind == "cascade":
            found.append(delegation(name, ns))
        else:
            found.append(false_information(name, ns, url))
    return found
