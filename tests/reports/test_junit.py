"""JUnit XML reports of real stored runs, read back with junitparser as CI systems read them."""

from __future__ import annotations

import pytest
from junitparser import Failure, JUnitXml, TestCase, TestSuite
from report_runs import Stored, reports, stored

from runner.reports import junit


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Stored:
    return stored(tmp_path_factory)


def _suites(xml: str) -> list[TestSuite]:
    return list(JUnitXml.fromstring(xml))


def _cases(suite: TestSuite) -> dict[str, TestCase]:
    return {case.name: case for case in suite}


def _failure(case: TestCase) -> Failure:
    (found,) = [r for r in case.result if isinstance(r, Failure)]
    return found


def _properties(suite: TestSuite) -> dict[str, str]:
    return {p.name: p.value for p in suite.properties()}


def test_a_passing_run_is_a_suite_of_passing_tests_with_its_figures(runs: Stored) -> None:
    (report,) = reports(runs, runs.greeting)
    (suite,) = _suites(junit.render([report]))
    assert suite.name == "greeting"
    cases = _cases(suite)
    assert set(cases) == {"the greeting is written", "the greeting is shouted"}
    assert all(case.is_passed and case.classname == "greeting" for case in cases.values())
    assert (suite.tests, suite.failures, suite.errors) == (2, 0, 0)
    properties = _properties(suite)
    assert properties["run_id"] == runs.greeting
    assert properties["status"] == "succeeded"
    # The second run of the workflow: its one call answered by the memo, nothing paid.
    assert (properties["calls"], properties["tokens"]) == ("0", "0")
    assert (properties["memo_hits"], properties["memo_misses"]) == ("1", "0")
    assert properties["memo_hit_rate"] == "1.0000"
    assert int(properties["saved_tokens"]) == report.saved_tokens > 0
    assert float(properties["duration_s"]) == pytest.approx(report.duration_s, abs=1e-3)
    assert {"cost_usd", "saved_usd"} <= properties.keys()


def test_runs_of_one_workflow_share_a_suite_and_add_up(runs: Stored) -> None:
    (suite,) = _suites(junit.render(reports(runs, runs.first_greeting, runs.greeting)))
    assert suite.name == "greeting"
    # The first run's cases keep their names, which test-history tools key them by; only a
    # later run's case with a name already taken gets its run's id.
    tests = ("the greeting is written", "the greeting is shouted")
    assert [case.name for case in suite] == [
        *tests,
        *(f"{name} (run {runs.greeting})" for name in tests),
    ]
    properties = _properties(suite)
    assert properties["run_id"] == f"{runs.first_greeting} {runs.greeting}"
    assert (properties["memo_hits"], properties["memo_misses"]) == ("1", "1")
    assert properties["memo_hit_rate"] == "0.5000"
    assert int(properties["calls"]) == 1


def test_a_failed_node_is_a_failing_case_with_its_error(runs: Stored) -> None:
    (suite,) = _suites(junit.render(reports(runs, runs.broken)))
    assert suite.name == "broken-sum"
    cases = _cases(suite)
    # The reduce failed by itself; the sequence holding it failed only because of it.
    assert set(cases) == {"the total is ten", "total"}
    total = _failure(cases["total"])
    assert cases["total"].classname == "broken-sum"
    assert total.type == "failed"
    assert "`outputs.draft` is text, which has no `missing`" in total.message
    assert "`outputs.draft` is text, which has no `missing`" in total.text
    test = _failure(cases["the total is ten"])
    assert test.message == "not evaluated: the run ended failed"
    assert _properties(suite)["status"] == "failed"


def test_a_failing_workflow_test_fails_with_its_message(runs: Stored) -> None:
    (suite,) = _suites(junit.render(reports(runs, runs.contests)))
    cases = _cases(suite)
    assert set(cases) == {"the big candidate wins", "the front holds all three"}
    assert cases["the big candidate wins"].is_passed
    failure = _failure(cases["the front holds all three"])
    assert failure.message == "expected 'outputs.front.frontier | length == 3' to hold, got 2 == 3"
    assert (suite.tests, suite.failures) == (2, 1)


def test_a_diverged_replay_fails_at_the_node_with_the_diff(runs: Stored) -> None:
    (suite,) = _suites(junit.render(reports(runs, runs.replay)))
    cases = _cases(suite)
    failure = _failure(cases["say"])
    assert failure.type == "replay_diverged"
    assert failure.message == (
        "leaf replay_diverged: the model call at say differs from the recorded one in: messages"
    )
    assert "-[user] Say which plan won: 1" in failure.text
    assert "+[user] Tell which plan won: 1" in failure.text
    # The tests were not evaluated, so they fail too; no case for the sequence around say.
    assert set(cases) == {"say", "the big candidate wins", "the front holds all three"}
    assert _properties(suite)["status"] == "replay_diverged"


def test_a_run_stopped_without_a_failed_node_fails_as_a_whole(runs: Stored) -> None:
    (report,) = reports(runs, runs.out_of_time)
    (suite,) = _suites(junit.render([report]))
    (case,) = suite
    assert case.name == "run"  # the same test in every run's report
    failure = _failure(case)
    assert failure.message == "budget_exceeded: budget.wall_s 0.2 s ran out"
    assert case.time == pytest.approx(report.duration_s, abs=1e-3)
    assert "memo_hit_rate" not in _properties(suite)  # the memo was asked nothing


def test_each_workflow_has_its_own_suite(runs: Stored) -> None:
    xml = junit.render(reports(runs, runs.greeting, runs.broken, runs.contests))
    suites = _suites(xml)
    assert [s.name for s in suites] == ["greeting", "broken-sum", "contests"]
    assert [s.failures for s in suites] == [0, 2, 1]
    assert JUnitXml.fromstring(xml).failures == 3
