"""Startup cost of ``branchleaf validate`` on one workflow file, against a bare interpreter.

Runs ``python -m runner validate FILE`` as a fresh process ``--runs`` times for a YAML and a
Starlark workflow written to a temporary folder, and ``python -c pass`` as the floor, in turns so
that all three see the same machine load. Prints the median and the minimum wall time of each and
the ratio to the floor, then the ten imports with the largest cumulative time in one validate run
(``python -X importtime``). Exits 1 when the median of the YAML validate exceeds ``--limit``
seconds (0.3 by default), 2 when a measured command fails.

    .venv/bin/python bench/startup.py [--runs 15] [--limit 0.3]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
"""The checkout root: ``python -m runner`` runs from here."""

YAML_WORKFLOW = """\
version: 1
name: startup-bench
description: Review each changed file, merge the reviews, then answer the author.
inputs:
  files: {type: array, default: [a.py, b.py], description: Files to review.}
roles:
  reviewer: {description: Reviews one file.}
  editor: {description: Merges the reviews.}
budget: {tokens: 100000, leaves: 12}
steps:
  kind: sequence
  id: main
  steps:
    - kind: expand
      id: reviews
      over: inputs.files
      as: file
      max_children: 8
      body:
        kind: leaf
        id: review
        role: reviewer
        prompt: "Review {{ file }}. Answer with JSON only."
        output:
          type: object
          properties:
            ok: {type: boolean}
            issues: {type: array, items: {type: string}, maxItems: 10}
          required: [ok, issues]
    - kind: reduce
      id: merged
      inputs: [reviews]
      role: editor
      prompt: |
        {% for review in outputs.reviews %}- ok={{ review.ok }}: {{ review.issues | join('; ') }}
        {% endfor %}
        Merge these reviews into one decision.
      output:
        type: object
        properties:
          approve: {type: boolean}
        required: [approve]
    - kind: cond
      id: respond
      if: "outputs.merged.approve"
      then: {kind: leaf, id: thanks, role: editor, prompt: Thank the author.}
      else: {kind: leaf, id: changes, role: editor, prompt: Ask for changes.}
tests:
  - name: every file reviewed
    expect: "outputs.reviews | length == inputs.files | length"
"""

STARLARK_WORKFLOW = """\
OUTPUT = {
    "type": "object",
    "properties": {
        "ok": {"type": "boolean"},
        "issues": {"type": "array", "items": {"type": "string"}, "maxItems": 10},
    },
    "required": ["ok", "issues"],
}

def review(id):
    return leaf(
        id = id,
        role = "reviewer",
        prompt = "Review {{ file }}. Answer with JSON only.",
        output = OUTPUT,
    )

