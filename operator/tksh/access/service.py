"""The HTTP decision point: ``POST /v1/decisions`` and its companions, as an aiohttp application.

A request names the asker by a bearer token (verified with :mod:`tksh.access.tokens`), by ``subject`` (for a
trusted enforcement point that authenticated the user itself: keep this port reachable by those only), or by
nothing (the anonymous principal of the open part, §21). Every field is validated at this boundary
(:mod:`tksh.access.identifiers`) and a bad one is answered 400 naming the field and the rule, never echoing the
value; a deny is an answer (200), not an error.

With a token the token's grant is what is asked about: the decision must be allowed *by that grant* as the
index holds it now, so a grant terminated after its token was issued is denied at once with the index's
reason (``REVOKED``, ...), whatever the token's ``exp`` says. The open part allows everyone, token or not.

Every decision is logged (structlog; the owner BIN goes through the masking processor of :mod:`tksh.logs`,
no name is ever logged) with a decision id returned to the caller, and counted in Prometheus metrics.
"""

from __future__ import annotations

import datetime
import json
import time
import uuid
from collections.abc import Callable
from typing import Any, Final

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from tksh.access.identifiers import (
    ANONYMOUS,
    IdentifierError,
    validate_action,
    validate_bin,
    validate_category,
    validate_digital_object_id,
    validate_subject_id,
)
from tksh.access.index import DecisionIndex
from tksh.access.openapi import MAX_BODY_BYTES, openapi_document
from tksh.access.reasons import Decision, DenyReason
from tksh.access.statuscache import StatusCache
from tksh.access.tokens import KeySet, TokenError, TokenReason
from tksh.logs import get_logger

__all__ = ["AuthzMetrics", "DecisionRequest", "DecisionService", "build_app"]

_REQUEST_FIELDS: Final = frozenset({"subject", "action", "resource"})
_RESOURCE_FIELDS: Final = frozenset({"category", "ownerBin", "digitalObject"})
_BUCKETS: Final = (0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0)


class AuthzMetrics:
    """The decision point's metrics, in a registry of their own (several services may share a process)."""

    def __init__(self, index: DecisionIndex) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.decisions = Counter("tksh_decisions_total", "Decisions answered, by result (allow, deny) and reason "
                                 "code (ALLOW or the deny reason).", ["result", "reason"], registry=self.registry)
        self.seconds = Histogram("tksh_decision_seconds", "Time to answer a decision request, from the parsed "
                                 "request to the answer (validation, token, decision).", buckets=_BUCKETS,
                                 registry=self.registry)
        self.grants = Gauge("tksh_authz_index_grants", "AccessGrants held in the decision index.",
                            registry=self.registry)
        self.grants.set_function(lambda: len(index))
        self.token_refusals = Counter("tksh_authz_token_refusals_total", "Bearer tokens refused, by reason.",
                                      ["reason"], registry=self.registry)
        self.key_reloads = Counter("tksh_authz_key_reloads", "Reloads of the mounted verification keys after "
                                   "their files changed, by result (ok, failed: the previous keys stay in use).",
                                   ["result"], registry=self.registry)

    def value(self, name: str, labels: dict[str, str] | None = None) -> float | None:
        return self.registry.get_sample_value(name, labels or {})


class InvalidRequest(Exception):
    def __init__(self, field: str, rule: str, status: int = 400) -> None:
        super().__init__(f"{field}: {rule}")
        self.field, self.rule, self.status = field, rule, status


