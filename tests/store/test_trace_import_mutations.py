"""Generated hostile traces: a real export with one JSON value changed at random (seeded). Each
is imported and, when accepted, replayed, listed, inspected, reported and exported again;
none may end in an internal error or a traceback (issue 11)."""

from __future__ import annotations

import json
import random
import textwrap
from pathlib import Path
from typing import Any

import pytest

from runner.main import main

WORKFLOW = """\
version: 1
name: mutated
roles: {worker: {}}
permissions: {commands: ["python -c *"]}
steps:
  kind: sequence
  id: main
  steps:
    - {kind: command, id: facts, run: ["python", "-c", "print(1)"]}
    - kind: expand
      id: fan
      over: "[1, 2]"
      as: item
      max_children: 2
      body:
        kind: leaf
        id: one
        role: worker
        prompt: "Judge {{ item }} given {{ outputs.facts.stdout | trim }}"
        output: {type: object, properties: {ok: {type: boolean}}, required: [ok]}
tests:
  - {name: judged, expect: "outputs.fan | length == 2"}
"""

CASES = 60
VALUES: list[Any] = [None, True, 0, -1, 1.5, "", "x", [], {}, [1], {"a": 1}, 10**30, "\udc80"]


@pytest.fixture(scope="module")
def lines(tmp_path_factory: pytest.TempPathFactory) -> list[bytes]:
    root = tmp_path_factory.mktemp("mutations")
    (root / "wf.yaml").write_text(textwrap.dedent(WORKFLOW), encoding="utf-8")
    state = str(root / "state")
    assert main(["run", str(root / "wf.yaml"), "--plain", "--state", state]) == 0
    assert main(["trace", "export", "last", "--state", state, "-o", str(root / "t.jsonl")]) == 0
    return (root / "t.jsonl").read_bytes().splitlines()


def _mutated(value: Any, chance: random.Random) -> Any:
    """``value`` with one value somewhere inside it replaced (or one field removed)."""
    if isinstance(value, dict) and value and chance.random() < 0.8:
        key = chance.choice(sorted(value))
        if chance.random() < 0.3:
            del value[key]
        else:
            value[key] = _mutated(value[key], chance)
        return value
    if isinstance(value, list) and value and chance.random() < 0.8:
        index = chance.randrange(len(value))
        value[index] = _mutated(value[index], chance)
        return value
    return chance.choice(VALUES)


@pytest.mark.parametrize("seed", range(CASES))
def test_a_mutated_trace_is_refused_or_works(
    seed: int, lines: list[bytes], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    chance = random.Random(seed)
    changed = list(lines)
    number = chance.randrange(len(changed))
    changed[number] = json.dumps(_mutated(json.loads(changed[number]), chance)).encode()
    path = tmp_path / "t.jsonl"
    path.write_bytes(b"\n".join(changed) + b"\n")
    state = str(tmp_path / "state")
    code = main(["trace", "import", str(path), "--state", state])
    assert code in (0, 2)
    if code == 0:
        for argv in (
            ["replay", "last", "--plain"],
            ["runs"],
            ["inspect", "last"],
            ["report", "last"],
            ["report", "last", "--format", "junit"],
            ["trace", "export", "last"],
        ):
            assert main([*argv, "--state", state]) in (0, 1), argv
    captured = capsys.readouterr()
    for text in (captured.out, captured.err):
        assert "internal error" not in text
        assert "Traceback" not in text
