"""The per-target state machine alone, with explicit timestamps: confirmation, thresholds, recovery, impairment."""

from __future__ import annotations

import datetime

from hypothesis import given
from hypothesis import strategies as st

from tksh.monitoring import Machine, Observation, OpenIncident, Policy, StateChange

T0 = datetime.datetime(2026, 7, 12, 9, 0, tzinfo=datetime.UTC)
POLICY = Policy(failure_threshold=3, recovery_threshold=2, interval=30, confirm_interval=2)


def at(seconds: float) -> datetime.datetime:
    return T0 + datetime.timedelta(seconds=seconds)


def ok(t: float) -> Observation:
    return Observation(True, at(t), at(t + 0.5))


def fail(t: float, failure: str = "connect", message: str = "connection refused") -> Observation:
    return Observation(False, at(t), at(t + 0.5), failure, message)  # type: ignore[arg-type]


def feed(machine: Machine, *observations: Observation) -> tuple[Machine, list[StateChange]]:
    emitted: list[StateChange] = []
    for observation in observations:
        machine, transitions = machine.observe(observation)
        emitted += transitions
    return machine, emitted


def up(policy: Policy = POLICY) -> Machine:
    machine, _ = Machine("obj", policy).observe(ok(0))
    return machine


def test_unknown_becomes_up_on_the_first_success() -> None:
    machine, transitions = Machine("obj", POLICY).observe(ok(0))
    assert (machine.state, machine.since) == ("Up", at(0.5))
    assert transitions == [StateChange("obj", "Unknown", "Up", at(0.5))]


def test_a_first_failure_is_confirmed_fast_and_only_the_threshold_opens_an_incident() -> None:
    machine = up()
    assert machine.next_delay == 30
    machine, transitions = feed(machine, fail(30, "timeout", "slow"))
    assert (machine.state, transitions, machine.next_delay) == ("Up", [], 2)  # confirming: re-probe in 2 s
    machine, transitions = feed(machine, fail(32, "timeout", "slow"))
    assert (machine.state, transitions, machine.next_delay) == ("Up", [], 2)
    assert machine.would_confirm(fail(34))
    machine, transitions = feed(machine, fail(34, "connect", "connection refused"))
    assert machine.state == "Down" and machine.next_delay == 30
    assert transitions == [
        StateChange(
            "obj",
            "Up",
            "Down",
            at(34.5),
            incident="opened",
            started_at=at(30),  # the start of the first failed probe of the run
            detected_at=at(34.5),  # the end of the confirming probe
            failure="connect",
            message="connection refused",
        )
    ]
    assert machine.incident == OpenIncident(at(30), at(34.5), "connect", "connection refused")


def test_a_success_within_the_run_resets_it() -> None:
    machine, transitions = feed(up(), fail(30), fail(32), ok(34), fail(64), fail(66), ok(68))
    assert (machine.state, transitions, machine.failures) == ("Up", [], 0)
    machine, transitions = feed(machine, fail(98), fail(100), fail(102))
    assert transitions[0].started_at == at(98)


def test_recovery_needs_consecutive_successes_and_dates_from_the_first_of_them() -> None:
    machine, _ = feed(up(), fail(30), fail(32), fail(34))
    machine, transitions = feed(machine, ok(64))
    assert (machine.state, transitions, machine.next_delay) == ("Down", [], 2)  # confirming the recovery
    machine, transitions = feed(machine, fail(66), ok(96))  # the failure resets the count
    assert (machine.state, transitions) == ("Down", [])
    machine, transitions = feed(machine, ok(98))
    assert machine.state == "Up" and machine.incident is None and machine.next_delay == 30
    (recovered,) = transitions
    assert (recovered.previous, recovered.state, recovered.incident) == ("Down", "Up", "recovered")
    assert (recovered.started_at, recovered.recovered_at, recovered.at) == (at(30), at(96), at(98.5))
    assert recovered.duration_seconds == 66.0
    assert recovered.failure == "connect"


def test_flapping_neither_opens_nor_closes_incidents() -> None:
    flapping = [fail(t) if n % 2 else ok(t) for n, t in enumerate(range(30, 600, 2))]
    machine, transitions = feed(up(), *flapping)
    assert (machine.state, transitions) == ("Up", [])
    down, _ = feed(up(), fail(0), fail(2), fail(4))
    machine, transitions = feed(down, *flapping)
    assert (machine.state, transitions) == ("Down", [])


def test_a_threshold_of_one_opens_at_the_first_failure() -> None:
    machine, transitions = feed(up(Policy(failure_threshold=1)), fail(30))
    assert machine.state == "Down" and transitions[0].incident == "opened"
    assert transitions[0].started_at == at(30)


def test_unknown_goes_down_only_after_a_full_run() -> None:
    machine, transitions = feed(Machine("obj", POLICY), fail(0), fail(2))
    assert (machine.state, transitions) == ("Unknown", [])
    machine, transitions = feed(machine, fail(4))
    assert (transitions[0].previous, transitions[0].state, transitions[0].incident) == ("Unknown", "Down", "opened")


