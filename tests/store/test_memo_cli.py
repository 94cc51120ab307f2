"""The memo seen from the command line: stats per run and node, and why a call missed."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from runner.main import main

WORKFLOW = """\
version: 1
name: memoized
roles: {worker: {}}
inputs:
  topic: {type: string, default: caching}
steps:
  kind: sequence
  id: main
  steps:
    - kind: leaf
      id: summary
      role: worker
      prompt: "Summarise {{ inputs.topic }}."
    - kind: leaf
      id: fresh
      role: worker
      memo: "off"
      prompt: "Never memoized: {{ inputs.topic }}."
"""


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    Path("wf.yaml").write_text(textwrap.dedent(WORKFLOW), encoding="utf-8")
    return tmp_path / "state"


def run(state: Path, *extra: str) -> int:
    return main(["run", "wf.yaml", "--plain", "--state", str(state), *extra])


def test_stats_count_hits_misses_and_savings(
    state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(state) == 0
    assert run(state) == 0
    capsys.readouterr()
    assert main(["memo", "stats", "last", "--state", str(state)]) == 0
    out = capsys.readouterr().out
    assert "1 hit, 0 misses (hit rate 100%)" in out
    assert "summary" in out  # the per-node table
    assert main(["memo", "stats", "--state", str(state)]) == 0
    out = capsys.readouterr().out
    assert "2 runs: 1 hit, 1 miss (hit rate 50%)" in out
    assert "memo: 1 entry" in out  # the node with memo off stored nothing


def test_explain_names_the_fields_that_differ(
    state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(state) == 0
    assert run(state, "--input", "topic=replay") == 0
    capsys.readouterr()
    assert main(["memo", "explain", "last", "summary", "--state", str(state)]) == 0
    out = capsys.readouterr().out
    assert "summary: live: the nearest earlier entry (summary of run" in out
    assert "differs in messages" in out
    # The whole diff of the field, as a replay shows it, not two long values side by side.
    assert out.splitlines()[1:] == [
        "    --- memo messages",
        "    +++ now messages",
        "    @@ -1 +1 @@",
        "    -[user] Summarise caching.",
        "    +[user] Summarise replay.",
    ]


def test_explain_of_a_hit_and_of_an_unknown_node(
    state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(state) == 0
    assert run(state) == 0
    capsys.readouterr()
    assert main(["memo", "explain", "last", "summary", "--state", str(state)]) == 0
    assert "answered by the memo" in capsys.readouterr().out
    assert main(["memo", "explain", "last", "nothing", "--state", str(state)]) == 2
    assert "made no model call at 'nothing'" in capsys.readouterr().err


def test_runs_and_inspect_show_what_ran(state: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(state) == 0
    capsys.readouterr()
    assert main(["runs", "--state", str(state)]) == 0
    out = capsys.readouterr().out
    assert "memoized" in out
    assert "succeeded" in out
    assert "3/3" in out
    assert main(["inspect", "last", "--state", str(state)]) == 0
    out = capsys.readouterr().out
    assert "main sequence succeeded" in out
    assert "summary leaf succeeded" in out
    assert main(["inspect", "last", "summary", "--state", str(state)]) == 0
    assert '"source": "live"' in capsys.readouterr().out
    assert main(["runs", "--state", str(state / "none")]) == 2
    assert "there is no Branchleaf state" in capsys.readouterr().err


SHARED = """\
version: 1
name: shared
roles: {worker: {}}
steps:
  kind: branch
  id: both
  children:
    - {kind: leaf, id: first, role: worker, prompt: "The same question."}
    - {kind: leaf, id: second, role: worker, prompt: "The same question."}
    - {kind: leaf, id: reader, role: worker, memo: read, prompt: "Read, never stored."}
"""


def test_identical_calls_in_flight_share_one_provider_call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("wf.yaml").write_text(SHARED, encoding="utf-8")
    Path("slow.yaml").write_text("defaults: {latency_ms: 100}\nnodes: {}\n", encoding="utf-8")
    state = tmp_path / "state"
    args = ["run", "wf.yaml", "--plain", "--state", str(state), "--mock-script", "slow.yaml"]
    assert main(args) == 0
    capsys.readouterr()
    assert main(["memo", "stats", "last", "--state", str(state)]) == 0
    out = capsys.readouterr().out
    # first and second asked at once: one of them waited for the other's reply
    assert "1 hit, 2 misses" in out
    assert "memo: 1 entry" in out  # the reader's reply was not stored
    assert main(args) == 0
    capsys.readouterr()
    assert main(["memo", "stats", "last", "--state", str(state)]) == 0
    assert "2 hits, 1 miss" in capsys.readouterr().out  # the reader misses again


CONTEST = """\
version: 1
name: contest
roles: {w: {}, judge: {}}
steps:
  kind: tournament
  id: pick
  count: 2
  body: {kind: leaf, id: cand, role: w, prompt: "Attempt {{ sample }}."}
  judge: {role: judge, prompt: "Score this: {{ candidate }}"}
"""
CONTEST_SCRIPT = """\
nodes:
  "cand[0]": {reply: zero}
  "cand[1]": {reply: one}
  "pick/judge[0]": {score: 0.2}
  "pick/judge[1]": {score: 0.9}
"""


def test_inspect_shows_the_judge_calls_inside_their_tournament(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("wf.yaml").write_text(CONTEST, encoding="utf-8")
    Path("script.yaml").write_text(CONTEST_SCRIPT, encoding="utf-8")
    assert main(["run", "wf.yaml", "--plain", "--mock-script", "script.yaml"]) == 0
    capsys.readouterr()
    assert main(["inspect", "last"]) == 0
    lines = capsys.readouterr().out.splitlines()
    judged = [line.split("── ", 1)[1] for line in lines if "judge[" in line]
    assert judged == [
        "pick/judge[0] model call, role judge live 5 tok → 0.2",
        "pick/judge[1] model call, role judge live 5 tok → 0.9",
    ]


def test_a_reply_that_did_not_fit_its_schema_is_not_remembered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A flaky reply fails its leaf once; the next run asks the model again instead of failing
    the same way from the memo."""
    monkeypatch.chdir(tmp_path)
    Path("wf.yaml").write_text(
        "version: 1\nname: shaped\nroles: {worker: {}}\nsteps:\n  kind: leaf\n  id: rate\n"
        "  role: worker\n  prompt: Rate it.\n"
        "  output: {type: object, properties: {score: {type: integer}}, required: [score]}\n",
        encoding="utf-8",
    )
    Path("bad.yaml").write_text('nodes:\n  rate: {reply: "not JSON at all"}\n', encoding="utf-8")
    argv = ["run", "wf.yaml", "--plain", "--state", "s", "--mock-script", "bad.yaml"]
    assert main(argv) == 1
    assert main(argv) == 1
    capsys.readouterr()
    assert main(["memo", "stats", "--state", "s"]) == 0
    out = capsys.readouterr().out
    assert "2 runs: 0 hits, 2 misses" in out, out
    assert "memo: 0 entries" in out, out
