"""Documents that JSON or YAML allow but a workflow cannot hold, and the wording of their
errors: one clear sentence each, never an exception."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runner.compiler.pipeline import check_file
from runner.errors import ConfigError
from runner.main import main
from runner.providers.script import load_script

LEAF = '{"kind": "leaf", "id": "a", "role": "r", "prompt": "hi"}'


def messages(path: Path) -> list[str]:
    checked = check_file(str(path))
    assert checked.workflow is None
    return [d.message for d in checked.diagnostics]


def test_json_infinity_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "w.json"
    path.write_text(
        '{"version": 1, "name": "w", "roles": {"r": {}}, "steps": '
        '{"kind": "leaf", "id": "a", "role": "r", "prompt": "hi", "timeout_s": 1e999}}',
        encoding="utf-8",
    )
    assert messages(path) == ["1e999 is too large for a JSON number"]


def test_json_lone_surrogate_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "w.json"
    path.write_text(
        f'{{"version": 1, "name": "w", "description": "a\\ud800", "steps": {LEAF}}}',
        encoding="utf-8",
    )
    (message,) = messages(path)
    assert 'the string "a\\ud800" holds a lone surrogate' in message


def test_json_integer_with_too_many_digits(tmp_path: Path) -> None:
    path = tmp_path / "w.json"
    path.write_text('{"version": ' + "9" * 5000 + "}", encoding="utf-8")
    assert messages(path) == ["a number has more than 4300 digits"]


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_deep_nesting_is_one_error(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"w{suffix}"
    path.write_text("[" * 100_000 + "]" * 100_000, encoding="utf-8")
    (message,) = messages(path)
    assert "nests lists and mappings more than 100 levels deep" in message


def test_deep_block_yaml_under_the_parser_limit_is_bounded_too(tmp_path: Path) -> None:
    path = tmp_path / "w.yaml"
    path.write_text("version: 1\nname: w\nsteps: " + "{a: " * 500 + "1" + "}" * 500 + "\n")
    (message,) = messages(path)
    assert "more than 100 levels deep" in message


def test_deep_mock_script_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text("nodes: " + "[" * 100_000 + "]" * 100_000, encoding="utf-8")
    with pytest.raises(ConfigError, match="more than 100 levels deep"):
        load_script(str(path))


BLANK = ["", "  \n", "\t\n", "\r\n", "\x0c"]


@pytest.mark.parametrize(
    ("suffix", "text"),
    [(".json", text) for text in BLANK]
    + [(".yaml", text) for text in [*BLANK, "---\n...\n", "# only\n"]],
)
def test_a_blank_file_is_said_to_be_empty(tmp_path: Path, suffix: str, text: str) -> None:
    path = tmp_path / f"w{suffix}"
    path.write_text(text, encoding="utf-8")
    assert messages(path) == ["the file is empty"]


def test_the_alias_hint_only_when_there_are_aliases(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_text("tests:\n" + "".join(f"  - {i}\n" for i in range(100_001)), encoding="utf-8")
    (diagnostic,) = check_file(str(big)).diagnostics
    assert diagnostic.message == "the document has more than 100000 values"
    assert diagnostic.hint is not None
    assert "alias" not in diagnostic.hint

    bomb = tmp_path / "bomb.yaml"
    levels = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    levels += [
        f"{c}: &{c} [{', '.join(['*' + p] * 10)}]" for p, c in zip("abcde", "bcdef", strict=True)
    ]
    bomb.write_text("\n".join(levels) + "\n", encoding="utf-8")
    (diagnostic,) = check_file(str(bomb)).diagnostics
    assert diagnostic.message == "the document expands to more than 100000 values"
    assert diagnostic.hint is not None
    assert "aliases" in diagnostic.hint


def test_non_ascii_names_are_shown_as_they_are(tmp_path: Path) -> None:
    path = tmp_path / "w.yaml"
    path.write_text(
        f"version: 1\nname: ök\ninputs:\n  ök: {{type: string}}\nsteps: {LEAF}\n",
        encoding="utf-8",
    )
    found = messages(path)
    assert '"ök" is not valid for name at the top level' in found
    assert 'the name "ök" is not allowed in inputs' in found
    assert not any("\\u00f6" in message for message in found)


def test_non_ascii_in_json_output_of_validate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "w.yaml"
    path.write_text(f"version: 1\nname: ök\nsteps: {LEAF}\n", encoding="utf-8")
    assert main(["validate", "--format", "json", str(path)]) == 2
    out = capsys.readouterr().out
    assert "ök" in out
    assert "\\u00f6" not in out
    assert json.loads(out)["errors"] >= 1


def test_nested_field_errors_name_the_path_not_the_top_level(tmp_path: Path) -> None:
    script = tmp_path / "m.yaml"
    script.write_text("nodes:\n  a: {errors: [0]}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_script(str(script))
    message = str(caught.value)
    assert 'nodes.a.errors[0] must be one of 429, 500, 502, 503, "timeout", not 0' in message
    assert "top level" not in message

    script.write_text('nodes:\n  "ök*": {replyy: 1}\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"unknown field 'replyy' in nodes\[\"ök\*\"\]"):
        load_script(str(script))


def test_nested_workflow_fields_are_named_from_their_node(tmp_path: Path) -> None:
    path = tmp_path / "w.yaml"
    path.write_text(
        "version: 1\nname: w\nroles: {r: {}}\nbudget: {tokens: x}\nsteps:\n"
        "  {kind: leaf, id: a, role: r, prompt: hi, retry: {attempts: 0, backof_s: 1}}\n",
        encoding="utf-8",
    )
    found = messages(path)
    assert "budget.tokens must be an integer, not a string" in found
    assert "retry.attempts must be at least 1, not 0 in leaf 'a'" in found
    assert "unknown field 'backof_s' in retry of leaf 'a'" in found


def test_a_control_character_is_placed_and_named(tmp_path: Path) -> None:
    path = tmp_path / "w.yaml"
    path.write_text("version: 1\nname: d\x07e\n", encoding="utf-8")
    (diagnostic,) = check_file(str(path)).diagnostics
    assert (diagnostic.line, diagnostic.col) == (2, 8)
    assert diagnostic.message == (
        "the character U+0007 cannot be in a YAML file: control characters are not allowed"
    )
