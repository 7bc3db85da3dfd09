"""The resources of the API group, in one tuple, and their references for kopf and API clients."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tksh.resources import accessgrant, centralcomponent, digitalobject, incident, subjectfunction
from tksh.resources.base import CRDInfo, KubeModel, ResourceRef

RESOURCES: tuple[CRDInfo, ...] = (
    digitalobject.INFO,
    subjectfunction.INFO,
    accessgrant.INFO,
    incident.INFO,
    centralcomponent.INFO,
)
"""Every custom resource of ``tksh.kz``, in the order of the documentation."""

BY_KIND: Mapping[str, CRDInfo] = {info.kind: info for info in RESOURCES}

DIGITAL_OBJECTS: ResourceRef = digitalobject.INFO.ref
SUBJECT_FUNCTIONS: ResourceRef = subjectfunction.INFO.ref
ACCESS_GRANTS: ResourceRef = accessgrant.INFO.ref
INCIDENTS: ResourceRef = incident.INFO.ref
CENTRAL_COMPONENTS: ResourceRef = centralcomponent.INFO.ref


def info_for(kind: str) -> CRDInfo:
    """The CRD metadata of a kind, e.g. ``info_for("DigitalObject")``."""
    try:
        return BY_KIND[kind]
    except KeyError:
        raise KeyError(f"{kind!r} is not a kind of tksh.kz; known: {', '.join(BY_KIND)}") from None


def parse(body: Mapping[str, Any]) -> KubeModel:
    """Parse an object of any of our kinds into its model, chosen by ``body["kind"]``."""
    return info_for(str(body.get("kind"))).model.model_validate(body)
