"""The operator keeps the function directory's status: phase, Ready condition, Events, metrics."""

from __future__ import annotations

import copy
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from tests.integration.backends import Backend
from tksh.run import OperatorHandle

FUNCTION: dict[str, Any] = {
    "apiVersion": "tksh.kz/v1alpha1",
    "kind": "SubjectFunction",
    "metadata": {"name": "owners-association"},
    "spec": {
        "titles": {"kk": "ПИБ", "ru": "ОСИ", "en": "Owners' association"},
        "subjectTypes": ["PropertyOwnersAssociation"],
        "rights": [
            {"category": 2, "actions": ["read", "write"]},
            {"category": 5, "actions": ["read", "write", "sign"]},
        ],
    },
}


def function(name: str, **spec: Any) -> dict[str, Any]:
    body = copy.deepcopy(FUNCTION)
    body["metadata"]["name"] = name
    body["spec"].update(spec)
    return body


async def status_of(cluster: Backend, name: str) -> dict[str, Any]:
    obj = await cluster.get("SubjectFunction", name)
    assert obj is not None
    return dict(obj.get("status") or {})


async def test_valid_function_becomes_active(
    cluster: Backend, operator: OperatorHandle, unique: str, wait_until: Callable[..., Awaitable[Any]]
) -> None:
    name = f"owners-{unique}"
    await cluster.apply(function(name))

    async def active() -> dict[str, Any]:
        status = await status_of(cluster, name)
        assert status["phase"] == "Active"
        return status

    status = await wait_until(active)
    (ready,) = [c for c in status["conditions"] if c["type"] == "Ready"]
    assert (ready["status"], ready["reason"], ready["observedGeneration"]) == ("True", "Accepted", 1)
    assert status["observedGeneration"] == 1

    async def accepted_event() -> None:
        reasons = {e["reason"] for e in await cluster.events(name)}
        assert "Accepted" in reasons

    await wait_until(accepted_event)
    await wait_until(lambda: _assert_metric(operator, "Active", 1.0))


async def test_invalid_function_is_reported_and_recovers_when_fixed(
    cluster: Backend, operator: OperatorHandle, unique: str, wait_until: Callable[..., Awaitable[Any]]
) -> None:
    name = f"owners-{unique}"
    await cluster.apply(function(name))
    await wait_until(lambda: _assert_phase(cluster, name, "Active"))

    broken = function(name)
    broken["spec"]["rights"][1]["actions"] = ["read", "write"]  # category 5 without sign (§8)
    await cluster.apply(broken)

    async def invalid() -> dict[str, Any]:
        status = await status_of(cluster, name)
        assert status["phase"] == "Invalid"
        assert status["observedGeneration"] == 2
        return status

    status = await wait_until(invalid)
    (ready,) = [c for c in status["conditions"] if c["type"] == "Ready"]
    assert (ready["status"], ready["reason"]) == ("False", "InvalidRights")
    assert "spec.rights[1].actions" in ready["message"]
    await wait_until(lambda: _assert_metric(operator, "Invalid", 1.0))

    async def warning_event() -> None:
        warnings = [e for e in await cluster.events(name) if e.get("type") == "Warning"]
        assert any(e["reason"] == "InvalidRights" for e in warnings)

    await wait_until(warning_event)

    await cluster.apply(function(name))
    await wait_until(lambda: _assert_phase(cluster, name, "Active"))
    await wait_until(lambda: _assert_metric(operator, "Invalid", 0.0))


async def test_ops_endpoints_serve_health_readiness_and_metrics(operator: OperatorHandle) -> None:
    base = f"http://127.0.0.1:{operator.ops_port}"
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{base}/healthz") as response:
            assert response.status == 200
        async with session.get(f"{base}/readyz") as response:
            assert response.status == 200
        async with session.get(f"{base}/metrics") as response:
            assert response.status == 200
            text = await response.text()
    assert 'tksh_operator_info{version="' in text


async def _assert_phase(cluster: Backend, name: str, phase: str) -> None:
    assert (await status_of(cluster, name)).get("phase") == phase


def _assert_metric(operator: OperatorHandle, phase: str, expected: float) -> None:
    assert operator.metrics.value("tksh_directory_functions", {"phase": phase}) == expected
