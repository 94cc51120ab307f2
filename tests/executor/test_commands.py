"""Command nodes run as real subprocesses, and never outlive their run."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import time
from pathlib import Path

import pytest

from runner.errors import RunnerError
from runner.executor import commands
from runner.executor.commands import CommandError, finish, run_command

PY = sys.executable


def run(argv: list[str], cwd: Path, **kwargs: object) -> commands.CommandResult:
    options: dict[str, object] = {"env": None, "timeout_s": 10.0, **kwargs}
    return asyncio.run(run_command(argv, cwd=cwd, **options))  # type: ignore[arg-type]


def alive(pid: int) -> bool:
    """Whether pid is a running process; zombies (never reaped by PID 1 in containers) are not."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in {"Z", "X"}


def pids(text: str) -> list[int]:
    return [int(word) for word in text.split()]


def test_output_exit_code_env_and_cwd(tmp_path: Path) -> None:
    script = (
        "import os, sys; print(os.getcwd()); print(os.environ['BL_X']);"
        "print(os.environ['PATH'] == sys.argv[1]); print('oops', file=sys.stderr); sys.exit(3)"
    )
    result = run([PY, "-c", script, os.environ["PATH"]], tmp_path, env={"BL_X": "y z"})
    assert result.stdout.splitlines() == [str(tmp_path), "y z", "True"]
    assert result.stderr == "oops\n"
    assert result.exit_code == 3
    assert not result.timed_out
    assert result.argv == (PY, "-c", script, os.environ["PATH"])
    assert result.as_output() == {"exit_code": 3, "stdout": result.stdout, "stderr": "oops\n"}


def test_success_and_no_stdin(tmp_path: Path) -> None:
    # stdin is /dev/null: cat ends at once instead of waiting for input.
    result = run(["cat"], tmp_path, timeout_s=5.0)
    assert (result.exit_code, result.stdout, result.stderr, result.timed_out) == (0, "", "", False)


def test_output_is_truncated_with_a_marker(tmp_path: Path) -> None:
    # More than a pipe buffer, so the reader must keep draining past the limit.
    script = "import sys; sys.stdout.write('x' * 300000); sys.stderr.write('short')"
    result = run([PY, "-c", script], tmp_path, max_output_bytes=100)
    assert result.stdout.startswith("x" * 100 + "\n[output truncated: 299900 of 300000 bytes cut")
    assert result.stdout.count("x") == 100
    assert result.stderr == "short"
    assert result.exit_code == 0


def test_bad_utf8_is_replaced(tmp_path: Path) -> None:
    result = run([PY, "-c", "import sys; sys.stdout.buffer.write(b'a\\xffb')"], tmp_path)
    assert result.stdout == "a\ufffdb"


def test_timeout_kills_the_process_and_its_children(tmp_path: Path) -> None:
    started = time.monotonic()
    result = run(["sh", "-c", "sleep 30 & echo $! $$; sleep 30"], tmp_path, timeout_s=0.5)
    assert time.monotonic() - started < 5
    assert result.timed_out
    assert result.exit_code is None
    child, shell = pids(result.stdout)
    assert not alive(child)
    assert not alive(shell)


