"""The outcome of a decision: :class:`Decision`, the deny reason codes and their texts in kk/ru/en.

Reason codes (:class:`DenyReason`) are listed from the least to the most informative; when every
grant of a subject denies, the decision reports the highest one (ties: the smallest grant id), so
that "your grant for this expired" wins over "no grant covers this". The order follows how far a
grant got: not covering the request at all (no right, unknown function, out of scope, more than its
principal) < covering it but not (yet) in effect < covering it and ended on a §20 ground.

The §20 grounds map one to one: EXPIRED (§20.1) is ``AGREEMENT_EXPIRED``, the other six keep their
names (``REVOKED``, ``REFUSED``, ``DELEGATION_TERMINATED``, ``GROUNDS_ENDED``, ``FALSE_INFORMATION``,
``OTHER_BY_LAW``).

Texts are built only when asked for (:attr:`Decision.texts`), never on the hot path. They name grants
by id and categories by number; they never contain a BIN, an IIN or a display name.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
from typing import Any, Literal

from tksh.access.facts import TerminationFacts
from tksh.resources.accessgrant import TerminationReason
from tksh.resources.common import Titles

__all__ = ["TERMINATION_CODES", "Decision", "DenyReason", "ScopeKind", "format_instant"]

ScopeKind = Literal["category", "owner", "digital-object"]


class DenyReason(enum.StrEnum):
    """Why a request is denied; later members are more informative (see the module docstring)."""

    AUTHENTICATION_REQUIRED = "AUTHENTICATION_REQUIRED"
    """Anonymous, and the open part (§21) does not include the request."""
    NO_GRANT = "NO_GRANT"
    """No grant of the subject acts on behalf of the requested owner."""
    FUNCTION_LACKS_RIGHT = "FUNCTION_LACKS_RIGHT"
    UNKNOWN_FUNCTION = "UNKNOWN_FUNCTION"
    """Lacking the right, and some of the grant's functions are not (or no longer validly) in the directory."""
    OUT_OF_SCOPE = "OUT_OF_SCOPE"
    DELEGATION_EXCEEDS_PRINCIPAL = "DELEGATION_EXCEEDS_PRINCIPAL"
    """The delegated grant covers it, but a grant up its chain does not: a delegate never gets more."""
    GRANT_PENDING = "GRANT_PENDING"
    AGREEMENT_NOT_YET_VALID = "AGREEMENT_NOT_YET_VALID"
    TERMINATED = "TERMINATED"
    """Phase ``Terminated`` without a termination record (should not happen; denied all the same)."""
    AGREEMENT_EXPIRED = "AGREEMENT_EXPIRED"
    GROUNDS_ENDED = "GROUNDS_ENDED"
    DELEGATION_TERMINATED = "DELEGATION_TERMINATED"
    REFUSED = "REFUSED"
    REVOKED = "REVOKED"
    FALSE_INFORMATION = "FALSE_INFORMATION"
    OTHER_BY_LAW = "OTHER_BY_LAW"

    @property
    def rank(self) -> int:
        """How informative the reason is: the higher, the more."""
        return _RANK[self]


_RANK = {reason: index for index, reason in enumerate(DenyReason)}

TERMINATION_CODES: dict[TerminationReason, DenyReason] = {
    TerminationReason.EXPIRED: DenyReason.AGREEMENT_EXPIRED,
    TerminationReason.REVOKED: DenyReason.REVOKED,
    TerminationReason.REFUSED: DenyReason.REFUSED,
    TerminationReason.DELEGATION_TERMINATED: DenyReason.DELEGATION_TERMINATED,
    TerminationReason.GROUNDS_ENDED: DenyReason.GROUNDS_ENDED,
    TerminationReason.FALSE_INFORMATION: DenyReason.FALSE_INFORMATION,
    TerminationReason.OTHER_BY_LAW: DenyReason.OTHER_BY_LAW,
}
"""The deny reason for a grant terminated on each §20 ground."""


