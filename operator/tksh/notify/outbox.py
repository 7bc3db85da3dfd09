"""A durable notification outbox kept in an object's status (``status.outbox``), as pure functions.

One outbox design for every notification of the operator: the registration decisions of a
``DigitalObject`` (§16–17) and the monitoring notices of an ``Incident`` (opened, reminders at
T+15/30/45 minutes, breach of the one-hour restoration term, recovered; §34) alike, over the
channels ``email``, ``webhook``, ``event`` and ``alertmanager``. The entries are
:class:`tksh.resources.common.OutboxEntry` in their JSON (camelCase) form; every function takes a
list of entries and returns a new list, never mutating its input.

The at-least-once contract
--------------------------
1. **Record before sending.** The operator appends the entry (``state: Pending``) to the object's
   status and the API server stores it *before* any attempt to send it. An entry that exists only
   in the operator's memory is never sent; a crash before the write loses nothing, because the
   next reconcile derives the same entry again.
2. **Send, then mark.** The operator sends the entries it read back from the stored status
   (:func:`due`) and then writes :func:`mark_delivered` or :func:`mark_failed`.
3. **A crash between the two re-sends once**, with the same idempotency key: the entry's ``id``.
   E-mails carry it as ``Message-ID: <id@sender-domain>`` and ``X-TKSH-Idempotency-Key: id``;
   webhooks as an ``Idempotency-Key`` header. Receivers that remember keys de-duplicate; the
   others see at most one duplicate per crash.
4. **Idempotent enqueue.** An ``id`` is a deterministic key of *what* is notified (see
   :func:`make_key`: e.g. object uid + transition + generation + recipient role; or incident uid +
   ``reminder`` + 30). Re-running a reconcile on the same inputs enqueues the same ids, which
   :func:`enqueue` ignores: no duplicate, not even of an entry already delivered or given up.
5. **Idempotency survives compaction for a retention period.** :func:`compact` slims delivered
   entries (drops their params) and removes them only after ``retention``, so a key re-derived within
   that period is still recognised. Producers derive a key only on a transition, or within a window
   shorter than ``retention`` (the registration lifecycle's longest is 23 days: the 30-day expiry
   notice until the 7-day one), so a key forgotten after ``retention`` never comes back.
6. **Retries are bounded.** A temporary failure re-schedules the entry with exponential backoff and
   jitter (:class:`Backoff`); a permanent failure, or ``maxAttempts`` temporary ones, ends in
   ``Failed`` with ``lastError``, which the operator reports (an Event, a metric).
7. **In order per receiver.** Entries to one receiver (channel, recipient, role) are sent in the order
   they were recorded: :func:`due` offers only the oldest pending one of each, so a receiver that was
   down gets its backlog in order, whatever the backoffs of the single entries say.

Personal data (§9): ``recipient`` is stored masked (``a***@e***.kz`` by
:func:`tksh.logs.masked_email`); the real address is read from the object's spec (or the
operator's configuration) at send time and never written to the outbox. ``params`` must hold no
personal data; error texts are masked with :func:`tksh.logs.mask_text` before they are stored.

Concurrency: a status list is replaced as a whole by a merge patch, so two writers can lose each
other's changes. Write the outbox from one task per object, or re-read the status and combine
with :func:`merge` before patching.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from tksh.conditions import rfc3339
from tksh.logs import mask_text, masked_email

__all__ = [
    "CHANNELS",
    "Backoff",
    "Channel",
    "DeliveryResult",
    "Entry",
    "Outbox",
    "compact",
    "due",
    "enqueue",
    "enqueue_all",
    "find",
    "make_key",
    "mark_delivered",
    "mark_failed",
    "merge",
    "new_entry",
    "next_attempt_at",
    "parse_time",
    "record",
]

Channel = Literal["email", "webhook", "event", "alertmanager"]
CHANNELS: tuple[Channel, ...] = ("email", "webhook", "event", "alertmanager")
Entry = dict[str, Any]
"""One outbox entry in its status (camelCase JSON) form."""
Outbox = list[Entry]

MAX_TEXT = 1024  # the schema's limit for params values, recipient and lastError
_STATE_RANK = {"Pending": 0, "Failed": 1, "Delivered": 2}


def parse_time(value: str | datetime.datetime | None) -> datetime.datetime | None:
    """An RFC 3339 timestamp of a status (``2026-03-20T05:00:00Z``) as an aware datetime."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime.datetime):
        moment = value
    else:
        moment = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"timestamp {value!r} has no timezone")
    return moment


