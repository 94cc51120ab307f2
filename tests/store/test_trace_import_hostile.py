"""Hostile trace files: each is one sentence naming the file (and line), exit 2, no hang and no
internal error (issue 11, point 7)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from runner.canonical import content_hash
from runner.main import main

WORKFLOW = """\
version: 1
name: hostile
roles: {worker: {}}
steps: {kind: leaf, id: one, role: worker, prompt: "Say ok"}
"""


@pytest.fixture(scope="module")
def header(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """The header line of a real exported trace."""
    root = tmp_path_factory.mktemp("hostile")
    (root / "wf.yaml").write_text(textwrap.dedent(WORKFLOW), encoding="utf-8")
    state = str(root / "state")
    assert main(["run", str(root / "wf.yaml"), "--plain", "--state", state]) == 0
    assert main(["trace", "export", "last", "--state", state, "-o", str(root / "t.jsonl")]) == 0
    return (root / "t.jsonl").read_bytes().split(b"\n")[0]


def _refused(path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    capsys.readouterr()
    assert main(["trace", "import", str(path), "--state", str(tmp_path / "fresh")]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "internal error" not in err
    assert "Traceback" not in err
    assert str(path) in err
    return err


DEPTH = 100_000


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (1, "the header nests arrays or objects too deeply"),
        (2, "an event nests arrays or objects too deeply"),
    ],
)
def test_a_deeply_nested_line_is_refused_with_its_line(
    line: int, expected: str, header: bytes, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    deep = b"[" * DEPTH + b"]" * DEPTH
    path = tmp_path / "deep.jsonl"
    path.write_bytes((deep if line == 1 else header + b"\n" + deep) + b"\n")
    err = _refused(path, tmp_path, capsys)
    assert f"{path}:{line}: {expected}" in err


def test_a_deeply_nested_last_line_without_newline_is_refused(
    header: bytes, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "deep.jsonl"
    path.write_bytes(header + b"\n" + b"[" * DEPTH)
    err = _refused(path, tmp_path, capsys)
    assert f"{path}:2: the last line nests arrays or objects too deeply" in err


def test_a_fifo_is_refused_without_waiting(tmp_path: Path) -> None:
    fifo = tmp_path / "t.jsonl"
    os.mkfifo(fifo)
    # Nothing ever writes to the FIFO: reading it would wait forever, so this runs in a child.
    done = subprocess.run(
        [sys.executable, "-m", "runner", "trace", "import", str(fifo), "--state", "s"],
        cwd=tmp_path,
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert f"cannot read the trace file {fifo}: it is not a regular file" in done.stderr


def test_a_folder_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = _refused(tmp_path, tmp_path, capsys)
    assert f"cannot read the trace file {tmp_path}: it is a folder" in err


def test_non_utf8_bytes_are_refused_with_their_line(
    header: bytes, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "latin.jsonl"
    path.write_bytes(header + b'\n{"type": "caf\xe9"}\n')
    err = _refused(path, tmp_path, capsys)
    assert f"{path}:2: the line is not UTF-8 text" in err


@pytest.mark.parametrize(
    "garbage",
    [b'{"seq": ', b"\x00\x01\x02", b"]]]", b'{"a": NaN}', b"{}{}", b'"just a string"'],
)
def test_garbled_lines_are_refused_with_their_line(
    garbage: bytes, header: bytes, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "garbled.jsonl"
    path.write_bytes(header + b"\n" + garbage + b"\n")
    err = _refused(path, tmp_path, capsys)
    assert f"{path}:2:" in err


def test_a_truncated_header_is_refused(
    header: bytes, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "cut.jsonl"
    path.write_bytes(header[: len(header) // 3])
    err = _refused(path, tmp_path, capsys)
    assert f"{path}:1: the file ends in the middle of a line" in err


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> list[bytes]:
    """The lines of a real exported trace with a model call and a command."""
    root = tmp_path_factory.mktemp("answers")
    (root / "wf.yaml").write_text(
        textwrap.dedent(
            """\
            version: 1
            name: answers
            roles: {worker: {}}
            permissions: {commands: ["python -c *"]}
            steps:
              kind: sequence
              id: main
              steps:
                - {kind: command, id: facts, run: ["python", "-c", "print(1)"]}
                - {kind: leaf, id: one, role: worker, prompt: "Say ok"}
            """
        ),
        encoding="utf-8",
    )
    state = str(root / "state")
    assert main(["run", str(root / "wf.yaml"), "--plain", "--state", state]) == 0
    assert main(["trace", "export", "last", "--state", state, "-o", str(root / "t.jsonl")]) == 0
    return (root / "t.jsonl").read_bytes().splitlines()


def _spend(data: dict) -> None:  # type: ignore[type-arg]
    data["spend"]["bogus"] = 1


def _cost(data: dict) -> None:  # type: ignore[type-arg]
    data["spend"]["cost_usd"] = "a lot"


def _reply(data: dict) -> None:  # type: ignore[type-arg]
    data["reply"] = {}


def _usage(data: dict) -> None:  # type: ignore[type-arg]
    data["reply"]["usage"] = {"prompt_tokens": "many"}


def _key_fields(data: dict) -> None:  # type: ignore[type-arg]
    data["request"]["key_fields"] = "x"


def _messages(data: dict) -> None:  # type: ignore[type-arg]
    data["request"]["messages"] = [["user"]]


def _argv(data: dict) -> None:  # type: ignore[type-arg]
    data["argv"] = ["python", 1]


SHAPES = {
    "spend": ("model_call", _spend, "the model_call event's spend has an unknown field 'bogus'"),
    "cost": ("model_call", _cost, "the model_call event's spend: 'cost_usd' is not a number"),
    "reply": ("model_call", _reply, "the model_call event's reply has no text"),
    "usage": ("model_call", _usage, "the model_call event's reply: the usage's 'prompt_tokens'"),
    "key_fields": ("model_call", _key_fields, "the model_call event's request: key_fields is"),
    "messages": ("model_call", _messages, "the model_call event's request: messages is not"),
    "argv": ("command", _argv, "the command event's argv holds an item that is not a string"),
}


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_an_answer_of_the_wrong_shape_is_refused_with_its_line(
    shape: str, exported: list[bytes], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kind, mutate, expected = SHAPES[shape]
    lines = list(exported)
    number = next(i for i, line in enumerate(lines) if i and json.loads(line)["type"] == kind)
    event = json.loads(lines[number])
    mutate(event["data"])
    lines[number] = json.dumps(event).encode()
    path = tmp_path / "shaped.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    err = _refused(path, tmp_path, capsys)
    assert f"{path}:{number + 1}: {expected}" in err


HEADERS = {
    "document": (
        {"document": {"name": "x"}},
        "the run's workflow document is not a valid workflow: missing required field 'version'",
    ),
    "node": (
        {"document": {"version": 1, "name": "x", "roles": {}, "steps": {"kind": "leaf"}}},
        "the run's workflow document is not a valid workflow: missing required field 'id'",
    ),
    "config": (
        {"config": {"providers": 5}},
        "the run's workflow or configuration cannot be rebuilt",
    ),
    "providers": (
        {"providers": {"providers": {"p": 5}}},
        "the run's providers are not objects with an endpoint",
    ),
    "tests": ({"tests": [5]}, "the run's tests are not objects with a name and passed"),
}


@pytest.mark.parametrize("field", sorted(HEADERS))
def test_a_run_a_replay_could_not_rebuild_is_refused(
    field: str, exported: list[bytes], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    change, expected = HEADERS[field]
    header = json.loads(exported[0])
    header["run"].update(change)
    # The hash matches: the file was made to pass that check, as a hostile one would be.
    header["run"]["workflow_hash"] = content_hash(header["run"]["document"])
    path = tmp_path / "rebuilt.jsonl"
    path.write_bytes(b"\n".join([json.dumps(header).encode(), *exported[1:]]) + b"\n")
    err = _refused(path, tmp_path, capsys)
    assert f"{path}:1: {expected}" in err


def test_a_lone_surrogate_is_refused_with_its_line(
    exported: list[bytes], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    event = json.loads(exported[1])
    event["path"] = "\udc80"
    path = tmp_path / "surrogate.jsonl"
    lines = [exported[0], json.dumps(event).encode(), *exported[2:]]
    path.write_bytes(b"\n".join(lines) + b"\n")
    err = _refused(path, tmp_path, capsys)
    assert f"{path}:2: an event holds a lone surrogate ('\\udc80'), which is not text" in err


def test_a_pair_of_surrogates_is_text(
    exported: list[bytes], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    header = json.loads(exported[0])
    header["run"]["reason"] = "\U0001f600"  # written as an escaped pair by json.dumps
    path = tmp_path / "pair.jsonl"
    path.write_bytes(b"\n".join([json.dumps(header).encode(), *exported[1:]]) + b"\n")
    assert b"\\ud83d\\ude00" in path.read_bytes()
    assert main(["trace", "import", str(path), "--state", str(tmp_path / "fresh")]) == 0


@pytest.mark.parametrize("field", ["seq", "at"])
def test_a_number_no_column_can_hold_is_refused(
    field: str, exported: list[bytes], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    event = json.loads(exported[1])
    event[field] = 10**30
    path = tmp_path / "huge.jsonl"
    path.write_bytes(b"\n".join([exported[0], json.dumps(event).encode(), *exported[2:]]) + b"\n")
    err = _refused(path, tmp_path, capsys)
    assert f"{path}:2: '{field}' is 1000000000000000000000000000000, not" in err
