"""Every example workflow runs with the mock provider, through the command line, as the
README of workflows/ says to run it.

dependency_upgrade.yaml is left out: its first command asks the package index which
dependencies are outdated, which needs the network.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

EXAMPLES = {
    "rlm_cache_change.star": [
        "--mock-script",
        "workflows/mocks/rlm_cache_change.yaml",
        "--input",
        # Four words, as the workflow's default command has (its argv has one item per word).
        'test_command=["python","-m","pytest","tests/test_globs.py"]',
    ],
    "pr_triage.yaml": [
        "--input",
        "base_ref=HEAD~3",
        "--mock-script",
        "workflows/mocks/pr_triage.yaml",
    ],
    "docs_sync.star": [
        "--input",
        "base_ref=HEAD~3",
        "--mock-script",
        "workflows/mocks/docs_sync.yaml",
    ],
    "release_notes.star": [
        "--input",
        "since=HEAD~5",
        "--mock-script",
        "workflows/mocks/release_notes.yaml",
    ],
    "test_failure_triage.yaml": ["--input", "pytest_args=tests/test_globs.py"],
}


def _history_is_deep_enough() -> bool:
    done = subprocess.run(
        ["git", "rev-parse", "--verify", "--quiet", "HEAD~5"],
        cwd=ROOT,
        capture_output=True,
        check=False,
    )
    return done.returncode == 0


@pytest.mark.skipif(
    not _history_is_deep_enough(), reason="a shallow clone lacks the commits these examples read"
)
@pytest.mark.parametrize("example", sorted(EXAMPLES))
def test_example_runs_with_the_mock_and_passes_its_tests(example: str, tmp_path: Path) -> None:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "runner",
            "run",
            f"workflows/{example}",
            *EXAMPLES[example],
            "--plain",
            "--report-dir",
            str(tmp_path),
            "--state",
            str(tmp_path / "state"),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    summaries = list(tmp_path.glob("*.summary.json"))
    assert len(summaries) == 1
    summary = json.loads(summaries[0].read_text(encoding="utf-8"))
    assert summary["status"] == "succeeded"
    assert all(test["passed"] for test in summary["tests"])