def make_key(prefix: str, *parts: object) -> str:
    """A deterministic idempotency key: ``<prefix>-<32 hex digits of sha256(parts)>``.

    ``prefix`` says what kind of notification it is (readable in the status, e.g.
    ``registration-approved``); ``parts`` identify the occurrence, e.g. the object's uid, the
    transition, the generation and the recipient's role. Never pass personal data in clear in
    ``prefix``; ``parts`` are hashed.
    """
    if not prefix or not prefix[0].isalnum() or not all(c.isalnum() or c in "._:-" for c in prefix):
        raise ValueError(f"key prefix {prefix!r} must be letters, digits and . _ : - (starting with one of the first)")
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode("utf-8")).hexdigest()[:32]
    return f"{prefix[:200]}-{digest}"


def _clip(text: str) -> str:
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"


def new_entry(
    *,
    id: str,
    channel: Channel,
    template: str,
    now: datetime.datetime,
    recipient: str | None = None,
    params: Mapping[str, str] | None = None,
) -> Entry:
    """A new ``Pending`` entry, due at once. ``recipient`` is masked here: ``masked_email`` for e-mail,
    ``mask_text`` otherwise (pass a description of the receiver, never a secret such as a token URL)."""
    if channel not in CHANNELS:
        raise ValueError(f"channel {channel!r} must be one of {', '.join(CHANNELS)}")
    stamp = rfc3339(now)
    entry: Entry = {"id": id, "channel": channel, "template": template, "state": "Pending",
                    "createdAt": stamp, "attempts": 0, "nextAttemptAt": stamp}
    if recipient:
        entry["recipient"] = _clip(masked_email(recipient) if channel == "email" else mask_text(recipient))
    if params:
        entry["params"] = {str(k): _clip(str(v)) for k, v in params.items()}
    return entry


def find(outbox: Sequence[Mapping[str, Any]] | None, id: str) -> Entry | None:
    """The entry with ``id`` (a copy), or ``None``."""
    for entry in outbox or ():
        if entry.get("id") == id:
            return dict(entry)
    return None


def enqueue(outbox: Sequence[Mapping[str, Any]] | None, entry: Mapping[str, Any]) -> Outbox:
    """``outbox`` with ``entry`` appended, unless an entry with its ``id`` is already there (idempotent)."""
    result = [dict(e) for e in outbox or ()]
    if not any(e.get("id") == entry["id"] for e in result):
        result.append(dict(entry))
    return result


def enqueue_all(outbox: Sequence[Mapping[str, Any]] | None, entries: Sequence[Mapping[str, Any]]) -> Outbox:
    """:func:`enqueue` each of ``entries`` in order."""
    result = [dict(e) for e in outbox or ()]
    for entry in entries:
        result = enqueue(result, entry)
    return result


def _when(entry: Mapping[str, Any]) -> datetime.datetime:
    moment = parse_time(entry.get("nextAttemptAt")) or parse_time(entry.get("createdAt"))
    return moment or datetime.datetime.min.replace(tzinfo=datetime.UTC)


_RECEIVER_PARAMS = ("to", "recipientRole", "recipientNamespace", "recipientName")
"""Params that name whom an entry goes to: the role (``to``, ``recipientRole``) and the object whose owner it is."""


def _queue(entry: Mapping[str, Any]) -> tuple[str, ...]:
    """The receiver an entry goes to: its channel, its (masked) recipient and the params that name the recipient.

    The masked recipient alone is not enough: two owners' addresses can mask alike (``o***@example.kz``), and
    one queue for both would deliver their notices one at a time."""
    params = entry.get("params")
    named = tuple(str(params.get(k, "")) if isinstance(params, Mapping) else "" for k in _RECEIVER_PARAMS)
    return str(entry.get("channel", "")), str(entry.get("recipient") or ""), *named


def _heads(outbox: Sequence[Mapping[str, Any]] | None) -> Outbox:
    """The oldest ``Pending`` entry of each queue (recorded first: ``createdAt``, then place in the outbox)."""
    heads: dict[tuple[str, ...], tuple[tuple[datetime.datetime, int], Entry]] = {}
    for index, entry in enumerate(outbox or ()):
        if entry.get("state", "Pending") != "Pending":
            continue
        rank, key = (_when_created(entry), index), _queue(entry)
        if key not in heads or rank < heads[key][0]:
            heads[key] = (rank, dict(entry))
    return [entry for _, entry in heads.values()]


