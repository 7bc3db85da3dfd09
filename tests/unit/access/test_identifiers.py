"""Strict identifiers: one clear error naming the field and the rule, never the value."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import pytest

from tests.unit.access.helpers import grant
from tksh.access import (
    ANONYMOUS,
    IdentifierError,
    validate_action,
    validate_bin,
    validate_category,
    validate_digital_object_id,
    validate_function_name,
    validate_grant_id,
    validate_subject_id,
)

HOSTILE = [
    "mallory, admin, org1",
    "mallory,admin",
    "a)b",
    "a(b",
    'a"b',
    "a'b",
    "a\nb",
    "abc\n",
    "a b",
    "a\tb",
    "әлия",
    "Мария",
    "person:әлия",
    "Alice",
    "",
    "-a",
    "a-",
    "a" * 64,
    "p, mallory, *, open-part",
    "\x00",
    "a\u200bb",
    "１２３",  # full-width digits
]


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_subject_ids_are_refused_without_echoing_them(value: str) -> None:
    with pytest.raises(IdentifierError) as caught:
        validate_subject_id(value)
    assert caught.value.field == "subject.id"
    assert "pattern" in caught.value.rule
    # the message is the same for every bad value: it says the rule and never echoes the value
    with pytest.raises(IdentifierError) as reference:
        validate_subject_id("Bad Value")
    assert str(caught.value) == str(reference.value)


@pytest.mark.parametrize("value", ["person:7f3c2a", "org.42", "a", "do:osi-portal_1", "1a"])
def test_opaque_subject_ids_pass(value: str) -> None:
    assert validate_subject_id(value) == value


def test_an_iin_is_not_a_subject_id() -> None:
    with pytest.raises(IdentifierError, match="IIN/BIN"):
        validate_subject_id("900101300123")


def test_the_anonymous_principal_cannot_be_a_subject() -> None:
    with pytest.raises(IdentifierError):
        validate_subject_id(ANONYMOUS)


@pytest.mark.parametrize(
    "value",
    ["12345678901", "1234567890123", "12345678901a", "123456789012\n", "１２３４５６７８９０１２", 123456789012],
)
def test_bins_are_exactly_twelve_ascii_digits(value: object) -> None:
    with pytest.raises(IdentifierError, match=r"onBehalfOf\.bin: .*12 digits|must be a string"):
        validate_bin(value)
    assert validate_bin("140540001231") == "140540001231"


@pytest.mark.parametrize(
    ("check", "good", "bad", "field"),
    [
        (validate_function_name, "owners-association", "Owners Association", "functions[]"),
        (validate_grant_id, "housing/dostyk12-chair", "housing/dostyk12 chair", "grant (name)"),
        (validate_grant_id, "housing/a.b", "dostyk12-chair", "grant"),
        (validate_grant_id, "housing/a", "ho.using/a", "grant (namespace)"),
        (validate_digital_object_id, "housing/portal", "housing/portal/x", "digitalObject (name)"),
    ],
)
def test_names(check: Callable[[object], str], good: str, bad: str, field: str) -> None:
    assert check(good) == good
    with pytest.raises(IdentifierError) as caught:
        check(bad)
    assert caught.value.field == field


def test_categories_and_actions() -> None:
    assert validate_category(15) == 15
    for bad in (0, 16, True, "5", 5.0):
        with pytest.raises(IdentifierError, match="category: must be a §4 information category"):
            validate_category(bad)
    assert validate_action("sign") == "sign"
    with pytest.raises(IdentifierError, match="action: must be one of read, write, sign"):
        validate_action("admin")


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"subject_id": "mallory, admin, org1"}, "subject.id"),
        ({"owner_bin": "14054000123)"}, "onBehalfOf.bin"),
        ({"functions": frozenset({"fn)x"})}, "functions[]"),
        ({"functions": frozenset()}, "functions"),
        ({"id": "no-namespace"}, "id"),
        ({"delegated_from": "housing/a\nb"}, "delegatedFrom (name)"),
        ({"owner_bins": frozenset({"1"})}, "scope.ownerBins[]"),
        ({"categories": frozenset({0})}, "scope.categories[]"),
        ({"digital_objects": frozenset({"portal"})}, "scope.digitalObjects[]"),
    ],
)
def test_grant_facts_refuse_hostile_identifiers(change: dict[str, Any], field: str) -> None:
    with pytest.raises(IdentifierError) as caught:
        dataclasses.replace(grant(), **change)
    assert caught.value.field == field
