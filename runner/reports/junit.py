"""Run reports as JUnit XML, which CI systems show as test results.

One test suite per workflow (the runs of one workflow share it), a test case per workflow test
and one per node that failed by itself (skipped, not failed, when the run went on without it:
``allow_fail``, ``min_successes``), and a case for the run itself when nothing else says
why it did not succeed (a budget ran out, it was cancelled) or when it has nothing else to
show. The run's usage, cost and memo figures are the suite's properties. A trace ``ci --replay``
could match to no workflow file is an erroring case of its workflow's suite.

A provider failure is not a failed test: each distinct one is a single case with an ``<error>``
(type ``provider_failed``) that counts the calls it stopped, and the tests it kept from being
checked are skipped, never failures.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import junit_xml  # type: ignore[import-untyped]  # ships no type information

from runner.plural import plural
from runner.providers import outage
from runner.reports import divergences
from runner.reports.model import FailedNode, RunReport, overlay_line, served_line, served_roles
from runner.status import Status
from runner.store.runs import RUNNING
from runner.trace_match import Unmatched

MESSAGE_CHARS = 300
"""The longest failure message attribute; the whole text is the failure's body."""


def render(reports: Sequence[RunReport], unmatched: Sequence[Unmatched] = ()) -> str:
    """The JUnit XML document of ``reports`` and of the traces ``unmatched``."""
    by_workflow: dict[str, list[RunReport]] = {}
    for report in reports:
        by_workflow.setdefault(report.workflow, []).append(report)
    suites = {name: _suite(name, runs) for name, runs in by_workflow.items()}
    for trace in unmatched:
        suite = suites.setdefault(
            trace.workflow, junit_xml.TestSuite(trace.workflow, [], file=trace.source)
        )
        # Named after the trace, so that a trace's history stays one test's.
        case = junit_xml.TestCase(f"trace {trace.trace}", classname=trace.workflow)
        case.add_error_info(
            message=_one_line(trace.message), output=trace.message, error_type="unmatched_trace"
        )
        suite.test_cases.append(case)
    return str(junit_xml.to_xml_report_string(list(suites.values()), encoding="utf-8"))


def _suite(workflow: str, reports: list[RunReport]) -> junit_xml.TestSuite:
    cases: list[junit_xml.TestCase] = []
    names: set[str] = set()
    for report in reports:
        for case in _cases(report):
            # Test-history tools key a case by its name: it keeps it unless an earlier run's
            # case in the suite (a repeat that broke, two traces of one workflow) has it.
            if case.name in names:
                case.name = f"{case.name} (run {report.run_id})"
            names.add(case.name)
            cases.append(case)
    first = reports[0]
    return junit_xml.TestSuite(
        workflow,
        cases,
        timestamp=datetime.fromtimestamp(first.started_at, UTC).isoformat(timespec="seconds"),
        file=first.source,
        properties=_properties(reports),
    )


