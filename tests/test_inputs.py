"""``--input`` values that JSON's Python reader would let through, and bytes that are not
UTF-8: each a usage error in one sentence, for every declared type, never a crash later."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from runner.main import main

TYPES = ["string", "integer", "number", "boolean", "array", "object"]
HOSTILE = {
    "NaN": "NaN is not a JSON number",
    "Infinity": "Infinity is not a JSON number",
    "-Infinity": "-Infinity is not a JSON number",
    "1e999": "1e999 is too large for a JSON number",
    '{"a": NaN}': "NaN is not a JSON number",
    "[" * 100_000 + "]" * 100_000: "it nests lists and mappings more than 100 levels deep",
    '"\\ud800"': "holds a lone surrogate",
    "9" * 5000: "a number has more than 4300 digits",
}


def workflow(tmp_path: Path, kind: str) -> Path:
    path = tmp_path / "w.yaml"
    path.write_text(
        "version: 1\nname: w\nroles: {r: {}}\n"
        f"inputs: {{value: {{type: {kind}}}}}\n"
        "steps: {kind: leaf, id: a, role: r, prompt: '{{ inputs.value }}'}\n",
        encoding="utf-8",
    )
    return path


@pytest.mark.parametrize("kind", [kind for kind in TYPES if kind != "string"])
@pytest.mark.parametrize("raw", list(HOSTILE), ids=lambda raw: raw[:12])
def test_hostile_json_inputs_are_one_sentence(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    kind: str,
    raw: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    code = main(["run", str(workflow(tmp_path, kind)), "--input", f"value={raw}"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert HOSTILE[raw] in err
    assert "--input value=" in err
    assert "internal error" not in err
    assert len(err) < 400  # the value is shortened, not echoed in full


def test_a_string_input_keeps_json_looking_text(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["run", str(workflow(tmp_path, "string")), "--input", "value=NaN"]) == 0


@pytest.mark.parametrize("kind", TYPES)
def test_a_byte_that_is_not_utf8_is_a_usage_error(tmp_path: Path, kind: str) -> None:
    # The real command line: Python decodes argv with surrogateescape.
    done = subprocess.run(
        [
            os.fsencode(sys.executable),
            b"-m",
            b"runner",
            b"run",
            os.fsencode(workflow(tmp_path, kind)),
            b"--input",
            b"value=caf\xe9",
        ],
        capture_output=True,
        timeout=120,
        check=False,
        cwd=tmp_path,
        env={**os.environ, "PYTHONUTF8": "1"},
    )
    err = done.stderr.decode("utf-8")
    assert done.returncode == 2, err
    assert "--input value=caf\\xe9 is not UTF-8 text" in err
    assert "Traceback" not in err
