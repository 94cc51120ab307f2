"""Reading traces: a run's events in logical order, and a recorded run answering the calls and
commands of a replay or a resume, with the first divergence explained as a diff."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any

from runner.canonical import same_json
from runner.executor.commands import CommandResult
from runner.executor.results import Spend
from runner.jsondiff import diff
from runner.keys import CALL_FIELDS, CallKey, differences
from runner.providers.base import ModelReply
from runner.store.db import DamagedRow
from runner.store.journal import key_fields, reply_from
from runner.store.stored_json import stored_value

DIFF_LINES = 40
"""The most lines a divergence's diff shows."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """One event of a run's trace."""

    seq: int
    """Its number in the order it was recorded (timing-dependent)."""
    position: str
    """Its place in the logical order (``runner.order``)."""
    path: str
    """The node path it belongs to."""
    type: str
    """``node_started``, ``node_finished``, ``model_call`` or ``command``."""
    key: str | None
    """The call's or command's key."""
    data: dict[str, Any]
    """What happened."""
    at: float
    """Wall-clock time it was recorded (not part of the logical order)."""


_EVENT_COLUMNS = "SELECT seq, position, path, type, key, data, at FROM events WHERE run_id = ?"


def _read(rows: list[tuple[Any, ...]]) -> list[Event]:
    found = [
        Event(
            seq=seq,
            position=pos,
            path=path,
            type=kind,
            key=key,
            data=stored_value(data, f"the data of event {seq} at {path}"),
            at=at,
        )
        for seq, pos, path, kind, key, data, at in rows
    ]
    for event in found:
        if not isinstance(event.data, dict):
            raise DamagedRow(f"the data of event {event.seq} at {event.path} is not an object")
    return found


def events(conn: sqlite3.Connection, run_id: str) -> list[Event]:
    """A run's events in logical order."""
    return _read(conn.execute(f"{_EVENT_COLUMNS} ORDER BY position, seq", (run_id,)).fetchall())


ANSWERS = ("model_call", "command")
"""The event types that answer a replay's calls and commands."""


def answering(conn: sqlite3.Connection, run_id: str) -> list[Event]:
    """The events of a run that answer a replay or a resume (calls, commands, node ends), in
    the order they were recorded: what :class:`RecordedRun` reads, without the rest. A
    replay's calls and commands are its parent's: they are read there, along the chain of
    replays, unless the replay carries them itself (one imported from an exported trace)."""
    row = conn.execute("SELECT mode, parent FROM runs WHERE id = ?", (run_id,)).fetchone()
    own = _read(
        conn.execute(
            f"{_EVENT_COLUMNS} AND type IN ('model_call', 'command', 'node_finished') ORDER BY seq",
            (run_id,),
        ).fetchall()
    )
    if row and row[0] == "replay" and row[1] and not any(e.type in ANSWERS for e in own):
        return [e for e in answering(conn, row[1]) if e.type in ANSWERS] + own
    return own


def inherited_answers(conn: sqlite3.Connection, run_id: str) -> list[Event]:
    """The calls and commands a replay answered from the runs it replays (none for a run of
    another mode, or a replay that carries its own): what its exported trace must carry to be
    replayed where those runs are not."""
    row = conn.execute("SELECT mode FROM runs WHERE id = ?", (run_id,)).fetchone()
    if not row or row[0] != "replay":
        return []
    own = conn.execute(
        "SELECT 1 FROM events WHERE run_id = ? AND type IN ('model_call', 'command') LIMIT 1",
        (run_id,),
    ).fetchone()
    if own:
        return []
    return [e for e in answering(conn, run_id) if e.type in ANSWERS]


def spend_from(data: dict[str, Any]) -> Spend:
    """A Spend from its JSON object."""
    return Spend(**data)


def command_from(data: dict[str, Any]) -> CommandResult:
    """A command's result from its event."""
    return CommandResult(
        argv=tuple(data["argv"]),
        exit_code=data["exit_code"],
        stdout=data["stdout"],
        stderr=data["stderr"],
        timed_out=data["timed_out"],
        duration_s=data["duration_s"],
    )


