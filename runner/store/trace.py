"""Reading traces: a run's events in logical order, and a recorded run answering the calls and
commands of a replay or a resume, with the first divergence explained as a diff."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

from runner.canonical import compact_json, same_json
from runner.executor.commands import CommandResult
from runner.executor.results import Spend
from runner.jsondiff import diff
from runner.keys import CALL_FIELDS, CallKey, differences
from runner.providers.base import ModelReply, Usage
from runner.store.db import DamagedRow, opened
from runner.store.journal import key_fields
from runner.store.stored_json import fast_value, stored_value

DIFF_LINES = 40
"""The most lines a divergence's diff shows."""
SHARED_TEXT = 64
"""Reply texts up to this long are held once however many calls answered them."""


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
ANSWERING = (*ANSWERS, "node_finished")
"""The event types a :class:`RecordedRun` reads: the answers, and the node ends it compares."""
Recorded = tuple[ModelReply, Spend]
"""A recorded call's reply, and what it cost."""

Answer = tuple[str, str, str | None, dict[str, Any]]
"""One event a recorded run answers with: its path, type, key and data."""


def _sources(conn: sqlite3.Connection, run_id: str) -> list[tuple[str, tuple[str, ...]]]:
    """The runs whose events answer a replay or a resume of ``run_id``, oldest first, with the
    event types read from each. A replay's calls and commands are its parent's: they are read
    there, along the chain of replays, unless the replay carries them itself (one imported
    from an exported trace)."""
    sources: list[tuple[str, tuple[str, ...]]] = [(run_id, ANSWERING)]
    seen = {run_id}
    current = run_id
    while True:
        row = conn.execute("SELECT mode, parent FROM runs WHERE id = ?", (current,)).fetchone()
        if not row or row[0] != "replay" or not row[1] or row[1] in seen:
            break
        own = conn.execute(
            "SELECT 1 FROM events WHERE run_id = ? AND type IN ('model_call', 'command') LIMIT 1",
            (current,),
        ).fetchone()
        if own:
            break
        current = row[1]
        seen.add(current)
        sources.append((current, ANSWERS))
    return sources[::-1]


def _types(types: tuple[str, ...]) -> str:
    return ", ".join(f"'{kind}'" for kind in types)


def answering(conn: sqlite3.Connection, run_id: str) -> Iterator[Answer]:
    """The events of a run that answer a replay or a resume (calls, commands, node ends), in
    the order they were recorded, streamed from the state: what :class:`RecordedRun` reads,
    without the rest, each decoded as it is read and dropped once read."""
    for source, types in _sources(conn, run_id):
        rows = conn.execute(
            f"SELECT seq, path, type, key, data FROM events WHERE run_id = ?"
            f" AND type IN ({_types(types)}) ORDER BY seq",
            (source,),
        )
        for seq, path, kind, key, data in rows:
            value = fast_value(data, f"the data of event {seq} at {path}")
            if not isinstance(value, dict):
                raise DamagedRow(f"the data of event {seq} at {path} is not an object")
            yield path, kind, key, value


def inherited_answers(conn: sqlite3.Connection, run_id: str) -> list[Event]:
    """The calls and commands a replay answered from the runs it replays (none for a run of
    another mode, or a replay that carries its own): what its exported trace must carry to be
    replayed where those runs are not."""
    row = conn.execute("SELECT mode FROM runs WHERE id = ?", (run_id,)).fetchone()
    if not row or row[0] != "replay":
        return []
    found: list[Event] = []
    for source, types in _sources(conn, run_id)[:-1]:
        found += _read(
            conn.execute(
                f"{_EVENT_COLUMNS} AND type IN ({_types(types)}) ORDER BY seq", (source,)
            ).fetchall()
        )
    return found


