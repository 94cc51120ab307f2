"""Startup cost of ``branchleaf --version`` and of ``branchleaf validate`` on one workflow file.

Runs ``python -m runner --version`` and ``python -m runner validate FILE`` (for a YAML and a
Starlark workflow written to a temporary folder) as fresh processes ``--runs`` times, with
``python -c pass`` as the floor, in turns so that all of them see the same machine load. Each
runs with bytecode, as a wheel install has it (pip compiles what it installs): the bytecode is
written once, by the warm-up run, to a cache folder of its own (``PYTHONPYCACHEPREFIX``), so
the checkout is left as it is, and the environment's ``PYTHONDONTWRITEBYTECODE`` does not make
every start compile the package from source. One more command, the YAML validate as this
environment starts it, shows what a start costs without that cache. Prints the median and the
minimum wall time of each and the ratio to the floor, then the imports with the largest
cumulative time of one validate run and of one ``--version`` (``python -X importtime``).
Exits 1 when the median of the YAML validate exceeds ``--limit`` seconds (0.25 by default) or
that of ``--version`` exceeds ``--version-limit`` (0.12), 2 when a measured command fails.

    .venv/bin/python bench/startup.py [--runs 15] [--limit 0.25] [--version-limit 0.12]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
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


@dataclass(frozen=True, slots=True)
class Command:
    """One measured command line and the environment it runs in."""

    argv: list[str]
    env: dict[str, str]


def _run(command: Command) -> float:
    """Run one command to completion and return its wall time; exit 2 if it fails."""
    argv = command.argv
    start = time.perf_counter()
    done = subprocess.run(
        argv, cwd=ROOT, env=command.env, capture_output=True, text=True, check=False
    )
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        print(f"error: {' '.join(argv)} exited {done.returncode}", file=sys.stderr)
        print(done.stdout + done.stderr, file=sys.stderr)
        sys.exit(2)
    return elapsed


def measure(commands: dict[str, Command], runs: int) -> list[Timing]:
    """Time every command ``runs`` times, in turns, after one untimed warm-up run each."""
    for command in commands.values():
        _run(command)
    samples: dict[str, list[float]] = {label: [] for label in commands}
    for _ in range(runs):
        for label, command in commands.items():
            samples[label].append(_run(command))
    return [Timing(label, times) for label, times in samples.items()]


@dataclass(frozen=True, slots=True)
class Import:
    """One line of ``python -X importtime``, in seconds."""

    name: str
    own: float
    cumulative: float
    depth: int
    """0 for an import made by the program itself, 1 for one made by such an import, ..."""


def imports_of(command: Command) -> list[Import]:
    """Every module one run of ``command`` (``python ...``) imports, as ``-X importtime`` has
    it."""
    argv = command.argv
    done = subprocess.run(
        [argv[0], "-X", "importtime", *argv[1:]],
        cwd=ROOT,
        env=command.env,
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


def _print_imports(title: str, imports: list[Import], top: int) -> None:
    total = sum(found.cumulative for found in imports if found.depth == 0)
    print(
        f"\nImports take {total:.3f} s of one {title} run (-X importtime, which adds its own"
        f" overhead); the {top} largest by cumulative time:"
    )
    for found in sorted(imports, key=lambda found: found.cumulative, reverse=True)[:top]:
        print(
            f"  {found.cumulative:6.3f} s cumulative  {found.own:6.3f} s self  "
            f"{'  ' * found.depth}{found.name}"
        )


def _as_is_label() -> str:
    """What the command run in this environment as it is measures: whether the checkout's
    modules start from bytecode or are compiled from source at every start."""
    cached = Path(importlib.util.cache_from_source(str(ROOT / "runner" / "main.py")))
    if cached.exists() and not os.environ.get("PYTHONPYCACHEPREFIX"):
        return "validate YAML, environment as is (bytecode)"
    if os.environ.get("PYTHONDONTWRITEBYTECODE"):
        return "validate YAML, environment as is (no bytecode)"
    return "validate YAML, environment as is"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=15, help="timed runs per command (15)")
    parser.add_argument(
        "--limit", type=float, default=0.25, help="largest median for the YAML validate (0.25 s)"
    )
    parser.add_argument(
        "--version-limit", type=float, default=0.12, help="largest median for --version (0.12 s)"
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
        as_is = dict(os.environ)
        # As a wheel install starts: with bytecode, here in a cache of its own.
        compiled = {**as_is, "PYTHONPYCACHEPREFIX": str(Path(tmp, "pycache"))}
        compiled.pop("PYTHONDONTWRITEBYTECODE", None)
        validate_yaml = [python, "-m", "runner", "validate", str(yaml_file)]
        version = Command([python, "-m", "runner", "--version"], compiled)
        commands = {
            "python -c pass (floor)": Command([python, "-c", "pass"], compiled),
            "--version": version,
            "validate YAML": Command(validate_yaml, compiled),
            "validate Starlark": Command(
                [python, "-m", "runner", "validate", str(star_file)], compiled
            ),
            _as_is_label(): Command(validate_yaml, as_is),
        }
        print(f"{python}, {args.runs} runs each, with bytecode unless said", flush=True)
        timings = measure(commands, args.runs)
        imports = imports_of(Command(validate_yaml, compiled))
        version_imports = imports_of(version)

    floor = timings[0].median
    width = max(len(timing.label) for timing in timings)
    for timing in timings:
        ratio = f"  {timing.median / floor:5.1f}x the floor" if timing is not timings[0] else ""
        print(
            f"{timing.label:<{width}}  median {timing.median:.3f} s  min {timing.best:.3f} s{ratio}"
        )
    _print_imports("validate YAML", imports, args.top)
    _print_imports("--version", version_imports, min(args.top, 5))

    failed = False
    for timing, limit in ((timings[2], args.limit), (timings[1], args.version_limit)):
        if timing.median > limit:
            failed = True
            print(
                f"\nFAIL: {timing.label} median {timing.median:.3f} s exceeds the {limit:.3f} s "
                "target; the imports above show where the time goes."
            )
        else:
            print(
                f"\nOK: {timing.label} median {timing.median:.3f} s is within the {limit:.3f} s "
                "target."
            )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
