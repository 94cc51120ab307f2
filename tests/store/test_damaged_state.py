"""A damaged state, a writer that died and a state path that cannot be used are each one
sentence saying what to do, never an internal error (issue 11, point 7)."""

from __future__ import annotations

import os
import shutil
import sqlite3
import stat
import subprocess
import textwrap
from pathlib import Path

import pytest

from runner.main import main
from runner.store.db import DB_FILE

WORKFLOW = """\
version: 1
name: damage
roles: {worker: {}}
steps: {kind: leaf, id: one, role: worker, prompt: "Say ok"}
"""

READERS = [
    ["runs"],
    ["inspect", "last"],
    ["report", "last"],
    ["replay", "last", "--plain"],
    ["resume", "last", "--plain"],
    ["trace", "export", "last"],
    ["memo", "stats"],
    ["memo", "explain", "last", "one"],
    ["cancel", "last"],
    ["watch", "last", "--plain"],
]


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A state holding one run, its log copied into the database file."""
    root = tmp_path_factory.mktemp("damaged")
    workflow = root / "wf.yaml"
    workflow.write_text(textwrap.dedent(WORKFLOW), encoding="utf-8")
    state = root / "state"
    assert main(["run", str(workflow), "--plain", "--state", str(state)]) == 0
    conn = sqlite3.connect(state / DB_FILE)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return state


def _copy(recorded: Path, tmp_path: Path) -> Path:
    state = tmp_path / "state"
    shutil.copytree(recorded, state)
    return state


def _overwrite(state: Path, start: int) -> None:
    path = state / DB_FILE
    size = path.stat().st_size
    with path.open("r+b") as handle:
        handle.seek(start)
        handle.write(b"\xff" * (size - start))


def _says_damaged(
    capsys: pytest.CaptureFixture[str], argv: list[str], state: Path, code: int = 3
) -> str:
    capsys.readouterr()
    assert main([*argv, "--state", str(state)]) == code, argv
    err = capsys.readouterr().err
    assert f"the state in {state} is damaged" in err, (argv, err)
    assert f"move {state} aside" in err
    assert "trace import" in err
    assert "internal error" not in err
    assert "bug" not in err
    return err


@pytest.mark.parametrize("argv", READERS, ids=" ".join)
def test_overwritten_pages_say_the_state_is_damaged(
    argv: list[str], recorded: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = _copy(recorded, tmp_path)
    _overwrite(state, 4096)  # every page after the first, which holds the schema
    _says_damaged(capsys, argv, state)


def test_an_overwritten_header_says_the_state_is_damaged(
    recorded: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = _copy(recorded, tmp_path)
    _overwrite(state, 0)
    err = _says_damaged(capsys, ["runs"], state)
    assert "not a database" in err


@pytest.mark.parametrize("argv", READERS, ids=" ".join)
def test_a_row_whose_json_is_broken_says_the_state_is_damaged(
    argv: list[str], recorded: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = _copy(recorded, tmp_path)
    conn = sqlite3.connect(state / DB_FILE)
    conn.execute("UPDATE runs SET document = '{broken', inputs = '[1,', config = 'nul'")
    conn.commit()
    conn.close()
    err = _says_damaged(capsys, argv, state)
    assert "a stored row is not valid JSON" in err


def test_a_run_into_a_damaged_state_says_so(
    recorded: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = _copy(recorded, tmp_path)
    _overwrite(state, 4096)
    workflow = tmp_path / "wf.yaml"
    workflow.write_text(textwrap.dedent(WORKFLOW), encoding="utf-8")
    _says_damaged(capsys, ["run", str(workflow), "--plain"], state)


# The command kills the run's state writer (a child of the run, as the command is) the first
# time only, so that a resume of the run can finish it.
KILL_WRITER = """\
import os, signal, sys
marker = sys.argv[1]
if not os.path.exists(marker):
    open(marker, "w").close()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = open(f"/proc/{pid}/cmdline", "rb").read()
            parent = int(open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[1])
        except OSError:
            continue
        if b"writer_process" in cmdline and parent == os.getppid():
            os.kill(int(pid), signal.SIGKILL)
