"""Item 5, scale: many DigitalObjects and AccessGrants on the embedded API server, one operator process.

The pieces :mod:`tests.reliability.test_scale` puts together (``python -m tests.reliability.scalerun`` runs
on its own, for profiling):

* :func:`population`: the objects. DigitalObjects: nine in ten complete (-> ``UnderReview``, no e-mail), one in
  ten incomplete (-> ``Refused``, one e-mail). AccessGrants: two per subject, about ten per owner BIN, one in ten
  delegated from an earlier grant of the same owner (it waits for its principal), one in a hundred e-mailing the
  organisation when it takes effect; all in effect now, so each must end ``Active`` with a token Secret.
* :class:`CountingAPIServer`: the embedded API server counting requests by verb and resource (a full request
  log of a million requests would be the test's own memory problem).
* :class:`Progress`: a listener on the store that keeps, per event and in O(1), how many objects are where
  they must be, so the time of convergence is known to the event, without listing 100,000 objects.
* :func:`rss`, :func:`cpu_seconds`: a process's memory and CPU time from ``/proc``.
"""

from __future__ import annotations

import collections
import dataclasses
import random
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import aiohttp.web
import attrs

from tests.reliability.harness import RecordingAPIServer
from tests.reliability.workflows import API, FUNCTION_NAME, application
from tksh.access.keyrotation import GRANT_UID_LABEL, token_secret_name
from tksh.sandbox.apiserver import EmbeddedAPIServer
from tksh.sandbox.apiserver.routing import parse_route
from tksh.sandbox.apiserver.store import WatchEvent

GRANTS = ("tksh.kz", "accessgrants")
DIGITAL_OBJECTS = ("tksh.kz", "digitalobjects")
SECRETS = ("", "secrets")
ORG_DOMAIN = "org.example.kz"


# --- the objects ------------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Population:
    digital_objects: list[dict[str, Any]]
    grants: list[dict[str, Any]]
    expected_phase: dict[str, str]
    """``namespace/name`` of each DigitalObject -> the phase it must reach."""
    emails: int
    """E-mails due: one per refused application, one per grant with ``onBehalfOf.email``."""


