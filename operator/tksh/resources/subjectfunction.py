"""``SubjectFunction``: one entry of the function directory held by the central system (§15).

An applicant selects its functions (competences) from this directory; an access grant names the
functions it gives. Each function says which kinds of subject may hold it and which rights over
the §4 information categories it carries.

Rules over the whole entry (each category listed once; write on categories 5 and 6 needs sign,
§8) are checked by the operator (``tksh.directory``) and reported as phase ``Invalid``.
"""

from __future__ import annotations

from typing import Annotated, Literal, get_args

from pydantic import Field

from tksh import API_VERSION
from tksh.resources.base import AGE_COLUMN, MESSAGE_COLUMN, READY_COLUMN, CRDInfo, KubeModel, ObjectMeta, PrinterColumn
from tksh.resources.common import SET, Category, StatusBase, Titles
from tksh.resources.subjects import SubjectType

Action = Literal["read", "write", "sign"]
SubjectFunctionPhase = Literal["Active", "Invalid"]
SUBJECT_FUNCTION_PHASES: tuple[str, ...] = get_args(SubjectFunctionPhase)


class Right(KubeModel):
    """What a function may do with one §4 information category."""

    category: Category
    """The §4 information category, 1 to 15."""
    actions: Annotated[list[Action], Field(min_length=1, json_schema_extra=SET)]
    """``read`` it, ``write`` (place) it, ``sign`` it with an electronic digital signature (§8)."""


class SubjectFunctionSpec(KubeModel):
    """A function (competence) of the directory and the rights it carries."""

    titles: Titles
    """The function's name in Kazakh, Russian and English, as shown to applicants."""
    subject_types: Annotated[list[SubjectType], Field(min_length=1, json_schema_extra=SET)]
    """The kinds of subject that may hold this function."""
    # A list of {category, actions} rather than a map keyed by category: JSON object keys are strings,
    # and a structural schema cannot constrain keys (no patternProperties), so a map could not say
    # "an integer from 1 to 15". As list items, categories are integers with a range. The list stays
    # atomic (not x-kubernetes-list-type: map) so that a duplicate category reaches the operator, which
    # explains it in the status, instead of being bounced by the API server.
    rights: list[Right] = Field(default_factory=list)
    """The rights over the §4 categories: one entry per category."""


class SubjectFunctionStatus(StatusBase):
    """Whether the entry is usable."""

    phase: SubjectFunctionPhase | None = None
    """``Active``: may be selected in applications and grants; ``Invalid``: breaks a directory rule (see message)."""


class SubjectFunction(KubeModel):
    """A function (competence) of the directory of the central system (§15), with its rights over the
    §4 information categories. Cluster-scoped: the directory is one for everyone."""

    api_version: str = API_VERSION
    kind: Literal["SubjectFunction"] = "SubjectFunction"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: SubjectFunctionSpec
    status: SubjectFunctionStatus = Field(default_factory=SubjectFunctionStatus)


INFO = CRDInfo(
    kind="SubjectFunction",
    plural="subjectfunctions",
    singular="subjectfunction",
    short_names=("sfn",),
    scope="Cluster",
    model=SubjectFunction,
    spec=SubjectFunctionSpec,
    status=SubjectFunctionStatus,
    printer_columns=(
        PrinterColumn("Title", "string", ".spec.titles.en", "The function's English title"),
        PrinterColumn("Phase", "string", ".status.phase", "Active or Invalid"),
        READY_COLUMN,
        AGE_COLUMN,
        MESSAGE_COLUMN,
    ),
)
