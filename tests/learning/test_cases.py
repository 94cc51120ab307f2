"""Evaluation cases: cases files and their errors, cases checked against a workflow's inputs,
the seeded split and what it promises, and one case's run scored."""

from __future__ import annotations

import hashlib
import json
import os
import random
from pathlib import Path

import pytest
from conftest import position
from hypothesis import given, settings
from hypothesis import strategies as st

from runner import ir
from runner.compiler.pipeline import compile_file
from runner.executor import results
from runner.learning.cases import (
    SPLITS,
    CasesFileError,
    SplitError,
    case_inputs,
    check_cases,
    load_cases_file,
    score,
    split,
)

WORKFLOW = """\
version: 1
name: summarize
inputs:
  text: {type: string}
  limit: {type: integer, default: 10}
roles:
  writer: {}
steps:
  kind: leaf
  id: write
  role: writer
  prompt: "Summarize {{ inputs.text }} in {{ inputs.limit }} words."
tests:
  - name: short
    expect: "outputs.write | length < 20"
  - name: mentions
    expect: "'story' in outputs.write"
metric: "100 - (outputs.write | length)"
"""

CASES_YAML = """\
- name: hello
  inputs: {text: hello}
- name: story.long
  description: a longer text
  inputs: {text: a long story, limit: 5}
"""


def _workflow(tmp_path: Path, text: str = WORKFLOW) -> ir.Workflow:
    path = tmp_path / "summarize.yaml"
    path.write_text(text, encoding="utf-8")
    return compile_file(str(path))


