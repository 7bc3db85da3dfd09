"""Central failure (§34.3) and an impaired prober: who is told, and who is not.

* a critical CentralComponent that fails opens its own Incident and notifies the owners of every integrated
  object at once (one outbox entry per recipient, a window of owners at a time, counted in ``status.fanout``),
  and again on recovery; owners of objects not integrated are not told;
* when the prober's control target fails too, a failing digital object is Unknown, not Down: no Incident, no
  owner notified; when the control answers again, the same failure is confirmed and reported.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from tests.integration.backends import Backend, running
from tests.integration.monitoring_helpers import (
    ADMIN_EMAIL,
    availability,
    central_component,
    digital_object,
    incidents,
    integrated,
    mail_to,
    monitoring_config,
    namespace,
    one_incident,
    reasons,
    status_of,
)
from tksh.sandbox.mailsink import MailSink
from tksh.sandbox.targets import HTTPTarget

Wait = Callable[..., Awaitable[Any]]
OWNERS = ("it@zhylu.example.kz", "ops@su-arnasy.example.kz")
APPLICANT = "board@dostyk12.example.kz"


async def test_a_central_failure_is_announced_to_every_integrated_owner_and_so_is_the_recovery(
    cluster: Backend, mail: MailSink, unique: str, wait_until: Wait
) -> None:
    ns, home = await namespace(cluster, f"cen-{unique}"), await namespace(cluster, f"tksh-{unique}")
    gateway_name = f"gateway-{unique}"
    # one owner a window: the announcements go on between windows, when nothing of the incident is pending
    config = monitoring_config(cluster, mail.port, incident_namespace=home, fanout_window=1)
    async with HTTPTarget("objects") as objects, HTTPTarget("gateway") as gateway, running(config) as operator:
        members = [digital_object(f"dobj-{i}", ns, objects.url, email) for i, email in enumerate(OWNERS)]
        applicant = digital_object("applicant", ns, objects.url, APPLICANT)
        del applicant["spec"]["review"], applicant["spec"]["agreement"]  # under review: not integrated
        for obj in (*members, applicant):
            await cluster.apply(obj)
        for obj in members:
            await wait_until(lambda obj=obj: integrated(cluster, obj), timeout=60)
        await cluster.apply(central_component(gateway_name, gateway.url))
        await wait_until(lambda: availability(cluster, "CentralComponent", gateway_name, None, "Up"))

        gateway.failing(502)
        incident = await wait_until(lambda: one_incident(cluster, home), timeout=60)
        name = incident["metadata"]["name"]
        assert incident["spec"]["target"] == {"kind": "CentralComponent", "name": gateway_name}
        for owner in OWNERS:
            told = await mail.wait_for(mail_to(owner, "incident-opened"), timeout=30)
            assert gateway_name in told.text and "центральной системы" in told.text
        await mail.wait_for(mail_to(ADMIN_EMAIL, "incident-opened"), timeout=30)
        component = await wait_until(lambda: availability(cluster, "CentralComponent", gateway_name, None, "Down"))
        assert component["openIncident"] == name
        ready = next(c for c in component["conditions"] if c["type"] == "Ready")
        assert (ready["status"], ready["reason"]) == ("False", "IncidentOpen")


        async def everyone_told() -> list[dict[str, Any]]:
            outbox: list[dict[str, Any]] = (await one_incident(cluster, home))["status"]["outbox"]
            opened = [e for e in outbox if e["template"] == "incident-opened"]
            assert sorted(e["channel"] for e in opened) == ["email", "email", "email", "event"]  # 2 owners, admin
            return opened

        opened = await wait_until(everyone_told)
        assert len({e["id"] for e in opened}) == 4 and all("@" not in e.get("params", {}).values() for e in opened)
        for obj in members:  # their own systems are fine
            status = await status_of(cluster, "DigitalObject", obj["metadata"]["name"], ns)
            assert status["availability"]["state"] == "Up" and not status.get("openIncident")

        async def announced() -> None:  # the Event is posted by the outbox, after the incident is written
            assert "IncidentOpened" in await reasons(cluster, gateway_name)

        await wait_until(announced)

        gateway.healthy()
        for owner in OWNERS:
            back = await mail.wait_for(mail_to(owner, "incident-recovered"), timeout=60)
            assert "восстановлен" in back.text
        await wait_until(lambda: availability(cluster, "CentralComponent", gateway_name, None, "Up"))

        async def closed() -> dict[str, Any]:
            final: dict[str, Any] = (await one_incident(cluster, home, "Recovered"))["status"]
            assert operator.metrics.value("tksh_incidents_open") == 0
            assert not [e for e in final["outbox"] if e["state"] == "Pending"]
            return final

        final = await wait_until(closed)
        # the owners are counted in the announcements' progress (§34.3), not listed one by one
        assert [(r["transition"], r["owners"], r["delivered"], r["failed"], r["complete"]) for r in final["fanout"]] \
            == [("Opened", 2, 2, 0, True), ("Recovered", 2, 2, 0, True)]
        assert sorted((n["channel"], n["transition"]) for n in final["notifications"]) == [
            ("email", "Opened"), ("email", "Recovered"), ("event", "Opened"), ("event", "Recovered")]  # administrator
    assert not [m for m in mail.received if m.envelope_to == (APPLICANT,)
                and str(m.message["X-TKSH-Template"]).startswith("incident-")]
    assert len(await incidents(cluster, ns)) == 0  # the objects had no outage of their own


async def test_an_impaired_prober_makes_a_failing_object_unknown_and_tells_no_owner(
    cluster: Backend, mail: MailSink, unique: str, wait_until: Wait
) -> None:
    ns = await namespace(cluster, f"unk-{unique}")
    owner = OWNERS[0]
    async with HTTPTarget("control") as control, HTTPTarget("heat") as target:
        config = monitoring_config(cluster, mail.port, control_urls=(control.url,))
        async with running(config) as operator:
            obj = digital_object("heat-billing", ns, target.url, owner)
            await cluster.apply(obj)
            await wait_until(lambda: integrated(cluster, obj), timeout=60)
            await wait_until(lambda: availability(cluster, "DigitalObject", "heat-billing", ns, "Up"))

            control.failing(503)  # the prober's own known-good target is unreachable: the prober is impaired
            seen = control.hits
            await wait_until(lambda: _more(control.hits, seen, 2))
            target.failing(503)
            probed = target.hits
            await wait_until(lambda: availability(cluster, "DigitalObject", "heat-billing", ns, "Unknown"))
            await wait_until(lambda: _more(target.hits, probed, 8))  # many failed probes, several confirmations
            assert await incidents(cluster, ns) == []
            assert not [m for m in mail.received if str(m.message["X-TKSH-Template"]).startswith("incident-")]
            assert "AvailabilityUnknown" in await reasons(cluster, "heat-billing")
            labels = {"kind": "DigitalObject", "namespace": ns, "name": "heat-billing"}
            assert operator.metrics.value("tksh_probe_success", labels) is None  # absent while Unknown

            control.healthy()  # the prober works again: the same failure is now confirmed and reported
            await wait_until(lambda: one_incident(cluster, ns), timeout=60)
            await mail.wait_for(mail_to(owner, "incident-opened"), timeout=30)
            await wait_until(lambda: availability(cluster, "DigitalObject", "heat-billing", ns, "Down"))
            assert operator.metrics.value("tksh_probe_success", labels) == 0

            target.healthy()  # and it closes: no incident is left open for the tests after this one (a shared server)
            await wait_until(lambda: one_incident(cluster, ns, "Recovered"), timeout=60)


def _more(now: int, before: int, by: int) -> None:
    assert now >= before + by, (now, before)
