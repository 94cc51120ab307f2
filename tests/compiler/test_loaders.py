"""Loading sources: YAML positions and types, Starlark builtins, load() confinement."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import GOOD_STAR, GOOD_YAML

from runner.compiler import starlark_loader
from runner.compiler.pipeline import check_file, load_source
from runner.compiler.yaml_loader import load_yaml
from runner.errors import CompileError


def test_yaml_positions_follow_json_pointers() -> None:
    document = load_yaml("w.yaml", GOOD_YAML)
    assert document.locate("/name") == ("w.yaml", 2, 7)
    assert document.locate("/steps/steps/0/body/prompt") == ("w.yaml", 22, 17)
    # A pointer the source lacks falls back to its nearest ancestor.
    assert document.locate("/steps/steps/0/body/nothing") == ("w.yaml", 19, 9)


def test_yaml_keeps_on_off_and_dates_as_strings() -> None:
    document = load_yaml("w.yaml", "a: on\nb: off\nc: yes\nd: 2024-01-02\ne: true\n")
    assert document.data == {"a": "on", "b": "off", "c": "yes", "d": "2024-01-02", "e": True}


def test_yaml_merge_keys_and_anchors() -> None:
    text = "base: &b {role: r, prompt: hi}\nleaf:\n  <<: *b\n  id: x\n"
    assert load_yaml("w.yaml", text).data["leaf"] == {"role": "r", "prompt": "hi", "id": "x"}


@pytest.mark.parametrize(
    ("text", "phrase", "line"),
    [
        ("a: 1\na: 2\n", "given twice", 2),
        ("1: x\n", "is not a string", 1),
        ("a: .nan\n", "not a JSON number", 1),
        ("a: [1, 2\n", "invalid YAML", 2),
        ("", "empty", 1),
        ("a: 1\n---\nb: 2\n", "invalid YAML", 2),
    ],
)
def test_yaml_problems(text: str, phrase: str, line: int) -> None:
    with pytest.raises(CompileError) as caught:
        load_yaml("w.yaml", text)
    (diagnostic,) = caught.value.diagnostics
    assert phrase in diagnostic.message
    assert diagnostic.line == line


def test_starlark_builds_the_same_document_as_yaml(write) -> None:  # type: ignore[no-untyped-def]
    star = load_source(write("w.star", GOOD_STAR))
    yaml_document = load_source(write("w.yaml", GOOD_YAML))
    assert star is not None
    assert yaml_document is not None
    assert star.data == yaml_document.data


def test_starlark_positions_are_builtin_call_sites(write) -> None:  # type: ignore[no-untyped-def]
    path = write("w.star", GOOD_STAR)
    document = load_source(path)
    assert document is not None
    assert document.locate("/steps/steps/0/body/prompt") == (path, 6, 10)
    assert document.locate("/steps/steps/1") == (path, 23, 13)
    assert document.locate("") == (path, 13, 1)


def test_starlark_load_is_relative_and_rooted(write, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    write(
        "flows/lib/a.star",
        'load("b.star", "name")\ndef make():\n    return leaf(id=name, role="r", prompt="p")\n',
    )
    write("flows/lib/b.star", 'name = "from_b"\n')
    write("flows/c.star", 'def other():\n    return leaf(id="c", role="r", prompt="p")\n')
    path = write(
        "flows/main.star",
        'load("lib/a.star", "make")\nload("//c.star", "other")\n'
        'workflow(name="w", roles={"r": {}}, steps=sequence(id="s", steps=[make(), other()]))\n',
    )
    checked = check_file(path)
    assert checked.diagnostics == ()
    assert checked.workflow is not None
    assert [step.id for step in checked.workflow.steps.steps] == ["from_b", "c"]  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("target", "phrase"),
    [
        ("../outside.star", "reaches outside the workflow's folder"),
        ("/etc/passwd.star", "absolute path"),
        ("data.json", "only load .star files"),
        ("missing.star", "no such file"),
    ],
)
def test_starlark_load_is_confined(write, target: str, phrase: str) -> None:  # type: ignore[no-untyped-def]
    write("outside.star", "x = 1\n")
    write("flows/data.json", "{}")
    path = write("flows/main.star", f'load("{target}", "x")\n')
    (diagnostic,) = check_file(path).diagnostics
    assert phrase in diagnostic.message
    assert (diagnostic.line, diagnostic.col) == (1, 1)


def test_starlark_load_cycle(write) -> None:  # type: ignore[no-untyped-def]
    write("a.star", 'load("b.star", "y")\nx = 1\n')
    write("b.star", 'load("a.star", "x")\ny = 1\n')
    (diagnostic,) = check_file(write("main.star", 'load("a.star", "x")\n')).diagnostics
    assert "load() cycle: a.star -> b.star -> a.star" in diagnostic.message


@pytest.mark.parametrize(
    ("source", "phrase"),
    [
        ('leaf("x")\n', "keyword arguments only"),
        ('leaf(kind="leaf", id="x")\n', "sets kind itself"),
        ("x = 1 +\n", "Parse error"),
        ('print("hi")\n', "not found"),
        ("x = undefined_name\n", "not found"),
    ],
)
def test_starlark_errors_keep_their_position(write, source: str, phrase: str) -> None:  # type: ignore[no-untyped-def]
    path = write("w.star", source)
    (diagnostic,) = check_file(path).diagnostics
    assert phrase in diagnostic.message
    assert diagnostic.file == path
    assert diagnostic.line == 1


def test_starlark_workflow_called_twice(write) -> None:  # type: ignore[no-untyped-def]
    one = 'leaf(id="a", role="r", prompt="p")'
    path = write("w.star", f'workflow(name="a", steps={one})\n\nworkflow(name="b", steps={one})\n')
    (diagnostic,) = check_file(path).diagnostics
    assert "more than once" in diagnostic.message
    assert (diagnostic.line, diagnostic.col) == (3, 1)


def test_starlark_drops_none_and_turns_tuples_into_lists(write) -> None:  # type: ignore[no-untyped-def]
    path = write(
        "w.star",
        'workflow(name="w", roles={"r": {}}, steps=command(id="c", run=("make", "x"), cwd=None),'
        ' permissions={"commands": ["make *"]})\n',
    )
    document = load_source(path)
    assert document is not None
    assert document.data["steps"] == {"kind": "command", "id": "c", "run": ["make", "x"]}


def test_starlark_evaluation_has_a_time_limit(write, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(starlark_loader, "EVAL_SECONDS", 0.2)
    path = write("w.star", "def spin():\n    for i in range(1000000000):\n        pass\nspin()\n")
    (diagnostic,) = check_file(path).diagnostics
    assert "longer than 0.2 s" in diagnostic.message


def test_unknown_suffix(write) -> None:  # type: ignore[no-untyped-def]
    (diagnostic,) = check_file(write("w.txt", "x")).diagnostics
    assert "not a workflow file" in diagnostic.message


@pytest.mark.parametrize(
    ("call", "word"),
    [
        ('expand(id="e", over="[1]", as="x", body=None)', "as"),
        ('cond(id="c", if="true", then=None)', "if"),
        ('cond(id="c", if_="true", else=None)', "else"),
    ],
)
def test_a_keyword_as_an_argument_names_its_spelling(write, call: str, word: str) -> None:  # type: ignore[no-untyped-def]
    path = write("w.star", f"x = {call}\n")
    (diagnostic,) = check_file(path).diagnostics
    assert diagnostic.message == (
        f"`{word}` is a Starlark keyword, so the field {word!r} is written `{word}_=`"
    )
    assert diagnostic.hint == (
        f"Write {word}_=... instead of {word}=... (the document field is still {word!r})."
    )
    assert (diagnostic.line, diagnostic.col) == (1, 5 + call.index(f"{word}="))


def test_a_misspelled_load_suggests_the_name_the_library_defines(write) -> None:  # type: ignore[no-untyped-def]
    write("lib.star", "def make_leaf(id):\n    return id\n\nOTHER = 1\n")
    path = write("w.star", 'load("lib.star", "OTHER", "make_leef")\n\nx = make_leaf("a")\n')
    (diagnostic,) = check_file(path).diagnostics
    assert diagnostic.message == (
        "lib.star has no symbol `make_leef` to load; "
        "did you mean `make_leaf`, which this file uses?"
    )
    assert diagnostic.hint == 'Load "make_leaf" from lib.star.'
    assert (diagnostic.line, diagnostic.col) == (1, 27)
    # A name the library does not define either: Starlark's suggestion stands.
    path = write("v.star", 'load("lib.star", "make_leef")\n\nx = make_lea("a")\n')
    (diagnostic,) = check_file(path).diagnostics
    assert diagnostic.message == "Variable `make_lea` not found, did you mean `make_leef`?"
