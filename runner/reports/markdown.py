"""Run reports as GitHub-flavoured markdown, for a job summary or a pull-request comment.

Per run: its figures (status, done/total, duration, tokens, cost, memo hit rate and savings),
its tests, its failures with a replay's first divergence as a diff, its slowest nodes, its
tournaments and pareto fronts, and a Mermaid graph of the workflow coloured by status. Long
texts are cut so that a report stays a readable comment (GitHub takes at most 65,536
characters).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

from runner.compiler.build import build_workflow
from runner.graph import mermaid
from runner.humanize import cost, duration
from runner.plural import plural
from runner.reports import divergences
from runner.reports.model import RunReport, overlay_line, served_line
from runner.status import Status
from runner.trace_match import Unmatched

MESSAGE_CHARS = 300
"""The longest message shown in a table cell or a list item."""
DIFF_CHARS = 4000
"""The longest divergence diff shown."""
TABLE_ROWS = 50
"""The most rows of a table of tests."""
FAILURES = 20
"""The most failures listed per run."""
SCORES = 10
"""The most candidates shown per tournament or pareto node."""
GRAPH_CHARS = 20_000
"""The largest Mermaid graph shown; a larger one is left out."""
COMMENT_CHARS = 60_000
"""Past this length, a report is written again without its graphs."""

PASSED = "\N{WHITE HEAVY CHECK MARK}"
FAILED = "\N{CROSS MARK}"
UNJUDGED = "\N{WARNING SIGN}\N{VARIATION SELECTOR-16}"

# Backslash-escaping the punctuation that makes inline markup, or ends a table cell, keeps
# untrusted text (test names, model-written errors) literal; GFM allows a backslash before any
# of them. Such text never starts a line, where "#", "-" and the like would count too.
_MARKUP = re.compile(r"([\\`*_\[\]<>|~&])")


def render(reports: Sequence[RunReport], unmatched: Sequence[Unmatched] = ()) -> str:
    """The markdown report of ``reports`` and of the traces ``unmatched``."""
    text = _render(reports, unmatched, graphs=True)
    if len(text) > COMMENT_CHARS:
        text = _render(reports, unmatched, graphs=False)
    return text


def _render(reports: Sequence[RunReport], unmatched: Sequence[Unmatched], *, graphs: bool) -> str:
    lines = ["## Branchleaf report", ""]
    if unmatched:
        failing = sum(not report.passed for report in reports) + len(unmatched)
        lines += [
            f"{FAILED} **failed**: {failing} of {plural(len(reports) + len(unmatched), 'trace')} "
            "did not pass",
            "",
            f"### {FAILED} {plural(len(unmatched), 'trace')} with no workflow file",
            "",
            *(f"- {_text(trace.message)}" for trace in unmatched),
        ]
    else:
        lines.append(_overall(reports))
    for report in reports:
        lines += ["", *_run(report, graphs=graphs)]
    return "\n".join(lines) + "\n"


def _overall(reports: Sequence[RunReport]) -> str:
    failing = [r for r in reports if not r.passed]
    if not reports:
        return "No runs."
    if len(reports) == 1:
        report = reports[0]
        verdict = "passed" if report.passed else "failed"
        if report.status == Status.PROVIDER_FAILED:
            verdict = "not judged, the provider failed"
        return (
            f"{_mark(report.passed)} **{verdict}**: {_text(report.workflow)} "
            f"({report.shown_status})"
        )
    if failing:
        return f"{FAILED} **failed**: {len(failing)} of {len(reports)} runs did not pass"
    return f"{PASSED} **passed**: all {len(reports)} runs"


def _run(report: RunReport, *, graphs: bool) -> list[str]:
    lines = [
        f"### {_mark(report.passed)} {_text(report.workflow)}",
        "",
        _about(report),
        "",
        _text(served_line(report.served)),
    ]
    applied = overlay_line(report.overlay)
    if applied:
        lines += ["", _text(applied)]
    if report.shown_reason:
        # A divergence's reason holds its diff, which has a section of its own below.
        first = report.shown_reason.splitlines()[0]
        lines += ["", f"**{report.shown_status}**: {_short(first)}"]
    lines += ["", *_figures(report)]
    if report.tests:
        lines += ["", "#### Tests", "", *_tests(report)]
    if report.failures:
        lines += ["", "#### Failures", "", *_failures(report)]
    if report.tolerated:
        lines += ["", "#### Failed, tolerated", "", *_tolerated(report)]
    if report.slowest:
        lines += ["", "#### Slowest nodes", ""]
        lines += _table(
            ("node", "kind", "time"),
            [(_code(n.path), n.kind, duration(n.seconds)) for n in report.slowest],
        )
    if report.tournaments:
        lines += ["", "#### Tournaments", ""]
        lines += _table(
            ("node", "winner", "score", "scores"),
            [
                (
                    _code(t.path),
                    "none" if t.winner is None else f"#{t.winner}",
                    "" if t.score is None else f"{t.score:g}",
                    _capped(f"#{i} {s:g}" for i, s in t.scores),
                )
                for t in report.tournaments
            ],
        )
    if report.paretos:
        lines += ["", "#### Pareto fronts", ""]
        lines += _table(
            ("node", "kept", "front"),
            [
                (
                    _code(p.path),
                    f"{len(p.front)} of {p.candidates}",
                    _capped(
                        f"#{i} " + ", ".join(f"{name} {v:g}" for name, v in values.items())
                        for i, values in zip(p.front, p.values, strict=False)
                    ),
                )
                for p in report.paretos
            ],
        )
    if graphs:
        lines += ["", *_graph(report)]
    return lines


def _about(report: RunReport) -> str:
    started = datetime.fromtimestamp(report.started_at, UTC).strftime("%Y-%m-%d %H:%M UTC")
    parts = [f"run {_code(report.run_id)}"]
    if report.mode != "run":
        parts.append(f"{report.mode} of {_code(report.parent or '?')}")
    if report.source:
        parts.append(_code(report.source))
    parts.append(f"started {started}")
    if report.repeats:
        parts.append(f"{len(report.repeats) + 1} runs for its repeated tests, figures summed")
    return " · ".join(parts)


def _figures(report: RunReport) -> list[str]:
    rate = report.memo_hit_rate
    memo = (
        "n/a"
        if rate is None
        else f"{rate:.0%} ({report.memo_hits} of {report.memo_hits + report.memo_misses})"
    )
    return _table(
        ("status", "done", "duration", "calls", "tokens", "cost", "memo hit rate", "memo saved"),
        [
            (
                report.shown_status,
                f"{report.done}/{report.total}",
                duration(report.duration_s),
                f"{report.calls:,}",
                f"{report.tokens:,}",
                cost(report.cost_usd),
                memo,
                f"{report.saved_tokens:,} tokens, {cost(report.saved_usd)}",
            )
        ],
    )


def _tests(report: RunReport) -> list[str]:
    shown = report.tests[:TABLE_ROWS]
    unjudged = report.status == Status.PROVIDER_FAILED  # its tests were not checked
    rows = [
        (
            _text(t.name),
            f"{UNJUDGED} not evaluated"
            if unjudged and not t.passed
            else f"{_mark(t.passed)} {t.result()}",
        )
        for t in shown
    ]
    if all(t.passed for t in shown):  # no column of empty messages
        lines = _table(("test", "result"), rows)
    else:
        messages = ["" if t.passed else _cell(t.message) for t in shown]
        lines = _table(
            ("test", "result", "message"),
            [(*row, m) for row, m in zip(rows, messages, strict=True)],
        )
    if len(report.tests) > TABLE_ROWS:
        lines += ["", f"… and {plural(len(report.tests) - TABLE_ROWS, 'more test')}"]
    return lines


def _failures(report: RunReport) -> list[str]:
    lines = []
    # The first divergence is listed (its diff below); the others are only counted, by kind.
    listed, _, others = divergences.first_only(
        report.failures, lambda node: node.status, lambda node: node.error
    )
    # A provider failure is one item counting the calls it stopped, not one item per call.
    stopped: dict[str, list[str]] = {}
    for node in listed:
        if node.provider_failure is not None:
            stopped.setdefault(node.provider_failure, []).append(node.path)
    for failure, paths in stopped.items():
        named = ", ".join(_code(path) for path in paths[:SCORES])
        more = f", … {len(paths) - SCORES} more" if len(paths) > SCORES else ""
        lines.append(
            f"- **{Status.PROVIDER_FAILED.value}**: {_short(failure)} "
            f"({plural(len(paths), 'call')}: {named}{more})"
        )
    listed = [node for node in listed if node.provider_failure is None]
    for node in listed[:FAILURES]:
        first = node.error.splitlines()[0] if node.status == Status.REPLAY_DIVERGED else node.error
        lines.append(f"- {_code(node.path)} ({node.kind}, {node.status}): {_short(first)}")
    if len(listed) > FAILURES:
        lines.append(f"- … and {len(listed) - FAILURES} more")
    if others is not None:
        lines.append(f"- … {others}")
    divergence = report.divergence
    if divergence is not None:
        lines += [
            "",
            f"**First divergence** at {_code(divergence.path)}: {_short(divergence.message)}",
        ]
        if divergence.diff:
            diff = divergence.diff
            if len(diff) > DIFF_CHARS:
                diff = diff[:DIFF_CHARS].rsplit("\n", 1)[0] + "\n…"
            lines += ["", *_fence("diff", diff)]
    return lines


def _tolerated(report: RunReport) -> list[str]:
    lines = ["The run went on without these (`allow_fail`, `min_successes`):", ""]
    for node in report.tolerated[:FAILURES]:
        lines.append(f"- {_code(node.path)} ({node.kind}, {node.status}): {_short(node.error)}")
    if len(report.tolerated) > FAILURES:
        lines.append(f"- … and {len(report.tolerated) - FAILURES} more")
    return lines


def _graph(report: RunReport) -> list[str]:
    try:
        workflow = build_workflow(report.document, source=report.source or "")
        chart = mermaid(workflow, report.statuses)
    except (KeyError, TypeError, ValueError) as exc:
        # A document from another version of Branchleaf may not build here.
        return [f"_No graph: the recorded workflow cannot be drawn ({_short(str(exc))})._"]
    if len(chart) > GRAPH_CHARS:
        return [f"_No graph: the workflow is too large to draw here ({len(chart):,} chars)._"]
    return [
        "<details><summary>Workflow graph</summary>",
        "",
        *_fence("mermaid", chart.rstrip("\n")),
        "",
        "</details>",
    ]


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def _fence(info: str, text: str) -> list[str]:
    """A fenced code block longer than any run of backticks in ``text``."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return [f"{fence}{info}", text, fence]


