"""Portable traces: one run, its row and its events, as a versioned JSONL file
(``docs/trace-format.md``), written by ``trace export`` and read back by ``trace import``.

Line 1 is a header (format, version, event count, the run's row); every further line is one
event, in logical order. Each line is canonical JSON, so exporting the same run twice gives the
same bytes. The memo is left out: a replay reads replies from the ``model_call`` events, and a
memo entry imported from elsewhere would answer this state's live calls with replies nobody
here made. The machine-local columns (process id, host, command line) are left out too.
"""

from __future__ import annotations

import json
import math
import os
import re
import sqlite3
import stat
from dataclasses import dataclass, replace
from typing import Any

from runner.canonical import canonical_json, content_hash
from runner.errors import UsageError
from runner.store import runs, trace_checks
from runner.store.db import StoreError, transaction
from runner.store.journal import EVENTS
from runner.store.trace import events, inherited_answers

FORMAT = "branchleaf-trace"
"""The header's ``format``: what marks a file as a Branchleaf trace."""
VERSION = 1
"""The format version this Branchleaf writes, and the newest it reads."""

_STR, _INT, _NUM, _BOOL = "a string", "an integer", "a number", "true or false"
_OBJ, _LIST, _ANY = "an object", "a list", "any JSON value"
_OR_NULL = " or null"
_TYPES: dict[str, tuple[type, ...]] = {
    _STR: (str,),
    _INT: (int,),
    _NUM: (int, float),
    _BOOL: (bool,),
    _OBJ: (dict,),
    _LIST: (list,),
}
RUN_FIELDS: dict[str, str] = {
    **dict.fromkeys(("id", "workflow", "workflow_hash"), _STR),
    "source": _STR + _OR_NULL,
    **dict.fromkeys(("document", "inputs", "env", "config", "providers"), _OBJ),
    "mode": _STR,
    "parent": _STR + _OR_NULL,
    "status": _STR,
    "reason": _STR + _OR_NULL,
    **dict.fromkeys(("started_at", "updated_at"), _NUM),
    "finished_at": _NUM + _OR_NULL,
    **dict.fromkeys(("done", "total", "failed", "calls", "tokens"), _INT),
    "cost_usd": _NUM,
    **dict.fromkeys(("memo_hits", "memo_misses", "saved_tokens"), _INT),
    "saved_usd": _NUM,
    "output": _ANY,
    "tests": _LIST + _OR_NULL,
}
"""The header's ``run`` object: each field of the run's row that travels, and its JSON type."""

RUN_OPTIONAL: dict[str, str] = {"overlay": _OBJ}
"""Fields of the header's ``run`` written only when the run has them (the overlay lessons it
applied), so that the traces of runs without them keep their bytes."""

EVENT_FIELDS: dict[str, str] = {
    "seq": _INT,
    "position": _STR,
    "path": _STR,
    "type": _STR,
    "key": _STR + _OR_NULL,
    "data": _OBJ,
    "at": _NUM,
}
"""An event line's fields and their JSON types."""

EVENT_DATA: dict[str, dict[str, str]] = {
    "node_started": {"node": _STR, "kind": _STR},
    "node_finished": {
        "node": _STR,
        "kind": _STR,
        "status": _STR,
        "output": _ANY,
        "error": _STR + _OR_NULL,
        "attempts": _INT,
        "duration_s": _NUM,
        "spend": _OBJ,
        "decision": _ANY,
    },
    "model_call": {"source": _STR, "request": _OBJ, "reply": _OBJ, "spend": _OBJ},
    "command": {
        "source": _STR,
        "argv": _LIST,
        "exit_code": _INT + _OR_NULL,
        "stdout": _STR,
        "stderr": _STR,
        "timed_out": _BOOL,
        "duration_s": _NUM,
    },
}
"""The fields a replay reads from each event type's ``data``, and their JSON types."""

