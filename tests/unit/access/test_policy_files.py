"""policies/: the model denies by default, and the static base-policy files are what they claim."""

from __future__ import annotations

import datetime
from pathlib import Path

import casbin
import pytest
import yaml

from tksh.access import PolicyFileError, function_rights, load_function_rights, load_open_part, model_path
from tksh.access.policy import policies_dir
from tksh.access.reference import Reference
from tksh.resources import SubjectFunction

REPO = Path(__file__).resolve().parents[3]


def test_functions_csv_is_the_example_directory() -> None:
    with (REPO / "examples" / "10-function-directory.yaml").open() as stream:
        directory = [SubjectFunction.model_validate(doc) for doc in yaml.safe_load_all(stream) if doc]
    expected = {entry.metadata.name: function_rights(entry) for entry in directory}
    assert load_function_rights() == expected


def test_open_part_is_reading_the_supplier_passport_and_registry() -> None:
    assert load_open_part() == {(9, "read"), (10, "read")}


def test_stock_casbin_reads_the_files_the_same_way() -> None:
    """The strict loaders and Casbin's own CSV reader agree on these static files."""
    enforcer = casbin.Enforcer(str(model_path()), str(policies_dir() / "functions.csv"))
    casbin_links = {tuple(link) for link in enforcer.get_named_grouping_policy("g")}
    ours = {(f"fn:{name}", f"right:{c}:{a}") for name, rights in load_function_rights().items() for c, a in rights}
    assert casbin_links == ours
    enforcer = casbin.Enforcer(str(model_path()), str(policies_dir() / "open-part.csv"))
    assert enforcer.get_policy() == [["@anonymous", "*", "open-part", "any", "any", "any"]]
    assert enforcer.enforce("person:x", "140540001231", "10", "read", "")
    assert enforcer.enforce("@anonymous", "140540001231", "9", "read", "")
    assert not enforcer.enforce("@anonymous", "140540001231", "11", "read", "")


def test_the_model_denies_by_default() -> None:
    reference = Reference([], load_function_rights(), (), datetime.datetime.now(datetime.UTC))
    for category in range(1, 16):
        for action in ("read", "write", "sign"):
            assert not reference.allows("person:x", action, category, "140540001231")
    assert "some(where (p.eft == allow))" in model_path().read_text()


@pytest.mark.parametrize(
    ("loader", "text", "message"),
    [
        ("functions", "g, fn:a, right:5:read, extra\n", "expected"),
        ("functions", "g, fn:a,right:5:read\n", "expected"),
        ("functions", "g, fn:a, right:16:read\n", "category"),
        ("functions", "g, fn:-a, right:5:read\n", "function"),
        ("functions", "g, fn:a, right:5:admin\n", "expected"),
        ("functions", "g, fn:ә, right:5:read\n", "ASCII"),
        ("functions", "g, fn:a, right:5:read\r\n", "CR"),
        ("functions", "p, mallory, 1, grant:x, any, any, any\n", "expected"),
        ("open", "g, open-part, right:11:write\np, @anonymous, *, open-part, any, any, any\n", "only be read"),
        ("open", "g, open-part, right:11:read\n", "missing"),
        ("open", "p, person:x, *, open-part, any, any, any\n", "expected"),
    ],
)
def test_the_loaders_refuse_anything_off_grammar(tmp_path: Path, loader: str, text: str, message: str) -> None:
    path = tmp_path / "policy.csv"
    path.write_bytes(text.encode())
    with pytest.raises(PolicyFileError, match=message) as caught:
        (load_function_rights if loader == "functions" else load_open_part)(path)
    assert str(path) in str(caught.value)


def test_the_policies_directory_can_be_moved(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "open-part.csv").write_text("# nothing is open\n")
    monkeypatch.setenv("TKSH_POLICIES_DIR", str(tmp_path))
    assert model_path() == tmp_path / "model.conf"
    assert load_open_part() == frozenset()
