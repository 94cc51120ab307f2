"""A Starlark file's builtins hand nodes on as handles while nothing looks into them, and a
file that looks into a node it built gets the same document, and the same errors, as with
dicts."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from runner.compiler import starlark_loader
from runner.compiler.pipeline import check_file

HEAD = 'ROLES = {"r": {}}\n'
TAIL = 'workflow(name = "w", roles = ROLES, steps = sequence(id = "main", steps = STEPS))\n'


def evaluate(tmp_path: Path, body: str) -> tuple[dict[str, object], Counter[str]]:
    """The file's document and the evaluations it took."""
    path = tmp_path / "w.star"
    path.write_text(HEAD + body + TAIL, encoding="utf-8")
    before = starlark_loader.EVALUATIONS.copy()
    document = starlark_loader.load_starlark(str(path))
    assert document is not None
    return document.data, starlark_loader.EVALUATIONS - before


def leaf(id: str, **fields: object) -> dict[str, object]:
    return {"kind": "leaf", "id": id, "role": "r", "prompt": "p", **fields}


def test_nodes_nobody_looks_into_take_one_evaluation(tmp_path: Path) -> None:
    body = (
        'def step(i):\n    return leaf(id = "s%d" % i, role = "r", prompt = "p", output = OUT)\n'
        'OUT = {"type": "object", "properties": {"n": {"type": "integer"}}}\n'
        "STEPS = [step(i) for i in range(3)]\n"
        'STEPS.append(cond(id = "c", if_ = "true", then = step(3), else_ = step(4)))\n'
    )
    data, used = evaluate(tmp_path, body)
    out = {"type": "object", "properties": {"n": {"type": "integer"}}}
    steps = [leaf(f"s{i}", output=out) for i in range(3)]
    steps.append(
        {
            "kind": "cond",
            "id": "c",
            "if": "true",
            "then": leaf("s3", output=out),
            "else": leaf("s4", output=out),
        }
    )
    assert data["steps"] == {"kind": "sequence", "id": "main", "steps": steps}
    assert used == {"document": 1}


# Each builds the same two steps, a and b, by looking into a node.
LOOKS = {
    "reads": 'A = leaf(id = "a", role = "r", prompt = "p")\n'
    'STEPS = [A, leaf(id = A["id"] + "b", role = "r", prompt = "p", timeout_s = 5)]\n',
    "changes": 'A = leaf(id = "a", role = "r", prompt = "p")\n'
    'B = leaf(id = "ab", role = "r", prompt = "p")\nB["timeout_s"] = 5\nSTEPS = [A, B]\n',
    "copies": 'A = leaf(id = "a", role = "r", prompt = "p")\n'
    'STEPS = [A, dict(A, id = "ab", timeout_s = 5)]\n',
    "iterates": 'A = leaf(id = "a", role = "r", prompt = "p")\n'
    'STEPS = [A, leaf(id = "a" + "b" * len([k for k in A if k == "id"]), role = "r",'
    ' prompt = "p", timeout_s = 5)]\n',
    "asks_its_type": 'A = leaf(id = "a", role = "r", prompt = "p")\n'
    'STEPS = [A, leaf(id = "ab" if type(A) == "dict" else "x", role = "r", prompt = "p",'
    " timeout_s = 5)]\n",
    "reads_a_child": 'S = sequence(id = "s", steps = [leaf(id = "a", role = "r", prompt = "p")])\n'
    'STEPS = [S["steps"][0], leaf(id = "ab", role = "r", prompt = "p", timeout_s = 5)]\n',
}


@pytest.mark.parametrize("body", LOOKS.values(), ids=LOOKS.keys())
def test_a_file_that_looks_into_a_node_gets_the_document_built_of_dicts(
    tmp_path: Path, body: str
) -> None:
    data, used = evaluate(tmp_path, body)
    steps = [leaf("a"), leaf("ab", timeout_s=5)]
    assert data["steps"] == {"kind": "sequence", "id": "main", "steps": steps}
    assert used == {"document": 1, "dicts": 1}


def test_a_node_made_text_reads_as_the_dict(tmp_path: Path) -> None:
    body = 'A = leaf(id = "a", role = "r", prompt = "p")\n' + (
        'STEPS = [A, leaf(id = "b", role = "r", prompt = "after %s" % A)]\n'
    )
    data, used = evaluate(tmp_path, body)
    steps = data["steps"]
    assert isinstance(steps, dict)
    prompt = steps["steps"][1]["prompt"]
    assert prompt.startswith("after {")
    assert '"id": "a"' in prompt
    assert used == {"document": 1, "dicts": 1}


def test_nodes_compare_as_they_do_as_dicts(tmp_path: Path) -> None:
    body = (
        'A = leaf(id = "a", role = "r", prompt = "p")\n'
        'TWIN = leaf(id = "a", role = "r", prompt = "p")\n'
        'STEPS = [A] + ([leaf(id = "ab", role = "r", prompt = "p", timeout_s = 5)]'
        " if A == A and A in [A] and A != TWIN and TWIN not in [A] else [])\n"
    )
    data, used = evaluate(tmp_path, body)
    steps = [leaf("a"), leaf("ab", timeout_s=5)]
    assert data["steps"] == {"kind": "sequence", "id": "main", "steps": steps}
    assert used == {"document": 1}


def test_a_library_that_asks_a_type_is_evaluated_with_dicts(tmp_path: Path) -> None:
    (tmp_path / "lib.star").write_text(
        'def listed(x):\n    return x if type(x) == "list" else [x]\n', encoding="utf-8"
    )
    body = 'load("lib.star", "listed")\nSTEPS = listed(leaf(id = "a", role = "r", prompt = "p"))\n'
    data, used = evaluate(tmp_path, body)
    assert data["steps"] == {"kind": "sequence", "id": "main", "steps": [leaf("a")]}
    assert used == {"document": 1, "dicts": 1}


@pytest.mark.parametrize(
    ("body", "message", "col"),
    [
        (
            'A = leaf(id = "a", role = "r", prompt = "p")\nSTEPS = [A["nope"]]\n',
            'Key `"nope"` was not found',
            10,
        ),
        (
            'A = leaf(id = "a", role = "r", prompt = "p")\nSTEPS = [A.nope]\n',
            "Object of type `dict` has no attribute `nope`",
            10,
        ),
        ('STEPS = [leaf("a")]\n', "leaf() takes keyword arguments only", 10),
    ],
    ids=["missing_key", "missing_attribute", "positional"],
)
def test_errors_are_those_of_the_file_built_of_dicts(
    tmp_path: Path, body: str, message: str, col: int
) -> None:
    path = tmp_path / "w.star"
    path.write_text(HEAD + body + TAIL, encoding="utf-8")
    (diagnostic,) = check_file(str(path)).diagnostics
    assert message in diagnostic.message
    assert "opaque" not in json.dumps(diagnostic.to_json())
    assert (diagnostic.line, diagnostic.col) == (body.count("\n") + 1, col)
