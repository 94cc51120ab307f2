"""A real recorded run, made once per session: its state directory and its exported trace."""

from __future__ import annotations

import atexit
import contextlib
import functools
import io
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from conftest import GOOD_YAML

from runner.main import main

SCRIPT = 'nodes:\n  "review_one*": {reply: {ok: true}}\n'


@dataclass(frozen=True, slots=True, kw_only=True)
class Recorded:
    """What a finished run left behind."""

    state: Path
    """A state directory holding two finished runs of the same workflow."""
    trace: bytes
    """The last run exported with ``trace export``."""
    workflow: Path
    """The workflow file that was run."""


def record(root: Path) -> Recorded:
    """Run the conftest workflow twice on the mock provider into ``root/state``, and export."""
    workflow = root / "good.yaml"
    workflow.write_text(GOOD_YAML, encoding="utf-8")
    script = root / "script.yaml"
    script.write_text(SCRIPT, encoding="utf-8")
    state = root / "state"
    sink = io.StringIO()
    with contextlib.chdir(root), contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        for _ in range(2):
            argv = ["run", str(workflow), "--mock-script", str(script), "--plain"]
            assert main([*argv, "--state", str(state)]) == 0, sink.getvalue()
        exported = root / "trace.jsonl"
        assert main(["trace", "export", "last", "-o", str(exported), "--state", str(state)]) == 0
    return Recorded(state=state, trace=exported.read_bytes(), workflow=workflow)


def copy_state(recorded: Recorded, target: Path) -> Path:
    """A private copy of the recorded state, for a case to damage."""
    shutil.copytree(recorded.state, target)
    return target


@functools.cache
def shared() -> Recorded:
    """One recording for the whole session (made when first asked for, removed at exit)."""
    root = Path(tempfile.mkdtemp(prefix="badinput-recorded-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    return record(root)
