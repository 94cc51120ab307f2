"""Partial fan-outs: ``min_successes`` on expand, branch, tournament and pareto, and
``allow_fail`` on leaves. A fan-out goes on when enough children succeed; the failures of the
others are tolerated, read as failure markers, left out of the run's status and shown in the
run line, the summary, the reports and replays."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

from runner.main import main
from runner.reports import junit, markdown
from runner.reports.model import load
from runner.store import runs
from runner.store.db import opened
from runner.store.trace import events

FILES = [f"f{index:02}.py" for index in range(20)]

REVIEW = """\
version: 1
name: review
inputs:
  files: {{type: array, default: {files}}}
roles: {{reviewer: {{}}}}
steps:
  kind: sequence
  id: main
  steps:
    - kind: expand
      id: review
      over: inputs.files
      as: file
      max_children: 20
{fan_out}
      body:
        kind: leaf
        id: review_one
        role: reviewer
        prompt: "Review {{{{ file }}}}"
{leaf}
        output:
          type: object
          required: [verdict]
          properties: {{verdict: {{type: string}}}}
    - kind: reduce
      id: summary
      inputs: [review]
      expr: >-
        {{'good': outputs.review | reject('failed') | map(attribute='verdict') | list,
          'failed': outputs.review | select('failed') | map(attribute='error') | list,
          'seventh': outputs.review[7]}}
tests:
  - name: nineteen reviews
    expect: "outputs.review | reject('failed') | list | length == 19"
  - name: one failed
    expect: "outputs.review | select('failed') | list | length == 1"
"""

SCRIPT = """\
nodes:
  "review_one[7]":
    reply: "I think this file is fine, but I will not answer in JSON."
  "review_one*":
    reply: {verdict: fine}
