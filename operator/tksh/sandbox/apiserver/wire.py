"""HTTP plumbing of the server: request bodies and options, responses through KMock, the test client."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

import aiohttp
import kmock
import yaml
import yarl
from kmock._internal.rendering import Response  # not exported by KMock, but its reactions return it

from tksh.sandbox.apiserver import errors, protobuf
from tksh.sandbox.apiserver.errors import JSON, APIError
from tksh.sandbox.apiserver.patching import APPLY, media_type
from tksh.sandbox.apiserver.store import WriteResult

# Every response sets all of these (None = absent): KMock merges a reaction's headers across requests.
_HEADERS = ("Warning", "Retry-After", "Content-Type", "Cache-Control")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def not_allowed() -> APIError:
    return APIError(405, "the server does not allow this method on the requested resource")


def header(request: kmock.Request, name: str) -> str | None:
    """A request header, case-insensitively (KMock keeps them in a plain dict)."""
    return next((value for key, value in request.headers.items() if key.lower() == name.lower()), None)


def respond(status: int, payload: Any, headers: Mapping[str, str] | None = None) -> Response:
    merged: dict[str, str | None] = dict.fromkeys(_HEADERS)
    merged.update(headers or {})
    return Response(status=status, payload=payload, headers=merged)


def closing_client(base_url: yarl.URL) -> aiohttp.ClientSession:
    """The client of ``api.get(...)``/``api.request(...)``: no keep-alive (see docs/embedded-apiserver.md)."""
    return aiohttp.ClientSession(base_url, connector=aiohttp.TCPConnector(force_close=True))


def body_of(request: kmock.Request, *, required: bool = True) -> JSON:
    """The decoded request body: JSON, YAML, or protobuf of a few built-ins (kubectl's typed commands)."""
    if not request.body:
        if required:
            raise errors.bad_request("the request body is empty")
        return None
    kind = media_type(header(request, "Content-Type"))
    if kind == "application/vnd.kubernetes.protobuf":
        return protobuf.decode(request.body)
    if "cbor" in kind or "protobuf" in kind:
        raise APIError(415, f"the body of the request was in an unknown format - accepted media types include: "
                            f"application/json, application/yaml (not {kind})")
    try:
        if kind in ("application/yaml", APPLY):
            return yaml.safe_load(request.text)
        return json.loads(request.text)
    except (ValueError, yaml.YAMLError) as exc:
        raise errors.bad_request(f"the body of the request could not be decoded: {exc}") from None


def write_options(request: kmock.Request) -> dict[str, Any]:
    return {"dry_run": request.params.get("dryRun") == "All", "field_validation": request.params.get("fieldValidation")}


def written(result: WriteResult, status: int) -> Response:
    """The stored object; unknown (pruned) fields reported in ``Warning`` headers, as a real server does."""
    # A field name may hold control characters; a header may not (Go's server turns CR/LF into spaces, aiohttp
    # refuses any of them and drops the connection), so every one becomes a space.
    quoted = [_CONTROL.sub(" ", w.replace("\\", "\\\\").replace('"', '\\"')) for w in result.warnings]
    headers = {"Warning": ", ".join(f'299 - "{w}"' for w in quoted)} if quoted else {}
    return respond(status if result.created else 200, result.obj, headers)
