"""SubjectFunction handlers: check an entry of the function directory and report it in its status."""

from __future__ import annotations

from typing import Any

import kopf

from tksh import GROUP, VERSION
from tksh.conditions import set_condition
from tksh.directory import evaluate_function
from tksh.handlers import Context

PLURAL = "subjectfunctions"


def register(registry: kopf.OperatorRegistry, ctx: Context) -> None:
    phases: dict[str, str] = {}

    def publish() -> None:
        for phase in ("Active", "Invalid"):
            ctx.metrics.directory_functions.labels(phase=phase).set(
                sum(1 for p in phases.values() if p == phase)
            )

    @kopf.on.resume(GROUP, VERSION, PLURAL, registry=registry, id="directory")
    @kopf.on.create(GROUP, VERSION, PLURAL, registry=registry, id="directory")
    @kopf.on.update(GROUP, VERSION, PLURAL, registry=registry, id="directory", field="spec")
    def reconcile(
        spec: kopf.Spec, status: kopf.Status, meta: kopf.Meta, body: kopf.Body, patch: kopf.Patch, **_: Any
    ) -> None:
        verdict = evaluate_function(spec)
        generation = meta.get("generation")
        patch.status["phase"] = verdict.phase
        patch.status["message"] = verdict.message
        patch.status["observedGeneration"] = generation
        patch.status["conditions"] = set_condition(
            status.get("conditions"),
            "Ready",
            "True" if verdict.valid else "False",
            verdict.reason,
            verdict.message,
            observed_generation=generation,
        )
        previous = phases.get(meta["name"])
        phases[meta["name"]] = verdict.phase
        publish()
        ctx.metrics.reconciliations.labels(kind="SubjectFunction", result="ok" if verdict.valid else "invalid").inc()
        if previous != verdict.phase:
            if verdict.valid:
                kopf.info(body, reason=verdict.reason, message=verdict.message)
            else:
                kopf.warn(body, reason=verdict.reason, message=verdict.message)

    @kopf.on.delete(GROUP, VERSION, PLURAL, registry=registry, id="directory-forget", optional=True)
    def forget(meta: kopf.Meta, **_: Any) -> None:
        phases.pop(meta["name"], None)
        publish()
