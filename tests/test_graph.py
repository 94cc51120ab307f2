"""Tests of the Mermaid flowchart renderer."""

from __future__ import annotations

import re
from itertools import pairwise
from typing import Any

import pytest

from runner import ir
from runner.compiler.build import build_workflow
from runner.graph import KIND_STYLES, SHAPES, STATUS_STYLES, mermaid, mermaid_id
from runner.tree import walk

STATUSES = tuple(STATUS_STYLES)
TIMES = "\N{MULTIPLICATION SIGN}"


def _workflow(steps: dict[str, Any]) -> ir.Workflow:
    return build_workflow({"version": 1, "name": "graph-test", "steps": steps})


ALL_KINDS: dict[str, Any] = {
    "kind": "sequence",
    "id": "main",
    "description": 'The "main" line',
    "steps": [
        {"kind": "command", "id": "setup", "run": ["pytest", "-q"]},
        {
            "kind": "expand",
            "id": "review",
            "over": "inputs.files",
            "as": "file",
            "max_children": 50,
            "body": {
                "kind": "leaf",
                "id": "review_one",
                "role": "reviewer",
                "prompt": 'Say "ok" about {{ file }}',
            },
        },
        {
            "kind": "branch",
            "id": "both",
            "children": [
                {"kind": "leaf", "id": "left", "role": "writer", "prompt": "a"},
                {"kind": "leaf", "id": "right", "role": "writer", "prompt": "b"},
            ],
        },
        {
            "kind": "cond",
            "id": "check",
            "if": "outputs.setup.exit_code == 0",
            "then": {"kind": "leaf", "id": "praise", "role": "writer", "prompt": "yay"},
            "else": {"kind": "leaf", "id": "end", "role": "writer", "prompt": "nay"},
        },
        {
            "kind": "loop_until",
            "id": "fix",
            "until": "outputs.fix_once.ok",
            "max_iterations": 5,
            "body": {"kind": "leaf", "id": "fix_once", "role": "fixer", "prompt": "fix"},
        },
        {
            "kind": "reduce",
            "id": "summary",
            "inputs": ["review", "both"],
            "expr": "outputs.review | selectattr('ok') | list | length",
        },
        {
            "kind": "tournament",
            "id": "best",
            "count": 3,
            "body": {"kind": "leaf", "id": "draft", "role": "writer", "prompt": "draft"},
            "judge": {"role": "judge", "prompt": "Score {{ candidate }}"},
        },
        {
            "kind": "pareto",
            "id": "front",
            "candidates": [
                {"kind": "leaf", "id": "cheap", "role": "writer", "prompt": "short"},
                {"kind": "command", "id": "lint", "run": ['"ruff"', "check"]},
            ],
            "objectives": [
                {"name": "len", "expr": "candidate | length", "goal": "min"},
                {"name": "ok", "expr": "1", "goal": "max"},
            ],
        },
        {"kind": "teacher_review", "id": "teach", "inputs": ["best", "summary"]},
    ],
}

EXPECTED_SHAPES = {
    "main": ('(["', '"])'),
    "setup": ('[["', '"]]'),
    "review": ('[\\"', '"\\]'),
    "review_one": ('["', '"]'),
    "both": ('[/"', '"/]'),
    "check": ('{"', '"}'),
    "fix": ('{{"', '"}}'),
    "summary": ('[/"', '"\\]'),
    "best": ('>"', '"]'),
    "front": ('[("', '")]'),
    "teach": ('(("', '"))'),
}

# Every statement form the renderer may emit; anything else is a syntax slip.
_ID = r"n_\w+"
_SHAPE = "|".join(
    re.escape(opening) + r'"(?:[^"<\n]|<br/>)*"' + re.escape(closing)
    for opening, closing in SHAPES.values()
)
_STYLE = r"[\w-]+:[^,;\s][^,;]*"
STATEMENT = re.compile(
    "|".join(
        [
            rf"    {_ID}(?:{_SHAPE})",
            rf"    {_ID} (?:-->|-\.->|-- [\w {TIMES}]+ -->|-\. [\w ]+ \.->) {_ID}",
            rf"    classDef \w+ {_STYLE}(?:,{_STYLE})*",
            rf"    class {_ID}(?:,{_ID})* \w+",
        ]
    )
)


@pytest.fixture
def chart() -> str:
    return mermaid(_workflow(ALL_KINDS))


def _nodes(workflow: ir.Workflow) -> list[ir.Node]:
    return [visit.node for visit in walk(workflow.steps)]


