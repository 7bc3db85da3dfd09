"""``kubectl tksh approve|reject|status``: the patch, the queue, the arguments."""

from __future__ import annotations

import datetime

import pytest

from tksh.cli import build_parser
from tksh.kubectl import format_table, queue_rows, review_patch

NOW = datetime.datetime(2026, 3, 20, 9, 30, tzinfo=datetime.timezone(datetime.timedelta(hours=5)))


def test_approve_patch_names_the_decision_reviewer_and_time_in_utc() -> None:
    patch = review_patch("Approved", "aigerim", None, NOW)
    assert patch == {"spec": {"review": {"decision": "Approved", "reviewer": "aigerim", "reason": None,
                                         "decidedAt": "2026-03-20T04:30:00Z"}}}


@pytest.mark.parametrize("reason", [None, "", "   "])
def test_a_rejection_without_a_reason_is_refused(reason: str | None) -> None:
    with pytest.raises(ValueError, match="--reason"):
        review_patch("Rejected", "aigerim", reason, NOW)


def test_reject_requires_reason_on_the_command_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(["reject", "osi"])
    assert exit_.value.code == 2
    assert "--reason" in capsys.readouterr().err


def test_status_namespace_and_all_namespaces_exclude_each_other() -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["status", "-n", "housing", "-A"])
    assert build_parser().parse_args(["status", "-A"]).all_namespaces


def obj(name: str, phase: str, deadline: str | None = None, overdue: bool = False, missing: int = 0) -> dict:
    status: dict = {"phase": phase, "missing": [f"spec.x{i}" for i in range(missing)],
                    "conditions": [{"type": "ReviewOverdue", "status": "True" if overdue else "False"}]}
    if deadline:
        status["reviewDeadline"] = deadline
    return {"metadata": {"name": name, "namespace": "housing"},
            "spec": {"owner": {"email": "board@dostyk12.example.kz", "bin": "140540001231"}}, "status": status}


def test_queue_is_sorted_by_deadline_without_personal_data() -> None:
    rows = queue_rows([
        obj("late", "UnderReview", "2026-03-27T18:59:59Z"),
        obj("refused", "Refused", missing=2),
        obj("early", "UnderReview", "2026-03-20T18:59:59Z", overdue=True),
    ])
    assert [r[0] for r in rows] == ["early", "late", "refused"]
    assert rows[0][4] == "yes" and rows[1][4] == "no"
    assert rows[2][3] == "-" and rows[2][5] == "2"
    table = format_table(rows)
    assert table.splitlines()[0].split() == ["NAME", "NAMESPACE", "PHASE", "DEADLINE", "OVERDUE", "MISSING"]
    assert "dostyk12" not in table and "140540001231" not in table


def test_decided_applications_come_after_those_waiting_whatever_their_old_deadline() -> None:
    rows = queue_rows([
        obj("waiting-late", "UnderReview", "2026-04-10T18:59:59Z"),
        obj("integrated-long-ago", "Integrated", "2026-01-05T18:59:59Z"),
        obj("approved", "Approved", "2026-02-01T18:59:59Z"),
        obj("waiting-early", "UnderReview", "2026-04-01T18:59:59Z"),
        obj("submitted", "Submitted"),
    ])
    assert [r[0] for r in rows] == ["waiting-early", "waiting-late", "submitted", "approved", "integrated-long-ago"]
