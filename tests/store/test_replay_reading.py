"""How a replay reads the run it replays: every value as it was recorded (orjson reads most
rows; what it would read otherwise, such as integers beyond 64 bits, is read exactly), the
chain of replays followed, and the requests read again only to explain a divergence."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from runner.main import main
from runner.store.db import DamagedRow, opened
from runner.store.stored_json import fast_value
from runner.store.trace import RecordedRun, answering

WORKFLOW = """\
version: 1
name: wide-numbers
roles: {worker: {}}
steps:
  kind: sequence
  id: main
  steps:
    - {kind: leaf, id: ask, role: worker, prompt: "Count to {{ inputs.n }}"}
    - {kind: reduce, id: big, inputs: [ask], expr: "inputs.n * 1000000000000000000000 + 7"}
    - {kind: reduce, id: fine, inputs: [big], expr: "outputs.big / 3.5"}
inputs:
  n: {type: integer, default: 3}
"""


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "wf.yaml").write_text(textwrap.dedent(WORKFLOW), encoding="utf-8")
    assert main(["run", "wf.yaml", "--plain", "--state", "s"]) == 0
    return tmp_path / "s"


def test_an_integer_beyond_64_bits_replays_without_diverging(
    state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert main(["replay", "last", "--plain", "--state", str(state)]) == 0, capsys.readouterr()
    # A replay of the replay reads its calls from the first run, along the chain.
    assert main(["replay", "last", "--plain", "--state", str(state)]) == 0, capsys.readouterr()
    with opened(state, create=False) as conn:
        recorded = RecordedRun.read(state, conn, "last-but-not-an-id", strict=True)
        assert not recorded.calls  # no such run: nothing answers
        run_id = conn.execute("SELECT id FROM runs ORDER BY rowid LIMIT 1").fetchone()[0]
        rows = answering(conn, run_id)
        assert not isinstance(rows, list)  # streamed from the state, not fetched at once
        recorded = RecordedRun.read(state, conn, run_id, strict=True)
    assert recorded.check("big", 3 * 10**21 + 7, None) is None
    assert recorded.check("fine", (3 * 10**21 + 7) / 3.5, None) is None
    assert "differs" in (recorded.check("big", 3 * 10**21 + 8, None) or "")


def test_a_divergent_call_is_explained_from_the_requests_read_again(
    state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with opened(state, create=False) as conn:
        run_id = conn.execute("SELECT id FROM runs ORDER BY rowid LIMIT 1").fetchone()[0]
        recorded = RecordedRun.read(state, conn, run_id, strict=True)
    [(path, key)] = recorded.calls
    assert path == "ask"
    assert recorded.reply("ask", key) is not None
    changed = state.parent / "changed.yaml"
    changed.write_text(textwrap.dedent(WORKFLOW).replace("Count to", "Count up to"))
    capsys.readouterr()
    code = main(["replay", "last", str(changed), "--plain", "--state", str(state)])
    out = capsys.readouterr().out
    assert code == 1
    assert "the model call at ask differs from the recorded one in: messages" in out
    assert "Count to 3" in out
    assert "Count up to 3" in out


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"a": NaN}', "holds NaN"),
        ('{"a": 1e999}', "too large for a JSON number"),
        ('{"a": "\\ud800"}', "lone surrogate"),
        ("[" * 100_000 + "]" * 100_000, "nests lists and mappings too deeply"),
    ],
)
def test_a_damaged_row_is_named_as_the_standard_reader_names_it(text: str, message: str) -> None:
    with pytest.raises(DamagedRow, match=message):
        fast_value(text, "the row")


def test_values_read_fast_are_the_values_written() -> None:
    text = '{"big": 123456789012345678901234567890, "f": 1e-05, "s": "caf\\u00e9 \\ud83d\\ude00"}'
    assert fast_value(text, "the row") == {
        "big": 123456789012345678901234567890,
        "f": 1e-05,
        "s": "café \U0001f600",
    }


def test_a_node_end_compares_as_values_whatever_the_order_of_keys() -> None:
    ended = {"status": "succeeded", "output": {"a": 1, "b": [2.5, None]}, "decision": None}
    recorded = RecordedRun([("n", "node_finished", None, ended)], strict=True)
    assert recorded.check("n", {"a": 1, "b": [2.5, None]}, None) is None
    assert recorded.check("n", {"b": [2.5, None], "a": 1}, None) is None
    assert "the output of n differs" in (recorded.check("n", {"a": 2, "b": [2.5]}, None) or "")
    assert "the decision at n differs" in (recorded.check("n", ended["output"], "x") or "")