"""


def _review(tmp_path: Path, *, fan_out: str = "", leaf: str = "") -> list[str]:
    (tmp_path / "review.yaml").write_text(
        REVIEW.format(files=json.dumps(FILES), fan_out=fan_out, leaf=leaf), encoding="utf-8"
    )
    (tmp_path / "script.yaml").write_text(SCRIPT, encoding="utf-8")
    state = tmp_path / "state"
    return ["review.yaml", "--mock-script", "script.yaml", "--plain", "--state", str(state)]


def _summary(tmp_path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(
        (tmp_path / "state" / "reports" / "review.summary.json").read_text(encoding="utf-8")
    )
    return data


@pytest.fixture
def at(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize(
    "bound", ["", "      concurrency: {leaves: 2}"], ids=["tasks", "pool"]
)  # with a tight call bound, the leaves run through a pool of workers
def test_twenty_leaves_with_one_bad_reply_go_on_with_min_successes(
    at: Path, capsys: pytest.CaptureFixture[str], bound: str
) -> None:
    fan_out = "      min_successes: 19\n" + bound
    assert main(["run", *_review(at, fan_out=fan_out.rstrip())]) == 0
    out = capsys.readouterr().out
    assert "failed, tolerated: review_one[7]: the reply is not JSON" in out
    # The bad reply's call counts too: the run's totals are what it cost.
    assert "review: succeeded (23 nodes, 1 tolerated failure, 20 model calls," in out

    summary = _summary(at)
    assert summary["status"] == "succeeded"
    assert summary["passed"]
    assert [t["passed"] for t in summary["tests"]] == [True, True]
    seen = summary["output"]
    assert seen["good"] == ["fine"] * 19
    assert len(seen["failed"]) == 1
    assert seen["failed"][0].startswith("the reply is not JSON")
    assert seen["seventh"] == {"failed": True, "error": seen["failed"][0]}
    assert summary["tolerated"] == [
        {
            "path": "review_one[7]",
            "kind": "leaf",
            "status": "failed",
            "error": seen["failed"][0],
        }
    ]
    nodes = {n["path"]: n for n in summary["nodes"]}
    assert nodes["review_one[7]"]["tolerated"]
    assert not nodes["review"]["tolerated"]

    with opened(at / "state", create=False) as conn:
        report = load(conn, runs.find(conn, "last").id)
    assert report.failures == ()
    assert [(n.path, n.status) for n in report.tolerated] == [("review_one[7]", "failed")]
    text = markdown.render([report])
    assert "#### Failed, tolerated" in text
    assert "- `review_one[7]` (leaf, failed): the reply is not JSON" in text
    assert "#### Failures" not in text
    # In the graph, review_one is the 19 copies that succeeded: the tolerated one is listed.
    assert "class n_review_one succeeded" in text
    xml = junit.render([report])
    assert 'failures="0"' in xml
    assert 'skipped="1"' in xml
    assert 'message="leaf failed, tolerated: the reply is not JSON' in xml
    capsys.readouterr()
    assert main(["inspect", "last", "--state", str(at / "state")]) == 0
    assert "review_one[7] leaf failed (tolerated)" in capsys.readouterr().out


def test_below_min_successes_the_fan_out_fails_saying_how_many_succeeded(
    at: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", *_review(at, fan_out="      min_successes: 20")]) == 1
    out = capsys.readouterr().out
    why = "19 of 20 children succeeded; min_successes is 20"
    assert "review: failed (23 nodes, 1 tolerated failure," in out
    assert f"— {why}" in out
    summary = _summary(at)
    assert summary["reason"] == why
    assert all(t["message"] == "not evaluated: the run ended failed" for t in summary["tests"])
    with opened(at / "state", create=False) as conn:
        report = load(conn, runs.find(conn, "last").id)
    assert [(n.path, n.error) for n in report.failures] == [("review", why)]


def test_allow_fail_on_the_leaf_goes_on_without_min_successes(
    at: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", *_review(at, leaf="        allow_fail: true")]) == 0
    summary = _summary(at)
    assert summary["status"] == "succeeded"
    assert len(summary["output"]["good"]) == 19
    assert summary["output"]["seventh"]["failed"] is True
    assert [n["path"] for n in summary["tolerated"]] == ["review_one[7]"]
    assert "1 tolerated failure" in capsys.readouterr().out


def test_without_either_one_bad_reply_fails_the_run(at: Path) -> None:
    assert main(["run", *_review(at)]) == 1
    summary = _summary(at)
    assert summary["tolerated"] == []
    assert summary["reason"] == "the reply is not JSON (Expecting value at line 1 column 1)"


def test_a_run_with_a_tolerated_failure_replays_identically(
    at: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = _review(at, fan_out="      min_successes: 19")
    assert main(["run", *args]) == 0
    recorded = _summary(at)
    state = at / "state"
    with opened(state, create=False) as conn:
        original = runs.find(conn, "last").id
    assert main(["replay", original, "--plain", "--state", str(state)]) == 0
    replayed = _summary(at)
    assert replayed["output"] == recorded["output"]
    assert replayed["tolerated"] == recorded["tolerated"]
    with opened(state, create=False) as conn:
        again = runs.find(conn, "last")
        ended = [e for e in events(conn, again.id) if e.type == "node_finished"]
    assert again.mode == "replay"
    assert again.status == "succeeded"
    assert [e.path for e in ended if e.data.get("tolerated")] == ["review_one[7]"]
    assert "replay_diverged" not in capsys.readouterr().out


BRANCH = """\
version: 1
name: angles
roles: {writer: {}}
steps:
  kind: sequence
  id: main
  steps:
    - kind: branch
      id: angles
      min_successes: 2
      children:
        - {kind: leaf, id: a, role: writer, prompt: "a", output: {type: object}}
        - kind: sequence
          id: b
          steps:
            - {kind: leaf, id: b_draft, role: writer, prompt: "b", output: {type: object}}
            - {kind: reduce, id: b_done, inputs: [b_draft], expr: "'done'"}
        - {kind: leaf, id: c, role: writer, prompt: "c", output: {type: object}}
    - kind: reduce
      id: seen
      inputs: [angles, b]
      expr: "[outputs.angles.b is failed, outputs.b is failed, outputs.a is failed]"
