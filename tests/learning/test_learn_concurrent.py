"""Eight ``learn --promote`` processes at the same time, each promoting 50 lessons to the same
cached-main: the branch ends with exactly the 400 lesson files, none lost and none twice, one
promotion commit each (issue 14)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import git

from runner.overlay.branch import Overlay

PROCESSES = 8
ROUNDS = 5  # of 10 lessons each: a teacher reply holds at most 10
TEXT = "A ticket asking for a refund is billing, even when it says something is broken."

WORKFLOW = """\
version: 1
name: refunds
roles:
  labeler: {}
  teacher: {}
inputs:
  ticket: {type: string}
steps:
  kind: leaf
  id: label
  role: labeler
  prompt: "Label this ticket as billing or bug: {{ inputs.ticket }}"
tests:
  - name: billing
    expect: "outputs.label == 'billing'"
cases:
"""


def _lessons(writer: int, round_: int) -> list[dict[str, object]]:
    return [
        {
            "id": f"w{writer}-l{round_}{index}",
            "kind": "prompt_patch",
            "target": "node:label",
            "content": {"op": "append", "text": TEXT},
            "rationale": "Refund requests are labelled bugs.",
            "evidence": [{"run": "case-0", "node": "label"}],
        }
        for index in range(10)
    ]


def _mock(writer: int) -> dict[str, object]:
    """A labeler that labels refunds billing only when told; a teacher whose reply in each
    round is ten new lessons, told apart by the ids the brief says are taken."""
    rounds = [
        {
            "when": {"prompt_contains": f"w{writer}-l{r - 1}9"},
            "reply": {"lessons": _lessons(writer, r)},
        }
        for r in range(ROUNDS - 1, 0, -1)
    ]
    return {
        "nodes": {
            "label": {
                "cases": [
                    {"when": {"prompt_contains": "even when it says"}, "reply": "billing"},
                    {"reply": "bug"},
                ]
            }
        },
        "roles": {"teacher": {"cases": [*rounds, {"reply": {"lessons": _lessons(writer, 0)}}]}},
    }


def test_eight_learn_processes_promote_400_lessons_none_lost_none_twice(
    repo: Path, tmp_path: Path
) -> None:
    cases = "".join(
        f'  - {{name: case-{i}, inputs: {{ticket: "money back, the page is broken ({i})"}}}}\n'
        for i in range(7)
    )
    (repo / "wf.yaml").write_text(WORKFLOW + cases, encoding="utf-8")
    env = {
        **os.environ,
        "GIT_CONFIG_GLOBAL": str(tmp_path / "no-global-gitconfig"),
        "GIT_CONFIG_NOSYSTEM": "1",
    }
    head = git(repo, "rev-parse", "HEAD")
    processes = []
    for writer in range(PROCESSES):
        mock = tmp_path / f"mock{writer}.json"
        mock.write_text(json.dumps(_mock(writer)), encoding="utf-8")
        processes.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "runner",
                    "learn",
                    "wf.yaml",
                    "--mock-script",
                    str(mock),
                    "--rounds",
                    str(ROUNDS),
                    "--split",
                    "0.15",
                    "0.1",
                    "0.75",  # 1 reflection, 1 selection, 5 held-out
                    "--promote",
                    "--state",
                    str(tmp_path / f"state{writer}"),
                ],
                cwd=repo,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        )
    outputs = [process.communicate(timeout=600)[0] for process in processes]
    for process, output in zip(processes, outputs, strict=True):
        assert process.returncode == 0, output
        assert output.count("promoted w") == ROUNDS * 10, output

    files = Overlay(repo).lessons()
    ids = [f.id for f in files]
    expected = {f"w{w}-l{r}{i}" for w in range(PROCESSES) for r in range(ROUNDS) for i in range(10)}
    assert len(ids) == len(set(ids)) == 400
    assert set(ids) == expected
    assert {f.status for f in files} == {"active"}
    subjects = git(repo, "log", "--format=%s", "cached-main").splitlines()
    promotions = [s for s in subjects if s.startswith("Promote lesson ")]
    assert len(promotions) == len(set(promotions)) == 400
    assert git(repo, "rev-parse", "HEAD") == head
