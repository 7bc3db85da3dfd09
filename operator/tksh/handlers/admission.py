"""The validating admission webhooks: §16's rule that only administrators decide (DigitalObject, path
``/review``), and the AccessGrant rules of §20 (path ``/accessgrants``).

Served only when ``OperatorConfig.admission_port`` is set (see ``tksh.handlers.settings``): kopf
refuses to start with admission handlers but no server. The rules themselves are the pure
:func:`tksh.registration.admission.check_review` and :func:`tksh.access.admission.check_grant`. The
``ValidatingWebhookConfiguration`` that points the API server here is not managed by the operator
(``settings.admission.managed`` stays unset).

The grant rule needs the principal grant a delegate names: it is read from the API server at the time of the
request (a GET by name), not from the operator's in-memory index. Every replica serves the webhook, and a paused
(standby) replica watches nothing, so its index is empty or stale; the API server is the one view all replicas
share. A principal that cannot
be read (an API error, or no answer within half of ``admission_timeout``, the API server's wait for the webhook)
is refused with a message that says to retry, never admitted unchecked.
"""

from __future__ import annotations

import asyncio
import datetime
from typing import Any

import kopf
from kopf._cogs.clients import errors

from tksh import GROUP, VERSION
from tksh.access.admission import PRINCIPAL_UNKNOWN, check_grant
from tksh.handlers import Context
from tksh.handlers.grants import indexed_of, read_grant  # the principal is read mid-request, with kopf's credentials
from tksh.handlers.settings import make_settings
from tksh.registration.admission import check_review

WEBHOOK_ID = "review"  # the webhook's URL path: <server>/review
GRANTS_WEBHOOK_ID = "accessgrants"  # <server>/accessgrants


def register(registry: kopf.OperatorRegistry, ctx: Context) -> None:
    if not ctx.config.admission_port:
        return
    group = ctx.config.administrators_group
    settings = make_settings(ctx.config)
    read_timeout = ctx.config.admission_timeout / 2

    @kopf.on.validate(GROUP, VERSION, "digitalobjects", registry=registry, id=WEBHOOK_ID,
                      operations=["CREATE", "UPDATE"])
    def review(userinfo: kopf.UserInfo, **kwargs: Any) -> None:
        old, new = kwargs.get("old"), kwargs.get("new")
        refusal = check_review(old.get("spec") if old else None, new.get("spec") if new else None,
                               dict(userinfo), group)
        if refusal is not None:
            raise kopf.AdmissionError(str(refusal), code=403)

    @kopf.on.validate(GROUP, VERSION, "accessgrants", registry=registry, id=GRANTS_WEBHOOK_ID,
                      operations=["CREATE", "UPDATE"])
    async def grants(namespace: str | None, logger: kopf.Logger, **kwargs: Any) -> None:
        old, new = kwargs.get("old"), kwargs.get("new") or {}
        principal_name = (new.get("spec") or {}).get("delegatedFrom")
        principal: object = None
        if isinstance(principal_name, str) and namespace:
            principal = await read_principal(namespace, principal_name, logger)
        refusal = check_grant(old, new, principal, datetime.datetime.now(datetime.UTC), namespace=namespace)
        if refusal is not None:
            raise kopf.AdmissionError(str(refusal), code=422)

    async def read_principal(namespace: str, name: str, logger: kopf.Logger) -> object:
        """The facts of grant ``namespace/name`` as the API server stores it now; ``PRINCIPAL_UNKNOWN`` when it
        does not exist, cannot be read, or cannot be understood."""
        try:  # kopf retries API errors without end: bounded, so that the answer is ours, not the API server's timeout
            async with asyncio.timeout(read_timeout):
                stored = await read_grant(namespace, name, settings=settings, logger=logger)
        except (TimeoutError, errors.APIError, OSError) as error:
            logger.warning("principal grant not readable for admission: %s", type(error).__name__)
            return PRINCIPAL_UNKNOWN
        known = None if stored is None else indexed_of(stored)
        return PRINCIPAL_UNKNOWN if known is None or known.facts is None else known.facts
