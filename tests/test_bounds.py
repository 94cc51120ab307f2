"""Templates and expressions are bounded in time and size, and can be interrupted: each hostile
case is a clear failure, never a hang, a traceback or gigabytes. Each runs in a forked child
under a memory limit (tests/bounded.py), so that a bound that does not hold fails the test."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from bounded import in_child

from runner.compiler.pipeline import compile_file
from runner.config import DEFAULT
from runner.executor.engine import Engine
from runner.expressions import analyze_template
from runner.main import main
from runner.providers.mock import MockProvider
from runner.render import RenderError, Scope, evaluate, render

SCOPE = Scope(inputs={"n": 3}, outputs={})
LOOPS = "{% for i in range(100000) %}{% for j in range(100000) %}X{% endfor %}{% endfor %}"
SILENT_LOOPS = LOOPS.replace("X", "")
SHARED = (
    "{% set ns = namespace(x=[0] * 10) %}"
    "{% for i in range(40) %}{% set ns.x = [ns.x, ns.x] %}{% endfor %}"
)


def rendered(source: str) -> str:
    """How rendering ``source`` ends: its text, or the RenderError's reason."""
    try:
        return "text: " + render(source, SCOPE)[:80]
    except RenderError as exc:
        return f"error: {exc}"


def evaluated(source: str) -> str:
    try:
        return f"value: {evaluate(source, SCOPE)!r}"[:80]
    except RenderError as exc:
        return f"error: {exc}"


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ("{{ '%999999999d' | format(1) }}", "a format width 999,999,999 is more than the limit"),
        ("{{ '%*d' % (999999999, 1) }}", "a format width 999,999,999 is more than the limit"),
        ("{{ '%999999999d' % 1 }}", "a format width 999,999,999 is more than the limit"),
        ("{{ '{:999999999}'.format(1) }}", "a format width 999,999,999 is more than the limit"),
        ("{{ 'a' | indent(1000000000) }}", "indent would make 1,000,000,001 characters"),
        ("{{ 'a' | center(1000000000) }}", "the width of center 1,000,000,000 is more than"),
        ("{{ 'a b' | wordwrap(1000000000) }}", "the width of wordwrap 1,000,000,000 is more"),
        ("{{ 'a' * 10**9 }}", "repeating a text would make 1,000,000,000 characters"),
        ("{{ ([0] * 1000000000) | length }}", "repeating a list would make 1,000,000,000 items"),
        ("{{ 'x'.ljust(10**9) }}", "the width of ljust() 1,000,000,000 is more than the limit"),
        ("{{ range(100000) | join('x' * 1000000) }}", "join() would make 100,000,000,000"),
        ("{{ [1, 2] | batch(10**9, 0) | list }}", "linecount 1,000,000,000 would make"),
        ("{{ [1] | tojson(indent=10**9) }}", "the indent of tojson 1,000,000,000 is more than"),
        ("{{ 7 ** 100000000 }}", "7 ** 100000000 would make a number of about 300,000,000 bits"),
        (
            "{% set ns = namespace(s='ab') %}{% for i in range(64) %}"
            "{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
            "~ would make 16,777,216 characters, more than the limit of 10,000,000",
        ),
        (
            "{% set ns = namespace(s='ab') %}{% for i in range(64) %}"
            "{% set ns.s = ns.s + ns.s %}{% endfor %}",
            "+ would make 16,777,216 characters, more than the limit of 10,000,000",
        ),
        (
            "{% set ns = namespace(s='ab') %}{% for i in range(64) %}"
            "{% set ns.s = ns.s | replace('a', 'aa') %}{% endfor %}",
            "replace() would make 16,777,217 characters",
        ),
        (LOOPS, "the rendered text is longer than the limit of 10,000,000 characters"),
        ("{{ (10 ** 100000) | string }}", "a number of more than 4300 digits cannot be"),
        ("{{ 'abcdefgh' | truncate(-5) }}", "truncate's length -5 is shorter than its end '...'"),
        # A list that holds the same list twice, doubled: small in memory, not when printed.
        (SHARED + "{{ ns.x }}", "printing the value would make 41,781,441,855,482 characters"),
        (SHARED + "{{ ns.x | string }}", "string would make 41,781,441,855,482 characters"),
        (SHARED + "{{ ns.x | tojson }}", "tojson would make 41,781,441,855,482 characters"),
        (SHARED + "{{ ns.x ~ '' }}", "~ would make 41,781,441,855,482 characters"),
        (SHARED + "{{ [ns.x] | join }}", "join would make 41,781,441,855,482 characters"),
        (SHARED + "{{ '%s' % (ns.x,) }}", "formatting would make 41,781,441,855,482 characters"),
        ("{{ ([[0] * 1000000] * 1000) | sum(start=[]) | length }}", "sum would make 1,000,000,000"),
        ("{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}", "the template recurses too deeply"),
    ],
)
def test_a_template_that_would_build_too_much_is_a_clear_render_error(
    source: str, reason: str
) -> None:
    assert in_child(lambda: rendered(source)).startswith(f"ok: error: {reason}")


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ("([0] * 1000000000) | length", "repeating a list would make 1,000,000,000 items"),
        ("(10 ** 100000) | string", "a number of more than 4300 digits cannot be turned"),
        ("'abc' | truncate(-5)", "truncate's length -5 is shorter than its end"),
        ("'a' * 10**9", "repeating a text would make 1,000,000,000 characters"),
        ("[[0] * 1000000] * 1000", "the value would make 3,000,004,002 characters, more than"),
    ],
)
def test_an_expression_that_would_build_too_much_is_a_clear_render_error(
    source: str, reason: str
) -> None:
    assert in_child(lambda: evaluated(source)).startswith(f"ok: error: {reason}")


