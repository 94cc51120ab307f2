"""The pre-commit hooks, installed and run the way a user runs them.

Each test runs the real ``pre-commit run`` in a throwaway git repository holding workflow files
and a ``.pre-commit-config.yaml`` that names this project's hooks. pre-commit clones the hook
repository and builds the hooks' environment (a virtualenv with branchleaf and its dependencies
installed from the package index) once in the module's pre-commit home and reuses it for every
test, as it does on a developer's machine; the first test is slow, and the tests fail when the
index is unreachable.

The hook repository is a commit of this checkout's working tree (tracked and untracked files that
git does not ignore), made in a temporary folder, so that the hook definitions and code under test
are those of the working tree even before they are committed.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
"""The checkout root, which holds ``.pre-commit-hooks.yaml``."""
HOOK = "branchleaf-validate"
TIMEOUT_S = 900
"""Longest one ``pre-commit run`` may take, environment build included."""

pytestmark = pytest.mark.slow

GOOD = """\
version: 1
name: good
roles:
  writer: {description: Writes the greeting.}
steps:
  kind: sequence
  id: main
  steps:
    - kind: leaf
      id: hello
      role: writer
      prompt: Say hello.
"""

BROKEN = """\
version: 1
name: broken
roles:
  writer: {description: Writes the greeting.}
steps:
  kind: sequence
  id: main
  steps:
    - colour: blue
      kind: leaf
      id: hello
      role: writer
      prompt: Say hello.
"""
"""Line 9 holds a field no node has."""

LIBRARY = """\
def greeting(id):
    return leaf(id = id, role = "writer", prompt = "Say hello.")
"""
"""A Starlark library: it never calls workflow(...), the file below loads it."""

USES_LIBRARY = """\
load("greetings.star", "greeting")

workflow(
    name = "uses-library",
    roles = {"writer": {"description": "Writes the greeting."}},
    steps = sequence(id = "main", steps = [greeting("hello")]),
)
"""


def _environ(**extra: str) -> dict[str, str]:
    """The environment without git variables that would point git at another repository."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("GIT_")}
    env.update(extra)
    return env


