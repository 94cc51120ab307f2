"""Markdown reports of real stored runs, parsed back with markdown-it (CommonMark and GFM
tables) to check what a reader of the comment sees: headings, tables, fences."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import pytest
from markdown_it import MarkdownIt
from markdown_it.token import Token
from report_runs import Stored, reports, stored

from runner.reports import markdown, model


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Stored:
    return stored(tmp_path_factory)


@dataclass
class Parsed:
    """What a markdown document shows."""

    headings: list[tuple[str, str]]
    """(tag, text) of every heading."""
    paragraphs: list[str]
    """Text of every paragraph and list item."""
    tables: list[tuple[list[str], list[list[str]]]]
    """(header cells, body rows) of every table."""
    fences: list[tuple[str, str]]
    """(info, content) of every fenced block."""


def _text(inline: Token) -> str:
    """An inline token as read: escapes resolved, code spans' text, ``<br>`` a line break."""
    parts = []
    for child in inline.children or ():
        if child.type == "softbreak" or (child.type, child.content) == ("html_inline", "<br>"):
            parts.append("\n")
        else:
            parts.append(child.content)
    return "".join(parts)


def _parse(text: str) -> Parsed:
    tokens = MarkdownIt("commonmark").enable("table").parse(text)
    parsed = Parsed([], [], [], [])
    row: list[str] | None = None
    for index, token in enumerate(tokens):
        if token.type == "heading_open":
            parsed.headings.append((token.tag, _text(tokens[index + 1])))
        elif token.type == "paragraph_open":
            parsed.paragraphs.append(_text(tokens[index + 1]))
        elif token.type == "fence":
            parsed.fences.append((token.info, token.content))
        elif token.type == "table_open":
            parsed.tables.append(([], []))
        elif token.type == "tr_open":
            row = []
        elif token.type in ("th_open", "td_open"):
            assert row is not None
            row.append(_text(tokens[index + 1]))
        elif token.type == "tr_close":
            assert row is not None
            header, body = parsed.tables[-1]
            if header:
                body.append(row)
            else:
                header.extend(row)
    return parsed


def _rows(parsed: Parsed, header: list[str]) -> list[list[str]]:
    """The body rows of the one table with this header."""
    (found,) = [rows for cells, rows in parsed.tables if cells == header]
    return found


TESTS = ["test", "result", "message"]
SLOWEST = ["node", "kind", "time"]
FIGURES = [
    "status",
    "done",
    "duration",
    "calls",
    "tokens",
    "cost",
    "memo hit rate",
    "memo saved",
]


def test_a_passing_run_shows_its_figures_tests_and_graph(runs: Stored) -> None:
    (report,) = reports(runs, runs.greeting)
    parsed = _parse(markdown.render([report]))
    assert parsed.headings[:2] == [("h2", "Branchleaf report"), ("h3", "✅ greeting")]
    assert parsed.paragraphs[0] == "✅ passed: greeting (succeeded)"
    assert f"run {runs.greeting}" in parsed.paragraphs[1]
    (row,) = _rows(parsed, FIGURES)
    figures = dict(zip(FIGURES, row, strict=True))
    assert figures["status"] == "succeeded"
    assert figures["done"] == f"{report.done}/{report.total}"
    assert (figures["calls"], figures["tokens"], figures["cost"]) == ("0", "0", "$0")
    assert figures["memo hit rate"] == "100% (1 of 1)"
    assert figures["memo saved"].startswith(f"{report.saved_tokens:,} tokens, $")
    # Every test passed: no column of empty messages.
    assert _rows(parsed, ["test", "result"]) == [
        ["the greeting is written", "✅ passed"],
        ["the greeting is shouted", "✅ passed"],
    ]
    assert {row[0] for row in _rows(parsed, SLOWEST)} == {"greet", "shout"}
    (graph,) = [content for info, content in parsed.fences if info == "mermaid"]
    assert graph.startswith("flowchart TD\n")
    assert "n_main --> n_greet" in graph
    assert "class n_greet succeeded" in graph
    assert "Failures" not in {text for _, text in parsed.headings}


def test_failures_name_the_node_that_failed_and_colour_the_graph(runs: Stored) -> None:
    parsed = _parse(markdown.render(reports(runs, runs.broken)))
    assert parsed.paragraphs[0] == "❌ failed: broken-sum (failed)"
    assert ("h4", "Failures") in parsed.headings
    (failure,) = [p for p in parsed.paragraphs if p.startswith("total ")]
    assert failure == (
        "total (reduce, failed): `outputs.draft.missing` is undefined: "
        "`outputs.draft` is text, which has no `missing`"
    )
    assert _rows(parsed, TESTS) == [
        ["the total is ten", "❌ failed", "not evaluated: the run ended failed"]
    ]
    (graph,) = [content for info, content in parsed.fences if info == "mermaid"]
    assert "class n_total failed" in graph
    assert "class n_draft succeeded" in graph
    assert "class n_main failed" in graph


