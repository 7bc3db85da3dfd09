"""Access decisions: the fast index against stock pycasbin, in process, on the same policy in the same run.

    .venv/bin/python bench/bench_decisions.py [--sizes 1000,10000,100000] [--requests 20000]
                                              [--casbin-budget 30] [--casbin-max-build 240] [--seed 1]

For each size N (active grants): builds a world of N Active grants in effect (about two per subject,
ten per owner BIN, 10% delegated from an earlier grant of the same owner, some scoped), 40 functions
(the example directory and 36 random ones), and a request mix aimed mostly at grants' own rights
(roughly half allowed). Then measures:

* the index: build time (N upserts), time per update (replacing a grant; changing a function, which
  refreshes the grants naming it), decisions per second (a tight loop) and p50/p99 latency (each
  decision timed on its own);
* ``casbin.Enforcer`` and ``casbin.FastEnforcer`` (``cache_key_order=[0, 1]``) on ``policies/model.conf``,
  fed the same grants through the API (:mod:`tksh.access.reference`): build time, decisions per second
  and p50/p99 over as many requests as fit in ``--casbin-budget`` seconds, and whether every sampled
  decision agrees with the index.

A stock enforcer whose build would take longer than ``--casbin-max-build`` seconds (estimated from the
previous size, assuming at least linear growth) is skipped, and the output says so.
No thresholds: this reports figures; docs/benchmarks.md records them.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import platform
import random
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from tksh.access import DecisionIndex, FunctionRights, GrantFacts, load_function_rights, load_open_part
from tksh.access.reference import HAS_FAST_ENFORCER, Reference

NOW = datetime.datetime(2026, 9, 1, 12, 0, tzinfo=datetime.UTC)
DAY = datetime.timedelta(days=1)
ACTIONS = ("read", "write", "sign")

Request = tuple[str, str, int, str, str | None]


@dataclass
class World:
    grants: list[GrantFacts]
    functions: dict[str, FunctionRights]
    requests: list[Request]


def make_world(size: int, requests: int, seed: int) -> World:
    r = random.Random(seed)
    functions = dict(load_function_rights())
    for i in range(40 - len(functions)):
        density = r.choice((0.1, 0.2, 0.3))
        functions[f"function-{i}"] = frozenset((c, a) for c in range(1, 16) for a in ACTIONS if r.random() < density)
    names = sorted(functions)
    owners = [f"{r.randrange(10**12):012d}" for _ in range(max(1, size // 10))]
    subjects = [f"person:{i:x}" for i in range(max(1, size // 2))]
    channels = [f"ns{i % 20}/object-{i}" for i in range(200)]
    grants: list[GrantFacts] = []
    by_owner: dict[str, list[GrantFacts]] = {}
    for i in range(size):
        owner = r.choice(owners)
        chosen = frozenset(r.sample(names, r.randint(1, 3)))
        delegated_from = None
        if by_owner.get(owner) and r.random() < 0.1:
            principal = r.choice(by_owner[owner])
            delegated_from = principal.id
            chosen = frozenset(r.sample(sorted(principal.functions), r.randint(1, len(principal.functions))))
        facts = GrantFacts(
            id=f"ns{i % 20}/grant-{i}",
            subject_id=r.choice(subjects),
            owner_bin=owner,
            functions=chosen,
            valid_from=NOW - 30 * DAY,
            valid_until=NOW + r.randint(30, 700) * DAY,
            grounds_until=None if r.random() < 0.8 else NOW + 400 * DAY,
            categories=None if r.random() < 0.8 else frozenset(r.sample(range(1, 16), r.randint(2, 8))),
            owner_bins=None if r.random() < 0.95 else frozenset({owner}),
            digital_objects=None if r.random() < 0.95 else frozenset(r.sample(channels, 2)),
            phase="Active",
            delegated_from=delegated_from,
        )
        grants.append(facts)
        by_owner.setdefault(owner, []).append(facts)
    mix: list[Request] = []
    for _ in range(requests):
        if r.random() < 0.7:
            target = r.choice(grants)
            rights = sorted(right for name in target.functions for right in functions[name])
            category, action = r.choice(rights) if rights else (r.randint(1, 15), r.choice(ACTIONS))
            channel = r.choice(sorted(target.digital_objects)) if target.digital_objects else None
            mix.append((target.subject_id, action, category, target.owner_bin, channel))
        else:
            mix.append((r.choice(subjects), r.choice(ACTIONS), r.randint(1, 15), r.choice(owners), None))
    return World(grants, functions, mix)


def percentile(sorted_ns: Sequence[int], q: float) -> float:
    """The q-quantile (nearest rank) of sorted nanosecond samples, in microseconds."""
    index = min(len(sorted_ns) - 1, max(0, round(q * len(sorted_ns)) - 1))
    return sorted_ns[index] / 1000


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


@dataclass
class Figures:
    name: str
    build_s: float | None = None
    per_second: float | None = None
    p50_us: float | None = None
    p99_us: float | None = None
    sampled: int = 0
    agree: bool | None = None
    note: str = ""


def bench_index(world: World, open_part: FunctionRights) -> tuple[Figures, DecisionIndex, dict[str, str]]:
    gc.collect()
    holder: list[DecisionIndex] = []
    build = timed(lambda: holder.append(DecisionIndex.build(world.grants, world.functions, open_part=open_part)))
    index = holder[0]
    decide = index.decide
    requests = world.requests
    start = time.perf_counter()
    for subject, action, category, owner, channel in requests:
        decide(subject, action, category, owner, digital_object=channel, now=NOW)
    per_second = len(requests) / (time.perf_counter() - start)
    samples = []
    clock = time.perf_counter_ns
    for subject, action, category, owner, channel in requests:
        t0 = clock()
        decide(subject, action, category, owner, digital_object=channel, now=NOW)
        samples.append(clock() - t0)
    samples.sort()
    figures = Figures("index", build, per_second, percentile(samples, 0.5), percentile(samples, 0.99), len(requests))
    # updates: replace grants with a changed copy (new validity), then change a function
    r = random.Random(7)
    picked = r.sample(world.grants, min(2000, len(world.grants)))
    changed = [replace(g, valid_until=g.valid_until + DAY) for g in picked]
    update_ns = []
    for facts in changed:
        t0 = clock()
        index.upsert_grant(facts)
        update_ns.append(clock() - t0)
    update_ns.sort()
    function = "function-0"
    naming = sum(1 for g in world.grants if function in g.functions)
    rights = world.functions[function] | {(15, "read")}
    function_s = timed(lambda: index.upsert_function(function, frozenset(rights)))
    updates = {
        "grant update p50 (µs)": f"{percentile(update_ns, 0.5):.1f}",
        "grant update p99 (µs)": f"{percentile(update_ns, 0.99):.1f}",
        "function update (ms)": f"{function_s * 1000:.2f} (refreshes the {naming} grants naming it)",
    }
    index.upsert_function(function, world.functions[function])  # back to the world the enforcers see
    return figures, index, updates


def bench_casbin(
    world: World, open_part: FunctionRights, index: DecisionIndex, *, fast: bool, budget: float
) -> Figures:
    name = "casbin.FastEnforcer" if fast else "casbin.Enforcer"
    gc.collect()
    holder: list[Reference] = []
    build = timed(lambda: holder.append(Reference(world.grants, world.functions, open_part, NOW, fast=fast)))
    reference = holder[0]
    samples, agree = [], True
    clock = time.perf_counter_ns
    deadline = time.perf_counter() + budget
    for subject, action, category, owner, channel in world.requests:
        t0 = clock()
        allowed = reference.allows(subject, action, category, owner, digital_object=channel)
        samples.append(clock() - t0)
        agree &= allowed is index.decide(subject, action, category, owner, digital_object=channel, now=NOW).allowed
        if time.perf_counter() > deadline:
            break
    per_second = len(samples) / (sum(samples) / 1e9)
    samples.sort()
    return Figures(name, build, per_second, percentile(samples, 0.5), percentile(samples, 0.99), len(samples), agree)


def row(f: Figures, base: Figures | None) -> str:
    def num(value: float | None, fmt: str) -> str:
        return "—" if value is None else format(value, fmt)

    ratio = p99_ratio = ""
    if base is not None and f.per_second and base.per_second and f.p99_us and base.p99_us:
        ratio, p99_ratio = f"{base.per_second / f.per_second:,.0f}x", f"{f.p99_us / base.p99_us:,.0f}x"
    agree = {None: "", True: "yes", False: "NO"}[f.agree]
    return (
        f"| {f.name} | {num(f.build_s, ',.2f')} | {num(f.per_second, ',.0f')} | {num(f.p50_us, ',.1f')} | "
        f"{num(f.p99_us, ',.1f')} | {f.sampled:,} | {ratio} | {p99_ratio} | {agree} | {f.note} |"
    )


HEADER = (
    "| decider | build (s) | decisions/s | p50 (µs) | p99 (µs) | sampled | index faster (decisions/s) "
    "| index p99 lower by | agrees with index | note |\n|---|---:|---:|---:|---:|---:|---:|---:|---|---|"
)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--sizes", default="1000,10000,100000", help="numbers of active grants, comma-separated")
    parser.add_argument("--requests", type=int, default=20000, help="requests in the mix")
    parser.add_argument("--casbin-budget", type=float, default=30.0, help="seconds of decisions per stock enforcer")
    parser.add_argument("--casbin-max-build", type=float, default=240.0, help="skip a stock build estimated longer")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    sizes = [int(size) for size in args.sizes.split(",")]
    open_part = load_open_part()
    print(f"# Access decisions — python {platform.python_version()}, pycasbin {casbin_version()}, "
          f"{platform.machine()}, {platform.system()}; FastEnforcer available: {HAS_FAST_ENFORCER}")
    previous_build: dict[bool, tuple[int, float]] = {}
    for size in sizes:
        world = make_world(size, args.requests, args.seed)
        print(f"\n## {size:,} active grants, {len(world.functions)} functions, {len(world.requests):,} requests")
        figures, index, updates = bench_index(world, open_part)
        allowed = sum(index.decide(*q[:4], digital_object=q[4], now=NOW).allowed for q in world.requests)
        print(f"allowed: {allowed / len(world.requests):.0%} of the mix")
        print(HEADER)
        print(row(figures, None))
        for fast in (False, True) if HAS_FAST_ENFORCER else (False,):
            name = "casbin.FastEnforcer" if fast else "casbin.Enforcer"
            last = previous_build.get(fast)
            if last is not None and last[1] * size / last[0] > args.casbin_max_build:
                note = f"skipped: build estimated ≥ {last[1] * size / last[0]:,.0f} s from {last[0]:,} grants"
                print(row(Figures(name, note=note), None))
                continue
            stock = bench_casbin(world, open_part, index, fast=fast, budget=args.casbin_budget)
            previous_build[fast] = (size, stock.build_s or 0.0)
            print(row(stock, figures))
        for key, value in updates.items():
            print(f"- index {key}: {value}")
        sys.stdout.flush()
    return 0


def casbin_version() -> str:
    try:
        from importlib.metadata import version

        return version("casbin")
    except Exception:  # pragma: no cover - metadata missing
        return "unknown"


if __name__ == "__main__":
    raise SystemExit(main())
