"""The command line as users run it: exit codes, messages, files written."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import GOOD_STAR, GOOD_YAML

from runner.canonical import content_hash
from runner.main import main

BROKEN = """\
version: 1
name: broken
roles: {r: {}}
steps:
  kind: expand
  id: fan
  over: "[1, 2]"
  as: item
  body: {kind: leaf, id: one, role: r, prompt: "{{ item }}"}
"""


def test_validate_good_file(write, capsys) -> None:  # type: ignore[no-untyped-def]
    path = write("good.yaml", GOOD_YAML)
    assert main(["validate", path]) == 0
    out = capsys.readouterr().out
    assert "review-files" in out
    assert "1 file valid" in out


def test_validate_broken_file_names_line_and_column(write, capsys) -> None:  # type: ignore[no-untyped-def]
    path = write("broken.yaml", BROKEN)
    assert main(["validate", path]) == 2
    out = capsys.readouterr().out
    assert f"{path}:5:3: [schema] missing required field 'max_children' in expand 'fan'" in out
    assert "fix: Add max_children" in out
    assert "Traceback" not in out


def test_validate_json_format(write, capsys) -> None:  # type: ignore[no-untyped-def]
    good = write("good.yaml", GOOD_YAML)
    bad = write("broken.yaml", BROKEN)
    assert main(["validate", "--format", "json", good, bad]) == 2
    report = json.loads(capsys.readouterr().out)
    assert report["valid"] is False
    assert report["errors"] == 1
    by_path = {entry["path"]: entry for entry in report["files"]}
    assert by_path[good]["valid"] is True
    assert by_path[good]["name"] == "review-files"
    (diagnostic,) = by_path[bad]["diagnostics"]
    assert (diagnostic["line"], diagnostic["col"], diagnostic["pointer"]) == (5, 3, "/steps")
    assert diagnostic["rule"] == "schema"


def test_validate_folder_accepts_libraries_and_skips_other_yaml(write, tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    write("flows/good.yaml", GOOD_YAML)
    write("flows/lib/helpers.star", "def helper():\n    return 1\n")
    write("flows/mock-script.yaml", "nodes:\n  review_one*: {reply: {ok: true}}\n")
    write("flows/.hidden/broken.yaml", BROKEN)
    assert main(["validate", str(tmp_path / "flows")]) == 0
    out = capsys.readouterr().out
    assert "Starlark library" in out
    assert "2 files valid" in out


@pytest.mark.parametrize("command", ["validate", "run", "ci"])
@pytest.mark.parametrize("name", ["nope.yaml", "nope.star", "nope.txt", "nope"])
def test_a_missing_path_is_named(
    command: str, name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = str(tmp_path / name)
    state = [] if command == "validate" else ["--state", str(tmp_path / "state")]
    assert main([command, missing, *state]) == 2
    captured = capsys.readouterr()
    assert captured.err.strip() == f"error: no such file or folder: {missing}"
    assert "not a workflow file" not in captured.out + captured.err
    assert not (tmp_path / "state").exists()


def test_validate_folder_without_workflows_is_a_usage_error(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["validate", str(tmp_path)]) == 2
    assert "no workflow files" in capsys.readouterr().err


def test_validate_with_a_broken_config(write, capsys) -> None:  # type: ignore[no-untyped-def]
    path = write("good.yaml", GOOD_YAML)
    config = write("branchleaf.yaml", "providers:\n  local: {type: nonsense}\n")
    assert main(["validate", "--config", config, path]) == 2
    err = capsys.readouterr().err
    assert "branchleaf.yaml:2:" in err
    assert "openai" in err


def test_validate_checks_role_needs_against_the_config(write, capsys) -> None:  # type: ignore[no-untyped-def]
    path = write("good.yaml", GOOD_YAML)
    config = write(
        "branchleaf.yaml",
        """\
        providers:
          local:
            type: openai
            base_url: http://127.0.0.1:8911/v1
            api_key_env: LOCAL_LLM_KEY
            models:
              small: {capabilities: [tools]}
        roles:
          reviewer: {provider: local, model: small}
        """,
    )
    assert main(["validate", "--config", config, path]) == 2
    out = capsys.readouterr().out
    assert "role 'reviewer' needs json_mode, which provider 'local', model 'small'" in out


def test_compile_prints_the_canonical_document(write, capsys) -> None:  # type: ignore[no-untyped-def]
    path = write("good.yaml", GOOD_YAML)
    assert main(["compile", path]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["name"] == "review-files"
    assert document["steps"]["steps"][0]["as"] == "file"


def test_compile_starlark_gives_the_same_document_as_yaml(write, capsys) -> None:  # type: ignore[no-untyped-def]
    yaml_path = write("good.yaml", GOOD_YAML)
    star_path = write("good.star", GOOD_STAR)
    assert main(["compile", "--compact", yaml_path]) == 0
    from_yaml = capsys.readouterr().out
    assert main(["compile", "--compact", star_path]) == 0
    from_star = capsys.readouterr().out
    assert from_yaml == from_star
    assert content_hash(json.loads(from_star)) == content_hash(json.loads(from_yaml))


def test_compile_invalid_prints_every_problem(write, capsys) -> None:  # type: ignore[no-untyped-def]
    path = write("broken.yaml", BROKEN.replace("as: item", "as: item\n  bogus: 1"))
    assert main(["compile", path]) == 2
    err = capsys.readouterr().err
    assert "max_children" in err
    assert "unknown field 'bogus'" in err


def test_compile_library_file_says_it_has_no_workflow(write, capsys) -> None:  # type: ignore[no-untyped-def]
    path = write("lib.star", "def helper():\n    return 1\n")
    assert main(["compile", path]) == 2
    assert "never calls workflow(...)" in capsys.readouterr().err


def test_graph_writes_mermaid_to_a_file(write, tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    path = write("good.yaml", GOOD_YAML)
    target = tmp_path / "out" / "graph.mmd"
    assert main(["graph", path, "-o", str(target)]) == 0
    text = target.read_text(encoding="utf-8")
    assert text.startswith("flowchart TD")
    assert "review_one" in text
    assert f"wrote {target}" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [[], ["frobnicate"], ["validate"], ["compile"]])
def test_usage_errors_exit_2(argv, capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(argv) == 2
    assert "usage:" in capsys.readouterr().err


def test_python_dash_m_runner_runs_as_a_program(write) -> None:  # type: ignore[no-untyped-def]
    path = write("broken.yaml", BROKEN)
    done = subprocess.run(
        [sys.executable, "-m", "runner", "validate", path],
        capture_output=True,
        text=True,
        check=False,
        cwd=Path(path).parent,
    )
    assert done.returncode == 2
    assert "missing required field 'max_children'" in done.stdout
    assert "Traceback" not in done.stdout + done.stderr


@pytest.mark.parametrize(
    ("limit", "said"),
    [
        ("0", "0 is not between 1 and 1,000,000"),
        ("-1", "-1 is not between 1 and 1,000,000"),
        ("99999999999999999999", "is not between 1 and 1,000,000"),
        ("many", "'many' is not a whole number"),
    ],
)
def test_runs_limit_is_a_positive_count(
    limit: str, said: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["runs", "--limit", limit, "--state", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert said in err
    assert "internal error" not in err


def test_an_empty_run_reference_is_a_usage_error(
    write, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:  # type: ignore[no-untyped-def]
    path = write("good.yaml", GOOD_YAML)
    state = str(tmp_path / "state")
    assert main(["run", path, "--plain", "--state", state]) == 0
    capsys.readouterr()
    assert main(["inspect", "", "--state", state]) == 2
    assert "a run reference cannot be empty" in capsys.readouterr().err
