"""tksh.handlers.kopfwatch against the installed kopf: a watch ERROR other than 410 relists, the operator goes on.

kopf's own ``infinite_watch`` and ``continuous_watch`` run here; only the HTTP watch request (``watch_objs``) is
replaced by a scripted stream of raw events. The whole path against an API server is in
``tests/integration/test_watch_errors.py``.
"""

from __future__ import annotations

import asyncio
import inspect
import io
import json
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

import kopf
import pytest
import structlog
from kopf._cogs.clients import watching
from kopf._cogs.structs import references

from tksh.handlers import kopfwatch
from tksh.handlers.settings import Unending
from tksh.logs import configure_logging
from tksh.metrics import OperatorMetrics

GRANTS = references.Resource(group="tksh.kz", version="v1alpha1", plural="accessgrants", namespaced=True)
EMAIL = "chair@dostyk12.example.kz"
Script = list[list[dict[str, Any]]]


@pytest.fixture(autouse=True)
def installed() -> None:
    kopfwatch.install()


@pytest.fixture
def log() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    stream = io.StringIO()
    configure_logging(level="INFO", stream=stream)
    yield stream
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.reset_defaults()


def error(code: int, message: str = "etcdserver: request timed out", reason: str = "InternalError") -> dict[str, Any]:
    return {"type": "ERROR", "object": {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                                        "message": message, "reason": reason, "code": code}}


def changed(name: str, rv: str) -> dict[str, Any]:
    return {"type": "MODIFIED", "object": {"metadata": {"name": name, "namespace": "ns", "resourceVersion": rv}}}


def scripted(monkeypatch: pytest.MonkeyPatch, script: Script) -> list[str | None]:
    """Each watch request gets the next list of raw events, then its stream ends; past the script it blocks.

    Returns the resourceVersion each watch request started from (None: a fresh start, as after a relist)."""
    calls = iter(script)
    started: list[str | None] = []

    async def watch_objs(*, since: str | None = None, **_: Any) -> AsyncIterator[dict[str, Any]]:
        started.append(since)
        events = next(calls, None)
        if events is None:
            await asyncio.Event().wait()
            return
        for event in events:
            yield event

    monkeypatch.setattr(watching, "watch_objs", watch_objs)
    return started


def settings(backoffs: float | tuple[float, ...] = 0.0) -> kopf.OperatorSettings:
    result = kopf.OperatorSettings()
    result.watching.initial_streaming = True  # no list request: the watch stream is all there is
    result.watching.reconnect_backoff = 0
    result.networking.error_backoffs = backoffs
    return result


async def take(count: int, backoffs: float | tuple[float, ...] = 0.0) -> list[Any]:
    """The first ``count`` watch events (raw dicts) kopf's ``infinite_watch`` yields."""
    stream = watching.infinite_watch(settings=settings(backoffs), resource=GRANTS, namespace=None)
    events: list[Any] = []
    try:
        while len(events) < count:
            event = await asyncio.wait_for(anext(stream), timeout=10)
            if isinstance(event, dict):
                events.append(event)
    finally:
        await stream.aclose()  # type: ignore[attr-defined]
    return events


def test_kopf_still_has_the_shape_the_fix_relies_on() -> None:
    """``infinite_watch`` looks ``continuous_watch`` up in its module on every turn and relists when it returns;
    ``continuous_watch`` still returns on 410 and raises ``WatchingError`` with the Status for any other ERROR."""
    infinite = inspect.getsource(watching.infinite_watch)
    assert "stream = continuous_watch(" in infinite
    assert "await asyncio.sleep(settings.watching.reconnect_backoff)" in infinite
    original = getattr(watching, kopfwatch._MARK)
    source = inspect.getsource(original)
    assert "['code'] == 410" in source and "return  # out of the regular stream" in source
    assert 'raise WatchingError(f"Error in the watch-stream: {raw_object}")' in source
    assert kopfwatch.PREFIX == "Error in the watch-stream: "
    assert inspect.signature(original).parameters.keys() == inspect.signature(
        kopfwatch._continuous_watch).parameters.keys()
    assert watching.continuous_watch is kopfwatch._continuous_watch


def test_install_is_idempotent() -> None:
    original = getattr(watching, kopfwatch._MARK)
    kopfwatch.install()
    kopfwatch.install(OperatorMetrics())
    assert watching.continuous_watch is kopfwatch._continuous_watch
    assert getattr(watching, kopfwatch._MARK) is original is not kopfwatch._continuous_watch


