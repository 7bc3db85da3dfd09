"""Access per agreement (§19–22, §31) and its termination (§20): the policy core of the decision point.

Pure Python: no Kubernetes, no HTTP. The pieces:

- ``policies/model.conf`` (Casbin) defines the semantics; :mod:`tksh.access.policy` holds its vocabulary
  and strict loaders for the static base-policy files (``functions.csv``, ``open-part.csv``).
- :mod:`tksh.access.identifiers`: strict validation of subject ids, BINs, function/grant/object names.
- :mod:`tksh.access.facts`: :class:`GrantFacts` and function rights extracted from the resource models.
- :mod:`tksh.access.index`: :class:`DecisionIndex`, the fast incremental decision point, with time and
  delegation; :meth:`DecisionIndex.decide` returns a :class:`Decision`.
- :mod:`tksh.access.reasons`: :class:`Decision`, :class:`DenyReason` and the texts in kk/ru/en.
- :mod:`tksh.access.cascade`: :func:`cascade`, which grants a termination ends with it.
- :mod:`tksh.access.reference`: the stock Casbin enforcers fed with the same data, for tests and benchmarks.
- :mod:`tksh.access.tokens`: :class:`KeySet` (EdDSA JWTs for grants: issue, verify, JWKS, rotation).

The decision point process (these import aiohttp, so they are not re-exported here):
:mod:`tksh.access.sync` (:class:`~tksh.access.sync.IndexSync`, list+watch into the index, on the loop of
:mod:`tksh.access.listwatch` that the status page's :mod:`tksh.access.statuscache` shares),
:mod:`tksh.access.service` (the HTTP API), :mod:`tksh.access.openapi`, :mod:`tksh.access.server`
(:func:`~tksh.access.server.run_authz` for ``tksh authz``).
"""

from tksh.access.cascade import CascadeStep, cascade
from tksh.access.facts import (
    FunctionRights,
    GrantFacts,
    Right,
    TerminationFacts,
    function_rights,
    grant_facts,
    rights_of,
)
from tksh.access.identifiers import (
    ANONYMOUS,
    IdentifierError,
    validate_action,
    validate_bin,
    validate_category,
    validate_digital_object_id,
    validate_function_name,
    validate_grant_id,
    validate_subject_id,
)
from tksh.access.index import MAX_DELEGATION_DEPTH, DecisionIndex
from tksh.access.policy import PolicyFileError, load_function_rights, load_open_part, model_path, policies_dir
from tksh.access.reasons import TERMINATION_CODES, Decision, DenyReason, format_instant
from tksh.access.tokens import KeySet, SigningKey, TokenClaims, TokenError, TokenReason

__all__ = [
    "ANONYMOUS",
    "MAX_DELEGATION_DEPTH",
    "TERMINATION_CODES",
    "CascadeStep",
    "Decision",
    "DecisionIndex",
    "DenyReason",
    "FunctionRights",
    "GrantFacts",
    "IdentifierError",
    "KeySet",
    "PolicyFileError",
    "Right",
    "SigningKey",
    "TerminationFacts",
    "TokenClaims",
    "TokenError",
    "TokenReason",
    "cascade",
    "format_instant",
    "function_rights",
    "grant_facts",
    "load_function_rights",
    "load_open_part",
    "model_path",
    "policies_dir",
    "rights_of",
    "validate_action",
    "validate_bin",
    "validate_category",
    "validate_digital_object_id",
    "validate_function_name",
    "validate_grant_id",
    "validate_subject_id",
]
