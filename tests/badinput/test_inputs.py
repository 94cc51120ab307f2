"""``run --input`` values that do not fit their declared type, or that JSON cannot hold."""

from __future__ import annotations

from pathlib import Path

import pytest

from badinput.cli import BAD, assert_clean, run_inprocess

TYPED = """\
version: 1
name: typed-inputs
inputs:
  s: {type: string, default: "x"}
  i: {type: integer, default: 1}
  n: {type: number, default: 0.5}
  b: {type: boolean, default: true}
  a: {type: array, default: []}
  o: {type: object, default: {}}
roles: {r: {}}
steps:
  kind: leaf
  id: echo
  role: r
  prompt: "{{ inputs.s }} {{ inputs.i }} {{ inputs.n }} {{ inputs.b }} {{ inputs.a }} \\
    {{ inputs.o }}"
"""

DEEP = "[" * 100_000 + "]" * 100_000
NOT_JSON = ["NaN", "Infinity", "-Infinity", "1e999", "-1e999"]
# (input, raw value, certainly invalid?)
CASES: list[tuple[str, str, bool]] = [
    *[("n", value, True) for value in NOT_JSON],
    *[(name, value, True) for name in ("i", "a", "o") for value in ("NaN", "1e999")],
    ("a", "[NaN]", True),
    ("a", "[1e999]", True),
    ("o", '{"a": NaN}', True),
    ("o", '{"a": {"b": Infinity}}', True),
    ("a", DEEP, True),
    ("o", '{"a":' * 50_000 + "1" + "}" * 50_000, True),
    ("a", "[" * 100_000, True),
    ("a", "[" * 900 + "]" * 900, False),
    ("s", "\udcff", True),
    ("s", "caf\udce9", True),
    ("a", '["\udcff"]', True),
    ("a", '["\\ud800"]', True),
    ("o", '{"\\udfff": 1}', True),
    ("s", "", False),
    ("s", "\x00", False),
    ("s", "\x1b[2J\x1b]0;pwned\x07", False),
    ("s", "x" * 1_000_000, False),
    ("s", "{{ 7 * 7 }}", False),
    ("s", "{% for i in range(10) %}x{% endfor %}", False),
    ("i", "", True),
    ("i", "abc", True),
    ("i", "1.5", True),
    ("i", "1e3", False),
    ("i", "9" * 5000, False),
    ("i", "99999999999999999999999999999", False),
    ("i", "\uff11\uff12", False),
    ("i", "0x10", True),
    ("i", "1_000", False),
    ("i", "true", True),
    ("i", "null", True),
    ("i", "[1]", True),
    ("n", "1e308", False),
    ("n", "-0", False),
    ("n", "5e-324", False),
    ("n", "0." + "0" * 10000 + "1", False),
    ("n", "abc", True),
    ("n", '"1"', True),
    ("b", "maybe", True),
    ("b", "True", False),
    ("b", "1", True),
    ("b", "", True),
    ("a", "{}", True),
    ("a", "1", True),
    ("a", "not json", True),
    ("a", '"[]"', True),
    ("a", "[1,]", True),
    ("o", "[]", True),
    ("o", "null", True),
    ("o", '{"a": 1} trailing', True),
    ("o", '{"a": 1, "a": 2}', False),
    ("o", "{" + ", ".join(f'"k{i}": {i}' for i in range(20_000)) + "}", False),
]


def _id(case: tuple[str, str, bool]) -> str:
    name, value, _bad = case
    shown = value if len(value) <= 24 else f"{value[:12]}...({len(value)} chars)"
    return f"{name}={shown!r}"


@pytest.fixture
def typed(tmp_path: Path) -> str:
    path = tmp_path / "typed.yaml"
    path.write_text(TYPED, encoding="utf-8")
    return str(path)


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_typed_input(
    case: tuple[str, str, bool], typed: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    name, value, bad = case
    argv = ["run", typed, "--plain", "--state", str(tmp_path / "s"), "--input", f"{name}={value}"]
    assert_clean(run_inprocess(argv, capsys), allowed=BAD if bad else None)


@pytest.mark.parametrize(
    "given",
    [
        ["--input", "s"],
        ["--input", "=x"],
        ["--input", ""],
        ["--input", "nope=1"],
        ["--input", "S=1"],
        ["--input", "s=1", "--input", "s=2"],
        ["--input", "s=1", "--input", "nope=2", "--input", "also=3"],
        ["--input", " s=1"],
        ["--input", "s\udcff=1"],
        ["--input", "\x00=1"],
        ["--input"],
    ],
    ids=lambda given: " ".join(given).encode("unicode_escape", "backslashreplace").decode(),
)
def test_malformed_input_option(
    given: list[str], typed: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["run", typed, "--plain", "--state", str(tmp_path / "s"), *given]
    bad = given != ["--input", "s=1", "--input", "s=2"]
    assert_clean(run_inprocess(argv, capsys), allowed=BAD if bad else None)


@pytest.mark.parametrize("value", ["NaN", "1e999", '{"a": NaN}', "\udcff"], ids=repr)
def test_ci_block_inputs(value: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The same values written in a workflow's ``ci: inputs:`` block, as `ci` runs it."""
    text = TYPED + f"ci:\n  inputs:\n    o: {value!r}\n"
    path = tmp_path / "ci.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogateescape")
    argv = ["ci", str(path), "--state", str(tmp_path / "s"), "--report-dir", str(tmp_path / "r")]
    assert_clean(run_inprocess(argv, capsys), allowed=BAD)
