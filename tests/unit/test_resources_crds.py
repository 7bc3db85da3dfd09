"""The generated CRDs: valid apiextensions.k8s.io/v1 manifests with structural schemas that accept good
objects and refuse bad ones, naming the field."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest

from tksh import GROUP, VERSION
from tksh.resources import RESOURCES, CRDInfo, info_for
from tksh.resources.schema import crd_manifest, resource_schema
from tksh.resources.structural import check_structural
from tksh.resources.validation import admit, unknown_fields

NOW = "2026-07-13T09:00:00Z"
CONDITION = {
    "type": "Ready",
    "status": "True",
    "reason": "Integrated",
    "message": "",
    "lastTransitionTime": NOW,
    "observedGeneration": 2,
}
OUTBOX = {
    "id": "registration-approved.dobj-1.2",
    "channel": "email",
    "recipient": "a***@example.kz",
    "template": "registration-approved",
    "params": {"object": "billing"},
    "state": "Delivered",
    "createdAt": NOW,
    "attempts": 1,
    "deliveredAt": NOW,
}
AVAILABILITY = {"state": "Up", "since": NOW, "lastCheckedAt": NOW, "uptime24h": 0.995, "uptime30d": 1}

EXAMPLES: dict[str, dict[str, Any]] = {
    "DigitalObject": {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "DigitalObject",
        "metadata": {"name": "billing", "namespace": "suppliers"},
        "spec": {
            "owner": {
                "bin": "123456789012",
                "name": "Almaty Su LLP",
                "subjectType": "WaterSupplier",
                "email": "it@almatysu.kz",
                "phone": "+77011234567",
            },
            "functions": ["water-supplier"],
            "categories": [9, 11, 13, 14],
            "endpoint": {"url": "https://billing.almatysu.kz/api"},
            "probe": {"type": "http", "path": "/healthz", "intervalSeconds": 60},
            "review": {"decision": "Approved", "reviewer": "admin-1", "decidedAt": NOW},
            "agreement": {"number": "INT-2026-001", "signedAt": NOW, "validUntil": "2027-07-13T00:00:00Z"},
        },
        "status": {
            "phase": "Integrated",
            "submittedAt": NOW,
            "reviewDeadline": "2026-07-20T09:00:00Z",
            "decidedAt": NOW,
            "integratedAt": NOW,
            "missing": [],
            "availability": AVAILABILITY,
            "openIncident": "billing-20260713-0900",
            "outbox": [OUTBOX],
            "observedGeneration": 2,
            "message": "integrated",
            "conditions": [CONDITION],
        },
    },
    "SubjectFunction": {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "SubjectFunction",
        "metadata": {"name": "osi-chair"},
        "spec": {
            "titles": {"kk": "МИБ төрағасы", "ru": "председатель ОСИ", "en": "chair of an owners' association"},
            "subjectTypes": ["PropertyOwnersAssociation"],
            "rights": [{"category": 5, "actions": ["read", "write", "sign"]}, {"category": 1, "actions": ["read"]}],
        },
        "status": {"phase": "Active", "observedGeneration": 1, "message": "ok", "conditions": [CONDITION]},
    },
    "AccessGrant": {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "AccessGrant",
        "metadata": {"name": "chair-access", "namespace": "osi"},
        "spec": {
            "subject": {"id": "user:4f2a9c", "kind": "person", "name": "A. Chair"},
            "onBehalfOf": {"bin": "210987654321", "name": "OSI Samal"},
            "delegatedFrom": "osi-root",
            "functions": ["osi-chair"],
            "scope": {"categories": [5, 6], "ownerBins": ["210987654321"], "digitalObjects": ["osi-portal"]},
            "agreement": {"number": "ACC-7", "validFrom": NOW, "validUntil": "2027-01-01T00:00:00Z"},
            "grounds": {"kind": "Membership", "reference": "minutes 3/2026", "validUntil": "2028-01-01T00:00:00Z"},
            "termination": {"reason": "REVOKED", "by": "admin-1", "at": NOW, "note": "board re-elected"},
        },
        "status": {
            "phase": "Terminated",
            "activatedAt": NOW,
            "terminated": {"reason": "REVOKED", "at": NOW, "by": "admin-1", "cascadeFrom": "osi-root", "note": "x"},
            "tokenSecret": "chair-access-token",
            "tokenExpiresAt": NOW,
            "outbox": [OUTBOX],
            "observedGeneration": 4,
            "conditions": [CONDITION],
        },
    },
    "Incident": {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Incident",
        "metadata": {"name": "billing-20260713-0900", "namespace": "suppliers"},
        "spec": {
            "target": {"kind": "DigitalObject", "name": "billing", "namespace": "suppliers"},
            "startedAt": NOW,
            "detectedAt": "2026-07-13T09:01:30Z",
            "failure": {"class": "http_status", "message": "503 Service Unavailable"},
        },
        "status": {
            "phase": "Recovered",
            "recoveryDeadline": "2026-07-13T10:00:00Z",
            "recoveredAt": "2026-07-13T09:20:00Z",
            "durationSeconds": 1200,
            "slaVerdict": "Met",
            "notifications": [
                {"channel": "email", "recipient": "i***@almatysu.kz", "transition": "Opened", "deliveredAt": NOW}
            ],
            "outbox": [OUTBOX],
            "conditions": [CONDITION],
        },
    },
    "CentralComponent": {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "CentralComponent",
        "metadata": {"name": "cz-api"},
        "spec": {"title": "ЦЖ API", "endpoint": {"url": "http://cz-api.tksh-system:8080"}, "critical": True},
        "status": {"availability": AVAILABILITY, "openIncident": "cz-api-1", "conditions": [CONDITION]},
    },
}


def _example(kind: str, **changes: Any) -> dict[str, Any]:
    """A copy of the example with ``changes`` applied at dotted paths (``None`` deletes)."""
    body = copy.deepcopy(EXAMPLES[kind])
    for dotted, value in changes.items():
        *parents, last = dotted.split("__")
        node: Any = body
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        if value is None:
            del node[last]
        elif isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value
    return body


@pytest.fixture(params=RESOURCES, ids=lambda info: info.kind)
def info(request: pytest.FixtureRequest) -> CRDInfo:
    result: CRDInfo = request.param
    return result


DNS_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
PRINTER_TYPES = {"integer", "number", "string", "boolean", "date"}


def test_crd_names_scope_and_version(info: CRDInfo) -> None:
    crd = crd_manifest(info)
    spec = crd["spec"]
    assert crd["apiVersion"] == "apiextensions.k8s.io/v1"
    assert crd["kind"] == "CustomResourceDefinition"
    assert crd["metadata"]["name"] == f"{spec['names']['plural']}.{spec['group']}"
    assert spec["group"] == GROUP
    names = spec["names"]
    assert re.fullmatch(r"[A-Z][A-Za-z0-9]*", names["kind"])
    assert names["listKind"] == names["kind"] + "List"
    assert names["plural"] == names["kind"].lower() + "s"
    assert names["singular"] == names["kind"].lower()
    for name in (names["plural"], names["singular"], *names["shortNames"], *names["categories"]):
        assert DNS_LABEL.match(name), name
    assert names["categories"] == ["tksh"]
    assert spec["scope"] in ("Namespaced", "Cluster")
    [version] = spec["versions"]
    assert version["name"] == VERSION
    assert version["served"] is True
    assert version["storage"] is True
    assert version["subresources"] == {"status": {}}


def test_short_names_and_scopes_are_the_agreed_ones() -> None:
    found = {info.kind: (info.short_names, info.scope) for info in RESOURCES}
    assert found == {
        "DigitalObject": (("dobj",), "Namespaced"),
        "SubjectFunction": (("sfn",), "Cluster"),
        "AccessGrant": (("grant",), "Namespaced"),
        "Incident": (("inc",), "Namespaced"),
        "CentralComponent": (("ccomp",), "Cluster"),
    }


def test_the_schema_is_structural(info: CRDInfo) -> None:
    assert check_structural(resource_schema(info)) == []


def _resolve(schema: dict[str, Any], json_path: str) -> dict[str, Any] | None:
    """The schema node a printer column's simple JSONPath points at (filters select list items)."""
    node: dict[str, Any] | None = schema
    for step in re.findall(r"\.([A-Za-z0-9]+)(\[\?\(.*?\)\])?", json_path):
        name, selector = step
        if node is None:
            return None
        if name == "metadata" and node is schema:
            return {"type": "object"}
        node = node.get("properties", {}).get(name)
        if node is not None and selector:
            node = node.get("items")
    return node


