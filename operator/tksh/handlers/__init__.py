"""kopf handlers: thin glue from the custom resources to the pure logic modules.

Handlers are registered into an explicit ``kopf.OperatorRegistry`` built per operator instance
(never the global default registry), so tests get a fresh registry each and several operators
can run in one process.
"""

from __future__ import annotations

import dataclasses

import kopf

from tksh.config import OperatorConfig
from tksh.metrics import OperatorMetrics


@dataclasses.dataclass
class Context:
    """What every handler module needs: the configuration and the metrics of this operator."""

    config: OperatorConfig
    metrics: OperatorMetrics


def build_registry(ctx: Context) -> kopf.OperatorRegistry:
    from tksh.handlers import (
        admission,
        directory,
        grants,
        kopfscale,
        kopfwatch,
        login,
        monitoring,
        pausegate,
        registration,
        tokens,
    )

    kopfscale.install()
    kopfwatch.install(ctx.metrics)
    pausegate.install()
    registry = kopf.OperatorRegistry()
    login.register(registry, ctx)
    directory.register(registry, ctx)
    registration.register(registry, ctx)
    admission.register(registry, ctx)
    tokens.register(registry, ctx)
    grants.register(registry, ctx)
    monitoring.register(registry, ctx)
    return registry
