"""The run list: one row per run, with what it ran, how far it got and how it ended.

A run's row is written when it starts (workflow document, inputs, configuration with secrets
left out, provider map), kept up to date while it runs (done/total, usage, a heartbeat), and
closed when it ends. A row still marked running whose process is gone is a crashed run, which
``resume`` finishes.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from runner.canonical import canonical_json
from runner.jsontext import has_lone_surrogate
from runner.secrets import REDACTED, Redactor, looks_secret
from runner.status import summary_status as status_summary
from runner.store.db import DamagedRow, NotInState, transaction
from runner.store.stored_json import stored_value

RUNNING = "running"
CRASHED = "crashed"
PID_SLACK_S = 2.0
"""How much later than its run's start a process may have started and still be the run's."""
STALE_AFTER_S = 30.0
"""A running run on another host whose heartbeat is older than this is shown as crashed."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RunRecord:
    """One run as the state holds it."""

    id: str
    """The run id (sortable by start time)."""
    workflow: str
    """The workflow's name."""
    workflow_hash: str
    """SHA-256 of its compiled document."""
    source: str | None
    """The file it was compiled from."""
    document: dict[str, Any]
    """The compiled workflow document, as run."""
    inputs: dict[str, Any]
    """The run's inputs."""
    env: dict[str, str]
    """The declared environment entries as the run saw them (secret-looking ones redacted)."""
    config: dict[str, Any]
    """The configuration, secrets left out."""
    providers: dict[str, Any]
    """Which provider and model served each role."""
    mode: str
    """``run``, ``replay`` or ``resume``."""
    parent: str | None
    """The run replayed or resumed."""
    status: str
    """A node status for a finished run; ``running``; or ``crashed``."""
    reason: str | None
    """What decided a status other than succeeded."""
    pid: int | None
    """The process running it."""
    host: str | None
    """The machine it runs on."""
    argv: list[str] | None
    """The command line that started it."""
    started_at: float
    """Start, seconds since the epoch."""
    updated_at: float
    """Last heartbeat or update."""
    finished_at: float | None
    """End, when it ended."""
    done: int
    """Nodes and copies that ended."""
    total: int
    """Nodes and copies known."""
    failed: int
    """Nodes and copies that did not succeed."""
    calls: int
    """Model calls that reached a provider."""
    tokens: int
    """Tokens of those calls."""
    cost_usd: float
    """Dollars of those calls."""
    memo_hits: int
    """Calls the memo answered."""
    memo_misses: int
    """Calls the memo could have answered but did not."""
    saved_tokens: int
    """Tokens the memo saved."""
    saved_usd: float
    """Dollars the memo saved."""
    output: Any
    """The root node's output, once finished."""
    tests: list[dict[str, Any]] | None
    """The workflow tests' results, once finished."""
    overlay: dict[str, Any] | None = None
    """The overlay lessons the run applied (branch, commit, the lessons), when it applied any
    (:mod:`runner.overlay.use`)."""

    @property
    def duration_s(self) -> float:
        """Seconds from start to end (to the last update while it runs)."""
        return (self.finished_at or self.updated_at) - self.started_at


def new_run_id() -> str:
    """A run id: its UTC start time, then random hex (ids sort by start time)."""
    return f"{datetime.now(UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


def create(
    conn: sqlite3.Connection,
    *,
    run_id: str,
    workflow: str,
    workflow_hash: str,
    source: str | None,
    document: Any,
    inputs: Any,
    env: dict[str, str],
    config: Any,
    providers: Any,
    mode: str,
    parent: str | None,
    argv: list[str] | None,
    overlay: Any = None,
) -> None:
    """Insert a run that starts now in this process."""
    now = time.time()
    with transaction(conn):
        conn.execute(
            "INSERT INTO runs (id, workflow, workflow_hash, source, document, inputs, env,"
            " config, providers, mode, parent, status, pid, host, argv, started_at, updated_at,"
            " overlay) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                run_id,
                workflow,
                workflow_hash,
                source,
                canonical_json(document),
                canonical_json(inputs),
                canonical_json(env),
                canonical_json(config),
                canonical_json(providers),
                mode,
                parent,
                RUNNING,
                os.getpid(),
                socket.gethostname(),
                json.dumps(argv) if argv is not None else None,
                now,
                now,
                canonical_json(overlay) if overlay is not None else None,
            ),
        )


