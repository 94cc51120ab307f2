"""Commands over a damaged state directory, and run ids and node names that name nothing."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from badinput.cli import BAD, assert_clean, run_inprocess
from badinput.recorded import Recorded, copy_state

DB = "state.db"


def _junk(size: int) -> bytes:
    """Deterministic bytes that are not a database."""
    out = b""
    block = b"badinput"
    while len(out) < size:
        block = hashlib.sha256(block).digest()
        out += block
    return out[:size]


def _overwrite(offset: int, data: bytes) -> Callable[[Path], None]:
    def damage(state: Path) -> None:
        with open(state / DB, "r+b") as handle:
            handle.seek(offset)
            handle.write(data)

    return damage


def _replace_db(data: bytes) -> Callable[[Path], None]:
    def damage(state: Path) -> None:
        (state / DB).write_bytes(data)

    return damage


def _truncate(fraction: float) -> Callable[[Path], None]:
    def damage(state: Path) -> None:
        path = state / DB
        size = path.stat().st_size
        with open(path, "r+b") as handle:
            handle.truncate(int(size * fraction))

    return damage


def _sql(statement: str) -> Callable[[Path], None]:
    def damage(state: Path) -> None:
        conn = sqlite3.connect(state / DB)
        try:
            with conn:
                conn.execute(statement)
        finally:
            conn.close()

    return damage


def _db_directory(state: Path) -> None:
    for name in os.listdir(state):
        if name.startswith(DB):
            (state / name).unlink()
    (state / DB).mkdir()


def _corrupt_pages(state: Path) -> None:
    path = state / DB
    size = path.stat().st_size
    with open(path, "r+b") as handle:
        # Keep the 100-byte header, so SQLite opens the file and finds the damage on reading.
        for offset in range(4096, size, 8192):
            handle.seek(offset)
            handle.write(_junk(2048))


def _dead_writer(state: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    pid = int(done.stdout)
    _sql(
        f"UPDATE runs SET status = 'running', finished_at = NULL, pid = {pid} "
        "WHERE id = (SELECT id FROM runs ORDER BY started_at DESC LIMIT 1)"
    )(state)


LAST = "(SELECT id FROM runs ORDER BY started_at DESC LIMIT 1)"
DAMAGE: dict[str, Callable[[Path], None]] = {
    "db_junk": _replace_db(_junk(64 * 1024)),
    "db_empty": _replace_db(b""),
    "db_header_smashed": _overwrite(0, _junk(100)),
    "db_pages_corrupted": _corrupt_pages,
    "db_truncated_to_header_page": _truncate(0.01),
    "db_is_directory": _db_directory,
    "wal_junk": lambda state: (state / f"{DB}-wal").write_bytes(_junk(8192)),
    "document_not_json": _sql(f"UPDATE runs SET document = '{{' WHERE id = {LAST}"),
    "document_wrong_shape": _sql(f"UPDATE runs SET document = '[1, 2]' WHERE id = {LAST}"),
    "inputs_not_json": _sql(f"UPDATE runs SET inputs = 'nope' WHERE id = {LAST}"),
    "config_nan": _sql(f"UPDATE runs SET config = '{{\"providers\": NaN}}' WHERE id = {LAST}"),
    "output_deep": _sql(f"UPDATE runs SET output = '{'[' * 5000}{']' * 5000}' WHERE id = {LAST}"),
    "status_unknown": _sql(f"UPDATE runs SET status = 'exploded' WHERE id = {LAST}"),
    "started_at_text": _sql(f"UPDATE runs SET started_at = 'yesterday' WHERE id = {LAST}"),
    "parent_is_itself": _sql(f"UPDATE runs SET parent = id, mode = 'replay' WHERE id = {LAST}"),
    "event_data_not_json": _sql(f"UPDATE events SET data = '{{' WHERE run_id = {LAST}"),
    "table_dropped": _sql("DROP TABLE events"),
    "writer_died": _dead_writer,
}

COMMANDS = {
    "runs": ["runs"],
    "inspect_node": ["inspect", "last", "review_one[0]"],
    "report_junit": ["report", "last", "--format", "junit"],
    "replay": ["replay", "last", "--plain"],
    "trace_export": ["trace", "export", "last"],
    "run": ["run", "WORKFLOW", "--mock", "--plain"],
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_damaged_state(
    damage: str,
    command: str,
    recorded: Recorded,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    state = copy_state(recorded, tmp_path / "state")
    DAMAGE[damage](state)
    argv = [str(recorded.workflow) if a == "WORKFLOW" else a for a in COMMANDS[command]]
    # Exit 3 is right for a state that is damaged, as long as it says so and what to do.
    assert_clean(run_inprocess([*argv, "--state", str(state)], capsys))


@pytest.mark.parametrize("command", ["resume", "cancel", "memo_explain"])
def test_writer_died(
    command: str, recorded: Recorded, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A run whose process died: the commands say that `resume` finishes it."""
    state = copy_state(recorded, tmp_path / "state")
    _dead_writer(state)
    argv = {
        "resume": ["resume", "last", "--plain"],
        "cancel": ["cancel", "last"],
        "memo_explain": ["memo", "explain", "last", "review_one[0]"],
    }[command]
    assert_clean(run_inprocess([*argv, "--state", str(state)], capsys))


