"""YAML numbers as YAML 1.2 and JSON read them: an exponent without a dot is a number."""

from __future__ import annotations

from pathlib import Path

from runner.compiler.pipeline import compile_file
from runner.compiler.yaml_loader import load_yaml


def test_exponents_are_numbers() -> None:
    text = "a: 1e3\nb: -2.5E-2\nc: .5e1\nd: 1E+3\ne: '1e3'\nf: 1e\ng: e3\nh: 12\n"
    assert load_yaml("x.yaml", text).data == {
        "a": 1000.0,
        "b": -0.025,
        "c": 5.0,
        "d": 1000.0,
        "e": "1e3",
        "f": "1e",
        "g": "e3",
        "h": 12,
    }


def test_a_workflow_may_write_bounds_with_exponents(tmp_path: Path) -> None:
    path = tmp_path / "w.yaml"
    path.write_text(
        "version: 1\nname: w\nroles: {r: {}}\nbudget: {leaves: 1e3}\nsteps:\n"
        "  kind: expand\n  id: e\n  over: '[1, 2]'\n  as: item\n  max_children: 1e2\n"
        "  timeout_s: 1e3\n  body: {kind: leaf, id: a, role: r, prompt: hi}\n",
        encoding="utf-8",
    )
    workflow = compile_file(str(path))
    assert workflow.steps.kind == "expand"
    assert workflow.steps.timeout_s == 1000.0
    assert workflow.steps.max_children == 100
    assert isinstance(workflow.steps.max_children, int)