def _requests(directory: Path, run_id: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """The fields of the keys of the calls a replay or resume of ``run_id`` is answered with,
    by path, read again from the state (only to explain a call that is not recorded)."""
    with opened(directory, create=False) as conn:
        for path, kind, _, data in answering(conn, run_id):
            if kind == "model_call":
                fields = key_fields(data["request"])
                if fields is not None:
                    yield path, fields


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
    """What a recorded run answered, for a replay (``strict``) or a resume.

    A replay holds this for every call and node of the run it replays, so it keeps only what
    it answers and compares with: each call's reply and cost (equal ones shared), and each
    node's status, output and decision as one compact JSON text, decoded only when an output
    or a decision is not the same text as the recorded one. The requests
    are read again from the state only to explain a call that is not recorded (issue 13: the
    decoded events of a 100,000-leaf run took 9 KB a leaf)."""

    def __init__(
        self,
        recorded: Iterable[Answer],
        *,
        strict: bool,
        requests: Callable[[], Iterable[tuple[str, dict[str, Any]]]] | None = None,
    ) -> None:
        self.strict = strict
        self.calls: dict[tuple[str, str | None], Recorded | list[Recorded]] = {}
        """Each call's reply and cost by path and key: a list when the same call was made
        more than once at the path."""
        self.commands: dict[tuple[str, str], list[CommandResult]] = {}
        self.argvs: dict[str, list[list[str]]] = {}
        self.nodes: dict[str, bytes] = {}
        """Each node's recorded status, output and decision, as the compact JSON of a list."""
        self._requests = requests
        self._call_fields: dict[str, list[dict[str, Any]]] | None = None if requests else {}
        usages: dict[tuple[Any, ...], Usage] = {}
        spends: dict[tuple[int, float], Spend] = {}
        paths: dict[str, str] = {}
        texts: dict[str, str] = {}
        for path, kind, key, data in recorded:
            path = paths.setdefault(path, path)  # noqa: PLW2901 (one string per path)
            if kind == "model_call":
                spent = data["spend"]
                cost = spent.get("cost_usd") or spent.get("saved_usd", 0.0)
                tokens = (
                    spent.get("prompt_tokens", 0) + spent.get("completion_tokens", 0)
                ) or spent.get("saved_tokens", 0)
                spend = spends.get((tokens, cost))
                if spend is None:
                    spend = spends[(tokens, cost)] = Spend(prompt_tokens=tokens, cost_usd=cost)
                answer = (_reply(data["reply"], usages, texts), spend)
                earlier = self.calls.get((path, key))
                if earlier is None:
                    self.calls[(path, key)] = answer
                elif isinstance(earlier, list):
                    earlier.append(answer)
                else:
                    self.calls[(path, key)] = [earlier, answer]
                if self._call_fields is not None:
                    fields = key_fields(data["request"])
                    if fields is not None:
                        self._call_fields.setdefault(path, []).append(fields)
            elif kind == "command" and key is not None:
                self.commands.setdefault((path, key), []).append(command_from(data))
                self.argvs.setdefault(path, []).append(data["argv"])
            elif kind == "node_finished":
                self.nodes[path] = _packed(data["status"], data.get("output"), data.get("decision"))
        self._used: dict[tuple[str, str | None], int] = {}

    @classmethod
    def read(cls, directory: Path, conn: sqlite3.Connection, run_id: str, *, strict: bool) -> Self:
        """What run ``run_id`` of the state in ``directory`` (open as ``conn``) answered."""
        return cls(
            answering(conn, run_id), strict=strict, requests=lambda: _requests(directory, run_id)
        )

    @property
    def call_fields(self) -> dict[str, list[dict[str, Any]]]:
        """The fields of each recorded call's key, by path (read when first needed)."""
        if self._call_fields is None:
            found: dict[str, list[dict[str, Any]]] = {}
            for path, fields in self._requests() if self._requests else ():
                found.setdefault(path, []).append(fields)
            self._call_fields = found
        return self._call_fields

    def reply(self, path: str, key: str | None) -> tuple[ModelReply, Spend] | None:
        """The recorded reply of the call with ``key`` at ``path`` (in recorded order, when
        the same call was made more than once there)."""
        if key is None:
            return None
        found = self.calls.get((path, key))
        if found is None or isinstance(found, tuple):  # the usual case: nothing to count
            return found
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
        recorded = self._ended(path)
        if recorded is None or recorded[0] != "succeeded":
            return None  # said by check() when the node ends, with its output
        old = recorded[2]
        if same_json(old, decision):
            return None
        lines = [f"the decision at {path} differs from the recorded one"]
        lines += diff("decision", old, decision)
        return "\n".join(lines[: DIFF_LINES + 1])

    def _ended(self, path: str) -> tuple[str, Any, Any] | None:
        """The recorded status, output and decision of the node at ``path``."""
        packed = self.nodes.get(path)
        if packed is None:
            return None
        status, output, decision = fast_value(packed, f"the recorded end of {path}")
        return status, output, decision

    def check(self, path: str, output: Any, decision: Any) -> str | None:
        """How a replayed node's output or decision differs from the recorded ones."""
        packed = self.nodes.get(path)
        if packed is None:
            return f"{path} did not finish in the recorded run"
        with contextlib.suppress(TypeError, ValueError):  # not JSON: compared as values below
            if packed == _packed("succeeded", output, decision):
                return None  # the usual case: the same text, and nothing decoded
        status, old_output, old_decision = self._ended(path) or ("", None, None)
        if status != "succeeded":
            return f"{path} ended {status} in the recorded run, and succeeds now"
        lines: list[str] = []
        if not same_json(old_decision, decision):
            lines.append(f"the decision at {path} differs from the recorded one")
            lines += diff("decision", old_decision, decision)
        if not same_json(old_output, output):
            lines.append(f"the output of {path} differs from the recorded one")
            lines += diff("output", old_output, output)
        return "\n".join(lines[: DIFF_LINES + 1]) if lines else None


def _reply(
    data: dict[str, Any], usages: dict[tuple[Any, ...], Usage], texts: dict[str, str]
) -> ModelReply:
    """A reply from its JSON object, sharing its usage, and its text when short, with equal
    ones (the mock's replies, a classifier's labels)."""
    counts = data["usage"]
    shape = (
        counts.get("prompt_tokens", 0),
        counts.get("completion_tokens", 0),
        counts.get("cached_prompt_tokens", 0),
        counts.get("cost_usd", 0.0),
        counts.get("estimated", False),
    )
    usage = usages.get(shape)
    if usage is None:
        usage = usages[shape] = Usage(
            prompt_tokens=shape[0],
            completion_tokens=shape[1],
            cached_prompt_tokens=shape[2],
            cost_usd=shape[3],
            estimated=shape[4],
        )
    text = data["text"]
    if isinstance(text, str) and len(text) <= SHARED_TEXT:
        text = texts.setdefault(text, text)
    return ModelReply(
        text=text,
        model=data.get("model"),
        finish_reason=data.get("finish_reason"),
        usage=usage,
    )


def _packed(status: str, output: Any, decision: Any) -> bytes:
    """A node's end as the compact JSON of a list."""
    return compact_json([status, output, decision]).encode()


def _ordered(fields: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(fields.get(name) for name in CALL_FIELDS)