class DecisionRequest:
    """A validated request body."""

    __slots__ = ("action", "category", "digital_object", "owner_bin", "subject")

    def __init__(self, body: object) -> None:
        if not isinstance(body, dict):
            raise InvalidRequest("body", "must be a JSON object")
        for key in body:
            if key not in _REQUEST_FIELDS:
                raise InvalidRequest(_field_name(key), "is not a field of a decision request "
                                     "(subject, action, resource)")
        try:
            self.subject = None if body.get("subject") is None else validate_subject_id(body["subject"], "subject")
            if "action" not in body:
                raise IdentifierError("action", "is required: one of read, write, sign")
            self.action = validate_action(body["action"], "action")
            resource = body.get("resource")
            if not isinstance(resource, dict):
                raise IdentifierError("resource", "is required: an object with category, ownerBin, digitalObject?")
            for key in resource:
                if key not in _RESOURCE_FIELDS:
                    raise IdentifierError("resource." + _field_name(key), "is not a field of a resource "
                                          "(category, ownerBin, digitalObject)")
            if "category" not in resource:
                raise IdentifierError("resource.category", "is required: an integer from 1 to 15")
            self.category = validate_category(resource["category"], "resource.category")
            if "ownerBin" not in resource:
                raise IdentifierError("resource.ownerBin", "is required: a BIN of exactly 12 digits")
            self.owner_bin = validate_bin(resource["ownerBin"], "resource.ownerBin")
            dob = resource.get("digitalObject")
            self.digital_object = None if dob is None else validate_digital_object_id(dob, "resource.digitalObject")
        except IdentifierError as error:
            raise InvalidRequest(error.field, error.rule) from None


def _field_name(key: object) -> str:
    """An unknown field's name for an error message: only when it is a short plain identifier."""
    text = str(key)
    return text if text.isascii() and text.isidentifier() and len(text) <= 40 else "<unknown field>"


class DecisionService:
    """What the HTTP handlers need: the index, the keys, readiness, a clock, metrics and a logger."""

    def __init__(
        self,
        index: DecisionIndex,
        keys: KeySet,
        *,
        ready: Callable[[], bool] = lambda: True,
        clock: Callable[[], datetime.datetime] = lambda: datetime.datetime.now(datetime.UTC),
    ) -> None:
        self.index = index
        self.keys = keys
        self.ready = ready
        self.clock = clock
        self.metrics = AuthzMetrics(index)
        self.log = get_logger("tksh.access.service")

    def use_keys(self, keys: KeySet) -> None:
        """Verify with ``keys`` from the next request on (a rotation picked up without a restart)."""
        self.keys = keys
        self.metrics.key_reloads.labels(result="ok").inc()

    def decide_for_token_grant(self, token_grant: str, subject: str, request: DecisionRequest,
                               decision: Decision, now: datetime.datetime) -> Decision:
        """The decision as the token's grant alone gives it (``decision`` is the subject's overall one)."""
        if decision.open_part or (decision.allowed and decision.grant == token_grant):
            return decision
        if not decision.allowed and decision.grant == token_grant:
            return decision
        facts = self.index.grant(token_grant)
        if facts is None or facts.subject_id != subject:
            return Decision(False, DenyReason.NO_GRANT, grant=token_grant, category=request.category,
                            action=request.action)
        chain, seen, principal = [facts], {facts.id}, facts.delegated_from
        while principal is not None and principal not in seen:
            upper = self.index.grant(principal)
            if upper is None:
                break
            chain.append(upper)
            seen.add(principal)
            principal = upper.delegated_from
        alone = DecisionIndex.build(chain, self.index.functions)  # the token's grant and its principals only
        return alone.decide(subject, request.action, request.category, request.owner_bin,
                            digital_object=request.digital_object, now=now)


def _invalid(field: str, rule: str, status: int = 400) -> web.Response:
    return web.json_response({"error": "invalid_request", "field": field, "rule": rule}, status=status)


def _token_refused(error: TokenError) -> web.Response:
    body = {"error": "invalid_token", "reason": str(error.reason), "texts": error.texts.model_dump()}
    header = f'Bearer error="invalid_token", error_description="{error.reason}"'
    return web.json_response(body, status=401, headers={"WWW-Authenticate": header})


async def _read_body(request: web.Request) -> object:
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise InvalidRequest("body", f"must be at most {MAX_BODY_BYTES} bytes", 413)
    raw = await request.content.read(MAX_BODY_BYTES + 1)
    if len(raw) > MAX_BODY_BYTES:
        raise InvalidRequest("body", f"must be at most {MAX_BODY_BYTES} bytes", 413)
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise InvalidRequest("body", "must be a JSON object (UTF-8)") from None


def _bearer(request: web.Request) -> str | None:
    header = request.headers.get("Authorization")
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise TokenError(TokenReason.TOKEN_MALFORMED, "Authorization must be 'Bearer <token>'")
    return token.strip()