def test_tournaments_pareto_fronts_and_bars_in_messages(runs: Stored) -> None:
    parsed = _parse(markdown.render(reports(runs, runs.contests)))
    # The expectation's filter bar stays inside its cell: three cells in the row.
    assert _rows(parsed, TESTS) == [
        ["the big candidate wins", "✅ passed", ""],
        [
            "the front holds all three",
            "❌ failed",
            "expected 'outputs.front.frontier | length == 3' to hold, got 2 == 3",
        ],
    ]
    assert len(_rows(parsed, SLOWEST)) == 5
    assert _rows(parsed, ["node", "winner", "score", "scores"]) == [
        ["pick", "#1", "3", "#0 1; #1 3"]
    ]
    assert _rows(parsed, ["node", "kept", "front"]) == [
        ["front", "2 of 3", "#1 value 1, risk 1; #2 value 2, risk 4"]
    ]
    assert ("h4", "Tournaments") in parsed.headings
    assert ("h4", "Pareto fronts") in parsed.headings


def test_a_diverged_replay_shows_its_first_divergence_as_a_diff(runs: Stored) -> None:
    parsed = _parse(markdown.render(reports(runs, runs.replay)))
    assert f"replay of {runs.contests}" in parsed.paragraphs[1]
    (diff,) = [content for info, content in parsed.fences if info == "diff"]
    assert diff.splitlines() == [
        "--- recorded messages",
        "+++ now messages",
        "@@ -1 +1 @@",
        "-[user] Say which plan won: 1",
        "+[user] Tell which plan won: 1",
    ]
    assert (
        "First divergence at say: the model call at say differs from the recorded one in: messages"
    ) in parsed.paragraphs
    (graph,) = [content for info, content in parsed.fences if info == "mermaid"]
    assert "class n_say replay_diverged" in graph
    assert "class n_pick succeeded" in graph


def test_several_runs_get_one_overall_line(runs: Stored) -> None:
    parsed = _parse(markdown.render(reports(runs, runs.greeting, runs.broken, runs.out_of_time)))
    assert parsed.paragraphs[0] == "❌ failed: 2 of 3 runs did not pass"
    assert [text for tag, text in parsed.headings if tag == "h3"] == [
        "✅ greeting",
        "❌ broken-sum",
        "❌ out-of-time",
    ]
    assert "budget_exceeded: budget.wall_s 0.2 s ran out" in parsed.paragraphs
    passing = _parse(markdown.render(reports(runs, runs.first_greeting, runs.greeting)))
    assert passing.paragraphs[0] == "✅ passed: all 2 runs"


def test_table_cells_keep_bars_line_breaks_and_stay_short(runs: Stored) -> None:
    (report,) = reports(runs, runs.greeting)
    long = "x" * 1000
    report = dataclasses.replace(
        report,
        tests=(
            model.TestOutcome(
                name="a | b *c*",
                passed=False,
                message="first | line\nsecond <b>line</b>",
                runs=5,
                passes=4,
                threshold=0.8,
            ),
            model.TestOutcome(name="long", passed=False, message=long, passes=0),
        ),
    )
    text = markdown.render([report])
    rows = _rows(_parse(text), TESTS)
    assert rows[0] == [
        "a | b *c*",
        "❌ 4/5 runs passed (needs 80%)",
        "first | line\nsecond <b>line</b>",
    ]
    assert len(rows[1][2]) == markdown.MESSAGE_CHARS
    assert rows[1][2].endswith("…")
    assert long not in text


def _wide(report: model.RunReport, steps: int) -> model.RunReport:
    """The report with a recorded workflow of ``steps`` steps, to make its graph large."""
    root = report.document["steps"]
    step = root["steps"][1]
    wide = {**root, "steps": [{**step, "id": f"step_{i}"} for i in range(steps)]}
    return dataclasses.replace(report, document={**report.document, "steps": wide})


def _graphs(text: str) -> list[str]:
    return [content for info, content in _parse(text).fences if info == "mermaid"]


def test_a_workflow_too_large_to_draw_has_no_graph(runs: Stored) -> None:
    (report,) = reports(runs, runs.greeting)
    parsed = _parse(markdown.render([_wide(report, 600)]))
    assert not [info for info, _ in parsed.fences if info == "mermaid"]
    assert any(p.startswith("No graph: the workflow is too large") for p in parsed.paragraphs)


def test_a_report_too_long_for_a_comment_drops_its_graphs(runs: Stored) -> None:
    (report,) = reports(runs, runs.greeting)
    wide = _wide(report, 150)
    (graph,) = _graphs(markdown.render([wide]))
    assert "n_step_149" in graph
    several = markdown.render([wide] * 4)
    assert not _graphs(several)
    assert len(several) < markdown.COMMENT_CHARS
    assert len(_parse(several).tables) == 4 * 3  # figures, tests, slowest nodes: all kept