def test_printer_columns_are_valid_and_point_at_declared_fields(info: CRDInfo) -> None:
    crd = crd_manifest(info)
    [version] = crd["spec"]["versions"]
    columns = version["additionalPrinterColumns"]
    schema = version["schema"]["openAPIV3Schema"]
    assert len({c["name"] for c in columns}) == len(columns)
    for column in columns:
        assert column["type"] in PRINTER_TYPES
        assert column["jsonPath"].startswith(".")
        assert column["description"]
        assert isinstance(column.get("priority", 0), int)
        if column["jsonPath"] != ".metadata.creationTimestamp":
            assert _resolve(schema, column["jsonPath"]) is not None, f"{column['name']}: {column['jsonPath']}"
    names = [c["name"] for c in columns]
    assert "Age" in names
    assert [c["name"] for c in columns if c.get("priority")] == ["Message"]


def test_no_printer_column_shows_personal_data(info: CRDInfo) -> None:
    paths = " ".join(column.json_path for column in info.printer_columns)
    for personal in ("owner", "bin", "email", "phone", "recipient", "subject", "onBehalfOf"):
        assert personal not in paths


def test_digital_object_columns_tell_the_story() -> None:
    columns = {c.name: c for c in info_for("DigitalObject").printer_columns}
    assert list(columns) == ["Phase", "Deadline", "Availability", "Ready", "Age", "Message"]
    assert columns["Deadline"].json_path == ".status.reviewDeadline"
    assert columns["Ready"].json_path == '.status.conditions[?(@.type=="Ready")].status'
    assert columns["Message"].priority == 1


