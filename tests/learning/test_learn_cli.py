"""``branchleaf learn`` on the worked example (workflows/label_tickets.yaml), as a user runs it,
in a real git repository with uncommitted work: the good lesson is promoted to cached-main and
the bad one rejected with its reasons, `main`, the index and the working tree are untouched,
the next run applies the lesson, a repeated learn run is answered by the memo, and bad input
is one sentence and exit 2."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from conftest import git

from runner.main import main
from runner.overlay.branch import Overlay
from runner.store import runs
from runner.store.db import opened

ROOT = Path(__file__).resolve().parents[2]
REFUND = "I was charged twice and want my money back; the checkout page is broken."


@pytest.fixture(autouse=True)
def no_user_git_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(tmp_path / "no-global-gitconfig"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")


@pytest.fixture
def project(repo: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The repository with the worked example, a staged change and an uncommitted one."""
    (repo / "workflows" / "mocks").mkdir(parents=True)
    for name in ("label_tickets.yaml", "mocks/label_tickets.yaml"):
        shutil.copy(ROOT / "workflows" / name, repo / "workflows" / name)
    (repo / "README.md").write_text("hello\nstaged\n")
    git(repo, "add", "README.md")
    (repo / "README.md").write_text("hello\nstaged\nand not staged\n")
    (repo / "notes.txt").write_text("untracked\n")
    monkeypatch.chdir(repo)
    return repo


LEARN = (
    "learn",
    "workflows/label_tickets.yaml",
    "--mock-script",
    "workflows/mocks/label_tickets.yaml",
    "--state",
    "state",
)


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, " ".join(captured.err.split())


def _snapshot(repo: Path) -> dict[str, str]:
    """HEAD, the index's bytes and every working-tree file's bytes (the state left out)."""
    files = {
        str(path.relative_to(repo)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(repo.rglob("*"))
        if path.is_file() and ".git" not in path.parts and "state" not in path.parts
    }
    index = hashlib.sha256((repo / ".git" / "index").read_bytes()).hexdigest()
    return {"HEAD": git(repo, "rev-parse", "HEAD"), "index": index, **files}


def test_the_worked_example_promotes_the_good_lesson_and_the_next_run_applies_it(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = _snapshot(project)
    code, out, err = _run(capsys, *LEARN, "--promote")
    assert code == 0, out + err
    assert "24 cases split by seed 0: 7 reflection, 7 selection, 10 held-out" in out
    assert "  ticket-06: reflection" in out
    assert "  ticket-20: selection" in out
    assert "  ticket-01: held-out" in out
    assert "c1 = baseline + refunds-are-billing (prompt_patch for node:label)" in out
    assert (
        "c2 rejected: cases 'ticket-01' and 'ticket-19' pass on the baseline and fail with the "
        "lesson" in out
    )
    assert "promoted refunds-are-billing (from c1) to cached-main in commit " in out
    assert _snapshot(project) == before  # HEAD, the index and the working tree

    overlay = Overlay(project)
    assert [f.id for f in overlay.active()] == ["refunds-are-billing"]
    promoted = overlay.find("refunds-are-billing").document
    assert promoted["workflow"] == "label-tickets"
    assert promoted["validated_against"] == before["HEAD"].strip()
    figures = promoted["gate"]["figures"]
    assert (figures["improved"], figures["regressed"], figures["p_value"]) == (6, 0, 1 / 64)
    with opened(project / "state", create=False) as conn:
        evidence_run = promoted["lesson"]["evidence"][0]["run"]
        assert runs.find(conn, evidence_run).mode == "learn"  # the case's run, by its id
    message = git(project, "log", "-1", "--format=%B", "cached-main")
    assert "Gate-Improved: 6" in message
    assert "Gate-P-Value: 0.015625" in message

    record = json.loads((project / "state/reports/label-tickets.learn.json").read_text())
    assert record["split"]["held_out"][0] == "ticket-21"
    assert [c["name"] for c in record["candidates"]] == ["baseline", "c1", "c2"]
    assert record["rounds"][0]["frontier"]["weights"] == {"baseline": 7}
    assert record["frontier"]["kept"] == ["c1"]
    assert record["candidates"][2]["gate"]["promoted"] is False

    # The next run applies the promoted lesson, and passes.
    run = ("run", "workflows/label_tickets.yaml", "--plain", "--state", "state")
    scripted = (*run, "--mock-script", "workflows/mocks/label_tickets.yaml")
    args = (*scripted, "--input", f"ticket={REFUND}", "--input", "expected=billing")
    code, out, _ = _run(capsys, *args)
    assert code == 0, out
    assert "label-tickets: 1 lesson applied from cached-main" in out
    _, out, _ = _run(capsys, "report", "last", "--state", "state")
    assert "lessons applied: refunds-are-billing (cached-main at " in out
    with opened(project / "state", create=False) as conn:
        applied = runs.find(conn, "last")
    code, out, _ = _run(capsys, "replay", applied.id, "--plain", "--state", "state")
    assert code == 0
    with opened(project / "state", create=False) as conn:
        replay = runs.find(conn, "last")
    assert (replay.calls, replay.output) == (0, applied.output)

    # Demoted, it is no longer applied, and the refund is a bug again.
    assert _run(capsys, "overlay", "demote", "refunds-are-billing", "--reason", "try")[0] == 0
    code, out, _ = _run(capsys, *args)
    assert code == 1
    assert "applied" not in out
    assert _snapshot(project) == before


def test_learning_again_makes_no_provider_call(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = _run(capsys, *LEARN)
    assert code == 0, out
    assert "made 59 model calls" in out
    assert "the gate promotes refunds-are-billing: --promote commits them to cached-main" in out
    with opened(project / "state", create=False) as conn:
        first = len(runs.listed(conn, 1000))
    code, out, _ = _run(capsys, *LEARN)
    assert code == 0, out
    assert "made 0 model calls (0 tokens, $0), the memo answered 59" in out
    with opened(project / "state", create=False) as conn:
        everything = runs.listed(conn, 1000)  # newest first
    again = everything[: len(everything) - first]
    assert len(again) == first
    assert {r.mode for r in again} == {"learn"}
    assert sum(r.calls for r in again) == 0


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            ["--cases", "nope.yaml"],
            "error: nope.yaml: [syntax] the cases file does not exist",
        ),
        (
            ["--cases", "bad_cases.jsonl"],
            "case 'a' sets 'tikcet', which is not an input of the workflow",
        ),
        (
            ["--push"],
            "error: --push publishes what --promote commits: give --promote too",
        ),
    ],
)
def test_bad_input_is_one_sentence_and_exit_2(
    project: Path, capsys: pytest.CaptureFixture[str], change: list[str], expected: str
) -> None:
    (project / "bad_cases.jsonl").write_text(
        '{"name": "a", "inputs": {"tikcet": "x", "expected": "bug"}}\n'
        '{"name": "b", "inputs": {"ticket": "y", "expected": "bug"}}\n'
        '{"name": "c", "inputs": {"ticket": "z", "expected": "bug"}}\n'
    )
    code, out, err = _run(capsys, *LEARN, *change)
    assert code == 2, out + err
    assert expected in err
    assert "Traceback" not in out + err


