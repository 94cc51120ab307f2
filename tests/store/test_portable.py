"""Portable traces: export and import round-trip a run byte for byte, a damaged or foreign file
is refused with its name and line, and an imported trace replays with no provider."""

from __future__ import annotations

import json
import os
import sqlite3
import textwrap
from pathlib import Path

import pytest

from runner.canonical import canonical_json
from runner.main import main
from runner.store import runs
from runner.store.db import DB_FILE, opened
from runner.store.trace import events

WORKFLOW = """\
version: 1
name: portable
roles: {worker: {}}
permissions: {commands: ["python -c *"]}
steps:
  kind: sequence
  id: main
  steps:
    - kind: command
      id: facts
      run: ["python", "-c", "print('two facts: é and ✓')"]
    - kind: expand
      id: fan
      over: "[1, 2]"
      as: item
      max_children: 2
      body:
        kind: leaf
        id: one
        role: worker
        prompt: "Judge item {{ item }} given {{ outputs.facts.stdout | trim }}"
        output:
          type: object
          properties: {ok: {type: boolean}}
          required: [ok]
"""

RUN_COLUMNS = (
    "id, workflow, workflow_hash, source, document, inputs, config, providers, mode, parent,"
    " status, reason, started_at, updated_at, finished_at, done, total, failed, calls, tokens,"
    " cost_usd, memo_hits, memo_misses, saved_tokens, saved_usd, output, tests"
)

JSON_COLUMNS = {"document", "inputs", "config", "providers", "output", "tests"}


