"""The operator keeps the function directory's status: phase, Ready condition, Events, metrics."""

from __future__ import annotations

import copy
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from tksh.run import OperatorHandle
from tksh.sandbox.apiserver import EmbeddedAPIServer

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


def status_of(api: EmbeddedAPIServer, name: str) -> dict[str, Any]:
    obj = api.store.get("subjectfunctions", None, name)
    assert obj is not None
    return dict(obj.get("status") or {})


async def test_valid_function_becomes_active(
    api: EmbeddedAPIServer, operator: OperatorHandle, wait_until: Callable[..., Awaitable[Any]]
) -> None:
    await api.apply(copy.deepcopy(FUNCTION))

    def active() -> dict[str, Any]:
        status = status_of(api, "owners-association")
        assert status["phase"] == "Active"
        return status

    status = await wait_until(active)
    (ready,) = [c for c in status["conditions"] if c["type"] == "Ready"]
    assert (ready["status"], ready["reason"], ready["observedGeneration"]) == ("True", "Accepted", 1)
    assert status["observedGeneration"] == 1

    def accepted_event() -> None:
        reasons = {e["reason"] for e in api.events(involved_name="owners-association")}
        assert "Accepted" in reasons

    await wait_until(accepted_event)
    await wait_until(lambda: _assert_metric(operator, "Active", 1.0))


async def test_invalid_function_is_reported_and_recovers_when_fixed(
    api: EmbeddedAPIServer, operator: OperatorHandle, wait_until: Callable[..., Awaitable[Any]]
) -> None:
    await api.apply(copy.deepcopy(FUNCTION))
    await wait_until(lambda: _assert_phase(api, "Active"))

    broken = copy.deepcopy(FUNCTION)
    broken["spec"]["rights"][1]["actions"] = ["read", "write"]  # category 5 without sign (§8)
    await api.apply(broken)

    def invalid() -> dict[str, Any]:
        status = status_of(api, "owners-association")
        assert status["phase"] == "Invalid"
        assert status["observedGeneration"] == 2
        return status

    status = await wait_until(invalid)
    (ready,) = [c for c in status["conditions"] if c["type"] == "Ready"]
    assert (ready["status"], ready["reason"]) == ("False", "InvalidRights")
    assert "spec.rights[1].actions" in ready["message"]
    await wait_until(lambda: _assert_metric(operator, "Invalid", 1.0))

    def warning_event() -> None:
        warnings = [e for e in api.events(involved_name="owners-association") if e.get("type") == "Warning"]
        assert any(e["reason"] == "InvalidRights" for e in warnings)

    await wait_until(warning_event)

    await api.apply(copy.deepcopy(FUNCTION))
    await wait_until(lambda: _assert_phase(api, "Active"))
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


def _assert_phase(api: EmbeddedAPIServer, phase: str) -> None:
    assert status_of(api, "owners-association").get("phase") == phase


def _assert_metric(operator: OperatorHandle, phase: str, expected: float) -> None:
    assert operator.metrics.value("tksh_directory_functions", {"phase": phase}) == expected