@pytest.mark.parametrize("command", ["runs", "inspect_node", "run", "trace_export"])
@pytest.mark.parametrize("what", ["state_is_a_file", "state_unwritable", "state_missing"])
def test_state_directory_unusable(
    what: str, command: str, recorded: Recorded, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "state"
    if what == "state_is_a_file":
        state.write_text("not a directory\n", encoding="utf-8")
    elif what == "state_unwritable":
        copy_state(recorded, state)
        state.chmod(0o500)
        (state / DB).chmod(0o400)
        if os.access(state / DB, os.W_OK):
            pytest.skip("file modes do not stop this user from writing")
    argv = [str(recorded.workflow) if a == "WORKFLOW" else a for a in COMMANDS[command]]
    outcome = run_inprocess([*argv, "--state", str(state)], capsys)
    assert_clean(outcome, allowed=None if what == "state_missing" and command == "run" else BAD)


RUN_IDS = {
    "unknown": "20990101-000000-abcdef",
    "empty": "",
    "ambiguous_prefix": "2",
    "sql_wildcard_percent": "%",
    "sql_quote": "' OR 1=1 --",
    "very_long": "r" * 10_000,
    "nul": "a\x00b",
    "surrogate": "\udcff",
    "last_padded": " last",
    "newline": "last\nlast",
}

RUN_COMMANDS = {
    "inspect": ["inspect", "RUN"],
    "report": ["report", "RUN"],
    "replay": ["replay", "RUN", "--plain"],
    "resume": ["resume", "RUN", "--plain"],
    "memo_stats": ["memo", "stats", "RUN"],
    "memo_explain": ["memo", "explain", "RUN", "review_one[0]"],
    "trace_export": ["trace", "export", "RUN"],
    "cancel": ["cancel", "RUN"],
    "watch": ["watch", "RUN", "--plain"],
}


@pytest.mark.parametrize("run_id", sorted(RUN_IDS))
@pytest.mark.parametrize("command", sorted(RUN_COMMANDS))
def test_run_id_names_nothing(
    command: str,
    run_id: str,
    recorded: Recorded,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = [RUN_IDS[run_id] if a == "RUN" else a for a in RUN_COMMANDS[command]]
    state = copy_state(recorded, tmp_path / "state")
    # `memo stats ''` is read as no run given, which is fair.
    allowed = None if (command, run_id) == ("memo_stats", "empty") else BAD
    assert_clean(run_inprocess([*argv, "--state", str(state)], capsys), allowed=allowed)


@pytest.mark.parametrize("command", sorted(RUN_COMMANDS))
def test_last_in_an_empty_state(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["last" if a == "RUN" else a for a in RUN_COMMANDS[command]]
    (tmp_path / "empty").mkdir()
    assert_clean(run_inprocess([*argv, "--state", str(tmp_path / "empty")], capsys), allowed=BAD)


NODES = ["nope", "[", "*", "review_one[99999999999999999999999]", "review_one[-1]", "a\x00b"]


@pytest.mark.parametrize("node", NODES, ids=repr)
@pytest.mark.parametrize("command", ["inspect", "memo explain"])
def test_node_names_nothing(
    command: str, node: str, recorded: Recorded, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [*command.split(), "last", node, "--state", str(recorded.state)]
    assert_clean(run_inprocess(argv, capsys), allowed=BAD)


@pytest.mark.parametrize("target", ["missing_folder", "a_folder"])
@pytest.mark.parametrize("command", ["report", "trace_export"])
def test_output_cannot_be_written(
    command: str,
    target: str,
    recorded: Recorded,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    output = {
        "missing_folder": str(tmp_path / "no" / "such" / "out"),
        "a_folder": str(tmp_path),
    }[target]
    argv = ["report", "last"] if command == "report" else ["trace", "export", "last"]
    state = ["--state", str(recorded.state)]
    # Missing folders are made; a folder where the file should go is an error.
    allowed = BAD if target == "a_folder" else None
    assert_clean(run_inprocess([*argv, "-o", output, *state], capsys), allowed=allowed)
