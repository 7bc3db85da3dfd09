"""GrantLinks: the grants of one subject in a namespace, and the delegates of a principal, kept per grant."""

from __future__ import annotations

from tksh.access.links import GrantLinks


def spec(subject: str, principal: str | None = None) -> dict[str, object]:
    body: dict[str, object] = {"subject": {"id": subject, "kind": "person"}}
    if principal is not None:
        body["delegatedFrom"] = principal
    return body


def test_subjects_and_delegates_are_found_per_namespace() -> None:
    links = GrantLinks()
    links.update("a/chair", "a", spec("person:1"))
    links.update("a/deputy", "a", spec("person:1", principal="chair"))
    links.update("b/chair", "b", spec("person:1"))
    assert sorted(links.same_subject("a", "person:1")) == ["a/chair", "a/deputy"]
    assert links.same_subject("b", "person:1") == ["b/chair"]
    assert links.delegates("a/chair") == ["a/deputy"]
    assert links.delegates("b/chair") == [] and links.same_subject("a", "person:2") == []


def test_a_changed_spec_moves_the_grant_and_a_removed_one_leaves_nothing() -> None:
    links = GrantLinks()
    links.update("a/deputy", "a", spec("person:1", principal="chair"))
    links.update("a/deputy", "a", spec("person:2", principal="other"))
    assert links.same_subject("a", "person:1") == [] and links.delegates("a/chair") == []
    assert links.same_subject("a", "person:2") == ["a/deputy"] and links.delegates("a/other") == ["a/deputy"]
    links.remove("a/deputy")
    links.remove("a/deputy")  # twice: nothing to do
    assert len(links) == 0 and links.same_subject("a", "person:2") == [] and links.delegates("a/other") == []


def test_an_unreadable_spec_is_kept_under_an_empty_subject() -> None:
    links = GrantLinks()
    links.update("a/odd", "a", {"subject": "not a mapping", "delegatedFrom": 7})
    assert links.same_subject("a", "") == ["a/odd"] and len(links) == 1