def test_incident_columns() -> None:
    names = [c.name for c in info_for("Incident").printer_columns]
    for wanted in ("Target", "Reason", "Started", "Deadline", "Verdict", "Age"):
        assert wanted in names


def test_examples_are_accepted_whole(info: CRDInfo) -> None:
    body = EXAMPLES[info.kind]
    stored, errors = admit(info, body)
    assert errors == []
    assert unknown_fields(resource_schema(info), body) == []
    assert _contains(stored, body)


def _contains(big: Any, small: Any) -> bool:
    """Whether ``big`` has everything ``small`` has (and maybe defaults on top)."""
    if isinstance(small, dict):
        return isinstance(big, dict) and all(key in big and _contains(big[key], value) for key, value in small.items())
    return bool(big == small)


def test_conditions_follow_the_kubernetes_convention(info: CRDInfo) -> None:
    conditions = resource_schema(info)["properties"]["status"]["properties"]["conditions"]
    assert conditions["x-kubernetes-list-type"] == "map"
    assert conditions["x-kubernetes-list-map-keys"] == ["type"]
    item = conditions["items"]
    assert item["required"] == ["type", "status", "reason", "message", "lastTransitionTime"]
    assert item["properties"]["status"]["enum"] == ["True", "False", "Unknown"]
    assert item["properties"]["lastTransitionTime"]["format"] == "date-time"
    assert item["properties"]["observedGeneration"] == {
        "description": item["properties"]["observedGeneration"]["description"],
        "type": "integer",
        "format": "int64",
        "minimum": 0,
    }
    assert item["properties"]["reason"]["pattern"] == "^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$"


def test_an_incomplete_application_reaches_the_operator() -> None:
    """§16: an incomplete application is refused by the operator with a list, not bounced by the API server."""
    info = info_for("DigitalObject")
    bare = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "DigitalObject", "metadata": {"name": "x", "namespace": "y"}}
    _, errors = admit(info, bare)
    assert errors == []
    half = _example("DigitalObject", spec__owner={"bin": "123456789012"}, spec__functions=[], spec__endpoint={})
    _, errors = admit(info, half)
    assert errors == []


