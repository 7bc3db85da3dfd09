"""The durable outbox: idempotent enqueue, due order, backoff with jitter and cap, give-up, compaction."""

from __future__ import annotations

import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tksh.notify import outbox as ob
from tksh.resources.common import OutboxEntry

T0 = datetime.datetime(2026, 7, 21, 5, 0, tzinfo=datetime.UTC)
S = datetime.timedelta(seconds=1)


def entry(key: str, at: datetime.datetime = T0, recipient: str = "board@dostyk12.example.kz") -> ob.Entry:
    return ob.new_entry(id=key, channel="email", template="registration-approved", now=at,
                        recipient=recipient, params={"name": "osi-portal"})


def test_new_entry_is_pending_due_now_with_the_recipient_masked() -> None:
    e = entry("k1")
    assert e == {
        "id": "k1", "channel": "email", "template": "registration-approved", "state": "Pending",
        "createdAt": "2026-07-21T05:00:00Z", "attempts": 0, "nextAttemptAt": "2026-07-21T05:00:00Z",
        "recipient": "b***@d***.kz", "params": {"name": "osi-portal"},
    }
    OutboxEntry.model_validate(e)  # the status schema accepts it
    assert "board@" not in str(e)


def test_non_email_recipients_are_masked_as_text() -> None:
    e = ob.new_entry(id="w", channel="webhook", template="incident-opened", now=T0, recipient="owner 140540001231")
    assert "140540001231" not in e["recipient"]
    with pytest.raises(ValueError):
        ob.new_entry(id="x", channel="sms", template="t", now=T0)  # type: ignore[arg-type]


def test_params_are_clipped_to_the_schema_limit() -> None:
    e = ob.new_entry(id="k", channel="email", template="t", now=T0, params={"long": "я" * 5000})
    assert len(e["params"]["long"]) == 1024
    OutboxEntry.model_validate(e)


def test_keys_are_deterministic_and_distinct() -> None:
    a = ob.make_key("registration-approved", "uid-1", "owner", 3)
    assert a == ob.make_key("registration-approved", "uid-1", "owner", 3)
    assert a.startswith("registration-approved-") and len(a) == len("registration-approved-") + 32
    assert a != ob.make_key("registration-approved", "uid-1", "owner", 4)
    assert a != ob.make_key("registration-approved", "uid-2", "owner", 3)
    # parts are separated: ("ab", "c") is not ("a", "bc")
    assert ob.make_key("p", "ab", "c") != ob.make_key("p", "a", "bc")
    OutboxEntry.model_validate(entry(a))
    with pytest.raises(ValueError):
        ob.make_key("bad key", "x")


def test_enqueue_is_idempotent_and_does_not_mutate() -> None:
    box: list[ob.Entry] = []
    once = ob.enqueue(box, entry("k1"))
    assert box == [] and [e["id"] for e in once] == ["k1"]
    twice = ob.enqueue(once, entry("k1", T0 + 60 * S))
    assert twice == once
    delivered = ob.mark_delivered(once, "k1", T0 + S)
    assert ob.enqueue(delivered, entry("k1")) == delivered  # not even re-sent once delivered
    failed = ob.mark_failed(once, "k1", T0, "550 no such user", permanent=True)
    assert ob.enqueue(failed, entry("k1")) == failed
    assert [e["id"] for e in ob.enqueue_all(once, [entry("k2"), entry("k1"), entry("k2")])] == ["k1", "k2"]


def test_due_orders_by_next_attempt_then_creation_then_id() -> None:
    box = ob.enqueue_all([], [entry("c", T0 + 2 * S, "c@c.kz"), entry("b", T0, "b@b.kz"), entry("a", T0, "a@a.kz"),
                              entry("late", T0 + 100 * S, "z@z.kz")])
    assert [e["id"] for e in ob.due(box, T0 + 10 * S)] == ["a", "b", "c"]
    assert [e["id"] for e in ob.due(box, T0 - S)] == []
    box = ob.mark_delivered(box, "a", T0 + S)
    box = ob.mark_failed(box, "b", T0 + S, "421 try later")
    assert [e["id"] for e in ob.due(box, T0 + 10 * S)] == ["c"]  # b waits for its backoff
    assert ob.next_attempt_at(box) == T0 + 2 * S
    assert ob.next_attempt_at(ob.mark_delivered(ob.mark_delivered(box, "c", T0), "late", T0)) is not None  # b
    assert ob.next_attempt_at([]) is None


