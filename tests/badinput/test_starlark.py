"""Starlark workflow files: every keyword argument of an example given a hostile value, damaged
bytes, and hand-written programs that misuse the builtins."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import GOOD_STAR

from badinput.cli import BAD, assert_clean, run_inprocess
from badinput.mutate import Variant, damaged

WORKFLOWS = Path(__file__).resolve().parents[2] / "workflows"

# A Starlark expression -> whether the document is certainly invalid wherever it is put.
HOSTILE = {
    "None": False,
    "-1": False,
    '"x"': False,
    "[]": False,
    "{}": False,
    "True": False,
    "0.5": False,
    'float("nan")': True,
    'float("inf")': True,
    '-float("inf")': True,
    "1" + "0" * 40: False,
    '"y" * 100000': False,
    '"\\x00\\x07"': False,
    "{1: {}}": True,
    "[[[[[[[[[[[]]]]]]]]]]]": False,
    "len": True,
    "lambda: 1": True,
}

_KWARG = re.compile(r"(?m)^(\s+)([a-z_]+) = (\"[^\"\n]*\"|[0-9.]+|True|False|None)(,?)$")


def _kwarg_variants(name: str, text: str) -> list[Variant]:
    """Each simple ``key = value`` argument of the file, in turn, given the next hostile value."""
    values = list(HOSTILE)
    variants = []
    for index, match in enumerate(_KWARG.finditer(text)):
        for offset in range(1):
            value = values[(index + offset) % len(values)]
            start, end = match.span(3)
            variants.append(
                Variant(
                    id=f"{name}:{match.group(2)}@{match.start()}={value[:20]}",
                    data=(text[:start] + value + text[end:]).encode(),
                    bad=HOSTILE[value],
                )
            )
    return variants


def _variants() -> list[Variant]:
    text = (WORKFLOWS / "release_notes.star").read_text(encoding="utf-8")
    variants = _kwarg_variants("release_notes", text)
    # A file that never calls workflow() is a library, which validate accepts.
    library = ("good.star:empty", "good.star:whitespace", "good.star:only_comment")
    for variant in damaged("good.star", GOOD_STAR.encode()):
        bad = variant.bad and variant.id not in library
        variants.append(Variant(id=variant.id, data=variant.data, bad=bad))
    return variants


def _good(**replace: str) -> bytes:
    text = GOOD_STAR
    for old, new in replace.items():
        assert old in text, old
        text = text.replace(old, new)
    return text.encode()


TEACHER = 'teacher_review(id="teach", role="reviewer")'
HAND = {
    "syntax_error": (b"workflow(\n", True),
    "indentation_error": (b"def f():\nreturn 1\n", True),
    "no_workflow_call": (b"x = 1\n", False),
    "workflow_twice": (GOOD_STAR.encode() * 2, True),
    "fail_call": (b'fail("the author says no")\n', True),
    "undefined_name": (b"workflow(name = nope)\n", True),
    "type_error": (b'x = 1 + "a"\n', True),
    "int_overflow": (
        b"x = 9223372036854775807 * 9223372036854775807 * 4\n" + GOOD_STAR.encode(),
        False,
    ),
    "division_by_zero": (b"x = 1 // 0\n", True),
    "index_error": (b"x = [][5]\n", True),
    "key_error": (b'x = {}["k"]\n', True),
    "recursion": (b"def f(n):\n    return f(n)\nf(1)\n", True),
    "mutate_frozen": (b"X = [1]\ndef f():\n    X.append(2)\nf()\n" + GOOD_STAR.encode(), False),
    "load_missing": (b'load("nope.star", "x")\n', True),
    "load_self": (b'load("workflow.star", "x")\n', True),
    "load_absolute": (b'load("/etc/passwd", "x")\n', True),
    "load_outside": (b'load("../../../../../../etc/hostname", "x")\n', True),
    "load_missing_symbol": (b'load("lib.star", "nothing")\n', True),
    "load_non_utf8_library": (b'load("latin1.star", "x")\n', True),
    "print_only": (b'print("hello")\n', True),
    "roles_int_key": (_good(**{'roles={"reviewer"': 'roles={1: {}, "reviewer"'}), True),
    "budget_nan": (_good(**{'"tokens": 100000': '"tokens": float("nan")'}), True),
    "budget_inf": (_good(**{'"cost_usd": 1.0': '"cost_usd": float("inf")'}), True),
    "default_nan": (_good(**{'"default": ["a.py", "b.py"]': '"default": [float("nan")]'}), True),
    "default_function": (_good(**{'"default": ["a.py", "b.py"]': '"default": len'}), True),
    "name_int": (_good(**{'name="review-files"': "name=5"}), True),
    "name_list": (_good(**{'name="review-files"': "name=[]"}), True),
    "max_children_str": (_good(**{"max_children=50": 'max_children="50"'}), True),
    "leaf_unknown_kwarg": (_good(**{'role="reviewer",': 'role="reviewer", bogus=1,'}), True),
    "leaf_positional": (_good(**{'id="review_one",': '"review_one",'}), True),
    "leaf_id_int": (_good(**{'id="review_one"': "id=1"}), True),
    "steps_not_node": (_good(**{"steps=sequence(": "steps=dict(x=sequence("}) + b")", True),
    "steps_string": (b'workflow(name = "x", steps = "leaf")\n', True),
    "steps_none": (b'workflow(name = "x", steps = None)\n', True),
    "workflow_no_args": (b"workflow()\n", True),
    "lone_surrogate_escape": (_good(**{'name="review-files"': 'name="\\ud800"'}), True),
    "nul_in_string": (_good(**{'name="review-files"': 'name="a\\x00b"'}), False),
    "long_string_arg": (_good(**{'name="review-files"': 'name="n" * 1000000'}), False),
    "deep_list_200": (b"x = " + b"[" * 200 + b"]" * 200 + b"\n" + GOOD_STAR.encode(), False),
    "teacher_review_no_inputs": (
        _good(**{"            reduce(\n": f"            {TEACHER},\n            reduce(\n"}),
        False,
    ),
}


def _write(tmp_path: Path, data: bytes) -> str:
    (tmp_path / "lib.star").write_text("x = 1\n", encoding="utf-8")
    (tmp_path / "latin1.star").write_bytes(b"# caf\xe9\nx = 1\n")
    path = tmp_path / "workflow.star"
    path.write_bytes(data)
    return str(path)


@pytest.mark.parametrize("variant", _variants(), ids=lambda v: v.id)
def test_validate_starlark_variant(
    variant: Variant, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outcome = run_inprocess(["validate", _write(tmp_path, variant.data)], capsys)
    assert_clean(outcome, allowed=BAD if variant.bad else None)


RUN_TOO = [
    "roles_int_key",
    "budget_nan",
    "default_nan",
    "teacher_review_no_inputs",
    "int_overflow",
    "long_string_arg",
    "mutate_frozen",
    "load_non_utf8_library",
]
HOW = [("validate", case) for case in sorted(HAND)] + [("run", case) for case in RUN_TOO]


@pytest.mark.parametrize(("command", "case"), HOW, ids=[f"{cmd}-{case}" for cmd, case in HOW])
def test_hand_written_starlark(
    command: str, case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data, bad = HAND[case]
    extra = ["--mock", "--plain", "--state", str(tmp_path / "s")] if command == "run" else []
    outcome = run_inprocess([command, _write(tmp_path, data), *extra], capsys)
    assert_clean(outcome, allowed=BAD if bad else None)
