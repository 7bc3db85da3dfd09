"""Issue 7, item 6 (CR validation): every invalid object is refused with a reason naming the field, never
a 500, and never changes state.

Properties (hypothesis), starting from the valid manifests of ``examples/`` and breaking one rule of the
CRD schema at a time (:mod:`tests.reliability.mutations`):

1. :func:`tksh.resources.validation.admit` reports a violation that starts with the broken field's path;
2. the embedded API server's store refuses it on create and on replace with 422 naming the field in
   ``details.causes``, and its resourceVersion does not move;
3. over HTTP, arbitrary bytes and JSON under any content type and method answer 4xx (never 5xx), and a
   refused request leaves the resourceVersion where it was.
"""

from __future__ import annotations

import asyncio
import collections
import copy
import json
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.reliability.figures import record
from tests.reliability.mutations import Site, mutate, sites, violation
from tksh.resources import info_for
from tksh.resources.schema import resource_schema
from tksh.resources.validation import admit
from tksh.sandbox.apiserver import APIError, EmbeddedAPIServer, project_crd_paths
from tksh.sandbox.apiserver.store import Store

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SHORT = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.filter_too_much,
                                                                          HealthCheck.too_slow])
LONG = settings(SHORT, max_examples=2000)


def examples() -> list[dict[str, Any]]:
    found = []
    for path in sorted(EXAMPLES.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if doc and str(doc.get("apiVersion", "")).startswith("tksh.kz/"):
                found.append(doc)
    return found


CASES: list[tuple[dict[str, Any], Site]] = [
    (doc, site) for doc in examples() for site in sites(doc, resource_schema(info_for(doc["kind"])))
]


def test_the_mutation_sites_cover_every_kind_and_rule() -> None:
    assert {doc["kind"] for doc, _ in CASES} == {"SubjectFunction", "CentralComponent", "DigitalObject", "AccessGrant"}
    rules = {site.rule for _, site in CASES}
    assert {"type", "pattern", "enum", "maxLength", "minimum", "maximum", "required", "set"} <= rules, rules


def names(errors: list[str], field: str) -> bool:
    return any(line.startswith((field + ":", field + "[")) for line in errors)


def invalid_case(data: st.DataObject) -> tuple[dict[str, Any], Site, dict[str, Any]]:
    doc, site = data.draw(st.sampled_from(CASES), label="site")
    bad = mutate(doc, site, data.draw(violation(site), label=f"value at {site.field} ({site.rule})"))
    return doc, site, bad


def check_admit(data: st.DataObject) -> None:
    doc, site, bad = invalid_case(data)
    _, errors = admit(info_for(doc["kind"]), bad)
    assert names(errors, site.field), (site.field, site.rule, errors)


def run_property(config: settings, check: Callable[[st.DataObject], None]) -> int:
    """Run ``check`` as a hypothesis property; how many examples it ran (shrinking included)."""
    count = 0

    @config
    @given(st.data())
    def prop(data: st.DataObject) -> None:
        nonlocal count
        count += 1
        check(data)

    prop()
    return count


def figures(examples: int) -> dict[str, Any]:
    rules = collections.Counter(site.rule for _, site in CASES)
    return {"examples": examples, "sites": len(CASES), "sites_by_rule": dict(sorted(rules.items())),
            "kinds": sorted({doc["kind"] for doc, _ in CASES})}


def test_admit_refuses_naming_the_field() -> None:
    record("hostile-admit-short", figures(run_property(SHORT, check_admit)))


@pytest.mark.reliability_long
def test_admit_refuses_naming_the_field_long() -> None:
    record("hostile-admit-long", figures(run_property(LONG, check_admit)))


# --- the embedded API server's store ---------------------------------------------------------------


def loaded_api() -> EmbeddedAPIServer:
    """An embedded API server (not listening yet) whose store has the CRDs and every example object."""
    api = EmbeddedAPIServer(crd_paths=project_crd_paths())
    namespaces = api.store.registry.resolve("namespaces")
    for doc in examples():
        namespace = (doc.get("metadata") or {}).get("namespace")
        if namespace and api.store.get(namespaces, None, namespace) is None:
            api.store.create(namespaces, None, {"metadata": {"name": namespace}})
        info = api.store.registry.by_kind(doc["apiVersion"], doc["kind"])
        api.store.create(info, namespace if info.namespaced else None, copy.deepcopy(doc))
    return api


STORE: Store = loaded_api().store


def refusal_names(error: APIError, field: str) -> bool:
    causes = (error.details or {}).get("causes") or []
    return any(c.get("field") == field or str(c.get("field", "")).startswith(field + "[") for c in causes)


def check_store(data: st.DataObject) -> None:
    doc, site, bad = invalid_case(data)
    info = STORE.registry.by_kind(doc["apiVersion"], doc["kind"])
    meta = doc["metadata"]
    namespace = meta.get("namespace") if info.namespaced else None
    before = STORE.resource_version
    renamed = copy.deepcopy(bad)
    renamed["metadata"] = {**meta, "name": meta["name"] + "-new"}
    with pytest.raises(APIError) as created:
        STORE.create(info, namespace, renamed)
    assert created.value.code == 422 and refusal_names(created.value, site.field), created.value.details
    stored = STORE.get(info, namespace, meta["name"])
    assert stored is not None
    replacement = copy.deepcopy(bad)
    replacement["metadata"] = {**meta, "resourceVersion": stored["metadata"]["resourceVersion"]}
    with pytest.raises(APIError) as replaced:
        STORE.replace(info, namespace, meta["name"], replacement)
    assert replaced.value.code == 422 and refusal_names(replaced.value, site.field), replaced.value.details
    assert STORE.resource_version == before
    assert STORE.get(info, namespace, meta["name"]) == stored


def test_store_refuses_create_and_replace_naming_the_field_and_keeps_its_state() -> None:
    record("hostile-store-short", figures(run_property(SHORT, check_store)))


@pytest.mark.reliability_long
def test_store_refuses_naming_the_field_long() -> None:
    record("hostile-store-long", figures(run_property(LONG, check_store)))


# --- over HTTP: arbitrary input never answers 5xx ------------------------------------------------------


class ServerThread:
    """The embedded API server on its own loop in a thread, so that hypothesis can call it synchronously."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="embedded-api", daemon=True)
        self.api = loaded_api()
        self.answers: collections.Counter[int] = collections.Counter()

    def __enter__(self) -> ServerThread:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.api.__aenter__(), self.loop).result(30)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.api.__aexit__(None, None, None), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)

    def call(self, method: str, path: str, body: bytes, content_type: str) -> int:
        request = urllib.request.Request(self.api.url + path, data=body, method=method,
                                         headers={"Content-Type": content_type})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return int(response.status)
        except urllib.error.HTTPError as error:
            error.read()
            return int(error.code)


@pytest.fixture(scope="module")
def server() -> Iterator[ServerThread]:
    with ServerThread() as running:
        yield running


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)
TARGETS = [
    ("POST", "/apis/tksh.kz/v1alpha1/namespaces/{ns}/digitalobjects"),
    ("PUT", "/apis/tksh.kz/v1alpha1/namespaces/{ns}/digitalobjects/{name}"),
    ("PATCH", "/apis/tksh.kz/v1alpha1/namespaces/{ns}/digitalobjects/{name}"),
    ("PATCH", "/apis/tksh.kz/v1alpha1/namespaces/{ns}/digitalobjects/{name}/status"),
    ("POST", "/apis/tksh.kz/v1alpha1/subjectfunctions"),
    ("PATCH", "/apis/tksh.kz/v1alpha1/namespaces/{ns}/accessgrants/{grant}"),
]
CONTENT_TYPES = ["application/json", "application/merge-patch+json", "application/json-patch+json",
                 "application/strategic-merge-patch+json", "application/apply-patch+yaml", "text/plain"]


def spec_like(doc: dict[str, Any]) -> st.SearchStrategy[bytes]:
    """The example with its spec replaced by random JSON, or a random JSON value, or random bytes."""
    with_spec = JSON_VALUES.map(lambda spec: json.dumps({**doc, "spec": spec}).encode())
    return st.one_of(with_spec, JSON_VALUES.map(lambda v: json.dumps(v).encode()), st.binary(max_size=200))


def check_http(server: ServerThread, data: st.DataObject) -> None:
    digital = next(d for d in examples() if d["kind"] == "DigitalObject")
    grant = next(d for d in examples() if d["kind"] == "AccessGrant")
    method, template = data.draw(st.sampled_from(TARGETS), label="target")
    path = template.format(ns=digital["metadata"]["namespace"], name=digital["metadata"]["name"],
                           grant=grant["metadata"]["name"])
    body = data.draw(spec_like(digital), label="body")
    content_type = data.draw(st.sampled_from(CONTENT_TYPES), label="content type")
    before = server.api.store.resource_version
    status = server.call(method, path, body, content_type)
    server.answers[status] += 1
    assert status < 500, (method, path, content_type, body[:200], status)
    if status >= 400:
        assert server.api.store.resource_version == before


def http_figures(server: ServerThread, config: settings) -> dict[str, Any]:
    examples = run_property(config, lambda data: check_http(server, data))
    return {"examples": examples, "answers": dict(sorted(server.answers.items()))}


def test_a_field_name_with_a_control_character_is_answered(server: ServerThread) -> None:
    """Found by the property below: the pruned field's name went into a Warning header and the connection dropped."""
    digital = next(d for d in examples() if d["kind"] == "DigitalObject")
    path = "/apis/tksh.kz/v1alpha1/namespaces/{namespace}/digitalobjects/{name}".format(**digital["metadata"])
    body = json.dumps({"spec": {"\x1f": False, "bell\x07": 1}}).encode()
    assert server.call("PATCH", path, body, "application/merge-patch+json") == 200


def test_http_never_answers_5xx_and_refusals_change_nothing(server: ServerThread) -> None:
    record("hostile-http-short", http_figures(server, SHORT))


@pytest.mark.reliability_long
def test_http_never_answers_5xx_long(server: ServerThread) -> None:
    record("hostile-http-long", http_figures(server, settings(LONG, max_examples=1000)))
