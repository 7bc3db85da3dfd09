"""DigitalObject handlers: the registration lifecycle (§14–17) of each application, by one writer.

The single writer
-----------------
Every ``DigitalObject`` gets one kopf daemon (``lifecycle``); it is the only task that writes the
object's lifecycle status and its outbox (``status.outbox`` is a list, replaced as a whole by a merge
patch, so two writers would lose each other's marks). One pass of the daemon:

1. reconciles the live spec (kopf keeps the daemon's ``body`` up to date from the watch-stream)
   with the status *it last wrote* (or, after a start, the stored one) and the function directory
   (a ``@kopf.index`` of the SubjectFunctions) -> :class:`tksh.registration.Plan`;
2. patches ``plan.status`` when it differs from the stored one (the outbox entries are stored
   before any attempt to send them), then posts ``plan.events``;
3. delivers the due e-mails of the stored outbox over SMTP (:func:`tksh.registration.deliver_due`)
   and patches the outbox with the attempts (a crash in between re-sends once, with the same
   idempotency key);
4. runs the integration test when the plan asks for it (N probes in a row within the time limit)
   and, if so, starts the next pass at once with its :class:`TestResult`;
5. otherwise sleeps until ``plan.wake_at``, waking early when the spec's generation changes or the
   §20.6 flag appears (the ``lifecycle-wake`` event handler sets the daemon's wake-up event on every
   watch event of its object, after kopf has refreshed the live body; the daemon re-checks and sleeps on
   if neither changed), or when the daemon is stopped. No timer per object at rest: 1,000 applications
   used to poll their bodies every 2 s (every 0.2 s in the test configuration; issue #7, item 5).

Writes go through :func:`tksh.handlers.daemonwrites.patch_status` (kopf's own API client, with the
operator's credentials) rather than a daemon's ``patch`` kwarg, which kopf applies only when the daemon
function returns; it writes nothing once this replica pauses for a peer, and no e-mail is sent then either.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import kopf

from tksh import GROUP, VERSION
from tksh.conditions import get_condition
from tksh.handlers import Context
from tksh.handlers.daemonwrites import patch_status
from tksh.handlers.settings import make_settings
from tksh.logs import mask_text
from tksh.monitoring import Prober, ProbeSpec
from tksh.notify import Backoff, SmtpSettings
from tksh.registration import Attempt, ObjectRef, Plan, TestRequest, TestResult, deliver_due, directory_from_objects
from tksh.registration import reconcile as reconcile_application
from tksh.resources.common import Probe
from tksh.resources.digitalobject import DIGITAL_OBJECT_PHASES

Store = Callable[[Mapping[str, Any]], Awaitable[dict[str, Any] | None]]
PLURAL = "digitalobjects"
INDEX = "subjectfunctions_by_name"
_FAILURE_REASONS = {
    "dns": "NameNotResolved", "connect": "ConnectionFailed", "tls": "TLSFailed", "timeout": "ProbeTimeout",
    "http_status": "UnexpectedStatus", "body": "UnexpectedBody",
}


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _flag(body: kopf.Body) -> str | None:
    """The grant named by the ``tksh.kz/false-information`` annotation (§20.6), if any."""
    value = body.meta.annotations.get(f"{GROUP}/false-information")
    return value if isinstance(value, str) and value else None


def _differs(fields: Mapping[str, Any], status: Mapping[str, Any]) -> bool:
    """Whether a status merge patch (``None`` deletes) would change ``status``."""
    return any(status.get(key) != value for key, value in fields.items())


async def integration_test(spec: Mapping[str, Any], request: TestRequest, interval: float) -> TestResult:
    """§17: ``request.probes`` successful probes in a row within ``request.time_limit``.

    A failed probe starts the count again; the test fails when the time is up, with the last failure.
    """
    loop = asyncio.get_running_loop()
    endpoint = spec.get("endpoint")
    endpoint = endpoint if isinstance(endpoint, Mapping) else {}
    try:
        probe = ProbeSpec.from_probe(str(endpoint.get("url", "")), Probe.model_validate(spec.get("probe") or {}))
    except ValueError as error:
        return TestResult(False, "InvalidEndpoint", mask_text(f"the endpoint cannot be probed: {error}"[:300]),
                          request.generation)
    deadline = loop.time() + request.time_limit.total_seconds()
    limit = f"{request.probes} probes in a row did not pass within {request.time_limit.total_seconds():g} s"
    in_a_row, total, reason, last = 0, 0, "TestTimeLimit", "no probe completed"
    prober = Prober()
    try:
        while in_a_row < request.probes:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return TestResult(False, reason, mask_text(f"{limit}; last: {last}"), request.generation)
            try:
                result = await asyncio.wait_for(prober.probe(probe), remaining)
            except TimeoutError:
                continue  # the time is up: reported above
            total += 1
            if result.ok:
                in_a_row += 1
            else:
                in_a_row = 0
                reason = _FAILURE_REASONS.get(str(result.failure), "ProbeFailed")
                last = f"probe {total}: {result.message}"
            if in_a_row < request.probes:
                await asyncio.sleep(min(interval, max(deadline - loop.time(), 0)))
    finally:
        await prober.close()
    return TestResult(True, "TestPassed", f"{request.probes} probes in a row passed", request.generation)


async def _woken(wake: asyncio.Event, stopped: kopf.DaemonStopped, timeout: float) -> None:  # noqa: ASYNC109
    """Until ``wake`` is set, the daemon is stopped, or ``timeout`` seconds. Our own timeout, not
    ``stopped.wait(timeout)``: that leaves a kopf task ending in TimeoutError, which kopf re-raises at exit."""
    waiters: set[asyncio.Future[Any]] = {asyncio.ensure_future(wake.wait()), asyncio.ensure_future(stopped.wait())}
    try:
        await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
        await asyncio.gather(*waiters, return_exceptions=True)


def register(registry: kopf.OperatorRegistry, ctx: Context) -> None:
    config = ctx.config
    lifecycle_config = config.lifecycle()
    smtp = SmtpSettings(host=config.smtp_host, port=config.smtp_port, sender=config.smtp_sender)
    api_settings = make_settings(config)
    # A daemon re-checks its body this often even without a wake-up: a safety net only, the same in the tests'
    # fast configuration, so a lost wake-up shows there as a test running out of time.
    safety = 60.0
    backoff = Backoff(initial=datetime.timedelta(seconds=0.5), maximum=datetime.timedelta(seconds=5)) if config.fast \
        else Backoff()
    known: dict[str, tuple[str, bool, int]] = {}  # uid -> (phase, overdue, pending e-mails)
    totals: dict[str, int] = dict.fromkeys(DIGITAL_OBJECT_PHASES, 0) | {"": 0, "overdue": 0, "pending": 0}
    wakes: dict[str, asyncio.Event] = {}  # uid -> the lifecycle daemon's wake-up
    for phase in DIGITAL_OBJECT_PHASES:
        ctx.metrics.applications.labels(phase=phase).set(0)

    def publish(uid: str, status: Mapping[str, Any] | None) -> None:
        """The gauges, kept per application in O(1) (not recounted over every application on every pass)."""
        entry = None
        if status is not None:
            phase = str(status.get("phase") or "")
            cond = get_condition(status.get("conditions"), "ReviewOverdue") or {}
            entry = (phase, cond.get("status") == "True" and phase == "UnderReview",
                     sum(1 for e in status.get("outbox") or () if e.get("state", "Pending") == "Pending"))
        old = known.pop(uid, None)
        if entry is not None:
            known[uid] = entry
        for sign, item in ((-1, old), (1, entry)):
            if item is not None:
                totals[item[0] if item[0] in totals else ""] += sign
                totals["overdue"] += sign * item[1]
                totals["pending"] += sign * item[2]
        for phase in {old[0] if old else "", entry[0] if entry else ""} & set(DIGITAL_OBJECT_PHASES):
            ctx.metrics.applications.labels(phase=phase).set(totals[phase])
        ctx.metrics.applications_overdue.set(totals["overdue"])
        ctx.metrics.set_pending("registration", totals["pending"])

    @kopf.index(GROUP, VERSION, "subjectfunctions", registry=registry, id=INDEX)
    async def index_function(name: str, spec: kopf.Spec, **_: Any) -> dict[str, dict[str, Any]]:
        return {name: {"metadata": {"name": name}, "spec": dict(spec)}}

    @kopf.daemon(GROUP, VERSION, PLURAL, registry=registry, id="lifecycle", cancellation_timeout=10.0)
    async def lifecycle(
        stopped: kopf.DaemonStopped, body: kopf.Body, resource: kopf.Resource, logger: kopf.Logger, **kwargs: Any
    ) -> None:
        meta = body.meta
        ref = ObjectRef(uid=str(meta["uid"]), name=str(meta["name"]), namespace=meta.get("namespace"))
        functions: kopf.Index[str, dict[str, Any]] = kwargs[INDEX]
        written: dict[str, Any] | None = None  # the status as this writer last stored it
        result: TestResult | None = None
        wake = wakes.setdefault(ref.uid, asyncio.Event())

        async def store(fields: Mapping[str, Any]) -> dict[str, Any] | None:
            return await patch_status(stopped, settings=api_settings, resource=resource, namespace=ref.namespace,
                                      name=ref.name, fields=fields, logger=logger)

        try:
            while not stopped:
                generation = int(meta.get("generation") or 1)
                status = written if written is not None else dict(body.get("status") or {})
                directory = directory_from_objects(v for store_ in functions.values() for v in store_)
                plan: Plan = reconcile_application(dict(body.spec), status, generation, directory, _now(),
                                                   lifecycle_config, ref=ref, test=result,
                                                   false_information=_flag(body))
                result = None
                if _differs(plan.status, status):
                    stored = await store(plan.status)
                    if stored is None:
                        return  # the object is gone, or this replica pauses (patch_status wrote nothing)
                    written = status = stored
                for event in plan.events:
                    kopf.event(body, type=event.type, reason=event.reason, message=mask_text(event.message))
                if stopped:
                    break  # no e-mail from a stopping daemon: the next writer sends it, with the same key
                status = await deliver_and_report(body, status, store) or status
                written = status
                publish(ref.uid, status)
                if plan.test is not None and plan.test.not_before <= _now():
                    result = await integration_test(body.spec, plan.test, config.test_probe_interval)
                    continue
                wake_at = plan.wake_at
                if plan.test is not None:
                    wake_at = min(wake_at or plan.test.not_before, plan.test.not_before)
                await sleep(stopped, body, generation, wake_at, wake)
        finally:
            publish(ref.uid, None)
            if wakes.get(ref.uid) is wake:
                del wakes[ref.uid]

    @kopf.on.event(GROUP, VERSION, PLURAL, registry=registry, id="lifecycle-wake")
    async def wake_lifecycle(uid: str, **_: Any) -> None:
        """Every watch event of an application wakes its daemon (kopf has refreshed the daemon's body by now)."""
        wake = wakes.get(uid)
        if wake is not None:
            wake.set()

    async def deliver_and_report(body: kopf.Body, status: dict[str, Any], store: Store) -> dict[str, Any] | None:
        """Send the due e-mails of the stored outbox; store the attempts; Events (only if stored: not from a replica
        that paused meanwhile) and metrics for each."""
        outbox, attempts = await deliver_due(status.get("outbox"), body.spec, _now(), smtp=smtp,
                                             config=lifecycle_config, backoff=backoff)
        if not attempts:
            return None
        stored: dict[str, Any] | None = await store({"outbox": outbox})
        for attempt in attempts:
            report(body, attempt, events=stored is not None)
        return stored

    def report(body: kopf.Body, attempt: Attempt, *, events: bool) -> None:
        result = "delivered" if attempt.result.delivered else ("retry" if attempt.state == "Pending" else "failed")
        ctx.metrics.notifications.labels(channel="email", result=result).inc()
        what = f"{attempt.template} to {mask_text(attempt.recipient)} (key {attempt.id})"
        if result == "delivered" and events:
            kopf.event(body, type="Normal", reason="NotificationSent", message=f"e-mail {what} sent")
        elif result == "failed" and events:
            kopf.warn(body, reason="NotificationFailed",
                      message=mask_text(f"e-mail {what} given up: {attempt.result.error}")[:1000])
        elif result == "retry":
            logging.getLogger(__name__).info("e-mail %s not sent yet: %s", what, mask_text(attempt.result.error))

    async def sleep(stopped: kopf.DaemonStopped, body: kopf.Body, generation: int,
                    wake_at: datetime.datetime | None, wake: asyncio.Event) -> None:
        """Until ``wake_at``, a new generation of the spec or the §20.6 flag (each watch event sets ``wake``), or
        the daemon's stop."""
        flag = _flag(body)  # set by the grant handlers on §20.6: shown at once, like a spec change
        while True:
            wake.clear()  # before the checks: an event after them wakes the wait below
            if stopped or int(body.meta.get("generation") or 1) != generation or _flag(body) != flag:
                return
            left = safety if wake_at is None else (wake_at - _now()).total_seconds()
            if left <= 0:
                return
            await _woken(wake, stopped, min(left, safety))
