"""The registration lifecycle's clocks, end to end: the §16 review term (reminder on the 4th working day,
overdue after the 5th) and the §17 agreement's end (notices 30 and 7 days before, then suspension).

The review term is counted from ``status.submittedAt``, so an application "submitted days ago" is one
whose status an earlier operator wrote: the status is patched before the operator starts. Dates come
from the project's calendar (Kazakhstan's working days, holidays included), so the tests hold on any
day of the year. The agreement's dates are relative to now. Real SMTP (MailSink), real HTTP target,
both API server backends.
"""

from __future__ import annotations

import collections
import datetime
from collections.abc import Awaitable, Callable
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest

from tests.integration.backends import Backend, running
from tests.integration.registration_helpers import (
    ADMIN_EMAIL,
    OWNER_BIN,
    OWNER_EMAIL,
    application,
    condition,
    config_for,
    event_type,
    kubectl_env,
    kubectl_tksh,
    make_namespace,
    patch_status,
    phase,
    reasons,
    to_admin,
    to_owner,
)
from tksh.conditions import rfc3339
from tksh.notify import IDEMPOTENCY_HEADER
from tksh.registration.calendar import WorkingCalendar, calendar_for
from tksh.run import OperatorHandle
from tksh.sandbox.mailsink import MailSink, ReceivedMail
from tksh.sandbox.targets import HTTPTarget

Wait = Callable[..., Awaitable[Any]]
UTC = datetime.UTC
DAY = datetime.timedelta(days=1)
TIMEZONE = "Asia/Almaty"
NUMBER = "ЦЖ-2026/0042"
LEAKS = (OWNER_EMAIL, OWNER_BIN, "Достық", ADMIN_EMAIL, "status.", "spec.", "None", "Traceback", "{", "}")
"""Nothing of these may appear in a message: personal data, field paths, Python internals."""


@pytest.fixture
async def ns(cluster: Backend, unique: str) -> str:
    return await make_namespace(cluster, unique)


@pytest.fixture
def cal() -> WorkingCalendar:
    return calendar_for(TIMEZONE)


def at_ten(cal: WorkingCalendar, day: datetime.date) -> datetime.datetime:
    """10:00 local (the Administrator's timezone) on ``day``, in UTC."""
    return datetime.datetime.combine(day, datetime.time(10), tzinfo=cal.tz).astimezone(UTC)


def submitted_working_days_ago(cal: WorkingCalendar, now: datetime.datetime, days: int) -> datetime.datetime:
    """A submission with ``days`` working days (Kazakhstan's calendar) begun since, up to today."""
    today = day = cal.local_date(now)
    while cal.working_days_between(day, today) < days:
        day -= DAY
    return at_ten(cal, day)


def submitted_in_reminder_window(cal: WorkingCalendar, now: datetime.datetime) -> datetime.datetime:
    """The latest submission whose 4th working day has begun by ``now`` while its deadline has not passed."""
    today = cal.local_date(now)
    for back in range(60):
        submitted = at_ten(cal, today - back * DAY)
        if cal.reminder_due(submitted) <= now < cal.review_deadline(submitted):
            return submitted
    raise AssertionError(f"no submission day puts {now} in the reminder window")  # pragma: no cover


async def submitted_earlier(cluster: Backend, name: str, ns: str, submitted: datetime.datetime,
                            deadline: datetime.datetime) -> None:
    """An application an earlier operator put under review at ``submitted`` (its status written so)."""
    await cluster.apply(application(name, ns))
    await patch_status(cluster, name, ns, {"phase": "UnderReview", "submittedAt": rfc3339(submitted),
                                           "reviewDeadline": rfc3339(deadline)})


def template(name: str) -> Callable[[ReceivedMail], bool]:
    return lambda m: m.message["X-TKSH-Template"] == name


def sent(mail: MailSink, name: str) -> list[ReceivedMail]:
    return [m for m in mail.received if template(name)(m)]


def no_leaks(message: ReceivedMail, *more: str) -> None:
    for text in (*LEAKS, *more):
        assert text not in message.text and text not in message.subject, (text, message.subject, message.text)


