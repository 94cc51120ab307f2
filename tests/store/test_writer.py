"""The state writer: what it commits, when a waiter may go on, and how a failed commit or a
writer that stops shows."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import time
from pathlib import Path

import pytest

from runner.canonical import compact_json
from runner.store import runs
from runner.store.db import DB_FILE, StoreError, opened
from runner.store.journal import EVENTS
from runner.store.writer import BATCH_ROWS, PIPE_BYTES, Writer


def _row(run_id: str, seq: int, data: object) -> tuple[object, ...]:
    return (run_id, seq, f"{seq:06d}", "leaf", "node_finished", None, compact_json(data), 1.5)


def _run(directory: Path) -> str:
    with opened(directory) as conn:
        run_id = runs.new_run_id()
        runs.create(
            conn,
            run_id=run_id,
            workflow="w",
            workflow_hash="h",
            source=None,
            document={},
            inputs={},
            env={},
            config={},
            providers={},
            mode="run",
            parent=None,
            argv=None,
        )
    return run_id


def _data(directory: Path, run_id: str) -> list[str]:
    reader = sqlite3.connect(directory / DB_FILE)
    try:
        rows = reader.execute(
            "SELECT data FROM events WHERE run_id = ? ORDER BY seq", (run_id,)
        ).fetchall()
    finally:
        reader.close()
    return [data for (data,) in rows]


def test_event_data_is_stored_as_the_text_it_was_queued_as(tmp_path: Path) -> None:
    run_id = _run(tmp_path)
    values = [
        {"output": {"text": 'é "quoted" \\ \n \u2028 \u0001 😀', "n": 6.2e-05}},
        {"big": 12345678901234567890, "tiny": 1e-300, "zero": -0.0, "float": 1.0},
        {"nested": [[], {}, [None, True, False]], "e": 1e16},
    ]
    writer = Writer(tmp_path)
    for seq, value in enumerate(values):
        writer.append(EVENTS, _row(run_id, seq, value))
    writer.close()
    assert _data(tmp_path, run_id) == [compact_json(value) for value in values]


def test_rows_of_several_groups_are_all_stored_in_order(tmp_path: Path) -> None:
    run_id = _run(tmp_path)
    count = 2 * BATCH_ROWS + 7  # two full groups and a short one
    writer = Writer(tmp_path)
    for seq in range(count):
        writer.append(EVENTS, _row(run_id, seq, {"seq": seq}))
    writer.close()
    assert _data(tmp_path, run_id) == [compact_json({"seq": seq}) for seq in range(count)]
    with opened(tmp_path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM events").fetchone()[0] == count


def test_large_rows_leave_in_groups_the_pipe_holds_while_the_writer_commits(
    tmp_path: Path,
) -> None:
    # A group larger than the pipe makes its send wait for the writer to finish committing
    # the group before it: large replies are sent once they add up to half the pipe.
    run_id = _run(tmp_path)
    writer = Writer(tmp_path)
    text = "x" * (PIPE_BYTES // 5)
    try:
        for seq in range(7):
            writer.append(EVENTS, _row(run_id, seq, {"text": text}), len(text) + 11)
        sent = writer.groups
    finally:
        writer.close()
    assert sent == 2  # rows 0-2, then rows 3-5; the last row waits for the close
    assert writer._process.returncode == 0
    assert _data(tmp_path, run_id) == [compact_json({"text": text})] * 7


def test_a_waiter_goes_on_only_once_its_rows_are_committed(tmp_path: Path) -> None:
    run_id = _run(tmp_path)
    writer = Writer(tmp_path)

    async def main() -> list[str]:
        for seq in range(3):
            writer.append(EVENTS, _row(run_id, seq, {"seq": seq}))
        await writer.durable()
        return _data(tmp_path, run_id)  # another connection, as another process reads

    try:
        seen = asyncio.run(main())
    finally:
        writer.close()
    assert seen == [compact_json({"seq": seq}) for seq in range(3)]


def test_a_failed_commit_fails_its_waiters_and_the_close(tmp_path: Path) -> None:
    run_id = _run(tmp_path)
    writer = Writer(tmp_path)

    async def main() -> None:
        writer.append(EVENTS, _row(run_id, 0, {}))
        writer.append(EVENTS, _row(run_id, 0, {}))  # the same event twice: the key clashes
        await writer.durable()

    with pytest.raises(StoreError, match="cannot write to the state database"):
        asyncio.run(main())
    writer.append(EVENTS, _row(run_id, 1, {}))
    with pytest.raises(StoreError, match="cannot write to the state database"):
        writer.close()
    assert _data(tmp_path, run_id) == []  # nothing of the failed group, nothing after it


def test_a_cancel_recorded_in_the_state_is_noticed_by_the_heartbeat(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("runner.store.writer.HEARTBEAT_S", 0.05)
    run_id = _run(tmp_path)
    with opened(tmp_path) as conn:
        conn.execute("UPDATE runs SET cancel_requested = 1 WHERE id = ?", (run_id,))
    writer = Writer(tmp_path, heartbeat=run_id)

    async def main() -> bool:
        noticed = asyncio.Event()
        writer.on_cancel = noticed.set
        writer.write(runs.HEARTBEAT_SQL, (time.time(), run_id))
        await asyncio.wait_for(noticed.wait(), timeout=10)
        return noticed.is_set()

    try:
        assert asyncio.run(main())
    finally:
        writer.close()


def test_a_writer_that_dies_fails_its_waiters_instead_of_hanging(tmp_path: Path) -> None:
    run_id = _run(tmp_path)
    writer = Writer(tmp_path)

    async def main() -> None:
        writer.append(EVENTS, _row(run_id, 0, {}))
        await writer.durable()
        writer._process.kill()  # as the system would kill it
        writer._process.wait()
        writer.append(EVENTS, _row(run_id, 1, {}))
        await asyncio.wait_for(writer.durable(), timeout=10)

    with pytest.raises(StoreError, match="the state writer stopped"):
        asyncio.run(main())
    with pytest.raises(StoreError, match="the state writer stopped"):
        writer.close()
    assert _data(tmp_path, run_id) == [compact_json({})]  # what it committed stays


def test_an_interrupt_to_the_run_does_not_stop_its_writer(tmp_path: Path) -> None:
    run_id = _run(tmp_path)
    writer = Writer(tmp_path)
    try:
        # A Ctrl-C goes to the terminal's process group: the writer is in a session of its own,
        # and ignores an interrupt sent to it anyway; the run records how it ended through it.
        assert os.getpgid(writer._process.pid) != os.getpgid(os.getpid())

        async def first() -> None:
            writer.append(EVENTS, _row(run_id, 0, {}))
            await writer.durable()  # the writer is up and has committed

        asyncio.run(first())
        os.kill(writer._process.pid, signal.SIGINT)
        writer.append(EVENTS, _row(run_id, 1, {}))
    finally:
        writer.close()
    assert _data(tmp_path, run_id) == [compact_json({}), compact_json({})]


def test_rows_reach_the_state_soon_without_anyone_waiting_for_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A running run's heartbeat timer is armed after its first group; a row queued later must
    # still leave after FLUSH_EVERY_S, not at the next heartbeat (here a minute away): a
    # killed run keeps every answer older than that.
    monkeypatch.setattr("runner.store.writer.HEARTBEAT_S", 60.0)
    run_id = _run(tmp_path)
    writer = Writer(tmp_path, heartbeat=run_id)

    async def main() -> list[int]:
        seen = []
        for seq in range(3):
            writer.append(EVENTS, _row(run_id, seq, {"seq": seq}))
            deadline = time.monotonic() + 10
            while len(_data(tmp_path, run_id)) <= seq and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            seen.append(len(_data(tmp_path, run_id)))
        return seen

    try:
        assert asyncio.run(main()) == [1, 2, 3]
    finally:
        writer.close()


def test_a_writer_that_stops_answering_does_not_hang_the_close(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("runner.store.writer.STOP_WAIT_S", 0.5)
    run_id = _run(tmp_path)
    writer = Writer(tmp_path)
    os.kill(writer._process.pid, signal.SIGSTOP)  # as a writer stuck on a dead disk would be
    writer.append(EVENTS, _row(run_id, 0, {}))
    started = time.monotonic()
    with pytest.raises(StoreError, match=r"the state writer did not answer within 0\.5 s"):
        writer.close()
    assert time.monotonic() - started < 30
    assert writer._process.returncode is not None  # stopped for good, not left behind
