"""The executor end to end: real workflows compiled from YAML, the mock provider, real
subprocesses and real git repositories."""

from __future__ import annotations

import asyncio
import json
import os
import textwrap
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from conftest import git
from jsonschema import Draft202012Validator

from runner import ir
from runner.compiler.pipeline import compile_file
from runner.config import DEFAULT, Config, load_config
from runner.executor.calls import RetryPolicy
from runner.executor.engine import Engine, Observer
from runner.executor.results import NodeResult, RunResult
from runner.learning.lessons import TEACHER_REPLY_SCHEMA
from runner.providers.base import ModelReply, ModelRequest, Provider
from runner.providers.mock import MockProvider
from runner.providers.registry import build_providers
from runner.providers.script import load_script
from runner.render import resolve_inputs
from runner.status import Status

# -- helpers ----------------------------------------------------------------------------------


def compile_yaml(tmp_path: Path, text: str, name: str = "wf.yaml") -> ir.Workflow:
    """Write a workflow under tmp_path and compile it the way `run` does."""
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return compile_file(str(path))


def mock(tmp_path: Path, script: str | None = None) -> MockProvider:
    """The real mock provider, scripted by a real script file when ``script`` is given."""
    if script is None:
        return MockProvider("mock")
    path = tmp_path / "script.yaml"
    path.write_text(textwrap.dedent(script), encoding="utf-8")
    return MockProvider("mock", load_script(str(path)))


class CountingProvider:
    """The provider seam, instrumented: delegates to a real provider and counts its calls."""

    retries_transient = False

    def __init__(self, inner: Provider) -> None:
        self.inner = inner
        self.name = inner.name
        self.endpoint = inner.endpoint
        self.requests: list[ModelRequest] = []
        self.in_flight = 0
        self.max_in_flight = 0

    async def complete(self, request: ModelRequest) -> ModelReply:
        self.requests.append(request)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            return await self.inner.complete(request)
        finally:
            self.in_flight -= 1

    def prompts(self, node_id: str) -> list[str]:
        """The rendered prompts sent for one node id, in call order."""
        return [
            "".join(m.content for m in r.messages) for r in self.requests if r.node_id == node_id
        ]


def engine_for(
    workflow: ir.Workflow,
    provider: Provider,
    workspace: Path,
    *,
    config: Config = DEFAULT,
    observer: Observer | None = None,
) -> Engine:
    return Engine(
        workflow,
        config=config,
        providers={provider.name: provider},
        workspace=workspace,
        observer=observer,
        retry_policy=RetryPolicy(base_s=0.001),
    )


def execute(
    workflow: ir.Workflow,
    provider: Provider,
    workspace: Path,
    *,
    inputs: Mapping[str, str] | None = None,
    config: Config = DEFAULT,
) -> RunResult:
    """Run a workflow to its end in a fresh event loop."""
    engine = engine_for(workflow, provider, workspace, config=config)
    return asyncio.run(engine.run(resolve_inputs(workflow, inputs or {})))


def by_path(result: RunResult) -> dict[str, NodeResult]:
    paths = [node.path for node in result.nodes]
    assert len(paths) == len(set(paths)), f"a node ended twice: {paths}"
    return {node.path: node for node in result.nodes}


def order(result: RunResult) -> list[str]:
    return [node.path for node in result.nodes]


def alive(pid: int) -> bool:
    """Whether pid is a running process; zombies do not count."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in {"Z", "X"}


def children_running(argv: list[str]) -> list[int]:
    """Pids of this process's live children whose argv is exactly ``argv``."""
    found = []
    wanted = ("\0".join(argv) + "\0").encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == os.getpid() and cmdline == wanted and alive(int(entry.name)):
            found.append(int(entry.name))
    return found


# -- every node kind --------------------------------------------------------------------------


def test_leaf_gives_text_or_json_valid_for_its_output_schema(tmp_path: Path) -> None:
    schema = {
        "type": "object",
        "properties": {"ok": {"type": "boolean"}, "n": {"type": "integer", "minimum": 2}},
        "required": ["ok", "n"],
    }
    workflow = compile_yaml(
        tmp_path,
        """\
        version: 1
        name: leaves
        roles: {w: {}}
        steps:
          kind: branch
          id: all
          children:
            - {kind: leaf, id: plain, role: w, prompt: "Say hello."}
            - kind: leaf
              id: typed
              role: w
              prompt: "Judge it."
              output:
                type: object
                properties: {ok: {type: boolean}, n: {type: integer, minimum: 2}}
                required: [ok, n]
            - kind: leaf
              id: fenced
              role: w
              prompt: "Fenced."
              output: {type: object, properties: {ok: {type: boolean}}, required: [ok]}
        """,
    )
    provider = mock(tmp_path, 'nodes:\n  fenced: {reply: "```json\\n{\\"ok\\": true}\\n```"}\n')
    result = execute(workflow, provider, tmp_path)
    assert result.status is Status.SUCCEEDED, result.reason
    nodes = by_path(result)
    assert isinstance(nodes["plain"].output, str)
    assert nodes["plain"].output.startswith("mock reply ")
    assert list(Draft202012Validator(schema).iter_errors(nodes["typed"].output)) == []
    # One repair pass strips the code fence around a scripted reply.
    assert nodes["fenced"].output == {"ok": True}
    assert result.output == {n: nodes[n].output for n in ("plain", "typed", "fenced")}
    assert nodes["typed"].spend.calls == 1
    assert nodes["typed"].spend.tokens > 0


def test_leaf_reply_that_misses_its_schema_fails_with_the_schema_error(tmp_path: Path) -> None:
    workflow = compile_yaml(
        tmp_path,
        """\
        version: 1
        name: bad-reply
        roles: {w: {}}
        steps:
          kind: leaf
          id: typed
          role: w
          prompt: "Judge it."
          output: {type: object, properties: {ok: {type: boolean}}, required: [ok]}
        """,
    )
    result = execute(workflow, mock(tmp_path, "nodes:\n  typed: {reply: {ok: 3}}\n"), tmp_path)
    assert result.status is Status.FAILED
    error = by_path(result)["typed"].error or ""
    assert "does not match the output schema at /ok" in error
    assert "boolean" in error


def test_command_output_shape_and_permissions(tmp_path: Path) -> None:
    workflow = compile_yaml(
        tmp_path,
        """\
        version: 1
        name: commands
        inputs: {who: {type: string, default: world}}
        permissions: {commands: ["echo *", "sh -c *"]}
        steps:
          kind: sequence
          id: main
          steps:
            - {kind: command, id: hello, run: ["echo", "hello {{ inputs.who }}"]}
            - kind: command
              id: lenient
              run: ["sh", "-c", "echo out; echo err >&2; exit 3"]
              allow_fail: true
            - {kind: command, id: strict, run: ["sh", "-c", "echo boom >&2; exit 4"]}
            - {kind: command, id: after, run: ["echo", "never"]}
        """,
    )
    result = execute(workflow, MockProvider(), tmp_path)
    nodes = by_path(result)
    assert nodes["hello"].output == {"exit_code": 0, "stdout": "hello world\n", "stderr": ""}
    assert nodes["lenient"].status is Status.SUCCEEDED
    assert nodes["lenient"].output == {"exit_code": 3, "stdout": "out\n", "stderr": "err\n"}
    assert nodes["strict"].status is Status.FAILED
    assert "exited with 4" in (nodes["strict"].error or "")
    assert "boom" in (nodes["strict"].error or "")
    assert nodes["after"].status is Status.SKIPPED
    assert nodes["after"].error == "step 'strict' before it did not succeed"
    assert nodes["main"].status is Status.FAILED
    assert result.status is Status.FAILED