async def scrape(handle: OperatorHandle) -> dict[str, float]:
    """The operator's ``/metrics`` over HTTP: sample lines without labels, by name."""
    async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{handle.ops_port}/metrics") as response:
        assert response.status == 200
        text = await response.text()
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#") and "{" not in line:
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    return samples


async def all_delivered(cluster: Backend, name: str, ns: str) -> list[dict[str, Any]]:
    obj = await cluster.get("DigitalObject", name, ns)
    assert obj is not None
    outbox: list[dict[str, Any]] = obj["status"]["outbox"]
    assert outbox and all(e["state"] == "Delivered" for e in outbox), outbox
    return outbox


def once_each(mail: MailSink, outbox: list[dict[str, Any]]) -> collections.Counter[str]:
    """Every outbox entry was received exactly once (by idempotency key and by Message-ID); templates counted."""
    keys = collections.Counter(str(m.message[IDEMPOTENCY_HEADER]) for m in mail.received)
    ids = collections.Counter(str(m.message["Message-ID"]) for m in mail.received)
    assert set(keys) == {e["id"] for e in outbox}, (keys, outbox)
    assert set(keys.values()) == {1} and set(ids.values()) == {1}, (keys, ids)
    return collections.Counter(str(m.message["X-TKSH-Template"]) for m in mail.received)


async def notice(cluster: Backend, ns: str, expiring: ReceivedMail) -> str:
    """Which expiry notice (30 or 7 days) ``expiring`` is, by its outbox entry, and the Warning Event that says so."""
    obj = await cluster.get("DigitalObject", "osi", ns)
    assert obj is not None
    entries = [e for e in obj["status"]["outbox"] if e["id"] == expiring.message[IDEMPOTENCY_HEADER]]
    assert len(entries) == 1, obj["status"]["outbox"]
    entry = entries[0]
    kind = str(entry["params"]["notice"])
    said = [e for e in await cluster.events("osi") if e["reason"] == "AgreementExpiring"
            and (e.get("involvedObject") or {}).get("namespace") == ns and f"the {kind}-day notice" in e["message"]]
    assert [e["type"] for e in said] == ["Warning"], said
    return kind


async def test_review_past_its_deadline_is_overdue_flagged_mailed_and_counted(
    cluster: Backend, mail: MailSink, ns: str, cal: WorkingCalendar, wait_until: Wait, tmp_path: Any
) -> None:
    now = datetime.datetime.now(UTC)
    submitted = submitted_working_days_ago(cal, now, 9)
    deadline = cal.review_deadline(submitted)
    assert deadline <= now
    await submitted_earlier(cluster, "late", ns, submitted, deadline)
    await cluster.apply(application("fresh", ns))  # submitted now: well within its term

    async with running(config_for(cluster, mail.port, namespaces=(ns,))) as handle:

        async def overdue() -> dict[str, Any]:
            status = await phase(cluster, "late", ns, "UnderReview")
            flag = condition(status, "ReviewOverdue")
            assert (flag["status"], flag["reason"]) == ("True", "ReviewDeadlinePassed"), flag
            return status

        status = await wait_until(overdue)
        # the stored term is kept: a restarted operator does not give the Administrator a new one
        assert (status["submittedAt"], status["reviewDeadline"]) == (rfc3339(submitted), rfc3339(deadline))
        last_day = f"{cal.last_day_of_term(deadline):%Y-%m-%d}"
        assert last_day in condition(status, "ReviewOverdue")["message"]
        assert "(overdue)" in status["message"]
        assert await wait_until(lambda: event_type(cluster, "late", "ReviewOverdue", ns)) == "Warning"

        told = await mail.wait_for(to_admin("review-overdue"), timeout=30)
        assert "Өтінімді қарау мерзімі өтіп кетті" in told.subject and "Срок рассмотрения заявки истёк" in told.subject
        assert f"{ns}/late" in told.subject
        day = f"{cal.last_day_of_term(deadline):%d.%m.%Y}"
        assert f"{day} күннің соңында аяқталды" in told.text  # Kazakh
        assert f"истёк в конце дня {day}" in told.text  # Russian
        assert f"kubectl tksh approve late -n {ns}" in told.text
        no_leaks(told)

        fresh = await wait_until(lambda: phase(cluster, "fresh", ns, "UnderReview"))
        assert condition(fresh, "ReviewOverdue")["reason"] == "WithinDeadline"

        async def counted() -> None:
            assert handle.metrics.value("tksh_applications", {"phase": "UnderReview"}) == 2
            assert handle.metrics.value("tksh_applications_overdue") == 1
            assert (await scrape(handle))["tksh_applications_overdue"] == 1

        await wait_until(counted)

        # the Administrator's queue: the overdue application first, marked
        code, out, err = await kubectl_tksh(kubectl_env(cluster, tmp_path), "status", "-n", ns)
        assert code == 0, err
        rows = [line.split() for line in out.splitlines()[1:]]
        assert [(r[0], r[2], r[3], r[4]) for r in rows[:1]] == [("late", "UnderReview", rfc3339(deadline), "yes")]
        assert [(r[0], r[4]) for r in rows[1:]] == [("fresh", "no")]
        outbox = await wait_until(lambda: all_delivered(cluster, "late", ns))
    assert [e["template"] for e in outbox] == ["review-overdue"]
    assert once_each(mail, outbox) == {"review-overdue": 1}  # no reminder once the term is over


