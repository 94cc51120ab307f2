"""Files a user names are read only when they are regular files, and never waited on."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from runner.main import main
from runner.userfiles import UnreadableFile, read_user_text


def _validate_in_child(path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    # A child process, so that a regression that blocks on the pipe is a failed test, not a
    # hung suite.
    return subprocess.run(
        [sys.executable, "-m", "runner", *extra, str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("suffix", [".yaml", ".json", ".star"])
def test_validate_of_a_fifo_says_so_and_does_not_wait(tmp_path: Path, suffix: str) -> None:
    fifo = tmp_path / f"pipe{suffix}"
    os.mkfifo(fifo)
    done = _validate_in_child(fifo, "validate")
    assert done.returncode == 2, done.stderr
    assert "named pipe (FIFO), not a regular file" in done.stdout + done.stderr
    assert "Traceback" not in done.stderr


def test_compile_of_a_device_is_refused(tmp_path: Path) -> None:
    device = tmp_path / "zero.json"
    device.symlink_to("/dev/zero")
    done = _validate_in_child(device, "compile")
    assert done.returncode == 2
    assert "character device, not a regular file" in done.stderr


def test_run_with_a_fifo_as_mock_script_is_refused(tmp_path: Path) -> None:
    fifo = tmp_path / "mock.yaml"
    os.mkfifo(fifo)
    workflow = tmp_path / "w.yaml"
    workflow.write_text(
        "version: 1\nname: w\nroles: {r: {}}\nsteps: {kind: leaf, id: a, role: r, prompt: hi}\n",
        encoding="utf-8",
    )
    done = subprocess.run(
        [sys.executable, "-m", "runner", "run", str(workflow), "--mock-script", str(fifo)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=tmp_path,
    )
    assert done.returncode == 2, done.stderr
    assert f"cannot read the mock script {fifo}: it is a named pipe (FIFO)" in done.stderr


def test_a_folder_named_like_a_workflow_is_not_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "looks.yaml"
    folder.mkdir()
    assert main(["compile", str(folder)]) == 2
    assert "is a folder, not a file" in capsys.readouterr().err


def test_a_latin1_workflow_is_named_with_its_line_and_column(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    workflow = tmp_path / "w.yaml"
    workflow.write_bytes(b"version: 1\nname: w # caf\xe9\n")
    assert main(["validate", str(workflow)]) == 2
    out = capsys.readouterr().out
    assert f"{workflow}:2:14: [syntax] the file is not UTF-8 text" in out
    assert "0xe9" in out


def test_read_user_text_says_what_the_path_is(tmp_path: Path) -> None:
    with pytest.raises(UnreadableFile, match="does not exist"):
        read_user_text(str(tmp_path / "missing"))
    (tmp_path / "big").write_text("12345", encoding="utf-8")
    with pytest.raises(UnreadableFile, match="is larger than 4 bytes"):
        read_user_text(str(tmp_path / "big"), max_bytes=4)
    (tmp_path / "bom").write_bytes(b"\xef\xbb\xbfok")
    assert read_user_text(str(tmp_path / "bom")) == "ok"


def test_a_ci_mock_script_that_is_a_fifo_is_named_as_one(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "mock.yaml")
    workflow = tmp_path / "w.yaml"
    workflow.write_text(
        "version: 1\nname: w\nroles: {r: {}}\nci: {mock_script: mock.yaml}\n"
        "steps: {kind: leaf, id: a, role: r, prompt: hi}\n",
        encoding="utf-8",
    )
    done = _validate_in_child(workflow, "validate")
    assert done.returncode == 2
    assert "mock.yaml, which is a named pipe (FIFO), not a regular file" in done.stdout
