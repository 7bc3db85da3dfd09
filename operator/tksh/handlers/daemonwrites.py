"""Status writes of the operator's daemons, and the one rule they all keep: none once this replica pauses.

The registration lifecycle, the monitor of each target and the notifier of each incident are kopf
daemons that write mid-run (kopf applies a daemon's ``patch`` kwarg only when the daemon returns, so
they go through kopf's own client, ``patch_obj``, with the operator's credentials). When kopf's
peering pauses this replica in favour of another, kopf asks every daemon to stop
(``DaemonStoppingReason.OPERATOR_PAUSING``) and gives it ``cancellation_timeout`` to finish; a pass
already under way (an e-mail being sent, a probe) would otherwise end with a write after the pause,
when the other replica is the writer. :func:`patch_status` writes nothing from then on, and answers
``None`` as if the object were gone: every caller ends its pass on that, and the active replica
takes the object over from what is stored (a notice sent but not recorded is sent again by it, with
the same idempotency key). Other stops (the object filtered out, the operator exiting alone) still
write, as before: no peer writes in their place.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import kopf
from kopf._cogs.clients.patching import patch_obj
from kopf._cogs.structs import references

__all__ = ["patch_status", "pausing"]

PAUSING = kopf.DaemonStoppingReason.OPERATOR_PAUSING


def pausing(stopped: kopf.DaemonStopped) -> bool:
    """Whether kopf stops this daemon because the replica pauses for a peer (the peer is the writer now)."""
    reason = stopped.reason
    return reason is not None and PAUSING in reason


async def patch_status(stopped: kopf.DaemonStopped, *, settings: kopf.OperatorSettings, resource: kopf.Resource,
                       namespace: str | None, name: str, fields: Mapping[str, Any],
                       logger: kopf.Logger | logging.Logger) -> dict[str, Any] | None:
    """Merge-patch ``status`` with ``fields``; the stored status, or ``None`` if the object is gone or the replica
    pauses (nothing written then)."""
    if pausing(stopped):
        return None
    ns = references.NamespaceName(namespace) if namespace else None
    patched, _ = await patch_obj(settings=settings, resource=resource, namespace=ns, name=name,
                                 patch=kopf.Patch({"status": dict(fields)}), logger=logger)
    return None if patched is None else dict(patched.get("status") or {})