async def test_review_on_its_fourth_working_day_reminds_the_administrator(
    cluster: Backend, mail: MailSink, ns: str, cal: WorkingCalendar, wait_until: Wait
) -> None:
    now = datetime.datetime.now(UTC)
    submitted = submitted_in_reminder_window(cal, now)
    deadline = cal.review_deadline(submitted)
    await submitted_earlier(cluster, "due", ns, submitted, deadline)

    async with running(config_for(cluster, mail.port, namespaces=(ns,))) as handle:
        reminder = await mail.wait_for(to_admin("review-reminder"), timeout=30)
        day = f"{cal.last_day_of_term(deadline):%d.%m.%Y}"
        assert f"Еске салу: өтінімді қарау мерзімі {day} аяқталады" in reminder.subject
        assert f"Напоминание: срок рассмотрения заявки истекает {day}" in reminder.subject
        local_submission = submitted.astimezone(ZoneInfo(TIMEZONE))
        assert f"{local_submission:%d.%m.%Y %H:%M} ({TIMEZONE})" in reminder.text
        assert "5 жұмыс күні" in reminder.text and "5 рабочих дней" in reminder.text
        assert f"kubectl tksh reject due -n {ns} --reason" in reminder.text
        no_leaks(reminder)

        status = await phase(cluster, "due", ns, "UnderReview")
        flag = condition(status, "ReviewOverdue")
        assert (flag["status"], flag["reason"]) == ("False", "WithinDeadline")
        assert status["reviewDeadline"] == rfc3339(deadline)

        async def counted() -> None:
            assert handle.metrics.value("tksh_applications", {"phase": "UnderReview"}) == 1
            assert handle.metrics.value("tksh_applications_overdue") == 0

        await wait_until(counted)
        outbox = await wait_until(lambda: all_delivered(cluster, "due", ns))
    assert [e["template"] for e in outbox] == ["review-reminder"]
    assert once_each(mail, outbox) == {"review-reminder": 1}
    assert "ReviewOverdue" not in await reasons(cluster, "due", ns)


