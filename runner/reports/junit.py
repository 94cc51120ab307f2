"""Run reports as JUnit XML, which CI systems show as test results.

One test suite per workflow (the runs of one workflow share it), a test case per workflow test
and one per node that failed by itself (skipped, not failed, when the run went on without it:
``allow_fail``, ``min_successes``), and a case for the run itself when nothing else says
why it did not succeed (a budget ran out, it was cancelled) or when it has nothing else to
show. The run's usage, cost and memo figures are the suite's properties.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import junit_xml  # type: ignore[import-untyped]  # ships no type information

from runner.plural import plural
from runner.reports import divergences
from runner.reports.model import RunReport, served_line, served_roles
from runner.status import Status
from runner.store.runs import RUNNING

MESSAGE_CHARS = 300
"""The longest failure message attribute; the whole text is the failure's body."""


def render(reports: Sequence[RunReport]) -> str:
    """The JUnit XML document of ``reports``."""
    by_workflow: dict[str, list[RunReport]] = {}
    for report in reports:
        by_workflow.setdefault(report.workflow, []).append(report)
    suites = [_suite(name, runs) for name, runs in by_workflow.items()]
    return str(junit_xml.to_xml_report_string(suites, encoding="utf-8"))


def _suite(workflow: str, reports: list[RunReport]) -> junit_xml.TestSuite:
    several = len(reports) > 1
    cases = []
    for report in reports:
        # Cases of several runs in one suite would share names without the run's id.
        suffix = f" (run {report.run_id})" if several else ""
        cases += _cases(report, suffix)
    first = reports[0]
    return junit_xml.TestSuite(
        workflow,
        cases,
        timestamp=datetime.fromtimestamp(first.started_at, UTC).isoformat(timespec="seconds"),
        file=first.source,
        properties=_properties(reports),
    )


def _cases(report: RunReport, suffix: str) -> list[junit_xml.TestCase]:
    cases = []
    for test in report.tests:
        case = junit_xml.TestCase(test.name + suffix, classname=report.workflow)
        if not test.passed:
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
    for node in listed:
        case = junit_xml.TestCase(
            node.path + suffix, classname=report.workflow, elapsed_sec=node.seconds
        )
        # The first line says what went wrong; the rest (a diff, a command's output) is the body.
        headline = node.error.splitlines()[0] if node.error.strip() else node.status
        case.add_failure_info(
            message=_one_line(f"{node.kind} {node.status}: {headline}"),
            output=node.error,
            failure_type=node.status,
        )
        cases.append(case)
    if others is not None:
        case = junit_xml.TestCase(
            f"{plural(len(left), 'more divergence')}{suffix}", classname=report.workflow
        )
        listing = "\n".join(f"{node.path}: {node.error.splitlines()[0]}" for node in left)
        case.add_failure_info(
            message=_one_line(others), output=listing, failure_type=Status.REPLAY_DIVERGED.value
        )
        cases.append(case)
    # A failure the run went on without is a skipped case: CI shows it, the suite stays green.
    for node in report.tolerated:
        case = junit_xml.TestCase(
            node.path + suffix, classname=report.workflow, elapsed_sec=node.seconds
        )
        headline = node.error.splitlines()[0] if node.error.strip() else node.status
        case.add_skipped_info(
            message=_one_line(f"{node.kind} {node.status}, tolerated: {headline}"),
            output=node.error,
        )
        cases.append(case)
    succeeded = report.status == Status.SUCCEEDED
    if not report.failures and (not report.tests or not succeeded):
        case = junit_xml.TestCase(
            f"run {report.run_id}", classname=report.workflow, elapsed_sec=report.duration_s
        )
        if not succeeded:
            ended = "has not ended" if report.status == RUNNING else f"ended {report.status}"
            why = report.reason or f"the run {ended}"
            case.add_failure_info(
                message=_one_line(f"{report.status}: {why}"), output=why, failure_type="run"
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
    if hits + misses:  # no rate when the memo could answer nothing
        properties["memo_hit_rate"] = f"{hits / (hits + misses):.4f}"
    return properties


def _one_line(text: str) -> str:
    """An attribute's text: XML readers turn its line breaks into spaces anyway."""
    line = " ".join(text.split())
    return line if len(line) <= MESSAGE_CHARS else line[: MESSAGE_CHARS - 1] + "…"