def test_command_not_admitted_never_runs(tmp_path: Path) -> None:
    workflow = compile_yaml(
        tmp_path,
        """\
        version: 1
        name: denied
        inputs: {tool: {type: string, default: echo}}
        permissions: {commands: ["echo *"]}
        steps: {kind: command, id: touch, run: ["{{ inputs.tool }}", "made.txt"]}
        """,
    )
    # The validator cannot know what a template renders to; the run checks the real line.
    result = execute(workflow, MockProvider(), tmp_path, inputs={"tool": "touch"})
    assert result.status is Status.FAILED
    error = by_path(result)["touch"].error or ""
    assert "'touch made.txt' is not admitted by permissions.commands ('echo *')" in error
    assert not (tmp_path / "made.txt").exists()


def test_sequence_gives_its_last_output_and_later_steps_read_earlier_ones(
    tmp_path: Path,
) -> None:
    workflow = compile_yaml(
        tmp_path,
        """\
        version: 1
        name: seq
        roles: {w: {}}
        steps:
          kind: sequence
          id: main
          steps:
            - {kind: leaf, id: first, role: w, prompt: "Start."}
            - {kind: leaf, id: second, role: w, prompt: "Go on from {{ outputs.first }}."}
        """,
    )
    provider = CountingProvider(
        mock(tmp_path, "nodes:\n  first: {reply: alpha}\n  second: {reply: beta}\n")
    )
    result = execute(workflow, provider, tmp_path)
    assert result.status is Status.SUCCEEDED
    assert result.output == "beta"
    assert by_path(result)["main"].output == "beta"
    assert provider.prompts("second") == ["Go on from alpha."]
    assert order(result) == ["first", "second", "main"]


def test_branch_gives_each_child_output_by_id(tmp_path: Path) -> None:
    workflow = compile_yaml(
        tmp_path,
        """\
        version: 1
        name: br
        roles: {w: {}}
        permissions: {commands: ["echo *"]}
        steps:
          kind: branch
          id: both
          children:
            - {kind: leaf, id: left, role: w, prompt: "L"}
            - {kind: command, id: right, run: ["echo", "r"]}
        """,
    )
    result = execute(workflow, mock(tmp_path, "nodes:\n  left: {reply: L!}\n"), tmp_path)
    assert result.status is Status.SUCCEEDED
    assert result.output == {
        "left": "L!",
        "right": {"exit_code": 0, "stdout": "r\n", "stderr": ""},
    }
    assert result.outputs["left"] == "L!"


def test_expand_keeps_item_order_and_derives_copy_ids(tmp_path: Path) -> None:
    workflow = compile_yaml(
        tmp_path,
        """\
        version: 1
        name: fan
        inputs: {files: {type: array, default: ["a.py", "b.py", "c.py"]}}
        roles: {w: {}}
        steps:
          kind: expand
          id: review
          over: inputs.files
          as: file
          max_children: 5
          body: {kind: leaf, id: one, role: w, prompt: "Review {{ file }}."}
        """,
    )
    # Later items answer sooner, so the copies end in reverse order.
    script = """\
        nodes:
          "one[0]": {reply: first, latency_ms: 80}
          "one[1]": {reply: second, latency_ms: 40}
          "one[2]": {reply: third}
        """
    provider = CountingProvider(mock(tmp_path, script))
    result = execute(workflow, provider, tmp_path)
    assert result.status is Status.SUCCEEDED
    assert result.output == ["first", "second", "third"]
    assert order(result) == ["one[2]", "one[1]", "one[0]", "review"]
    nodes = by_path(result)
    assert all(nodes[f"one[{i}]"].node_id == "one" for i in range(3))
    assert nodes["review"].decision == {"items": 3}
    assert provider.prompts("one[1]") == ["Review b.py."]
    # Copies are not readable on their own after the run; the expand's list is.
    assert "one" not in result.outputs
    assert result.outputs["review"] == ["first", "second", "third"]


def test_expand_over_more_items_than_max_children_fails(tmp_path: Path) -> None:
    workflow = compile_yaml(
        tmp_path,
        """\
        version: 1
        name: fan
        inputs: {n: {type: integer, default: 3}}
        roles: {w: {}}
        steps:
          kind: expand
          id: review
          over: "range(inputs.n) | list"
          as: item
          max_children: 2
          body: {kind: leaf, id: one, role: w, prompt: "{{ item }}"}
        """,
    )
    provider = CountingProvider(MockProvider())
    result = execute(workflow, provider, tmp_path)
    assert result.status is Status.FAILED
    assert "3 items, more than max_children 2" in (by_path(result)["review"].error or "")
    assert provider.requests == []


COND = """\
version: 1
name: choose
inputs: {n: {type: integer, default: 3}}
roles: {w: {}}
steps:
  kind: cond
  id: size
  if: "inputs.n > 2"
  then: {kind: leaf, id: big, role: w, prompt: "big"}
  else: {kind: leaf, id: small, role: w, prompt: "small"}
"""


@pytest.mark.parametrize(
    ("n", "taken", "other", "arm"), [("3", "big", "small", "then"), ("1", "small", "big", "else")]
)
def test_cond_takes_one_arm_and_records_the_other_skipped(
    tmp_path: Path, n: str, taken: str, other: str, arm: str
) -> None:
    workflow = compile_yaml(tmp_path, COND)
    provider = CountingProvider(mock(tmp_path, "nodes:\n  big: {reply: B}\n  small: {reply: S}\n"))
    result = execute(workflow, provider, tmp_path, inputs={"n": n})
    assert result.status is Status.SUCCEEDED
    nodes = by_path(result)
    assert result.output == nodes[taken].output == {"big": "B", "small": "S"}[taken]
    assert nodes[taken].status is Status.SUCCEEDED
    assert nodes[other].status is Status.SKIPPED
    assert nodes[other].attempts == 0
    assert f"took the {arm} arm" in (nodes[other].error or "")
    assert nodes["size"].decision == {"arm": arm, "value": arm == "then"}
    assert [r.node_id for r in provider.requests] == [taken]


def test_loop_until_stops_when_until_holds_and_sees_iteration(tmp_path: Path) -> None:
    workflow = compile_yaml(
        tmp_path,
        """\
        version: 1
        name: loop
        roles: {w: {}}
        steps:
          kind: loop_until
          id: refine
          max_iterations: 6
          until: "outputs.draft == 'done' or iteration >= 4"
          body: {kind: leaf, id: draft, role: w, prompt: "Draft number {{ iteration }}."}
        """,
    )
    provider = CountingProvider(mock(tmp_path, "nodes:\n  draft: {replies: [a, b, done, x]}\n"))
    result = execute(workflow, provider, tmp_path)
    assert result.status is Status.SUCCEEDED
    assert result.output == "done"
    assert order(result) == ["draft@0", "draft@1", "draft@2", "refine"]
    assert provider.prompts("draft") == [f"Draft number {i}." for i in range(3)]
    assert by_path(result)["refine"].decision == {"iterations": 3, "until": True}


