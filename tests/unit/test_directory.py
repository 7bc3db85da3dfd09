from tksh.directory import evaluate_function


def spec(*rights: tuple[int, list[str]]) -> dict[str, object]:
    return {
        "titles": {"kk": "ПИК", "ru": "ОСИ", "en": "Owners' association"},
        "subjectTypes": ["PropertyOwnersAssociation"],
        "rights": [{"category": c, "actions": a} for c, a in rights],
    }


def test_valid_function_is_active() -> None:
    verdict = evaluate_function(spec((2, ["read", "write"]), (5, ["read", "write", "sign"]), (6, ["read"])))
    assert verdict.valid
    assert (verdict.phase, verdict.reason) == ("Active", "Accepted")


def test_duplicate_category_is_named_with_both_positions() -> None:
    verdict = evaluate_function(spec((3, ["read"]), (3, ["write"])))
    assert not verdict.valid
    assert verdict.phase == "Invalid"
    assert "spec.rights[1].category" in verdict.message
    assert "spec.rights[0]" in verdict.message


def test_writing_signed_categories_requires_sign() -> None:
    verdict = evaluate_function(spec((5, ["write"]), (6, ["read", "write"]), (7, ["write"])))
    fields = [p.field for p in verdict.problems]
    assert fields == ["spec.rights[0].actions", "spec.rights[1].actions"]
    assert "§8" in verdict.message


def test_reading_signed_categories_needs_no_sign() -> None:
    assert evaluate_function(spec((5, ["read"]), (6, ["read"]))).valid


def test_empty_rights_are_left_to_the_schema() -> None:
    assert evaluate_function({}).valid
