"""The manifests in examples/ are valid against the generated CRDs and the directory rules."""

from pathlib import Path
from typing import Any

import pytest
import yaml

from tksh.directory import evaluate_function
from tksh.resources import info_for
from tksh.resources.validation import admit

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def documents() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in sorted(EXAMPLES.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if doc and doc["apiVersion"].startswith("tksh.kz/"):
                found.append((f"{path.name}:{doc['metadata']['name']}", doc))
    return found


def test_examples_cover_every_kind() -> None:
    kinds = {doc["kind"] for _, doc in documents()}
    assert kinds == {"SubjectFunction", "CentralComponent", "DigitalObject", "AccessGrant"}


@pytest.mark.parametrize(("where", "doc"), documents(), ids=[w for w, _ in documents()])
def test_example_is_admitted_by_its_schema(where: str, doc: dict[str, Any]) -> None:
    _, errors = admit(info_for(doc["kind"]), doc)
    assert errors == []


def test_directory_examples_follow_the_directory_rules() -> None:
    for _, doc in documents():
        if doc["kind"] == "SubjectFunction":
            assert evaluate_function(doc["spec"]).valid, doc["metadata"]["name"]


def test_functions_named_by_examples_exist_in_the_directory() -> None:
    directory = {doc["metadata"]["name"] for _, doc in documents() if doc["kind"] == "SubjectFunction"}
    for where, doc in documents():
        for name in doc["spec"].get("functions", []):
            assert name in directory, f"{where} names unknown function {name}"