def test_loop_until_ends_at_max_iterations(tmp_path: Path) -> None:
    workflow = compile_yaml(
        tmp_path,
        """\
        version: 1
        name: loop
        roles: {w: {}}
        steps:
          kind: loop_until
          id: refine
          max_iterations: 3
          until: "outputs.draft == 'never'"
          body: {kind: leaf, id: draft, role: w, prompt: "Draft {{ iteration }}."}
        """,
    )
    result = execute(workflow, MockProvider(), tmp_path)
    assert result.status is Status.SUCCEEDED
    assert by_path(result)["refine"].decision == {"iterations": 3, "until": False}
    assert [n.path for n in result.nodes if n.node_id == "draft"] == [
        "draft@0",
        "draft@1",
        "draft@2",
    ]


def test_reduce_by_expression_and_by_synthesis(tmp_path: Path) -> None:
    workflow = compile_yaml(
        tmp_path,
        """\
        version: 1
        name: fanin
        inputs: {files: {type: array, default: [a, b, c]}}
        roles: {w: {}}
        steps:
          kind: sequence
          id: main
          steps:
            - kind: expand
              id: review
              over: inputs.files
              as: file
              max_children: 5
              body:
                kind: leaf
                id: one
                role: w
                prompt: "{{ file }}"
                output: {type: object, properties: {ok: {type: boolean}}, required: [ok]}
            - kind: reduce
              id: count_ok
              inputs: [review]
              expr: "outputs.review | selectattr('ok') | list | length"
            - kind: reduce
              id: summary
              inputs: [review, count_ok]
              role: w
              prompt: "{{ outputs.count_ok }} of {{ outputs.review | length }} are ok."
        """,
    )
    script = """\
        nodes:
          "one[1]": {reply: {ok: false}}
          "one*": {reply: {ok: true}}
          summary: {reply: "two fine, one not"}
        """
    provider = CountingProvider(mock(tmp_path, script))
    result = execute(workflow, provider, tmp_path)
    assert result.status is Status.SUCCEEDED
    assert result.outputs["count_ok"] == 2
    assert result.output == "two fine, one not"
    assert provider.prompts("summary") == ["2 of 3 are ok."]
    assert by_path(result)["summary"].spend.calls == 1
    assert by_path(result)["count_ok"].spend.calls == 0


TOURNAMENT = """\
version: 1
name: contest
roles: {{w: {{}}, judge: {{}}}}
steps:
  kind: tournament
  id: pick
  count: 3
  {extra}
  body: {{kind: leaf, id: cand, role: w, prompt: "Attempt {{{{ sample }}}}."}}
  judge: {{role: judge, prompt: "Score this: {{{{ candidate }}}}"}}
"""
JUDGE_SCRIPT = """\
nodes:
  "cand[0]": {reply: zero}
  "cand[1]": {reply: one}
  "cand[2]": {reply: two}
  "pick/judge[0]": {score: 0.2}
  "pick/judge[1]": {score: 0.9}
  "pick/judge[2]": {reply: {score: 0.5, why: fine}}
"""


def test_tournament_judges_each_candidate_and_harvests_the_losers(tmp_path: Path) -> None:
    workflow = compile_yaml(tmp_path, TOURNAMENT.format(extra=""))
    provider = CountingProvider(mock(tmp_path, JUDGE_SCRIPT))
    result = execute(workflow, provider, tmp_path)
    assert result.status is Status.SUCCEEDED, result.reason
    assert result.output == {
        "winner": "one",
        "index": 1,
        "score": 0.9,
        "harvest": [
            {"index": 0, "output": "zero", "score": 0.2},
            {"index": 2, "output": "two", "score": 0.5},
        ],
    }
    decision = by_path(result)["pick"].decision
    assert decision["scores"] == {"0": 0.2, "1": 0.9, "2": 0.5}
    assert decision["winner"] == 1
    assert provider.prompts("cand[2]") == ["Attempt 2."]
    assert provider.prompts("pick/judge[1]") == ["Score this: one"]
    assert {r.sample for r in provider.requests if r.node_id.startswith("cand")} == {0, 1, 2}
    assert by_path(result)["pick"].spend.calls == 3  # the judges; candidates count their own


def test_tournament_without_a_candidate_at_min_score_fails(tmp_path: Path) -> None:
    workflow = compile_yaml(tmp_path, TOURNAMENT.format(extra="min_score: 0.95"))
    result = execute(workflow, mock(tmp_path, JUDGE_SCRIPT), tmp_path)
    assert result.status is Status.FAILED
    pick = by_path(result)["pick"]
    assert pick.status is Status.FAILED
    assert "no candidate reached min_score 0.95 (best 0.9)" in (pick.error or "")


@pytest.mark.parametrize(("ordering", "winner"), [("cost_then_score", 1), ("score_then_cost", 0)])
def test_tournament_ordering_weighs_what_candidates_cost(
    tmp_path: Path, ordering: str, winner: int
) -> None:
    config_path = tmp_path / "branchleaf.yaml"
    config_path.write_text(
        textwrap.dedent(
            """\
            providers:
              priced:
                type: mock
                models:
                  m: {price: {input_per_mtok: 1000, output_per_mtok: 1000}}
            roles:
              default: {provider: priced, model: m}
            """
        ),
        encoding="utf-8",
    )
    config = load_config(str(config_path))
    workflow = compile_yaml(
        tmp_path,
        f"""\
        version: 1
        name: cheap
        roles: {{w: {{}}}}
        steps:
          kind: tournament
          id: pick
          ordering: {ordering}
          candidates:
            - {{kind: leaf, id: long, role: w, prompt: "Write a lot."}}
            - {{kind: leaf, id: short, role: w, prompt: "Write a little."}}
          score: "candidate | length"
        """,
    )
    script = tmp_path / "script.yaml"
    script.write_text(f"nodes:\n  long: {{reply: {'x' * 400}}}\n  short: {{reply: y}}\n")
    providers = build_providers(config, ["w"], mock_script=str(script))
    assert set(providers) == {"priced"}
    result = execute(workflow, providers["priced"], tmp_path, config=config)
    assert result.status is Status.SUCCEEDED, result.reason
    assert result.output["index"] == winner
    assert result.output["winner"] == ["x" * 400, "y"][winner]
    assert by_path(result)["long"].spend.cost_usd > by_path(result)["short"].spend.cost_usd > 0
    assert result.spend.cost_usd == pytest.approx(
        by_path(result)["long"].spend.cost_usd + by_path(result)["short"].spend.cost_usd
    )