def test_while_the_prober_is_impaired_failures_make_the_target_unknown_and_open_nothing() -> None:
    machine, _ = feed(up(), fail(30))
    machine = machine.impair()
    assert (machine.state, machine.failures, machine.next_delay) == ("Up", 0, 30)  # the run in progress is void
    assert not machine.would_confirm(fail(60))
    machine, transitions = feed(machine, ok(60))
    assert (machine.state, transitions) == ("Up", [])  # a target that answers is up, impaired or not
    machine, transitions = feed(machine, *(fail(t) for t in range(90, 400, 2)))
    assert transitions == [StateChange("obj", "Up", "Unknown", at(90.5))]
    assert (machine.state, machine.failures, machine.incident) == ("Unknown", 0, None)
    machine = machine.restore()
    assert machine.state == "Unknown" and not machine.impaired
    _, transitions = feed(machine, ok(400))
    assert [t.state for t in transitions] == ["Up"]
    _, transitions = feed(machine, fail(400), fail(402), fail(404))
    assert transitions[0].incident == "opened" and transitions[0].started_at == at(400)  # a fresh run


def test_an_open_incident_survives_an_impairment_and_is_neither_reopened_nor_duplicated() -> None:
    machine, _ = feed(up(), fail(30), fail(32), fail(34))
    machine, transitions = feed(machine.impair(), fail(50))
    assert [(t.previous, t.state, t.incident) for t in transitions] == [("Down", "Unknown", None)]
    assert machine.incident is not None
    machine = machine.restore()
    machine, transitions = feed(machine, fail(100))
    assert [(t.previous, t.state, t.incident) for t in transitions] == [("Unknown", "Down", None)]
    machine, transitions = feed(machine, ok(130), ok(132))
    assert [(t.previous, t.state, t.incident) for t in transitions] == [("Down", "Up", "recovered")]
    assert transitions[0].started_at == at(30)


def test_a_recovery_counts_while_the_prober_is_impaired() -> None:
    machine, _ = feed(up(), fail(30), fail(32), fail(34))
    machine, transitions = feed(machine.impair(), ok(60))
    assert (machine.state, transitions, machine.next_delay) == ("Down", [], 2)
    machine, transitions = feed(machine, ok(62))
    assert [(t.previous, t.state, t.incident, t.recovered_at) for t in transitions] == [
        ("Down", "Up", "recovered", at(60))
    ]


def test_an_incident_restored_after_a_restart_is_recovered_not_duplicated() -> None:
    incident = OpenIncident(at(-600), at(-595), "http_status", "expected status 200, got 503")
    machine, transitions = feed(Machine("obj", POLICY, incident=incident), ok(0))
    assert (machine.state, transitions) == ("Unknown", [])
    machine, transitions = feed(machine, ok(2))
    assert [(t.previous, t.state, t.incident, t.duration_seconds) for t in transitions] == [
        ("Unknown", "Up", "recovered", 600.0)
    ]
    _, transitions = feed(Machine("obj", POLICY, incident=incident), fail(0))
    assert [(t.state, t.incident) for t in transitions] == [("Down", None)]


def test_new_settings_keep_the_state() -> None:
    machine, _ = feed(up(), fail(30), fail(32))
    machine = machine.with_policy(Policy(failure_threshold=5, interval=60))
    assert (machine.state, machine.failures, machine.policy.interval) == ("Up", 2, 60)
    machine, transitions = feed(machine, fail(34))
    assert transitions == []


@given(
    outcomes=st.lists(st.booleans(), max_size=80),
    threshold=st.integers(1, 4),
    recovery=st.integers(1, 3),
    toggles=st.sets(st.integers(0, 79), max_size=4),
)
def test_invariants_over_any_sequence(outcomes: list[bool], threshold: int, recovery: int, toggles: set[int]) -> None:
    machine = Machine("obj", Policy(failure_threshold=threshold, recovery_threshold=recovery))
    run = 0  # failures in a row seen while not impaired
    opened = 0
    for n, passed in enumerate(outcomes):
        if n in toggles:
            machine = machine.restore() if machine.impaired else machine.impair()
            run = 0
        impaired = machine.impaired
        machine, transitions = machine.observe(ok(n) if passed else fail(n))
        run = 0 if passed or impaired else run + 1
        for transition in transitions:
            assert transition.previous != transition.state or transition.incident == "recovered"
            if transition.incident == "opened":
                assert run >= threshold and opened == 0 and not impaired
                opened += 1
            if transition.incident == "recovered":
                assert opened == 1 and transition.duration_seconds is not None and transition.duration_seconds >= 0
                opened -= 1
        assert (machine.incident is not None) == (opened == 1)
        assert machine.state != "Down" or machine.incident is not None
        if impaired and not passed:
            assert machine.state == "Unknown" and all(t.incident is None for t in transitions)
