"""The ``/accessgrants`` webhook's read of a delegate's principal, when the API server cannot answer it.

kopf retries API errors without end (the operator's backoffs never run out), so an unbounded read would hold the
admission request until the API server gives up on the webhook (``admission.timeoutSeconds``) and refuses the write
with its own timeout message. The read is bounded to half of ``TKSH_ADMISSION_TIMEOUT``: the webhook answers in
time, refuses, and says to retry. Embedded backend only: a real server cannot be made to fail one GET on demand (the
embedded one does it with ``api.faults.inject``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from tests.integration.backends import EmbeddedBackend, running
from tests.integration.registration_helpers import admission_answer, free_port, make_namespace
from tests.integration.test_grants import delegate_of_chair, grant, grant_review
from tksh.sandbox.apiserver import EmbeddedAPIServer
from tksh.sandbox.mailsink import MailSink

Wait = Callable[..., Awaitable[Any]]
DEADLINE = 90.0  # a bound on a broken test (an unbounded read never answers), not a timing requirement
UNREADABLE = "spec.delegatedFrom: the principal grant chair does not exist in this namespace, or could not be read " \
             "just now: retry"


def review(ns: str, **spec: Any) -> dict[str, Any]:
    """The AdmissionReview of creating a grant delegated from ``chair``."""
    return grant_review(delegate_of_chair(ns, **spec), uid="req-unreadable")


async def test_an_unreadable_principal_is_refused_in_time_with_a_reason_to_retry(
    api: EmbeddedAPIServer, mail: MailSink, wait_until: Wait
) -> None:
    backend = EmbeddedBackend(api)
    ns = await make_namespace(backend, "unread", "admission")
    await backend.apply(grant("chair", ns, scope={"categories": [2, 5]},
                              agreement={"number": "ДД-1", "validFrom": "2026-01-01T00:00:00Z",
                                         "validUntil": "2090-01-01T00:00:00Z"}))
    port = free_port()
    config = dataclasses.replace(backend.operator_config(), smtp_host="127.0.0.1", smtp_port=mail.port,
                                 smtp_sender="tksh@tksh.example.kz", admission_port=port, admission_addr="127.0.0.1",
                                 admission_insecure=True, admission_timeout=2.0)
    fault = api.faults.inject(500, method="GET", resource="accessgrants", namespace=ns, name="chair", times=None,
                              message="etcdserver: request timed out")

    async with running(config), aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=DEADLINE)) as http:
        async def ask(body: dict[str, Any]) -> dict[str, Any]:
            return await admission_answer(http, f"http://127.0.0.1:{port}/accessgrants", body)

        refused = await wait_until(lambda: ask(review(ns)))
        assert refused["allowed"] is False and refused["status"]["message"] == UNREADABLE, refused
        assert fault.hits >= 2, fault  # kopf retried the read before the bound ran out

        api.faults.clear()
        admitted = await ask(review(ns))
        assert admitted["allowed"] is True, admitted  # read now: within its principal
        wider = await ask(review(ns, scope={"categories": [5, 9]}))
        assert wider["allowed"] is False and wider["status"]["message"].startswith("spec.scope.categories: "), wider
