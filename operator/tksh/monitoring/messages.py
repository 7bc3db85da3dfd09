"""E-mail texts of the monitoring notices (§34): outage, reminders, breach, recovery, in Kazakh, Russian, English.

One plain-text body per message, Kazakh first, then Russian, then English, like the registration
messages (the frame is :func:`tksh.notify.texts.compose`). A message is rendered from an outbox entry's
``template`` and ``params`` alone (no personal data in them: object and incident names, times, the failure
class and the probe's short message), so a message re-sent after a restart is the same message. Times are
shown in the ``timezone`` param's local time (Asia/Almaty by default).

Two audiences: the owner of the failing digital object, and — for a central failure (§34.3,
``params["central"] == "true"``) — every owner of an integrated object, told that the central
system's component is down and their exchange with it is affected; then the Administrator's
mailbox for incidents of central components.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Final

from tksh.notify.texts import DEFAULT_TIMEZONE, Params, Rendered, Texts, compose

__all__ = ["BREACHED", "DEFAULT_TIMEZONE", "OPENED", "RECOVERED", "REMINDER", "TEMPLATES", "Rendered", "render",
           "template_for"]

OPENED: Final = "incident-opened"
REMINDER: Final = "incident-reminder-{minutes}"
BREACHED: Final = "incident-breached"
RECOVERED: Final = "incident-recovered"

_FAILURES = {
    "dns": ("атауы анықталмады", "имя не разрешается", "name not resolved"),
    "connect": ("қосылу мүмкін емес", "нет соединения", "connection failed"),
    "tls": ("TLS/сертификат қатесі", "ошибка TLS/сертификата", "TLS or certificate failure"),
    "timeout": ("жауап уақытында келмеді", "нет ответа вовремя", "no answer in time"),
    "http_status": ("күтпеген HTTP мәртебесі", "неожиданный HTTP-статус", "unexpected HTTP status"),
    "body": ("күтпеген жауап", "неожиданный ответ", "unexpected response"),
    "unknown": ("белгісіз қате", "неизвестная ошибка", "unknown failure"),
}


def template_for(transition: str) -> str:
    """The template of an incident transition: ``Reminder30`` -> ``incident-reminder-30``."""
    if transition.startswith("Reminder"):
        return REMINDER.format(minutes=transition.removeprefix("Reminder"))
    return {"Opened": OPENED, "Breached": BREACHED, "Recovered": RECOVERED}[transition]


class _P(Params):
    """An incident message's params: the target, the failure, the duration."""

    @property
    def central(self) -> bool:
        return self.params.get("targetKind") == "CentralComponent"

    @property
    def fanout(self) -> bool:
        return self.params.get("central") == "true"

    @property
    def target(self) -> str:
        namespace, name = self.params.get("targetNamespace"), self.params.get("targetName") or "?"
        title = self.params.get("targetTitle")
        shown = f"{namespace}/{name}" if namespace else name
        return f"{shown} ({title})" if title else shown

    def failure(self, lang: int) -> str:
        words = _FAILURES.get(self.params.get("failureClass") or "unknown", _FAILURES["unknown"])[lang]
        message = self.params.get("failureMessage")
        return f"{words} ({message})" if message else words

    def duration(self, lang: int) -> str:
        seconds = int(self.params.get("durationSeconds") or 0)
        hours, rest = divmod(seconds, 3600)
        minutes = rest // 60
        units = (("сағ", "мин"), ("ч", "мин"), ("h", "min"))[lang]
        return f"{hours} {units[0]} {minutes} {units[1]}" if hours else f"{minutes} {units[1]} {seconds % 60} s"


def _what(p: _P) -> dict[str, str]:
    """Who is down, as the first sentence says it."""
    if p.central:
        return {"kk": f"Орталық жүйенің «{p.target}» компоненті", "ru": f"Компонент центральной системы «{p.target}»",
                "en": f"The central system's component \"{p.target}\""}
    return {"kk": f"«{p.target}» цифрлық объектісі", "ru": f"Цифровой объект «{p.target}»",
            "en": f"The digital object \"{p.target}\""}


