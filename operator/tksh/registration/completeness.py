"""§16 completeness of an application for registration and integration (a ``DigitalObject`` spec).

The Administrator refuses an application whose information is incomplete (§16) and must say what
is missing. The CRD schema checks shapes only (see ``tksh.resources.digitalobject``), so this module
decides *content*: every item the Rules need is there and usable.

- ``spec.owner.bin``: present, 12 digits, with a valid IIN/BIN check digit (:func:`bin_checksum_valid`);
- ``spec.owner.name``: not blank; ``spec.owner.subjectType``: a known :class:`SubjectType`;
- ``spec.owner.email``: present and well-formed (the decision is sent there, §16);
- ``spec.functions``: at least one (§15); each exists in the function directory, is ``Active`` there
  and may be held by the owner's subject type;
- ``spec.categories``: at least one §4 category; each covered by the rights of at least one selected
  *usable* function (existing, active, allowed: a function that cannot be held covers nothing).
  Whether a function is allowed and a category covered is judged only once the subject type is
  known and some function is selected: otherwise those items would only repeat the root problem;
- ``spec.endpoint.url``: present and an ``http(s)://`` URL.

Blank strings count as missing. Every problem is reported (not only the first), by field path,
sorted by path (indices numerically) so the list is stable between runs. Each :class:`Problem`
has English, Kazakh and Russian texts; none contains personal data (no BIN, name or address:
only field paths, function names, subject types and category numbers), so problems may go into
conditions, Events and e-mails. A problem round-trips through one line of text
(:meth:`Problem.encode`), the form in which an outbox entry carries it to the e-mail template.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping
from typing import Any

from tksh.directory import evaluate_function
from tksh.logs import mask_text
from tksh.resources.common import EMAIL_PATTERN, URL_PATTERN
from tksh.resources.subjects import INFORMATION_CATEGORIES, SUBJECT_TYPE_TITLES, SubjectType

__all__ = [
    "Completeness",
    "DirectoryEntry",
    "Problem",
    "bin_checksum_valid",
    "check_application",
    "directory_from_objects",
]

_EMAIL = re.compile(EMAIL_PATTERN)
_URL = re.compile(URL_PATTERN)
_TWELVE_DIGITS = re.compile(r"^[0-9]{12}$")
_WEIGHTS_1 = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11)
_WEIGHTS_2 = (3, 4, 5, 6, 7, 8, 9, 10, 11, 1, 2)


def bin_checksum_valid(value: str) -> bool:
    """Whether ``value`` is 12 digits whose last one is the IIN/BIN check digit.

    The check digit is the sum of the first 11 digits weighted 1..11, mod 11; when that is 10 the
    weights 3..11,1,2 are used instead; when that is 10 too the number is invalid (never issued).
    """
    if not _TWELVE_DIGITS.match(value):
        return False
    digits = [int(c) for c in value]
    check = sum(w * d for w, d in zip(_WEIGHTS_1, digits, strict=False)) % 11
    if check == 10:
        check = sum(w * d for w, d in zip(_WEIGHTS_2, digits, strict=False)) % 11
        if check == 10:
            return False
    return check == digits[11]


# --- problems and their texts -----------------------------------------------------------------------------------------

# Human names of the fields, for applicants who do not read field paths: (en, kk, ru).
_FIELDS: dict[str, tuple[str, str, str]] = {
    "spec.owner.bin": ("the owner's BIN", "иесінің БСН-і", "БИН владельца"),
    "spec.owner.name": ("the owner's name", "иесінің атауы", "наименование владельца"),
    "spec.owner.subjectType": ("the owner's subject type", "иесінің субъект түрі", "тип субъекта владельца"),
    "spec.owner.email": ("the e-mail address for the decision", "шешім жіберілетін электрондық пошта",
                         "адрес электронной почты для ответа"),
    "spec.functions": ("the functions (competences)", "функциялар (құзыреттер)", "функции (компетенции)"),
    "spec.categories": ("the §4 information categories", "§4 ақпарат санаттары", "категории информации по §4"),
    "spec.endpoint.url": ("the integration endpoint URL", "интеграция нүктесінің URL-і", "URL точки интеграции"),
}

# code -> (en, kk, ru); ``{0}``, ``{1}`` are the problem's arguments, ``{t0}`` a title for argument 0.
_TEXTS: dict[str, tuple[str, str, str]] = {
    "missing": ("is missing", "толтырылмаған", "не заполнено"),
    "bin-format": ("must be 12 digits", "12 цифрдан тұруы керек", "должен состоять из 12 цифр"),
    "bin-checksum": (
        "is not a valid IIN/BIN (the check digit does not match)",
        "жарамды ЖСН/БСН емес (бақылау разряды сәйкес келмейді)",
        "не является действительным ИИН/БИН (не совпадает контрольный разряд)",
    ),
    "subject-type-unknown": (
        "{0} is not a known subject type", "{0} — белгісіз субъект түрі", "{0} — неизвестный тип субъекта"
    ),
    "email-invalid": (
        "is not a valid e-mail address", "дұрыс электрондық пошта мекенжайы емес",
        "не является корректным адресом электронной почты",
    ),
    "url-invalid": (
        "must be an http:// or https:// URL", "http:// немесе https:// URL болуы керек",
        "должен быть URL вида http:// или https://",
    ),
    "function-unknown": (
        "function {0} is not in the function directory", "{0} функциясы функциялар анықтамалығында жоқ",
        "функции {0} нет в справочнике функций",
    ),
    "function-inactive": (
        "function {0} is not active in the function directory", "{0} функциясы анықтамалықта белсенді емес",
        "функция {0} не действует в справочнике функций",
    ),
    "function-not-allowed": (
        "function {0} may not be held by the subject type {1} ({t1})",
        "{0} функциясы {1} ({t1}) субъект түріне рұқсат етілмеген",
        "функция {0} недоступна для типа субъекта {1} ({t1})",
    ),
    "function-duplicate": (
        "function {0} is selected more than once", "{0} функциясы бірнеше рет таңдалған",
        "функция {0} выбрана более одного раза",
    ),
    "category-invalid": (
        "{0} is not a §4 category (1 to 15)", "{0} — §4 санаты емес (1-ден 15-ке дейін)",
        "{0} — не категория по §4 (от 1 до 15)",
    ),
    "category-not-covered": (
        "category {0} ({t0}) is not covered by the rights of any selected usable function",
        "{0}-санат ({t0}) таңдалған жарамды функциялардың ешқайсысының құқықтарына кірмейді",
        "категория {0} ({t0}) не покрыта правами ни одной из выбранных действующих функций",
    ),
}
_LANGS = ("en", "kk", "ru")
_NATURAL = re.compile(r"(\d+)")


def _title(arg: str, lang: str) -> str:
    """The title of a subject type or §4 category named by ``arg``, in ``lang`` (``arg`` itself if unknown)."""
    if arg.isdigit() and int(arg) in INFORMATION_CATEGORIES:
        return str(getattr(INFORMATION_CATEGORIES[int(arg)], lang))
    if arg in SubjectType.__members__.values():
        return str(getattr(SUBJECT_TYPE_TITLES[SubjectType(arg)], lang))
    return arg


@dataclasses.dataclass(frozen=True)
class Problem:
    """One missing or invalid item of an application: where (``path``), what (``code``) and with what."""

    path: str
    """The field path, e.g. ``spec.owner.email`` or ``spec.functions[1]``."""
    code: str
    """What is wrong, a key of the text table: ``missing``, ``bin-checksum``, ``function-unknown``..."""
    args: tuple[str, ...] = ()
    """Values the text names: function names, subject types, category numbers (never personal data)."""

    def text(self, lang: str = "en") -> str:
        """The problem in words, in ``en``, ``kk`` or ``ru``: ``<field path> (<field name>): <what>``."""
        index = _LANGS.index(lang)
        template = _TEXTS.get(self.code, (self.code, self.code, self.code))[index]
        titles = {f"t{i}": _title(arg, lang) for i, arg in enumerate(self.args)}
        what = template.format(*self.args, *([""] * 4), **titles)
        field = _FIELDS.get(self.path)
        return f"{self.path} ({field[index]}): {what}" if field else f"{self.path}: {what}"

    @property
    def sort_key(self) -> tuple[Any, ...]:
        """Path with indices compared as numbers (``[2]`` before ``[10]``), then code and arguments."""
        parts = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in _NATURAL.split(self.path) if p)
        return (parts, self.code, self.args)

    def encode(self) -> str:
        """One line: ``path code arg...`` (no part contains a space)."""
        return " ".join((self.path, self.code, *self.args))

    @classmethod
    def decode(cls, line: str) -> Problem:
        path, code, *args = line.split(" ")
        return cls(path, code, tuple(args))

    def __str__(self) -> str:
        return self.text("en")


@dataclasses.dataclass(frozen=True)
class Completeness:
    """The verdict on an application: complete, or the sorted list of problems."""

    problems: tuple[Problem, ...]

    @property
    def complete(self) -> bool:
        return not self.problems

    @property
    def missing(self) -> list[str]:
        """Field paths with a problem, each once, in order: the value of ``status.missing``."""
        return list(dict.fromkeys(p.path for p in self.problems))

    def encoded(self, budget: int = 1000) -> tuple[str, int]:
        """The problems as lines (:meth:`Problem.encode`) within ``budget`` characters, and how many did
        not fit: the form an outbox entry's params carry them in (a param holds at most 1024 characters)."""
        lines: list[str] = []
        used = 0
        for problem in self.problems:
            line = problem.encode()
            if used + len(line) + 1 > budget:
                break
            lines.append(line)
            used += len(line) + 1
        return "\n".join(lines), len(self.problems) - len(lines)

    @property
    def message(self) -> str:
        """Every problem in English, ``; ``-separated (for conditions, Events and ``status.message``)."""
        if self.complete:
            return "the application is complete"
        return "the application is incomplete: " + "; ".join(p.text("en") for p in self.problems)