def _declared(chart: str) -> list[tuple[str, str]]:
    """(Mermaid id, whole statement) of every node declaration, in order."""
    found = (re.match(r"    (n_\w+)[\[({>]", line) for line in chart.splitlines())
    return [(match[1], match.string.strip()) for match in found if match]


def _declaration(chart: str, node_id: str) -> str:
    (line,) = [line for mid, line in _declared(chart) if mid == mermaid_id(node_id)]
    return line


def test_every_kind_is_covered() -> None:
    kinds = {node.kind for node in _nodes(_workflow(ALL_KINDS))}
    assert kinds == set(SHAPES) == set(KIND_STYLES)
    assert len(set(SHAPES.values())) == len(SHAPES)


def test_header_and_trailing_newline(chart: str) -> None:
    assert chart.startswith("flowchart TD\n")
    assert chart.endswith("\n")
    assert not chart.endswith("\n\n")


def test_every_line_is_a_known_statement(chart: str) -> None:
    statuses = {"main": "running", "end": "failed", "teach": "pending"}
    for text in (chart, mermaid(_workflow(ALL_KINDS), statuses)):
        lines = text.splitlines()
        assert lines[0] == "flowchart TD"
        for line in lines[1:]:
            assert STATEMENT.fullmatch(line), line


def test_every_node_declared_once_with_its_shape(chart: str) -> None:
    for node in _nodes(_workflow(ALL_KINDS)):
        line = _declaration(chart, node.id)
        opening, closing = SHAPES[node.kind]
        label = line.split('"')[1]
        assert line == f'{mermaid_id(node.id)}{opening}"{label}"{closing}'
        assert label.startswith(f"{node.id}<br/>{node.kind}")
    for node_id, (opening, closing) in EXPECTED_SHAPES.items():
        line = _declaration(chart, node_id)
        assert line.startswith(mermaid_id(node_id) + opening)
        assert line.endswith(closing)


def test_labels_carry_the_telling_detail(chart: str) -> None:
    expected = {
        "review_one": "leaf · reviewer",
        "setup": "command · pytest",
        "main": "sequence · 9 steps",
        "both": "branch · 2 children",
        "review": "expand ≤ 50 · inputs.files",
        "fix": "loop_until ≤ 5",
        "best": f"tournament {TIMES} 3 · judge judge",
        "front": "pareto of 2 · 2 objectives",
        "teach": "teacher_review · teacher",
    }
    for node_id, detail in expected.items():
        assert f'"{node_id}<br/>{detail}"' in _declaration(chart, node_id)


def test_long_details_are_cut(chart: str) -> None:
    label = _declaration(chart, "summary").split('"')[1]
    detail = label.split("<br/>")[1]
    assert detail.endswith("…")
    assert len(detail) == 40
    assert detail.startswith("reduce · outputs.review | selectattr(")


def test_quotes_and_html_are_escaped() -> None:
    chart = mermaid(
        _workflow(
            {
                "kind": "cond",
                "id": "pick",
                "description": 'say "hi"',
                "if": 'inputs.mode == "a" and 1 < 2 & #x',
                "then": {"kind": "command", "id": "quoted", "run": ['"tool"']},
            }
        )
    )
    assert '"pick<br/>cond · inputs.mode == #quot;a#quot; and 1 #lt; 2 #amp; #35;x"' in chart
    assert '"quoted<br/>command · #quot;tool#quot;"' in chart
    for line in chart.splitlines()[1:]:
        assert STATEMENT.fullmatch(line), line


def test_sequence_steps_are_chained_in_order(chart: str) -> None:
    order = ["setup", "review", "both", "check", "fix", "summary", "best", "front", "teach"]
    lines = chart.splitlines()
    assert "    n_main --> n_setup" in lines
    for a, b in pairwise(order):
        assert f"    {mermaid_id(a)} --> {mermaid_id(b)}" in lines
    assert "    n_main --> n_review" not in lines


def test_control_edges_are_labelled(chart: str) -> None:
    lines = chart.splitlines()
    assert "    n_check -- then --> n_praise" in lines
    assert "    n_check -- else --> n_end" in lines
    assert "    n_fix --> n_fix_once" in lines
    assert "    n_fix_once -. until .-> n_fix" in lines
    assert "    n_review -- each file --> n_review_one" in lines
    assert f"    n_best -- {TIMES} 3 --> n_draft" in lines
    assert "    n_front --> n_cheap" in lines
    assert "    n_front --> n_lint" in lines
    assert "    n_both --> n_left" in lines
    assert "    n_both --> n_right" in lines


