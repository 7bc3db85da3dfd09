"""One problem with one field of an object: what every rule beyond the schema reports."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class FieldProblem:
    """The field path (``spec.rights[1].actions``) and a sentence for the person who wrote it."""

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"