PROGRESS_SQL = (
    "UPDATE runs SET done = ?, total = ?, failed = ?, calls = ?, tokens = ?, cost_usd = ?,"
    " memo_hits = ?, memo_misses = ?, saved_tokens = ?, saved_usd = ?, updated_at = ?"
    " WHERE id = ?"
)
"""The statement a running run's counters are kept up to date with (one row of parameters
per update: the counters in this order, the time, the run id)."""

HEARTBEAT_SQL = "UPDATE runs SET updated_at = ? WHERE id = ? AND status = 'running'"


def finish(
    conn: sqlite3.Connection,
    run_id: str,
    *,
    status: str,
    reason: str | None,
    output: Any,
    tests: list[dict[str, Any]],
) -> None:
    """Close a run."""
    now = time.time()
    with transaction(conn):
        conn.execute(
            "UPDATE runs SET status = ?, reason = ?, output = ?, tests = ?, finished_at = ?,"
            " updated_at = ? WHERE id = ?",
            (status, reason, canonical_json(output), canonical_json(tests), now, now, run_id),
        )


def request_cancel(conn: sqlite3.Connection, run_id: str) -> None:
    """Record that someone asked the run to stop."""
    with transaction(conn):
        conn.execute("UPDATE runs SET cancel_requested = 1 WHERE id = ?", (run_id,))


def cancel_requested(conn: sqlite3.Connection, run_id: str) -> bool:
    """Whether someone asked the run to stop."""
    row = conn.execute("SELECT cancel_requested FROM runs WHERE id = ?", (run_id,)).fetchone()
    return bool(row and row[0])


def listed(conn: sqlite3.Connection, limit: int = 20) -> list[RunRecord]:
    """The most recent runs, newest first."""
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM runs ORDER BY started_at DESC, id DESC LIMIT ?", (limit,)
    ).fetchall()
    return [_record(row) for row in rows]


def find(conn: sqlite3.Connection, ref: str) -> RunRecord:
    """The run named by ``ref``: ``last``, a run id, or a unique prefix of one."""
    if not ref:
        raise NotInState("a run reference cannot be empty: give a run id, a prefix of one, or last")
    if ref == "last":
        row = conn.execute(
            f"SELECT {_COLUMNS} FROM runs ORDER BY started_at DESC, id DESC LIMIT 1"
        ).fetchone()
        if row is None:
            raise NotInState("there are no runs in this state yet: run a workflow first")
        return _record(row)
    if has_lone_surrogate(ref) or "\x00" in ref:
        # A byte that is not UTF-8 in the argument: SQLite cannot hold it, and no run id has it.
        raise NotInState(f"there is no run {_shown(ref)} in this state: `runs` lists them")
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM runs WHERE id = ? OR id LIKE ? ORDER BY id LIMIT 3",
        (ref, ref.replace("%", "").replace("_", "\\_") + "%"),
    ).fetchall()
    exact = [row for row in rows if row[0] == ref]
    if exact:
        return _record(exact[0])
    if len(rows) == 1:
        return _record(rows[0])
    if not rows:
        raise NotInState(f"there is no run {_shown(ref)} in this state: `runs` lists them")
    raise NotInState(f"{_shown(ref)} names more than one run ({rows[0][0]}, {rows[1][0]}, ...)")


def _shown(ref: str) -> str:
    """A run argument as a message can print it: quoted, control characters and bytes that are
    not UTF-8 escaped, and cut short when long."""
    shown = repr(ref[:80] + ("..." if len(ref) > 80 else ""))
    return shown.encode("ascii", "backslashreplace").decode("ascii")