def test_probe_defaults_are_filled_in_by_the_api_server() -> None:
    stored, errors = admit(info_for("DigitalObject"), _example("DigitalObject", spec__probe=None))
    assert errors == []
    assert stored["spec"]["probe"] == {
        "type": "http",
        "path": "/healthz",
        "intervalSeconds": 2,
        "timeoutSeconds": 2,
        "failureThreshold": 3,
        "expectedStatus": 200,
    }


BAD: list[tuple[str, dict[str, Any], str]] = [
    ("DigitalObject", {"spec__owner__bin": "12345678901"}, "spec.owner.bin: '12345678901' does not match"),
    ("DigitalObject", {"spec__owner__bin": "12345678901a"}, "spec.owner.bin: "),
    ("DigitalObject", {"spec__categories": [9, 16]}, "spec.categories[1]: 16 is greater than the maximum of 15"),
    ("DigitalObject", {"spec__categories": [0]}, "spec.categories[0]: 0 is less than the minimum of 1"),
    ("DigitalObject", {"spec__categories": [9, 9]}, "spec.categories[1]: duplicate entry 9"),
    ("DigitalObject", {"spec__functions": ["Water_Supplier"]}, "spec.functions[0]: 'Water_Supplier' does not match"),
    ("DigitalObject", {"spec__owner__subjectType": "Bank"}, "spec.owner.subjectType: 'Bank' is not one of"),
    ("DigitalObject", {"spec__owner__email": "not-an-address"}, "spec.owner.email: "),
    ("DigitalObject", {"spec__owner__phone": "8 701 123 45 67"}, "spec.owner.phone: "),
    ("DigitalObject", {"spec__endpoint__url": "ftp://billing.kz"}, "spec.endpoint.url: "),
    ("DigitalObject", {"spec__probe__intervalSeconds": 0}, "spec.probe.intervalSeconds: 0 is less than the minimum"),
    ("DigitalObject", {"spec__probe__type": "icmp"}, "spec.probe.type: 'icmp' is not one of"),
    ("DigitalObject", {"spec__probe__expectedStatus": 600}, "spec.probe.expectedStatus: 600 is greater"),
    ("DigitalObject", {"spec__review__decision": "Maybe"}, "spec.review.decision: 'Maybe' is not one of"),
    ("DigitalObject", {"spec__review__reviewer": None}, "spec.review.reviewer: required"),
    ("DigitalObject", {"spec__agreement__signedAt": "yesterday"}, "spec.agreement.signedAt: 'yesterday' is not a"),
    ("DigitalObject", {"status__phase": "Done"}, "status.phase: 'Done' is not one of"),
    ("DigitalObject", {"status__availability__uptime24h": 1.5}, "status.availability.uptime24h: 1.5 is greater"),
    ("DigitalObject", {"status__outbox__0__channel": "sms"}, "status.outbox[0].channel: 'sms' is not one of"),
    ("DigitalObject", {"status__conditions__0__status": "Yes"}, "status.conditions[0].status: 'Yes' is not one of"),
    ("DigitalObject", {"status__conditions__0__reason": "not camel"}, "status.conditions[0].reason: 'not camel'"),
    ("DigitalObject", {"status__conditions__0__lastTransitionTime": None}, "[0].lastTransitionTime: required"),
    ("DigitalObject", {"status__conditions__0__observedGeneration": -1}, "[0].observedGeneration: -1 is less"),
    ("DigitalObject", {"status__conditions": [CONDITION, CONDITION]}, "status.conditions[1]: duplicate entry type="),
    ("SubjectFunction", {"spec__titles__kk": ""}, "spec.titles.kk: '' should be non-empty"),
    ("SubjectFunction", {"spec__titles__en": None}, "spec.titles.en: required"),
    ("SubjectFunction", {"spec__subjectTypes": []}, "spec.subjectTypes: [] should be non-empty"),
    ("SubjectFunction", {"spec__rights__0__category": 16}, "spec.rights[0].category: 16 is greater"),
    ("SubjectFunction", {"spec__rights__0__actions": ["read", "delete"]}, "spec.rights[0].actions[1]: 'delete'"),
    ("SubjectFunction", {"spec__rights__0__actions": []}, "spec.rights[0].actions: [] should be non-empty"),
    ("SubjectFunction", {"status__phase": "Pending"}, "status.phase: 'Pending' is not one of"),
    ("AccessGrant", {"spec__subject__id": "User 1"}, "spec.subject.id: 'User 1' does not match"),
    ("AccessGrant", {"spec__subject__kind": "robot"}, "spec.subject.kind: 'robot' is not one of"),
    ("AccessGrant", {"spec__onBehalfOf__bin": "1"}, "spec.onBehalfOf.bin: '1' does not match"),
    ("AccessGrant", {"spec__functions": []}, "spec.functions: [] should be non-empty"),
    ("AccessGrant", {"spec__agreement__validUntil": None}, "spec.agreement.validUntil: required"),
    ("AccessGrant", {"spec__scope__ownerBins": ["12"]}, "spec.scope.ownerBins[0]: '12' does not match"),
    ("AccessGrant", {"spec__grounds__kind": "Friendship"}, "spec.grounds.kind: 'Friendship' is not one of"),
    ("AccessGrant", {"spec__termination__reason": "BORED"}, "spec.termination.reason: 'BORED' is not one of"),
    ("AccessGrant", {"status__phase": "Expired"}, "status.phase: 'Expired' is not one of"),
    ("AccessGrant", {"status__terminated__at": None}, "status.terminated.at: required"),
    ("Incident", {"spec__target__kind": "Pod"}, "spec.target.kind: 'Pod' is not one of"),
    ("Incident", {"spec__failure__class": "cosmic-rays"}, "spec.failure.class: 'cosmic-rays' is not one of"),
    ("Incident", {"spec__startedAt": None}, "spec.startedAt: required"),
    ("Incident", {"status__slaVerdict": "Late"}, "status.slaVerdict: 'Late' is not one of"),
    ("Incident", {"status__notifications__0__transition": "Reminder60"}, "notifications[0].transition: 'Reminder60'"),
    ("Incident", {"status__durationSeconds": -5}, "status.durationSeconds: -5 is less than the minimum of 0"),
    ("CentralComponent", {"spec__critical": "yes"}, "spec.critical: 'yes' is not of type 'boolean'"),
]