# --- the directory ----------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class DirectoryEntry:
    """What the completeness check needs to know of one ``SubjectFunction``."""

    subject_types: frozenset[str]
    """The subject types that may hold the function."""
    categories: frozenset[int]
    """The §4 categories its rights cover (any action)."""
    active: bool
    """Whether it may be selected (phase ``Active``)."""

    @classmethod
    def from_object(cls, obj: Mapping[str, Any]) -> DirectoryEntry:
        """From a ``SubjectFunction`` body (``{spec, status}``), or a bare spec with an optional ``phase``.

        Without a phase (the directory handler has not reported yet) the directory rules are
        evaluated here, so an application is never refused for an entry that is only not yet checked.
        """
        spec: Mapping[str, Any] = (obj.get("spec") or {}) if "spec" in obj else obj
        status = obj.get("status") if "spec" in obj else None
        phase = (status or {}).get("phase") if isinstance(status, Mapping) else obj.get("phase")
        rights = [r for r in spec.get("rights") or () if isinstance(r, Mapping)]
        active = phase == "Active" if phase else evaluate_function(spec).valid
        return cls(
            subject_types=frozenset(str(t) for t in spec.get("subjectTypes") or ()),
            categories=frozenset(r["category"] for r in rights if isinstance(r.get("category"), int)),
            active=active,
        )


