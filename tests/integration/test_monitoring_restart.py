"""The durable outbox of an incident across an operator restart: nothing lost, nothing sent twice, no second incident.

The mail relay is down and the owner's webhook answers 503 when the outage opens, so those notices stay
``Pending`` in the incident's ``status.outbox``; the operator is stopped; the relay and the receiver come back;
a new operator delivers what was pending — once per idempotency key — and does not repeat what the first one
had already delivered. The target is still down after the restart: the open incident is restored, not re-opened.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

from tests.integration.backends import Backend, running
from tests.integration.monitoring_helpers import (
    OWNER,
    WEBHOOK_SECRET,
    HTTPReceiver,
    digital_object,
    incidents,
    integrated,
    mail_to,
    monitoring_config,
    namespace,
    one_incident,
    webhook_secret,
)
from tksh.notify import IDEMPOTENCY_HEADER, IDEMPOTENCY_KEY_HEADER, SIGNATURE_HEADER, verify
from tksh.sandbox.mailsink import MailSink
from tksh.sandbox.targets import HTTPTarget

Wait = Callable[..., Awaitable[Any]]


async def test_pending_notices_survive_a_restart_and_are_delivered_once(
    cluster: Backend, unique: str, wait_until: Wait
) -> None:
    ns = await namespace(cluster, f"rst-{unique}")
    first_mail = MailSink()
    await first_mail.start()
    port = first_mail.port
    async with HTTPTarget("heat") as target, HTTPReceiver() as hook:
        config = monitoring_config(cluster, port)
        await webhook_secret(cluster, "heat-billing", ns)
        obj = digital_object("heat-billing", ns, target.url, OWNER, webhook=f"{hook.url}/tksh")
        async with running(config):
            await cluster.apply(obj)
            await wait_until(lambda: integrated(cluster, obj), timeout=60)
            await first_mail.wait_for(mail_to(OWNER, "integration-completed"), timeout=30)
            await first_mail.close()  # the relay goes away
            hook.respond(*[503] * 1000)  # and the owner's receiver fails
            target.failing(503)

            async def stuck() -> dict[str, Any]:
                incident = await one_incident(cluster, ns)
                outbox = {e["channel"]: e for e in incident["status"].get("outbox") or ()}
                for channel in ("email", "webhook"):
                    assert outbox[channel]["state"] == "Pending" and outbox[channel]["attempts"] >= 1, outbox
                assert outbox["event"]["state"] == "Delivered"
                return incident

            before = await wait_until(stuck, timeout=60)
        # The operator is stopped with two notices pending.
        hook.script.clear()
        async with MailSink(port=port) as mail, running(config) as operator:
            opened = await mail.wait_for(mail_to(OWNER, "incident-opened"), timeout=60)
            signed = await hook.wait_for(lambda r: r.status == 200 and r.json()["transition"] == "Opened")
            assert verify(signed.body, signed.headers[SIGNATURE_HEADER], WEBHOOK_SECRET)

            async def delivered() -> dict[str, Any]:
                incident = await one_incident(cluster, ns)
                assert all(e["state"] == "Delivered" for e in incident["status"]["outbox"])
                return incident

            after = await wait_until(delivered)
            assert after["metadata"]["uid"] == before["metadata"]["uid"]  # the same incident, restored
            target.healthy()
            await mail.wait_for(mail_to(OWNER, "incident-recovered"), timeout=60)
            await wait_until(lambda: one_incident(cluster, ns, "Recovered"))
            assert operator.metrics.value("tksh_notifications_pending") is not None
        keys = Counter(str(m.message[IDEMPOTENCY_HEADER]) for m in mail.received)
    assert opened.message[IDEMPOTENCY_HEADER] in keys
    assert set(keys.values()) == {1}  # every e-mail once: nothing lost, nothing twice
    hook_keys = Counter(r.headers[IDEMPOTENCY_KEY_HEADER] for r in hook.accepted())
    assert len(hook_keys) == 2 and set(hook_keys.values()) == {1}  # opened and recovered, once each
    assert len(hook.requests) > len(hook.accepted())  # the 503s before the restart were retried
    final = await one_incident(cluster, ns, "Recovered")
    events = Counter((n["channel"], n["transition"]) for n in final["status"]["notifications"])
    assert events == {("email", "Opened"): 1, ("webhook", "Opened"): 1, ("event", "Opened"): 1,
                      ("email", "Recovered"): 1, ("webhook", "Recovered"): 1, ("event", "Recovered"): 1}
    assert len(await incidents(cluster, ns)) == 1
