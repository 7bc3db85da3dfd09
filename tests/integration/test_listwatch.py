"""The decision point's list+watch loops (``IndexSync``, the status page's ``StatusSync``) when watches are refused.

A role that may ``list`` but not ``watch``: every list succeeds and every watch right after it is refused (403). The
loop must back off — the delay doubles after each refused watch, up to the cap — instead of relisting every
``retry_delay`` (the old loops reset the delay after each successful list: ~50 lists in 10 s). Once a watch works
again and delivers an event, the delay is back to ``retry_delay``.

Embedded: a fault refuses the kind's watch requests only. Real: a ServiceAccount whose ClusterRole has ``get`` and
``list`` but not ``watch``; giving it ``watch`` lifts the refusal.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import eventually
from tests.integration.backends import Backend, EmbeddedBackend, RealBackend
from tksh.access.index import DecisionIndex
from tksh.access.listwatch import KubeConnection, ListWatch, running
from tksh.access.statuscache import StatusCache, StatusSync
from tksh.access.sync import IndexSync

API = "tksh.kz/v1alpha1"
RETRY, CAP = 0.05, 0.8
WINDOW = 2.0
"""Seconds of refused watches counted: at the cap (0.8 s between lists) at most 3 lists fit; the old loops made
one every ``RETRY`` (dozens)."""


@dataclasses.dataclass(frozen=True)
class Case:
    """A sync, the kind of it that is watched, and an object of that kind to change."""

    make: Callable[[KubeConnection], ListWatch]
    kind: str
    plural: str
    resources: tuple[str, ...]
    """Every resource the sync lists (the role must allow them all)."""
    body: Callable[[str, int], dict[str, Any]]


def function(name: str, n: int) -> dict[str, Any]:
    return {"apiVersion": API, "kind": "SubjectFunction", "metadata": {"name": name, "labels": {"touch": str(n)}},
            "spec": {"titles": {"kk": "ПИБ", "ru": "ОСИ", "en": "Owners' association"},
                     "subjectTypes": ["PropertyOwnersAssociation"], "rights": [{"category": 5, "actions": ["read"]}]}}


def component(name: str, n: int) -> dict[str, Any]:
    return {"apiVersion": API, "kind": "CentralComponent", "metadata": {"name": name, "labels": {"touch": str(n)}},
            "spec": {"title": "ЦЖ gateway", "endpoint": {"url": "https://cz.example.kz/healthz"}}}


SETTINGS: dict[str, Any] = {"watch_timeout": 300, "retry_delay": RETRY, "max_retry_delay": CAP, "steady_after": 60}
CASES = {
    "IndexSync": Case(lambda c: IndexSync(DecisionIndex(), c, **SETTINGS), "SubjectFunction", "subjectfunctions",
                      ("accessgrants", "subjectfunctions"), function),
    "StatusSync": Case(lambda c: StatusSync(StatusCache(), c, **SETTINGS), "CentralComponent", "centralcomponents",
                       ("digitalobjects", "centralcomponents", "incidents"), component),
}


@dataclasses.dataclass
class Refused:
    connection: KubeConnection
    lift: Callable[[], Awaitable[None]]


@pytest.fixture
async def refused(cluster: Backend, request: pytest.FixtureRequest, unique: str,
                  tmp_path: Path) -> AsyncIterator[tuple[Case, Refused]]:
    """A connection whose watches of the case's kind are refused, and how to lift the refusal."""
    case = CASES[request.param]
    if isinstance(cluster, EmbeddedBackend):
        api = cluster.api
        api.faults.inject(403, method="GET", resource=case.plural, watch=True, times=None)

        async def clear() -> None:
            api.faults.clear()

        yield case, Refused(KubeConnection(api.url), clear)
        return
    assert isinstance(cluster, RealBackend)
    name = f"lister-{unique}"

    def role(*verbs: str) -> dict[str, Any]:
        return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": name},
                "rules": [{"apiGroups": ["tksh.kz"], "resources": list(case.resources), "verbs": list(verbs)}]}

    await cluster.apply({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name,
                                                                                    "namespace": "default"}})
    await cluster.apply(role("get", "list"))
    await cluster.apply({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                         "metadata": {"name": name},
                         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
                         "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": "default"}]})
    real = cluster.cluster
    token = await asyncio.to_thread(real.service_account_token, name, create=False)
    kubeconfig = await asyncio.to_thread(real.kubeconfig_for_token, token, name=name, path=tmp_path / "kubeconfig")

    async def grant_watch() -> None:
        await cluster.apply(role("get", "list", "watch"))

    yield case, Refused(KubeConnection.from_kubeconfig(str(kubeconfig)), grant_watch)


def lists_at_least(sync: ListWatch, kind: str, count: int) -> None:
    assert sync.relists[kind] >= count, sync.relists


@pytest.mark.parametrize("refused", list(CASES), indirect=True)
async def test_a_refused_watch_backs_off_instead_of_relisting_every_retry_delay(
    cluster: Backend, refused: tuple[Case, Refused], unique: str
) -> None:
    case, refusal = refused
    name = f"touched-{unique}"
    await cluster.apply(case.body(name, 0))
    async with running(case.make(refusal.connection)) as sync:
        kind = case.kind
        await eventually(lambda: lists_at_least(sync, kind, 3), timeout=60)
        before = sync.relists[kind]
        await asyncio.sleep(WINDOW)
        made = sync.relists[kind] - before
        assert made <= 4, f"{made} lists in {WINDOW} s with the watch refused: the delay was reset by each list"
        assert sync.events[kind] == 0  # no watch got through

        def at_the_cap() -> None:
            assert sync.retry_in(kind) == CAP, sync.retry_in(kind)

        await eventually(at_the_cap, timeout=60)  # successful lists in between did not reset it

        await refusal.lift()
        touches = iter(range(1, 10_000))

        async def reset_by_a_working_watch() -> float:
            await cluster.apply(case.body(name, next(touches)))  # one more event for the watch, once it is up
            assert sync.events[kind] >= 1 and sync.retry_in(kind) == RETRY, (sync.events, sync.retry_in(kind))
            return sync.retry_in(kind)

        await eventually(reset_by_a_working_watch, timeout=60, interval=0.2)