def test_pareto_keeps_the_frontier_over_its_objectives(tmp_path: Path) -> None:
    workflow = compile_yaml(
        tmp_path,
        """\
        version: 1
        name: front
        roles: {w: {}}
        steps:
          kind: pareto
          id: front
          count: 4
          body:
            kind: leaf
            id: option
            role: w
            prompt: "Option {{ sample }}."
            output:
              type: object
              properties: {quality: {type: integer}, cost: {type: integer}}
              required: [quality, cost]
          objectives:
            - {name: quality, expr: "candidate.quality", goal: max}
            - {name: cost, expr: "candidate.cost", goal: min}
        """,
    )
    script = """\
        nodes:
          "option[0]": {reply: {quality: 5, cost: 5}}
          "option[1]": {reply: {quality: 3, cost: 1}}
          "option[2]": {reply: {quality: 2, cost: 6}}
          "option[3]": {reply: {quality: 6, cost: 9}}
        """
    result = execute(workflow, mock(tmp_path, script), tmp_path)
    assert result.status is Status.SUCCEEDED, result.reason
    assert result.output["indices"] == [0, 1, 3]
    assert result.output["frontier"][1] == {"quality": 3, "cost": 1}
    assert result.output["values"][1] == {"quality": 3.0, "cost": 1.0}
    # Option 2 is worse than option 0 on both objectives.
    assert [entry["index"] for entry in result.output["harvest"]] == [2]
    assert by_path(result)["front"].decision == {"frontier": [0, 1, 3], "candidates": 4}


LESSON = {
    "id": "shorter-prompts",
    "kind": "prompt_patch",
    "target": "node:draft",
    "content": {"op": "append", "text": "Ask for one sentence."},
    "rationale": "The drafts rambled.",
    "evidence": [{"run": "current", "node": "draft"}],
}


def teacher_workflow(tmp_path: Path) -> ir.Workflow:
    return compile_yaml(
        tmp_path,
        """\
        version: 1
        name: teach
        roles: {w: {}, teacher: {}}
        steps:
          kind: sequence
          id: main
          steps:
            - {kind: leaf, id: draft, role: w, prompt: "Draft."}
            - {kind: teacher_review, id: review, inputs: [draft], prompt: "Be brief."}
        """,
    )


def test_teacher_review_proposes_valid_lessons_from_its_inputs(tmp_path: Path) -> None:
    reply = json.dumps({"lessons": [LESSON]})
    script = f"nodes:\n  draft: {{reply: rambling text}}\n  review: {{reply: {reply}}}\n"
    provider = CountingProvider(mock(tmp_path, script))
    result = execute(teacher_workflow(tmp_path), provider, tmp_path)
    assert result.status is Status.SUCCEEDED, result.reason
    assert result.output == {"lessons": [LESSON]}
    assert list(Draft202012Validator(TEACHER_REPLY_SCHEMA).iter_errors(result.output)) == []
    assert by_path(result)["review"].decision == {"lessons": 1}
    [prompt] = provider.prompts("review")
    assert '"draft": "rambling text"' in prompt
    assert prompt.endswith("Be brief.")
    assert provider.requests[-1].role == "teacher"


def test_teacher_review_unscripted_and_invalid_lessons(tmp_path: Path) -> None:
    result = execute(teacher_workflow(tmp_path), MockProvider(), tmp_path)
    assert result.status is Status.SUCCEEDED
    assert list(Draft202012Validator(TEACHER_REPLY_SCHEMA).iter_errors(result.output)) == []

    bad = {"lessons": [{**LESSON, "kind": "vibes"}]}
    provider = mock(tmp_path, f"nodes:\n  review: {{reply: {json.dumps(bad)}}}\n")
    result = execute(teacher_workflow(tmp_path), provider, tmp_path)
    assert result.status is Status.FAILED
    assert "/lessons/0/kind" in (by_path(result)["review"].error or "")


# -- concurrency bounds -----------------------------------------------------------------------


def fan_of(count: int, *, run_level: str, node_level: str = "") -> str:
    return f"""\
        version: 1
        name: wide
        inputs: {{n: {{type: integer, default: {count}}}}}
        roles: {{w: {{}}}}
        concurrency: {run_level}
        steps:
          kind: expand
          id: fan
          over: "range(inputs.n) | list"
          as: item
          max_children: {count}
          {node_level}
          body: {{kind: leaf, id: one, role: w, prompt: "Item {{{{ item }}}}."}}
        """


@pytest.mark.parametrize(
    ("run_level", "node_level", "bound"),
    [
        ("{leaves: 4}", "", 4),
        ("{leaves: 4}", "concurrency: {leaves: 2}", 2),
        ("{branches: 3}", "", 3),
        ("{leaves: 8}", "concurrency: {branches: 5}", 5),
    ],
)
def test_concurrency_bounds_are_reached_and_never_exceeded(
    tmp_path: Path, run_level: str, node_level: str, bound: int
) -> None:
    workflow = compile_yaml(tmp_path, fan_of(30, run_level=run_level, node_level=node_level))
    provider = CountingProvider(mock(tmp_path, "defaults: {latency_ms: 20}\n"))
    result = execute(workflow, provider, tmp_path)
    assert result.status is Status.SUCCEEDED
    assert len(provider.requests) == 30
    assert provider.max_in_flight == bound
    assert len(result.output) == 30


def test_the_run_bound_holds_across_nodes_with_looser_bounds_of_their_own(
    tmp_path: Path,
) -> None:
    workflow = compile_yaml(
        tmp_path,
        """\
        version: 1
        name: nested
        roles: {w: {}}
        concurrency: {leaves: 4}
        steps:
          kind: branch
          id: both
          children:
            - kind: expand
              id: left
              over: "range(10) | list"
              as: i
              max_children: 10
              concurrency: {leaves: 3}
              body: {kind: leaf, id: l, role: w, prompt: "L{{ i }}"}
            - kind: expand
              id: right
              over: "range(10) | list"
              as: i
              max_children: 10
              concurrency: {leaves: 3}
              body: {kind: leaf, id: r, role: w, prompt: "R{{ i }}"}
        """,
    )
    provider = CountingProvider(mock(tmp_path, "defaults: {latency_ms: 20}\n"))
    result = execute(workflow, provider, tmp_path)
    assert result.status is Status.SUCCEEDED
    assert len(provider.requests) == 20
    assert provider.max_in_flight == 4


def test_wide_fan_outs_of_leaves_keep_every_bound_order_and_failure(tmp_path: Path) -> None:
    # 60 leaves under a bound of 3 run through a pool of workers rather than a task each.
    workflow = compile_yaml(
        tmp_path,
        """\
        version: 1
        name: pooled
        roles: {w: {}}
        concurrency: {leaves: 4}
        steps:
          kind: branch
          id: both
          children:
            - kind: expand
              id: left
              over: "range(60) | list"
              as: i
              max_children: 60
              concurrency: {leaves: 3}
              body: {kind: leaf, id: l, role: w, prompt: "L{{ i }}"}
            - kind: expand
              id: right
              over: "range(60) | list"
              as: i
              max_children: 60
              concurrency: {leaves: 3}
              body: {kind: leaf, id: r, role: w, prompt: "R{{ i }}"}
        """,
    )
    provider = CountingProvider(
        mock(
            tmp_path,
            """\
            defaults: {latency_ms: 2}
            nodes:
              "l*": {replies: ["left"]}
              "r[41]": {errors: [500, 500, 500, 500, 500]}
            """,
        )
    )
    result = execute(workflow, provider, tmp_path)
    assert provider.max_in_flight == 4
    assert result.status is Status.FAILED
    nodes = by_path(result)
    assert nodes["left"].status is Status.SUCCEEDED
    assert nodes["left"].output == ["left"] * 60
    assert nodes["r[41]"].status is Status.FAILED
    assert nodes["right"].error == "1 of 60 children did not succeed"
    assert sum(1 for n in result.nodes if n.node_id == "r" and n.status is Status.SUCCEEDED) == 59


