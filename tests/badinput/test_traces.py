"""``trace import`` (and ``ci --replay``) of traces that are garbled, cut short, or lie."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from badinput.cli import BAD, assert_clean, run_inprocess
from badinput.mutate import E999, SURROGATE, VALUES, Variant, damaged
from badinput.recorded import Recorded, shared

JUNK_LINES = {
    "open_brace": b"{",
    "null": b"null",
    "array": b"[]",
    "number": b"42",
    "string": b'"x"',
    "blank": b"",
    "binary": b"\xff\xfe\x00\x01",
    "deep_100k": b"[" * 100_000 + b"]" * 100_000,
    "deep_object": b'{"a":' * 20_000 + b"1" + b"}" * 20_000,
    "nan": b'{"seq": NaN}',
    "e999": b'{"seq": 1e999}',
    "surrogate": b'{"type": "\\ud800"}',
    "huge_int": b'{"seq": ' + b"9" * 5000 + b"}",
}


def _lines(recorded: Recorded) -> list[bytes]:
    return recorded.trace.rstrip(b"\n").split(b"\n")


def _join(lines: list[bytes]) -> bytes:
    return b"\n".join(lines) + b"\n"


def _dump(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=True).replace(f'"{E999}"', "1e999").encode()


def _line_variants(recorded: Recorded) -> list[Variant]:
    lines = _lines(recorded)
    picks = {"header": 0, "middle_event": len(lines) // 2}
    variants = []
    for where, index in picks.items():
        for name, junk in JUNK_LINES.items():
            changed = list(lines)
            changed[index] = junk
            variants.append(Variant(id=f"{where}={name}", data=_join(changed), bad=True))
        dropped = list(lines)
        del dropped[index]
        variants.append(Variant(id=f"{where}:dropped", data=_join(dropped), bad=True))
        variants.append(
            Variant(id=f"{where}:doubled", data=_join([*lines, lines[index]]), bad=index != 0)
        )
    swapped = list(lines)
    swapped[1], swapped[2] = swapped[2], swapped[1]
    variants.append(Variant(id="events_swapped", data=_join(swapped), bad=False))
    variants.append(Variant(id="header_last", data=_join([*lines[1:], lines[0]]), bad=True))
    variants.append(Variant(id="two_traces", data=recorded.trace + recorded.trace, bad=True))
    cuts = {
        "in_header": 10,
        "mid_header": len(lines[0]) // 2,
        "in_first_event": len(lines[0]) + 5,
        "before_the_end": len(recorded.trace) - 3,
    }
    for where, cut in cuts.items():
        variants.append(Variant(id=f"cut_{where}", data=recorded.trace[:cut], bad=True))
    return variants


def _header_variants(recorded: Recorded) -> list[Variant]:
    lines = _lines(recorded)
    header = json.loads(lines[0])
    edits: dict[str, Any] = {
        "format=other": {**header, "format": "other-trace"},
        "format=null": {**header, "format": None},
        "version=2": {**header, "version": 2},
        "version=0": {**header, "version": 0},
        "version=-1": {**header, "version": -1},
        "version=string": {**header, "version": "1"},
        "version=huge": {**header, "version": 10**30},
        "version=float": {**header, "version": 1.5},
        "version=missing": {k: v for k, v in header.items() if k != "version"},
        "events=999": {**header, "events": 999},
        "events=-1": {**header, "events": -1},
        "events=string": {**header, "events": "12"},
        "run=null": {**header, "run": None},
        "run=list": {**header, "run": []},
        "run_missing": {k: v for k, v in header.items() if k != "run"},
    }
    run = header["run"]
    kinds = [kind for kind in VALUES if kind != "int_key"]
    for index, field in enumerate(sorted(run)[::2]):
        kind = kinds[index % len(kinds)]
        make, _bad = VALUES[kind]
        edits[f"run.{field}={kind}"] = {**header, "run": {**run, field: make(run[field])}}
        if index % 4 == 0:
            edits[f"run.{field}:dropped"] = {
                **header,
                "run": {k: v for k, v in run.items() if k != field},
            }
    edits["run.id=path"] = {**header, "run": {**run, "id": "../../../etc/passwd"}}
    edits["run.id=surrogate"] = {**header, "run": {**run, "id": SURROGATE}}
    edits["run.id=e999"] = {**header, "run": {**run, "id": E999, "cost_usd": E999}}
    edits["run.document=other_workflow"] = {
        **header,
        "run": {**run, "document": {"version": 1, "name": "x", "steps": {}}},
    }
    certain = ("format=", "version=", "run=", "run_missing", "events=", "run.id=")
    return [
        Variant(id=name, data=_join([_dump(value), *lines[1:]]), bad=name.startswith(certain))
        for name, value in edits.items()
    ]


def _event_variants(recorded: Recorded) -> list[Variant]:
    lines = _lines(recorded)
    variants = []
    kinds = [kind for kind in VALUES if kind != "int_key"]
    for line_index in (1, len(lines) // 2, len(lines) - 1):
        event = json.loads(lines[line_index])
        for index, field in enumerate(sorted(event)):
            kind = kinds[(index + line_index) % len(kinds)]
            make, _bad = VALUES[kind]
            changed = list(lines)
            changed[line_index] = _dump({**event, field: make(event[field])})
            variants.append(
                Variant(id=f"event{line_index}.{field}={kind}", data=_join(changed), bad=False)
            )
        changed = list(lines)
        changed[line_index] = _dump({**event, "type": "no_such_event"})
        variants.append(
            Variant(id=f"event{line_index}.type=unknown", data=_join(changed), bad=True)
        )
    return variants


def _all(recorded: Recorded) -> list[Variant]:
    return (
        _line_variants(recorded)
        + _header_variants(recorded)
        + _event_variants(recorded)
        + [v for v in damaged("trace", recorded.trace) if "truncated" not in v.id]
    )


@pytest.mark.parametrize("variant", _all(shared()), ids=lambda v: v.id)
def test_trace_import(variant: Variant, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    trace = tmp_path / "trace.jsonl"
    trace.write_bytes(variant.data)
    state = ["--state", str(tmp_path / "s")]
    outcome = run_inprocess(["trace", "import", str(trace), *state], capsys)
    assert_clean(outcome, allowed=BAD if variant.bad else None)
    if outcome.code == 0:
        # What was let in must not break the commands that read it later.
        for command in (["inspect", "last"], ["report", "last"], ["replay", "last", "--plain"]):
            after = run_inprocess([*command, *state], capsys)
            assert_clean(after, command=f"after the import, {' '.join(command)}")


REPLAYED = [
    "header=open_brace",
    "version=2",
    "cut_mid_header",
    "middle_event=deep_100k",
    "trace:empty",
]


@pytest.mark.parametrize("name", REPLAYED)
def test_ci_replay_of_a_damaged_trace(
    name: str, recorded: Recorded, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`ci --replay DIR` reads the exported traces in DIR the way `trace import` does."""
    (found,) = [v for v in _all(recorded) if v.id == name]
    traces = tmp_path / "traces"
    traces.mkdir()
    (traces / "good.jsonl").write_bytes(found.data)
    argv = ["ci", str(recorded.workflow), "--replay", str(traces), "--state", str(tmp_path / "s")]
    outcome = run_inprocess([*argv, "--report-dir", str(tmp_path / "r")], capsys)
    assert_clean(outcome, allowed=BAD)
