"""The embedded Kubernetes API server: KMock's emulator, routed to our own faithful store.

The server listens on loopback only and requires no authentication: it is a test and sandbox tool,
never exposed beyond 127.0.0.1 (any bearer token or none is accepted).

How it sits on KMock (``kmock==0.8``, pinned): ``_handle`` does not mutate anything itself (KMock's
emulator writes objects *before* user reactions run); all state lives in :class:`Store` and is reached
only through one catch-all *fallback* reaction. So any reaction a test adds with ``api[...] << 500``,
and the built-in :attr:`faults`, answer first and leave the store untouched.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import aiohttp.web
import attrs
import kmock
import yaml
from kmock._internal import rendering as kmock_rendering  # StreamingError: not exported, but needed
from kmock._internal.rendering import Response

from tksh.sandbox.apiserver import discovery, errors
from tksh.sandbox.apiserver.errors import APIError, Obj
from tksh.sandbox.apiserver.faults import Faults
from tksh.sandbox.apiserver.patching import APPLY, MERGE, media_type
from tksh.sandbox.apiserver.resources import ResourceInfo
from tksh.sandbox.apiserver.routing import Route, parse_route
from tksh.sandbox.apiserver.selectors import Matcher, make_matcher, parse_fields, parse_labels
from tksh.sandbox.apiserver.store import Store
from tksh.sandbox.apiserver.tables import table, table_version
from tksh.sandbox.apiserver.watches import Watch, WatchSpec, error_stream
from tksh.sandbox.apiserver.wire import body_of, closing_client, header, not_allowed, respond, write_options, written

logger = logging.getLogger(__name__)


def load_crds(paths: Sequence[str | Path]) -> list[Obj]:
    """All CustomResourceDefinition documents of the YAML files (multi-document files are fine)."""
    docs: list[Obj] = []
    for path in paths:
        with Path(path).open(encoding="utf-8") as file:
            docs.extend(doc for doc in yaml.safe_load_all(file)
                        if isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition")
    return docs


@attrs.define(kw_only=True, eq=False)
class EmbeddedAPIServer(kmock.KubernetesEmulator):
    """A Kubernetes API server in-process: ``async with EmbeddedAPIServer(crd_paths=[...]) as api: ...``."""

    crd_paths: Sequence[str | Path] = ()
    host: str = "127.0.0.1"
    port: int = 0
    history_limit: int = 1000  # watch events kept per resource; older resourceVersions get 410 Gone
    kept_requests: int = 5000  # KMock records requests for assertions; older ones are forgotten

    store: Store = attrs.field(init=False)
    faults: Faults = attrs.field(init=False, factory=Faults)
    _server: kmock.Server | None = attrs.field(init=False, default=None)
    _watches: list[Watch] = attrs.field(init=False, factory=list)
    _closing: bool = attrs.field(init=False, default=False)

    def __attrs_post_init__(self) -> None:
        # Deliberately not the emulator's own fallbacks: they serve KMock's naive object store.
        self.store = Store(history_limit=self.history_limit)
        crd_info = self.store.registry.resolve("customresourcedefinitions")
        for crd in load_crds(self.crd_paths):
            self.store.create(crd_info, None, crd)
        self.fallback << self._serve

    # -- lifecycle ---------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        await super().__aenter__()
        # The built-in client (``api.get(...)``, ``api.request(...)``) does not keep connections alive: an
        # in-process kopf waits at exit for every task started after it, idle server connections included.
        self._server = kmock.Server(self, host=self.host, port=self.port or None, client_fct=closing_client)
        await self._server.__aenter__()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc_value: BaseException | None,
                        traceback: TracebackType | None) -> None:
        self._closing = True  # no new watches: a re-watching client would hold the shutdown back
        self.drop_watches(abrupt=False)
        await asyncio.sleep(0)
        if self._server is not None:
            await self._server.__aexit__(exc_type, exc_value, traceback)
            self._server = None
        await super().__aexit__(exc_type, exc_value, traceback)

    @property
    def url(self) -> str:  # type: ignore[override]  # KMock's is a yarl.URL; ours is the plain string
        if self._server is None:
            raise RuntimeError("The embedded API server is not started: use `async with`.")
        return f"http://{self._server.host}:{self._server.port}"

    def write_kubeconfig(self, path: str | Path, context: str = "tksh-sandbox", namespace: str = "default") -> Path:
        """Write a kubeconfig for ``kubectl`` & co.; the token is a placeholder (no authentication)."""
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": context, "cluster": {"server": self.url}}],
            "users": [{"name": context, "user": {"token": "embedded-apiserver-needs-no-token"}}],
            "contexts": [{"name": context, "context": {"cluster": context, "user": context, "namespace": namespace}}],
            "current-context": context,
            "preferences": {},
        }
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        return target

    # -- conveniences for the sandbox and tests --------------------------------------------------

    async def apply(self, obj: Mapping[str, Any]) -> Obj:
        """Create the object, or merge-patch it if it exists (validated as any write); then its ``.status``.

        The status goes through the ``/status`` subresource (if the resource has one), so that manifests
        can carry a status for demos. Raises :class:`APIError` (e.g. 422 with all violations).
        """
        store = self.store
        try:
            info = store.registry.by_kind(str(obj.get("apiVersion", "")), str(obj.get("kind", "")))
        except LookupError:
            kind, version = obj.get("kind"), obj.get("apiVersion")
            raise APIError(404, f'no matches for kind "{kind}" in version "{version}"') from None
        meta = obj.get("metadata") or {}
        namespace = (meta.get("namespace") or "default") if info.namespaced else None
        with_status = info.status and "status" in obj and info.plural not in ("namespaces", "customresourcedefinitions")
        if store.get(info, namespace, str(meta.get("name"))) is None:
            result = store.create(info, namespace, dict(obj)).obj
        else:
            body = {k: v for k, v in obj.items() if not (info.status and k == "status")}
            result = store.patch(info, namespace, meta["name"], MERGE, body).obj
        if with_status:
            result = store.patch(info, namespace, result["metadata"]["name"], MERGE, {"status": obj["status"]},
                                 subresource="status").obj
        return result

    def events(self, namespace: str | None = None, involved_name: str | None = None) -> list[Obj]:
        """Core v1 and ``events.k8s.io/v1`` Events, oldest first, optionally of one involved object."""
        found = self.store.list("v1/events", namespace) + self.store.list("events.k8s.io/v1/events", namespace)
        if involved_name is not None:
            found = [e for e in found
                     if (e.get("involvedObject") or e.get("regarding") or {}).get("name") == involved_name]
        return sorted(found, key=lambda e: int(e["metadata"]["resourceVersion"]))

    @property
    def watch_count(self) -> int:
        """How many watch streams are open now."""
        return len(self._watches)

    def drop_watches(self, resource: str | None = None, *, abrupt: bool = True) -> int:
        """End the open watch streams (of a plural or ``plural.group``, or all); clients must re-watch.

        ``abrupt`` closes the connection mid-stream (the client sees an incomplete payload); otherwise
        the stream just ends, as on a server-side timeout without a bookmark. Returns how many ended.
        """
        dropped = 0
        for watch in list(self._watches):
            info = watch.spec.info
            if resource is None or resource in (info.plural, info.group_resource):
                watch.drop(abrupt=abrupt)
                self._watches.remove(watch)
                dropped += 1
        return dropped

    # -- KMock integration -------------------------------------------------------------------------

    async def __call__(self, raw_request: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        # KMock's own request parsing fails on some valid paths (e.g. /api/v1/namespaces): parse ourselves.
        request = await self._parse_request(raw_request)
        self._requests.append(request)
        try:
            return await self._handle(request)
        except kmock_rendering.StreamingError as exc:  # the stream had started: it can only be cut
            self._remember_error(exc.__cause__ or exc)
            return exc.args[0]  # type: ignore[no-any-return]  # the prepared aiohttp response
        except Exception as exc:  # a failure in a user's reaction or a bug here: a 500 Status, as a server
            self._remember_error(exc)
            logger.exception("The embedded API server failed to serve %s %s", request.method, request.url.path)
            body = errors.status_body(500, "InternalError", f"Internal error occurred: {exc!r}")
            return aiohttp.web.json_response(body, status=500)

    def _remember_error(self, exc: BaseException) -> None:
        if self._errors and isinstance(exc, Exception):
            self._errors[-1].append(exc)

    async def _handle(self, request: kmock.Request) -> aiohttp.web.StreamResponse:
        # Skip KubernetesEmulator._handle (it mutates KMock's store before reactions run): the plain
        # handler tries the users' reactions first, then our fallback, which alone changes the state.
        try:
            return await super(kmock.KubernetesScaffold, self)._handle(request)
        finally:
            self._forget_old_requests()

    def _forget_old_requests(self) -> None:
        if len(self._requests) > self.kept_requests * 2:
            del self._requests[: -self.kept_requests]
            for reaction in self._payloads:
                del reaction._requests[: -self.kept_requests]

    async def _parse_request(self, raw: aiohttp.web.BaseRequest) -> kmock.Request:
        body = await raw.read()
        text = body.decode("utf-8", errors="replace")
        try:
            data = json.loads(text) if text else None
        except ValueError:
            data = None
        route = parse_route(raw.path)
        resource = kmock.resource(route.group, route.version, route.plural) if route.plural else None
        return kmock.Request(
            id=len(self._requests), raw_request=raw, url=raw.url, method=raw.method, params=dict(raw.query),
            headers=dict(raw.headers), cookies=dict(raw.cookies), body=body, text=text, data=data,
            action=route.action(raw.method, dict(raw.query)), resource=resource, namespace=route.namespace,
            name=route.name, subresource=route.subresource,
        )

    # -- serving --------------------------------------------------------------------------------

    def _serve(self, request: kmock.Request) -> Response:
        """The one fallback reaction. Synchronous on purpose: KMock keeps per-reaction response state."""
        route = parse_route(request.url.path)
        method = str(request.method.value).upper()
        watch = method == "GET" and request.params.get("watch") in ("true", "1")
        fault = self.faults.take(method, request.url.path, route.plural, route.group, route.subresource,
                                 route.namespace, route.name, watch)
        if fault is not None:
            return respond(fault.status, fault.body(), fault.headers())
        try:
            return self._route(request, route, method)
        except APIError as exc:
            return respond(exc.code, exc.status(), exc.headers)

    def _route(self, request: kmock.Request, route: Route, method: str) -> Response:
        registry = self.store.registry
        if route.plural is None:
            return self._api_discovery(request, route, method)
        info = registry.get(route.group or "", route.version or "", route.plural)
        if info is None or (route.namespace is not None and not info.namespaced):
            raise errors.no_such_resource()
        if route.subresource is not None and not (route.subresource == "status" and info.status):
            raise errors.no_such_resource()
        params = request.params
        if method == "GET" and params.get("watch") in ("true", "1"):
            return self._api_watch(request, info, route)
        if route.name is None:
            if method == "GET":
                return self._api_list(request, info, route.namespace)
            if method == "POST" and (route.namespace is not None or not info.namespaced):
                result = self.store.create(info, route.namespace, body_of(request), **write_options(request))
                return written(result, 201)
            if method == "DELETE":
                items = self.store.delete_collection(info, route.namespace, self._matcher(info, params))
                return respond(200, {"apiVersion": info.api_version, "kind": f"{info.kind}List",
                                      "metadata": {"resourceVersion": self.store.resource_version}, "items": items})
            if method == "POST":
                raise errors.no_such_resource()  # a namespaced resource needs its namespace in the URL
            raise not_allowed()
        if info.namespaced and route.namespace is None:
            raise errors.no_such_resource()
        if method == "GET":
            obj = self.store.read(info, route.namespace, route.name)
            return self._api_objects(request, info, [obj], single=True)
        if method == "PUT":
            result = self.store.replace(info, route.namespace, route.name, body_of(request),
                                        subresource=route.subresource, **write_options(request))
            return written(result, 200)
        if method == "PATCH":
            content_type = header(request, "Content-Type")
            if media_type(content_type) == APPLY:
                raise APIError(415, "server-side apply is not supported by the embedded API server: use "
                                    "application/merge-patch+json or application/json-patch+json")
            result = self.store.patch(info, route.namespace, route.name, content_type, body_of(request),
                                      subresource=route.subresource, **write_options(request))
            return written(result, 200)
        if method == "DELETE" and route.subresource is None:
            body = body_of(request, required=False)
            preconditions = body.get("preconditions") if isinstance(body, dict) else None
            obj = self.store.delete(info, route.namespace, route.name, preconditions=preconditions,
                                    dry_run=request.params.get("dryRun") == "All")
            if info.crd or info.plural == "namespaces" or self.store.get(info, route.namespace, route.name):
                return respond(200, obj)  # the deleted object, or the one waiting for its finalizers
            return respond(200, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                                  "details": {"name": route.name, "kind": info.plural, "uid": obj["metadata"]["uid"]}})
        raise not_allowed()

    def _api_discovery(self, request: kmock.Request, route: Route, method: str) -> Response:
        registry = self.store.registry
        path = request.url.path.rstrip("/") or "/"
        doc: Obj | None = None
        if method == "GET":
            if path == "/":
                doc = discovery.root_paths(registry)
            elif path == "/version":
                doc = discovery.KUBERNETES_VERSION
            elif path in ("/healthz", "/livez", "/readyz"):
                return respond(200, b"ok", {"Content-Type": "text/plain"})
            elif path == "/api":
                doc = discovery.api_versions(f"{request.url.host}:{request.url.port}")
            elif path == "/apis":
                doc = discovery.api_group_list(registry)
            elif route.group is not None and route.version is None:
                doc = discovery.api_group(registry, route.group)
            elif route.group is not None and route.version is not None:
                doc = discovery.api_resource_list(registry, route.group, route.version)
        if doc is None:
            raise errors.no_such_resource()
        return respond(200, doc)

    def _api_list(self, request: kmock.Request, info: ResourceInfo, namespace: str | None) -> Response:
        items, rv = self.store.list_objects(info, namespace, self._matcher(info, request.params))
        return self._api_objects(request, info, items, resource_version=rv)

    def _api_objects(self, request: kmock.Request, info: ResourceInfo, items: list[Obj], *,
                          single: bool = False, resource_version: str | None = None) -> Response:
        rv = resource_version or self.store.resource_version
        version = table_version(header(request, "Accept"))
        if version is not None:
            return respond(200, table(info, items, rv, version=version,
                                       include_object=request.params.get("includeObject")))
        if single:
            return respond(200, items[0])
        return respond(200, {"apiVersion": info.api_version, "kind": f"{info.kind}List",
                              "metadata": {"resourceVersion": rv}, "items": items})

    def _api_watch(self, request: kmock.Request, info: ResourceInfo, route: Route) -> Response:
        params = request.params
        since_text = params.get("resourceVersion") or "0"
        if not since_text.isdigit():
            raise errors.bad_request(f'resourceVersion: Invalid value: "{since_text}": must be a non-negative integer')
        spec = WatchSpec(
            info=info, namespace=route.namespace, name=route.name, matcher=self._matcher(info, params),
            since=int(since_text), timeout=float(params["timeoutSeconds"]) if params.get("timeoutSeconds") else None,
            bookmarks=params.get("allowWatchBookmarks") == "true",
            initial_events=params.get("sendInitialEvents") == "true" and since_text == "0",
            table_version=table_version(header(request, "Accept")),
        )
        headers = {"Content-Type": "application/json", "Cache-Control": "no-cache, private"}
        if self._closing:
            raise APIError(503, "the embedded API server is shutting down")
        if self.faults.take_expiry(info.plural, info.group):
            gone = APIError(410, f"too old resource version: {since_text} (injected fault)", "Expired")
            return respond(200, error_stream(gone), headers)
        failed = self.faults.take_watch_error(request.url.path, info.plural, info.group, route.namespace)
        if failed is not None:
            status = failed.body()
            return respond(200, error_stream(APIError(failed.status, status["message"], status["reason"])), headers)
        raw = request._raw_request
        transport = raw.transport if raw is not None else None
        watch = Watch(spec, self.store, close_transport=transport.close if transport is not None else lambda: None)
        try:
            watch.start()
        except APIError as exc:
            return respond(200, error_stream(exc), headers)
        self._watches.append(watch)
        return respond(200, self._tracked(watch), headers)

    async def _tracked(self, watch: Watch) -> AsyncIterator[bytes]:
        try:
            async for chunk in watch.stream():
                yield chunk
        finally:
            if watch in self._watches:
                self._watches.remove(watch)

    # -- helpers -------------------------------------------------------------------------------

    def _matcher(self, info: ResourceInfo, params: Mapping[str, str]) -> Matcher:
        fields = parse_fields(params.get("fieldSelector"), info.field_selectors, info.kind, info.api_version)
        return make_matcher(parse_labels(params.get("labelSelector")), fields)