def test_commands_share_the_leaf_bound(tmp_path: Path) -> None:
    log = tmp_path / "log"
    workflow = compile_yaml(
        tmp_path,
        f"""\
        version: 1
        name: cmds
        concurrency: {{leaves: 2}}
        permissions: {{commands: ["sh -c *"]}}
        steps:
          kind: expand
          id: fan
          over: "range(6) | list"
          as: i
          max_children: 6
          body:
            kind: command
            id: step
            run: ["sh", "-c", "echo + >> {log}; sleep 0.1; echo - >> {log}"]
        """,
    )
    result = execute(workflow, MockProvider(), tmp_path)
    assert result.status is Status.SUCCEEDED
    depth = peak = 0
    for mark in log.read_text().split():
        depth += 1 if mark == "+" else -1
        peak = max(peak, depth)
    assert peak == 2


# -- no barrier -------------------------------------------------------------------------------


def test_a_slow_branch_never_holds_back_a_fast_one(tmp_path: Path) -> None:
    workflow = compile_yaml(
        tmp_path,
        """\
        version: 1
        name: nobarrier
        roles: {w: {}}
        steps:
          kind: branch
          id: both
          children:
            - kind: sequence
              id: slow_side
              steps:
                - {kind: leaf, id: slow, role: w, prompt: "slow"}
            - kind: sequence
              id: fast_side
              steps:
                - {kind: leaf, id: fast1, role: w, prompt: "fast 1"}
                - {kind: leaf, id: fast2, role: w, prompt: "fast 2: {{ outputs.fast1 }}"}
        """,
    )
    script = "nodes:\n  slow: {latency_ms: 300}\n  fast*: {latency_ms: 10}\n"
    result = execute(workflow, mock(tmp_path, script), tmp_path)
    assert result.status is Status.SUCCEEDED
    ended = order(result)
    assert ended.index("fast2") < ended.index("slow")
    assert ended.index("fast_side") < ended.index("slow")
    assert ended[-1] == "both"


# -- cancellation -----------------------------------------------------------------------------


def test_halt_cancels_everything_in_flight_and_waits_for_it(tmp_path: Path) -> None:
    sleep_argv = ["sleep", "5.25"]
    workflow = compile_yaml(
        tmp_path,
        """\
        version: 1
        name: halted
        roles: {w: {}}
        permissions: {commands: ["sleep *"]}
        steps:
          kind: branch
          id: all
          children:
            - {kind: command, id: nap, run: ["sleep", "5.25"]}
            - kind: expand
              id: fan
              over: "range(3) | list"
              as: i
              max_children: 3
              body: {kind: leaf, id: slow, role: w, prompt: "{{ i }}"}
        """,
    )
    provider = CountingProvider(mock(tmp_path, "defaults: {latency_ms: 5000}\n"))
    seen: list[int] = []

    halted: list[float] = []

    async def scenario() -> tuple[RunResult, set[asyncio.Task[Any]], float]:
        engine = engine_for(workflow, provider, tmp_path)

        async def halter() -> None:
            await asyncio.sleep(0.1)
            deadline = time.monotonic() + 5
            while not seen and time.monotonic() < deadline:
                seen.extend(children_running(sleep_argv))
                await asyncio.sleep(0.01)
            halted.append(time.monotonic())
            engine.halt(Status.CANCELLED, "test")

        halting = asyncio.create_task(halter())
        result = await engine.run({})
        returned = time.monotonic()
        left = asyncio.all_tasks() - {asyncio.current_task(), halting}
        await halting
        return result, left, returned - halted[0]

    result, left, stopping = asyncio.run(scenario())
    assert stopping < 2.0
    assert result.status is Status.CANCELLED
    assert result.reason == "test"
    assert left == set()
    assert len(seen) == 1, "the sleep command was not running when the halt came"
    assert not alive(seen[0])
    assert provider.in_flight == 0
    nodes = by_path(result)
    assert set(nodes) == {"nap", "slow[0]", "slow[1]", "slow[2]", "fan", "all"}
    assert all(node.status is Status.CANCELLED for node in nodes.values())
    assert nodes["nap"].error == "test"


def test_halt_before_anything_finishes_with_a_sequence_root(tmp_path: Path) -> None:
    workflow = compile_yaml(
        tmp_path,
        """\
        version: 1
        name: halted
        roles: {w: {}}
        steps:
          kind: sequence
          id: main
          steps:
            - {kind: leaf, id: first, role: w, prompt: "1"}
            - {kind: leaf, id: second, role: w, prompt: "2"}
        """,
    )
    provider = CountingProvider(mock(tmp_path, "defaults: {latency_ms: 5000}\n"))

    async def scenario() -> RunResult:
        engine = engine_for(workflow, provider, tmp_path)
        asyncio.get_running_loop().call_later(0.05, engine.halt, Status.CANCELLED, "stop")
        result = await engine.run({})
        await asyncio.sleep(0)  # the caller's task carries on normally
        return result

    result = asyncio.run(scenario())
    assert result.status is Status.CANCELLED
    assert order(result) == ["first", "main"]
    assert [r.node_id for r in provider.requests] == ["first"]


FAIL_FAST = """\
version: 1
name: fast
roles: {w: {}}
permissions: {commands: ["sh -c *"]}
steps:
  kind: branch
  id: both
  fail_fast: true
  children:
    - {kind: command, id: broken, run: ["sh", "-c", "exit 1"]}
    - {kind: leaf, id: slow, role: w, prompt: "s"}
"""


def test_fail_fast_cancels_the_siblings_of_a_failed_child(tmp_path: Path) -> None:
    provider = CountingProvider(mock(tmp_path, "nodes:\n  slow: {latency_ms: 5000}\n"))
    started = time.monotonic()
    result = execute(compile_yaml(tmp_path, FAIL_FAST), provider, tmp_path)
    assert time.monotonic() - started < 2.0
    nodes = by_path(result)
    assert nodes["broken"].status is Status.FAILED
    assert nodes["slow"].status is Status.CANCELLED
    assert nodes["both"].status is Status.FAILED
    assert provider.in_flight == 0


PARENT_TIMEOUT = """\
version: 1
name: outer
roles: {w: {}}
steps:
  kind: sequence
  id: outer
  timeout_s: 0.1
  steps:
    - {kind: leaf, id: slow, role: w, prompt: "s"}
"""


@pytest.mark.parametrize(
    ("source", "why"),
    [(FAIL_FAST, "exited with 1"), (PARENT_TIMEOUT, "timed out after 0.1 s")],
    ids=["fail_fast", "parent_timeout"],
)
def test_a_cancellation_inside_the_run_leaves_the_run_failed(
    tmp_path: Path, source: str, why: str
) -> None:
    provider = mock(tmp_path, "nodes:\n  slow: {latency_ms: 5000}\n")
    result = execute(compile_yaml(tmp_path, source), provider, tmp_path)
    assert by_path(result)["slow"].status is Status.CANCELLED
    assert result.status is Status.FAILED
    assert why in (result.reason or "")