def format_instant(instant: datetime.datetime | None) -> str:
    """An instant in UTC, RFC 3339 with ``Z``, microseconds kept when present; ``—`` when unknown."""
    if instant is None:
        return "—"
    return instant.astimezone(datetime.UTC).isoformat().replace("+00:00", "Z")


@dataclasses.dataclass(frozen=True, slots=True)
class Decision:
    """Allow or deny, with the grant that allowed it, or the reason for a deny and its particulars."""

    allowed: bool
    reason: DenyReason | None = None
    grant: str | None = None
    """For an allow, the grant that allowed it (``None``: the open part); for a deny, the grant the reason is about."""
    principal: str | None = None
    """Delegation: the grant up the chain that ended, lacks the right, or is not in effect yet."""
    instant: datetime.datetime | None = None
    """When the access ended or starts (expiry, grounds' end, §20 record, validFrom)."""
    record: TerminationFacts | None = None
    """The termination record (or request) a §20 reason comes from: who, when, why, cascade origin. For
    ``DELEGATION_TERMINATED`` found up the chain, the *principal's* record (why the principal ended)."""
    scope: ScopeKind | None = None
    """``OUT_OF_SCOPE``: which part of the scope excludes the request."""
    missing_functions: tuple[str, ...] = ()
    """``UNKNOWN_FUNCTION``: the grant's functions absent from the directory."""
    category: int | None = None
    action: str | None = None
    open_part: bool = False
    """Allowed by the open part (§21)."""
    considered: tuple[tuple[str, DenyReason], ...] = ()
    """A deny: every grant of the subject in the owner's domain and why it did not allow."""

    @property
    def code(self) -> str:
        """``ALLOW`` or the deny reason code."""
        return "ALLOW" if self.allowed else str(self.reason)

    @property
    def texts(self) -> Titles:
        """The reason in Kazakh, Russian and English (``allowed`` for an allow)."""
        return _texts(self)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form for the HTTP API (camelCase keys, instants in RFC 3339)."""
        out: dict[str, Any] = {"allowed": self.allowed, "code": self.code}
        if self.grant is not None:
            out["grant"] = self.grant
        if self.open_part:
            out["openPart"] = True
        if self.principal is not None:
            out["principal"] = self.principal
        if self.instant is not None:
            out["instant"] = format_instant(self.instant)
        if self.record is not None:
            record = {"reason": str(self.record.reason), "paragraph": self.record.reason.paragraph}
            record |= {"at": format_instant(self.record.at)} if self.record.at else {}
            record |= {"by": self.record.by} if self.record.by else {}
            record |= {"note": self.record.note} if self.record.note else {}
            record |= {"cascadeFrom": self.record.cascade_from} if self.record.cascade_from else {}
            out["record"] = record
        if self.scope is not None:
            out["scope"] = self.scope
        if self.missing_functions:
            out["missingFunctions"] = list(self.missing_functions)
        if self.considered:
            out["considered"] = [{"grant": grant, "code": str(code)} for grant, code in self.considered]
        out["texts"] = self.texts.model_dump()
        return out


def _t(kk: str, ru: str, en: str) -> Titles:
    return Titles(kk=kk, ru=ru, en=en)


def _texts(d: Decision) -> Titles:
    if d.allowed:
        if d.open_part:
            return _t("рұқсат: ашық бөлік (21-т.)", "разрешено: открытая часть (п. 21)", "allowed: the open part (§21)")
        return _t(f"рұқсат: {d.grant}", f"разрешено: {d.grant}", f"allowed by grant {d.grant}")
    g, p, at = d.grant, d.principal, format_instant(d.instant)
    act, cat = d.action, d.category
    record = d.record
    by = record.by if record and record.by else None
    note = record.note if record and record.note else None
    match d.reason:
        case DenyReason.AUTHENTICATION_REQUIRED:
            return _t(
                f"ашық бөлікке (21-т.) {cat}-санаттағы «{act}» әрекеті кірмейді; жабық бөлікке келісім бойынша "
                "қол жеткізіледі (19, 22-т.)",
                f"открытая часть (п. 21) не включает действие «{act}» над категорией {cat}; доступ к закрытой "
                "части — по соглашению (пп. 19, 22)",
                f"the open part (§21) does not include '{act}' on category {cat}; the closed part is accessed "
                "per agreement (§19, §22)",
            )
        case DenyReason.NO_GRANT:
            return _t(
                "субъектіде сұралған иесі атынан әрекет етуге берілген қол жеткізу құқығы жоқ",
                "у субъекта нет доступа для действий от имени запрошенного владельца сведений",
                "no access grant of this subject acts on behalf of the requested owner",
            )
        case DenyReason.FUNCTION_LACKS_RIGHT:
            return _t(
                f"{g} қол жеткізуінің бірде-бір функциясы {cat}-санатқа «{act}» құқығын бермейді",
                f"ни одна функция доступа {g} не даёт права «{act}» на категорию {cat}",
                f"no function of grant {g} gives '{act}' on category {cat}",
            )
        case DenyReason.UNKNOWN_FUNCTION:
            names = ", ".join(d.missing_functions)
            return _t(
                f"{g} қол жеткізуі анықтамалықта жоқ функцияларды атайды ({names}); оның басқа функциялары "
                f"{cat}-санатқа «{act}» құқығын бермейді",
                f"доступ {g} ссылается на функции, которых нет в справочнике ({names}); остальные его функции "
                f"не дают права «{act}» на категорию {cat}",
                f"grant {g} names functions missing from the directory ({names}); its other functions do not give "
                f"'{act}' on category {cat}",
            )
        case DenyReason.OUT_OF_SCOPE:
            if d.scope == "category":
                return _t(
                    f"{g} қол жеткізу аясына {cat}-санат кірмейді",
                    f"область доступа {g} не включает категорию {cat}",
                    f"the scope of grant {g} does not include category {cat}",
                )
            if d.scope == "owner":
                return _t(
                    f"{g} қол жеткізу аясына осы иесінің мәліметтері кірмейді",
                    f"область доступа {g} не включает сведения этого владельца",
                    f"the scope of grant {g} does not include information of this owner",
                )
            return _t(
                f"{g} қол жеткізу аясына осы арна (цифрлық объект немесе жеке кабинет) арқылы қол жеткізу кірмейді",
                f"область доступа {g} не включает доступ через этот канал (цифровой объект или личный кабинет)",
                f"the scope of grant {g} does not include access through this channel (digital object or "
                "personal cabinet)",
            )
        case DenyReason.DELEGATION_EXCEEDS_PRINCIPAL:
            return _t(
                f"{g} қол жеткізуі {p} арқылы берілген, ол мұнда {cat}-санатқа «{act}» құқығын бермейді; өкіл "
                "сенім білдірушіден артық құқық ала алмайды",
                f"доступ {g} делегирован через {p}, который не даёт здесь права «{act}» на категорию {cat}; "
                "делегат не получает больше, чем доверитель",
                f"grant {g} is delegated through grant {p}, which does not give '{act}' on category {cat} here; "
                "a delegate never gets more than its principal",
            )
        case DenyReason.GRANT_PENDING if p is not None:
            return _t(
                f"{g} қол жеткізуі {p} арқылы берілген, ол әлі күшіне енген жоқ: оператордың тексерулерін күтуде",
                f"доступ {g} делегирован через {p}, который ещё не действует: ожидает проверок оператора",
                f"grant {g} is delegated through grant {p}, which is not in effect yet: it awaits the operator's "
                "checks",
            )
        case DenyReason.AGREEMENT_NOT_YET_VALID if p is not None:
            return _t(
                f"{g} қол жеткізуі {p} арқылы берілген, оның келісімі {at} бастап күшіне енеді",
                f"доступ {g} делегирован через {p}, соглашение по которому вступает в силу {at}",
                f"grant {g} is delegated through grant {p}, whose agreement takes effect at {at}",
            )
        case DenyReason.GRANT_PENDING:
            return _t(
                f"{g} қол жеткізуі әлі күшіне енген жоқ: оператордың тексерулерін күтуде",
                f"доступ {g} ещё не действует: ожидает проверок оператора",
                f"grant {g} is not in effect yet: it awaits the operator's checks",
            )
        case DenyReason.AGREEMENT_NOT_YET_VALID:
            return _t(
                f"{g} қол жеткізу келісімі {at} бастап күшіне енеді",
                f"соглашение о доступе {g} вступает в силу {at}",
                f"the agreement of grant {g} takes effect at {at}",
            )
        case DenyReason.TERMINATED:
            return _t(f"{g} қол жеткізуі тоқтатылды", f"доступ {g} прекращён", f"grant {g} is terminated")
        case DenyReason.AGREEMENT_EXPIRED:
            return _t(
                f"{g} келісімі бойынша қол жеткізу мерзімі {at} аяқталды (20.1-т.)",
                f"срок доступа по соглашению {g} истёк {at} (п. 20.1)",
                f"the term of access granted by the agreement of grant {g} ended at {at} (§20.1)",
            )
        case DenyReason.GROUNDS_ENDED:
            return _t(
                f"{g} қол жеткізу негіздемелері {at} тоқтатылды немесе олардың жоқ екені анықталды (20.5-т.)",
                f"основания доступа {g} прекращены или выявлено их отсутствие, {at} (п. 20.5)",
                f"the grounds of grant {g} ended or were found absent at {at} (§20.5)",
            )
        case DenyReason.DELEGATION_TERMINATED:
            return _t(
                f"{g} қол жеткізуі {p} арқылы берілген, оның қолданылуы тоқтатылды (20.4-т.)",
                f"доступ {g} делегирован через {p}, действие которого прекращено (п. 20.4)",
                f"grant {g} was delegated through grant {p}, whose access ended (§20.4)",
            )
        case DenyReason.REFUSED:
            return _t(
                f"{g} қол жеткізуін алушы {at} одан бас тартты (20.3-т.)",
                f"получатель доступа {g} отказался от него {at} (п. 20.3)",
                f"the holder of grant {g} refused the access at {at} (§20.3)",
            )
        case DenyReason.REVOKED:
            return _t(
                f"{g} қол жеткізуі {at} кері қайтарылды" + (f", кері қайтарған: {by}" if by else "")
                + (f"; ескертпе: {note}" if note else "") + " (20.2-т.)",
                f"доступ {g} отозван {at}" + (f", отозвал: {by}" if by else "")
                + (f"; примечание: {note}" if note else "") + " (п. 20.2)",
                f"access under grant {g} was revoked at {at}" + (f" by {by}" if by else "")
                + (f"; note: {note}" if note else "") + " (§20.2)",
            )
        case DenyReason.FALSE_INFORMATION:
            return _t(
                f"{g} қол жеткізуі {at} тоқтатылды: субъектінің өтінімінде дұрыс емес мәліметтер анықталды (20.6-т.)",
                f"доступ {g} прекращён {at}: выявлены недостоверные сведения в заявке субъекта (п. 20.6)",
                f"access under grant {g} ended at {at}: the subject gave false information in its application "
                "(§20.6)",
            )
        case _:  # OTHER_BY_LAW
            return _t(
                f"{g} қол жеткізуі {at} заңнамада көзделген негіз бойынша тоқтатылды"
                + (f": {note}" if note else "") + " (20.7-т.)",
                f"доступ {g} прекращён {at} по основанию, предусмотренному законодательством"
                + (f": {note}" if note else "") + " (п. 20.7)",
                f"access under grant {g} ended at {at} on a ground provided by law" + (f": {note}" if note else "")
                + " (§20.7)",
            )