def _file(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def _cases(*names: str) -> list[ir.Case]:
    return [ir.Case(name=name, inputs={}) for name in names]


def _problems(path: str) -> list[str]:
    with pytest.raises(CasesFileError) as raised:
        load_cases_file(path)
    return [d.render() for d in raised.value.diagnostics]


# -- cases files ----------------------------------------------------------------------------


def test_a_yaml_list_a_cases_mapping_json_and_jsonl_give_the_same_cases(tmp_path: Path) -> None:
    as_list = load_cases_file(_file(tmp_path, "a.yaml", CASES_YAML))
    mapping = "cases:\n" + "".join(f"  {line}\n" for line in CASES_YAML.splitlines())
    as_mapping = load_cases_file(_file(tmp_path, "b.yml", mapping))
    items = [
        {"name": "hello", "inputs": {"text": "hello"}},
        {
            "name": "story.long",
            "description": "a longer text",
            "inputs": {"text": "a long story", "limit": 5},
        },
    ]
    as_json = load_cases_file(_file(tmp_path, "c.json", json.dumps(items)))
    lines = "\n".join(json.dumps(item) for item in items)
    as_jsonl = load_cases_file(_file(tmp_path, "d.jsonl", lines.replace("\n", "\n\n") + "\n"))
    assert as_list == as_mapping == as_json == as_jsonl
    assert [case.name for case in as_list] == ["hello", "story.long"]
    assert dict(as_list[1].inputs) == {"text": "a long story", "limit": 5}
    assert as_list[1].description == "a longer text"
    # Each case knows where it was written, for the messages about it.
    assert [(c.source, c.source_line) for c in as_list] == [
        (str(tmp_path / "a.yaml"), 1),
        (str(tmp_path / "a.yaml"), 3),
    ]
    assert [c.source_line for c in as_mapping] == [2, 4]
    assert [c.source_line for c in as_jsonl] == [1, 3]  # the blank line is skipped, and counted


def test_a_malformed_case_is_reported_at_its_place_with_every_other_one(tmp_path: Path) -> None:
    text = "- name: -bad\n  inputs: {}\n- {name: ok, input: {}}\n"
    path = _file(tmp_path, "cases.yaml", text)
    line, col = position(text, "-bad")
    at = position(text, "{}}")  # an unknown field is placed at its value
    assert _problems(path) == [
        f'{path}:{line}:{col}: [schema] "-bad" is not valid for cases[0].name (at /0/name)\n'
        "    fix: A case name: letters, digits, `_`, `.` and `-`, starting with a letter or a "
        "digit; unique among the cases. The split rule orders cases by it, so renaming a case "
        "may move it to another set.",
        f"{path}:3:3: [schema] missing required field 'inputs' in cases[1] (at /1)\n"
        "    fix: Add inputs (Input values by name, as `--input name=value` would give them: "
        "each names an input the workflow declares and has its declared type. Inputs left out "
        "take their defaults; an input without a default must be given).",
        f"{path}:{at[0]}:{at[1]}: [schema] unknown field 'input' in cases[1] (at /1/input)\n"
        "    fix: Did you mean 'inputs'? Allowed here: description, inputs, name.",
    ]


def test_a_mapping_takes_only_cases(tmp_path: Path) -> None:
    path = _file(tmp_path, "cases.yaml", "cases: []\ncase: 1\n")
    assert _problems(path) == [
        f"{path}:2:7: [schema] unknown field 'case' at the top level (at /case)\n"
        "    fix: Did you mean 'cases'? Allowed here: cases."
    ]


def test_jsonl_errors_name_the_line(tmp_path: Path) -> None:
    text = (
        '{"name": "a", "inputs": {}}\n'
        '{"name": "b",\n'
        "\n"
        '{"name": "c", "inputs": {}, "x": 1}\n'
        '{"name": "d"}\n'
        '{"name": "e", "inputs": {}, "name": "f"}\n'
        "[]\n"
    )
    path = _file(tmp_path, "cases.jsonl", text)
    assert _problems(path) == [
        f"{path}:2:14: [syntax] line 2 is not a case: invalid JSON: Expecting property name "
        "enclosed in double quotes\n"
        "    fix: Check the commas, quotes and brackets around this place.",
        f"{path}:4:34: [schema] unknown field 'x' in the case on line 4 (at /x on that line)\n"
        "    fix: Allowed here: description, inputs, name.",
        f"{path}:5:1: [schema] missing required field 'inputs' in the case on line 5\n"
        "    fix: Add inputs (Input values by name, as `--input name=value` would give them: "
        "each names an input the workflow declares and has its declared type. Inputs left out "
        "take their defaults; an input without a default must be given).",
        f"{path}:6:29: [syntax] line 6 is not a case: the field 'name' is given twice "
        "(at /name on that line)\n"
        "    fix: Keep one of them; YAML would silently drop the first.",
        f"{path}:7:1: [schema] line 7 must be a mapping, not a list\n"
        "    fix: Write it as a mapping.",
    ]


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        (
            "cases.txt",
            "- {}",
            "not a cases file: its name must end in .yaml, .yml, .json or .jsonl",
        ),
        ("cases.yaml", None, "the cases file does not exist"),
        ("cases.yaml", "  \n", "the cases file is empty"),
        ("cases.jsonl", "\n\n", "the cases file is empty"),
        ("cases.yaml", "just words\n", "the cases file holds text, not a list of cases"),
        ("cases.json", "3", "the cases file holds a number, not a list of cases"),
        ("cases.yaml", "- [unclosed\n", "while parsing a flow sequence"),
    ],
)
def test_a_file_that_is_not_a_cases_file_is_one_clear_error(
    tmp_path: Path, name: str, content: str | None, expected: str
) -> None:
    path = str(tmp_path / name)
    if content is not None:
        _file(tmp_path, name, content)
    (problem,) = _problems(path)
    assert expected in problem.splitlines()[0]
    assert problem.startswith(path)