def test_a_node_timeout_fails_each_attempt(tmp_path: Path) -> None:
    workflow = compile_yaml(
        tmp_path,
        """\
        version: 1
        name: timed
        roles: {w: {}}
        steps:
          kind: leaf
          id: slow
          role: w
          prompt: "s"
          timeout_s: 0.05
          retry: {attempts: 2}
        """,
    )
    provider = CountingProvider(mock(tmp_path, "nodes:\n  slow: {latency_ms: 5000}\n"))
    result = execute(workflow, provider, tmp_path)
    assert result.status is Status.FAILED
    node = by_path(result)["slow"]
    assert (node.attempts, node.error) == (2, "timed out after 0.05 s")
    assert len(provider.requests) == 2
    assert provider.in_flight == 0


# -- budgets ----------------------------------------------------------------------------------


def test_a_call_whose_worst_case_does_not_fit_never_reaches_the_provider(
    tmp_path: Path,
) -> None:
    workflow = compile_yaml(
        tmp_path,
        """\
        version: 1
        name: tight
        roles: {w: {}}
        budget: {tokens: 100}
        steps:
          kind: branch
          id: both
          children:
            - {kind: leaf, id: small, role: w, prompt: "hi", max_tokens: 10}
            - {kind: leaf, id: big, role: w, prompt: "hello", max_tokens: 500}
        """,
    )
    provider = CountingProvider(mock(tmp_path, "nodes:\n  small: {latency_ms: 200}\n"))
    result = execute(workflow, provider, tmp_path)
    assert result.status is Status.BUDGET_EXCEEDED
    assert [r.node_id for r in provider.requests] == ["small"]
    nodes = by_path(result)
    assert nodes["big"].status is Status.BUDGET_EXCEEDED
    assert nodes["big"].spend.calls == 0
    # 502 for its own worst case plus 11 still held by the sibling in flight.
    assert "budget.tokens of the run would be exceeded: 513 needed, limit 100" in (
        result.reason or ""
    )
    # The stop cancels the sibling still in flight.
    assert nodes["small"].status is Status.CANCELLED
    assert provider.in_flight == 0


def test_a_node_budget_binds_its_subtree(tmp_path: Path) -> None:
    workflow = compile_yaml(
        tmp_path,
        """\
        version: 1
        name: nodebudget
        roles: {w: {}}
        budget: {tokens: 100000}
        steps:
          kind: branch
          id: all
          children:
            - {kind: leaf, id: free, role: w, prompt: "free", max_tokens: 5000}
            - kind: sequence
              id: capped
              budget: {tokens: 1000}
              steps:
                - {kind: leaf, id: fits, role: w, prompt: "ok", max_tokens: 100}
                - {kind: leaf, id: greedy, role: w, prompt: "more", max_tokens: 5000}
        """,
    )
    provider = CountingProvider(mock(tmp_path, "nodes:\n  free: {latency_ms: 100}\n"))
    result = execute(workflow, provider, tmp_path)
    assert result.status is Status.BUDGET_EXCEEDED
    assert "greedy" not in {r.node_id for r in provider.requests}
    assert {"free", "fits"} <= {r.node_id for r in provider.requests}
    nodes = by_path(result)
    assert nodes["fits"].status is Status.SUCCEEDED
    assert nodes["greedy"].status is Status.BUDGET_EXCEEDED
    assert "budget.tokens of sequence 'capped' would be exceeded" in (nodes["greedy"].error or "")


def test_wall_seconds_stop_a_slow_run(tmp_path: Path) -> None:
    workflow = compile_yaml(
        tmp_path,
        """\
        version: 1
        name: slow
        roles: {w: {}}
        budget: {wall_s: 0.2}
        steps:
          kind: sequence
          id: main
          steps:
            - {kind: leaf, id: quick, role: w, prompt: "q"}
            - {kind: leaf, id: crawl, role: w, prompt: "c"}
        """,
    )
    provider = CountingProvider(mock(tmp_path, "nodes:\n  crawl: {latency_ms: 5000}\n"))
    started = time.monotonic()
    result = execute(workflow, provider, tmp_path)
    assert time.monotonic() - started < 2.0
    assert result.status is Status.BUDGET_EXCEEDED
    assert result.reason == "budget.wall_s 0.2 s ran out"
    nodes = by_path(result)
    assert nodes["quick"].status is Status.SUCCEEDED
    assert nodes["crawl"].status is Status.CANCELLED
    assert provider.in_flight == 0


def test_a_budget_stop_in_the_runs_own_task_leaves_the_caller_usable(tmp_path: Path) -> None:
    workflow = compile_yaml(
        tmp_path,
        """\
        version: 1
        name: tight
        roles: {w: {}}
        budget: {tokens: 10}
        steps:
          kind: sequence
          id: main
          steps:
            - {kind: leaf, id: big, role: w, prompt: "hello", max_tokens: 500}
        """,
    )

    async def scenario() -> tuple[RunResult, int]:
        engine = engine_for(workflow, MockProvider(), tmp_path)
        result = await engine.run({})
        pending = asyncio.current_task().cancelling()  # type: ignore[union-attr]
        await asyncio.sleep(0)
        return result, pending

    result, pending = asyncio.run(scenario())
    assert result.status is Status.BUDGET_EXCEEDED
    assert pending == 0


# -- first terminal signal wins ---------------------------------------------------------------


class CancelAfterBudgetStop:
    """Observer that asks for a cancellation right after a node ends over budget."""

    def __init__(self) -> None:
        self.engine: Engine | None = None
        self.later_signals: dict[str, int] = {}
        """Node path -> terminal signals ignored by the time it ended."""

    def started(self, path: str, node: ir.Node) -> None:
        pass

    def finished(self, result: NodeResult) -> None:
        assert self.engine is not None
        self.later_signals[result.path] = len(self.engine.stop.later)
        if result.status is Status.BUDGET_EXCEEDED:
            # The budget stop itself is signalled after this call returns; cancel after it.
            asyncio.get_running_loop().call_soon(self.engine.halt, Status.CANCELLED, "late")


def test_the_first_terminal_signal_wins(tmp_path: Path) -> None:
    workflow = compile_yaml(
        tmp_path,
        """\
        version: 1
        name: first
        roles: {w: {}}
        budget: {tokens: 100}
        steps:
          kind: branch
          id: both
          children:
            - {kind: leaf, id: slow, role: w, prompt: "s", max_tokens: 10}
            - {kind: leaf, id: big, role: w, prompt: "b", max_tokens: 500}
        """,
    )
    observer = CancelAfterBudgetStop()
    engine = engine_for(
        workflow,
        mock(tmp_path, "nodes:\n  slow: {latency_ms: 2000}\n"),
        tmp_path,
        observer=observer,
    )
    observer.engine = engine

    async def scenario() -> RunResult:
        result = await engine.run({})
        engine.halt(Status.CANCELLED, "after the end")
        return result

    result = asyncio.run(scenario())
    assert result.status is Status.BUDGET_EXCEEDED
    assert "budget.tokens" in (result.reason or "")
    assert engine.stop.status is Status.BUDGET_EXCEEDED
    assert engine.stop.later == [(Status.CANCELLED, "late"), (Status.CANCELLED, "after the end")]
    # The cancellation arrived while the run was still unwinding, not after it.
    assert observer.later_signals == {"big": 0, "slow": 1, "both": 1}
    assert by_path(result)["slow"].error == result.reason


