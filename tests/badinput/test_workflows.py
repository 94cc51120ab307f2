"""Workflow files (YAML, JSON) mutated at every kind of place: validate, compile, graph, run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from conftest import GOOD_YAML

from badinput.cli import BAD, assert_clean, run_inprocess
from badinput.mutate import Variant, damaged, structural, to_json, to_yaml

WORKFLOWS = Path(__file__).resolve().parents[2] / "workflows"
REQUIRED = {"version", "name", "steps"}
EXAMPLES = ("pr_triage.yaml", "dependency_upgrade.yaml", "test_failure_triage.yaml")


def _yaml_variants() -> list[Variant]:
    good = yaml.safe_load(GOOD_YAML)
    variants = list(structural("good", good, to_yaml, count=10, required=REQUIRED))
    variants += damaged("good", GOOD_YAML.encode())
    # The examples are larger (slower to check), so fewer places of each are changed.
    for name in EXAMPLES:
        text = (WORKFLOWS / name).read_text(encoding="utf-8")
        stem = name.removesuffix(".yaml")
        if name != EXAMPLES[0]:
            continue
        hurt = list(damaged(stem, text.encode()))
        variants += hurt[5:8] + hurt[13:18]  # not UTF-8, and cut short at five places
    return variants


def _json_variants() -> list[Variant]:
    good = yaml.safe_load(GOOD_YAML)
    variants = list(
        structural("good.json", good, to_json, count=8, required=REQUIRED, json_text=True)
    )
    variants += damaged("good.json", to_json(good))
    text = to_json(yaml.safe_load((WORKFLOWS / "pr_triage.yaml").read_text(encoding="utf-8")))
    variants += [
        Variant(
            id="json:nan_literal", data=text.replace(b'"version": 1', b'"version": NaN'), bad=True
        ),
        Variant(
            id="json:infinity_literal",
            data=text.replace(b'"tokens": 300000', b'"tokens": Infinity'),
            bad=True,
        ),
        Variant(
            id="json:1e999_budget",
            data=text.replace(b'"tokens": 300000', b'"tokens": 1e999'),
            bad=True,
        ),
        Variant(
            id="json:lone_surrogate_name",
            data=text.replace(b'"name": "pr-triage"', b'"name": "pr-\\udc80"'),
            bad=True,
        ),
        Variant(
            id="json:lone_surrogate_key",
            data=text.replace(b'"name": "pr-triage"', b'"name": "pr", "\\ud800": 1'),
            bad=True,
        ),
        Variant(
            id="json:duplicate_keys",
            data=text.replace(b'"version": 1', b'"version": 1, "version": 2'),
            bad=False,
        ),
        Variant(id="json:trailing_comma", data=text.rstrip()[:-1] + b",}", bad=True),
        Variant(id="json:top_level_array", data=b"[" + text + b"]", bad=True),
        Variant(id="json:top_level_string", data=b'"workflow"', bad=True),
        Variant(id="json:top_level_null", data=b"null", bad=True),
        Variant(id="json:top_level_number", data=b"1e999", bad=True),
        Variant(id="json:deep_array_5000", data=b"[" * 5000 + b"]" * 5000, bad=True),
        Variant(id="json:deep_object_5000", data=b'{"a":' * 5000 + b"1" + b"}" * 5000, bad=True),
        Variant(
            id="json:huge_int_literal",
            data=text.replace(b'"tokens": 300000', b'"tokens": ' + b"9" * 5000),
            bad=True,
        ),
    ]
    return variants


YAML_HAND = {
    # YAML that PyYAML reads as something JSON does not have, or that is plain broken.
    "tab_indent": (b"version: 1\nname: x\nsteps:\n\tkind: leaf\n", True),
    "unclosed_quote": (b'version: 1\nname: "x\nsteps: {}\n', True),
    "unclosed_flow": (b"version: 1\nname: x\nsteps: {kind: leaf, id: a\n", True),
    "binary_tag": (b"version: 1\nname: !!binary aGVsbG8=\nsteps: {}\n", True),
    "python_tag": (b"version: 1\nname: !!python/object:os.system x\nsteps: {}\n", True),
    "set_value": (b"version: 1\nname: x\nroles: !!set {a, b}\nsteps: {}\n", True),
    "complex_key": (b"version: 1\nname: x\n? [a, b]\n: c\nsteps: {}\n", True),
    "null_key": (b"version: 1\nname: x\n~: 1\nsteps: {}\n", True),
    "bool_key": (b"version: 1\nname: x\ntrue: 1\nsteps: {}\n", True),
    "float_key": (b"version: 1\nname: x\n1.5: 1\nsteps: {}\n", True),
    "timestamp_value": (b"version: 1\nname: 2024-01-01\nsteps: {}\n", True),
    "exponent_timeout": (
        GOOD_YAML.replace("max_children: 50", "max_children: 1e3").encode(),
        False,
    ),
    "exponent_1e999": (GOOD_YAML.replace("tokens: 100000", "tokens: 1.0e+999").encode(), True),
    "dot_inf": (GOOD_YAML.replace("tokens: 100000", "tokens: .inf").encode(), True),
    "dot_nan": (GOOD_YAML.replace("cost_usd: 1.0", "cost_usd: .nan").encode(), True),
    "escaped_surrogate": (
        GOOD_YAML.replace("name: review-files", 'name: "\\ud800"').encode(),
        True,
    ),
    "escaped_nul": (GOOD_YAML.replace("name: review-files", 'name: "a\\0b"').encode(), True),
    "multi_document": (GOOD_YAML.encode() + b"---\n" + GOOD_YAML.encode(), True),
    "alias_bomb": (
        b"a: &a [x, x, x, x, x, x, x, x, x, x]\n"
        + b"".join(
            f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 10)}]\n".encode()
            for i in range(8)
        ),
        True,
    ),
    "merge_key_non_mapping": (b"version: 1\nname: x\nsteps:\n  <<: 5\n", True),
    "anchor_cycle_free": (
        GOOD_YAML.replace("roles:\n  reviewer:", "roles:\n  reviewer: &r").encode(),
        False,
    ),
    "huge_line": (b"version: 1\nname: " + b"n" * 2_000_000 + b"\nsteps: {}\n", True),
    "many_keys": (
        b"version: 1\nname: x\nsteps: {}\n" + b"".join(b"k%d: 1\n" % i for i in range(500)),
        True,
    ),
    "deep_flow_400": (b"version: 1\nname: x\nsteps: " + b"[" * 400 + b"]" * 400 + b"\n", True),
    "deep_block_300": (
        b"version: 1\nname: x\nsteps:\n"
        + b"".join(b"  " * (i + 1) + b"k:\n" for i in range(300))
        + b"  " * 301
        + b"v\n",
        True,
    ),
    "version_2": (GOOD_YAML.replace("version: 1", "version: 2").encode(), True),
    "version_string": (GOOD_YAML.replace("version: 1", "version: '1'").encode(), True),
    "version_huge": (GOOD_YAML.replace("version: 1", "version: " + "9" * 400).encode(), True),
    "duplicate_node_ids": (GOOD_YAML.replace("id: summary", "id: review").encode(), True),
    "negative_max_children": (
        GOOD_YAML.replace("max_children: 50", "max_children: -1").encode(),
        True,
    ),
    "zero_max_children": (GOOD_YAML.replace("max_children: 50", "max_children: 0").encode(), True),
    "huge_max_children": (
        GOOD_YAML.replace("max_children: 50", "max_children: " + "9" * 30).encode(),
        False,
    ),
    "expr_syntax_error": (
        GOOD_YAML.replace('| list | length"', '| list | length )("').encode(),
        True,
    ),
    "prompt_syntax_error": (
        GOOD_YAML.replace("Review {{ file }}", "Review {{ file ").encode(),
        True,
    ),
    "prompt_unknown_filter": (
        GOOD_YAML.replace("Review {{ file }}", "Review {{ file | nope }}").encode(),
        True,
    ),
    "expect_not_expression": (
        GOOD_YAML.replace("outputs.review | length == 2", "{{ }}").encode(),
        True,
    ),
    "output_schema_invalid": (
        GOOD_YAML.replace("{type: boolean}", "{type: banana}").encode(),
        True,
    ),
    "output_schema_bad_ref": (
        GOOD_YAML.replace("{type: boolean}", "{$ref: 'http://127.0.0.1:1/x'}").encode(),
        False,
    ),
    "output_schema_recursive_ref": (
        GOOD_YAML.replace("{type: boolean}", "{$ref: '#/properties/ok'}").encode(),
        False,
    ),
    "output_pattern_invalid_regex": (
        GOOD_YAML.replace("{type: boolean}", "{type: string, pattern: '(['}").encode(),
        True,
    ),
    "undeclared_role": (GOOD_YAML.replace("role: reviewer", "role: nobody").encode(), True),
    "three_problems": (
        GOOD_YAML.replace("max_children: 50\n", "")
        .replace("id: summary", "id: review")
        .replace("role: reviewer", "role: nobody")
        .encode(),
        True,
    ),
    "errors_bad_status": (
        GOOD_YAML.replace("role: reviewer\n", "role: reviewer\n        errors: [0]\n").encode(),
        True,
    ),
    "teacher_review_without_inputs": (
        GOOD_YAML.replace(
            "    - kind: reduce\n",
            "    - kind: teacher_review\n      id: teach\n      role: reviewer\n"
            "    - kind: reduce\n",
        ).encode(),
        False,
    ),
    "unicode_name": (
        GOOD_YAML.replace("name: review-files", "name: \u00f6k-\u2603-\U0001f600").encode(),
        False,
    ),
    "rtl_override_name": (
        GOOD_YAML.replace("name: review-files", 'name: "a\u202eb"').encode(),
        False,
    ),
    "nul_in_id": (GOOD_YAML.replace("id: review_one", 'id: "review\\0one"').encode(), True),
    "slash_in_id": (GOOD_YAML.replace("id: review_one", "id: a/b").encode(), True),
    "empty_id": (GOOD_YAML.replace("id: review_one", "id: ''").encode(), True),
    "long_id": (GOOD_YAML.replace("id: review_one", "id: " + "i" * 100_000).encode(), False),
}


def _write(tmp_path: Path, name: str, data: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


@pytest.mark.parametrize("variant", _yaml_variants(), ids=lambda v: v.id)
def test_validate_yaml(
    variant: Variant, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(tmp_path, "workflow.yaml", variant.data)
    outcome = run_inprocess(["validate", path], capsys)
    assert_clean(outcome, allowed=BAD if variant.bad else None)


@pytest.mark.parametrize("variant", _json_variants(), ids=lambda v: v.id)
def test_validate_json(
    variant: Variant, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(tmp_path, "workflow.json", variant.data)
    outcome = run_inprocess(["validate", path], capsys)
    assert_clean(outcome, allowed=BAD if variant.bad else None)


@pytest.mark.parametrize("case", sorted(YAML_HAND))
@pytest.mark.parametrize("command", ["validate"])
def test_hand_written_yaml(
    command: str, case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data, bad = YAML_HAND[case]
    path = _write(tmp_path, "workflow.yaml", data)
    outcome = run_inprocess([*command.split(), path], capsys)
    assert_clean(outcome, allowed=BAD if bad else None)


def _runnable_variants() -> list[Variant]:
    document = yaml.safe_load(GOOD_YAML)
    return list(structural("good", document, to_yaml, count=6, required=REQUIRED))


@pytest.mark.parametrize("variant", _runnable_variants(), ids=lambda v: v.id)
def test_run_mutated(variant: Variant, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, "workflow.yaml", variant.data)
    outcome = run_inprocess(
        ["run", path, "--mock", "--plain", "--state", str(tmp_path / "s")], capsys
    )
    assert_clean(outcome, allowed=BAD if variant.bad else None)


@pytest.mark.parametrize("variant", list(damaged("good", GOOD_YAML.encode())), ids=lambda v: v.id)
@pytest.mark.parametrize("command", ["graph"])
def test_compile_and_graph_damaged(
    command: str, variant: Variant, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(tmp_path, "workflow.yaml", variant.data)
    output = [] if command.startswith("validate") else ["-o", str(tmp_path / "out")]
    outcome = run_inprocess([*command.split(), path, *output], capsys)
    assert_clean(outcome, allowed=BAD if variant.bad else None)
    if command.startswith("validate") and outcome.code in (0, 2):
        json.loads(outcome.out)


@pytest.mark.parametrize(
    "name",
    ["workflow", "workflow.txt", "workflow.yml", "workflow.YAML", "workflow.jsonl", "w.star.bak"],
)
def test_unusual_extensions(name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, name, GOOD_YAML.encode())
    assert_clean(run_inprocess(["validate", path], capsys))


@pytest.mark.parametrize("command", ["validate", "compile", "run", "ci"])
@pytest.mark.parametrize(
    "what", ["directory_empty", "directory_named_yaml", "dangling_symlink", "symlink_loop"]
)
def test_odd_paths(
    command: str, what: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "w.yaml"
    if what == "directory_empty":
        target = tmp_path / "empty"
        target.mkdir()
    elif what == "directory_named_yaml":
        target.mkdir()
    elif what == "dangling_symlink":
        target.symlink_to(tmp_path / "missing.yaml")
    else:
        target.symlink_to(target)
    extra = ["--state", str(tmp_path / "s")] if command in ("run", "ci") else []
    outcome = run_inprocess([command, str(target), *extra], capsys)
    assert_clean(
        outcome,
        allowed=(0, 2) if what == "directory_empty" and command in ("validate", "ci") else BAD,
    )


@pytest.mark.parametrize(
    "target", ["missing_folder", "a_folder"], ids=lambda target: f"-o {target}"
)
@pytest.mark.parametrize("command", ["compile", "graph"])
def test_output_cannot_be_written(
    command: str, target: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(tmp_path, "good.yaml", GOOD_YAML.encode())
    output = {
        "missing_folder": str(tmp_path / "no" / "such" / "out.json"),
        "a_folder": str(tmp_path),
    }[target]
    # Missing folders are made; a folder where the file should go is an error.
    allowed = BAD if target == "a_folder" else None
    assert_clean(run_inprocess([command, path, "-o", output], capsys), allowed=allowed)
