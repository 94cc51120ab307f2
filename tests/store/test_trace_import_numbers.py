"""A trace line holding 1e999, which Python reads as infinity, is refused with its line
(issue 11, point 7)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from runner.main import main

WORKFLOW = """\
version: 1
name: numbers
roles: {worker: {}}
steps: {kind: leaf, id: one, role: worker, prompt: "Say ok"}
"""


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> list[bytes]:
    """The lines of a real run's exported trace."""
    root = tmp_path_factory.mktemp("numbers")
    (root / "wf.yaml").write_text(textwrap.dedent(WORKFLOW), encoding="utf-8")
    state = str(root / "state")
    assert main(["run", str(root / "wf.yaml"), "--plain", "--state", state]) == 0
    path = root / "t.jsonl"
    assert main(["trace", "export", "last", "--state", state, "-o", str(path)]) == 0
    return path.read_bytes().splitlines()


@pytest.mark.parametrize("line", [1, 2, -1], ids=["header", "first_event", "last_event"])
def test_a_trace_line_holding_1e999_is_refused_with_its_line(
    line: int, exported: list[bytes], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = list(exported)
    number = line if line > 0 else len(lines)
    # The line stays an object of the right shape: only the number is out of range.
    lines[number - 1] = lines[number - 1].replace(b',"', b',"extra":1e999,"', 1)
    path = tmp_path / "t.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    capsys.readouterr()
    assert main(["trace", "import", str(path), "--state", str(tmp_path / "fresh")]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert f"{path}:{number}:" in err, err
    assert "1e999 is too large for a JSON number" in err
    assert "internal error" not in err
