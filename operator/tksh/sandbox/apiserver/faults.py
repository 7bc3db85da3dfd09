"""Fault injection: answer chosen requests with an error Status *before* anything changes in the store."""

from __future__ import annotations

from dataclasses import dataclass, field

from tksh.sandbox.apiserver.errors import REASONS, Obj, status_body

_MESSAGES: dict[int, str] = {
    409: "the object has been modified; please apply your changes to the latest version and try again "
         "(injected fault)",
    410: "too old resource version (injected fault)",
    429: "Too many requests, please try again later. (injected fault)",
    500: "Internal error occurred: injected fault",
    503: "the server is currently unable to handle the request (injected fault)",
    504: "Timeout: request did not complete within the allowed duration (injected fault)",
}


@dataclass
class Fault:
    """One injected fault; ``times=None`` means forever. ``subresource=""`` matches the main resource only;
    ``watch=True`` only watch requests, ``False`` all but watches. ``event=True``: answered as a watch ``ERROR``
    event over HTTP 200 (:meth:`Faults.error_watches`), not as an HTTP error."""

    status: int
    method: str | None = None
    resource: str | None = None
    subresource: str | None = None
    namespace: str | None = None
    name: str | None = None
    times: int | None = 1
    retry_after: int | None = None
    message: str | None = None
    watch: bool | None = None
    hits: int = 0
    event: bool = False

    @property
    def exhausted(self) -> bool:
        return self.times is not None and self.hits >= self.times

    def matches(self, method: str, plural: str | None, group: str | None, subresource: str | None,
                namespace: str | None, name: str | None, watch: bool = False) -> bool:
        if self.exhausted or (self.method is not None and self.method.upper() != method.upper()):
            return False
        if self.watch is not None and self.watch != watch:
            return False
        if self.resource is not None and self.resource not in (plural, f"{plural}.{group}" if group else plural):
            return False
        if self.subresource is not None and self.subresource != (subresource or ""):
            return False
        return (self.namespace is None or self.namespace == namespace) and (self.name is None or self.name == name)

    def body(self) -> Obj:
        reason = REASONS.get(self.status, "Unknown")
        details: Obj = {"retryAfterSeconds": self.retry_after} if self.retry_after is not None else {}
        message = self.message or _MESSAGES.get(self.status, f"injected fault: {self.status} {reason}")
        if self.status == 410:
            reason = "Expired"
        return status_body(self.status, reason, message, details)

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)} if self.retry_after is not None else {}


@dataclass(frozen=True)
class Injected:
    """A record of one request answered by a fault."""

    status: int
    method: str
    path: str
    fault: Fault


@dataclass
class Faults:
    """``api.faults``: inject errors into matching requests; inspect ``injected`` afterwards."""

    pending: list[Fault] = field(default_factory=list)
    injected: list[Injected] = field(default_factory=list)
    _expiries: list[list[str | int | None]] = field(default_factory=list)  # [resource or None, times left]
    _watch_errors: list[Fault] = field(default_factory=list)

    def inject(self, status: int = 500, *, method: str | None = None, resource: str | None = None,
               subresource: str | None = None, namespace: str | None = None, name: str | None = None,
               times: int | None = 1, retry_after: int | None = None, message: str | None = None,
               watch: bool | None = None) -> Fault:
        """Answer the next ``times`` matching requests with ``status``.

        ``resource`` is a plural (``digitalobjects``) or ``plural.group``; None matches any request, even
        discovery. ``subresource="status"`` matches only status writes, ``""`` only the main resource,
        None both. ``watch=True`` matches only watch requests (a role with ``list`` but not ``watch``: 403),
        ``False`` all others, None both. For 429, pass ``retry_after`` to get the ``Retry-After`` header
        (defaults to 1 second).
        """
        if status == 429 and retry_after is None:
            retry_after = 1
        fault = Fault(status, method, resource, subresource, namespace, name, times, retry_after, message, watch)
        self.pending.append(fault)
        return fault

    def expire_watches(self, resource: str | None = None, times: int = 1) -> None:
        """Answer the next ``times`` watch requests (of ``resource``, or any) with a 410 Gone ERROR event."""
        self._expiries.append([resource, times])

    def error_watches(self, status: int = 500, *, resource: str | None = None, namespace: str | None = None,
                      times: int | None = 1, message: str | None = None) -> Fault:
        """Answer the next ``times`` watch requests (of ``resource``, or any) with one ``ERROR`` event carrying a
        ``status`` Status (HTTP 200, then the stream ends), as a real server does for e.g. 500 ``etcdserver:
        request timed out``. Recorded in ``injected`` like :meth:`inject`; the fault's ``hits`` count the watches."""
        fault = Fault(status, "GET", resource, None, namespace, None, times, None, message, True, event=True)
        self._watch_errors.append(fault)
        return fault

    def clear(self) -> None:
        self.pending.clear()
        self._expiries.clear()
        self._watch_errors.clear()

    def take(self, method: str, path: str, plural: str | None, group: str | None, subresource: str | None,
             namespace: str | None, name: str | None, watch: bool = False) -> Fault | None:
        for fault in self.pending:
            if fault.matches(method, plural, group, subresource, namespace, name, watch):
                fault.hits += 1
                self.injected.append(Injected(fault.status, method.upper(), path, fault))
                self.pending[:] = [f for f in self.pending if not f.exhausted]
                return fault
        return None

    def take_expiry(self, plural: str, group: str) -> bool:
        for expiry in self._expiries:
            resource, left = expiry
            if resource in (None, plural, f"{plural}.{group}") and isinstance(left, int) and left > 0:
                expiry[1] = left - 1
                self._expiries[:] = [e for e in self._expiries if isinstance(e[1], int) and e[1] > 0]
                return True
        return False

    def take_watch_error(self, path: str, plural: str, group: str, namespace: str | None) -> Fault | None:
        """The :meth:`error_watches` fault a watch request is answered with, if any (counted as a hit)."""
        for fault in self._watch_errors:
            if fault.matches("GET", plural, group, None, namespace, None, watch=True):
                fault.hits += 1
                self.injected.append(Injected(fault.status, "GET", path, fault))
                self._watch_errors[:] = [f for f in self._watch_errors if not f.exhausted]
                return fault
        return None