"""


def test_a_branch_child_that_fails_inside_reads_as_failed_by_id(
    at: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (at / "wf.yaml").write_text(BRANCH, encoding="utf-8")
    (at / "script.yaml").write_text(
        'nodes:\n  b_draft: {reply: "no"}\n  "*": {reply: {ok: 1}}\n', encoding="utf-8"
    )
    state = str(at / "state")
    args = ["wf.yaml", "--mock-script", "script.yaml", "--plain", "--state", state]
    assert main(["run", *args]) == 0
    summary = json.loads((at / "state/reports/angles.summary.json").read_text(encoding="utf-8"))
    assert summary["output"] == [True, True, False]
    # The leaf inside the failed child and the child; the step after the leaf is skipped.
    assert {n["path"] for n in summary["tolerated"]} == {"b_draft", "b"}
    assert "2 tolerated failures" in capsys.readouterr().out
    with opened(at / "state", create=False) as conn:
        report = load(conn, runs.find(conn, "last").id)
    # Failed and gone on without: neither red nor green in the graph.
    assert report.statuses["b_draft"] == "tolerated"
    assert "class n_b_draft tolerated" in markdown.render([report])


CONTEST = """\
version: 1
name: contest
roles: {writer: {}, judge: {}}
steps:
  kind: sequence
  id: main
  steps:
    - kind: tournament
      id: best
      min_successes: 2
      candidates:
        - {kind: leaf, id: one, role: writer, prompt: "one", output: {type: object}}
        - {kind: leaf, id: two, role: writer, prompt: "two", output: {type: object}}
        - {kind: leaf, id: three, role: writer, prompt: "three", output: {type: object}}
      score: "candidate.n"
    - kind: pareto
      id: front
      min_successes: 2
      count: 3
      body:
        {kind: leaf, id: plan, role: writer, prompt: "plan {{ sample }}", output: {type: object}}
      objectives:
        - {name: n, expr: candidate.n, goal: max}
    - kind: reduce
      id: seen
      inputs: [best, front, one]
      expr: >-
        {'winner': outputs.best.index, 'scores': outputs.best.harvest | map(attribute='index')
        | list, 'front': outputs.front.indices, 'one': outputs.one is failed,
        'why': outputs.best.harvest[-1].error}
"""

CONTEST_SCRIPT = """\
nodes:
  one: {reply: "not json"}
  two: {reply: {n: 2}}
  three: {reply: {n: 3}}
  "plan[1]": {reply: "not json"}
  "plan[0]": {reply: {n: 5}}
  "plan[2]": {reply: {n: 1}}
