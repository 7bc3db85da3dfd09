"""Workflows: what the suite drives through the operator, and what must come out of it.

A workflow is small data plus two checks: a list of :class:`Step` (objects to apply, or an action, and
the condition to wait for before the next step), the final state it must reach (``final``, raising
AssertionError until it holds), and the notifications it must cause (:class:`Expected`: recipient,
template, text the message must contain). Each step is applied again while its condition does not hold
(an apply of the same object is a no-op), so a step survives an operator that is killed while handling it.

The registration workflows (§14–17) are here; AccessGrant lifecycles and terminations are in
:mod:`tests.reliability.grant_workflows`, outages and their incidents in
:mod:`tests.reliability.incident_workflows`. A step may also wait on an async check of the cluster
(``wait``: e.g. "the object's Incident exists"), a workflow may check more than its object at the end
(``also``: token Secrets gone, one Incident Recovered), and its notifications may sit in objects whose
names are known only at run time (``outboxes``: the Incidents of a target).
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol, TypeVar

from tests.conftest import eventually
from tests.integration.registration_helpers import AGREEMENT

T = TypeVar("T")

API = "tksh.kz/v1alpha1"
FUNCTION_NAME = "owners-association"
REVIEWER = "aigerim"
# Personal data the suite feeds in, so the log scan knows exactly what must never appear in clear.
OWNER_BIN = "140540001231"
OWNER_PHONE = "+77011234567"
OWNER_NAME = "ОСИ «Достық 12»"
ADMIN_MAILBOX = "admin@tksh.example.kz"
SENDER = "tksh@tksh.example.kz"


class Cluster(Protocol):
    """What workflows need of an API server (``tests.integration.backends.Backend`` fits)."""

    async def apply(self, obj: dict[str, Any]) -> dict[str, Any]: ...

    async def get(self, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None: ...


Check = Callable[[dict[str, Any]], None]
"""Raises AssertionError until the object is where it should be."""


@dataclasses.dataclass(frozen=True)
class Ref:
    kind: str
    namespace: str | None
    name: str


ClusterCheck = Callable[[Any], Awaitable[Any]]
"""An async check of the cluster (a ``Cluster``): raises AssertionError until it holds."""


@dataclasses.dataclass(frozen=True)
class Step:
    """Apply ``objects`` (and/or run ``act``), then wait until ``until`` holds for ``ref`` and ``wait`` holds."""

    objects: Sequence[dict[str, Any] | Callable[[], dict[str, Any]]] = ()
    """Objects to apply, or functions that build one when the step runs (an instant a few seconds ahead)."""
    act: Callable[[], Awaitable[None]] | None = None
    ref: Ref | None = None
    until: Check | None = None
    what: str = ""
    wait: ClusterCheck | None = None


@dataclasses.dataclass(frozen=True)
class Expected:
    """One notification that must be delivered exactly once (after de-duplication).

    ``channel``: ``email`` (``recipient`` an address) or ``webhook`` (``recipient`` the hook's
    ``namespace/name``). ``optional``: due only if the operator recorded it (e.g. the activation of a
    grant that may expire before it was ever activated); when recorded, it must arrive exactly once.
    """

    recipient: str
    template: str
    contains: tuple[str, ...] = ()
    channel: str = "email"
    optional: bool = False


@dataclasses.dataclass
class Workflow:
    name: str
    steps: list[Step]
    ref: Ref
    final: Check
    expected: list[Expected]
    refs: list[Ref] = dataclasses.field(default_factory=list)
    """Objects whose ``status.outbox`` hold this workflow's notifications (default: ``ref``)."""
    outboxes: Callable[[Any], Awaitable[list[dict[str, Any]]]] | None = None
    """More such objects, found at run time (e.g. the Incidents of a target)."""
    also: ClusterCheck | None = None
    """More of the final state than ``ref`` shows (other objects, Secrets)."""

    def outbox_refs(self) -> list[Ref]:
        return self.refs or [self.ref]

    async def outbox_objects(self, cluster: Cluster) -> list[dict[str, Any]]:
        """The objects whose ``status.outbox`` hold this workflow's notifications."""
        found = [await read(cluster, ref) for ref in self.outbox_refs()]
        if self.outboxes is not None:
            found.extend(await self.outboxes(cluster))
        return found


async def until(check: Callable[[], Awaitable[T]], timeout: float, interval: float = 0.1) -> T:  # noqa: ASYNC109
    """:func:`tests.conftest.eventually` for an async check, typed: a deadline, never a timing assertion."""
    result: T = await eventually(check, timeout=timeout, interval=interval)
    return result


async def read(cluster: Cluster, ref: Ref) -> dict[str, Any]:
    obj = await cluster.get(ref.kind, ref.name, ref.namespace)
    assert obj is not None, f"{ref.kind} {ref.namespace}/{ref.name} does not exist"
    return obj


async def check(cluster: Cluster, ref: Ref, condition: Check) -> dict[str, Any]:
    obj = await read(cluster, ref)
    condition(obj)
    return obj


# --- registration (§14–17) ------------------------------------------------------------------------


def function_directory() -> list[dict[str, Any]]:
    """The one SubjectFunction the applications name."""
    return [{
        "apiVersion": API, "kind": "SubjectFunction", "metadata": {"name": FUNCTION_NAME},
        "spec": {
            "titles": {"kk": "ПИБ", "ru": "ОСИ", "en": "Owners' association"},
            "subjectTypes": ["PropertyOwnersAssociation"],
            "rights": [{"category": 2, "actions": ["read", "write"]},
                       {"category": 5, "actions": ["read", "write", "sign"]}],
        },
    }]


