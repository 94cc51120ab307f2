"""Statuses: the first terminal signal wins, and the run takes the most severe."""

from __future__ import annotations

import pytest

from runner.status import Outcome, Status, run_status, tolerable


def test_first_terminal_signal_wins_and_later_ones_are_kept() -> None:
    outcome = Outcome()
    outcome.start()
    assert outcome.status is Status.RUNNING
    assert outcome.settle(Status.BUDGET_EXCEEDED, "tokens ran out")
    assert not outcome.settle(Status.CANCELLED, "SIGINT")
    assert not outcome.settle(Status.FAILED, "reply invalid")
    assert outcome.status is Status.BUDGET_EXCEEDED
    assert outcome.reason == "tokens ran out"
    assert outcome.later == [(Status.CANCELLED, "SIGINT"), (Status.FAILED, "reply invalid")]


def test_settle_needs_a_terminal_status() -> None:
    with pytest.raises(ValueError, match="not a terminal"):
        Outcome().settle(Status.RUNNING)


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        ([], Status.SUCCEEDED),
        ([Status.SUCCEEDED, Status.SKIPPED], Status.SUCCEEDED),
        ([Status.SUCCEEDED, Status.FAILED], Status.FAILED),
        ([Status.FAILED, Status.REPLAY_DIVERGED], Status.REPLAY_DIVERGED),
        ([Status.REPLAY_DIVERGED, Status.STUCK], Status.STUCK),
        ([Status.STUCK, Status.BUDGET_EXCEEDED, Status.FAILED], Status.BUDGET_EXCEEDED),
        ([Status.BUDGET_EXCEEDED, Status.CANCELLED], Status.CANCELLED),
        ([Status.SUCCEEDED, Status.PROVIDER_FAILED, Status.SKIPPED], Status.PROVIDER_FAILED),
        # A node that failed by itself fails the run whatever the provider did.
        ([Status.PROVIDER_FAILED, Status.FAILED], Status.FAILED),
    ],
)
def test_run_status_precedence(statuses: list[Status], expected: Status) -> None:
    assert run_status(statuses) is expected
    assert run_status(reversed(statuses)) is expected


def test_run_status_rejects_unfinished_nodes() -> None:
    with pytest.raises(ValueError, match="running"):
        run_status([Status.SUCCEEDED, Status.RUNNING])


def test_only_failures_of_a_node_itself_can_be_tolerated() -> None:
    assert tolerable(Status.FAILED)
    assert tolerable(Status.STUCK)
    for status in (
        Status.SUCCEEDED,
        Status.SKIPPED,
        Status.RUNNING,
        Status.CANCELLED,
        Status.BUDGET_EXCEEDED,
        Status.REPLAY_DIVERGED,
    ):
        assert not tolerable(status)