"""


def _contest(at: Path, script: str) -> int:
    (at / "wf.yaml").write_text(CONTEST, encoding="utf-8")
    (at / "script.yaml").write_text(script, encoding="utf-8")
    state = str(at / "state")
    return main(["run", "wf.yaml", "--mock-script", "script.yaml", "--plain", "--state", state])


def test_tournament_and_pareto_rank_only_the_candidates_that_succeeded(at: Path) -> None:
    assert _contest(at, CONTEST_SCRIPT) == 0
    summary = json.loads((at / "state/reports/contest.summary.json").read_text(encoding="utf-8"))
    why = "the reply is not JSON (Expecting value at line 1 column 1)"
    assert summary["output"] == {
        "winner": 2,
        "scores": [1, 0],
        "front": [0],
        "one": True,
        "why": why,
    }
    decisions = {n["path"]: n["decision"] for n in summary["nodes"]}
    assert decisions["best"]["scores"] == {"1": 2.0, "2": 3.0}
    assert decisions["front"]["candidates"] == 2
    assert {n["path"] for n in summary["tolerated"]} == {"one", "plan[1]"}


def test_a_contest_below_min_successes_fails(at: Path) -> None:
    assert _contest(at, CONTEST_SCRIPT.replace("{reply: {n: 2}}", '{reply: "no"}')) == 1
    summary = json.loads((at / "state/reports/contest.summary.json").read_text(encoding="utf-8"))
    assert summary["reason"] == "1 of 3 children succeeded; min_successes is 2"


def test_the_failed_test_tells_markers_from_outputs() -> None:
    from runner.render import Scope, evaluate

    scope = Scope(
        inputs={},
        outputs={
            "r": [
                {"verdict": "fine"},
                {"failed": True, "error": "the reply is not JSON"},
                {"failed": True, "error": "x", "more": 1},
                {"failed": "yes", "error": "x"},
                "text",
                None,
            ]
        },
    )
    assert evaluate("outputs.r | select('failed') | list | length", scope) == 1
    assert evaluate("outputs.r | reject('failed') | list | length", scope) == 5


YAML_TWIN = textwrap.dedent(
    """\
    version: 1
    name: twin
    roles: {writer: {}}
    steps:
      kind: expand
      id: fan
      over: "[1, 2]"
      as: item
      max_children: 2
      min_successes: 1
      body: {kind: leaf, id: one, role: writer, prompt: "p", allow_fail: true}
    """
)

STAR_TWIN = textwrap.dedent(
    """\
    workflow(
        version = 1,
        name = "twin",
        roles = {"writer": {}},
        steps = expand(
            id = "fan",
            over = "[1, 2]",
            as_ = "item",
            max_children = 2,
            min_successes = 1,
            body = leaf(id = "one", role = "writer", prompt = "p", allow_fail = True),
        ),
    )
    """
)


def test_yaml_and_starlark_take_the_same_fields(tmp_path: Path) -> None:
    from runner.compiler.pipeline import compile_file

    (tmp_path / "twin.yaml").write_text(YAML_TWIN, encoding="utf-8")
    (tmp_path / "twin.star").write_text(STAR_TWIN, encoding="utf-8")
    yaml_ir = compile_file(str(tmp_path / "twin.yaml"))
    star_ir = compile_file(str(tmp_path / "twin.star"))
    assert yaml_ir.hash == star_ir.hash
    fan = yaml_ir.steps
    assert fan.kind == "expand"
    assert fan.min_successes == 1
    assert fan.body.kind == "leaf"
    assert fan.body.allow_fail is True


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            "min_successes: 3",
            "expand 'fan' asks for min_successes 3, more than its max_children 2, so it could "
            "never go on",
        ),
        ("min_successes: -1", "min_successes must be at least 0, not -1"),
        ("min_successes: 1\n  fail_fast: true", "sets both fail_fast and min_successes"),
    ],
)
def test_bad_min_successes_is_refused_where_it_is_written(
    at: Path, capsys: pytest.CaptureFixture[str], change: str, message: str
) -> None:
    text = YAML_TWIN.replace("min_successes: 1", change).replace("  allow_fail: true", "")
    (at / "wf.yaml").write_text(text, encoding="utf-8")
    assert main(["validate", "wf.yaml"]) == 2
    err = capsys.readouterr()
    shown = err.out + err.err
    assert message in shown
    assert "wf.yaml:10:" in shown
    assert "/steps/min_successes" in shown


@pytest.mark.parametrize(
    ("node", "message"),
    [
        (
            "{kind: branch, id: b, min_successes: 3, children: [{kind: leaf, id: x, role: w, "
            "prompt: p}, {kind: leaf, id: y, role: w, prompt: p}]}",
            "branch 'b' asks for min_successes 3, more than its 2 children",
        ),
        (
            "{kind: tournament, id: t, min_successes: 4, count: 3, score: '1', "
            "body: {kind: leaf, id: x, role: w, prompt: p}}",
            "tournament 't' asks for min_successes 4, more than its count 3",
        ),
        (
            "{kind: pareto, id: p, min_successes: 0, count: 3, objectives: [{name: n, "
            "expr: '1', goal: max}], body: {kind: leaf, id: x, role: w, prompt: p}}",
            "min_successes must be at least 1, not 0",
        ),
    ],
)
def test_min_successes_fits_every_fan_out(
    at: Path, capsys: pytest.CaptureFixture[str], node: str, message: str
) -> None:
    text = f"version: 1\nname: n\nroles: {{w: {{}}}}\nsteps: {node}\n"
    (at / "wf.yaml").write_text(text, encoding="utf-8")
    assert main(["validate", "wf.yaml"]) == 2
    err = capsys.readouterr()
    assert message in err.out + err.err