def due(outbox: Sequence[Mapping[str, Any]] | None, now: datetime.datetime) -> Outbox:
    """The ``Pending`` entries to attempt at ``now``, oldest due first (ties: created, id).

    Per receiver (channel and recipient), in the order they were recorded: only the oldest pending
    entry of a receiver is due (when its next attempt is), a later one waits until it is delivered or
    given up. So a receiver that was down gets its backlog in order, not in the order the backoffs
    happen to expire; the next entry is due at once after the one before it is finished.
    """
    ready = [e for e in _heads(outbox) if _when(e) <= now]
    return sorted(ready, key=lambda e: (_when(e), parse_time(e.get("createdAt")) or _when(e), str(e["id"])))


def next_attempt_at(outbox: Sequence[Mapping[str, Any]] | None) -> datetime.datetime | None:
    """When the earliest entry :func:`due` would return is due (``None`` if none is pending): when to wake up."""
    return min((_when(e) for e in _heads(outbox)), default=None)


def _replace(outbox: Sequence[Mapping[str, Any]] | None, id: str, update: Mapping[str, Any] | None) -> Outbox:
    result: Outbox = []
    for entry in outbox or ():
        item = dict(entry)
        if item.get("id") == id and update is not None:
            item.update(update)
            item = {k: v for k, v in item.items() if v is not None}
        result.append(item)
    return result


def mark_delivered(outbox: Sequence[Mapping[str, Any]] | None, id: str, now: datetime.datetime) -> Outbox:
    """``outbox`` with entry ``id`` delivered at ``now``. An entry already finished, or gone, is left alone."""
    entry = find(outbox, id)
    if entry is None or entry.get("state", "Pending") != "Pending":
        return _replace(outbox, id, None)
    update = {"state": "Delivered", "deliveredAt": rfc3339(now), "attempts": int(entry.get("attempts") or 0) + 1,
              "nextAttemptAt": None, "lastError": None}
    return _replace(outbox, id, update)


@dataclasses.dataclass(frozen=True)
class Backoff:
    """Exponential backoff with bounded jitter and a maximum number of attempts.

    After the ``n``-th failed attempt the next one waits ``initial * factor**(n-1)``, capped at
    ``maximum``, spread by ``± jitter`` (a fraction) and never above ``maximum``. The spread is
    drawn from the entry's id and attempt number, not a random generator, so a schedule is
    reproducible while different entries still spread out.
    """

    initial: datetime.timedelta = datetime.timedelta(seconds=30)
    factor: float = 2.0
    maximum: datetime.timedelta = datetime.timedelta(hours=1)
    max_attempts: int = 10
    jitter: float = 0.2

    def __post_init__(self) -> None:
        if self.initial <= datetime.timedelta(0) or self.maximum < self.initial:
            raise ValueError("backoff needs 0 < initial <= maximum")
        if self.factor < 1 or not 0 <= self.jitter < 1 or self.max_attempts < 1:
            raise ValueError("backoff needs factor >= 1, 0 <= jitter < 1 and max_attempts >= 1")

    def base(self, attempt: int) -> datetime.timedelta:
        """The delay after the ``attempt``-th failure (1-based), before jitter."""
        exponent = max(attempt, 1) - 1
        seconds = self.initial.total_seconds() * self.factor ** min(exponent, 64)
        return min(datetime.timedelta(seconds=min(seconds, self.maximum.total_seconds())), self.maximum)

    def bounds(self, attempt: int) -> tuple[datetime.timedelta, datetime.timedelta]:
        """The interval the jittered delay after the ``attempt``-th failure falls in."""
        base = self.base(attempt)
        return base * (1 - self.jitter), min(base * (1 + self.jitter), self.maximum)

    def delay(self, attempt: int, unit: float) -> datetime.timedelta:
        """The delay for a point ``unit`` in [0, 1] of the jitter interval."""
        low, high = self.bounds(attempt)
        return low + (high - low) * min(max(unit, 0.0), 1.0)


def _unit(id: str, attempt: int) -> float:
    digest = hashlib.sha256(f"{id}\x1f{attempt}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def mark_failed(
    outbox: Sequence[Mapping[str, Any]] | None,
    id: str,
    now: datetime.datetime,
    error: str,
    backoff: Backoff | None = None,
    *,
    permanent: bool = False,
) -> Outbox:
    """``outbox`` with one more failed attempt of entry ``id``.

    A temporary failure schedules the next attempt by ``backoff``; a permanent one, or the
    ``backoff.max_attempts``-th attempt, ends in ``Failed``. ``error`` is masked and clipped.
    An entry already finished, or gone, is left alone.
    """
    backoff = backoff or Backoff()
    entry = find(outbox, id)
    if entry is None or entry.get("state", "Pending") != "Pending":
        return _replace(outbox, id, None)
    attempts = int(entry.get("attempts") or 0) + 1
    update: dict[str, Any] = {"attempts": attempts, "lastError": _clip(mask_text(error) or "unknown error")}
    if permanent or attempts >= backoff.max_attempts:
        update |= {"state": "Failed", "nextAttemptAt": None}
    else:
        update["nextAttemptAt"] = rfc3339(now + backoff.delay(attempts, _unit(id, attempts)))
    return _replace(outbox, id, update)