def _cases(report: RunReport) -> list[junit_xml.TestCase]:
    cases = []
    unjudged = report.status == Status.PROVIDER_FAILED
    for test in report.tests:
        case = junit_xml.TestCase(test.name, classname=report.workflow)
        if not test.passed and unjudged:
            case.add_skipped_info(message=_one_line(test.message or "not evaluated"))
        elif not test.passed:
            why = test.message or "failed"
            if test.runs > 1:
                why = f"{test.result()}: {why}"
            case.add_failure_info(message=_one_line(why), output=why, failure_type="test")
        cases.append(case)
    # The first divergence is a case of its own, with its diff; the others, one case counting
    # them by kind, so that a changed prompt is not one failed case per leaf.
    listed, left, others = divergences.first_only(
        report.failures, lambda node: node.status, lambda node: node.error
    )
    cases += _provider_cases(report)
    for node in listed:
        if node.provider_failure is not None:
            continue
        case = junit_xml.TestCase(node.path, classname=report.workflow, elapsed_sec=node.seconds)
        # The first line says what went wrong; the rest (a diff, a command's output) is the body.
        headline = node.error.splitlines()[0] if node.error.strip() else node.status
        case.add_failure_info(
            message=_one_line(f"{node.kind} {node.status}: {headline}"),
            output=node.error,
            failure_type=node.status,
        )
        cases.append(case)
    if others is not None:
        case = junit_xml.TestCase(plural(len(left), "more divergence"), classname=report.workflow)
        listing = "\n".join(f"{node.path}: {node.error.splitlines()[0]}" for node in left)
        case.add_failure_info(
            message=_one_line(others), output=listing, failure_type=Status.REPLAY_DIVERGED.value
        )
        cases.append(case)
    # A failure the run went on without is a skipped case: CI shows it, the suite stays green.
    for node in report.tolerated:
        case = junit_xml.TestCase(node.path, classname=report.workflow, elapsed_sec=node.seconds)
        headline = node.error.splitlines()[0] if node.error.strip() else node.status
        case.add_skipped_info(
            message=_one_line(f"{node.kind} {node.status}, tolerated: {headline}"),
            output=node.error,
        )
        cases.append(case)
    succeeded = report.status == Status.SUCCEEDED
    if not report.failures and (not report.tests or not succeeded):
        # Named ``run``, not after the run's id, so that its history is one test's.
        case = junit_xml.TestCase("run", classname=report.workflow, elapsed_sec=report.duration_s)
        if not succeeded:
            ended = "has not ended" if report.status == RUNNING else f"ended {report.status}"
            why = report.reason or f"the run {ended}"
            case.add_failure_info(
                message=_one_line(f"{report.status}: {why}"), output=why, failure_type="run"
            )
        cases.append(case)
    return cases


def _provider_cases(report: RunReport) -> list[junit_xml.TestCase]:
    """One case with an ``<error>`` per distinct provider failure, counting its calls."""
    stopped: dict[str, list[FailedNode]] = {}
    for node in report.failures:
        if node.provider_failure is not None:
            stopped.setdefault(node.provider_failure, []).append(node)
    cases = []
    for failure, nodes in stopped.items():
        case = junit_xml.TestCase(
            outage.provider_of(failure),
            classname=report.workflow,
            elapsed_sec=max(node.seconds for node in nodes),
        )
        counted = f"{failure} ({plural(len(nodes), 'call')})"
        first = nodes[0]
        calls = ", ".join(node.path for node in nodes)
        case.add_error_info(
            message=_one_line(counted),
            output=f"{counted}\n\nfirst call: {first.path}: {first.error}\ncalls: {calls}",
            error_type=Status.PROVIDER_FAILED.value,
        )
        cases.append(case)
    return cases


def _properties(reports: list[RunReport]) -> dict[str, str]:
    hits = sum(r.memo_hits for r in reports)
    misses = sum(r.memo_misses for r in reports)
    properties = {
        "run_id": " ".join(" ".join((r.run_id, *r.repeats)) for r in reports),
        "status": " ".join(r.shown_status for r in reports),
        "duration_s": f"{sum(r.duration_s for r in reports):.3f}",
        "calls": str(sum(r.calls for r in reports)),
        "tokens": str(sum(r.tokens for r in reports)),
        "cost_usd": f"{sum(r.cost_usd for r in reports):.6f}",
        "memo_hits": str(hits),
        "memo_misses": str(misses),
        "saved_tokens": str(sum(r.saved_tokens for r in reports)),
        "saved_usd": f"{sum(r.saved_usd for r in reports):.6f}",
    }
    # Who played each role: a green suite whose reviewer was the mock is not a review.
    properties["roles"] = " | ".join(dict.fromkeys(served_line(r.served) for r in reports))
    for report in reports:
        for role, spec in served_roles(report.served).items():
            properties.setdefault(
                f"role.{role}",
                f"{spec['provider']}" + (f"/{spec['model']}" if spec["model"] else ""),
            )
    applied = [line for line in (overlay_line(r.overlay) for r in reports) if line]
    if applied:
        properties["lessons"] = " | ".join(dict.fromkeys(applied))
    if hits + misses:  # no rate when the memo could answer nothing
        properties["memo_hit_rate"] = f"{hits / (hits + misses):.4f}"
    return properties


def _one_line(text: str) -> str:
    """An attribute's text: XML readers turn its line breaks into spaces anyway."""
    line = " ".join(text.split())
    return line if len(line) <= MESSAGE_CHARS else line[: MESSAGE_CHARS - 1] + "…"
