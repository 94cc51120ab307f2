"""The inputs and the mock script a workflow's ``ci`` block gives its runs, as ``run --input
name=value --mock-script FILE`` would take them: ``ci`` runs every workflow with its block, and
so does the pre-commit dry run (``run --changed-files``)."""

from __future__ import annotations

import argparse
import json
import shlex
from pathlib import Path

from runner import ir
from runner.canonical import thaw
from runner.errors import UsageError


def with_ci_settings(workflow: ir.Workflow, options: argparse.Namespace) -> argparse.Namespace:
    """``options`` with the inputs and the mock script of the workflow's ``ci`` block, as
    ``run --input name=value --mock-script FILE`` would take them; an input or a mock script
    ``options`` already holds (given on the command line) wins over the block's."""
    settings = workflow.ci or ir.CiSettings()
    explicit = list(options.input or [])
    named = {pair.partition("=")[0] for pair in explicit}
    given = {
        name: _input_text(value)
        for name, value in (settings.inputs or {}).items()
        if name not in named
    }
    missing = [
        name
        for name, spec in workflow.inputs or ()
        if not spec.has_default and name not in given and name not in named
    ]
    if missing:
        raise UsageError(
            f"{workflow.source}: the workflow {workflow.name!r} needs the input {missing[0]!r}, "
            "which has no default: give it a value under ci: inputs: in the workflow"
        )
    script = options.mock_script
    if script is None and settings.mock_script is not None:
        script = (Path(workflow.source).parent / settings.mock_script).as_posix()
    return argparse.Namespace(
        **{
            **vars(options),
            "input": [f"{name}={value}" for name, value in given.items()] + explicit,
            "mock_script": script,
        }
    )


def added(options: argparse.Namespace, live: argparse.Namespace) -> list[str]:
    """What ``with_ci_settings`` added to ``options`` to make ``live``, as it would be typed:
    ``--input name=value`` and ``--mock-script FILE``, quoted for a shell."""
    words = [
        f"--input {shlex.quote(pair)}"
        for pair in live.input or ()
        if pair not in (options.input or ())
    ]
    if live.mock_script and live.mock_script != options.mock_script:
        words.append(f"--mock-script {shlex.quote(live.mock_script)}")
    return words


def _input_text(value: object) -> str:
    """A ``ci.inputs`` value as ``--input`` takes it: a string as it is, anything else as
    JSON (the compiler has checked its type)."""
    plain = thaw(value)
    return plain if isinstance(plain, str) else json.dumps(plain)