def test_ordinary_templates_still_render() -> None:
    text = render(
        "{{ 'ab' * 3 }} {{ 3 * 4 }} {{ 'x' ~ inputs.n }} {{ '%5d' % 3 }} {{ 'a' | center(5) }}"
        " {{ 'hello world' | truncate(8, end='..', leeway=0) }} {{ [1, 2] | join(', ') }}",
        SCOPE,
    )
    assert text == "ababab 12 x3     3   a   hello.. 1, 2"
    assert evaluate("2 ** 10 + inputs.n", SCOPE) == 1027


def test_a_template_that_runs_too_long_stops_after_the_render_limit() -> None:
    outcome = in_child(lambda: rendered(SILENT_LOOPS))
    assert outcome == "ok: error: rendering took longer than 5 s, the limit for one template"


def test_a_template_that_keeps_growing_is_stopped_by_the_memory_guard() -> None:
    # Each step is small enough; what they hold together is not.
    source = (
        "{% set ns = namespace(rows=[]) %}{% for i in range(100000) %}"
        "{% set ns.rows = ns.rows + ['x' * 1000000 ~ i] %}{% endfor %}"
    )
    assert in_child(lambda: rendered(source)) == (
        "ok: error: rendering grew the process by more than 256 MB"
    )


def _peak_growth_mb(work: Callable[[], object]) -> int:
    """How far ``work()`` raised this process's peak resident size, in MB."""

    def peak() -> int:
        status = Path("/proc/self/status").read_text()
        return int(status.split("VmHWM:")[1].split()[0]) // 1024

    before = peak()
    work()
    return peak() - before


@pytest.mark.parametrize(
    "source",
    ["{{ 'a' * 300000000 }}", "{{ '%300000000d' | format(1) }}", "{{ 'a' | indent(300000000) }}"],
)
def test_validating_hostile_templates_does_not_fold_them_at_compile_time(source: str) -> None:
    # Jinja folds constant expressions when it compiles, and validate compiles every template:
    # 300 MB of text would be built then, and again at every compile.
    outcome = in_child(lambda: _peak_growth_mb(lambda: analyze_template(source)))
    assert outcome.startswith("ok: ")
    assert int(outcome[4:]) < 50


# -- at run time: the node fails, the run obeys its own bounds --------------------------------


