"""E-mail texts of the registration and integration lifecycle (§16–17), in Kazakh and Russian.

Every message has both languages in one plain-text (UTF-8) body, Kazakh first, then Russian, then
English for foreign staff; the subject names the event in Kazakh and Russian and the object.
Owners get the decision, the reason and the next step; the Administrator's mailbox gets the review
reminder and the overdue notice with the commands that decide.

A message is rendered from an outbox entry's ``template`` and ``params`` alone (see
``tksh.notify.outbox``): rendering at send time needs nothing else, so a message re-sent after a
restart is the same message. ``params`` hold no personal data: object names, dates (RFC 3339, UTC;
shown in the ``timezone`` param's local time, Asia/Almaty by default), agreement numbers, reasons,
and the refused application's problems as encoded lines (:meth:`Problem.encode`). The frame (the
subject, masked once more, the three languages, the signature) is :func:`tksh.notify.texts.compose`.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Mapping

from tksh.notify.texts import Params, Rendered, Texts, compose
from tksh.registration.completeness import Problem

__all__ = [
    "AGREEMENT_EXPIRING",
    "APPROVED",
    "INTEGRATED",
    "REFUSED",
    "REJECTED",
    "REVIEW_OVERDUE",
    "REVIEW_REMINDER",
    "SUSPENDED",
    "TEMPLATES",
    "TEST_FAILED",
    "Rendered",
    "render",
    "ru_days",
]

APPROVED = "registration-approved"
REFUSED = "registration-refused"
REJECTED = "registration-rejected"
TEST_FAILED = "integration-test-failed"
INTEGRATED = "integration-completed"
AGREEMENT_EXPIRING = "agreement-expiring"
SUSPENDED = "integration-suspended"
REVIEW_REMINDER = "review-reminder"
REVIEW_OVERDUE = "review-overdue"


def ru_days(n: int) -> str:
    """``n`` days in Russian with the right plural: 1 день, 2 дня, 5 дней, 21 день, 11 дней."""
    if n % 10 == 1 and n % 100 != 11:
        return f"{n} день"
    if 2 <= n % 10 <= 4 and not 12 <= n % 100 <= 14:
        return f"{n} дня"
    return f"{n} дней"


class _P(Params):
    """A registration message's params: the object, the term's last day, the commands, the problems."""

    @property
    def object(self) -> str:
        namespace, name = self.params.get("namespace"), self.params.get("name") or "?"
        return f"{namespace}/{name}" if namespace else name

    def last_day(self, key: str) -> str:
        """The local last day of a term that ends (exclusively) at the instant under ``key``: ``31.03.2026``."""
        moment = self.moment(key)
        return "—" if moment is None else f"{moment - datetime.timedelta(microseconds=1):%d.%m.%Y}"

    def commands(self) -> str:
        name, ns = self.params.get("name") or "NAME", self.params.get("namespace")
        where = f" -n {ns}" if ns else ""
        return f"  kubectl tksh approve {name}{where}\n  kubectl tksh reject {name}{where} --reason \"...\""

    def problems(self, lang: str) -> str:
        lines = [f"  - {Problem.decode(line).text(lang)}" for line in (self.params.get("problems") or "").splitlines()
                 if line.strip()]
        more = int(self.params.get("more") or 0)
        if more:
            lines.append({"kk": f"  - … және тағы {more}", "ru": f"  - … и ещё {more}", "en": f"  - … and {more} more"}
                         [lang])
        return "\n".join(lines) or "  —"


def _approved(p: _P) -> Texts:
    o, when = p.object, p.time("decidedAt")
    return {
        "kk": ("Өтінім мақұлданды",
               f"«{o}» цифрлық объектісін тіркеу және интеграциялау туралы өтініміңіз мақұлданды ({when}).\n\n"
               "Келесі қадам: Әкімшімен интеграция туралы шарт жасасыңыз. Шарт тіркелгеннен кейін цифрлық "
               "объектінің интеграциялық тестілеуі басталады; ол сәтті өткенде объект орталық жүйеге "
               "интеграцияланады (Қағидалардың 17-тармағы)."),
        "ru": ("Заявка одобрена",
               f"Ваша заявка на регистрацию и интеграцию цифрового объекта «{o}» одобрена ({when}).\n\n"
               "Следующий шаг: заключите с Администратором договор об интеграции. После регистрации договора "
               "начнётся интеграционное тестирование цифрового объекта; после его успешного прохождения объект "
               "будет интегрирован с центральной системой (пункт 17 Правил)."),
        "en": ("Application approved",
               f"Your application for registration and integration of the digital object \"{o}\" is approved "
               f"({when}).\n\nNext step: conclude the integration agreement with the Administrator. Once it is "
               "recorded, the integration test starts; when it passes, the object is integrated (§17)."),
    }


def _refused(p: _P) -> Texts:
    o = p.object
    return {
        "kk": ("Өтінім толық емес, қабылданбады",
               f"«{o}» цифрлық объектісін тіркеу және интеграциялау туралы өтінім қабылданбады: өтінімдегі "
               "мәліметтер толық емес (Қағидалардың 16-тармағы).\n\nТолтырылмаған немесе қате тармақтар:\n"
               f"{p.problems('kk')}\n\n"
               "Келесі қадам: көрсетілген тармақтарды түзетіп, өтінімді жаңартыңыз. Түзетілген өтінім "
               "автоматты түрде қайта тексеріліп, қайта беріледі; қарау мерзімі жаңадан басталады."),
        "ru": ("Заявка неполная, отказано",
               f"В регистрации и интеграции цифрового объекта «{o}» отказано: сведения в заявке неполные "
               "(пункт 16 Правил).\n\nНе заполнено или указано неверно:\n"
               f"{p.problems('ru')}\n\n"
               "Следующий шаг: исправьте указанные пункты и обновите заявку. Исправленная заявка будет "
               "автоматически проверена и подана заново; срок рассмотрения начнётся заново."),
        "en": ("Application incomplete, refused",
               f"The application for registration and integration of \"{o}\" is refused: its information is "
               f"incomplete (§16).\n\nMissing or invalid:\n{p.problems('en')}\n\n"
               "Next step: fix these items and update the application. It is re-checked and re-submitted "
               "automatically; the review term starts again."),
    }


def _rejected(p: _P) -> Texts:
    o, when, reason = p.object, p.time("decidedAt"), p["reason"]
    return {
        "kk": ("Өтінім қабылданбады",
               f"Әкімші «{o}» цифрлық объектісін тіркеу және интеграциялау туралы өтініміңізден бас тартты "
               f"({when}).\n\nСебебі: {reason}\n\n"
               "Келесі қадам: себепті жойып, жаңа өтінім беріңіз немесе түсініктеме алу үшін Әкімшіге "
               "хабарласыңыз."),
        "ru": ("В заявке отказано",
               f"Администратор отказал в регистрации и интеграции цифрового объекта «{o}» ({when}).\n\n"
               f"Причина: {reason}\n\n"
               "Следующий шаг: устраните причину и подайте новую заявку либо обратитесь к Администратору "
               "за разъяснениями."),
        "en": ("Application rejected",
               f"The Administrator rejected the application for \"{o}\" ({when}).\n\nReason: {reason}\n\n"
               "Next step: remove the reason and submit a new application, or contact the Administrator."),
    }


def _test_failed(p: _P) -> Texts:
    o, detail, probes = p.object, p["detail"], p["probes"]
    return {
        "kk": ("Интеграциялық тест өтпеді",
               f"«{o}» цифрлық объектісінің интеграциялық тестілеуі сәтсіз аяқталды ({p.time('testedAt')}).\n\n"
               f"Не өтпеді: {detail}\n\n"
               "Келесі қадам: интеграция нүктесінің жұмысын тексеріп, ақауды жойыңыз. Тест автоматты түрде "
               f"қайталанады; объект қатарынан {probes} тексеруден сәтті өткенде интеграцияланады."),
        "ru": ("Интеграционный тест не пройден",
               f"Интеграционное тестирование цифрового объекта «{o}» не пройдено ({p.time('testedAt')}).\n\n"
               f"Что не прошло: {detail}\n\n"
               "Следующий шаг: проверьте работу точки интеграции и устраните неисправность. Тест повторяется "
               f"автоматически; объект будет интегрирован, когда пройдёт {probes} проверок подряд."),
        "en": ("Integration test failed",
               f"The integration test of \"{o}\" failed ({p.time('testedAt')}).\n\nWhat failed: {detail}\n\n"
               f"Next step: check the integration endpoint and fix the fault. The test is repeated automatically; "
               f"the object is integrated once {probes} probes in a row pass."),
    }


def _integrated(p: _P) -> Texts:
    o, when = p.object, p.time("integratedAt")
    return {
        "kk": ("Цифрлық объект интеграцияланды",
               f"«{o}» цифрлық объектісі интеграциялық тестілеуден сәтті өтіп, орталық жүйеге интеграцияланды "
               f"({when}).\n\nКелесі қадам: қосымша әрекет қажет емес. Объектінің қолжетімділігі тәулік бойы "
               "үздіксіз бақыланады (Қағидалардың 33–34-тармақтары); интеграция нүктесін әрдайым қолжетімді "
               "ұстаңыз."),
        "ru": ("Цифровой объект интегрирован",
               f"Цифровой объект «{o}» успешно прошёл интеграционное тестирование и интегрирован с центральной "
               f"системой ({when}).\n\nСледующий шаг: дополнительных действий не требуется. Доступность объекта "
               "контролируется непрерывно и круглосуточно (пункты 33–34 Правил); поддерживайте точку интеграции "
               "доступной."),
        "en": ("Digital object integrated",
               f"\"{o}\" passed the integration test and is integrated with the central system ({when}).\n\n"
               "Next step: nothing more is needed. Its availability is monitored continuously (§33–34); keep "
               "the integration endpoint available."),
    }


def _expiring(p: _P) -> Texts:
    o, number, until = p.object, p["agreement"], p.time("validUntil")
    days = int(p.params.get("days") or 0)
    return {
        "kk": (f"Интеграция туралы шарттың мерзімі {days} күннен кейін аяқталады",
               f"«{o}» цифрлық объектісіне қатысты № {number} интеграция туралы шарттың қолданылу мерзімі "
               f"{until} аяқталады ({days} күн қалды).\n\n"
               "Келесі қадам: шартты мерзімі аяқталғанға дейін ұзартыңыз немесе жаңасын жасасыңыз. Әйтпесе "
               "мерзім аяқталған сәтте интеграция тоқтатыла тұрады."),
        "ru": (f"Срок договора об интеграции истекает через {ru_days(days)}",
               f"Срок действия договора об интеграции № {number} для цифрового объекта «{o}» истекает {until} "
               f"(осталось {ru_days(days)}).\n\n"
               "Следующий шаг: продлите договор или заключите новый до истечения срока. Иначе в момент "
               "истечения срока интеграция будет приостановлена."),
        "en": (f"Integration agreement expires in {days} days",
               f"Integration agreement No. {number} for \"{o}\" expires {until} ({days} days left).\n\n"
               "Next step: renew it or conclude a new one before then; otherwise the integration is suspended "
               "when it expires."),
    }


def _suspended(p: _P) -> Texts:
    o, number, until = p.object, p["agreement"], p.time("validUntil")
    withdrawn = p.params.get("reason") == "AgreementWithdrawn"
    why = {
        "kk": "интеграция туралы шарт алынып тасталды" if withdrawn
        else f"№ {number} интеграция туралы шарттың мерзімі аяқталды ({until})",
        "ru": "договор об интеграции отозван" if withdrawn
        else f"истёк срок действия договора об интеграции № {number} ({until})",
        "en": "the integration agreement was withdrawn" if withdrawn
        else f"integration agreement No. {number} expired ({until})",
    }
    return {
        "kk": ("Интеграция тоқтатыла тұрды",
               f"«{o}» цифрлық объектісінің орталық жүйемен интеграциясы тоқтатыла тұрды: {why['kk']}.\n\n"
               "Келесі қадам: Әкімшімен шартты ұзартыңыз немесе жаңа шарт жасасыңыз. Жаңа шарт тіркелгеннен "
               "кейін интеграциялық тест қайта өтеді және интеграция қалпына келтіріледі."),
        "ru": ("Интеграция приостановлена",
               f"Интеграция цифрового объекта «{o}» с центральной системой приостановлена: {why['ru']}.\n\n"
               "Следующий шаг: продлите договор с Администратором или заключите новый. После регистрации "
               "договора интеграционный тест будет пройден заново и интеграция возобновится."),
        "en": ("Integration suspended",
               f"The integration of \"{o}\" is suspended: {why['en']}.\n\n"
               "Next step: renew the agreement or conclude a new one; the integration test then runs again "
               "and the integration resumes."),
    }


def _reminder(p: _P) -> Texts:
    o, submitted, last = p.object, p.time("submittedAt"), p.last_day("reviewDeadline")
    return {
        "kk": (f"Еске салу: өтінімді қарау мерзімі {last} аяқталады",
               f"«{o}» өтінімі {submitted} берілген және әлі қаралған жоқ. Қағидалардың 16-тармағы бойынша "
               f"қарау мерзімі 5 жұмыс күні; ол {last} күннің соңында аяқталады.\n\n"
               f"Келесі қадам: шешім қабылдаңыз:\n{p.commands()}"),
        "ru": (f"Напоминание: срок рассмотрения заявки истекает {last}",
               f"Заявка «{o}» подана {submitted} и ещё не рассмотрена. По пункту 16 Правил срок рассмотрения "
               f"— 5 рабочих дней; он истекает в конце дня {last}.\n\n"
               f"Следующий шаг: примите решение:\n{p.commands()}"),
        "en": (f"Reminder: the review of an application is due by {last}",
               f"The application \"{o}\" was submitted {submitted} and awaits a decision. The §16 term of 5 "
               f"working days ends at the end of {last}.\n\nNext step: decide:\n{p.commands()}"),
    }


def _overdue(p: _P) -> Texts:
    o, last = p.object, p.last_day("reviewDeadline")
    return {
        "kk": ("Өтінімді қарау мерзімі өтіп кетті",
               f"«{o}» өтінімін қарау мерзімі {last} күннің соңында аяқталды, бірақ шешім әлі жоқ "
               "(Қағидалардың 16-тармағы: 5 жұмыс күні).\n\n"
               f"Келесі қадам: шешімді дереу қабылдаңыз:\n{p.commands()}"),
        "ru": ("Срок рассмотрения заявки истёк",
               f"Срок рассмотрения заявки «{o}» истёк в конце дня {last}, а решения всё ещё нет "
               "(пункт 16 Правил: 5 рабочих дней).\n\n"
               f"Следующий шаг: примите решение незамедлительно:\n{p.commands()}"),
        "en": ("Review of an application is overdue",
               f"The review term of \"{o}\" ended at the end of {last} without a decision (§16: 5 working days)."
               f"\n\nNext step: decide now:\n{p.commands()}"),
    }


_TEMPLATES: dict[str, Callable[[_P], Texts]] = {
    APPROVED: _approved,
    REFUSED: _refused,
    REJECTED: _rejected,
    TEST_FAILED: _test_failed,
    INTEGRATED: _integrated,
    AGREEMENT_EXPIRING: _expiring,
    SUSPENDED: _suspended,
    REVIEW_REMINDER: _reminder,
    REVIEW_OVERDUE: _overdue,
}
TEMPLATES: frozenset[str] = frozenset(_TEMPLATES)
"""The template ids this module renders."""


def render(template: str, params: Mapping[str, str] | None = None) -> Rendered:
    """The message for an outbox entry's ``template`` and ``params``; ``KeyError`` for an unknown template."""
    p = _P(params or {})
    return compose(_TEMPLATES[template](p), p.object)
