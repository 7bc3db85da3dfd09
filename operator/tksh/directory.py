"""The function directory (§15): rules a SubjectFunction must satisfy beyond its schema.

The CRD schema checks shapes (types, enums, ranges). These rules need the whole entry:

- each §4 category appears at most once in ``rights`` (otherwise two entries could disagree);
- a function that may *write* category 5 (activity reports) or 6 (owners' meetings and voting)
  must also hold ``sign`` for it: §8 lets that information be placed only once the subject
  signs it with an electronic digital signature.

Pure logic: no Kubernetes imports. The handler writes the verdict to the object's status.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from tksh.problems import FieldProblem as Problem

SIGNED_CATEGORIES = frozenset({5, 6})  # §8


@dataclasses.dataclass(frozen=True)
class DirectoryVerdict:
    problems: tuple[Problem, ...]

    @property
    def valid(self) -> bool:
        return not self.problems

    @property
    def phase(self) -> str:
        return "Active" if self.valid else "Invalid"

    @property
    def reason(self) -> str:
        return "Accepted" if self.valid else "InvalidRights"

    @property
    def message(self) -> str:
        if self.valid:
            return "the function is in the directory and may be selected in applications"
        return "; ".join(str(p) for p in self.problems)


def evaluate_function(spec: Mapping[str, Any]) -> DirectoryVerdict:
    """Check one SubjectFunction spec against the directory rules."""
    problems: list[Problem] = []
    rights: Sequence[Mapping[str, Any]] = spec.get("rights") or ()
    seen: dict[int, int] = {}
    for index, right in enumerate(rights):
        category = right.get("category")
        actions = set(right.get("actions") or ())
        if isinstance(category, int):
            if category in seen:
                problems.append(Problem(
                    f"spec.rights[{index}].category",
                    f"category {category} is already listed at spec.rights[{seen[category]}]; list each category once",
                ))
            else:
                seen[category] = index
            if category in SIGNED_CATEGORIES and "write" in actions and "sign" not in actions:
                problems.append(Problem(
                    f"spec.rights[{index}].actions",
                    f"category {category} may be placed only with an electronic digital signature (§8): "
                    "add 'sign' where 'write' is granted",
                ))
    return DirectoryVerdict(tuple(problems))
