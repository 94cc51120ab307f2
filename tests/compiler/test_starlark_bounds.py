"""Starlark evaluation is bounded in time and memory, finds every position in one extra pass,
and refuses values that JSON cannot hold, with their position."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from runner.compiler import starlark_loader
from runner.compiler.pipeline import check_file
from runner.main import main


def write(tmp_path: Path, text: str, name: str = "w.star") -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_a_file_that_builds_gigabytes_is_a_clear_validation_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # 2,000,000,000 items take 16 GB in starlark-rust: the child's memory limit stops it.
    path = write(tmp_path, "x = [0] * 2000000000\n")
    started = time.monotonic()
    assert main(["validate", path]) == 2
    assert time.monotonic() - started < 30
    out = capsys.readouterr()
    assert f"evaluating {path} used more than 512 MB of memory" in out.out + out.err
    assert "Traceback" not in out.out + out.err
    assert "memory allocation" not in out.out + out.err  # the native backtrace stays hidden


def test_a_file_that_spins_in_native_code_is_stopped_at_the_time_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(starlark_loader, "EVAL_SECONDS", 0.5)
    # One native operation (sorting a huge list) never reaches Starlark's cancellation check.
    path = write(tmp_path, "x = sorted(list(range(30000000)), reverse=True)\n")
    started = time.monotonic()
    (diagnostic,) = check_file(path).diagnostics
    assert time.monotonic() - started < 30
    assert diagnostic.message in (
        f"evaluating {path} took longer than 0.5 s",
        f"evaluating {path} used more than 512 MB of memory",
    )


ROLELESS = """\
def step(i):
    return leaf(id = "s%d" % i, role = "missing%d" % i, prompt = "p")

workflow(
    name = "many",
    roles = {"r": {}},
    steps = sequence(id = "main", steps = [step(i) for i in range(20)]),
)
"""


def test_twenty_errors_that_need_positions_take_one_extra_evaluation(tmp_path: Path) -> None:
    path = write(tmp_path, ROLELESS)
    before = starlark_loader.EVALUATIONS.copy()
    diagnostics = check_file(path).diagnostics
    assert len(diagnostics) == 20
    assert {(d.line, d.col) for d in diagnostics} == {(2, 12)}
    used = starlark_loader.EVALUATIONS - before
    assert used == {"document": 1, "positions": 1}


def test_positions_of_calls_on_one_line_are_told_apart(tmp_path: Path) -> None:
    text = (
        'workflow(name = "w", roles = {"r": {}}, steps = sequence(id = "s", steps = ['
        'leaf(id = "a", role = "x", prompt = "p"), leaf(id = "b", role = "y", prompt = "p")]))\n'
    )
    found = sorted((d.line, d.col) for d in check_file(write(tmp_path, text)).diagnostics)
    assert found == [(1, text.index('leaf(id = "a"') + 1), (1, text.index('leaf(id = "b"') + 1)]


@pytest.mark.parametrize(
    ("text", "message", "call"),
    [
        (
            'workflow(name = "w", roles = {1: {}}, '
            'steps = leaf(id = "a", role = "r", prompt = "p"))',
            "workflow(): roles has the key 1, which is not a string; JSON keys are strings",
            "workflow(",
        ),
        (
            'workflow(name = "w", roles = {"r": {}}, steps = leaf(id = "a", role = "r", '
            'prompt = "p", output = {"type": "number", "maximum": float("nan")}))',
            "float('nan') is nan, which is not a JSON number",
            'float("nan")',
        ),
        (
            'workflow(name = "w", roles = {"r": {}}, budget = {"cost_usd": float("inf")}, '
            'steps = leaf(id = "a", role = "r", prompt = "p"))',
            "float('inf') is inf, which is not a JSON number",
            'float("inf")',
        ),
        (
            'workflow(name = "w", roles = {"r": {}}, steps = leaf(id = "a", role = "r", '
            'prompt = "p", timeout_s = 1e999))',
            "1e999 is too large for a number (it would be infinity, which is not a JSON number)",
            "1e999",
        ),
    ],
    ids=["non_string_key", "nan", "inf", "literal"],
)
def test_values_json_cannot_hold_are_errors_with_their_position(
    tmp_path: Path, text: str, message: str, call: str
) -> None:
    path = write(tmp_path, text + "\n")
    (diagnostic,) = check_file(path).diagnostics
    assert (diagnostic.message, diagnostic.line) == (message, 1)
    assert diagnostic.col == text.index(call) + 1


@pytest.mark.parametrize("depth", [150, 5000])
def test_deeply_nested_values_are_a_clear_error(tmp_path: Path, depth: int) -> None:
    path = write(
        tmp_path,
        "def deep():\n"
        "    x = {}\n"
        f"    for i in range({depth}):\n"
        '        x = {"a": x}\n'
        "    return x\n"
        'workflow(name = "w", roles = {"r": {}}, '
        'steps = leaf(id = "a", role = "r", prompt = "p", output = deep()))\n',
    )
    (diagnostic,) = check_file(path).diagnostics
    assert diagnostic.line == 6
    assert diagnostic.message in (
        "leaf(): output is nested more than 100 levels deep",
        "a value given here is nested more than 100 levels deep",  # met in starlark-pyo3
    )
