"""A permission admits what a reviewer reads in it, at run time, with real commands: options
only where spelled (input values included), no program-selecting variables from a node's `env`
unless assigned, the program compared exactly, and `cwd` inside the workspace.

The workflows here are built without validation, as a replay or a resume builds a recorded
document: `validate` refuses most of them already (tests/compiler/test_command_rules.py), and
the run must refuse them too."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from runner.compiler.build import build_workflow
from runner.config import DEFAULT
from runner.executor.engine import Engine
from runner.executor.results import NodeResult
from runner.providers.mock import MockProvider
from runner.render import resolve_inputs
from runner.status import Status


def run_node(
    workspace: Path, permission: str, node: str, inputs: Mapping[str, Any] | None = None
) -> NodeResult:
    """Run a one-command workflow in workspace; the command node's result."""
    document = yaml.safe_load(
        textwrap.dedent(
            f"""\
            version: 1
            name: hostile
            inputs: {{value: {{type: string, default: ""}}}}
            permissions: {{commands: [{permission!r}]}}
            steps: {node}
            """
        )
    )
    workflow = build_workflow(document)
    engine = Engine(
        workflow, config=DEFAULT, providers={"mock": MockProvider("mock")}, workspace=workspace
    )
    result = asyncio.run(engine.run(resolve_inputs(workflow, dict(inputs or {}))))
    (found,) = [n for n in result.nodes if n.path == "cmd"]
    return found


def script(path: Path, marker: Path) -> Path:
    """An executable that leaves ``marker`` behind when it runs."""
    # touch by its full path: the PATH the script runs with may be the one under test.
    path.write_text(f"#!/bin/sh\n{shutil.which('touch')} {marker}\n", encoding="utf-8")
    path.chmod(0o755)
    return path


def test_an_input_value_does_not_become_an_option(repo: Path, tmp_path: Path) -> None:
    written = tmp_path / "written.txt"
    node = '{kind: command, id: cmd, run: [git, diff, "{{ inputs.value }}"]}'
    refused = run_node(repo, "git diff *", node, {"value": f"--output={written}"})
    assert refused.status is Status.FAILED
    assert "argument 2 '--output=" in (refused.error or "")
    assert "is an option" in (refused.error or "")
    assert not written.exists()
    # The same argument as a plain value runs.
    assert run_node(repo, "git diff *", node, {"value": "HEAD"}).status is Status.SUCCEEDED
    # Where the permission spells an option, an option is admitted there.
    spelled = run_node(repo, "git diff --output=* *", node, {"value": f"--output={written}"})
    assert spelled.status is Status.SUCCEEDED
    assert written.exists()


def test_a_literal_option_is_refused_where_the_permission_spells_none(
    repo: Path, tmp_path: Path
) -> None:
    written = tmp_path / "written.txt"
    node = f"{{kind: command, id: cmd, run: [git, diff, '--output={written}']}}"
    refused = run_node(repo, "git diff *", node)
    assert refused.status is Status.FAILED
    assert not written.exists()


@pytest.mark.parametrize("name", ["PATH", "GIT_EXTERNAL_DIFF", "GIT_CONFIG_GLOBAL", "LD_PRELOAD"])
def test_env_cannot_swap_the_program(repo: Path, tmp_path: Path, name: str) -> None:
    marker = tmp_path / "ran"
    evil = tmp_path / "evil"
    evil.mkdir()
    script(evil / "git", marker)
    (repo / "README.md").write_text("changed\n")  # so git diff would call an external diff
    value = {"PATH": str(evil), "GIT_EXTERNAL_DIFF": str(evil / "git")}.get(name, str(evil))
    node = f"{{kind: command, id: cmd, run: [git, diff, HEAD], env: {{{name}: {value!r}}}}}"
    refused = run_node(repo, "git diff *", node)
    assert refused.status is Status.FAILED
    assert f"its env sets {name}" in (refused.error or "")
    assert not marker.exists()


def test_a_permission_may_spell_a_program_selecting_variable(repo: Path, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    tool = script(tmp_path / "difftool", marker)
    (repo / "README.md").write_text("changed\n")
    node = (
        f"{{kind: command, id: cmd, run: [git, diff, HEAD], env: {{GIT_EXTERNAL_DIFF: '{tool}'}}}}"
    )
    admitted = run_node(repo, f"GIT_EXTERNAL_DIFF={tool} git diff *", node)
    assert admitted.status is Status.SUCCEEDED
    assert marker.exists()
    marker.unlink()
    other = run_node(repo, f"GIT_EXTERNAL_DIFF={tool}-other git diff *", node)
    assert other.status is Status.FAILED
    assert not marker.exists()


def test_the_program_is_compared_exactly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    marker = tmp_path / "ran"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script(bin_dir / "echo_evil", marker)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    workspace = tmp_path / "ws"
    workspace.mkdir()
    node = "{kind: command, id: cmd, run: [echo_evil, hi]}"
    refused = run_node(workspace, "echo*", node)
    assert refused.status is Status.FAILED
    assert not marker.exists()
    assert run_node(workspace, "echo *", "{kind: command, id: cmd, run: [echo, hi]}").output == {
        "exit_code": 0,
        "stdout": "hi\n",
        "stderr": "",
    }


@pytest.mark.parametrize("cwd", ["/", "..", "sub/../..", "link", "link/inner"])
def test_cwd_stays_in_the_workspace(tmp_path: Path, cwd: str) -> None:
    workspace = tmp_path / "ws"
    (workspace / "sub").mkdir(parents=True)
    (tmp_path / "outside" / "inner").mkdir(parents=True)
    (workspace / "link").symlink_to(tmp_path / "outside")
    node = '{kind: command, id: cmd, run: [pwd], cwd: "{{ inputs.value }}"}'
    refused = run_node(workspace, "pwd", node, {"value": cwd})
    assert refused.status is Status.FAILED
    assert "outside" in (refused.error or "")
    assert refused.output is None


def test_cwd_inside_the_workspace_runs_there(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    (workspace / "sub").mkdir(parents=True)
    node = '{kind: command, id: cmd, run: [pwd], cwd: "{{ inputs.value }}"}'
    ran = run_node(workspace, "pwd", node, {"value": "sub/./"})
    assert ran.status is Status.SUCCEEDED
    assert ran.output["stdout"].strip() == str((workspace / "sub").resolve())


def test_a_nul_character_is_a_clear_failure(tmp_path: Path) -> None:
    node = '{kind: command, id: cmd, run: [echo, "{{ inputs.value }}"]}'
    failed = run_node(tmp_path, "echo *", node, {"value": "a\0b"})
    assert failed.status is Status.FAILED
    assert "NUL character" in (failed.error or "")


def test_a_rendered_value_stays_one_argument(tmp_path: Path) -> None:
    count = "import sys; print(len(sys.argv) - 1)"
    run = f'[{sys.executable}, -c, "{count}", "{{{{ inputs.value }}}}"]'
    node = f"{{kind: command, id: cmd, run: {run}}}"
    ran = run_node(tmp_path, f"{sys.executable} -c * *", node, {"value": "a b --output=/x"})
    assert ran.status is Status.SUCCEEDED
    assert ran.output["stdout"] == "1\n"
