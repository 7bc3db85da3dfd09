"""The Python models: what the operator parses and writes, and the vocabularies taken from the Rules."""

from __future__ import annotations

import datetime
from typing import Any

import pydantic
import pytest
from pydantic import BaseModel

from tksh import API_VERSION, GROUP, VERSION
from tksh.resources import (
    ACCESS_GRANTS,
    CENTRAL_COMPONENTS,
    DIGITAL_OBJECTS,
    INCIDENTS,
    INFORMATION_CATEGORIES,
    RESOURCES,
    SUBJECT_FUNCTIONS,
    SUBJECT_TYPE_TITLES,
    TERMINATION_TITLES,
    UTILITY_SUPPLIERS,
    AccessGrant,
    Availability,
    CRDInfo,
    DigitalObject,
    DigitalObjectStatus,
    Incident,
    KubeModel,
    ObjectMeta,
    OutboxEntry,
    SubjectType,
    TerminationReason,
    info_for,
    parse,
)
from tksh.resources.base import camel, rfc3339
from tksh.resources.schema import resource_schema
from tksh.resources.validation import admit, unknown_fields

NOW = datetime.datetime(2026, 7, 13, 9, 0, 0, 123456, tzinfo=datetime.UTC)


def test_resource_refs_unpack_into_kopf_arguments() -> None:
    group, version, plural = DIGITAL_OBJECTS
    assert (group, version, plural) == (GROUP, VERSION, "digitalobjects")
    assert DIGITAL_OBJECTS.api_version == API_VERSION
    assert DIGITAL_OBJECTS.crd_name == "digitalobjects.tksh.kz"
    plurals = [ref.plural for ref in (SUBJECT_FUNCTIONS, ACCESS_GRANTS, INCIDENTS, CENTRAL_COMPONENTS)]
    assert plurals == ["subjectfunctions", "accessgrants", "incidents", "centralcomponents"]


def test_camel_case_names() -> None:
    assert camel("observed_generation") == "observedGeneration"
    assert camel("uptime24h") == "uptime24h"
    assert camel("class_") == "class"
    assert camel("owner_bins") == "ownerBins"


def test_parse_an_object_from_the_api() -> None:
    body = {
        "apiVersion": API_VERSION,
        "kind": "DigitalObject",
        "metadata": {"name": "billing", "namespace": "x", "generation": 2, "managedFields": [{"manager": "kubectl"}]},
        "spec": {"owner": {"bin": "123456789012", "subjectType": "HeatSupplier"}, "categories": [15]},
        "status": {"phase": "Refused", "missing": ["spec.owner.email"], "someFutureField": 1},
    }
    obj = parse(body)
    assert isinstance(obj, DigitalObject)
    assert obj.metadata.generation == 2
    assert obj.spec.owner is not None
    assert obj.spec.owner.subject_type is SubjectType.HEAT_SUPPLIER
    assert obj.spec.owner.email is None
    assert obj.spec.probe.interval_seconds == 2
    assert obj.status.phase == "Refused"
    assert obj.status.missing == ["spec.owner.email"]


def test_parse_refuses_unknown_kinds() -> None:
    with pytest.raises(KeyError, match=r"not a kind of tksh\.kz"):
        parse({"kind": "Pod"})


def test_python_names_are_accepted_too() -> None:
    status = DigitalObjectStatus(phase="UnderReview", review_deadline=NOW)
    assert status.review_deadline == NOW


def test_timestamps_are_written_as_the_api_server_writes_them() -> None:
    status = DigitalObjectStatus(phase="UnderReview", submitted_at=NOW)
    assert status.to_kube()["submittedAt"] == "2026-07-13T09:00:00Z"
    almaty = datetime.timezone(datetime.timedelta(hours=5))
    assert rfc3339(datetime.datetime(2026, 7, 13, 14, 0, tzinfo=almaty)) == "2026-07-13T09:00:00Z"
    with pytest.raises(pydantic.ValidationError):
        DigitalObjectStatus.model_validate({"submittedAt": "2026-07-13T09:00:00"})  # no time zone


def test_to_patch_touches_only_what_was_set() -> None:
    status = DigitalObjectStatus(phase="Integrated", open_incident=None, availability=Availability(state="Up"))
    patch = status.to_patch()
    assert patch == {"phase": "Integrated", "openIncident": None, "availability": {"state": "Up"}}


def test_models_refuse_what_the_schema_refuses() -> None:
    with pytest.raises(pydantic.ValidationError, match="bin"):
        DigitalObject.model_validate({"spec": {"owner": {"bin": "123"}}})
    with pytest.raises(pydantic.ValidationError, match="categories"):
        DigitalObject.model_validate({"spec": {"categories": [16]}})
    with pytest.raises(pydantic.ValidationError, match=r"valid_until|validUntil"):
        AccessGrant.model_validate(
            {
                "spec": {
                    "subject": {"id": "u1", "kind": "person"},
                    "onBehalfOf": {"bin": "123456789012"},
                    "functions": ["f"],
                    "agreement": {"number": "1"},
                }
            }
        )


