"""§16's admission rule for ``DigitalObject``: only administrators decide, and a refusal says why.

Pure: the old spec (``None`` on create), the new spec and the requesting user's ``userInfo`` (as in
an ``AdmissionReview``) give ``None`` (allowed) or a :class:`Refusal` naming the field. The kopf
validating handler (``tksh.handlers.admission``) only turns a refusal into ``kopf.AdmissionError``.

- Setting, changing or removing ``spec.review`` is reserved to members of the administrators group
  (``OperatorConfig.administrators_group``). An update that leaves ``spec.review`` as it was (the
  applicant fixing the endpoint, the operator's own status writes) is not affected.
- A ``Rejected`` decision needs a non-blank ``reason`` (it is sent to the applicant), whoever
  writes it. Without this rule the lifecycle would report ``Reviewed=False/InvalidReview``; with it
  the mistake is refused where it is made.

Messages name fields and the group, never the user (a user name may be an e-mail address).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tksh.problems import FieldProblem as Refusal

__all__ = ["Refusal", "check_review"]


def _review(spec: Mapping[str, Any] | None) -> Any:
    return spec.get("review") if isinstance(spec, Mapping) else None


def _groups(userinfo: Mapping[str, Any] | None) -> frozenset[str]:
    groups = userinfo.get("groups") if isinstance(userinfo, Mapping) else None
    return frozenset(g for g in groups or () if isinstance(g, str)) if isinstance(groups, list | tuple) else frozenset()


def check_review(
    old_spec: Mapping[str, Any] | None,
    new_spec: Mapping[str, Any] | None,
    userinfo: Mapping[str, Any] | None,
    administrators_group: str,
) -> Refusal | None:
    """``None`` if the request may pass; else what is wrong with it (see the module description)."""
    old, new = _review(old_spec), _review(new_spec)
    if old == new:
        return None
    if not administrators_group or administrators_group not in _groups(userinfo):
        what = "removed" if new is None else "set or changed"
        return Refusal("spec.review", f"the Administrator's decision may be {what} only by members of the group "
                                      f"{administrators_group!r}")
    if isinstance(new, Mapping) and new.get("decision") == "Rejected":
        reason = new.get("reason")
        if not isinstance(reason, str) or not reason.strip():
            return Refusal("spec.review.reason", "a refusal (decision Rejected) needs a reason for the applicant")
    return None
