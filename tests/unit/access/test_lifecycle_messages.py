"""Grant e-mails in Kazakh and Russian, and ``kubectl tksh revoke|refuse|terminate`` arguments."""

from __future__ import annotations

import argparse
import datetime

import pytest

from tksh.access.messages import ACTIVATED, TERMINATED, render
from tksh.cli import build_parser
from tksh.kubectl_grants import patch_for, termination_patch
from tksh.resources.accessgrant import TerminationReason as R

NOW = datetime.datetime(2026, 9, 1, 12, 0, tzinfo=datetime.UTC)
BASE = {"name": "acct", "namespace": "housing", "timezone": "Asia/Almaty", "agreement": "ДД-2026/0108",
        "subject": "person:91b0e4", "validUntil": "2027-02-01T00:00:00Z"}


@pytest.mark.parametrize("reason", list(R))
def test_the_termination_mail_gives_the_ground_when_and_the_next_step(reason: R) -> None:
    mail = render(TERMINATED, BASE | {"reason": str(reason), "at": "2026-09-01T12:00:00Z", "by": "aigerim",
                                      "note": "акт № 7", "cascadeFrom": "chair"})
    assert mail.subject == "ТКШ: Қол жеткізу тоқтатылды / Доступ прекращён — housing/acct"
    assert reason.titles.kk in mail.body and reason.titles.ru in mail.body and reason.titles.en in mail.body
    item = reason.paragraph.removeprefix("§")
    assert f"Қағидалардың {item}-тармағы" in mail.body and f"пункт {item} Правил" in mail.body
    assert "01.09.2026 17:00 (Asia/Almaty)" in mail.body  # local time
    assert "housing/chair" in mail.body  # the cascade origin
    assert "жаңа қол жеткізу құқығына өтінім беріңіз" in mail.body and "подайте заявку на новый доступ" in mail.body
    assert "акт № 7" in mail.body and "aigerim" in mail.body


def test_the_activation_mail_says_who_and_until_when() -> None:
    mail = render(ACTIVATED, BASE | {"activatedAt": "2026-09-01T12:00:00Z"})
    assert "person:91b0e4" in mail.body and "01.02.2027 05:00 (Asia/Almaty)" in mail.body
    assert "күшіне енді" in mail.body and "вступил в силу" in mail.body


def test_unknown_templates_and_grounds_are_refused_as_key_errors() -> None:
    with pytest.raises(KeyError):
        render("grant-unknown", BASE)
    with pytest.raises(KeyError):
        render(TERMINATED, BASE | {"reason": "BORED"})


def test_a_hostile_note_stays_in_the_body() -> None:
    note = 'mallory, admin "x" (y)\nQ: Қазақ'
    mail = render(TERMINATED, BASE | {"reason": "REVOKED", "at": "2026-09-01T12:00:00Z", "note": note})
    assert note in mail.body and "\n" not in mail.subject


# --- kubectl tksh revoke | refuse | terminate -------------------------------------------------------------------------


def args(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(list(argv))


def test_revoke_writes_the_request_with_the_user_and_the_reason_as_note() -> None:
    patch = patch_for(args("revoke", "acct", "--reason", " доверенность отозвана "), "admin", NOW)
    assert patch == {"spec": {"termination": {"reason": "REVOKED", "at": "2026-09-01T12:00:00Z", "by": "admin",
                                              "note": "доверенность отозвана"}}}


def test_refuse_and_terminate() -> None:
    assert patch_for(args("refuse", "acct"), "", NOW)["spec"]["termination"] == {
        "reason": "REFUSED", "at": "2026-09-01T12:00:00Z"}  # no user known: no ``by``
    patch = patch_for(args("terminate", "acct", "--ground", "GROUNDS_ENDED", "--at", "2026-09-02T10:00:00+05:00",
                           "--by", "aigerim"), "admin", NOW)
    assert patch["spec"]["termination"] == {"reason": "GROUNDS_ENDED", "at": "2026-09-02T05:00:00Z", "by": "aigerim"}


@pytest.mark.parametrize(("argv", "option"), [
    (("revoke", "acct", "--reason", "  "), "--reason"),
    (("terminate", "acct", "--ground", "EXPIRED"), "--ground"),
    (("terminate", "acct", "--ground", "BORED"), "--ground"),
    (("terminate", "acct", "--ground", "OTHER_BY_LAW"), "--note"),
    (("terminate", "acct", "--ground", "REVOKED", "--at", "2026-09-02T10:00:00"), "--at"),
    (("terminate", "acct", "--ground", "REVOKED", "--at", "soon"), "--at"),
])
def test_bad_arguments_name_the_option(argv: tuple[str, ...], option: str) -> None:
    with pytest.raises(ValueError, match=f"^{option}: "):
        patch_for(args(*argv), "admin", NOW)


def test_a_long_note_is_refused() -> None:
    with pytest.raises(ValueError, match=r"^--note: at most 1024"):
        termination_patch("REVOKED", None, "x" * 1025, NOW)