@pytest.mark.parametrize(("kind", "changes", "expected"), BAD, ids=[f"{k}-{e.split(':')[0]}" for k, _, e in BAD])
def test_bad_objects_are_refused_naming_the_field(kind: str, changes: dict[str, Any], expected: str) -> None:
    # ``expected`` reads as the violation in words; the API server's exact wording is the embedded
    # server's to match (tests/sandbox/test_schema.py): here the point is that the field is named.
    field = expected.split(": ")[0]
    _, errors = admit(info_for(kind), _example(kind, **changes))
    assert any(error.split(": ")[0].endswith(field) for error in errors), errors


def test_central_component_without_url_is_accepted_by_shape_but_typed() -> None:
    # The endpoint object is required; its url is optional in the shared Endpoint model, so a missing URL
    # reaches the operator (the same rule as for applications) instead of being bounced.
    _, errors = admit(info_for("CentralComponent"), _example("CentralComponent", spec__endpoint__url=None))
    assert errors == []
    _, errors = admit(info_for("CentralComponent"), _example("CentralComponent", spec__endpoint=None))
    assert errors == ["spec.endpoint: Required value"]


def test_required_spec_only_where_the_spec_has_required_fields() -> None:
    required = {info.kind: "spec" in resource_schema(info).get("required", []) for info in RESOURCES}
    assert required == {
        "DigitalObject": False,
        "SubjectFunction": True,
        "AccessGrant": True,
        "Incident": True,
        "CentralComponent": True,
    }


def test_unknown_fields_are_what_the_api_server_would_prune() -> None:
    body = _example("DigitalObject", spec__owner__iin="900101300123", status__colour="green")
    assert unknown_fields(resource_schema(info_for("DigitalObject")), body) == ["spec.owner.iin", "status.colour"]
    stored, _ = admit(info_for("DigitalObject"), body)
    assert "iin" not in stored["spec"]["owner"]
    assert "colour" not in stored["status"]