def run_workflow(tmp_path: Path, text: str) -> str:
    """Compile and run a workflow with the mock; its status, reason and node errors."""
    (tmp_path / "wf.yaml").write_text(textwrap.dedent(text), encoding="utf-8")
    workflow = compile_file(str(tmp_path / "wf.yaml"))
    engine = Engine(
        workflow, config=DEFAULT, providers={"mock": MockProvider("mock")}, workspace=tmp_path
    )
    result = asyncio.run(engine.run({}))
    errors = sorted(f"{n.node_id}={n.status.value}: {n.error}" for n in result.nodes if n.error)
    return f"{result.status.value} ({result.reason}); " + "; ".join(errors)


LEAF = """\
version: 1
name: runaway
roles: {{w: {{}}}}
{budget}
steps:
  kind: sequence
  id: main
  steps:
    - kind: leaf
      id: spin
      role: w
      {timeout}
      prompt: "{prompt}"
"""


def test_a_runaway_prompt_fails_its_node_when_timeout_s_runs_out(tmp_path: Path) -> None:
    text = LEAF.format(budget="", timeout="timeout_s: 1", prompt=SILENT_LOOPS)
    assert in_child(lambda: run_workflow(tmp_path, text)) == (
        "ok: failed (rendering ran past timeout_s 1 s); "
        "main=failed: leaf 'spin' failed; spin=failed: rendering ran past timeout_s 1 s"
    )


def test_a_runaway_prompt_ends_the_run_when_budget_wall_s_runs_out(tmp_path: Path) -> None:
    text = LEAF.format(budget="budget: {wall_s: 1}", timeout="", prompt=SILENT_LOOPS)
    outcome = in_child(lambda: run_workflow(tmp_path, text))
    assert outcome.startswith("ok: budget_exceeded (budget.wall_s 1 s ran out); ")
    assert "spin=failed: rendering ran past budget.wall_s 1 s" in outcome


@pytest.mark.parametrize("stop", ["SIGINT", "SIGTERM", "cancel"])
def test_a_signal_or_cancel_stops_a_runaway_prompt_at_once(tmp_path: Path, stop: str) -> None:
    text = LEAF.format(budget="", timeout="", prompt=SILENT_LOOPS)
    # A command first, so that the test knows when the run has reached the prompt.
    text = text.replace(
        "  steps:\n",
        '  steps:\n    - {kind: command, id: mark, run: ["touch", "started"]}\n',
        1,
    ).replace("roles:", 'permissions: {commands: ["touch started"]}\nroles:')
    (tmp_path / "wf.yaml").write_text(text, encoding="utf-8")
    process = subprocess.Popen(
        [sys.executable, "-m", "runner", "run", "wf.yaml", "--plain", "--state", "state"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    try:
        deadline = time.monotonic() + 30
        while not (tmp_path / "started").exists():
            assert time.monotonic() < deadline, "the run never started"
            time.sleep(0.02)
        time.sleep(0.5)  # into the render, which runs for 5 s unless stopped
        if stop == "cancel":
            assert main(["cancel", "last", "--state", str(tmp_path / "state")]) == 0
        else:
            process.send_signal(signal.Signals[stop])
        out, _ = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == 130, out
    assert f"rendering was interrupted by {'SIGTERM' if stop == 'cancel' else stop}" in out


@pytest.mark.parametrize(
    ("prompt", "reason"),
    [
        ("{{ 'abcdefgh' | truncate(-5) }}", "truncate's length -5 is shorter than its end"),
        ("{{ (10 ** 100000) | string }}", "a number of more than 4300 digits cannot be"),
        ("{{ 'a' * 10**9 }}", "repeating a text would make 1,000,000,000 characters"),
        ("{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}", "the template recurses too"),
    ],
)
def test_a_prompt_past_a_bound_is_a_failed_node_with_its_reason(
    tmp_path: Path, prompt: str, reason: str
) -> None:
    text = LEAF.format(budget="", timeout="", prompt=prompt)
    outcome = in_child(lambda: run_workflow(tmp_path, text))
    assert outcome.startswith(f"ok: failed ({reason}")
    assert f"main=failed: leaf 'spin' failed; spin=failed: {reason}" in outcome