def _finished_at(entry: Mapping[str, Any]) -> datetime.datetime:
    return parse_time(entry.get("deliveredAt")) or _when_created(entry)


def _when_created(entry: Mapping[str, Any]) -> datetime.datetime:
    return parse_time(entry.get("createdAt")) or datetime.datetime.min.replace(tzinfo=datetime.UTC)


def compact(
    outbox: Sequence[Mapping[str, Any]] | None,
    now: datetime.datetime,
    *,
    keep: int = 20,
    retention: datetime.timedelta = datetime.timedelta(days=45),
    limit: int = 200,
) -> Outbox:
    """A smaller outbox that still recognises recent keys.

    - ``Pending`` entries always stay, untouched;
    - a ``Delivered`` entry loses its ``params`` (the message is sent) but keeps its id, template,
      recipient and times, so re-enqueueing its key is still a no-op;
    - finished (``Delivered``/``Failed``) entries are dropped once older than ``retention`` (from
      delivery, or creation for ``Failed``), except the ``keep`` most recent ones, kept as history;
    - if more than ``limit`` entries remain, the oldest finished ones go first (a hard bound on the
      status size: an object that notifies more than ``limit`` times within ``retention`` trades
      idempotency of its oldest keys for staying writable).

    Order is preserved.
    """
    finished = [e for e in outbox or () if e.get("state", "Pending") != "Pending"]
    newest_first = sorted(finished, key=_finished_at, reverse=True)
    kept = [e for i, e in enumerate(newest_first) if i < keep or now - _finished_at(e) < retention]
    room = max(limit - (len(outbox or ()) - len(finished)), 0)
    kept_ids = {str(e["id"]) for e in kept[:room]}
    result: Outbox = []
    for entry in outbox or ():
        state = entry.get("state", "Pending")
        if state == "Pending":
            result.append(dict(entry))
        elif str(entry["id"]) in kept_ids:
            item = dict(entry)
            if state == "Delivered":
                item.pop("params", None)
            result.append(item)
    return result


def _progress(entry: Mapping[str, Any]) -> tuple[int, int]:
    return _STATE_RANK.get(str(entry.get("state", "Pending")), 0), int(entry.get("attempts") or 0)


def merge(base: Sequence[Mapping[str, Any]] | None, other: Sequence[Mapping[str, Any]] | None) -> Outbox:
    """The union of two versions of one outbox, by id, each entry in its most advanced version.

    ``Delivered`` beats ``Failed`` beats ``Pending``; between two ``Pending`` versions the one with
    more attempts wins. ``base`` order first, then ids only ``other`` has. For a writer that re-read
    the status and must not undo another writer's marks.
    """
    result = [dict(e) for e in base or ()]
    index = {str(e["id"]): i for i, e in enumerate(result)}
    for entry in other or ():
        key = str(entry["id"])
        if key not in index:
            index[key] = len(result)
            result.append(dict(entry))
        elif _progress(entry) > _progress(result[index[key]]):
            result[index[key]] = dict(entry)
    return result


@dataclasses.dataclass(frozen=True)
class DeliveryResult:
    """The outcome of one delivery attempt on any channel, classified for the outbox."""

    delivered: bool
    permanent: bool = False
    """For a failure: retrying cannot help (a refused mailbox, an unknown template, no address)."""
    error: str = ""
    """What went wrong, masked (no address or identifier in clear)."""
    code: int | None = None
    """The protocol's status code, when there was one (SMTP reply code, HTTP status)."""

    @property
    def temporary(self) -> bool:
        return not self.delivered and not self.permanent


def record(
    outbox: Sequence[Mapping[str, Any]] | None,
    id: str,
    result: DeliveryResult,
    now: datetime.datetime,
    backoff: Backoff | None = None,
) -> Outbox:
    """``outbox`` after one attempt of entry ``id``: :func:`mark_delivered` or :func:`mark_failed`."""
    if result.delivered:
        return mark_delivered(outbox, id, now)
    return mark_failed(outbox, id, now, result.error, backoff, permanent=result.permanent)
