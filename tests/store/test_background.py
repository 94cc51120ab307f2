"""``run --background``, ``watch`` and ``cancel`` as users run them: real child processes, a
real state, the mock provider, commands that really sleep, and a run really SIGKILLed."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from runner.main import main
from runner.store import runs
from runner.store.db import opened

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/cmdline").exists(), reason="finds its processes through /proc"
)

COUNTED = """\
version: 1
name: counted
inputs: {n: {type: integer, default: 4}}
roles: {worker: {}}
concurrency: {leaves: 1}
steps:
  kind: expand
  id: fan
  over: "range(inputs.n) | list"
  as: item
  max_children: 10
  body: {kind: leaf, id: one, role: worker, prompt: "Item {{ item }}"}
tests:
  - {name: four items, expect: "outputs.fan | length == 4"}
"""
SLOW_MOCK = "defaults: {latency_ms: 600}\n"  # long enough for watch to attach on a busy machine
SLEEPY = """\
version: 1
name: sleepy
roles: {worker: {}}
steps:
  kind: sequence
  id: main
  steps:
    - {kind: leaf, id: first, role: worker, prompt: "Go"}
    - kind: command
      id: nap
      run: [EXE, "-c", CODE]
permissions: {commands: [PATTERN]}
"""
RUN_ID = re.compile(r"as run (\S+)")


@pytest.fixture
def state(repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A state directory, the working directory a git repository; every process started for the
    test (their command lines name tmp_path) is killed at the end."""
    monkeypatch.chdir(repo)
    yield tmp_path / "state"
    for pid in processes(str(tmp_path)):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def processes(*markers: str) -> list[int]:
    """The processes (this one aside) whose command line holds every marker."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            line = (entry / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if all(marker in line for marker in markers):
            found.append(int(entry.name))
    return found


def sleepy(tmp_path: Path) -> str:
    """A workflow whose command sleeps 30 s, its command line marked with tmp_path."""
    text = (
        SLEEPY.replace("EXE", json.dumps(sys.executable))
        .replace("CODE", json.dumps(f"import time; time.sleep(30)  # {tmp_path}"))
        .replace("PATTERN", json.dumps(f"{sys.executable} -c *"))
    )
    path = tmp_path / "sleepy.yaml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def until(check: Callable[[], bool], seconds: float = 10.0) -> None:
    """Wait for ``check`` to hold."""
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def start(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    """Start a background run; its id."""
    began = time.monotonic()
    assert main(["run", "--background", *args]) == 0
    assert time.monotonic() - began < 5
    out = capsys.readouterr().out
    found = RUN_ID.search(out)
    assert found, out
    return found.group(1)


def record(state: Path, run_id: str) -> runs.RunRecord:
    with opened(state, create=False) as conn:
        return runs.find(conn, run_id)


def test_watch_follows_a_background_run_to_its_end_and_its_exit_code(
    state: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    workflow = tmp_path / "counted.yaml"
    workflow.write_text(COUNTED, encoding="utf-8")
    script = tmp_path / "slow.yaml"
    script.write_text(SLOW_MOCK, encoding="utf-8")
    common = [str(workflow), "--mock-script", str(script), "--state", str(state)]
    passing = start(capsys, *common)
    assert (state / "logs" / f"{passing}.log").is_file()
    # One run per file; the failing one gets an input that breaks its test.
    assert main(["run", "--background", *common, "--input", "n=3"]) == 0
    failing = RUN_ID.findall(capsys.readouterr().out)[0]
    assert record(state, passing).workflow == "counted"  # recorded before `run` returned

    assert main(["watch", passing, "--plain", "--state", str(state)]) == 0
    out = capsys.readouterr().out
    assert "Ctrl-C stops watching, not the run" in out
    assert "counted succeeded (5/5 done, 0 failed" in out
    assert "tests 1/1 passed" in out

    assert main(["watch", failing, "--plain", "--state", str(state)]) == 1
    assert "tests 0/1 passed" in capsys.readouterr().out

    assert main(["cancel", passing, "--state", str(state)]) == 0
    assert "already ended" in capsys.readouterr().out


def test_a_broken_workflow_fails_at_once_and_starts_nothing(
    state: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text(COUNTED.replace("role: worker", "role: nobody"), encoding="utf-8")
    assert main(["run", "--background", str(broken), "--state", str(state)]) == 2
    assert "role 'nobody' is not declared" in capsys.readouterr().err
    assert not (state / "logs").exists()


def test_cancel_stops_a_background_run_and_its_command(
    state: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_id = start(capsys, sleepy(tmp_path), "--state", str(state))
    until(lambda: bool(processes("time.sleep(30)", str(tmp_path))))
    began = time.monotonic()
    assert main(["cancel", run_id, "--state", str(state)]) == 0
    assert time.monotonic() - began < 8
    out = capsys.readouterr().out
    assert "sleepy cancelled" in out
    assert record(state, run_id).status == "cancelled"
    assert not processes("time.sleep(30)", str(tmp_path))  # its whole group was stopped
    until(lambda: not runs.alive(record(state, run_id)), 5)


def test_a_killed_background_run_shows_as_crashed(
    state: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_id = start(capsys, sleepy(tmp_path), "--state", str(state))
    until(lambda: bool(processes("time.sleep(30)", str(tmp_path))))
    pid = record(state, run_id).pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    until(lambda: runs.shown_status(record(state, run_id)) == runs.CRASHED, 5)

    assert main(["runs", "--state", str(state)]) == 0
    assert "crashed" in capsys.readouterr().out
    assert main(["watch", run_id, "--plain", "--state", str(state)]) == 1
    out = capsys.readouterr().out
    assert "sleepy crashed" in out
    assert f"`resume {run_id}`" in out
    assert main(["cancel", run_id, "--state", str(state)]) == 0
    assert "is not running" in capsys.readouterr().out