def population(namespace: str, digital_objects: int, grants: int, target_url: str, seed: int = 5) -> Population:
    r = random.Random(seed)
    objects: list[dict[str, Any]] = []
    expected: dict[str, str] = {}
    emails = 0
    for i in range(digital_objects):
        name = f"dobj-{i:05d}"
        body = application(name, namespace, target_url)
        if i % 10 == 9:
            del body["spec"]["functions"], body["spec"]["endpoint"]
            expected[f"{namespace}/{name}"] = "Refused"
            emails += 1
        else:
            expected[f"{namespace}/{name}"] = "UnderReview"
        objects.append(body)
    owners = [f"{r.randrange(10**11, 10**12):012d}" for _ in range(max(1, grants // 10))]
    by_owner: dict[str, list[str]] = collections.defaultdict(list)
    made: list[dict[str, Any]] = []
    for i in range(grants):
        owner = r.choice(owners)
        name = f"grant-{i:06d}"
        spec: dict[str, Any] = {
            "subject": {"id": f"person:{i // 2:x}", "kind": "person"},
            "onBehalfOf": {"bin": owner},
            "functions": [FUNCTION_NAME],
            "agreement": {"number": f"ДД-2026/{i:06d}", "validFrom": "2026-01-01T00:00:00Z",
                          "validUntil": "2099-01-01T00:00:00Z"},
        }
        if i % 100 == 7:
            spec["onBehalfOf"]["email"] = f"board.{i}@{ORG_DOMAIN}"
            emails += 1
        if by_owner[owner] and r.random() < 0.1:
            spec["delegatedFrom"] = r.choice(by_owner[owner])
            spec["agreement"]["validUntil"] = "2098-01-01T00:00:00Z"  # within the principal's
        made.append({"apiVersion": API, "kind": "AccessGrant", "metadata": {"name": name, "namespace": namespace},
                     "spec": spec})
        by_owner[owner].append(name)
    return Population(objects, made, expected, emails)


# --- the API server -----------------------------------------------------------------------------------------------


def classify(method: str, path: str, query: Mapping[str, str]) -> tuple[str, str]:
    """(verb, resource) of a request as Kubernetes audit logs name them: ``("patch", "accessgrants/status")``."""
    route = parse_route(path)
    if route.plural is None:
        return method.lower(), "discovery"
    resource = route.plural + (f"/{route.subresource}" if route.subresource else "")
    if method == "GET":
        verb = "watch" if query.get("watch") in ("true", "1") else ("get" if route.name else "list")
    else:
        verb = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}.get(method, method.lower())
    return verb, resource


@attrs.define(kw_only=True, eq=False)
class CountingAPIServer(RecordingAPIServer):
    """The embedded API server counting every request by (verb, resource); it keeps no request log."""

    counts: collections.Counter[tuple[str, str]] = attrs.field(init=False, factory=collections.Counter)
    detail: list[str] | None = attrs.field(init=False, default=None)
    """While a list (set it to ``[]``): ``"METHOD path?query"`` of every request, to say what a request at rest was."""
    kept_requests: int = 50  # KMock's own request list (for assertions) stays small

    async def __call__(self, raw_request: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        self.counts[classify(raw_request.method, raw_request.path, raw_request.query)] += 1
        if self.detail is not None:
            self.detail.append(f"{raw_request.method} {raw_request.path_qs}")
        return await EmbeddedAPIServer.__call__(self, raw_request)

    def snapshot(self) -> collections.Counter[tuple[str, str]]:
        return collections.Counter(self.counts)


def difference(after: Mapping[tuple[str, str], int], before: Mapping[tuple[str, str], int]) -> dict[str, int]:
    """Requests between two snapshots, as ``{"verb resource": count}`` (only the non-zero ones)."""
    return {f"{verb} {resource}": after[(verb, resource)] - before.get((verb, resource), 0)
            for verb, resource in sorted(after) if after[(verb, resource)] - before.get((verb, resource), 0)}


# --- progress -----------------------------------------------------------------------------------------------------


class Progress:
    """How many grants and DigitalObjects are reconciled, kept per store event (subscribe :meth:`feed`).

    A grant is reconciled when it is ``Active`` with ``status.tokenSecret`` and ``status.tokenExpiresAt`` set and
    that Secret exists carrying the grant's uid label; a DigitalObject when it is in its expected phase.
    """

    def __init__(self, namespace: str, grant_names: Iterator[str], expected_phase: Mapping[str, str]) -> None:
        self.namespace = namespace
        self.grants = set(grant_names)
        self.expected = dict(expected_phase)
        self._tokened: dict[str, tuple[str, str]] = {}  # grant -> (uid, secret) while Active with a token
        self._active: set[str] = set()
        self._secrets: dict[str, str] = {}  # secret name -> grant uid label
        self._ok_grants: set[str] = set()
        self._ok_objects: set[str] = set()
        self.events = 0
        self.grants_done_at: float | None = None
        self.objects_done_at: float | None = None

    def feed(self, event: WatchEvent) -> None:
        self.events += 1
        meta = event.obj.get("metadata") or {}
        if meta.get("namespace") != self.namespace:
            return
        name = str(meta.get("name"))
        if event.key == GRANTS:
            status = event.obj.get("status") or {}
            if event.type != "DELETED" and status.get("phase") == "Active":
                self._active.add(name)
            else:
                self._active.discard(name)
            if event.type != "DELETED" and status.get("phase") == "Active" and status.get("tokenExpiresAt") \
                    and status.get("tokenSecret"):
                self._tokened[name] = (str(meta.get("uid")), str(status["tokenSecret"]))
            else:
                self._tokened.pop(name, None)
            self._check_grant(name)
        elif event.key == SECRETS:
            owner = (meta.get("labels") or {}).get(GRANT_UID_LABEL)
            if event.type == "DELETED" or owner is None:
                self._secrets.pop(name, None)
            else:
                self._secrets[name] = str(owner)
            if name.endswith("-token"):
                self._check_grant(name.removesuffix("-token"))
        elif event.key == DIGITAL_OBJECTS:
            key = f"{self.namespace}/{name}"
            phase = (event.obj.get("status") or {}).get("phase")
            if event.type != "DELETED" and key in self.expected and phase == self.expected[key]:
                self._ok_objects.add(key)
            else:
                self._ok_objects.discard(key)
            if self.objects_done_at is None and len(self._ok_objects) == len(self.expected):
                self.objects_done_at = time.monotonic()

    def _check_grant(self, name: str) -> None:
        if name not in self.grants:
            return
        tokened = self._tokened.get(name)
        if tokened is not None and tokened[1] == token_secret_name(name) \
                and self._secrets.get(tokened[1]) == tokened[0]:
            self._ok_grants.add(name)
        else:
            self._ok_grants.discard(name)
        if self.grants_done_at is None and len(self._ok_grants) == len(self.grants):
            self.grants_done_at = time.monotonic()

    @property
    def grants_active(self) -> int:
        return len(self._active)

    @property
    def grants_ok(self) -> int:
        return len(self._ok_grants)

    @property
    def objects_ok(self) -> int:
        return len(self._ok_objects)

    @property
    def done(self) -> bool:
        return len(self._ok_grants) == len(self.grants) and len(self._ok_objects) == len(self.expected)

    def missing(self, limit: int = 5) -> list[str]:
        grants = sorted(self.grants - self._ok_grants)[:limit]
        objects = sorted(set(self.expected) - self._ok_objects)[:limit]
        return grants + objects


# --- processes ------------------------------------------------------------------------------------------------------


def _status_fields(pid: int) -> dict[str, str]:
    fields: dict[str, str] = {}
    for line in Path(f"/proc/{pid}/status").read_text(encoding="ascii").splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return fields


def rss(pid: int) -> tuple[float, float]:
    """(resident now, peak resident) of a process in MiB, from ``/proc/<pid>/status`` (Linux)."""
    fields = _status_fields(pid)
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far, from ``/proc/<pid>/stat``."""
    import os

    stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii")
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