# -- retries ----------------------------------------------------------------------------------


def test_transient_provider_errors_are_retried(tmp_path: Path) -> None:
    workflow = compile_yaml(
        tmp_path,
        """\
        version: 1
        name: flaky
        roles: {w: {}}
        steps: {kind: leaf, id: flaky, role: w, prompt: "try"}
        """,
    )
    provider = CountingProvider(
        mock(tmp_path, "nodes:\n  flaky: {errors: [429, 500], reply: ok}\n")
    )
    result = execute(workflow, provider, tmp_path)
    assert result.status is Status.SUCCEEDED
    assert result.output == "ok"
    assert len(provider.requests) == 3
    node = by_path(result)["flaky"]
    assert node.attempts == 1  # provider retries are not node retries
    assert node.spend.calls == 1


def test_provider_errors_that_persist_fail_the_leaf_clearly(tmp_path: Path) -> None:
    workflow = compile_yaml(
        tmp_path,
        """\
        version: 1
        name: flaky
        roles: {w: {}}
        steps: {kind: leaf, id: flaky, role: w, prompt: "try"}
        """,
    )
    script = 'nodes:\n  flaky: {errors: ["timeout", "timeout", "timeout", "timeout", "timeout"]}\n'
    provider = CountingProvider(mock(tmp_path, script))
    result = execute(workflow, provider, tmp_path)
    assert result.status is Status.FAILED
    assert len(provider.requests) == 4  # the first call and three retries
    gave_up = "mock script: call 4 of flaky timed out (gave up after 4 attempts)"
    assert by_path(result)["flaky"].error == gave_up
    assert result.reason == gave_up


def test_node_retry_runs_a_failing_command_again(tmp_path: Path) -> None:
    script = tmp_path / "flaky.sh"
    script.write_text(
        "if [ -f marker ]; then echo second; exit 0; fi\n"
        "touch marker\necho first failure >&2\nexit 1\n"
    )
    workflow = compile_yaml(
        tmp_path,
        """\
        version: 1
        name: retried
        permissions: {commands: ["sh flaky.sh"]}
        steps:
          kind: command
          id: flaky
          run: ["sh", "flaky.sh"]
          retry: {attempts: 2, backoff_s: 0.01}
        """,
    )
    result = execute(workflow, MockProvider(), tmp_path)
    assert result.status is Status.SUCCEEDED
    node = by_path(result)["flaky"]
    assert node.attempts == 2
    assert node.output == {"exit_code": 0, "stdout": "second\n", "stderr": ""}


def test_node_retry_gives_up_after_its_attempts(tmp_path: Path) -> None:
    workflow = compile_yaml(
        tmp_path,
        """\
        version: 1
        name: retried
        permissions: {commands: ["sh -c *"]}
        steps:
          kind: command
          id: always
          run: ["sh", "-c", "echo x >> tries; exit 2"]
          retry: {attempts: 3}
        """,
    )
    result = execute(workflow, MockProvider(), tmp_path)
    assert result.status is Status.FAILED
    assert by_path(result)["always"].attempts == 3
    assert (tmp_path / "tries").read_text() == "x\nx\nx\n"


# -- stuck loops ------------------------------------------------------------------------------


def test_a_loop_that_changes_nothing_ends_stuck(tmp_path: Path) -> None:
    workflow = compile_yaml(
        tmp_path,
        """\
        version: 1
        name: stuck
        roles: {w: {}}
        steps:
          kind: loop_until
          id: spin
          max_iterations: 10
          until: "outputs.same == 'never'"
          body: {kind: leaf, id: same, role: w, prompt: "Improve it."}
        """,
    )
    provider = CountingProvider(MockProvider())
    result = execute(workflow, provider, tmp_path)
    assert result.status is Status.STUCK
    assert order(result) == ["same@0", "same@1", "spin"]
    assert len(provider.requests) == 2
    spin = by_path(result)["spin"]
    assert spin.status is Status.STUCK
    assert spin.error == "iteration 1 left every output as iteration 0 had it"


def test_a_loop_repeating_the_same_leaf_request_ends_stuck(tmp_path: Path) -> None:
    workflow = compile_yaml(
        tmp_path,
        """\
        version: 1
        name: repeat
        roles: {w: {}}
        steps:
          kind: loop_until
          id: spin
          max_iterations: 6
          until: "outputs.ask == 'never'"
          body:
            kind: sequence
            id: body
            steps:
              - {kind: leaf, id: note, role: w, prompt: "Note {{ iteration }}."}
              - {kind: leaf, id: ask, role: w, prompt: "The same question."}
        """,
    )
    provider = CountingProvider(MockProvider())
    result = execute(workflow, provider, tmp_path)
    assert result.status is Status.STUCK
    nodes = by_path(result)
    assert nodes["spin"].status is Status.STUCK
    # The third identical request stops the loop in its third iteration.
    assert nodes["ask@2"].status is Status.STUCK
    assert "note@3" not in nodes
    assert len(provider.prompts("ask")) <= 3
    # Every call made is paid for, the one that showed the loop stuck too.
    made = len(provider.prompts("ask")) + len(provider.prompts("note"))
    assert result.spend.calls == made
    assert nodes["ask@2"].spend.calls == 1


# -- worktree isolation -----------------------------------------------------------------------


def worktree_workflow(tmp_path: Path, isolation: str, right_exit: int = 0) -> ir.Workflow:
    return compile_yaml(
        tmp_path,
        f"""\
        version: 1
        name: isolated
        permissions: {{commands: ["sh -c *"]}}
        steps:
          kind: branch
          id: both
          isolation: {isolation}
          children:
            - kind: command
              id: left
              run: ["sh", "-c", "echo left > left.txt && sleep 0.2 && ls"]
            - kind: command
              id: right
              run: ["sh", "-c", "echo right > right.txt && sleep 0.2 && ls; exit {right_exit}"]
        """,
    )


def assert_no_worktrees_left(repo: Path) -> None:
    listing = git(repo, "worktree", "list", "--porcelain")
    assert [line for line in listing.splitlines() if line.startswith("worktree ")] == [
        f"worktree {repo.resolve()}"
    ]
    base = repo / ".branchleaf" / "worktrees"
    assert not base.exists() or list(base.iterdir()) == []


def test_worktree_children_see_only_their_own_files(tmp_path: Path, repo: Path) -> None:
    workflow = worktree_workflow(tmp_path, "worktree")
    result = execute(workflow, MockProvider(), repo)
    assert result.status is Status.SUCCEEDED, result.reason
    assert result.output["left"]["stdout"].split() == ["README.md", "left.txt"]
    assert result.output["right"]["stdout"].split() == ["README.md", "right.txt"]
    assert not (repo / "left.txt").exists()
    assert not (repo / "right.txt").exists()
    assert_no_worktrees_left(repo)


def test_shared_children_see_each_other(tmp_path: Path, repo: Path) -> None:
    result = execute(worktree_workflow(tmp_path, "shared"), MockProvider(), repo)
    assert result.status is Status.SUCCEEDED
    assert {"left.txt", "right.txt"} <= set(result.output["left"]["stdout"].split())
    assert (repo / "left.txt").exists()


