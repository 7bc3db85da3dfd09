"""kopf settings for tksh: our own finalizer and annotation prefixes, peering, timeouts."""

from __future__ import annotations

import logging

import kopf

from tksh import GROUP
from tksh.config import OperatorConfig

FINALIZER = f"{GROUP}/finalizer"


def make_settings(config: OperatorConfig) -> kopf.OperatorSettings:
    settings = kopf.OperatorSettings()
    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=GROUP, key="last-handled-configuration"
    )
    settings.posting.level = logging.INFO
    settings.posting.reporting_component = "tksh-operator"
    settings.peering.name = config.peering_name
    settings.peering.priority = config.priority
    settings.peering.standalone = config.standalone
    # Several replicas must never all act: without the peering CRD they wait instead of running unpeered.
    settings.peering.mandatory = not config.standalone
    settings.peering.clusterwide = not config.namespaces
    # A watch that stays silent this long is restarted: protects against half-dead connections.
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    # Resources are found by API discovery, not by reading CRD objects: the role needs no CRD access.
    settings.scanning.disabled = True
    settings.networking.enforce_retry_after = True  # honour 429 Retry-After from the API server
    if config.admission_port:  # the validating webhook (tksh.handlers.admission); its configuration is not managed
        settings.admission.server = kopf.WebhookServer(
            addr=config.admission_addr,
            port=config.admission_port,
            insecure=config.admission_insecure,
            certfile=config.admission_certfile or None,
            pkeyfile=config.admission_keyfile or None,
        )
    if config.fast:
        settings.posting.default_backoffs = (0.1, 0.2, 0.5)
        settings.networking.error_backoffs = (0.1, 0.2, 0.5, 1)
        settings.watching.reconnect_backoff = 0.05
        settings.queueing.idle_timeout = 1.0
        settings.queueing.exit_timeout = 1.0
        settings.execution.default_backoff = 0.5
        settings.persistence.consistency_timeout = 1.0
        settings.background.instant_exit_timeout = 0.5
    return settings
