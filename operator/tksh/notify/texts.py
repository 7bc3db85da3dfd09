"""The frame every e-mail text of the operator shares: Kazakh, Russian, English in one plain-text body.

A message module (:mod:`tksh.registration.messages`, :mod:`tksh.access.messages`,
:mod:`tksh.monitoring.messages`) writes, per template, a subject and a body in each language
(:data:`Texts`); :func:`compose` puts them in one :class:`Rendered` message: the subject names the
event in Kazakh and Russian and what it is about, masked once more (:func:`tksh.logs.mask_text`: a
name made of a BIN does not put the BIN in a subject line that every relay logs); the body has the
three languages, Kazakh first, each with the Administrator's signature, between separator lines.

:class:`Params` reads an outbox entry's ``params`` for people: a missing value is ``—``, an instant
(RFC 3339, UTC) is shown in the ``timezone`` param's local time (Asia/Almaty by default).
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Mapping
from typing import Final
from zoneinfo import ZoneInfo

from tksh.logs import mask_text

__all__ = ["DEFAULT_TIMEZONE", "LANGUAGES", "Params", "Rendered", "Texts", "compose"]

DEFAULT_TIMEZONE: Final = "Asia/Almaty"
LANGUAGES: Final = ("kk", "ru", "en")

_SEPARATOR: Final = "\n\n" + "—" * 40 + "\n\n"
_SIGNATURE: Final = {
    "kk": "Құрметпен,\nТКШ орталық жүйесінің Әкімшісі\n(Бұл хат автоматты түрде жіберілді.)",
    "ru": "С уважением,\nАдминистратор центральной системы ЖКХ\n(Письмо отправлено автоматически.)",
    "en": "Regards,\nthe Administrator of the central housing & communal services system\n(An automatic message.)",
}

Texts = dict[str, tuple[str, str]]
"""A template's words: language (``kk``, ``ru``, ``en``) -> (subject, body)."""


@dataclasses.dataclass(frozen=True)
class Rendered:
    """A message ready to send: subject and plain-text body."""

    subject: str
    body: str


class Params:
    """Access to a message's params with formatting for people."""

    def __init__(self, params: Mapping[str, str]) -> None:
        self.params = params
        self.tz = ZoneInfo(params.get("timezone") or DEFAULT_TIMEZONE)

    def __getitem__(self, key: str) -> str:
        return self.params.get(key) or "—"

    def moment(self, key: str) -> datetime.datetime | None:
        """The instant under ``key`` in the message's time zone; ``None`` when there is none."""
        value = self.params.get(key)
        if not value:
            return None
        return datetime.datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(self.tz)

    def time(self, key: str) -> str:
        """``20.03.2026 15:04 (Asia/Almaty)``."""
        moment = self.moment(key)
        return "—" if moment is None else f"{moment:%d.%m.%Y %H:%M} ({self.tz.key})"


def compose(texts: Texts, about: str) -> Rendered:
    """The message of a template's ``texts``; the subject ends with ``about`` (the object, grant or target)."""
    subject = mask_text(f"ТКШ: {texts['kk'][0]} / {texts['ru'][0]} — {about}")
    body = _SEPARATOR.join(f"{texts[lang][1]}\n\n{_SIGNATURE[lang]}" for lang in LANGUAGES)
    return Rendered(subject=subject, body=body + "\n")