def test_worktrees_are_removed_after_a_failing_child(tmp_path: Path, repo: Path) -> None:
    workflow = worktree_workflow(tmp_path, "worktree", right_exit=3)
    result = execute(workflow, MockProvider(), repo)
    assert result.status is Status.FAILED
    nodes = by_path(result)
    assert nodes["left"].status is Status.SUCCEEDED
    assert nodes["right"].status is Status.FAILED
    assert "exited with 3" in (nodes["right"].error or "")
    assert_no_worktrees_left(repo)


def test_worktree_isolation_outside_a_repository_says_why_the_children_failed(
    tmp_path: Path,
) -> None:
    workspace = tmp_path / "plain"
    workspace.mkdir()
    result = execute(worktree_workflow(tmp_path, "worktree"), MockProvider(), workspace)
    assert result.status is Status.FAILED
    assert not (workspace / "left.txt").exists()
    nodes = by_path(result)
    assert set(nodes) == {"left", "right", "both"}
    assert nodes["left"].status is Status.FAILED
    assert "not a git repository" in (nodes["left"].error or "")


def test_halt_removes_the_worktrees_of_children_in_flight(tmp_path: Path, repo: Path) -> None:
    workflow = compile_yaml(
        tmp_path,
        """\
        version: 1
        name: halted
        permissions: {commands: ["sleep *"]}
        steps:
          kind: branch
          id: both
          isolation: worktree
          children:
            - {kind: command, id: left, run: ["sleep", "5"]}
            - {kind: command, id: right, run: ["sleep", "5"]}
        """,
    )
    registered: list[int] = []

    async def scenario() -> RunResult:
        engine = engine_for(workflow, MockProvider(), repo)

        async def halter() -> None:
            # Halt once both children run in their worktrees.
            base = repo / ".branchleaf" / "worktrees"
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and len(children_running(["sleep", "5"])) < 2:
                await asyncio.sleep(0.02)
            registered.append(len(list(base.iterdir())))
            engine.halt(Status.CANCELLED, "test")

        halting = asyncio.create_task(halter())
        result = await engine.run({})
        await halting
        return result

    result = asyncio.run(scenario())
    assert registered == [2]
    assert result.status is Status.CANCELLED
    assert {n.path: n.status for n in result.nodes} == {
        "left": Status.CANCELLED,
        "right": Status.CANCELLED,
        "both": Status.CANCELLED,
    }
    assert_no_worktrees_left(repo)


# -- workflow tests ---------------------------------------------------------------------------


def test_workflow_tests_see_outputs_and_inputs(tmp_path: Path) -> None:
    workflow = compile_yaml(
        tmp_path,
        """\
        version: 1
        name: tested
        inputs: {n: {type: integer, default: 2}}
        roles: {w: {}}
        steps:
          kind: expand
          id: fan
          over: "range(inputs.n) | list"
          as: i
          max_children: 5
          body: {kind: leaf, id: one, role: w, prompt: "{{ i }}"}
        tests:
          - {name: one output per item, expect: "outputs.fan | length == inputs.n"}
          - {name: exactly three, expect: "outputs.fan | length == 3"}
          - {name: a fourth item, expect: "outputs.fan[3] | length > 0"}
        """,
    )
    result = execute(workflow, MockProvider(), tmp_path, inputs={"n": "3"})
    assert result.status is Status.SUCCEEDED
    assert [(t.name, t.passed, t.message) for t in result.tests[:2]] == [
        ("one output per item", True, None),
        ("exactly three", True, None),
    ]
    # An expectation that cannot be evaluated fails with the reason instead of crashing.
    assert not result.tests[2].passed
    assert result.tests[2].message == (
        "`outputs.fan[3]` is undefined: `outputs.fan` has 3 items, indexes 0 to 2"
    )
    assert not result.passed

    result = execute(workflow, MockProvider(), tmp_path)
    assert result.status is Status.SUCCEEDED
    assert [t.passed for t in result.tests] == [True, False, False]
    assert result.tests[1].message == "expected 'outputs.fan | length == 3' to hold, got 2 == 3"
    assert not result.passed


def test_a_failed_comparison_shows_what_it_compared_without_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BL_API_TOKEN", "tok-0123456789")
    workflow = compile_yaml(
        tmp_path,
        """\
        version: 1
        name: compared
        env: [BL_API_TOKEN]
        roles: {w: {}}
        steps: {kind: leaf, id: one, role: w, prompt: "hi"}
        tests:
          - {name: the token, expect: "env.BL_API_TOKEN == 'expected'"}
          - {name: a typo, expect: "outputs.one.lenght > 0"}
        """,
    )
    result = execute(workflow, MockProvider(), tmp_path)
    assert [t.message for t in result.tests] == [
        "expected \"env.BL_API_TOKEN == 'expected'\" to hold, got '[redacted]' == 'expected'",
        "`outputs.one.lenght` is undefined: `outputs.one` is text, which has no `lenght`",
    ]


# -- failures that must not escape the run ----------------------------------------------------


def test_a_command_that_cannot_start_fails_its_node(tmp_path: Path) -> None:
    workflow = compile_yaml(
        tmp_path,
        """\
        version: 1
        name: missing
        permissions: {commands: ["*"]}
        steps:
          kind: sequence
          id: main
          steps:
            - {kind: command, id: nowhere, run: ["no-such-program-for-branchleaf"]}
        """,
    )
    result = execute(workflow, MockProvider(), tmp_path)
    assert result.status is Status.FAILED
    node = by_path(result)["nowhere"]
    assert node.status is Status.FAILED
    assert "was not found" in (node.error or "")


@pytest.mark.parametrize(
    ("judge_script", "why"),
    [
        ('{reply: "not a number"}', "the reply is not JSON"),
        ("{errors: [500, 500, 500, 500]}", "failed with HTTP 500"),
    ],
    ids=["bad_reply", "provider_error"],
)
def test_a_failing_judge_fails_the_tournament_and_leaves_no_call_running(
    tmp_path: Path, judge_script: str, why: str
) -> None:
    workflow = compile_yaml(
        tmp_path,
        """\
        version: 1
        name: judged
        roles: {w: {}, judge: {}}
        steps:
          kind: tournament
          id: pick
          candidates:
            - {kind: leaf, id: a, role: w, prompt: "a"}
            - {kind: leaf, id: b, role: w, prompt: "b"}
          judge: {role: judge, prompt: "Score {{ candidate }}"}
        """,
    )
    script = f"""\
        nodes:
          "pick/judge[0]": {judge_script}
          "pick/judge[1]": {{score: 3, latency_ms: 300}}
        """
    provider = CountingProvider(mock(tmp_path, script))

    async def scenario() -> tuple[RunResult, int, set[asyncio.Task[Any]]]:
        engine = engine_for(workflow, provider, tmp_path)
        result = await engine.run({})
        left = asyncio.all_tasks() - {asyncio.current_task()}
        return result, provider.in_flight, left

    result, in_flight, left = asyncio.run(scenario())
    assert result.status is Status.FAILED
    assert why in (by_path(result)["pick"].error or "")
    assert in_flight == 0
    assert left == set()
