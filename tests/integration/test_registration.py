"""The registration lifecycle of a DigitalObject, end to end: operator, API server, real SMTP, real endpoints."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from tests.integration.backends import Backend, running
from tests.integration.registration_helpers import (
    AGREEMENT,
    OWNER_BIN,
    OWNER_EMAIL,
    admission_answer,
    application,
    condition,
    config_for,
    event_type,
    free_port,
    kubectl_env,
    kubectl_tksh,
    make_namespace,
    phase,
    reasons,
    to_owner,
)
from tksh.notify import IDEMPOTENCY_HEADER
from tksh.run import OperatorHandle
from tksh.sandbox.mailsink import MailSink
from tksh.sandbox.targets import HTTPTarget

Wait = Callable[..., Awaitable[Any]]


@pytest.fixture
async def ns(cluster: Backend, unique: str) -> str:
    return await make_namespace(cluster, unique)


@pytest.fixture
async def registration(cluster: Backend, mail: MailSink, ns: str) -> AsyncIterator[OperatorHandle]:
    async with running(config_for(cluster, mail.port)) as handle:
        yield handle


async def test_incomplete_application_is_refused_and_reopened_when_fixed(
    cluster: Backend, registration: OperatorHandle, mail: MailSink, ns: str, wait_until: Wait
) -> None:
    incomplete = application("osi", ns)
    del incomplete["spec"]["functions"], incomplete["spec"]["endpoint"]
    await cluster.apply(incomplete)
    status = await wait_until(lambda: phase(cluster, "osi", ns, "Refused"))
    assert {"spec.functions", "spec.endpoint.url"} <= set(status["missing"])
    complete = condition(status, "Complete")
    assert (complete["status"], complete["reason"], complete["observedGeneration"]) == (
        "False", "ApplicationIncomplete", 1)
    assert "spec.functions" in complete["message"]

    refused = await mail.wait_for(to_owner("registration-refused"), timeout=30)
    assert "қабылданбады" in refused.subject or "қабылданбады" in refused.text  # Kazakh
    assert "отказано" in refused.text and "spec.endpoint.url" in refused.text  # Russian, the missing items
    assert refused.message[IDEMPOTENCY_HEADER]
    assert await wait_until(lambda: event_type(cluster, "osi", "Refused", ns)) == "Warning"

    await cluster.apply(application("osi", ns))  # fixed: re-submitted
    status = await wait_until(lambda: phase(cluster, "osi", ns, "UnderReview"))
    assert status["reviewDeadline"]
    assert not status.get("missing")
    assert condition(status, "Complete")["status"] == "True"
    assert condition(status, "ReviewOverdue")["reason"] == "WithinDeadline"

    async def under_review_event() -> None:
        assert "UnderReview" in await reasons(cluster, "osi", ns)

    await wait_until(under_review_event)
    assert registration.metrics.value("tksh_applications", {"phase": "UnderReview"}) == 1


async def test_rejection_with_a_reason_is_mailed(
    cluster: Backend, registration: OperatorHandle, mail: MailSink, ns: str, wait_until: Wait
) -> None:
    await cluster.apply(application("osi", ns))
    await wait_until(lambda: phase(cluster, "osi", ns, "UnderReview"))
    reason = "эндпоинт вне Казахстана"
    await cluster.apply(application("osi", ns, review={"decision": "Rejected", "reviewer": "aigerim",
                                                        "reason": reason}))
    status = await wait_until(lambda: phase(cluster, "osi", ns, "Rejected"))
    reviewed = condition(status, "Reviewed")
    assert (reviewed["status"], reviewed["reason"], reviewed["observedGeneration"]) == ("False", "Rejected", 2)
    rejected = await mail.wait_for(to_owner("registration-rejected"), timeout=30)
    assert reason in rejected.text and "Себебі" in rejected.text and "Причина" in rejected.text
    assert await wait_until(lambda: event_type(cluster, "osi", "Rejected", ns)) == "Normal"


async def test_approved_with_agreement_and_healthy_endpoint_is_integrated(
    cluster: Backend, registration: OperatorHandle, mail: MailSink, ns: str, wait_until: Wait
) -> None:
    async with HTTPTarget("healthy") as target:
        await cluster.apply(application("osi", ns, target.url))
        await wait_until(lambda: phase(cluster, "osi", ns, "UnderReview"))
        await cluster.apply(application("osi", ns, target.url, review={"decision": "Approved", "reviewer": "aigerim"}))
        await wait_until(lambda: phase(cluster, "osi", ns, "Approved"))
        approved = await mail.wait_for(to_owner("registration-approved"), timeout=30)
        assert "мақұлданды" in approved.text and "одобрена" in approved.text

        await cluster.apply(application("osi", ns, target.url, review={"decision": "Approved", "reviewer": "aigerim"},
                                        agreement=AGREEMENT))
        status = await wait_until(lambda: phase(cluster, "osi", ns, "Integrated"))
    assert condition(status, "Tested")["status"] == "True"
    assert condition(status, "Ready")["status"] == "True"
    assert condition(status, "AgreementSigned")["reason"] == "AgreementInEffect"
    assert status["integratedAt"]
    await mail.wait_for(to_owner("integration-completed"), timeout=30)

    async def counted() -> None:
        sent = registration.metrics.value("tksh_notifications_total", {"channel": "email", "result": "delivered"})
        assert sent is not None and sent >= 2  # approved, integrated
        assert registration.metrics.value("tksh_applications", {"phase": "Integrated"}) == 1

    await wait_until(counted)

    async def story() -> None:
        assert {"Approved", "TestingStarted", "Integrated"} <= set(await reasons(cluster, "osi", ns))

    await wait_until(story)


async def test_failing_endpoint_stays_in_testing_and_the_owner_is_told(
    cluster: Backend, registration: OperatorHandle, mail: MailSink, ns: str, wait_until: Wait
) -> None:
    async with HTTPTarget("failing") as target:
        target.failing(503)
        await cluster.apply(application("osi", ns, target.url, review={"decision": "Approved", "reviewer": "aigerim"},
                                        agreement=AGREEMENT))

        async def failed() -> dict[str, Any]:
            status = await phase(cluster, "osi", ns, "Testing")
            tested = condition(status, "Tested")
            assert (tested["status"], tested["reason"]) == ("False", "UnexpectedStatus"), tested
            return status

        status = await wait_until(failed)
        told = await mail.wait_for(to_owner("integration-test-failed"), timeout=30)
    assert "503" in condition(status, "Tested")["message"]
    assert "503" in told.text
    assert await wait_until(lambda: event_type(cluster, "osi", "TestFailed", ns)) == "Warning"


async def test_outbox_survives_a_restart_and_sends_each_message_once(
    cluster: Backend, ns: str, wait_until: Wait
) -> None:
    port = free_port()  # nothing listens yet: SMTP is down
    config = config_for(cluster, port)
    async with running(config):
        await cluster.apply(application("osi", ns, review={"decision": "Approved", "reviewer": "aigerim"}))

        async def recorded_not_sent() -> list[dict[str, Any]]:
            status = await phase(cluster, "osi", ns, "Approved")
            entries = [e for e in status["outbox"] if e["template"] == "registration-approved"]
            assert entries and entries[0]["state"] == "Pending" and entries[0].get("attempts", 0) >= 1, entries
            return list(status["outbox"])

        await wait_until(recorded_not_sent)
    async with MailSink(port=port) as sink, running(config):

        async def all_delivered() -> list[dict[str, Any]]:
            obj = await cluster.get("DigitalObject", "osi", ns)
            assert obj is not None
            outbox = obj["status"]["outbox"]
            assert outbox and all(e["state"] == "Delivered" for e in outbox), outbox
            return list(outbox)

        outbox = await wait_until(all_delivered)
        await asyncio.sleep(1.0)  # a duplicate, if any, would be sent right after the mark
        keys = [m[IDEMPOTENCY_HEADER] for m in sink.messages]
    assert sorted(keys) == sorted(e["id"] for e in outbox)
    assert len(keys) == len(set(keys))


async def test_admission_webhook_refuses_review_by_non_administrators(
    cluster: Backend, mail: MailSink, ns: str, wait_until: Wait
) -> None:
    import aiohttp

    port = free_port()
    config = dataclasses.replace(config_for(cluster, mail.port), admission_port=port, admission_addr="127.0.0.1",
                                 admission_insecure=True)

    def review_request(userinfo: dict[str, Any], new: dict[str, Any], old: dict[str, Any] | None) -> dict[str, Any]:
        return {
            "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {
                "uid": "req-1", "operation": "UPDATE" if old else "CREATE", "userInfo": userinfo,
                "kind": {"group": "tksh.kz", "version": "v1alpha1", "kind": "DigitalObject"},
                "resource": {"group": "tksh.kz", "version": "v1alpha1", "resource": "digitalobjects"},
                "namespace": ns, "name": "osi", "object": new, "oldObject": old,
            },
        }

    before = application("osi", ns)
    approved = application("osi", ns, review={"decision": "Approved", "reviewer": "aigerim"})
    reasonless = application("osi", ns, review={"decision": "Rejected", "reviewer": "aigerim"})
    applicant = {"username": "owner", "groups": ["system:authenticated"]}
    admin = {"username": "aigerim", "groups": ["system:authenticated", config.administrators_group]}
    async with running(config), aiohttp.ClientSession() as http:

        async def ask(body: dict[str, Any]) -> dict[str, Any]:
            answer = await admission_answer(http, f"http://127.0.0.1:{port}/review", body)
            assert answer["uid"] == "req-1"
            return answer

        refused = await wait_until(lambda: ask(review_request(applicant, approved, before)))
        assert refused["allowed"] is False and refused["status"]["code"] == 403
        assert refused["status"]["message"].startswith("spec.review: ")
        assert (await ask(review_request(admin, approved, before)))["allowed"] is True
        assert (await ask(review_request(applicant, before, None)))["allowed"] is True
        no_reason = await ask(review_request(admin, reasonless, before))
        assert no_reason["allowed"] is False and "spec.review.reason" in no_reason["status"]["message"]


async def test_kubectl_tksh_approve_reject_status(
    cluster: Backend, registration: OperatorHandle, mail: MailSink, ns: str, wait_until: Wait, tmp_path: Any
) -> None:
    """The real kubectl runs the plugin (kubectl-tksh) against the API server with a kubeconfig."""
    env = kubectl_env(cluster, tmp_path)

    async def kubectl(*args: str) -> tuple[int, str, str]:
        return await kubectl_tksh(env, *args)

    await cluster.apply(application("alpha", ns))
    await cluster.apply(application("beta", ns))
    await wait_until(lambda: phase(cluster, "alpha", ns, "UnderReview"))
    await wait_until(lambda: phase(cluster, "beta", ns, "UnderReview"))

    code, out, _ = await kubectl("status", "-n", ns)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["NAME", "NAMESPACE", "PHASE"]
    assert {line.split()[0] for line in lines[1:]} == {"alpha", "beta"}
    assert OWNER_EMAIL not in out and OWNER_BIN not in out

    code, out, err = await kubectl("reject", "beta", "-n", ns)
    assert code == 2 and "--reason" in err

    code, out, err = await kubectl("approve", "alpha", "-n", ns, "--reviewer", "aigerim")
    assert code == 0, err
    status = await wait_until(lambda: phase(cluster, "alpha", ns, "Approved"))
    assert condition(status, "Reviewed")["reason"] == "Approved"
    obj = await cluster.get("DigitalObject", "alpha", ns)
    assert obj is not None and obj["spec"]["review"]["reviewer"] == "aigerim" and obj["spec"]["review"]["decidedAt"]

    code, out, err = await kubectl("reject", "beta", "-n", ns, "--reason", "no agreement with the akimat")
    assert code == 0, err
    await wait_until(lambda: phase(cluster, "beta", ns, "Rejected"))
    rejected = await mail.wait_for(to_owner("registration-rejected"), timeout=30)
    assert "no agreement with the akimat" in rejected.text
    obj = await cluster.get("DigitalObject", "beta", ns)
    assert obj is not None and obj["spec"]["review"]["reviewer"]  # the kubeconfig's user by default
