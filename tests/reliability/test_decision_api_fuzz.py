"""Issue 7, item 6 (decision API): schemathesis against the decision point's own OpenAPI document.

The decision point (``tksh.access.service``, started in-process as in ``tests/integration/test_authz.py``,
synchronised from an embedded API server) gets requests generated from ``GET /openapi.json``: valid
ones (positive) and ones that break the schema (negative: wrong types, missing fields, unknown fields),
each with no ``Authorization`` header, a valid bearer token, one signed by a stranger's key, an expired
one, or garbage. Every answer must be documented: no 5xx, the status code, content type and body as
the document says, and schema-breaking requests refused with 4xx (``negative_data_rejection``).
Every line the service logs meanwhile is scanned for personal data in clear.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from tests.conftest import eventually
from tests.reliability.figures import record
from tests.reliability.logscan import LogCapture, assert_no_personal_data, captured_logs
from tksh.access import grant_facts
from tksh.access.openapi import openapi_document
from tksh.access.server import AuthzConfig, start_authz
from tksh.access.tokens import KeySet
from tksh.resources.accessgrant import AccessGrant
from tksh.sandbox.apiserver import EmbeddedAPIServer, project_crd_paths

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          negative_data_rejection]
OWNER = "140540001231"
HOUR = datetime.timedelta(hours=1)
KEYS = KeySet.generate(issuer="tksh-operator", audience="tksh-authz")


def world() -> list[dict[str, Any]]:
    """A namespace, a function and an active grant: so that some generated decisions are allowed."""
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "housing"}},
        {"apiVersion": "tksh.kz/v1alpha1", "kind": "SubjectFunction", "metadata": {"name": "owners-association"},
         "spec": {"titles": {"kk": "ПИБ", "ru": "ОСИ", "en": "Owners' association"},
                  "subjectTypes": ["PropertyOwnersAssociation"],
                  "rights": [{"category": 5, "actions": ["read", "write", "sign"]}]},
         "status": {"phase": "Active"}},
        {"apiVersion": "tksh.kz/v1alpha1", "kind": "AccessGrant", "metadata": {"name": "g1", "namespace": "housing"},
         "spec": {"subject": {"id": "person:a1", "kind": "person", "name": "Айгүл Серікқызы"},
                  "onBehalfOf": {"bin": OWNER, "name": "ОСИ «Достық 12»"}, "functions": ["owners-association"],
                  "agreement": {"number": "ДД-1", "validFrom": "2020-01-01T00:00:00Z",
                                "validUntil": "2099-01-01T00:00:00Z"}},
         "status": {"phase": "Active"}},
    ]


class DecisionPoint:
    """The embedded API server and the decision point on one loop in a thread; ``url`` once started."""

    def __init__(self) -> None:
        self.logs = LogCapture()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="decision-point", daemon=True)
        self.url = ""
        self._stop: asyncio.Event | None = None
        self._done: Any = None

    async def _serve(self, started: Callable[[str], None]) -> None:
        self._stop = asyncio.Event()
        async with EmbeddedAPIServer(crd_paths=project_crd_paths()) as api:
            for obj in world():
                await api.apply(obj)
            config = AuthzConfig(host="127.0.0.1", port=0, server=api.url, keys=KEYS, configure_logs=False,
                                 retry_delay=0.05, watch_timeout=30)
            async with start_authz(config) as handle:
                started(handle.url)
                await self._stop.wait()

    def __enter__(self) -> DecisionPoint:
        self.thread.start()
        ready = threading.Event()

        def started(url: str) -> None:
            self.url = url
            ready.set()

        self._done = asyncio.run_coroutine_threadsafe(self._serve(started), self.loop)
        if not ready.wait(60):
            raise TimeoutError(f"the decision point did not start: {self._done}")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._stop is not None:
            self.loop.call_soon_threadsafe(self._stop.set)
        with contextlib.suppress(Exception):
            self._done.result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture(scope="module")
def decision_point() -> Iterator[DecisionPoint]:
    with captured_logs() as logs, DecisionPoint() as running:
        running.logs = logs
        def ready() -> None:
            assert requests.get(running.url + "/readyz", timeout=5).status_code == 200

        asyncio.run(eventually(ready))
        yield running


SCHEMA = schemathesis.openapi.from_dict(openapi_document())
CASES = st.one_of(SCHEMA.as_strategy(GenerationMode.POSITIVE), SCHEMA.as_strategy(GenerationMode.NEGATIVE))
DECISIONS = SCHEMA["/v1/decisions"]["POST"].as_strategy(GenerationMode.POSITIVE)


def bearer_tokens() -> st.SearchStrategy[str | None]:
    """No header, a valid token of the grant, one signed by a stranger's key, an expired one, or garbage."""
    facts = grant_facts(AccessGrant.model_validate(world()[2]))
    now = datetime.datetime.now(datetime.UTC)
    stranger = KeySet.generate(issuer="tksh-operator", audience="tksh-authz")
    tokens = [KEYS.issue(facts, now, HOUR), stranger.issue(facts, now, HOUR), KEYS.issue(facts, now - 3 * HOUR, HOUR)]
    garbage = st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), max_size=60)
    return st.one_of(st.none(), st.sampled_from([f"Bearer {t}" for t in tokens]), garbage,
                     garbage.map(lambda t: f"Bearer {t}"), st.sampled_from(["Bearer", "Bearer ", "Basic dXNlcjpw"]))


def fuzz(point: DecisionPoint, examples: int) -> dict[str, Any]:
    seen: dict[str, int] = {}
    session = requests.Session()

    @settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.one_of(CASES.map(lambda case: (case, None)), st.tuples(DECISIONS, bearer_tokens())))
    def check(drawn: tuple[schemathesis.Case[Any], str | None]) -> None:
        case, authorization = drawn
        if authorization is not None:  # a token names the subject: a body must not (that is a 400 of its own)
            case.headers = case.headers or {}  # type: ignore[assignment]
            case.headers["Authorization"] = authorization
            if isinstance(case.body, dict):
                case.body.pop("subject", None)
        response = case.call(base_url=point.url, session=session)
        key = f"{case.method} {case.path} {response.status_code}"
        seen[key] = seen.get(key, 0) + 1
        case.validate_response(response, checks=CHECKS)

    check()
    return dict(sorted(seen.items()))


def run(point: DecisionPoint, name: str, examples: int) -> None:
    answered = fuzz(point, examples)
    lines = point.logs.lines()
    record(name, {"requests_by_operation_and_status": answered, "requests": sum(answered.values()),
                  "server_errors": sum(n for key, n in answered.items() if key.rsplit(" ", 1)[1].startswith("5")),
                  "log_lines_scanned": assert_no_personal_data(lines)})
    assert any(key.startswith("POST /v1/decisions 200") for key in answered), answered
    assert any(key.startswith("POST /v1/decisions 400") for key in answered), answered
    assert any(key.startswith("POST /v1/decisions 401") for key in answered), answered
    assert lines, "the decision point logged nothing: the scan would prove nothing"


def test_decision_api_conforms_to_its_openapi_document(decision_point: DecisionPoint) -> None:
    run(decision_point, "decision-api-fuzz-short", examples=150)


@pytest.mark.reliability_long
def test_decision_api_conforms_long(decision_point: DecisionPoint) -> None:
    run(decision_point, "decision-api-fuzz-long", examples=2000)