def test_one_receiver_gets_its_entries_in_the_order_they_were_recorded() -> None:
    """After an outage the older entry goes first, whatever the backoffs say (issue 7: in order per recipient)."""
    box = ob.enqueue_all([], [entry("first", T0), entry("other", T0 + S, "x@y.kz"), entry("second", T0 + 2 * S)])
    assert [e["id"] for e in ob.due(box, T0 + 3 * S)] == ["first", "other"]  # second waits behind first
    box = ob.mark_failed(box, "first", T0 + 3 * S, "421 try later")  # first now waits for its backoff
    assert [e["id"] for e in ob.due(box, T0 + 3 * S)] == ["other"]
    retry = ob.parse_time(ob.find(box, "first")["nextAttemptAt"])  # type: ignore[index]
    assert retry is not None and ob.next_attempt_at(ob.mark_delivered(box, "other", T0)) == retry
    assert [e["id"] for e in ob.due(box, retry)] == ["other", "first"]  # oldest due first
    box = ob.mark_delivered(box, "first", retry)
    assert [e["id"] for e in ob.due(box, retry)] == ["other", "second"]  # due at once, in record order
    box = ob.mark_failed(box, "second", retry, "550 no such user", permanent=True)
    assert ob.due(ob.enqueue(box, entry("third", retry)), retry)[-1]["id"] == "third"  # a given-up entry blocks nothing


def test_owners_whose_addresses_mask_alike_are_separate_receivers() -> None:
    """Two owners at one domain mask alike (o***@example.kz); named by their objects, neither waits for the other."""
    def owner(key: str, name: str, address: str) -> ob.Entry:
        return ob.new_entry(id=key, channel="email", template="incident-opened", now=T0, recipient=address,
                            params={"recipientRole": "owner", "recipientNamespace": "housing", "recipientName": name})

    box = ob.enqueue_all([], [owner("a1", "heat", "owner1@example.kz"), owner("b1", "water", "owner2@example.kz"),
                              owner("a2", "heat", "owner1@example.kz")])
    assert box[0]["recipient"] == box[1]["recipient"]  # masked alike
    assert [e["id"] for e in ob.due(box, T0)] == ["a1", "b1"]  # a2 waits behind a1: the same owner


def test_mark_delivered() -> None:
    box = ob.mark_delivered([entry("k1")], "k1", T0 + 5 * S)
    assert box[0]["state"] == "Delivered" and box[0]["deliveredAt"] == "2026-07-21T05:00:05Z"
    assert box[0]["attempts"] == 1 and "nextAttemptAt" not in box[0]
    assert ob.mark_delivered(box, "k1", T0 + 9 * S) == box  # already delivered: unchanged
    assert ob.mark_delivered(box, "gone", T0) == box
    OutboxEntry.model_validate(box[0])


def test_backoff_grows_exponentially_within_jitter_bounds_and_is_capped() -> None:
    backoff = ob.Backoff(initial=30 * S, factor=2, maximum=600 * S, max_attempts=100, jitter=0.2)
    assert [backoff.base(n).total_seconds() for n in range(1, 8)] == [30, 60, 120, 240, 480, 600, 600]
    assert backoff.bounds(1) == (24 * S, 36 * S)
    assert backoff.bounds(7) == (480 * S, 600 * S)  # jitter never exceeds the cap
    assert backoff.delay(1, 0.0) == 24 * S and backoff.delay(1, 1.0) == 36 * S and backoff.delay(1, 0.5) == 30 * S
    assert backoff.base(10_000) == 600 * S  # no overflow


def test_mark_failed_schedules_retries_then_gives_up() -> None:
    backoff = ob.Backoff(initial=30 * S, factor=2, maximum=300 * S, max_attempts=5, jitter=0.2)
    box, now, waits = [entry("k1")], T0, []
    for attempt in range(1, 5):
        box = ob.mark_failed(box, "k1", now, "421 4.7.0 try again later, board@dostyk12.example.kz", backoff)
        e = box[0]
        assert e["state"] == "Pending" and e["attempts"] == attempt
        assert "board@" not in e["lastError"]  # masked
        next_at = ob.parse_time(e["nextAttemptAt"])
        assert next_at is not None
        low, high = backoff.bounds(attempt)
        assert now + low - S <= next_at <= now + high  # stored at one-second precision
        waits.append(next_at - now)
        assert ob.due(box, next_at - S) == [] and [d["id"] for d in ob.due(box, next_at)] == ["k1"]
        now = next_at
    assert waits[0] < waits[1] < waits[2]
    box = ob.mark_failed(box, "k1", now, "421 still down", backoff)
    assert box[0]["state"] == "Failed" and box[0]["attempts"] == 5 and "nextAttemptAt" not in box[0]
    assert ob.due(box, now + 10_000 * S) == []
    assert ob.mark_failed(box, "k1", now, "again", backoff) == box  # finished: unchanged
    OutboxEntry.model_validate(box[0])


