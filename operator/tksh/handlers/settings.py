"""kopf settings for tksh: our own finalizer and annotation prefixes, peering, timeouts."""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Iterator

import kopf

from tksh import GROUP
from tksh.config import OperatorConfig

FINALIZER = f"{GROUP}/finalizer"


class Unending:
    """API retry backoffs that never run out: ``delays``, then ``then`` seconds again and again.

    kopf gives up on a request after its ``error_backoffs`` (5xx, connection errors, timeouts) and
    re-raises; in a watch-stream that ends the whole operator process. An API server that is down or
    answers 500 for longer than the backoffs add up to (a control-plane upgrade) must not kill the
    operator: it keeps retrying, as Kubernetes controllers do. Not ``Sized``, so kopf counts attempts
    without a total; iterated anew for every request.

    At shutdown the retries must end, or a request that keeps failing (the last peering keep-alive
    against an API server that is down, or that forbids it) would keep the process from exiting:
    :meth:`stop` ends every iteration, including those under way (``tksh.run`` calls it when the
    operator is told to stop).
    """

    def __init__(self, delays: tuple[float, ...], then: float) -> None:
        self.delays, self.then = delays, then
        self._stopping = threading.Event()

    def stop(self) -> None:
        self._stopping.set()

    def __iter__(self) -> Iterator[float]:
        for delay in itertools.chain(self.delays, itertools.repeat(self.then)):
            if self._stopping.is_set():
                return
            yield delay


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
    settings.peering.lifetime = config.peering_lifetime  # the longest a standby waits for a dead active replica
    # Several replicas must never all act: without the peering CRD they wait instead of running unpeered.
    settings.peering.mandatory = not config.standalone
    settings.peering.clusterwide = not config.namespaces
    # A watch that stays silent this long is restarted: protects against half-dead connections.
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    # Resources are found by API discovery, not by reading CRD objects: the role needs no CRD access.
    settings.scanning.disabled = True
    settings.networking.enforce_retry_after = True  # honour 429 Retry-After from the API server
    settings.networking.error_backoffs = Unending((1, 1, 2, 3, 5, 8, 13, 21), then=30)
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
        settings.networking.error_backoffs = Unending((0.1, 0.2, 0.5), then=1)
        settings.watching.reconnect_backoff = 0.05
        settings.queueing.idle_timeout = 1.0
        settings.queueing.exit_timeout = 1.0
        settings.execution.default_backoff = 0.5
        settings.persistence.consistency_timeout = 1.0
        settings.background.instant_exit_timeout = 0.5
    return settings