"""


def test_a_writer_that_died_says_resume_finishes_the_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "kill.py").write_text(KILL_WRITER, encoding="utf-8")
    (tmp_path / "wf.yaml").write_text(
        textwrap.dedent(
            """\
            version: 1
            name: writer-dies
            roles: {worker: {}}
            permissions: {commands: ["python kill.py killed"]}
            steps:
              kind: sequence
              id: main
              steps:
                - {kind: command, id: kill, run: ["python", "kill.py", "killed"]}
                - {kind: leaf, id: one, role: worker, prompt: "Say ok"}
            """
        ),
        encoding="utf-8",
    )
    assert main(["run", "wf.yaml", "--plain", "--state", "st"]) == 3
    err = capsys.readouterr().err
    assert "the state writer stopped" in err
    assert "`branchleaf resume " in err
    assert "--state st` finishes the run" in err
    assert "internal error" not in err
    run_id = err.split("`branchleaf resume ")[1].split()[0]
    assert main(["resume", run_id, "--state", "st", "--plain"]) == 0


def test_a_state_path_that_is_a_file_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    workflow = tmp_path / "wf.yaml"
    workflow.write_text(textwrap.dedent(WORKFLOW), encoding="utf-8")
    assert main(["run", str(workflow), "--plain", "--state", str(workflow)]) == 2
    err = capsys.readouterr().err
    assert f"cannot make the state directory {workflow}: a file of that name is there" in err


def test_a_trace_written_to_a_folder_is_a_usage_error(
    recorded: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["trace", "export", "last", "--state", str(recorded), "-o", "/"]) == 2
    err = capsys.readouterr().err
    assert "cannot write the trace to /: it is a folder" in err


def test_a_trace_written_through_a_link_replaces_the_file_it_names(
    recorded: Path, tmp_path: Path
) -> None:
    target = tmp_path / "kept.jsonl"
    target.write_text("old\n", encoding="utf-8")
    link = tmp_path / "link.jsonl"
    link.symlink_to(target)
    assert main(["trace", "export", "last", "--state", str(recorded), "-o", str(link)]) == 0
    assert link.is_symlink()
    assert target.read_bytes().startswith(b'{"events":')


def test_a_trace_written_to_a_fifo_goes_through_it(recorded: Path, tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    # The reader is a child: if the FIFO were replaced by a file, it would wait for ever.
    reader = subprocess.Popen(["cat", str(fifo)], stdout=subprocess.PIPE)
    try:
        assert main(["trace", "export", "last", "--state", str(recorded), "-o", str(fifo)]) == 0
        out, _ = reader.communicate(timeout=60)
    finally:
        reader.kill()
        reader.wait()
    assert out.startswith(b'{"events":')
    assert stat.S_ISFIFO(fifo.stat().st_mode)


@pytest.mark.parametrize(
    ("column", "value"), [("tests", "5"), ("tests", "[5]"), ("document", "[]"), ("inputs", '"x"')]
)
def test_a_row_whose_json_is_of_the_wrong_shape_says_the_state_is_damaged(
    column: str,
    value: str,
    recorded: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    state = _copy(recorded, tmp_path)
    conn = sqlite3.connect(state / DB_FILE)
    conn.execute(f"UPDATE runs SET {column} = ?", (value,))
    conn.commit()
    conn.close()
    err = _says_damaged(capsys, ["runs"], state)
    assert f"the {column} of run " in err


@pytest.mark.parametrize("argv", [["inspect", "last"], ["report", "last"], ["replay", "last"]])
def test_an_event_whose_data_is_not_an_object_says_the_state_is_damaged(
    argv: list[str], recorded: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = _copy(recorded, tmp_path)
    conn = sqlite3.connect(state / DB_FILE)
    conn.execute("UPDATE events SET data = '5'")
    conn.commit()
    conn.close()
    err = _says_damaged(capsys, argv, state)
    assert "is not an object" in err


@pytest.mark.parametrize(("column", "value"), [("started_at", "soon"), ("done", "many")])
def test_a_column_of_the_wrong_type_says_the_state_is_damaged(
    column: str, value: str, recorded: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = _copy(recorded, tmp_path)
    conn = sqlite3.connect(state / DB_FILE)
    conn.execute(f"UPDATE runs SET {column} = ?", (value,))
    conn.commit()
    conn.close()
    err = _says_damaged(capsys, ["runs"], state)
    assert f"the {column} of run " in err