async def test_agreement_running_out_warns_the_owner_at_30_and_7_days_then_suspends(
    cluster: Backend, mail: MailSink, ns: str, wait_until: Wait
) -> None:
    now = datetime.datetime.now(UTC)
    review = {"decision": "Approved", "reviewer": "aigerim"}
    almaty = ZoneInfo(TIMEZONE)

    def agreement(until: datetime.datetime) -> dict[str, str]:
        return {"number": NUMBER, "signedAt": rfc3339(now - 30 * DAY), "validUntil": rfc3339(until)}

    def expiring(m: ReceivedMail) -> bool:
        return to_owner("agreement-expiring")(m)

    async with HTTPTarget("healthy") as target, running(config_for(cluster, mail.port, namespaces=(ns,))) as handle:
        # 20 days left: within the 30-day notice, not yet the 7-day one
        in_20_days = now + 20 * DAY
        await cluster.apply(application("osi", ns, target.url, review=review, agreement=agreement(in_20_days)))
        status = await wait_until(lambda: phase(cluster, "osi", ns, "Integrated"), timeout=60)
        first = await mail.wait_for(expiring, timeout=30)
        assert NUMBER in first.text and NUMBER in condition(status, "AgreementSigned")["message"]
        assert "мерзімі 20 күннен кейін аяқталады" in first.subject and "истекает через 20 дней" in first.subject
        assert f"{in_20_days.astimezone(almaty):%d.%m.%Y %H:%M} ({TIMEZONE})" in first.text
        assert "20 күн қалды" in first.text and "осталось 20 дней" in first.text
        no_leaks(first)
        assert await wait_until(lambda: notice(cluster, ns, first)) == "30"
        await wait_until(lambda: all_delivered(cluster, "osi", ns))
        assert len(sent(mail, "agreement-expiring")) == 1

        # 5 days left: the 7-day notice, once
        in_5_days = now + 5 * DAY
        await cluster.apply(application("osi", ns, target.url, review=review, agreement=agreement(in_5_days)))
        second = await mail.wait_for(lambda m: expiring(m) and m is not first, timeout=30)
        assert second.message[IDEMPOTENCY_HEADER] != first.message[IDEMPOTENCY_HEADER]
        assert "мерзімі 5 күннен кейін аяқталады" in second.subject and "истекает через 5 дней" in second.subject
        assert NUMBER in second.text and "5 күн қалды" in second.text and "осталось 5 дней" in second.text
        assert f"{in_5_days.astimezone(almaty):%d.%m.%Y %H:%M} ({TIMEZONE})" in second.text
        no_leaks(second)
        assert await wait_until(lambda: notice(cluster, ns, second)) == "7"
        status = await phase(cluster, "osi", ns, "Integrated")  # a shorter agreement is still in effect
        assert condition(status, "Ready")["status"] == "True"

        # ended an hour ago: the integration is suspended, and the owner told why
        ended = now - datetime.timedelta(hours=1)
        await cluster.apply(application("osi", ns, target.url, review=review, agreement=agreement(ended)))
        status = await wait_until(lambda: phase(cluster, "osi", ns, "Suspended"))
        signed = condition(status, "AgreementSigned")
        assert (signed["status"], signed["reason"]) == ("False", "AgreementExpired")
        assert NUMBER in signed["message"] and rfc3339(ended) in signed["message"]
        ready = condition(status, "Ready")
        assert (ready["status"], ready["reason"]) == ("False", "Suspended")
        assert await wait_until(lambda: event_type(cluster, "osi", "Suspended", ns)) == "Warning"
        suspended = await mail.wait_for(to_owner("integration-suspended"), timeout=30)
        assert "Интеграция тоқтатыла тұрды" in suspended.subject and "Интеграция приостановлена" in suspended.subject
        assert f"№ {NUMBER} интеграция туралы шарттың мерзімі аяқталды" in suspended.text
        assert f"истёк срок действия договора об интеграции № {NUMBER}" in suspended.text
        assert f"{ended.astimezone(almaty):%d.%m.%Y %H:%M} ({TIMEZONE})" in suspended.text
        no_leaks(suspended, "AgreementExpired")

        outbox = await wait_until(lambda: all_delivered(cluster, "osi", ns))
        assert handle.metrics.value("tksh_applications", {"phase": "Suspended"}) == 1
    assert once_each(mail, outbox) == {"registration-approved": 1, "integration-completed": 1,
                                       "agreement-expiring": 2, "integration-suspended": 1}
