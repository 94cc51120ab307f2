"""A teacher_review reads the results of its ``inputs``, which it must name."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.main import main


def test_a_teacher_review_without_inputs_is_a_schema_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "w.yaml"
    path.write_text(
        "version: 1\nname: w\nroles: {r: {}, teacher: {}}\nsteps:\n  kind: sequence\n  id: main\n"
        "  steps:\n    - {kind: leaf, id: a, role: r, prompt: hi}\n"
        "    - {kind: teacher_review, id: t}\n",
        encoding="utf-8",
    )
    assert main(["validate", str(path)]) == 2
    out = capsys.readouterr().out
    assert "missing required field 'inputs' in teacher_review 't'" in out
    assert "internal error" not in out