def test_data_dependencies_are_dashed(chart: str) -> None:
    lines = chart.splitlines()
    for source, reader in [("review", "summary"), ("both", "summary")]:
        assert f"    n_{source} -.-> n_{reader}" in lines
    for source in ("best", "summary"):
        assert f"    n_{source} -.-> n_teach" in lines


def test_keyword_id_is_prefixed(chart: str) -> None:
    assert '    n_end["end<br/>leaf · writer"]' in chart.splitlines()
    assert not re.search(r"(^|[\s>])end[\[\(\{]", chart)
    assert mermaid_id("graph") == "n_graph"
    assert mermaid_id("review_one[3]") == "n_review_one_5b_3_5d_"


def test_kind_classes_without_statuses(chart: str) -> None:
    lines = chart.splitlines()
    for kind in SHAPES:
        assert f"    classDef {kind} {KIND_STYLES[kind]}" in lines
    assert (
        "    class n_review_one,n_left,n_right,n_praise,n_end,n_fix_once,n_draft,n_cheap leaf"
        in (lines)
    )
    assert not any(f"classDef {status} " in chart for status in STATUSES)


def test_statuses_colour_nodes() -> None:
    statuses = {"main": "running", "end": "failed", "teach": "budget_exceeded", "x[1]": "stuck"}
    chart = mermaid(_workflow(ALL_KINDS), statuses)
    lines = chart.splitlines()
    assert "    class n_main running" in lines
    assert "    class n_end failed" in lines
    assert "    class n_teach budget_exceeded" in lines
    # The status wins: those nodes lose their kind class.
    assert not any(re.search(r"\bn_end\b", line) for line in lines if line.endswith(" leaf"))
    assert "class n_teach teacher_review" not in chart
    defs = [line.split()[1] for line in lines if line.lstrip().startswith("classDef")]
    assert defs.index("running") > defs.index("leaf")
    assert "stuck" not in defs
    for status in ("running", "failed", "budget_exceeded"):
        assert f"    classDef {status} {STATUS_STYLES[status]}" in lines


@pytest.mark.parametrize("status", STATUSES)
def test_every_status_has_a_class(status: str) -> None:
    chart = mermaid(_workflow(ALL_KINDS), {"setup": status})
    assert f"    classDef {status} " in chart
    assert f"    class n_setup {status}\n" in chart


def test_unknown_status_is_rejected() -> None:
    with pytest.raises(ValueError, match="bogus"):
        mermaid(_workflow(ALL_KINDS), {"setup": "bogus"})


def test_output_is_deterministic(chart: str) -> None:
    statuses = {"end": "failed", "main": "running"}
    again = mermaid(_workflow(ALL_KINDS))
    assert again == chart
    assert mermaid(_workflow(ALL_KINDS), statuses) == mermaid(
        _workflow(ALL_KINDS), dict(reversed(statuses.items()))
    )
    declared = [mid for mid, _ in _declared(chart)]
    assert declared == [mermaid_id(node.id) for node in _nodes(_workflow(ALL_KINDS))]


def test_single_leaf() -> None:
    chart = mermaid(_workflow({"kind": "leaf", "id": "only", "role": "r", "prompt": "p"}))
    assert chart == (
        "flowchart TD\n"
        '    n_only["only<br/>leaf · r"]\n'
        f"    classDef leaf {KIND_STYLES['leaf']}\n"
        "    class n_only leaf\n"
    )


@pytest.mark.parametrize(
    "keyword", ["end", "graph", "subgraph", "style", "class", "classDef", "click", "default"]
)
def test_mermaid_keywords_as_ids_and_loop_variables(keyword: str) -> None:
    chart = mermaid(
        _workflow(
            {
                "kind": "pareto",
                "id": keyword,
                "count": 4,
                "body": {
                    "kind": "expand",
                    "id": "each",
                    "over": "inputs.x",
                    "as": keyword,
                    "max_children": 2,
                    "body": {"kind": "leaf", "id": "one", "role": "r", "prompt": "p"},
                },
                "objectives": [{"name": "a", "expr": "1", "goal": "max"}],
            }
        ),
        {keyword: "succeeded"},
    )
    lines = chart.splitlines()
    assert f'    n_{keyword}[("{keyword}<br/>pareto {TIMES} 4 · 1 objective")]' in lines
    assert f"    n_{keyword} -- {TIMES} 4 --> n_each" in lines
    assert f"    n_each -- each {keyword} --> n_one" in lines
    assert f"    class n_{keyword} succeeded" in lines
    for line in lines[1:]:
        assert STATEMENT.fullmatch(line), line