def test_a_cases_file_is_read_as_a_user_file(tmp_path: Path) -> None:
    (tmp_path / "folder.yaml").mkdir()
    assert _problems(str(tmp_path / "folder.yaml")) == [
        f"{tmp_path / 'folder.yaml'}: [syntax] the cases file is a folder, not a file"
    ]
    os.mkfifo(tmp_path / "pipe.jsonl")  # opening it to read would wait for a writer
    ((problem,)) = _problems(str(tmp_path / "pipe.jsonl"))
    assert "is a named pipe (FIFO), not a regular file" in problem
    (tmp_path / "latin1.yaml").write_bytes(b"- name: caf\xe9\n")
    ((problem,)) = _problems(str(tmp_path / "latin1.yaml"))
    assert problem.startswith(
        f"{tmp_path / 'latin1.yaml'}:1:12: [syntax] the cases file is not UTF-8"
    )


# -- checked against the workflow -----------------------------------------------------------


def test_cases_from_a_file_are_checked_as_the_language_checks_them(tmp_path: Path) -> None:
    workflow = _workflow(tmp_path)
    text = (
        "- {name: a, inputs: {text: hi}}\n"
        "- {name: b, inputs: {text: 3, limit: 2}}\n"
        "- {name: a, inputs: {txt: hi}}\n"
    )
    path = _file(tmp_path, "cases.yaml", text)
    cases = load_cases_file(path)
    assert [d.render() for d in check_cases(workflow, cases)] == [
        f"{path}:2: [cases] case 'b' sets 'text' to a value that is not of type string, as the "
        "input is declared\n"
        "    fix: Give a value of type string. In YAML, quote a string that reads as a number "
        "or a boolean.",
        f"{path}:3: [cases] the case name 'a' is already used by the case on line 1 of {path}\n"
        "    fix: Rename this case, say to 'a_2': every case needs its own name.",
        f"{path}:3: [cases] case 'a' sets 'txt', which is not an input of the workflow\n"
        "    fix: Declare it under inputs, or take it out of the case (declared: text, limit). "
        "Did you mean 'text'?",
        f"{path}:3: [cases] case 'a' does not set the input 'text', which has no default\n"
        "    fix: Give text a value of type string in the case's inputs, or give the input a "
        "default.",
    ]
    assert check_cases(workflow, cases[:1]) == []


def test_cases_built_in_code_are_checked_at_their_pointer(tmp_path: Path) -> None:
    workflow = _workflow(tmp_path)
    cases = [ir.Case(name="a b", inputs={"text": "x", "limit": True})]
    found = check_cases(workflow, cases)
    assert [(d.pointer, d.message) for d in found] == [
        ("/cases/0/name", "the case name 'a b' is not allowed"),
        (
            "/cases/0/inputs/limit",
            "case 'a b' sets 'limit' to a value that is not of type integer, as the input is "
            "declared",
        ),
    ]
    assert {d.file for d in found} == {workflow.source}


def test_a_case_runs_with_its_inputs_then_the_defaults(tmp_path: Path) -> None:
    workflow = _workflow(tmp_path)
    hello, story = load_cases_file(_file(tmp_path, "cases.yaml", CASES_YAML))
    assert case_inputs(workflow, hello) == {"text": "hello", "limit": 10}
    assert case_inputs(workflow, story) == {"text": "a long story", "limit": 5}


# -- the split ------------------------------------------------------------------------------

NAMES = st.lists(
    st.text(alphabet="abcxyz019_.-", min_size=1, max_size=8).filter(lambda s: s[0] not in "_.-"),
    min_size=3,
    max_size=40,
    unique=True,
)
SEEDS = st.integers(min_value=-(2**63), max_value=2**63)
FRACTIONS = st.sampled_from(
    [(0.3, 0.3, 0.4), (0.1, 0.1, 0.8), (0.5, 0.25, 0.25), (0.8, 0.1, 0.1), (1 / 3, 1 / 3, 1 / 3)]
)
PROPERTIES = settings(max_examples=100, deadline=None)


def _sets(result: object) -> dict[str, tuple[str, ...]]:
    return {which: getattr(result, which) for which in SPLITS}