def owner_email(name: str) -> str:
    return f"board.{name}@dostyk12.example.kz"


def application(name: str, namespace: str, url: str, *, webhook: dict[str, Any] | None = None,
                **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": API, "kind": "DigitalObject", "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "owner": {"bin": OWNER_BIN, "name": OWNER_NAME, "subjectType": "PropertyOwnersAssociation",
                      "email": owner_email(name), "phone": OWNER_PHONE},
            "functions": [FUNCTION_NAME],
            "categories": [2, 5],
            "endpoint": {"url": url},
            "probe": {"type": "http", "path": "/healthz", "intervalSeconds": 5, "timeoutSeconds": 10},
        },
    }
    if webhook is not None:
        body["spec"]["owner"]["webhook"] = copy.deepcopy(webhook)
    body["spec"].update(copy.deepcopy(spec))
    return body


def phase_is(*phases: str) -> Check:
    def condition(obj: dict[str, Any]) -> None:
        got = (obj.get("status") or {}).get("phase")
        assert got in phases, f"{obj['metadata']['name']}: phase {got!r}, waiting for {' or '.join(phases)}"
    return condition


def condition_of(obj: dict[str, Any], kind: str) -> dict[str, Any]:
    for cond in (obj.get("status") or {}).get("conditions") or ():
        if cond.get("type") == kind:
            return dict(cond)
    raise AssertionError(f"{obj['metadata']['name']}: no {kind} condition")


def settled(obj: dict[str, Any]) -> None:
    """The status describes the current spec: observedGeneration and every condition's generation."""
    status = obj.get("status") or {}
    generation = obj["metadata"].get("generation", 1)
    assert status.get("observedGeneration") == generation, (status.get("observedGeneration"), generation)
    stale = [c["type"] for c in status.get("conditions") or () if c.get("observedGeneration") != generation]
    assert not stale, f"conditions of an older generation: {stale}"


def integrated(name: str, namespace: str, url: str, webhook: dict[str, Any] | None = None) -> Workflow:
    """Complete -> UnderReview -> approved (spec.review) -> agreement -> Testing (a real target) -> Integrated."""
    ref = Ref("DigitalObject", namespace, name)
    kept = {"webhook": webhook}
    review = {"decision": "Approved", "reviewer": REVIEWER}

    def final(obj: dict[str, Any]) -> None:
        phase_is("Integrated")(obj)
        settled(obj)
        assert condition_of(obj, "Ready")["status"] == "True"
        assert condition_of(obj, "Tested")["status"] == "True"
        assert (obj.get("status") or {}).get("integratedAt")

    owner = owner_email(name)
    return Workflow(
        name=f"integrated/{name}", ref=ref, final=final,
        steps=[
            Step([application(name, namespace, url, **kept)], ref=ref,
                 until=phase_is("UnderReview", "Approved", "Testing", "Integrated"), what="submitted"),
            Step([application(name, namespace, url, review=review, **kept)], ref=ref,
                 until=phase_is("Approved", "Testing", "Integrated"), what="approved"),
            Step([application(name, namespace, url, review=review, agreement=AGREEMENT, **kept)], ref=ref,
                 until=phase_is("Integrated"), what="agreement"),
        ],
        expected=[Expected(owner, "registration-approved"), Expected(owner, "integration-completed")],
    )


def refused(name: str, namespace: str, url: str) -> Workflow:
    """An incomplete application (no functions, no endpoint) is refused listing the missing items (§16)."""
    ref = Ref("DigitalObject", namespace, name)
    body = application(name, namespace, url)
    del body["spec"]["functions"], body["spec"]["endpoint"]

    def final(obj: dict[str, Any]) -> None:
        phase_is("Refused")(obj)
        settled(obj)
        missing = set((obj.get("status") or {}).get("missing") or ())
        assert {"spec.functions", "spec.endpoint.url"} <= missing, missing

    return Workflow(
        name=f"refused/{name}", ref=ref, final=final,
        steps=[Step([body], ref=ref, until=phase_is("Refused"), what="submitted incomplete")],
        expected=[Expected(owner_email(name), "registration-refused", ("spec.endpoint.url",))],
    )


def rejected(name: str, namespace: str, url: str) -> Workflow:
    """Complete -> UnderReview -> rejected with a reason, which the owner receives."""
    ref = Ref("DigitalObject", namespace, name)
    reason = f"эндпоинт {name} вне Казахстана"
    review = {"decision": "Rejected", "reviewer": REVIEWER, "reason": reason}

    def final(obj: dict[str, Any]) -> None:
        phase_is("Rejected")(obj)
        settled(obj)
        assert condition_of(obj, "Reviewed")["reason"] == "Rejected"

    return Workflow(
        name=f"rejected/{name}", ref=ref, final=final,
        steps=[
            Step([application(name, namespace, url)], ref=ref, until=phase_is("UnderReview", "Rejected"),
                 what="submitted"),
            Step([application(name, namespace, url, review=review)], ref=ref, until=phase_is("Rejected"),
                 what="rejected"),
        ],
        expected=[Expected(owner_email(name), "registration-rejected", (reason,))],
    )


REGISTRATION = (integrated, refused, rejected)


def registration_mix(count: int, namespace: str, url: str, prefix: str = "app") -> list[Workflow]:
    """``count`` registration workflows, cycling integrated / refused / rejected."""
    return [REGISTRATION[i % len(REGISTRATION)](f"{prefix}-{i:03d}", namespace, url) for i in range(count)]
