"""The e-mails: Kazakh first, then Russian, with the decision, the reason and the next step."""

from __future__ import annotations

import re

import pytest

from tksh.registration import messages as m
from tksh.registration.completeness import Problem

BASE = {"to": "owner", "name": "osi-portal", "namespace": "housing", "timezone": "Asia/Almaty"}
PROBLEMS = "\n".join(p.encode() for p in [
    Problem("spec.owner.email", "missing"),
    Problem("spec.functions[0]", "function-unknown", ("ghost",)),
])

# template -> (params, texts that must be in the Kazakh part, in the Russian part)
CASES: dict[str, tuple[dict[str, str], list[str], list[str]]] = {
    m.APPROVED: ({"decidedAt": "2026-07-21T05:00:00Z"},
                 ["мақұлданды", "Келесі қадам", "интеграция туралы шарт", "21.07.2026 10:00"],
                 ["одобрена", "Следующий шаг", "договор об интеграции", "21.07.2026 10:00"]),
    m.REFUSED: ({"problems": PROBLEMS, "more": "0"},
                ["толық емес", "шешім жіберілетін электрондық пошта", "ghost функциясы", "Келесі қадам", "түзетіп"],
                ["неполные", "адрес электронной почты для ответа", "функции ghost нет", "Следующий шаг",
                 "исправьте"]),
    m.REJECTED: ({"reason": "дублирует существующую систему", "decidedAt": "2026-07-21T05:00:00Z"},
                 ["бас тартты", "Себебі: дублирует существующую систему", "Келесі қадам"],
                 ["отказал", "Причина: дублирует существующую систему", "Следующий шаг"]),
    m.TEST_FAILED: ({"detail": "probe 2 of 3: HTTP 503 from /healthz", "probes": "3",
                     "testedAt": "2026-07-22T05:00:00Z"},
                    ["өтпеді", "probe 2 of 3: HTTP 503 from /healthz", "Келесі қадам"],
                    ["не пройден", "Что не прошло: probe 2 of 3: HTTP 503 from /healthz", "3 проверок подряд"]),
    m.INTEGRATED: ({"integratedAt": "2026-07-22T05:00:00Z"},
                   ["интеграцияланды", "Келесі қадам"], ["интегрирован", "Следующий шаг"]),
    m.AGREEMENT_EXPIRING: ({"agreement": "ЦЖ-2026/0042", "validUntil": "2028-07-20T00:00:00Z", "days": "7"},
                           ["№ ЦЖ-2026/0042", "7 күн", "20.07.2028 05:00", "ұзартыңыз"],
                           ["№ ЦЖ-2026/0042", "7 дней", "продлите"]),
    m.SUSPENDED: ({"agreement": "ЦЖ-2026/0042", "validUntil": "2028-07-20T00:00:00Z", "reason": "AgreementExpired"},
                  ["тоқтатыла тұрды", "мерзімі аяқталды", "Келесі қадам"],
                  ["приостановлена", "истёк срок действия договора", "Следующий шаг"]),
    m.REVIEW_REMINDER: ({"submittedAt": "2026-07-21T05:00:00Z", "reviewDeadline": "2026-07-28T19:00:00Z"},
                        ["әлі қаралған жоқ", "28.07.2026", "kubectl tksh approve osi-portal -n housing"],
                        ["ещё не рассмотрена", "в конце дня 28.07.2026", "kubectl tksh reject osi-portal -n housing"]),
    m.REVIEW_OVERDUE: ({"submittedAt": "2026-07-21T05:00:00Z", "reviewDeadline": "2026-07-28T19:00:00Z"},
                       ["аяқталды, бірақ шешім әлі жоқ", "28.07.2026"],
                       ["истёк", "28.07.2026", "незамедлительно"]),
}


def test_every_template_has_a_case() -> None:
    assert set(CASES) == m.TEMPLATES


@pytest.mark.parametrize("template", sorted(CASES))
def test_kazakh_then_russian_with_the_content(template: str) -> None:
    params, kk, ru = CASES[template]
    rendered = m.render(template, BASE | params)
    kk_part, ru_part, en_part = rendered.body.split("—" * 40)
    for text in kk:
        assert text in kk_part, text
    for text in ru:
        assert text in ru_part, text
    assert "ТКШ орталық жүйесінің Әкімшісі" in kk_part and "Администратор" in ru_part and en_part.strip()
    assert re.search(r"[әіңғүұқөһ]", kk_part, re.IGNORECASE)  # Kazakh letters: not Russian twice
    # the subject: both languages, Kazakh first, and the object
    subject_kk, _, rest = rendered.subject.partition(" / ")
    assert subject_kk and rest and "housing/osi-portal" in rest
    assert rendered.body.endswith("\n") and "{" not in rendered.body


@pytest.mark.parametrize("template", sorted(CASES))
def test_no_identifier_in_subjects(template: str) -> None:
    params = CASES[template][0] | {"name": "osi-140540001231", "reason": "BIN 140540001231"}
    subject = m.render(template, BASE | params).subject
    assert "140540001231" not in subject
    assert "\n" not in subject


@pytest.mark.parametrize(
    ("template", "params", "kk", "ru"),
    [
        (m.APPROVED, {}, "Өтінім мақұлданды", "Заявка одобрена"),
        (m.REFUSED, {}, "Өтінім толық емес", "Заявка неполная"),
        (m.REVIEW_REMINDER, {"reviewDeadline": "2026-07-28T19:00:00Z"}, "Еске салу", "Напоминание"),
        (m.REVIEW_OVERDUE, {}, "мерзімі өтіп кетті", "Срок рассмотрения заявки истёк"),
        (m.AGREEMENT_EXPIRING, {"days": "30"}, "30 күннен кейін", "через 30 дней"),
    ],
)
def test_subjects(template: str, params: dict[str, str], kk: str, ru: str) -> None:
    subject = m.render(template, BASE | params).subject
    assert subject.index(kk) < subject.index(ru)


def test_refusal_says_how_many_more_items_were_left_out() -> None:
    rendered = m.render(m.REFUSED, BASE | {"problems": PROBLEMS, "more": "3"})
    assert "и ещё 3" in rendered.body and "тағы 3" in rendered.body


def test_suspension_by_withdrawal() -> None:
    rendered = m.render(m.SUSPENDED, BASE | {"agreement": "A-1", "reason": "AgreementWithdrawn"})
    assert "договор об интеграции отозван" in rendered.body and "шарт алынып тасталды" in rendered.body


@pytest.mark.parametrize(("n", "text"), [(1, "1 день"), (2, "2 дня"), (5, "5 дней"), (11, "11 дней"),
                                         (21, "21 день"), (22, "22 дня"), (30, "30 дней"), (14, "14 дней")])
def test_russian_day_plurals(n: int, text: str) -> None:
    assert m.ru_days(n) == text


def test_unknown_template() -> None:
    with pytest.raises(KeyError):
        m.render("no-such-template", BASE)


def test_missing_params_render_as_dashes_not_errors() -> None:
    rendered = m.render(m.REJECTED, {})
    assert "Причина: —" in rendered.body
