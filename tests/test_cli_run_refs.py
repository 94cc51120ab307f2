"""A RUN argument that cannot name a run (a byte that is not UTF-8, read by the shell as a lone
surrogate) is "no run matches", exit 2, for every command that takes one (issue 11, point 7)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from runner.main import main

WORKFLOW = """\
version: 1
name: refs
roles: {worker: {}}
steps: {kind: leaf, id: one, role: worker, prompt: "Say ok"}
"""

COMMANDS = [
    ["inspect", "RUN"],
    ["report", "RUN"],
    ["replay", "RUN", "--plain"],
    ["resume", "RUN", "--plain"],
    ["memo", "stats", "RUN"],
    ["memo", "explain", "RUN", "one"],
    ["trace", "export", "RUN"],
    ["cancel", "RUN"],
    ["watch", "RUN", "--plain"],
]


@pytest.fixture(scope="module")
def state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A state holding one finished run."""
    root = tmp_path_factory.mktemp("refs")
    (root / "wf.yaml").write_text(textwrap.dedent(WORKFLOW), encoding="utf-8")
    assert main(["run", str(root / "wf.yaml"), "--plain", "--state", str(root / "state")]) == 0
    return root / "state"


@pytest.mark.parametrize("argv", COMMANDS, ids=" ".join)
def test_a_run_argument_with_a_byte_that_is_not_utf8_names_no_run(
    argv: list[str], state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ref = os.fsdecode(b"2\xff")  # what Python makes of that byte in argv: "2\udcff"
    capsys.readouterr()
    code = main([ref if a == "RUN" else a for a in argv] + ["--state", str(state)])
    err = " ".join(capsys.readouterr().err.split())
    assert code == 2, err
    assert "there is no run '2\\udcff' in this state" in err
    assert "internal error" not in err


def test_the_byte_given_on_a_real_command_line_is_shown_escaped(state: Path) -> None:
    done = subprocess.run(
        [
            sys.executable.encode(),
            b"-m",
            b"runner",
            b"inspect",
            b"\xfe",
            b"--state",
            os.fsencode(state),
        ],
        capture_output=True,
        check=False,
        timeout=60,
    )
    err = " ".join(done.stderr.decode("ascii").split())
    assert done.returncode == 2, err
    assert "there is no run '\\udcfe' in this state" in err


def test_a_long_run_argument_is_cut_short_in_the_message(
    state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["inspect", "r" * 10_000, "--state", str(state)]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "r" * 80 + "..." in err
    assert "r" * 200 not in err