def test_models_accept_an_incomplete_application() -> None:
    obj = DigitalObject.model_validate({"kind": "DigitalObject", "spec": {}})
    assert obj.spec.owner is None
    assert obj.spec.functions == []


def _model_paths(model: type[BaseModel], prefix: str) -> list[str]:
    """Every JSON field path a model can write, through nested models, lists and optionals."""
    paths = []
    for name, field in model.model_fields.items():
        path = f"{prefix}.{field.alias or camel(name)}"
        paths.append(path)
        for nested in _nested_models(field.annotation):
            paths += _model_paths(nested, path)
    return paths


def _nested_models(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found = []
    for arg in getattr(annotation, "__args__", ()) or ():
        found += _nested_models(arg)
    metadata_origin = getattr(annotation, "__origin__", None)
    if metadata_origin is not None and not found:
        found += _nested_models(metadata_origin)
    return found


def _schema_has(schema: dict[str, Any], dotted: str) -> bool:
    node: dict[str, Any] | None = schema
    for part in dotted.split(".")[1:]:
        while node is not None and node.get("type") == "array":
            node = node.get("items")
        if node is None:
            return False
        node = node.get("properties", {}).get(part)
    return node is not None


@pytest.mark.parametrize("info", RESOURCES, ids=lambda info: info.kind)
def test_every_field_the_models_write_is_declared_in_the_crd(info: CRDInfo) -> None:
    """A real API server prunes undeclared fields: whatever the operator writes must be in the schema."""
    schema = resource_schema(info)
    for part, model in (("spec", info.spec), ("status", info.status)):
        paths = _model_paths(model, part)
        assert len(paths) > 3
        if part == "status":
            assert "status.conditions.lastTransitionTime" in paths  # the walk reaches into nested models
        missing = [path for path in paths if not _schema_has(schema["properties"][part], path)]
        assert missing == []


def test_a_full_status_written_by_the_models_survives_the_api_server() -> None:
    entry = OutboxEntry(id="a.1", channel="email", recipient="a***@x.kz", template="t", created_at=NOW)
    status = DigitalObjectStatus(
        phase="Integrated",
        submitted_at=NOW,
        review_deadline=NOW,
        availability=Availability(state="Up", since=NOW, uptime24h=0.99, uptime30d=0.999),
        outbox=[entry],
        observed_generation=3,
        message="ok",
    )
    body = DigitalObject(metadata=ObjectMeta(name="x", namespace="y"), status=status).to_kube()
    info = info_for("DigitalObject")
    assert unknown_fields(resource_schema(info), body) == []
    stored, errors = admit(info, body)
    assert errors == []
    assert stored["status"] == body["status"]
    assert DigitalObject.model_validate(stored).status.to_kube() == status.to_kube()  # microseconds are dropped


def test_incident_failure_class_uses_the_json_name() -> None:
    incident = Incident.model_validate(
        {
            "spec": {
                "target": {"kind": "CentralComponent", "name": "cz-api"},
                "startedAt": "2026-07-13T09:00:00Z",
                "failure": {"class": "timeout"},
            }
        }
    )
    assert incident.spec.failure.class_ == "timeout"
    assert incident.spec.to_kube()["failure"] == {"class": "timeout"}


def test_every_subject_type_has_three_titles() -> None:
    assert set(SUBJECT_TYPE_TITLES) == set(SubjectType)
    for titles in SUBJECT_TYPE_TITLES.values():
        assert titles.kk.strip() and titles.ru.strip() and titles.en.strip()
    assert len({t.en for t in SUBJECT_TYPE_TITLES.values()}) == len(SubjectType)


def test_subject_types_cover_the_rules() -> None:
    """§2.4 names seven kinds of subject (owners of four kinds of premises) plus "other"; §2.1 seven services."""
    assert len(UTILITY_SUPPLIERS) == 7
    assert len(set(SubjectType) - UTILITY_SUPPLIERS) == 10
    for value in SubjectType:
        assert value.value[0].isupper() and value.value.isalnum()


def test_information_categories_are_the_fifteen_of_paragraph_4() -> None:
    assert list(INFORMATION_CATEGORIES) == list(range(1, 16))


def test_termination_reasons_are_the_seven_grounds_of_paragraph_20_in_order() -> None:
    assert [reason.value for reason in TerminationReason] == [
        "EXPIRED",
        "REVOKED",
        "REFUSED",
        "DELEGATION_TERMINATED",
        "GROUNDS_ENDED",
        "FALSE_INFORMATION",
        "OTHER_BY_LAW",
    ]
    assert [reason.paragraph for reason in TerminationReason] == [f"§20.{n}" for n in range(1, 8)]
    assert set(TERMINATION_TITLES) == set(TerminationReason)
    assert TerminationReason.REVOKED.titles.en.startswith("information revoking")


def test_every_resource_model_is_a_kube_model_with_its_kind() -> None:
    for info in RESOURCES:
        assert issubclass(info.model, KubeModel)
        assert info.model.model_fields["kind"].default == info.kind
        assert info.model.model_fields["api_version"].default == API_VERSION