def alive(record: RunRecord) -> bool:
    """Whether the process of a running run is still there (as far as this host can tell)."""
    if record.status != RUNNING:
        return False
    if record.host == socket.gethostname() and record.pid is not None:
        try:
            os.kill(record.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass
        return may_be_the_run(record.pid, record.started_at)
    return time.time() - record.updated_at < STALE_AFTER_S


def may_be_the_run(pid: int, started_at: float) -> bool:
    """Whether process ``pid`` may be the run's: False when it started after the run did (its
    id was reused after the run's process died). Only Linux tells; elsewhere, True."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii")
        boot = next(
            float(line.split()[1])
            for line in Path("/proc/stat").read_text(encoding="ascii").splitlines()
            if line.startswith("btime ")
        )
        # The command name, in parentheses, may hold spaces: fields are counted after it.
        fields = stat.rpartition(")")[2].split()
        if fields[0] == "Z":  # a zombie: it has exited, only its exit status is left
            return False
        ticks = int(fields[19])
        started = boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, StopIteration, ValueError, IndexError):
        return True
    return started <= started_at + PID_SLACK_S


def shown_status(record: RunRecord) -> str:
    """The status to show: ``crashed`` for a running run whose process is gone."""
    if record.status == RUNNING and not alive(record):
        return CRASHED
    return record.status


def test_results(record: RunRecord) -> list[bool]:
    """Whether each of the run's workflow tests passed (none while it runs)."""
    return [bool(test.get("passed")) for test in record.tests or ()]


def summary_status(record: RunRecord) -> str:
    """The status a run's summary shows: :func:`shown_status`, but ``failed`` for a run whose
    nodes succeeded and whose workflow tests did not all pass (``runner.status``)."""
    return status_summary(shown_status(record), test_results(record))


_FIELDS = (
    "id",
    "workflow",
    "workflow_hash",
    "source",
    "document",
    "inputs",
    "env",
    "config",
    "providers",
    "mode",
    "parent",
    "status",
    "reason",
    "pid",
    "host",
    "argv",
    "started_at",
    "updated_at",
    "finished_at",
    "done",
    "total",
    "failed",
    "calls",
    "tokens",
    "cost_usd",
    "memo_hits",
    "memo_misses",
    "saved_tokens",
    "saved_usd",
    "output",
    "tests",
    "overlay",
)
_COLUMNS = ", ".join(_FIELDS)
_JSON = frozenset(
    {"document", "inputs", "env", "config", "providers", "argv", "output", "tests", "overlay"}
)


_SHAPES: dict[str, type | tuple[type, ...]] = {
    "document": dict,
    "inputs": dict,
    "env": dict,
    "config": dict,
    "providers": dict,
    "argv": (list, type(None)),
    "tests": (list, type(None)),
    "overlay": (dict, type(None)),
    **dict.fromkeys(("started_at", "updated_at", "cost_usd", "saved_usd"), (int, float)),
    "finished_at": (int, float, type(None)),
    **dict.fromkeys(
        ("done", "total", "failed", "calls", "tokens", "memo_hits", "memo_misses", "saved_tokens"),
        int,
    ),
    **dict.fromkeys(("id", "workflow", "workflow_hash", "mode", "status"), str),
}
"""The type of each column a run's row is read with but ``output`` (any JSON value) and the
machine-local ones."""


def _record(row: tuple[Any, ...]) -> RunRecord:
    values = {
        name: (
            stored_value(value, f"the {name} of run {row[0]}")
            if name in _JSON and value is not None
            else value
        )
        for name, value in zip(_FIELDS, row, strict=True)
    }
    for name, wanted in _SHAPES.items():
        if not isinstance(values[name], wanted):
            raise DamagedRow(f"the {name} of run {values['id']} is not what a run stores there")
    tests = values["tests"] or []
    if not all(isinstance(test, dict) for test in tests):
        raise DamagedRow(f"the tests of run {values['id']} are not what a run stores there")
    return RunRecord(**values)


def recorded_env(values: dict[str, str], key_variables: Iterable[str] = ()) -> dict[str, str]:
    """Environment entries as a run records them: an entry whose name looks secret, that a
    provider reads its key from (``key_variables``), or whose value holds such a secret keeps
    its value out of the state (a replay reads that one from its own environment)."""
    keys = frozenset(key_variables)
    secret = {name for name in values if looks_secret(name) or name in keys}
    # A copy of a key under an innocent name is still the key; short values (a flag, a
    # placeholder) would match too much to say so.
    known = [values[name] for name in secret] + [os.environ.get(name, "") for name in keys]
    redactor = Redactor(value.strip() for value in known if len(value.strip()) >= 8)
    return {
        name: REDACTED if name in secret or redactor.leaks(value) else value
        for name, value in values.items()
    }


def replayed_env(recorded: dict[str, str], current: dict[str, str]) -> dict[str, str]:
    """The environment a replay or resume renders with: the recorded values, and the current
    ones for entries the run could not record."""
    return {
        name: current.get(name, "") if value == REDACTED else value
        for name, value in recorded.items()
    }