class RecordedRun:
    """What a recorded run answered, for a replay (``strict``) or a resume."""

    def __init__(self, recorded: list[Event], *, strict: bool) -> None:
        self.strict = strict
        self.calls: dict[tuple[str, str | None], list[tuple[ModelReply, Spend]]] = {}
        self.call_fields: dict[str, list[dict[str, Any]]] = {}
        self.commands: dict[tuple[str, str], list[CommandResult]] = {}
        self.argvs: dict[str, list[list[str]]] = {}
        self.nodes: dict[str, dict[str, Any]] = {}
        for event in recorded:
            data = event.data
            if event.type == "model_call":
                spent = data["spend"]
                cost = spent.get("cost_usd") or spent.get("saved_usd", 0.0)
                tokens = (
                    spent.get("prompt_tokens", 0) + spent.get("completion_tokens", 0)
                ) or spent.get("saved_tokens", 0)
                self.calls.setdefault((event.path, event.key), []).append(
                    (reply_from(data["reply"]), Spend(prompt_tokens=tokens, cost_usd=cost))
                )
                fields = key_fields(data["request"])
                if fields is not None:
                    self.call_fields.setdefault(event.path, []).append(fields)
            elif event.type == "command" and event.key is not None:
                self.commands.setdefault((event.path, event.key), []).append(command_from(data))
                self.argvs.setdefault(event.path, []).append(data["argv"])
            elif event.type == "node_finished":
                self.nodes[event.path] = data
        self._used: dict[tuple[str, str | None], int] = {}

    def reply(self, path: str, key: str | None) -> tuple[ModelReply, Spend] | None:
        """The recorded reply of the call with ``key`` at ``path`` (in recorded order, when
        the same call was made more than once there)."""
        if key is None:
            return None
        found = self.calls.get((path, key))
        if not found:
            return None
        used = self._used.get((path, key), 0)
        self._used[(path, key)] = used + 1
        return found[min(used, len(found) - 1)]

    def command(self, path: str, key: str) -> CommandResult | None:
        """The recorded result of the command with ``key`` at ``path``."""
        found = self.commands.get((path, key))
        if not found:
            return None
        used = self._used.get((path, key), 0)
        self._used[(path, key)] = used + 1
        return found[min(used, len(found) - 1)]

    def missed_call(self, path: str, key: CallKey | None) -> str:
        """Why no reply is recorded for this call, with the nearest recorded one as a diff."""
        if key is None:
            return f"the call at {path} has no key, so no recorded reply can answer it"
        recorded = self.call_fields.get(path)
        if not recorded:
            return f"no model call was recorded at {path}: the workflow now makes one there"
        new = key.named()
        nearest = min(recorded, key=lambda old: len(differences(_ordered(old), key.fields)))
        changed = differences(_ordered(nearest), key.fields)
        lines = [f"the model call at {path} differs from the recorded one in: {', '.join(changed)}"]
        for name in changed:
            lines += diff(name, nearest.get(name), new.get(name))
        return "\n".join(lines[: DIFF_LINES + 1])

    def missed_command(self, path: str, argv: tuple[str, ...]) -> str:
        """Why no result is recorded for this command, as a diff."""
        recorded = self.argvs.get(path)
        if not recorded:
            return f"no command was recorded at {path}: the workflow now runs one there"
        lines = [f"the command at {path} differs from the recorded one"]
        lines += diff("argv", recorded[0], list(argv))
        if recorded[0] == list(argv):
            lines[0] += " in its working directory or environment"
        return "\n".join(lines[: DIFF_LINES + 1])

    def decided(self, path: str, decision: Any) -> str | None:
        """How a replayed control decision differs from the recorded one."""
        recorded = self.nodes.get(path)
        if recorded is None or recorded["status"] != "succeeded":
            return None  # said by check() when the node ends, with its output
        if same_json(recorded.get("decision"), decision):
            return None
        lines = [f"the decision at {path} differs from the recorded one"]
        lines += diff("decision", recorded.get("decision"), decision)
        return "\n".join(lines[: DIFF_LINES + 1])

    def check(self, path: str, output: Any, decision: Any) -> str | None:
        """How a replayed node's output or decision differs from the recorded ones."""
        recorded = self.nodes.get(path)
        if recorded is None:
            return f"{path} did not finish in the recorded run"
        if recorded["status"] != "succeeded":
            return f"{path} ended {recorded['status']} in the recorded run, and succeeds now"
        lines: list[str] = []
        if not same_json(recorded.get("decision"), decision):
            lines.append(f"the decision at {path} differs from the recorded one")
            lines += diff("decision", recorded.get("decision"), decision)
        if not same_json(recorded.get("output"), output):
            lines.append(f"the output of {path} differs from the recorded one")
            lines += diff("output", recorded.get("output"), output)
        return "\n".join(lines[: DIFF_LINES + 1]) if lines else None


def _ordered(fields: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(fields.get(name) for name in CALL_FIELDS)
