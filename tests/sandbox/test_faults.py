"""Fault injection answers before any state change, with proper Status bodies; KMock reactions too."""

from __future__ import annotations

import pytest

from tksh.sandbox.apiserver import EmbeddedAPIServer

from .helpers import WIDGETS, call, widget

MERGE = "application/merge-patch+json"


@pytest.mark.parametrize(("status", "reason"), [
    (409, "Conflict"), (429, "TooManyRequests"), (500, "InternalError"), (503, "ServiceUnavailable"),
])
async def test_an_injected_fault_answers_a_status_and_leaves_the_store_unchanged(
        embedded_api: EmbeddedAPIServer, status: int, reason: str) -> None:
    await call(embedded_api, "POST", WIDGETS, widget("w1"))
    before = embedded_api.store.get("widgets", "default", "w1")
    version = embedded_api.store.resource_version
    embedded_api.faults.inject(status, method="PATCH", resource="widgets")
    reply = await call(embedded_api, "PATCH", f"{WIDGETS}/w1", {"spec": {"replicas": 3}}, content_type=MERGE)
    assert reply.status == status
    assert reply.body["kind"] == "Status" and reply.body["code"] == status and reply.body["reason"] == reason
    assert embedded_api.store.get("widgets", "default", "w1") == before
    assert embedded_api.store.resource_version == version
    retried = await call(embedded_api, "PATCH", f"{WIDGETS}/w1", {"spec": {"replicas": 3}}, content_type=MERGE)
    assert retried.status == 200


async def test_429_carries_retry_after(embedded_api: EmbeddedAPIServer) -> None:
    embedded_api.faults.inject(429, method="POST", retry_after=7)
    reply = await call(embedded_api, "POST", WIDGETS, widget("w1"))
    assert reply.status == 429
    assert reply.headers["Retry-After"] == "7"
    assert reply.body["details"]["retryAfterSeconds"] == 7
    assert embedded_api.store.get("widgets", "default", "w1") is None
    assert "Retry-After" not in (await call(embedded_api, "POST", WIDGETS, widget("w1"))).headers


async def test_faults_count_down_match_precisely_and_are_recorded(embedded_api: EmbeddedAPIServer) -> None:
    await call(embedded_api, "POST", WIDGETS, widget("w1"))
    fault = embedded_api.faults.inject(500, method="PATCH", resource="widgets.example.test", subresource="status",
                                       times=2)
    main = await call(embedded_api, "PATCH", f"{WIDGETS}/w1", {"spec": {"replicas": 2}}, content_type=MERGE)
    assert main.status == 200  # not the status subresource: untouched by this fault
    for _ in range(2):
        failed = await call(embedded_api, "PATCH", f"{WIDGETS}/w1/status", {"status": {"phase": "Ready"}},
                            content_type=MERGE)
        assert failed.status == 500
    passed = await call(embedded_api, "PATCH", f"{WIDGETS}/w1/status", {"status": {"phase": "Ready"}},
                        content_type=MERGE)
    assert passed.status == 200
    assert fault.hits == 2 and fault.exhausted
    assert [(i.status, i.method, i.path) for i in embedded_api.faults.injected] == [
        (500, "PATCH", f"{WIDGETS}/w1/status")] * 2
    assert embedded_api.faults.pending == []


async def test_kmock_reactions_also_answer_first_without_changing_state(embedded_api: EmbeddedAPIServer) -> None:
    embedded_api["post", embedded_api.resource("example.test", "v1", "widgets")][:1] << 503
    refused = await call(embedded_api, "POST", WIDGETS, widget("w1"))
    assert refused.status == 503
    assert embedded_api.store.get("widgets", "default", "w1") is None
    accepted = await call(embedded_api, "POST", WIDGETS, widget("w1"))
    assert accepted.status == 201


async def test_a_fault_can_refuse_watches_only_as_a_role_without_watch_does(embedded_api: EmbeddedAPIServer) -> None:
    fault = embedded_api.faults.inject(403, method="GET", resource="widgets", watch=True, times=None)
    assert (await call(embedded_api, "GET", WIDGETS)).status == 200  # the list is allowed
    refused = await call(embedded_api, "GET", WIDGETS, params={"watch": "true", "timeoutSeconds": "1"})
    assert (refused.status, refused.body["reason"]) == (403, "Forbidden")
    assert fault.hits == 1
    embedded_api.faults.inject(500, method="GET", resource="widgets", watch=False)
    assert (await call(embedded_api, "GET", WIDGETS)).status == 500  # watch=False: all but watches