def test_a_workflow_without_cases(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = (project / "workflows/label_tickets.yaml").read_text()
    (project / "workflows/label_tickets.yaml").write_text(text.split("\ncases:\n")[0] + "\n")
    code, _, err = _run(capsys, *LEARN)
    assert code == 2
    assert err == (
        "error: the workflow 'label-tickets' declares no cases: add cases: to it, or give a "
        "cases file with --cases FILE (docs/learning.md)"
    )


def test_a_teacher_reply_that_is_not_json(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mock = project / "workflows/mocks/label_tickets.yaml"
    text = mock.read_text()
    mock.write_text(text.split("\nroles:\n")[0] + "\nroles:\n  teacher:\n    reply: not json\n")
    code, out, err = _run(capsys, *LEARN, "--promote")
    assert code == 2, out + err
    assert err.startswith("error: the teacher's reply (run ")
    assert "is not a lessons reply: " in err
    assert err.endswith("nothing was promoted")
    assert "Traceback" not in out + err
    assert Overlay(project).tip() is None


def test_promote_outside_a_repository_or_to_a_branch_not_ours(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    code, _, err = _run(capsys, *LEARN, "--promote", "--repo", str(outside))
    assert code == 2
    assert "is not in a git repository" in err
    with opened(project / "state") as conn:
        assert runs.listed(conn, 10) == []  # said before anything was run

    git(project, "branch", "cached-main")  # a branch of the project's own, not an overlay
    code, _, err = _run(capsys, *LEARN, "--promote")
    assert code == 2
    assert err.startswith("error: ")
    assert "cached-main" in err


def test_a_lesson_whose_evidence_cites_no_run_shown_is_rejected(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mock = project / "workflows/mocks/label_tickets.yaml"
    mock.write_text(
        mock.read_text().replace("{run: ticket-06, node: label}", "{run: ticket-99, node: label}"),
        encoding="utf-8",
    )
    code, out, err = _run(capsys, *LEARN)
    assert code == 0, out + err
    assert (
        "lesson refunds-are-billing is rejected: its evidence cites no run the teacher was shown "
        "(runs named: ticket-99); cite a reflection case: ticket-02, ticket-05, ticket-06, "
        "ticket-10, ticket-16, ticket-22, ticket-23" in " ".join(out.split())
    )
    assert "the gate promotes no lesson" in out
