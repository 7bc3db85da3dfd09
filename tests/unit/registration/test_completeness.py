"""§16 completeness: every missing or invalid item of an application, by field path, sorted and stable."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from typing import Any

import pytest

from tests.unit.registration.data import APPLICATION, BIN_SECOND_WEIGHTS, DIRECTORY
from tksh.registration.completeness import (
    DirectoryEntry,
    Problem,
    bin_checksum_valid,
    check_application,
    directory_from_objects,
)

Spec = dict[str, Any]


def drop(*path: str) -> Callable[[Spec], None]:
    def change(spec: Spec) -> None:
        node = spec
        for key in path[:-1]:
            node = node[key]
        del node[path[-1]]

    return change


def put(value: Any, *path: str) -> Callable[[Spec], None]:
    def change(spec: Spec) -> None:
        node = spec
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value

    return change


CASES: list[tuple[str, Callable[[Spec], None], list[tuple[str, str]]]] = [
    ("no owner", drop("owner"), [("spec.owner.bin", "missing"), ("spec.owner.email", "missing"),
                                 ("spec.owner.name", "missing"), ("spec.owner.subjectType", "missing")]),
    ("no bin", drop("owner", "bin"), [("spec.owner.bin", "missing")]),
    ("blank bin", put("   ", "owner", "bin"), [("spec.owner.bin", "missing")]),
    ("short bin", put("14054000123", "owner", "bin"), [("spec.owner.bin", "bin-format")]),
    ("letters in bin", put("14054000123X", "owner", "bin"), [("spec.owner.bin", "bin-format")]),
    ("bad check digit", put("140540001232", "owner", "bin"), [("spec.owner.bin", "bin-checksum")]),
    ("both sums 10", put("301240001000", "owner", "bin"), [("spec.owner.bin", "bin-checksum")]),
    ("second weights ok", put(BIN_SECOND_WEIGHTS, "owner", "bin"), []),
    ("blank name", put(" \t ", "owner", "name"), [("spec.owner.name", "missing")]),
    ("name not text", put(42, "owner", "name"), [("spec.owner.name", "missing")]),
    ("no subject type", drop("owner", "subjectType"), [("spec.owner.subjectType", "missing")]),
    ("unknown subject type", put("Astronaut", "owner", "subjectType"),
     [("spec.owner.subjectType", "subject-type-unknown")]),
    ("no email", drop("owner", "email"), [("spec.owner.email", "missing")]),
    ("blank email", put("", "owner", "email"), [("spec.owner.email", "missing")]),
    ("bad email", put("board at dostyk", "owner", "email"), [("spec.owner.email", "email-invalid")]),
    ("no phone is fine", drop("owner", "phone"), []),
    ("no functions", put([], "functions"), [("spec.functions", "missing")]),
    ("functions absent", drop("functions"), [("spec.functions", "missing")]),
    ("unknown function", put(["owners-association", "meetings", "ghost"], "functions"),
     [("spec.functions[2]", "function-unknown")]),
    ("inactive function", put(["owners-association", "meetings", "broken"], "functions"),
     [("spec.functions[2]", "function-inactive")]),
    ("function not for this subject type", put(["owners-association", "meetings", "utility-supply"], "functions"),
     [("spec.functions[2]", "function-not-allowed")]),
    ("blank function name", put(["owners-association", "meetings", " "], "functions"),
     [("spec.functions[2]", "missing")]),
    ("no categories", put([], "categories"), [("spec.categories", "missing")]),
    ("category out of range", put([2, 16], "categories"), [("spec.categories[1]", "category-invalid")]),
    ("category not covered", put([2, 3, 7], "categories"), [("spec.categories[1]", "category-not-covered")]),
    ("no endpoint", drop("endpoint"), [("spec.endpoint.url", "missing")]),
    ("blank url", put(" ", "endpoint", "url"), [("spec.endpoint.url", "missing")]),
    ("ftp url", put("ftp://osi.example.kz", "endpoint", "url"), [("spec.endpoint.url", "url-invalid")]),
]


@pytest.mark.parametrize(("change", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_items(change: Callable[[Spec], None], expected: list[tuple[str, str]]) -> None:
    spec = copy.deepcopy(APPLICATION)
    change(spec)
    verdict = check_application(spec, DIRECTORY)
    assert [(p.path, p.code) for p in verdict.problems] == expected
    assert verdict.complete is (not expected)
    assert verdict.missing == list(dict.fromkeys(path for path, _ in expected))


def test_the_complete_application_is_complete(application: Spec, directory: dict[str, Any]) -> None:
    verdict = check_application(application, directory)
    assert verdict.complete and verdict.problems == () and verdict.missing == []
    assert verdict.message == "the application is complete"


def test_every_problem_is_reported_sorted_with_indices_in_number_order(directory: dict[str, Any]) -> None:
    spec: Spec = {
        "owner": {"bin": "140540001232", "name": "", "subjectType": "PropertyOwnersAssociation"},
        "functions": [f"ghost-{i}" for i in range(12)],
        "categories": [2],
    }
    paths = [p.path for p in check_application(spec, directory).problems]
    functions = [p for p in paths if p.startswith("spec.functions")]
    assert functions == [f"spec.functions[{i}]" for i in range(12)]  # [2] before [10]
    assert paths == [
        "spec.categories[0]", "spec.endpoint.url", *functions, "spec.owner.bin", "spec.owner.email", "spec.owner.name",
    ]
    assert check_application(spec, directory) == check_application(copy.deepcopy(spec), dict(directory))


def test_empty_application_lists_everything() -> None:
    verdict = check_application({}, {})
    assert verdict.missing == [
        "spec.categories", "spec.endpoint.url", "spec.functions",
        "spec.owner.bin", "spec.owner.email", "spec.owner.name", "spec.owner.subjectType",
    ]


def test_no_coverage_noise_when_the_root_problem_is_elsewhere(application: Spec) -> None:
    application["owner"]["subjectType"] = "Astronaut"
    assert [p.code for p in check_application(application, DIRECTORY).problems] == ["subject-type-unknown"]
    application["owner"]["subjectType"] = "PropertyOwnersAssociation"
    application["functions"] = []
    assert [p.code for p in check_application(application, DIRECTORY).problems] == ["missing"]


def test_an_unusable_function_covers_nothing(application: Spec) -> None:
    application["functions"] = ["meetings", "broken"]
    application["categories"] = [3, 7]
    codes = [(p.path, p.code) for p in check_application(application, DIRECTORY).problems]
    assert codes == [("spec.categories[0]", "category-not-covered"), ("spec.functions[1]", "function-inactive")]


def test_texts_in_three_languages_without_personal_data(application: Spec) -> None:
    application["owner"]["bin"] = "140540001232"
    application["functions"] = ["owners-association", "meetings", "utility-supply"]
    application["categories"] = [2, 3]
    verdict = check_application(application, DIRECTORY)
    for problem in verdict.problems:
        for lang in ("en", "kk", "ru"):
            text = problem.text(lang)
            assert text.startswith(problem.path)
            assert "140540001232" not in text and "board@" not in text and "Достық" not in text
    by_path = {p.path: p for p in verdict.problems}
    assert "БИН владельца" in by_path["spec.owner.bin"].text("ru")
    assert "БСН" in by_path["spec.owner.bin"].text("kk")
    assert "utility-supply" in by_path["spec.functions[2]"].text("kk")
    assert "объединение собственников" in by_path["spec.functions[2]"].text("ru")  # the subject type's title
    assert "капитальный ремонт" in by_path["spec.categories[1]"].text("ru")  # category 3's title
    assert "140540001232" not in verdict.message


def test_personal_data_typed_into_a_token_is_masked(application: Spec) -> None:
    application["functions"] = ["140540001231"]
    verdict = check_application(application, DIRECTORY)
    assert all("140540001231" not in p.encode() for p in verdict.problems)


def test_problems_round_trip_through_one_line() -> None:
    problem = Problem("spec.functions[2]", "function-not-allowed", ("utility-supply", "PropertyOwnersAssociation"))
    assert Problem.decode(problem.encode()) == problem
    assert " " not in problem.path and re.fullmatch(r"\S+ \S+ \S+ \S+", problem.encode())


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("140540001231", True),
        ("180840004561", True),
        (BIN_SECOND_WEIGHTS, True),
        ("140540001230", False),
        ("301240001000", False),
        ("301240001009", False),
        ("12345678901", False),
        ("1234567890123", False),
        ("", False),
    ],
)
def test_bin_checksum(value: str, valid: bool) -> None:
    assert bin_checksum_valid(value) is valid


def test_directory_entries_from_objects_and_specs() -> None:
    objects = [{"metadata": {"name": name}, **body} for name, body in DIRECTORY.items()]
    directory = directory_from_objects(objects)
    assert directory["owners-association"] == DirectoryEntry(
        frozenset({"PropertyOwnersAssociation"}), frozenset({1, 2, 5, 6}), True)
    assert directory["broken"].active is False
    # a bare spec without a phase: the directory rules decide (write on 5 without sign is invalid)
    bare = {"subjectTypes": ["CondominiumManager"], "rights": [{"category": 5, "actions": ["write"]}]}
    assert DirectoryEntry.from_object(bare).active is False
    bare["rights"] = [{"category": 5, "actions": ["write", "sign"]}]
    assert DirectoryEntry.from_object(bare).active is True
    assert DirectoryEntry.from_object({**bare, "phase": "Invalid"}).active is False