@PROPERTIES
@given(names=NAMES, seed=SEEDS, fractions=FRACTIONS, shuffle=st.randoms(use_true_random=False))
def test_the_split_is_disjoint_covering_non_empty_and_order_independent(
    names: list[str], seed: int, fractions: tuple[float, float, float], shuffle: random.Random
) -> None:
    result = split(_cases(*names), seed=seed, fractions=fractions)
    sets = _sets(result)
    assert all(sets.values())
    assert sorted(name for members in sets.values() for name in members) == sorted(names)
    assert sum(len(members) for members in sets.values()) == len(names)  # so disjoint
    assert all(result.of(name) == which for which, members in sets.items() for name in members)
    shuffled = list(names)
    shuffle.shuffle(shuffled)
    again = split(_cases(*shuffled), seed=seed, fractions=fractions)
    assert again == result
    assert again.rule() == result.rule()


@PROPERTIES
@given(names=NAMES, seed=SEEDS, fractions=FRACTIONS)
def test_the_split_follows_its_stated_rule(
    names: list[str], seed: int, fractions: tuple[float, float, float]
) -> None:
    result = split(_cases(*names), seed=seed, fractions=fractions)
    order = sorted(names, key=lambda name: hashlib.sha256(f"{seed}:{name}".encode()).hexdigest())
    assert list(result.order) == order
    n = len(names)
    # floor(x + 1/2), in exact decimals, then the clamps that keep every set non-empty
    first = min(max(int((n * round(fractions[0] * 10**6) + 500_000) // 10**6), 1), n - 2)
    together = round((fractions[0] + fractions[1]) * 10**6)
    second = min(max(int((n * together + 500_000) // 10**6), first + 1), n - 1)
    assert list(result.reflection) == order[:first]
    assert list(result.selection) == order[first:second]
    assert list(result.held_out) == order[second:]


@PROPERTIES
@given(
    names=NAMES,
    seed=SEEDS,
    fractions=FRACTIONS,
    extra=st.text(alphabet="klmn", min_size=9, max_size=12),
)
def test_adding_a_case_moves_at_most_one_other_across_each_cut(
    names: list[str], seed: int, fractions: tuple[float, float, float], extra: str
) -> None:
    before = split(_cases(*names), seed=seed, fractions=fractions)
    after = split(_cases(*names, extra), seed=seed, fractions=fractions)
    assert [name for name in after.order if name != extra] == list(before.order)
    moved = [
        (before.of(name), after.of(name)) for name in names if before.of(name) != after.of(name)
    ]
    assert len(moved) <= 2
    for old, new in moved:
        assert abs(SPLITS.index(old) - SPLITS.index(new)) == 1  # only to a neighbouring set


def test_the_default_fractions_cut_ten_cases_three_three_four() -> None:
    names = [f"case{i}" for i in range(10)]
    result = split(_cases(*names), seed=7)
    assert [len(members) for members in _sets(result).values()] == [3, 3, 4]
    three = split(_cases("a", "b", "c"), seed=7)
    assert [len(members) for members in _sets(three).values()] == [1, 1, 1]
    assert split(_cases(*names), seed=8).order != result.order  # the seed draws the order


def test_the_rule_is_recorded_as_json(tmp_path: Path) -> None:
    result = split(_cases("a", "b", "c", "d"), seed=3)
    rule = json.loads(json.dumps(result.rule()))
    assert rule["seed"] == 3
    assert rule["fractions"] == [0.3, 0.3, 0.4]
    assert rule["key"] == "sha256(f'{seed}:{name}')"
    assert rule["cuts"] == [len(result.reflection), len(result.reflection) + len(result.selection)]
    assert [rule[which] for which in SPLITS] == [
        list(result.reflection),
        list(result.selection),
        list(result.held_out),
    ]
    other = split(_cases("a", "b", "c", "d"), seed=4)
    assert (rule["order_hash"] == other.rule()["order_hash"]) == (other.order == result.order)
    with pytest.raises(KeyError, match="no case named 'e' was split"):
        result.of("e")


@pytest.mark.parametrize(
    ("names", "options", "message"),
    [
        (["a", "b"], {}, "needs at least 3 cases, one for each; 2 were given: add 1 more"),
        ([], {}, "needs at least 3 cases, one for each; 0 were given: add 3 more"),
        (["a", "b", "a"], {}, "the case name 'a' is given twice"),
        (["a", "b", "c"], {"fractions": (0.5, 0.5, 0.0)}, "must be three numbers greater than 0"),
        (["a", "b", "c"], {"fractions": (0.5, 0.4, 0.4)}, "that add up to 1"),
        (["a", "b", "c"], {"fractions": (0.5, 0.5)}, "must be three numbers"),
        (["a", "b", "c"], {"fractions": (0.3, float("nan"), 0.4)}, "must be three numbers"),
        (["a", "b", "c"], {"seed": True}, "the split seed must be an integer, not True"),
    ],
)
def test_a_split_that_cannot_be_made_says_why(
    names: list[str], options: dict[str, object], message: str
) -> None:
    kwargs: dict[str, object] = {"seed": 1, **options}
    with pytest.raises(SplitError) as raised:
        split(_cases(*names), **kwargs)  # type: ignore[arg-type]
    assert message in str(raised.value)
    assert raised.value.exit_code == 2


# -- scoring --------------------------------------------------------------------------------


def _tests(*passed: bool) -> list[results.TestResult]:
    return [results.TestResult(name=f"t{i}", passed=ok) for i, ok in enumerate(passed)]


def test_a_case_passes_when_every_test_passes_and_the_metric_is_its_number(tmp_path: Path) -> None:
    workflow = _workflow(tmp_path)
    outputs = {"write": "a short story"}
    good = score(workflow, outputs, _tests(True, True))
    assert (good.passed, good.failed_tests, good.metric, good.metric_error) == (
        True,
        (),
        87.0,
        None,
    )
    bad = score(workflow, outputs, _tests(True, False))
    assert (bad.passed, bad.failed_tests, bad.metric) == (False, ("t1",), 87.0)
    stopped = score(workflow, outputs, _tests(True, True), run_succeeded=False)
    assert not stopped.passed


@pytest.mark.parametrize(
    ("metric", "error"),
    [
        (
            "outputs.write | length > 3",
            "the metric 'outputs.write | length > 3' is True, not a number",
        ),
        ("outputs.write", "the metric 'outputs.write' is 'a short story', not a number"),
        ("10 ** 400", "is 1000000000"),
        ("outputs.write.missing", "the metric 'outputs.write.missing' could not be evaluated: "),
    ],
)
def test_a_metric_that_is_not_a_number_is_an_error_for_the_case(
    tmp_path: Path, metric: str, error: str
) -> None:
    workflow = _workflow(
        tmp_path, WORKFLOW.replace('"100 - (outputs.write | length)"', json.dumps(metric))
    )
    scored = score(workflow, {"write": "a short story"}, _tests(True))
    assert (scored.passed, scored.metric) == (True, None)
    assert scored.metric_error is not None
    assert error in scored.metric_error


def test_the_metric_reads_what_a_test_reads(tmp_path: Path) -> None:
    workflow = _workflow(
        tmp_path, WORKFLOW.replace("100 - (outputs.write | length)", "inputs.limit * 2.5")
    )
    assert score(workflow, {}, [], inputs={"text": "x", "limit": 4}).metric == 10.0
    no_metric = _workflow(
        tmp_path, WORKFLOW.replace('metric: "100 - (outputs.write | length)"\n', "")
    )
    plain = score(no_metric, {}, _tests(True))
    assert (plain.passed, plain.metric, plain.metric_error) == (True, None, None)