_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
_JSON_COLUMNS = ("document", "inputs", "env", "config", "providers", "output", "tests", "overlay")


@dataclass(frozen=True, slots=True, kw_only=True)
class Trace:
    """One run as a trace file holds it."""

    run: dict[str, Any]
    """The run's row (:data:`RUN_FIELDS`)."""
    events: list[dict[str, Any]]
    """Its events in logical order (:data:`EVENT_FIELDS`)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Imported:
    """What an import did."""

    run_id: str
    """The run read from the file."""
    status: str
    """Its status in the state."""
    events: int
    """How many events it has."""
    already: bool
    """The state held the same run already, so nothing was written."""


def read_run(conn: sqlite3.Connection, ref: str) -> Trace:
    """The run named by ``ref`` (``last``, an id or a unique prefix), with its events."""
    conn.execute("BEGIN")  # one snapshot, so that a running run's row and events agree
    try:
        return _read(conn, ref)
    finally:
        conn.execute("COMMIT")


def _read(conn: sqlite3.Connection, ref: str) -> Trace:
    record = runs.find(conn, ref)
    recorded = events(conn, record.id)
    run = {name: getattr(record, name) for name in RUN_FIELDS}
    run.update(
        (name, getattr(record, name)) for name in RUN_OPTIONAL if getattr(record, name) is not None
    )
    found = [{name: getattr(e, name) for name in EVENT_FIELDS} for e in recorded]
    # A replay records no call or command: they are its parent's. Its file carries them, as
    # answered from a trace, so that it replays where the runs it replays are not (issue 11).
    seq = max((e.seq for e in recorded), default=-1)
    for answer in inherited_answers(conn, record.id):
        seq += 1
        found.append(
            {
                **{name: getattr(answer, name) for name in EVENT_FIELDS},
                "seq": seq,
                "data": {**answer.data, "source": "trace"},
            }
        )
    found.sort(key=lambda event: (event["position"], event["seq"]))
    return Trace(run=run, events=found)


def dumps(trace: Trace) -> bytes:
    """The trace file's bytes: the header line, then one line per event."""
    header = {"format": FORMAT, "version": VERSION, "events": len(trace.events), "run": trace.run}
    lines = [canonical_json(header), *(canonical_json(event) for event in trace.events)]
    return ("\n".join(lines) + "\n").encode("utf-8")


