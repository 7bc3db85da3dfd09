"""The validating admission webhook for DigitalObject: §16's rule that only administrators decide.

Served only when ``OperatorConfig.admission_port`` is set (see ``tksh.handlers.settings``): kopf
refuses to start with admission handlers but no server. The rule itself is the pure
:func:`tksh.registration.admission.check_review`. The ``ValidatingWebhookConfiguration`` that points
the API server here is not managed by the operator (``settings.admission.managed`` stays unset).
"""

from __future__ import annotations

from typing import Any

import kopf

from tksh import GROUP, VERSION
from tksh.handlers import Context
from tksh.registration.admission import check_review

WEBHOOK_ID = "review"  # the webhook's URL path: <server>/review


def register(registry: kopf.OperatorRegistry, ctx: Context) -> None:
    if not ctx.config.admission_port:
        return
    group = ctx.config.administrators_group

    @kopf.on.validate(GROUP, VERSION, "digitalobjects", registry=registry, id=WEBHOOK_ID,
                      operations=["CREATE", "UPDATE"])
    def review(userinfo: kopf.UserInfo, **kwargs: Any) -> None:
        old, new = kwargs.get("old"), kwargs.get("new")
        refusal = check_review(old.get("spec") if old else None, new.get("spec") if new else None,
                               dict(userinfo), group)
        if refusal is not None:
            raise kopf.AdmissionError(str(refusal), code=403)
