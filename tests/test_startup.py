"""Start-up: each command imports what it uses, and the parser it builds is the full one's."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import GOOD_YAML

from runner.main import COMMANDS, _parser, main

ROOT = Path(__file__).resolve().parent.parent


def _imported(argv: list[str], tmp_path: Path) -> tuple[set[str], str]:
    """The modules a fresh process has imported once ``main(argv)`` returned, and its output."""
    code = textwrap.dedent(
        f"""
        import json, sys
        from runner.main import main
        code = main({argv!r})
        print(json.dumps([code, sorted(sys.modules)]))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    *output, last = done.stdout.splitlines()
    exit_code, modules = json.loads(last)
    assert exit_code == 0, done.stdout + done.stderr
    return set(modules), "\n".join(output)


def _packages(modules: set[str], names: set[str]) -> set[str]:
    """Those of ``names`` (packages or modules) that ``modules`` holds, or any module under."""
    return {name for name in names for module in modules if (module + ".").startswith(name + ".")}


def test_version_is_answered_before_anything_heavy_is_imported(tmp_path: Path) -> None:
    modules, output = _imported(["--version"], tmp_path)
    assert output.startswith("branchleaf ")
    heavy = {"rich", "jsonschema", "jinja2", "yaml", "sqlite3", "requests", "runner.errors"}
    assert _packages(modules, heavy) == set()


def test_validate_imports_neither_the_state_nor_the_engine_nor_http(tmp_path: Path) -> None:
    path = tmp_path / "good.yaml"
    path.write_text(GOOD_YAML, encoding="utf-8")
    modules, output = _imported(["validate", str(path)], tmp_path)
    assert "1 file valid" in output
    unused = {
        "sqlite3",
        "asyncio",
        "requests",
        "runner.store",
        "runner.executor.engine",
        "runner.providers.http",
        "runner.providers.script",  # only for a workflow whose ci block names a mock script
        "runner.reports",
        "rich.live",
        "rich.table",
    }
    assert _packages(modules, unused) == set()


ARGV = {
    "validate": ["validate", "a.yaml", "--format", "json", "--config", "c"],
    "run": ["run", "a.yaml", "--input", "x=1", "--mock", "--plain", "--state", "S"],
    "memo": ["memo", "explain", "RUN", "NODE", "--state", "S", "--debug"],
    "trace": ["trace", "export", "RUN", "-o", "t.jsonl"],
    "ci": ["ci", "flows", "--replay", "T", "--comment"],
}


@pytest.mark.parametrize("name", sorted(ARGV))
def test_the_parser_of_one_command_parses_as_the_full_one(name: str) -> None:
    argv = ARGV[name]
    assert vars(_parser(name).parse_args(argv)) == vars(_parser().parse_args(argv))
    assert vars(_parser(name).parse_args(["--debug", *argv])).get("debug") is True


def test_help_still_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in COMMANDS:
        assert f"    {name} " in out


def test_a_misspelled_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--debug", "valdate", "a.yaml"]) == 2
    assert "invalid choice: 'valdate'" in capsys.readouterr().err


def test_an_option_before_the_command_does_not_hide_it(
    write, capsys: pytest.CaptureFixture[str]
) -> None:  # type: ignore[no-untyped-def]
    path = write("good.yaml", GOOD_YAML)
    assert main(["--debug", "validate", path, "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["valid"] is True
