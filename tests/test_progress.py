"""Following a run: the live view's picture and the plain lines, driven by a real engine run."""

from __future__ import annotations

import io
import textwrap
from pathlib import Path

from rich.console import Console

from runner import ir
from runner.compiler.pipeline import compile_file
from runner.config import DEFAULT
from runner.executor.engine import Engine, run_sync
from runner.executor.results import NodeResult, Spend
from runner.progress import LiveProgress, PlainProgress
from runner.providers.registry import build_providers
from runner.status import Status

WORKFLOW = """\
version: 1
name: followed
roles: {worker: {}}
steps:
  kind: sequence
  id: main
  steps:
    - kind: expand
      id: fan
      over: "[1, 2, 3]"
      as: item
      max_children: 3
      body: {kind: leaf, id: one, role: worker, prompt: "Item {{ item }}"}
    - kind: command
      id: fails
      run: ["python", "-c", "import sys; sys.exit(3)"]
permissions: {commands: ["python -c *"]}
"""


def terminal() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, force_terminal=True, width=100, color_system=None), out


def run_followed(tmp_path: Path, observer: LiveProgress | PlainProgress) -> None:
    path = tmp_path / "wf.yaml"
    path.write_text(textwrap.dedent(WORKFLOW), encoding="utf-8")
    workflow = compile_file(str(path))
    providers = build_providers(DEFAULT, ["worker"])
    config = DEFAULT
    engine = Engine(
        workflow, config=config, providers=providers, workspace=tmp_path, observer=observer
    )
    result = run_sync(engine.run({}))
    assert result.status is Status.FAILED


def test_the_live_view_shows_counts_failures_and_spend_of_a_real_run(tmp_path: Path) -> None:
    console, out = terminal()
    with LiveProgress(console) as live:
        run_followed(tmp_path, live)
    text = out.getvalue()
    # The final picture stays on screen when the view closes.
    last = text[text.rindex("done") :]
    assert "6/6" in last  # sequence, expand, three copies, the command
    assert "failed" in last
    assert live.failed == 2  # the command, and the sequence it ended
    assert live.spend.calls == 3
    assert live.spend.tokens > 0


def test_the_live_view_names_the_longest_running_item(tmp_path: Path) -> None:
    console, out = terminal()
    live = LiveProgress(console)
    tree = textwrap.dedent(WORKFLOW)
    path = tmp_path / "wf.yaml"
    path.write_text(tree, encoding="utf-8")
    main = compile_file(str(path)).steps
    assert isinstance(main, ir.Sequence)
    leaf = main.steps[0].body  # type: ignore[attr-defined]
    live.started("main", main)
    live.started("one[0]", leaf)  # a container started first is not what is slow
    console.print(live.render())
    assert "longest" in out.getvalue()
    assert "main" not in out.getvalue().split("longest", 1)[1].splitlines()[0]
    live.finished(NodeResult(path="one[0]", node_id="one", kind="leaf", status=Status.SUCCEEDED))
    live.finished(
        NodeResult(
            path="main",
            node_id="main",
            kind="sequence",
            status=Status.FAILED,
            error="x",
            spend=Spend(calls=1, prompt_tokens=5, completion_tokens=7, cost_usd=0.25),
        )
    )
    assert live.longest() is None
    console.print(live.render())
    final = out.getvalue().rsplit("done", 1)[1]
    assert "2/2" in final
    assert "12" in final  # tokens
    assert "$0.25" in final


def test_plain_progress_prints_failures_as_they_happen(tmp_path: Path) -> None:
    console, out = terminal()
    run_followed(tmp_path, PlainProgress(console))
    lines = out.getvalue().splitlines()
    assert any(line.startswith("failed: fails:") and "exited with 3" in line for line in lines)
    assert any(line.startswith("failed: main:") for line in lines)
