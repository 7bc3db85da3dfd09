"""The frame every e-mail text shares (``tksh.notify.texts``): subject, three languages, signature, params."""

from __future__ import annotations

from tksh.notify.texts import DEFAULT_TIMEZONE, Params, compose

TEXTS = {"kk": ("Тақырып", "Қазақша мәтін."), "ru": ("Тема", "Русский текст."), "en": ("Subject", "English text.")}


def test_the_subject_names_the_event_in_kazakh_and_russian_and_masks_what_it_is_about() -> None:
    rendered = compose(TEXTS, "ns/osi-140540001231")
    assert rendered.subject.startswith("ТКШ: Тақырып / Тема — ns/osi-")
    assert "140540001231" not in rendered.subject and "Subject" not in rendered.subject


def test_the_body_has_kazakh_russian_english_in_that_order_each_signed() -> None:
    body = compose(TEXTS, "x").body
    kk, ru, en = (body.index(text) for text in ("Қазақша мәтін.", "Русский текст.", "English text."))
    assert kk < body.index("Құрметпен,") < ru < body.index("С уважением,") < en < body.index("Regards,")
    assert body.count("—" * 40) == 2 and body.endswith("(An automatic message.)\n")


def test_params_show_missing_values_as_a_dash_and_times_in_the_message_time_zone() -> None:
    p = Params({"at": "2026-03-20T05:04:00Z", "timezone": "Europe/Moscow", "empty": ""})
    assert (p["empty"], p["absent"], p.time("absent")) == ("—", "—", "—")
    assert p.time("at") == "20.03.2026 08:04 (Europe/Moscow)"
    assert Params({}).tz.key == DEFAULT_TIMEZONE == "Asia/Almaty"