def test_a_permanent_failure_fails_at_once() -> None:
    box = ob.mark_failed([entry("k1")], "k1", T0, "550 5.1.1 mailbox unavailable", permanent=True)
    assert box[0]["state"] == "Failed" and box[0]["attempts"] == 1 and box[0]["lastError"].startswith("550")


def test_jitter_is_reproducible_and_spreads_entries() -> None:
    backoff = ob.Backoff(jitter=0.5)
    first = [ob.mark_failed([entry(f"k{i}")], f"k{i}", T0, "421", backoff)[0]["nextAttemptAt"] for i in range(20)]
    again = [ob.mark_failed([entry(f"k{i}")], f"k{i}", T0, "421", backoff)[0]["nextAttemptAt"] for i in range(20)]
    assert first == again and len(set(first)) > 5


def test_record_applies_a_delivery_result() -> None:
    box = [entry("k1"), entry("k2"), entry("k3")]
    box = ob.record(box, "k1", ob.DeliveryResult(True), T0)
    box = ob.record(box, "k2", ob.DeliveryResult(False, permanent=True, error="550"), T0)
    box = ob.record(box, "k3", ob.DeliveryResult(False, error="connection refused"), T0)
    assert [e["state"] for e in box] == ["Delivered", "Failed", "Pending"]
    assert ob.DeliveryResult(False).temporary and not ob.DeliveryResult(True).temporary


def test_compaction_keeps_pending_and_recent_keys_and_drops_old_ones() -> None:
    day = datetime.timedelta(days=1)
    box = [entry(f"old{i}", T0 - 100 * day) for i in range(5)] + [entry("recent", T0 - day), entry("pending", T0)]
    for i in range(5):
        box = ob.mark_delivered(box, f"old{i}", T0 - (100 - i) * day)
    box = ob.mark_delivered(box, "recent", T0 - day)
    compacted = ob.compact(box, T0, keep=2, retention=45 * day)
    # the 2 most recent finished are kept as history, anything younger than retention too; pending always
    assert [e["id"] for e in compacted] == ["old4", "recent", "pending"]
    assert all("params" not in e for e in compacted if e["state"] == "Delivered")
    assert compacted[-1] == box[-1]
    # the kept keys still make re-enqueueing a no-op
    assert ob.enqueue(compacted, entry("recent")) == compacted
    for e in compacted:
        OutboxEntry.model_validate(e)


def test_compaction_keeps_keys_within_retention_even_beyond_keep() -> None:
    day = datetime.timedelta(days=1)
    box = [entry(f"k{i}", T0 - i * day) for i in range(10)]
    for i in range(10):
        box = ob.mark_delivered(box, f"k{i}", T0 - i * day)
    assert len(ob.compact(box, T0, keep=1, retention=30 * day)) == 10
    assert [e["id"] for e in ob.compact(box, T0 + 40 * day, keep=1, retention=30 * day)] == ["k0"]


def test_compaction_has_a_hard_limit() -> None:
    box = [entry(f"k{i}", T0 + i * S) for i in range(10)] + [entry("p", T0)]
    for i in range(10):
        box = ob.mark_delivered(box, f"k{i}", T0 + i * S)
    compacted = ob.compact(box, T0 + 20 * S, keep=100, limit=4)
    assert [e["id"] for e in compacted] == ["k7", "k8", "k9", "p"]


def test_failed_entries_keep_their_error_through_compaction() -> None:
    box = ob.mark_failed([entry("k")], "k", T0, "550 refused", permanent=True)
    assert ob.compact(box, T0)[0]["lastError"] == "550 refused"


def test_merge_keeps_the_most_advanced_version_of_each_entry() -> None:
    mine = ob.enqueue_all([], [entry("a"), entry("b")])
    theirs = ob.mark_delivered(mine, "a", T0)
    theirs = ob.enqueue(theirs, entry("c"))
    mine = ob.mark_failed(mine, "b", T0, "421")
    merged = ob.merge(mine, theirs)
    assert [(e["id"], e["state"], e["attempts"]) for e in merged] == [
        ("a", "Delivered", 1), ("b", "Pending", 1), ("c", "Pending", 0)]
    assert ob.merge(theirs, mine) == [merged[0], merged[1], merged[2]]


def test_parse_time() -> None:
    assert ob.parse_time("2026-07-21T05:00:00Z") == T0
    assert ob.parse_time(None) is None and ob.parse_time("") is None
    with pytest.raises(ValueError):
        ob.parse_time("2026-07-21T05:00:00")


@given(st.lists(st.sampled_from(["a", "b", "c", "d"]), max_size=20))
def test_enqueue_never_duplicates(keys: list[str]) -> None:
    box: list[ob.Entry] = []
    for key in keys:
        box = ob.enqueue(box, entry(key))
    assert [e["id"] for e in box] == list(dict.fromkeys(keys))