@pytest.fixture
def exported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, str]:
    """A recorded run exported to a file: the file and the run id."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "wf.yaml").write_text(textwrap.dedent(WORKFLOW), encoding="utf-8")
    state = tmp_path / "state"
    assert main(["run", "wf.yaml", "--plain", "--state", str(state), "--report-dir", "r"]) == 0
    with opened(state, create=False) as conn:
        run_id = runs.find(conn, "last").id
    assert main(["trace", "export", run_id, "--state", str(state), "-o", "run.jsonl"]) == 0
    return tmp_path / "run.jsonl", run_id


def _rows(state: Path, run_id: str) -> tuple[list[object], list[list[object]]]:
    """A run's row and its events as the database holds them, JSON columns decoded (the
    store may encode JSON with its keys in any order)."""
    conn = sqlite3.connect(state / DB_FILE)
    try:
        row = conn.execute(f"SELECT {RUN_COLUMNS} FROM runs WHERE id = ?", (run_id,)).fetchone()
        found = conn.execute(
            "SELECT seq, position, path, type, key, data, at FROM events WHERE run_id = ?"
            " ORDER BY seq",
            (run_id,),
        ).fetchall()
    finally:
        conn.close()
    names = [name.strip() for name in RUN_COLUMNS.split(",")]
    decoded = [
        json.loads(value) if name in JSON_COLUMNS and value is not None else value
        for name, value in zip(names, row, strict=True)
    ]
    return decoded, [[*event[:5], json.loads(event[5]), event[6]] for event in found]


def _import(path: Path, state: Path) -> int:
    return main(["trace", "import", str(path), "--state", str(state)])


def test_export_is_canonical_jsonl_and_the_same_twice(
    exported: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    path, run_id = exported
    capsys.readouterr()
    assert main(["trace", "export", run_id[:12], "--state", "state"]) == 0
    assert capsys.readouterr().out.encode("utf-8") == path.read_bytes()
    lines = path.read_bytes().decode("utf-8").splitlines()
    header = json.loads(lines[0])
    assert (header["format"], header["version"]) == ("branchleaf-trace", 1)
    assert header["events"] == len(lines) - 1
    assert header["run"]["id"] == run_id
    assert not {"pid", "host", "argv"} & header["run"].keys()
    assert all(canonical_json(json.loads(line)) == line for line in lines)
    assert "✓" in path.read_text(encoding="utf-8")


def test_round_trip_into_a_fresh_state_is_byte_for_byte(
    exported: tuple[Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, run_id = exported
    fresh = tmp_path / "fresh"
    assert _import(path, fresh) == 0
    assert f"imported run {run_id}" in capsys.readouterr().out
    assert _rows(fresh, run_id) == _rows(tmp_path / "state", run_id)
    assert main(["trace", "export", run_id, "--state", str(fresh), "-o", "again.jsonl"]) == 0
    assert (tmp_path / "again.jsonl").read_bytes() == path.read_bytes()


def test_importing_the_same_run_again_changes_nothing(
    exported: tuple[Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, run_id = exported
    assert _import(path, tmp_path / "state") == 0
    assert f"run {run_id} is already in" in capsys.readouterr().out


def test_a_different_run_with_the_same_id_is_refused(
    exported: tuple[Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, run_id = exported
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    header = json.loads(lines[0])
    header["run"]["reason"] = "edited"
    path.write_text(json.dumps(header) + "\n" + "".join(lines[1:]), encoding="utf-8")
    assert _import(path, tmp_path / "state") == 2
    err = capsys.readouterr().err
    assert f"already holds a different run {run_id}" in err
    assert "Traceback" not in err


def test_a_run_exported_while_running_is_imported_as_crashed(
    exported: tuple[Path, str], tmp_path: Path
) -> None:
    path, run_id = exported
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    header = json.loads(lines[0])
    header["run"].update(status="running", reason=None, finished_at=None)
    path.write_text(json.dumps(header) + "\n" + "".join(lines[1:]), encoding="utf-8")
    assert _import(path, tmp_path / "fresh") == 0
    with opened(tmp_path / "fresh", create=False) as conn:
        record = runs.find(conn, run_id)
    assert record.status == "crashed"
    assert record.reason == "it was still running when it was exported"


def _broken(path: Path, content: bytes, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    path.write_bytes(content)
    assert _import(path, tmp_path / "fresh") == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return " ".join(err.split())


def test_a_file_that_is_not_json_is_refused_with_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "notes.txt"
    err = _broken(path, b"hello\n", tmp_path, capsys)
    assert f"{path}:1: not a Branchleaf trace: the header is not valid JSON" in err


def test_a_json_file_of_another_format_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "other.jsonl"
    err = _broken(path, b'{"format": "something-else", "version": 1}\n', tmp_path, capsys)
    assert f"{path}:1: not a Branchleaf trace (the header's format is 'something-else'" in err


def test_a_newer_version_asks_for_an_upgrade(
    exported: tuple[Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, _ = exported
    lines = path.read_bytes().split(b"\n")
    header = json.loads(lines[0])
    header["version"] = 2
    err = _broken(path, b"\n".join([json.dumps(header).encode(), *lines[1:]]), tmp_path, capsys)
    assert f"{path}:1: the trace is format version 2, written by a newer Branchleaf" in err
    assert "upgrade Branchleaf" in err


def test_a_file_cut_in_a_line_is_refused(
    exported: tuple[Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, _ = exported
    content = path.read_bytes()
    count = content.count(b"\n")
    err = _broken(path, content[: len(content) // 2], tmp_path, capsys)
    assert "ends in the middle of a line, so it was cut short" in err
    assert f"{path}:" in err
    assert int(err.split(f"{path}:")[1].split(":")[0]) <= count


def test_a_file_cut_between_lines_is_refused(
    exported: tuple[Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, _ = exported
    lines = path.read_bytes().splitlines(keepends=True)
    err = _broken(path, b"".join(lines[:-2]), tmp_path, capsys)
    assert f"the header announces {len(lines) - 1} events but the file has {len(lines) - 3}" in err
    assert not (tmp_path / "fresh").exists()


def test_a_file_cut_in_its_header_is_refused(
    exported: tuple[Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, _ = exported
    header = path.read_bytes().split(b"\n")[0]
    err = _broken(path, header[:-10], tmp_path, capsys)
    assert f"{path}:1: the file ends in the middle of a line, so it was cut short" in err


def test_a_damaged_event_names_its_line(
    exported: tuple[Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, _ = exported
    lines = path.read_bytes().splitlines(keepends=True)
    event = json.loads(lines[3])
    del event["data"]
    lines[3] = json.dumps(event).encode() + b"\n"
    err = _broken(path, b"".join(lines), tmp_path, capsys)
    assert f"{path}:4 has no 'data' field" in err


def test_an_edited_workflow_document_is_refused(
    exported: tuple[Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, _ = exported
    lines = path.read_bytes().splitlines(keepends=True)
    header = json.loads(lines[0])
    header["run"]["document"]["name"] = "renamed"
    err = _broken(path, json.dumps(header).encode() + b"\n" + b"".join(lines[1:]), tmp_path, capsys)
    assert "does not match its workflow_hash" in err


def test_a_missing_file_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _import(tmp_path / "nope.jsonl", tmp_path / "fresh") == 2
    assert "cannot read the trace file" in capsys.readouterr().err


def test_export_writes_its_file_whole_or_says_why_not(
    exported: tuple[Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, run_id = exported
    assert [p.name for p in path.parent.iterdir() if p.name.endswith(".tmp")] == []
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # made like any new file
    # Missing folders are made.
    nested = tmp_path / "new" / "folder" / "run.jsonl"
    assert main(["trace", "export", run_id, "--state", "state", "-o", str(nested)]) == 0
    assert nested.read_bytes() == path.read_bytes()
    # A file where a folder should be cannot be written through.
    blocked = path / "run.jsonl"
    assert main(["trace", "export", run_id, "--state", "state", "-o", str(blocked)]) == 2
    assert f"cannot write the trace to {blocked}: {path} is a file, not a folder" in (
        capsys.readouterr().err
    )


def test_exporting_an_unknown_run_says_so(
    exported: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["trace", "export", "nosuchrun", "--state", "state"]) == 2
    assert "there is no run 'nosuchrun' in this state" in capsys.readouterr().err


def test_an_imported_trace_replays_in_a_fresh_state_without_any_provider(
    exported: tuple[Path, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, run_id = exported
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # no workflow file, no state, no mock script here
    state = elsewhere / "state"
    assert _import(path, state) == 0
    assert main(["replay", run_id, "--plain", "--state", str(state), "--report-dir", "r"]) == 0
    with opened(state, create=False) as conn:
        replay = runs.find(conn, "last")
        replayed = events(conn, replay.id)
        original = runs.find(conn, run_id)
    assert (replay.mode, replay.parent, replay.status, replay.calls) == (
        "replay",
        run_id,
        "succeeded",
        0,
    )
    # Answered from the imported run: the replay records no call or command of its own.
    assert not [e for e in replayed if e.type in ("model_call", "command")]
    assert replay.output == original.output
