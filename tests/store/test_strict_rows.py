"""Stored rows holding JSON the store never writes (NaN, 1e999, a lone surrogate, nesting that
exhausts the stack) say the state is damaged (issue 11, point 7)."""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
import textwrap
from pathlib import Path

import pytest

from runner.main import main
from runner.store.db import DB_FILE, DamagedRow
from runner.store.stored_json import stored_value

WORKFLOW = """\
version: 1
name: strict
roles: {worker: {}}
steps: {kind: leaf, id: one, role: worker, prompt: "Say ok"}
"""

DEEP = "[" * 5000 + "]" * 5000


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A state holding one finished run, its log copied into the database file."""
    root = tmp_path_factory.mktemp("strict")
    workflow = root / "wf.yaml"
    workflow.write_text(textwrap.dedent(WORKFLOW), encoding="utf-8")
    state = root / "state"
    assert main(["run", str(workflow), "--plain", "--state", str(state)]) == 0
    conn = sqlite3.connect(state / DB_FILE)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return state


def _damaged(recorded: Path, tmp_path: Path, statement: str) -> Path:
    state = tmp_path / "state"
    shutil.copytree(recorded, state)
    conn = sqlite3.connect(state / DB_FILE)
    with conn:
        conn.execute(statement)
    conn.close()
    return state


def _says_damaged(capsys: pytest.CaptureFixture[str], argv: list[str], state: Path) -> str:
    capsys.readouterr()
    assert main([*argv, "--state", str(state)]) == 3, argv
    err = " ".join(capsys.readouterr().err.split())
    assert f"the state in {state} is damaged" in err, err
    assert "internal error" not in err
    return err


@pytest.mark.parametrize(
    "argv",
    [["replay", "last", "--plain"], ["trace", "export", "last"], ["runs"], ["inspect", "last"]],
    ids=" ".join,
)
@pytest.mark.parametrize("number", ["NaN", "1e999"])
def test_a_run_row_holding_a_number_json_has_not_says_the_state_is_damaged(
    argv: list[str],
    number: str,
    recorded: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    state = _damaged(recorded, tmp_path, f"UPDATE runs SET config = '{{\"providers\": {number}}}'")
    err = _says_damaged(capsys, argv, state)
    assert re.search(f"the config of run [0-9a-f-]+ holds {number}", err), err


@pytest.mark.parametrize(
    "argv",
    [["runs"], ["inspect", "last", "one"], ["report", "last", "--format", "junit"]],
    ids=" ".join,
)
def test_a_run_output_nested_past_the_stack_says_the_state_is_damaged(
    argv: list[str], recorded: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = _damaged(recorded, tmp_path, f"UPDATE runs SET output = '{DEEP}'")
    err = _says_damaged(capsys, argv, state)
    assert "the output of run" in err
    assert "nests lists and mappings too deeply" in err


@pytest.mark.parametrize(
    "argv", [["replay", "last", "--plain"], ["trace", "export", "last"]], ids=" ".join
)
def test_an_event_nested_past_the_stack_says_the_state_is_damaged(
    argv: list[str], recorded: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    nested = "[" * 5000 + "1" + "]" * 5000
    state = _damaged(recorded, tmp_path, f"UPDATE events SET data = '{{\"x\": {nested}}}'")
    err = _says_damaged(capsys, argv, state)
    assert "the data of event" in err


def test_an_event_holding_a_lone_surrogate_says_the_state_is_damaged(
    recorded: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = _damaged(
        recorded,
        tmp_path,
        "UPDATE events SET data = json_set(data, '$.bad', 'x') WHERE type = 'node_finished'",
    )
    conn = sqlite3.connect(state / DB_FILE)
    with conn:
        conn.execute('UPDATE events SET data = replace(data, \'"bad":"x"\', \'"bad":"\\ud800"\')')
    conn.close()
    err = _says_damaged(capsys, ["trace", "export", "last"], state)
    assert "holds a lone surrogate" in err


@pytest.mark.parametrize(
    "text",
    ["[NaN]", "Infinity", '{"a": -Infinity}', "1e999", "[-1e999]", DEEP, "9" * 5000, '"\\udc00"'],
)
def test_stored_value_refuses_what_the_store_never_writes(text: str) -> None:
    with pytest.raises(DamagedRow, match=r"^the thing "):
        stored_value(text, "the thing")


@pytest.mark.parametrize("text", ['{"a": 1.5e300}', '"\\ud83d\\ude00"', "[[[]]]", "null"])
def test_stored_value_reads_what_the_store_writes(text: str) -> None:
    assert stored_value(text, "the thing") == json.loads(text)