workflow(
    name = "startup-bench",
    description = "Review each changed file, merge the reviews, then answer the author.",
    inputs = {"files": {"type": "array", "default": ["a.py", "b.py"]}},
    roles = {
        "reviewer": {"description": "Reviews one file."},
        "editor": {"description": "Merges the reviews."},
    },
    budget = {"tokens": 100000, "leaves": 12},
    steps = sequence(
        id = "main",
        steps = [
            expand(id = "reviews", over = "inputs.files", as_ = "file", max_children = 8,
                   body = review("review")),
            reduce(
                id = "merged",
                inputs = ["reviews"],
                role = "editor",
                prompt = "{% for r in outputs.reviews %}- {{ r.ok }}\\n{% endfor %}Merge them.",
                output = {"type": "object", "properties": {"approve": {"type": "boolean"}},
                          "required": ["approve"]},
            ),
            cond(
                id = "respond",
                if_ = "outputs.merged.approve",
                then = leaf(id = "thanks", role = "editor", prompt = "Thank the author."),
                else_ = leaf(id = "changes", role = "editor", prompt = "Ask for changes."),
            ),
        ],
    ),
    tests = [{"name": "every file reviewed",
              "expect": "outputs.reviews | length == inputs.files | length"}],
)
"""


@dataclass(frozen=True, slots=True)
class Timing:
    """Wall times of one command, in seconds."""

    label: str
    samples: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def best(self) -> float:
        return min(self.samples)


def _run(argv: list[str]) -> float:
    """Run one command to completion and return its wall time; exit 2 if it fails."""
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        print(f"error: {' '.join(argv)} exited {done.returncode}", file=sys.stderr)
        print(done.stdout + done.stderr, file=sys.stderr)
        sys.exit(2)
    return elapsed


def measure(commands: dict[str, list[str]], runs: int) -> list[Timing]:
    """Time every command ``runs`` times, in turns, after one untimed warm-up run each."""
    for argv in commands.values():
        _run(argv)
    samples: dict[str, list[float]] = {label: [] for label in commands}
    for _ in range(runs):
        for label, argv in commands.items():
            samples[label].append(_run(argv))
    return [Timing(label, times) for label, times in samples.items()]


@dataclass(frozen=True, slots=True)
class Import:
    """One line of ``python -X importtime``, in seconds."""

    name: str
    own: float
    cumulative: float
    depth: int
    """0 for an import made by the program itself, 1 for one made by such an import, ..."""


def imports_of(argv: list[str]) -> list[Import]:
    """Every module one run of ``argv`` (``python ...``) imports, as ``-X importtime`` has it."""
    done = subprocess.run(
        [argv[0], "-X", "importtime", *argv[1:]],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        print(f"error: {' '.join(argv)} exited {done.returncode}", file=sys.stderr)
        sys.exit(2)
    found: list[Import] = []
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        own, cumulative, name = line.removeprefix("import time:").split("|", 2)
        depth = (len(name) - len(name.lstrip()) - 1) // 2
        found.append(Import(name.strip(), int(own) / 1e6, int(cumulative) / 1e6, depth))
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=15, help="timed runs per command (15)")
    parser.add_argument(
        "--limit", type=float, default=0.3, help="largest median for the YAML validate (0.3 s)"
    )
    parser.add_argument("--top", type=int, default=10, help="imports to list (10)")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")

    python = sys.executable
    with tempfile.TemporaryDirectory(prefix="branchleaf-bench-") as tmp:
        yaml_file = Path(tmp, "bench.yaml")
        yaml_file.write_text(YAML_WORKFLOW, encoding="utf-8")
        star_file = Path(tmp, "bench.star")
        star_file.write_text(STARLARK_WORKFLOW, encoding="utf-8")
        validate_yaml = [python, "-m", "runner", "validate", str(yaml_file)]
        commands = {
            "python -c pass (floor)": [python, "-c", "pass"],
            "validate YAML": validate_yaml,
            "validate Starlark": [python, "-m", "runner", "validate", str(star_file)],
        }
        print(f"{python}, {args.runs} runs each", flush=True)
        timings = measure(commands, args.runs)
        imports = imports_of(validate_yaml)

    floor = timings[0].median
    width = max(len(timing.label) for timing in timings)
    for timing in timings:
        ratio = f"  {timing.median / floor:5.1f}x the floor" if timing is not timings[0] else ""
        print(
            f"{timing.label:<{width}}  median {timing.median:.3f} s  min {timing.best:.3f} s{ratio}"
        )

    total = sum(found.cumulative for found in imports if found.depth == 0)
    print(
        f"\nImports take {total:.3f} s of one validate YAML run (-X importtime, which adds its"
        f" own overhead); the {args.top} largest by cumulative time:"
    )
    for found in sorted(imports, key=lambda found: found.cumulative, reverse=True)[: args.top]:
        print(
            f"  {found.cumulative:6.3f} s cumulative  {found.own:6.3f} s self  "
            f"{'  ' * found.depth}{found.name}"
        )

    yaml_median = timings[1].median
    if yaml_median > args.limit:
        print(
            f"\nFAIL: validate YAML median {yaml_median:.3f} s exceeds the {args.limit:.3f} s "
            "target; the imports above show where the time goes."
        )
        return 1
    print(
        f"\nOK: validate YAML median {yaml_median:.3f} s is within the {args.limit:.3f} s target."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
