"""E-mails about an access grant to the organisation it acts for (§19–22, §20), in Kazakh and Russian.

Two templates: :data:`ACTIVATED` (the access took effect: who, until when; if the organisation did not
authorise it, it tells the Administrator) and :data:`TERMINATED` (the §20 ground with its title from
:attr:`TerminationReason.titles`, when, by whom, the note, the grant a cascade came from, and the next step:
a terminated grant is never resumed, a new grant is applied for). Kazakh first, then Russian, then English.

As in :mod:`tksh.registration.messages`, a message is rendered from the outbox entry's ``template`` and
``params`` alone, in the frame of :func:`tksh.notify.texts.compose`; params hold no personal data (grant names,
the subject's opaque id, agreement numbers, instants, the ground; ``by`` and ``note`` are masked when enqueued).
The subject line carries only the grant's namespace/name (a DNS name: no line breaks, nothing a person typed),
masked once more.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from tksh.notify.texts import Params, Rendered, Texts, compose
from tksh.resources.accessgrant import TerminationReason

__all__ = ["ACTIVATED", "TEMPLATES", "TERMINATED", "render"]

ACTIVATED = "grant-activated"
TERMINATED = "grant-terminated"


class _P(Params):
    """A grant message's params: the grants it names and the optional lines."""

    def ref(self, name: str | None) -> str:
        namespace = self.params.get("namespace")
        return f"{namespace}/{name}" if namespace and name else (name or "?")

    @property
    def grant(self) -> str:
        return self.ref(self.params.get("name"))

    def line(self, key: str, label: str) -> str:
        value = self.params.get(key)
        return f"\n{label}: {value}" if value else ""


def _activated(p: _P) -> Texts:
    g, number, subject = p.grant, p["agreement"], p["subject"]
    since, until = p.time("activatedAt"), p.time("validUntil")
    return {
        "kk": ("Қол жеткізу берілді",
               f"Ұйымыңыздың атынан әрекет ету үшін «{g}» қол жеткізу құқығы (келісім № {number}) {since} күшіне "
               f"енді; ол {until} дейін жарамды. Алушы: {subject}.\n\n"
               "Келесі қадам: қосымша әрекет қажет емес. Егер ұйымыңыз бұл қол жеткізуге келісім бермесе, дереу "
               "Әкімшіге хабарласыңыз: қол жеткізу кері қайтарылады (Қағидалардың 20.2-тармағы)."),
        "ru": ("Доступ предоставлен",
               f"Доступ «{g}» для действий от имени вашей организации (соглашение № {number}) вступил в силу "
               f"{since} и действует до {until}. Получатель: {subject}.\n\n"
               "Следующий шаг: дополнительных действий не требуется. Если ваша организация не давала согласия на "
               "этот доступ, немедленно сообщите Администратору: доступ будет отозван (пункт 20.2 Правил)."),
        "en": ("Access granted",
               f"Access \"{g}\" to act on behalf of your organisation (agreement No. {number}) took effect {since} "
               f"and is valid until {until}. Holder: {subject}.\n\n"
               "Next step: nothing is needed. If your organisation did not authorise it, tell the Administrator at "
               "once: the access is revoked (§20.2)."),
    }


def _terminated(p: _P) -> Texts:
    g, number, when = p.grant, p["agreement"], p.time("at")
    try:
        reason = TerminationReason(p.params.get("reason") or "")
    except ValueError:
        raise KeyError("reason") from None  # an unknown ground: the sender gives up on this entry (permanent)
    titles, item = reason.titles, reason.paragraph.removeprefix("§")
    origin = p.params.get("cascadeFrom")
    cascade = {
        "kk": f"\n«{p.ref(origin)}» қол жеткізуінің тоқтатылуына байланысты тоқтатылды." if origin else "",
        "ru": f"\nДоступ прекращён вследствие прекращения доступа «{p.ref(origin)}»." if origin else "",
        "en": f"\nIt ended because access \"{p.ref(origin)}\" ended." if origin else "",
    }
    return {
        "kk": ("Қол жеткізу тоқтатылды",
               f"Ұйымыңыздың атынан әрекет етуге берілген «{g}» қол жеткізу құқығы (келісім № {number}) {when} "
               f"тоқтатылды.\n\nНегіздеме (Қағидалардың {item}-тармағы): {titles.kk}.{cascade['kk']}"
               f"{p.line('by', 'Кім тоқтатты')}{p.line('note', 'Ескертпе')}\n\n"
               "Келесі қадам: тоқтатылған қол жеткізу қайта қалпына келтірілмейді. Қол жеткізу әлі де қажет болса, "
               "жаңа келісім бойынша жаңа қол жеткізу құқығына өтінім беріңіз."),
        "ru": ("Доступ прекращён",
               f"Доступ «{g}» для действий от имени вашей организации (соглашение № {number}) прекращён {when}."
               f"\n\nОснование (пункт {item} Правил): {titles.ru}.{cascade['ru']}"
               f"{p.line('by', 'Кем прекращён')}{p.line('note', 'Примечание')}\n\n"
               "Следующий шаг: прекращённый доступ не возобновляется. Если доступ по-прежнему нужен, подайте "
               "заявку на новый доступ по новому соглашению."),
        "en": ("Access terminated",
               f"Access \"{g}\" to act on behalf of your organisation (agreement No. {number}) ended {when}.\n\n"
               f"Ground ({reason.paragraph}): {titles.en}.{cascade['en']}"
               f"{p.line('by', 'Ended by')}{p.line('note', 'Note')}\n\n"
               "Next step: a terminated grant is never resumed. If access is still needed, apply for a new grant "
               "under a new agreement."),
    }


_TEMPLATES: dict[str, Callable[[_P], Texts]] = {ACTIVATED: _activated, TERMINATED: _terminated}
TEMPLATES: frozenset[str] = frozenset(_TEMPLATES)


def render(template: str, params: Mapping[str, str] | None = None) -> Rendered:
    """The message for an outbox entry's ``template`` and ``params``; ``KeyError`` for an unknown template."""
    p = _P(params or {})
    return compose(_TEMPLATES[template](p), p.grant)
