"""The words of the public status page (:mod:`tksh.access.statuspage`) in Kazakh, Russian and English."""

from __future__ import annotations

from typing import Final

from tksh.resources.subjects import SUBJECT_TYPE_TITLES

__all__ = ["CATEGORY", "FAILURE", "LANGUAGES", "STATE", "TEXTS", "VERDICT"]

LANGUAGES: Final = ("kk", "ru", "en")


def _t(kk: str, ru: str, en: str) -> dict[str, str]:
    return {"kk": kk, "ru": ru, "en": en}


_WORDS: Final[dict[str, dict[str, str]]] = {
    "language": _t("Қазақша", "Русский", "English"),
    "language_nav": _t("Тіл", "Язык", "Language"),
    "skip": _t("Мазмұнға өту", "Перейти к содержимому", "Skip to content"),
    "title": _t("ТКШ орталық жүйесінің жай-күйі", "Состояние центральной системы ЖКХ",
                "Status of the housing and utilities central system"),
    "operational": _t("Барлық жүйелер жұмыс істейді", "Все системы работают", "All systems operational"),
    "degraded": _t("Кейбір жүйелер жұмыс істемейді", "Некоторые системы не работают", "Some systems are down"),
    "central-outage": _t("Орталық жүйеде іркіліс бар", "Сбой центральной системы", "Central system outage"),
    "sla_note": _t("Іркілістен кейін жұмыс қабілеті бір сағат ішінде қалпына келтіріледі (34.2-тармақ).",
                   "После сбоя работоспособность восстанавливается в течение одного часа (п. 34.2).",
                   "After a failure, working order is restored within one hour (§34.2)."),
    "central": _t("Орталық жүйе компоненттері", "Компоненты центральной системы", "Central system components"),
    "central_caption": _t("Компоненттердің қазіргі күйі және 30 күндегі қолжетімділігі",
                          "Текущее состояние компонентов и доступность за 30 дней",
                          "Current state of the components and their 30-day availability"),
    "objects": _t("Интеграцияланған цифрлық объектілер", "Интегрированные цифровые объекты",
                  "Integrated digital objects"),
    "objects_caption": _t("Объектілердің қазіргі күйі және 30 күндегі қолжетімділігі",
                          "Текущее состояние объектов и доступность за 30 дней",
                          "Current state of the objects and their 30-day availability"),
    "open": _t("Ашық инциденттер", "Открытые инциденты", "Open incidents"),
    "open_caption": _t("Әлі қалпына келтірілмеген іркілістер", "Сбои, которые ещё не устранены",
                       "Outages not yet recovered"),
    "no_open": _t("Ашық инцидент жоқ.", "Открытых инцидентов нет.", "No open incidents."),
    "recent": _t("Соңғы 30 күндегі инциденттер", "Инциденты за последние 30 дней", "Incidents of the last 30 days"),
    "recent_caption": _t("Қалпына келтірілген іркілістер, ең соңғысы бірінші",
                         "Устранённые сбои, последние первыми", "Recovered outages, the latest first"),
    "none": _t("Жоқ.", "Нет.", "None."),
    "critical": _t("иә", "да", "yes"),
    "col_name": _t("Атауы", "Название", "Name"),
    "col_critical": _t("Маңызды", "Критичный", "Critical"),
    "col_category": _t("Жүйе түрі", "Вид системы", "Kind of system"),
    "col_state": _t("Күйі", "Состояние", "State"),
    "col_since": _t("Қашаннан бері", "С какого времени", "Since"),
    "col_uptime": _t("30 күндегі қолжетімділік", "Доступность за 30 дней", "30-day availability"),
    "col_target": _t("Объект", "Объект", "Affected"),
    "col_cause": _t("Себебі", "Причина", "Cause"),
    "col_started": _t("Басталды", "Начало", "Started"),
    "col_deadline": _t("Қалпына келтіру мерзімі", "Срок восстановления", "Recovery due by"),
    "col_recovered": _t("Қалпына келтірілді", "Восстановлено", "Recovered"),
    "col_duration": _t("Ұзақтығы", "Длительность", "Duration"),
    "col_verdict": _t("Бір сағаттық мерзім", "Срок в один час", "One-hour limit"),
    "h": _t("сағ", "ч", "h"),
    "min": _t("мин", "мин", "min"),
    "updated": _t("Жаңартылды", "Обновлено", "Updated"),
    "synchronising": _t("Деректер жүктелуде, сәлден соң қайталаңыз.", "Данные загружаются, повторите чуть позже.",
                        "The data is loading, try again shortly."),
}

TEXTS: Final[dict[str, dict[str, str]]] = {lang: {key: words[lang] for key, words in _WORDS.items()}
                                           for lang in LANGUAGES}

STATE: Final = {
    "Up": _t("Жұмыс істейді", "Работает", "Up"),
    "Down": _t("Жұмыс істемейді", "Не работает", "Down"),
    "Unknown": _t("Белгісіз", "Неизвестно", "Unknown"),
}

VERDICT: Final = {
    "Met": _t("Сақталды", "Соблюдён", "Met"),
    "Breached": _t("Бұзылды", "Нарушен", "Breached"),
    "Pending": _t("Күтілуде", "Ожидается", "Pending"),
}

FAILURE: Final = {
    "dns": _t("Атауы анықталмады (DNS)", "Имя не разрешено (DNS)", "Name not resolved (DNS)"),
    "connect": _t("Қосылу мүмкін емес", "Нет соединения", "Connection failed"),
    "tls": _t("TLS қатесі", "Ошибка TLS", "TLS failure"),
    "timeout": _t("Жауап күту уақыты өтті", "Превышено время ожидания", "Timed out"),
    "http_status": _t("Қате HTTP жауабы", "Неверный HTTP-ответ", "Unexpected HTTP status"),
    "body": _t("Жауап мазмұны қате", "Неверное содержимое ответа", "Unexpected response"),
    "unknown": _t("Белгісіз", "Неизвестно", "Unknown"),
}

CATEGORY: Final = {str(kind): titles.model_dump() for kind, titles in SUBJECT_TYPE_TITLES.items()}
"""The kind of system, by the owner's subject type (§2.1, §2.4)."""