async def _decide(request: web.Request) -> web.Response:
    service: DecisionService = request.app[SERVICE]
    try:
        body = await _read_body(request)
    except InvalidRequest as error:
        return _invalid(error.field, error.rule, error.status)
    started = time.perf_counter()
    try:
        parsed = DecisionRequest(body)
        token = _bearer(request)
        if token is not None and parsed.subject is not None:
            raise InvalidRequest("subject", "must not be given with a bearer token (the token names the subject)")
    except InvalidRequest as error:
        return _invalid(error.field, error.rule, error.status)
    except TokenError as error:
        service.metrics.token_refusals.labels(reason=str(error.reason)).inc()
        return _token_refused(error)
    now = service.clock()
    token_grant = None
    if token is not None:
        try:
            claims = service.keys.verify(token, now)
        except TokenError as error:
            service.metrics.token_refusals.labels(reason=str(error.reason)).inc()
            service.log.info("token refused", reason=str(error.reason), claim=error.claim)
            return _token_refused(error)
        subject, token_grant = claims.subject_id, claims.grant
    else:
        subject = parsed.subject or ANONYMOUS
    decision = service.index.decide(subject, parsed.action, parsed.category, parsed.owner_bin,
                                    digital_object=parsed.digital_object, now=now)
    if token_grant is not None:
        decision = service.decide_for_token_grant(token_grant, subject, parsed, decision, now)
    decision_id = str(uuid.uuid4())
    out: dict[str, Any] = {"decisionId": decision_id, "reason": decision.code, "subject": subject,
                           **decision.to_dict()}
    result = "allow" if decision.allowed else "deny"
    service.metrics.decisions.labels(result=result, reason=decision.code).inc()
    service.metrics.seconds.observe(time.perf_counter() - started)
    service.log.info("decision", decision_id=decision_id, subject_id=subject, action=parsed.action,
                     category=parsed.category, bin=parsed.owner_bin, result=result, reason=decision.code,
                     grant=decision.grant, via_token=token_grant is not None)
    return web.json_response(out)


async def _jwks(request: web.Request) -> web.Response:
    service: DecisionService = request.app[SERVICE]
    return web.json_response(service.keys.jwks(), headers={"Cache-Control": "public, max-age=300"})


async def _openapi(request: web.Request) -> web.Response:
    return web.json_response(openapi_document())


async def _healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def _readyz(request: web.Request) -> web.Response:
    service: DecisionService = request.app[SERVICE]
    if service.ready():
        return web.json_response({"status": "ready"})
    return web.json_response({"status": "synchronising"}, status=503)


async def _metrics(request: web.Request) -> web.Response:
    service: DecisionService = request.app[SERVICE]
    return web.Response(body=generate_latest(service.metrics.registry), headers={"Content-Type": CONTENT_TYPE_LATEST})


SERVICE: Final = web.AppKey("service", DecisionService)


@web.middleware
async def _never_500(request: web.Request, handler: Any) -> web.StreamResponse:
    """A bug must not answer with a traceback: log it (masked) and answer a plain 500 without detail."""
    try:
        response: web.StreamResponse = await handler(request)
        return response
    except web.HTTPException:
        raise
    except Exception:
        request.app[SERVICE].log.exception("decision point failure", path=request.path)
        return web.json_response({"error": "internal"}, status=500)


def build_app(service: DecisionService, status: StatusCache | None = None,
              timezone: str = "Asia/Almaty") -> web.Application:
    """The aiohttp application of the decision point; with ``status``, also the public status page (§21)."""
    app = web.Application(client_max_size=MAX_BODY_BYTES + 1, middlewares=[_never_500])
    app[SERVICE] = service
    app.router.add_post("/v1/decisions", _decide)
    app.router.add_get("/.well-known/jwks.json", _jwks)
    app.router.add_get("/openapi.json", _openapi)
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/readyz", _readyz)
    app.router.add_get("/metrics", _metrics)
    if status is not None:
        from tksh.access.statuspage import add_routes

        add_routes(app, status, timezone)
    return app