def directory_from_objects(objects: Iterable[Mapping[str, Any]]) -> dict[str, DirectoryEntry]:
    """A directory ``{name: DirectoryEntry}`` from ``SubjectFunction`` bodies (e.g. a kopf index)."""
    return {str(o["metadata"]["name"]): DirectoryEntry.from_object(o) for o in objects}


def _entry(value: DirectoryEntry | Mapping[str, Any]) -> DirectoryEntry:
    return value if isinstance(value, DirectoryEntry) else DirectoryEntry.from_object(value)


# --- the check --------------------------------------------------------------------------------------------------------


def _text(value: object) -> str:
    """A string field's value, stripped; anything that is not a non-blank string is missing ("")."""
    return value.strip() if isinstance(value, str) else ""


def check_application(
    spec: Mapping[str, Any], directory: Mapping[str, DirectoryEntry | Mapping[str, Any]]
) -> Completeness:
    """Check a ``DigitalObject`` spec (camelCase dict) against the function directory (name -> entry).

    ``directory`` values are :class:`DirectoryEntry` or ``SubjectFunction`` bodies. Pure; never raises
    on malformed input (a wrong type counts as missing or invalid).
    """
    problems: list[Problem] = []
    owner = spec.get("owner")
    owner = owner if isinstance(owner, Mapping) else {}

    bin_ = _text(owner.get("bin"))
    if not bin_:
        problems.append(Problem("spec.owner.bin", "missing"))
    elif not _TWELVE_DIGITS.match(bin_):
        problems.append(Problem("spec.owner.bin", "bin-format"))
    elif not bin_checksum_valid(bin_):
        problems.append(Problem("spec.owner.bin", "bin-checksum"))

    if not _text(owner.get("name")):
        problems.append(Problem("spec.owner.name", "missing"))

    subject_type = _text(owner.get("subjectType"))
    known_type = subject_type in SubjectType.__members__.values()
    if not subject_type:
        problems.append(Problem("spec.owner.subjectType", "missing"))
    elif not known_type:
        problems.append(Problem("spec.owner.subjectType", "subject-type-unknown", (_token(subject_type),)))

    email = _text(owner.get("email"))
    if not email:
        problems.append(Problem("spec.owner.email", "missing"))
    elif not _EMAIL.match(email):
        problems.append(Problem("spec.owner.email", "email-invalid"))

    covered: set[int] = set()
    functions = spec.get("functions")
    functions = list(functions) if isinstance(functions, list | tuple) else []
    seen: set[str] = set()
    for index, raw in enumerate(functions):
        path, name = f"spec.functions[{index}]", _text(raw)
        if not name:
            problems.append(Problem(path, "missing"))
            continue
        if name in seen:
            problems.append(Problem(path, "function-duplicate", (_token(name),)))
            continue
        seen.add(name)
        found = directory.get(name)
        if found is None:
            problems.append(Problem(path, "function-unknown", (_token(name),)))
            continue
        entry = _entry(found)
        if not entry.active:
            problems.append(Problem(path, "function-inactive", (_token(name),)))
        elif known_type and subject_type not in entry.subject_types:
            problems.append(Problem(path, "function-not-allowed", (_token(name), subject_type)))
        elif known_type:
            covered |= entry.categories
    if not seen and not any(p.path.startswith("spec.functions[") for p in problems):
        problems.append(Problem("spec.functions", "missing"))

    categories = spec.get("categories")
    categories = list(categories) if isinstance(categories, list | tuple) else []
    if not categories:
        problems.append(Problem("spec.categories", "missing"))
    for index, category in enumerate(categories):
        path = f"spec.categories[{index}]"
        if isinstance(category, bool) or not isinstance(category, int) or category not in INFORMATION_CATEGORIES:
            problems.append(Problem(path, "category-invalid", (_token(str(category)),)))
        elif known_type and functions and category not in covered:
            problems.append(Problem(path, "category-not-covered", (str(category),)))

    endpoint = spec.get("endpoint")
    url = _text(endpoint.get("url")) if isinstance(endpoint, Mapping) else ""
    if not url:
        problems.append(Problem("spec.endpoint.url", "missing"))
    elif not _URL.match(url):
        problems.append(Problem("spec.endpoint.url", "url-invalid"))

    return Completeness(tuple(sorted(problems, key=lambda p: p.sort_key)))


def _token(value: str) -> str:
    """A value as one space-free, bounded token for a problem's arguments (they are encoded by spaces),
    masked should it look like personal data (a BIN typed where a function name belongs)."""
    return re.sub(r"\s+", "_", mask_text(value.strip()))[:80] or "_"