async def test_a_500_error_event_relists_and_the_stream_goes_on(monkeypatch: pytest.MonkeyPatch,
                                                                 log: io.StringIO) -> None:
    metrics = OperatorMetrics()
    kopfwatch.install(metrics)
    since = scripted(monkeypatch, [
        [changed("a", "5"), error(500, f"etcdserver: request timed out for grant of {EMAIL}")],
        [changed("b", "7")],
    ])
    events = await take(2)
    assert [e["object"]["metadata"]["name"] for e in events] == ["a", "b"]
    assert since == [None, None]  # started afresh, not from the resourceVersion seen before the error
    assert metrics.value("tksh_watch_errors_total", {"resource": "accessgrants.tksh.kz", "code": "500"}) == 1
    warnings = [json.loads(line) for line in log.getvalue().splitlines() if "ERROR event" in line]
    assert len(warnings) == 1, log.getvalue()
    line = warnings[0]
    assert line["level"] == "warning" and line["code"] == "500" and line["resource"] == "accessgrants.tksh.kz"
    assert "request timed out" in line["message"] and EMAIL not in log.getvalue()


async def test_410_is_still_kopfs_own_and_not_counted(monkeypatch: pytest.MonkeyPatch) -> None:
    metrics = OperatorMetrics()
    kopfwatch.install(metrics)
    scripted(monkeypatch, [[error(410, "too old resource version", "Expired")], [changed("b", "7")]])
    events = await take(1)
    assert [e["object"]["metadata"]["name"] for e in events] == ["b"]
    assert metrics.value("tksh_watch_errors_total", {"resource": "accessgrants.tksh.kz", "code": "410"}) is None


async def test_other_exceptions_go_through(monkeypatch: pytest.MonkeyPatch) -> None:
    async def broken(**_: Any) -> AsyncIterator[dict[str, Any]]:
        raise RuntimeError("a bug")
        yield {}  # an async generator

    monkeypatch.setattr(watching, "watch_objs", broken)
    with pytest.raises(RuntimeError, match="a bug"):
        await take(2)
    with pytest.raises(watching.WatchingError, match="not an ERROR event"):  # a WatchingError of another origin
        async def other(**_: Any) -> AsyncIterator[dict[str, Any]]:
            raise watching.WatchingError("not an ERROR event")
            yield {}

        monkeypatch.setattr(watching, "watch_objs", other)
        await take(2)


async def test_cancellation_goes_through(monkeypatch: pytest.MonkeyPatch) -> None:
    scripted(monkeypatch, [])  # the first watch blocks
    stream = watching.infinite_watch(settings=settings(), resource=GRANTS, namespace=None)
    waiting = asyncio.ensure_future(anext(stream))
    await asyncio.sleep(0.01)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting


async def test_errors_in_a_row_are_counted_and_a_watch_event_ends_the_streak(monkeypatch: pytest.MonkeyPatch,
                                                                              log: io.StringIO) -> None:
    kopfwatch.install(OperatorMetrics())
    scripted(monkeypatch, [[error(503)], [error(503)], [error(503)], [changed("a", "3")], [error(429)],
                           [changed("b", "4")]])
    events = await take(2, backoffs=(0.001, 0.002))
    assert [e["object"]["metadata"]["name"] for e in events] == ["a", "b"]
    lines = [json.loads(line) for line in log.getvalue().splitlines() if "ERROR event" in line]
    assert [(x["code"], x["in_a_row"], x["retry_in"]) for x in lines] == [
        ("503", 1, 0.0), ("503", 2, 0.001), ("503", 3, 0.002), ("429", 1, 0.0)]


def test_backoff_follows_the_operators_error_backoffs() -> None:
    production = (1, 1, 2, 3, 5, 8, 13, 21)
    assert [kopfwatch.backoff(production, n) for n in (1, 2, 3, 4, 9, 10, 50)] == [0, 1, 1, 2, 21, 21, 21]
    unending = Unending((0.1, 0.2), then=1)
    assert [kopfwatch.backoff(unending, n) for n in (1, 2, 3, 4, 40)] == [0, 0.1, 0.2, 1, 1]
    assert kopfwatch.backoff(2.5, 3) == 2.5 and kopfwatch.backoff(2.5, 1) == 0
    unending.stop()  # the operator is stopping: no wait at all
    assert kopfwatch.backoff(unending, 5) == 0


def test_a_streak_ends_after_a_quiet_while() -> None:
    errors = kopfwatch.WatchErrors()
    key = ("accessgrants.tksh.kz", None)
    assert [errors.failed(key, t) for t in (0.0, 1.0, 2.0)] == [1, 2, 3]
    assert errors.failed(key, 2.0 + kopfwatch.STREAK_RESET + 1) == 1
    errors.recovered(key)
    assert errors.failed(key, 1000.0) == 1
    assert errors.failed(("digitalobjects.tksh.kz", "ns"), 1000.0) == 1  # per resource


def test_the_status_is_read_back_from_kopfs_error() -> None:
    status = error(500)["object"]
    assert kopfwatch.parse_error(watching.WatchingError(f"Error in the watch-stream: {status}")) == status
    assert kopfwatch.parse_error(watching.WatchingError("Error in the watch-stream: <garbage")) == {}
    assert kopfwatch.parse_error(watching.WatchingError("something else")) is None
    assert kopfwatch.parse_error(RuntimeError("Error in the watch-stream: {}")) is None
