"""The ``tksh`` command line: arguments are validated and named in errors; crds prints and checks."""

from __future__ import annotations

import pytest
import yaml

from tksh import __version__
from tksh.cli import main, repo_root


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["version"]) == 0
    assert capsys.readouterr().out.strip() == __version__


def test_crds_prints_every_generated_crd(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["crds"]) == 0
    documents = [doc for doc in yaml.safe_load_all(capsys.readouterr().out) if doc]
    assert {doc["spec"]["names"]["kind"] for doc in documents} == {
        "DigitalObject", "SubjectFunction", "AccessGrant", "Incident", "CentralComponent",
    }
    assert all(doc["kind"] == "CustomResourceDefinition" for doc in documents)


def test_crds_check_passes_on_this_checkout() -> None:
    assert main(["crds", "--check", "--root", str(repo_root())]) == 0


def test_crds_check_fails_and_says_what_to_run(tmp_path: object, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["crds", "--check", "--root", str(tmp_path)]) == 1
    assert "make crds" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["operator", "--ops-port", "70000"], "--ops-port"),
        (["sandbox", "--duration", "-1"], "--duration"),
        (["sandbox", "--smtp-port", "smtp"], "--smtp-port"),
        (["frobnicate"], "frobnicate"),
    ],
)
def test_bad_arguments_are_refused_naming_them(
    argv: list[str], named: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    assert named in capsys.readouterr().err


def test_operator_refuses_bad_configuration_before_starting(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["operator", "--namespace", "Not_A_Namespace"]) == 2
    assert "namespaces" in capsys.readouterr().err


def test_kubectl_finds_the_plugin() -> None:
    """``kubectl tksh ...`` works: kubectl runs ``kubectl-tksh`` found on PATH."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    result = subprocess.run(
        [str(bin_dir / "kubectl"), "tksh", "version"], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == __version__