def read_file(name: str) -> bytes:
    """A trace file's bytes; UsageError for what cannot be read or is not a regular file.

    The file is opened without waiting and checked before it is read, so that a FIFO (which
    would wait for a writer forever) or a device is refused at once rather than read.
    """
    try:
        descriptor = os.open(name, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        raise UsageError(f"cannot read the trace file {name}: {exc.strerror or exc}") from exc
    mode = os.fstat(descriptor).st_mode
    if not stat.S_ISREG(mode):
        os.close(descriptor)
        what = "a folder" if stat.S_ISDIR(mode) else "not a regular file"
        raise UsageError(
            f"cannot read the trace file {name}: it is {what}; give a file written by "
            "`trace export`"
        )
    with os.fdopen(descriptor, "rb") as handle:
        try:
            return handle.read()
        except OSError as exc:
            raise UsageError(f"cannot read the trace file {name}: {exc.strerror or exc}") from exc


def loads(content: bytes, name: str) -> Trace:
    """A trace from a file's bytes, checked line by line; UsageError names the file and line."""
    if not content.strip():
        raise UsageError(f"{name} is empty: it is not a Branchleaf trace")
    lines = content.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    elif len(lines) > 1 or FORMAT.encode() in lines[0]:
        _whole(lines[-1], name, len(lines))  # no newline at the end: was the file cut there?
    run, count = _header(lines[0], name)
    found: list[dict[str, Any]] = []
    seqs: dict[int, int] = {}
    for number, raw in enumerate(lines[1:], start=2):
        where = f"{name}:{number}"
        event = _fields(_object(raw, name, number, "an event"), EVENT_FIELDS, where)
        kind = event["type"]
        if kind not in EVENT_DATA:
            raise UsageError(
                f"{where}: unknown event type {kind!r} (version {VERSION} has "
                f"{', '.join(EVENT_DATA)})"
            )
        _fields(event["data"], EVENT_DATA[kind], f"{where}: the {kind} event's data")
        trace_checks.check(kind, event["data"], where)
        if event["seq"] in seqs:
            raise UsageError(
                f"{where}: event seq {event['seq']} is already used on line "
                f"{seqs[event['seq']]}; each event has its own seq"
            )
        seqs[event["seq"]] = number
        found.append(event)
    if len(found) != count:
        raise UsageError(
            f"{name}: the header announces {count} events but the file has {len(found)}, "
            "so it was cut short or edited; export the run again"
        )
    return Trace(run=run, events=found)


def _header(raw: bytes, name: str) -> tuple[dict[str, Any], int]:
    """The run and the event count of a header line, checked."""
    header = _object(raw, name, 1, "the header")
    if header.get("format") != FORMAT:
        raise UsageError(
            f"{name}:1: not a Branchleaf trace (the header's format is "
            f"{header.get('format')!r}, not {FORMAT!r}); give a file written by `trace export`"
        )
    version, count = header.get("version"), header.get("events")
    if type(version) is not int or version < 1:
        raise UsageError(f"{name}:1: the header's version {version!r} is not a positive integer")
    if version > VERSION:
        raise UsageError(
            f"{name}:1: the trace is format version {version}, written by a newer Branchleaf; "
            f"this one reads versions up to {VERSION}: upgrade Branchleaf to import it"
        )
    if type(count) is not int or count < 0:
        raise UsageError(f"{name}:1: the header's events {count!r} is not a count of events")
    where = f"{name}:1: the header's run"
    run = _fields(header.get("run"), RUN_FIELDS, where)
    _fields(
        {field: run[field] for field in RUN_OPTIONAL if field in run},
        {field: wanted for field, wanted in RUN_OPTIONAL.items() if field in run},
        where,
    )
    if not _RUN_ID.fullmatch(run["id"]):
        raise UsageError(f"{name}:1: the run id {run['id']!r} is not a Branchleaf run id")
    if content_hash(run["document"]) != run["workflow_hash"]:
        raise UsageError(
            f"{name}:1: the run's workflow document does not match its workflow_hash, so the "
            "file was edited or damaged; export the run again"
        )
    trace_checks.check_run(run, f"{name}:1")
    return run, count


def store(conn: sqlite3.Connection, trace: Trace) -> Imported:
    """Insert a trace's run and events in one transaction (a run still running when it was
    exported is stored as crashed). The same run already there is left as it is; a different
    run with the same id is an error."""
    run = dict(trace.run)
    if run["status"] == runs.RUNNING:
        run["status"] = runs.CRASHED
        run["reason"] = run["reason"] or "it was still running when it was exported"
    incoming = Trace(run=run, events=trace.events)
    present = Imported(
        run_id=run["id"], status=run["status"], events=len(trace.events), already=True
    )
    columns = [*RUN_FIELDS, *(name for name in RUN_OPTIONAL if name in run)]
    values = [_column(run[name]) if name in _JSON_COLUMNS else run[name] for name in columns]
    try:
        with transaction(conn):
            if conn.execute("SELECT 1 FROM runs WHERE id = ?", (run["id"],)).fetchone():
                if dumps(_read(conn, run["id"])) == dumps(incoming):
                    return present
                raise UsageError(
                    f"this state already holds a different run {run['id']}: import the trace "
                    "into another state (--state DIR)"
                )
            conn.execute(
                f"INSERT INTO runs ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
                values,
            )
            conn.executemany(EVENTS, [_row(run["id"], e) for e in trace.events])
    except sqlite3.Error as exc:
        raise StoreError(f"cannot write the imported run {run['id']}: {exc}") from exc
    return replace(present, already=False)


def _row(run_id: str, event: dict[str, Any]) -> tuple[Any, ...]:
    """An event's parameters for ``EVENTS``, its data as canonical JSON."""
    encoded = {**event, "data": canonical_json(event["data"])}
    return (run_id, *(encoded[name] for name in EVENT_FIELDS))


def _column(value: Any) -> str | None:
    """A JSON column's text; an absent value (JSON null) is stored as SQL NULL."""
    return None if value is None else canonical_json(value)


def _object(raw: bytes, name: str, number: int, what: str) -> dict[str, Any]:
    try:
        value = json.loads(raw.decode("utf-8"), parse_constant=_no_constant, parse_float=_finite)
    except UnicodeDecodeError as exc:
        raise UsageError(f"{name}:{number}: the line is not UTF-8 text ({exc.reason})") from exc
    except RecursionError:
        raise UsageError(_too_deep(name, number, what)) from None
    except ValueError as exc:
        where = "not a Branchleaf trace: " if number == 1 else ""
        raise UsageError(
            f"{name}:{number}: {where}{what} is not valid JSON ({exc}); "
            "give a file written by `trace export`"
        ) from exc
    if not isinstance(value, dict):
        raise UsageError(f"{name}:{number}: {what} is not a JSON object")
    if b"\\ud" in raw.lower():  # an escaped surrogate: it must be half of a pair
        try:
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError as exc:
            raise UsageError(
                f"{name}:{number}: {what} holds a lone surrogate ({exc.object[exc.start]!a}), "
                "which is not text; give a file written by `trace export`"
            ) from None
    return value


def _whole(raw: bytes, name: str, number: int) -> None:
    """Refuse a last line without its newline that does not parse: the file was cut there."""
    try:
        json.loads(raw)
    except RecursionError:
        raise UsageError(_too_deep(name, number, "the last line")) from None
    except ValueError:
        raise UsageError(
            f"{name}:{number}: the file ends in the middle of a line, so it was cut short; "
            "export the run again"
        ) from None


def _too_deep(name: str, number: int, what: str) -> str:
    return (
        f"{name}:{number}: {what} nests arrays or objects too deeply to be read; "
        "give a file written by `trace export`"
    )


def _no_constant(word: str) -> Any:
    raise ValueError(f"{word} is not a JSON number")


def _finite(digits: str) -> float:
    # Python reads 1e999 as infinity, which no export holds and no JSON writer can write back.
    number = float(digits)
    if not math.isfinite(number):
        raise ValueError(f"{digits[:40]} is too large for a JSON number")
    return number


def _fields(value: Any, spec: dict[str, str], where: str) -> dict[str, Any]:
    """``value`` as an object with every field of ``spec``, each of its JSON type."""
    if not isinstance(value, dict):
        raise UsageError(f"{where} is not a JSON object")
    for field, wanted in spec.items():
        if field not in value:
            raise UsageError(f"{where} has no {field!r} field")
        if not _is(value[field], wanted):
            shown = canonical_json(value[field])
            shown = shown if len(shown) <= 60 else shown[:59] + "…"
            raise UsageError(f"{where}: {field!r} is {shown}, not {wanted}")
    return value


def _is(value: Any, wanted: str) -> bool:
    if value is None:
        return wanted == _ANY or wanted.endswith(_OR_NULL)
    types = _TYPES.get(wanted.removesuffix(_OR_NULL))
    if type(value) is int and not _SQLITE_INTS[0] <= value <= _SQLITE_INTS[1]:
        return False  # a column cannot hold it
    return types is None or type(value) in types  # type(): True is not an integer here


_SQLITE_INTS = (-(2**63), 2**63 - 1)
"""The integers an SQLite column holds."""
