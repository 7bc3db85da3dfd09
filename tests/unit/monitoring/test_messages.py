"""The monitoring e-mails: every template in three languages, the central-failure wording, no personal data."""

from __future__ import annotations

import pytest

from tksh.monitoring.messages import TEMPLATES, render, template_for

BASE = {"incident": "heat-billing-1a2b3c4d5e", "targetKind": "DigitalObject", "targetNamespace": "housing",
        "targetName": "heat-billing", "startedAt": "2026-07-12T09:00:00Z", "deadline": "2026-07-12T10:00:00Z",
        "failureClass": "timeout", "failureMessage": "no answer within 5 s (during processing)"}


@pytest.mark.parametrize("template", sorted(TEMPLATES))
def test_every_template_speaks_kazakh_russian_and_english(template: str) -> None:
    mail = render(template, {**BASE, "minutes": "30", "recoveredAt": "2026-07-12T09:20:00Z",
                             "durationSeconds": "1200", "verdict": "Met"})
    assert mail.subject.startswith("ТКШ: ") and "housing/heat-billing" in mail.subject
    kk, ru, en = mail.body.split("—" * 40)
    assert "Әкімшісі" in kk and "Администратор" in ru and "Administrator" in en
    assert "heat-billing-1a2b3c4d5e" in mail.body or template.startswith("incident-recovered")
    assert "15:00 (Asia/Almaty)" in mail.body or "14:20 (Asia/Almaty)" in mail.body  # local time, UTC+5


def test_templates_of_transitions() -> None:
    assert [template_for(t) for t in ("Opened", "Reminder15", "Breached", "Recovered")] == [
        "incident-opened", "incident-reminder-15", "incident-breached", "incident-recovered"]
    with pytest.raises(KeyError):
        render("incident-unknown", BASE)


def test_the_owner_is_asked_to_restore_within_the_hour() -> None:
    body = render("incident-opened", BASE).body
    assert "один час" in body and "no answer in time (no answer within 5 s" in body
    assert "нет ответа вовремя" in body


def test_a_central_failure_tells_owners_their_exchange_is_affected() -> None:
    params = {**BASE, "targetKind": "CentralComponent", "targetNamespace": "", "targetName": "gateway",
              "targetTitle": "ЦЖ шлюз", "central": "true"}
    body = render("incident-opened", params).body
    assert "Компонент центральной системы «gateway (ЦЖ шлюз)»" in body
    assert "действий не требуется" in body and "nothing is needed from you" in body


def test_recovery_states_the_duration_and_the_verdict() -> None:
    late = render("incident-recovered", {**BASE, "recoveredAt": "2026-07-12T10:30:00Z", "durationSeconds": "5400",
                                         "verdict": "Breached"}).body
    assert "1 ч 30 мин" in late and "часовой срок нарушен" in late and "1 h 30 min" in late
    quick = render("incident-recovered", {**BASE, "recoveredAt": "2026-07-12T09:02:05Z",
                                          "durationSeconds": "125", "verdict": "Met"}).body
    assert "2 мин 5 s" in quick and "срок соблюдён" in quick


def test_a_subject_never_carries_an_identifier_in_clear() -> None:
    mail = render("incident-opened", {**BASE, "targetName": "osi-140540001231"})
    assert "140540001231" not in mail.subject