def _mark(passed: bool) -> str:
    return PASSED if passed else FAILED


def _text(text: str) -> str:
    """Text shown literally: markup characters escaped, on one line."""
    return _MARKUP.sub(r"\\\1", " ".join(text.split()))


def _short(text: str) -> str:
    """:func:`_text`, cut to :data:`MESSAGE_CHARS`."""
    line = " ".join(text.split())
    if len(line) > MESSAGE_CHARS:
        line = line[: MESSAGE_CHARS - 1] + "…"
    return _text(line)


def _cell(text: str | None) -> str:
    """A message in a table cell: cut short, escaped, its line breaks kept as ``<br>``."""
    if not text:
        return ""
    cut = text if len(text) <= MESSAGE_CHARS else text[: MESSAGE_CHARS - 1] + "…"
    return "<br>".join(_text(line) for line in cut.splitlines() if line.strip())


def _code(text: str) -> str:
    """``text`` as a code span (node paths, run ids and node kinds never hold a bar, which a
    table would take for a cell's end)."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    ticks = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{ticks}{pad}{' '.join(text.split())}{pad}{ticks}"


def _capped(items: Iterable[str]) -> str:
    shown = list(items)
    more = len(shown) - SCORES
    text = "; ".join(shown[:SCORES]) + (f"; … {more} more" if more > 0 else "")
    return _text(text)
