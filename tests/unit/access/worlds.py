"""Random access worlds for the property tests: grants, functions, the open part and requests.

Instants cluster on the boundaries around ``now`` (one microsecond either side, exactly ``now``),
and the worlds include every awkward case: pending and terminated grants, termination requests,
unknown functions, scopes, delegation chains with missing principals and cycles.
"""

from __future__ import annotations

import dataclasses
import datetime
import random

from tksh.access import ANONYMOUS, FunctionRights, GrantFacts, TerminationFacts
from tksh.access.facts import GrantPhase
from tksh.resources.accessgrant import TerminationReason

US = datetime.timedelta(microseconds=1)
DAY = datetime.timedelta(days=1)
OWNERS = ["140540001231", "210987654321", "000000000001", "999999999999", "123456789012", "555555555555"]
CHANNELS = ["ns1/portal", "ns1/app", "ns2/crm"]
ACTIONS = ("read", "write", "sign")
OPEN_CHOICES = [(9, "read"), (10, "read"), (1, "read")]


@dataclasses.dataclass
class Request:
    subject: str
    action: str
    category: int
    owner: str
    channel: str | None


@dataclasses.dataclass
class World:
    grants: list[GrantFacts]
    functions: dict[str, FunctionRights]
    open_part: frozenset[tuple[int, str]]
    requests: list[Request]


def _instant(r: random.Random, now: datetime.datetime, offsets: list[datetime.timedelta]) -> datetime.datetime:
    return now + r.choice(offsets)


def random_functions(r: random.Random, count: int) -> dict[str, FunctionRights]:
    functions = {}
    for i in range(count):
        density = r.choice((0.05, 0.15, 0.3, 0.6))
        functions[f"fn-{i}"] = frozenset(
            (c, a) for c in range(1, 16) for a in ACTIONS if r.random() < density
        )
    return functions


def random_grants(
    r: random.Random, count: int, functions: list[str], now: datetime.datetime, subjects: list[str]
) -> list[GrantFacts]:
    names = [*functions, "ghost-one", "ghost-two"]
    boundary = [-DAY, -US, datetime.timedelta(0), US, DAY]
    grants: list[GrantFacts] = []
    for i in range(count):
        grant_id = f"{r.choice(('ns1', 'ns2'))}/g{i}"
        owner = r.choice(OWNERS)
        chosen = frozenset(r.sample(names, r.randint(1, 3)))
        delegated_from = None
        roll = r.random()
        if grants and roll < 0.3:
            principal = r.choice(grants)
            delegated_from = principal.id
            if r.random() < 0.85:
                owner = principal.owner_bin
            if r.random() < 0.6:  # often a delegate receives (part of) what its principal holds
                chosen = frozenset(r.sample(sorted(principal.functions), r.randint(1, len(principal.functions))))
        elif roll < 0.33:
            delegated_from = r.choice(("ns1/ghost", f"ns1/g{r.randrange(count)}", f"ns2/g{r.randrange(count)}"))
        phase: GrantPhase | None = r.choices(("Active", "Pending", "Terminated", None), (80, 8, 8, 4))[0]
        record = None
        if (phase == "Terminated" and r.random() < 0.8) or r.random() < 0.03:
            record = TerminationFacts(
                r.choice(list(TerminationReason)), at=now - DAY, by="admin", cascade_from=r.choice((None, "ns1/g0"))
            )
        requested = None
        if r.random() < 0.08:
            at = r.choice((None, now + r.choice(boundary)))
            requested = TerminationFacts(r.choice(list(TerminationReason)), at=at)
        grants.append(
            GrantFacts(
                id=grant_id,
                subject_id=r.choice(subjects),
                owner_bin=owner,
                functions=chosen,
                valid_from=None if r.random() < 0.3 else _instant(r, now, [-DAY, -DAY, -US, datetime.timedelta(0), US]),
                valid_until=now + (365 * DAY if r.random() < 0.65 else r.choice(boundary)),
                grounds_until=None if r.random() < 0.8 else _instant(r, now, [*boundary, 30 * DAY]),
                categories=None if r.random() < 0.7 else frozenset(r.sample(range(1, 16), r.randint(1, 6))),
                owner_bins=None if r.random() < 0.8 else frozenset(r.sample([owner, *OWNERS], r.randint(1, 3))),
                digital_objects=None if r.random() < 0.8 else frozenset(r.sample(CHANNELS, r.randint(1, 2))),
                phase=phase,
                terminated=record,
                requested=requested,
                delegated_from=delegated_from,
            )
        )
    # a few grants are ids reused across namespaces: make them unique (the last one wins)
    return list({g.id: g for g in grants}.values())


def random_requests(
    r: random.Random, count: int, grants: list[GrantFacts], subjects: list[str], functions: dict[str, FunctionRights]
) -> list[Request]:
    """Mostly aimed at a grant (its subject and owner, often a right one of its functions carries)."""
    requests = []
    delegated = [g for g in grants if g.delegated_from is not None]
    for _ in range(count):
        category, action = r.randint(1, 15), r.choice(ACTIONS)
        if grants and r.random() < 0.8:
            target = r.choice(delegated if delegated and r.random() < 0.4 else grants)
            subject, owner = target.subject_id, target.owner_bin
            carried = sorted(
                right
                for name in target.functions
                for right in functions.get(name, ())
                if target.categories is None or right[0] in target.categories
            )
            if carried and r.random() < 0.7:
                category, action = r.choice(carried)
        else:
            subject, owner = r.choice([*subjects, ANONYMOUS, "person:nobody"]), r.choice(OWNERS)
        requests.append(Request(subject, action, category, owner, r.choice([None, None, *CHANNELS])))
    return requests


def random_world(
    r: random.Random, *, grants: int, functions: int, requests: int, now: datetime.datetime
) -> World:
    subjects = [f"person:s{i}" for i in range(max(2, grants // 3))]
    catalogue = random_functions(r, functions)
    facts = random_grants(r, grants, sorted(catalogue), now, subjects)
    open_part = frozenset(right for right in OPEN_CHOICES if r.random() < 0.5)
    return World(facts, catalogue, open_part, random_requests(r, requests, facts, subjects, catalogue))