def _opened(p: _P) -> Texts:
    w, start, deadline = _what(p), p.time("startedAt"), p.time("deadline")
    if p.fanout:
        step = {
            "kk": "Сіздің цифрлық объектіңіздің орталық жүйемен деректер алмасуы уақытша мүмкін емес. Қалпына "
                  "келтіру туралы хабарлаймыз; сіз тарапынан әрекет қажет емес.",
            "ru": "Обмен данными вашего цифрового объекта с центральной системой временно невозможен. Мы сообщим "
                  "о восстановлении; с вашей стороны действий не требуется.",
            "en": "Your digital object's data exchange with the central system is interrupted. We will tell you "
                  "when it is restored; nothing is needed from you.",
        }
    else:
        step = {
            "kk": "Келесі қадам: жұмыс қабілетін дереу қалпына келтіріңіз; қалпына келтіру мерзімі — бір сағат "
                  "(Қағидалардың 34-тармағы).",
            "ru": "Следующий шаг: незамедлительно восстановите работоспособность; срок восстановления — один час "
                  "(пункт 34 Правил).",
            "en": "Next step: restore it at once; the recovery term is one hour (§34).",
        }
    return {
        "kk": ("Істен шығу анықталды", f"{w['kk']} {start} бастап қолжетімсіз: {p.failure(0)}.\n"
               f"Инцидент: {p['incident']}. Қалпына келтіру мерзімі: {deadline}.\n\n{step['kk']}"),
        "ru": ("Обнаружен сбой", f"{w['ru']} недоступен с {start}: {p.failure(1)}.\n"
               f"Инцидент: {p['incident']}. Срок восстановления: {deadline}.\n\n{step['ru']}"),
        "en": ("Outage detected", f"{w['en']} has been unavailable since {start}: {p.failure(2)}.\n"
               f"Incident: {p['incident']}. Recovery deadline: {deadline}.\n\n{step['en']}"),
    }


def _reminder(p: _P) -> Texts:
    w, minutes, deadline = _what(p), p["minutes"], p.time("deadline")
    return {
        "kk": (f"Еске салу: {minutes} минут бойы қолжетімсіз",
               f"{w['kk']} {p.time('startedAt')} бастап әлі қолжетімсіз ({minutes} минут). Инцидент: "
               f"{p['incident']}.\n\nКелесі қадам: жұмыс қабілетін {deadline} дейін қалпына келтіріңіз."),
        "ru": (f"Напоминание: недоступен {minutes} минут",
               f"{w['ru']} всё ещё недоступен с {p.time('startedAt')} ({minutes} минут). Инцидент: "
               f"{p['incident']}.\n\nСледующий шаг: восстановите работоспособность до {deadline}."),
        "en": (f"Reminder: down for {minutes} minutes",
               f"{w['en']} is still unavailable since {p.time('startedAt')} ({minutes} minutes). Incident: "
               f"{p['incident']}.\n\nNext step: restore it by {deadline}."),
    }


def _breached(p: _P) -> Texts:
    w, deadline = _what(p), p.time("deadline")
    return {
        "kk": ("Қалпына келтірудің бір сағаттық мерзімі бұзылды",
               f"{w['kk']} {deadline} дейін қалпына келтірілмеді: Қағидалардың 34-тармағындағы бір сағаттық "
               f"мерзім бұзылды. Инцидент: {p['incident']}.\n\nКелесі қадам: жұмыс қабілетін дереу қалпына "
               "келтіріңіз; бұзушылық тіркелді."),
        "ru": ("Нарушен часовой срок восстановления",
               f"{w['ru']} не восстановлен до {deadline}: часовой срок пункта 34 Правил нарушен. Инцидент: "
               f"{p['incident']}.\n\nСледующий шаг: восстановите работоспособность незамедлительно; нарушение "
               "зафиксировано."),
        "en": ("One-hour recovery term breached",
               f"{w['en']} was not restored by {deadline}: the one-hour term of §34 is breached. Incident: "
               f"{p['incident']}.\n\nNext step: restore it at once; the breach is recorded."),
    }


def _recovered(p: _P) -> Texts:
    w, met = _what(p), p.params.get("verdict") == "Met"
    verdict = (("мерзім сақталды", "срок соблюдён", "the term was met") if met
               else ("бір сағаттық мерзім бұзылды", "часовой срок нарушен", "the one-hour term was breached"))
    return {
        "kk": ("Жұмыс қабілеті қалпына келтірілді",
               f"{w['kk']} {p.time('recoveredAt')} қалпына келтірілді. Ұзақтығы: {p.duration(0)}; {verdict[0]}. "
               f"Инцидент: {p['incident']}.\n\nӘрекет қажет емес."),
        "ru": ("Работоспособность восстановлена",
               f"{w['ru']} восстановлен {p.time('recoveredAt')}. Продолжительность: {p.duration(1)}; {verdict[1]}. "
               f"Инцидент: {p['incident']}.\n\nДействий не требуется."),
        "en": ("Restored",
               f"{w['en']} was restored {p.time('recoveredAt')}. Duration: {p.duration(2)}; {verdict[2]}. "
               f"Incident: {p['incident']}.\n\nNothing more is needed."),
    }


_TEMPLATES: dict[str, Callable[[_P], Texts]] = {
    OPENED: _opened,
    **{REMINDER.format(minutes=m): _reminder for m in (15, 30, 45)},
    BREACHED: _breached,
    RECOVERED: _recovered,
}
TEMPLATES: frozenset[str] = frozenset(_TEMPLATES)


def render(template: str, params: Mapping[str, str] | None = None) -> Rendered:
    """The message for an incident outbox entry; ``KeyError`` for an unknown template."""
    p = _P(params or {})
    return compose(_TEMPLATES[template](p), p.target)