def _git(cwd: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", *args],
        cwd=cwd,
        env=_environ(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, f"git {' '.join(args)} failed in {cwd}:\n{done.stderr}"
    return done.stdout


def _commit_all(repo: Path) -> None:
    """``git init`` ``repo`` and commit everything in it."""
    _git(repo, "init", "--quiet")
    _git(repo, "config", "user.name", "Branchleaf Tests")
    _git(repo, "config", "user.email", "tests@branchleaf.invalid")
    _git(repo, "config", "commit.gpgsign", "false")
    _git(repo, "add", "--all")
    _git(repo, "commit", "--quiet", "--message", "snapshot")


@pytest.fixture(scope="module")
def pre_commit_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One pre-commit home for the module: the hooks' environment is built once, and nothing is
    written to the user's cache."""
    return tmp_path_factory.mktemp("pre-commit-home")


@pytest.fixture(scope="module")
def hook_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The checkout's working tree, committed in a temporary repository."""
    listed = _git(ROOT, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
    snapshot = tmp_path_factory.mktemp("hook-repo")
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():  # a tracked file deleted in the working tree is left out
            (snapshot / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, snapshot / name)
    assert (snapshot / ".pre-commit-hooks.yaml").is_file()
    _commit_all(snapshot)
    return snapshot


def _project(root: Path, files: dict[str, str]) -> Path:
    """A git repository holding ``files`` (path -> text), committed."""
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    _commit_all(root)
    return root


def _pre_commit(
    hook_repo: Path, home: Path, project: Path, *files: str, hook: str = HOOK
) -> subprocess.CompletedProcess[str]:
    """``pre-commit run HOOK --files FILES`` in ``project``, with a configuration naming the hook
    repository at its commit (written outside the project, so its files stay as they were)."""
    rev = _git(hook_repo, "rev-parse", "HEAD").strip()
    config = home / f"config-{hook}.yaml"
    config.write_text(
        f"repos:\n  - repo: {hook_repo}\n    rev: {rev}\n    hooks:\n      - id: {hook}\n",
        encoding="utf-8",
    )
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pre_commit",
            "run",
            hook,
            "--config",
            str(config),
            "--verbose",
            "--color",
            "never",
            "--files",
            *files,
        ],
        cwd=project,
        env=_environ(PRE_COMMIT_HOME=str(home)),
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )


def test_valid_workflow_passes(hook_repo: Path, pre_commit_home: Path, tmp_path: Path) -> None:
    project = _project(tmp_path, {"workflows/good.yaml": GOOD, "workflows/broken.yaml": BROKEN})

    done = _pre_commit(hook_repo, pre_commit_home, project, "workflows/good.yaml")

    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "branchleaf validate" in output
    assert "Passed" in output
    assert "broken.yaml" not in output


def test_invalid_workflow_fails_with_its_location(
    hook_repo: Path, pre_commit_home: Path, tmp_path: Path
) -> None:
    project = _project(tmp_path, {"workflows/good.yaml": GOOD, "workflows/broken.yaml": BROKEN})

    done = _pre_commit(
        hook_repo, pre_commit_home, project, "workflows/good.yaml", "workflows/broken.yaml"
    )

    output = done.stdout + done.stderr
    assert done.returncode != 0, output
    assert "Failed" in output
    assert re.search(r"workflows/broken\.yaml:9:\d+:", output), output
    assert "unknown field 'colour'" in output
    assert not re.search(r"workflows/good\.yaml:\d+", output), output


def test_starlark_library_passes(hook_repo: Path, pre_commit_home: Path, tmp_path: Path) -> None:
    """pre-commit names a changed library file like any other; it must not fail the commit."""
    project = _project(
        tmp_path,
        {"workflows/greetings.star": LIBRARY, "workflows/uses_library.star": USES_LIBRARY},
    )

    done = _pre_commit(
        hook_repo,
        pre_commit_home,
        project,
        "workflows/greetings.star",
        "workflows/uses_library.star",
    )

    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "Passed" in output


def test_dry_run_runs_workflows_on_the_mock(
    hook_repo: Path, pre_commit_home: Path, tmp_path: Path
) -> None:
    """branchleaf-dry-run runs the named workflows with every role on the mock provider."""
    failing = GOOD.replace("name: good", "name: failing") + (
        "tests:\n  - {name: never, expect: \"outputs.hello == 'no'\"}\n"
    )
    project = _project(
        tmp_path,
        {
            "workflows/good.yaml": GOOD,
            "workflows/failing.yaml": failing,
            "workflows/greetings.star": LIBRARY,
            "branchleaf.yaml": "roles: {default: {provider: nowhere}}\n",
        },
    )

    passed = _pre_commit(
        hook_repo,
        pre_commit_home,
        project,
        "workflows/good.yaml",
        "workflows/greetings.star",
        hook="branchleaf-dry-run",
    )
    failed = _pre_commit(
        hook_repo, pre_commit_home, project, "workflows/failing.yaml", hook="branchleaf-dry-run"
    )

    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert "good: succeeded" in passed.stdout
    assert failed.returncode != 0, failed.stdout + failed.stderr
    assert "failing: failed" in failed.stdout  # its nodes succeeded; its test did not
    assert "tests failed: 1 of 1" in failed.stdout
    assert "never" in failed.stdout


def test_dry_run_of_a_library_or_a_mock_script_alone_passes(
    hook_repo: Path, pre_commit_home: Path, tmp_path: Path
) -> None:
    """A commit that touches only a library runs the workflows that load it; one that touches
    only a mock script has nothing to run, which is no failure."""
    project = _project(
        tmp_path,
        {
            "workflows/greetings.star": LIBRARY,
            "workflows/uses_library.star": USES_LIBRARY,
            "workflows/mocks/greeting.yaml": 'nodes:\n  hello: {reply: "hi"}\n',
        },
    )

    library = _pre_commit(
        hook_repo, pre_commit_home, project, "workflows/greetings.star", hook="branchleaf-dry-run"
    )
    script = _pre_commit(
        hook_repo,
        pre_commit_home,
        project,
        "workflows/mocks/greeting.yaml",
        hook="branchleaf-dry-run",
    )

    assert library.returncode == 0, library.stdout + library.stderr
    assert "running the workflows that load it: workflows/uses_library.star" in library.stdout
    assert "uses-library: succeeded" in library.stdout
    assert script.returncode == 0, script.stdout + script.stderr
    assert "nothing to run" in script.stdout
