"""The vocabulary of ``policies/model.conf`` and strict loaders for the static base-policy files.

``policies/`` holds the Casbin model and two *static, reviewed* policy files: ``functions.csv``
(the rights of the example function directory) and ``open-part.csv`` (the §21 allow-list). These
are parsed here with a strict line grammar rather than Casbin's tokenizer, and every identifier is
validated, so a malformed or hostile line is refused with its file and line number. User data
(subjects, grants, names) never goes through any CSV: :mod:`tksh.access.reference` feeds it to
Casbin through the API.

The node names of the model's role graph are built only here (``grant:``, ``fn:``, ``right:``,
``cat:``, ``bin:``, ``via:``), so the reference and the files agree by construction.

``$TKSH_POLICIES_DIR`` overrides where the files are (an installed package has no repository
around it); the default is the repository's ``policies/``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Final

from tksh.access.facts import FunctionRights, rights_of
from tksh.access.identifiers import ANONYMOUS, validate_function_name

__all__ = [
    "ANY",
    "LISTED",
    "OPEN_PART_NODE",
    "PolicyFileError",
    "category_node",
    "function_node",
    "grant_node",
    "load_function_rights",
    "load_open_part",
    "model_path",
    "owner_node",
    "policies_dir",
    "right_node",
    "via_node",
]

ANY: Final = "any"
"""A scope field of a policy line that does not narrow."""
LISTED: Final = "listed"
"""A scope field of a policy line that narrows to the nodes its grant links to."""
OPEN_PART_NODE: Final = "open-part"
OPEN_PART_DOMAIN: Final = "*"


def grant_node(grant_id: str) -> str:
    return f"grant:{grant_id}"


def function_node(name: str) -> str:
    return f"fn:{name}"


def right_node(category: int, action: str) -> str:
    return f"right:{category}:{action}"


def category_node(category: int) -> str:
    return f"cat:{category}"


def owner_node(bin_: str) -> str:
    return f"bin:{bin_}"


def via_node(digital_object: str) -> str:
    return f"via:{digital_object}"


class PolicyFileError(ValueError):
    """A base-policy file breaks the grammar; the message names the file and the line."""


def policies_dir() -> Path:
    """``$TKSH_POLICIES_DIR``, or the repository's ``policies/``."""
    override = os.environ.get("TKSH_POLICIES_DIR")
    return Path(override) if override else Path(__file__).resolve().parents[3] / "policies"


def model_path() -> Path:
    """The Casbin model: ``policies/model.conf``."""
    return policies_dir() / "model.conf"


_RIGHT = r"right:(?P<category>[0-9]{1,2}):(?P<action>read|write|sign)"
_FUNCTION_LINE = re.compile(rf"g, fn:(?P<name>[a-z0-9.-]{{1,253}}), {_RIGHT}")
_OPEN_RIGHT_LINE = re.compile(rf"g, {OPEN_PART_NODE}, {_RIGHT}")
_OPEN_LINE = f"p, {ANONYMOUS}, {OPEN_PART_DOMAIN}, {OPEN_PART_NODE}, {ANY}, {ANY}, {ANY}"


def _lines(path: Path) -> list[tuple[int, str]]:
    text = path.read_bytes().decode("utf-8")  # not read_text: universal newlines would hide a CR
    if not text.isascii():
        for number, line in enumerate(text.splitlines(), 1):
            if not line.startswith("#") and not line.isascii():
                raise PolicyFileError(f"{path}:{number}: only ASCII is allowed outside comments")
    out = []
    for number, line in enumerate(text.split("\n"), 1):
        if line.endswith("\r"):
            raise PolicyFileError(f"{path}:{number}: CR line endings are not allowed")
        if line and not line.startswith("#"):
            out.append((number, line))
    return out


def _right(path: Path, number: int, match: re.Match[str]) -> tuple[int, str]:
    try:
        (right,) = rights_of([(int(match["category"]), match["action"])])
    except ValueError as error:
        raise PolicyFileError(f"{path}:{number}: {error}") from None
    return right


def load_function_rights(path: Path | None = None) -> dict[str, FunctionRights]:
    """``functions.csv``: lines ``g, fn:<function>, right:<category>:<action>``; ``#`` comments, blank lines."""
    path = path or policies_dir() / "functions.csv"
    rights: dict[str, set[tuple[int, str]]] = {}
    for number, line in _lines(path):
        match = _FUNCTION_LINE.fullmatch(line)
        if match is None:
            raise PolicyFileError(f"{path}:{number}: expected 'g, fn:<function>, right:<category>:<action>'")
        try:
            name = validate_function_name(match["name"], "function")
        except ValueError as error:
            raise PolicyFileError(f"{path}:{number}: {error}") from None
        rights.setdefault(name, set()).add(_right(path, number, match))
    return {name: frozenset(value) for name, value in rights.items()}


def load_open_part(path: Path | None = None) -> FunctionRights:
    """``open-part.csv``: exactly the line ``p, @anonymous, *, open-part, any, any, any`` and lines
    ``g, open-part, right:<category>:<action>``. Only ``read`` may be open."""
    path = path or policies_dir() / "open-part.csv"
    rights: set[tuple[int, str]] = set()
    seen_principal = False
    for number, line in _lines(path):
        if line == _OPEN_LINE:
            seen_principal = True
            continue
        match = _OPEN_RIGHT_LINE.fullmatch(line)
        if match is None:
            raise PolicyFileError(f"{path}:{number}: expected '{_OPEN_LINE}' or 'g, {OPEN_PART_NODE}, right:<c>:read'")
        right = _right(path, number, match)
        if right[1] != "read":
            raise PolicyFileError(f"{path}:{number}: the open part may only be read (§21)")
        rights.add(right)
    if rights and not seen_principal:
        raise PolicyFileError(f"{path}: the anonymous principal line '{_OPEN_LINE}' is missing")
    return frozenset(rights)