def test_sigterm_ignored_gets_sigkill(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(commands, "TERM_GRACE_S", 0.3)
    script = "trap '' TERM; sleep 30 & echo $! $$; wait"
    started = time.monotonic()
    result = run(["sh", "-c", script], tmp_path, timeout_s=0.3)
    assert time.monotonic() - started < 3
    assert result.timed_out
    assert not any(alive(pid) for pid in pids(result.stdout))


def test_background_children_do_not_outlive_a_finished_command(tmp_path: Path) -> None:
    started = time.monotonic()
    result = run(["sh", "-c", "sleep 30 & echo $!"], tmp_path)
    assert time.monotonic() - started < 5
    assert result.exit_code == 0
    assert not alive(pids(result.stdout)[0])


def test_cancel_kills_the_group_and_reaps_the_process(tmp_path: Path) -> None:
    script = "sleep 30 & echo $! $$ > pids.tmp; mv pids.tmp pids; wait"

    async def scenario() -> list[int]:
        task = asyncio.create_task(
            run_command(["sh", "-c", script], cwd=tmp_path, env=None, timeout_s=None)
        )
        deadline = time.monotonic() + 5
        while not (tmp_path / "pids").exists():
            assert time.monotonic() < deadline, "the command never started"
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return pids((tmp_path / "pids").read_text())

    child, shell = asyncio.run(scenario())
    assert not alive(child)
    # Our own child is reaped, not left as a zombie.
    assert not Path(f"/proc/{shell}").exists()


def test_a_second_cancel_does_not_cut_the_cleanup_short(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(commands, "TERM_GRACE_S", 0.3)
    script = "trap '' TERM; sleep 30 & echo $! $$ > pids.tmp; mv pids.tmp pids; wait"

    async def scenario() -> list[int]:
        task = asyncio.create_task(
            run_command(["sh", "-c", script], cwd=tmp_path, env=None, timeout_s=None)
        )
        while not (tmp_path / "pids").exists():
            await asyncio.sleep(0.01)
        task.cancel()
        await asyncio.sleep(0.1)  # inside the SIGTERM grace period, which the group ignores
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return pids((tmp_path / "pids").read_text())

    assert not any(alive(pid) for pid in asyncio.run(asyncio.wait_for(scenario(), 10)))


@pytest.mark.skipif(shutil.which("setsid") is None, reason="needs setsid")
def test_a_descendant_that_escapes_the_group_does_not_hang_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(commands, "DRAIN_S", 0.2)
    # setsid moves the sleep out of the process group while it keeps stdout open.
    script = "setsid sh -c 'echo $$ > escaped; exec sleep 30' & sleep 0.2"
    try:
        started = time.monotonic()
        result = run(["sh", "-c", script], tmp_path)
        assert time.monotonic() - started < 3
        assert result.exit_code == 0
    finally:
        escaped = tmp_path / "escaped"
        if escaped.exists():
            os.kill(int(escaped.read_text()), 9)


def test_missing_executable_is_a_command_error(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match=r"'no-such-tool-xyz' was not found .*PATH") as info:
        run(["no-such-tool-xyz", "--flag"], tmp_path)
    assert isinstance(info.value, RunnerError)
    assert "\n" not in str(info.value)


def test_missing_cwd_is_a_command_error(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match=r"cwd .*missing is not an existing directory"):
        run(["true"], tmp_path / "missing")


def test_empty_argv_is_a_command_error(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="empty `run`"):
        run([], tmp_path)


def test_finish_outlasts_a_cancel() -> None:
    done: list[str] = []

    async def slow() -> None:
        await asyncio.sleep(0.1)
        done.append("slow")

    async def scenario() -> None:
        task = asyncio.create_task(finish(slow()))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert done == ["slow"]

    asyncio.run(scenario())


def test_a_file_that_is_not_executable_is_a_command_error(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not a program\n")
    with pytest.raises(CommandError, match=r"'./notes.txt' cannot start .*Permission denied"):
        run(["./notes.txt"], tmp_path)


def test_the_ci_credentials_are_withheld_unless_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    names = sorted(commands.WITHHELD)
    for name in names:
        monkeypatch.setenv(name, "secret")
    script = "import os, sys; print([os.environ.get(n) for n in sys.argv[1:]])"
    withheld = run([PY, "-c", script, *names, "HOME"], tmp_path)
    assert withheld.stdout.strip() == repr([None] * len(names) + [os.environ.get("HOME")])
    given = run([PY, "-c", script, "GITHUB_TOKEN"], tmp_path, env={"GITHUB_TOKEN": "passed"})
    assert given.stdout.strip() == "['passed']"
    assert os.environ["GITHUB_TOKEN"] == "secret"  # the runner's own environment is untouched
