"""The run summary's cost per leaf: building it, encoding it and writing its file.

Runs a ``--leaves`` fan-out (10,000 by default) on the mock provider once, in this process,
for a real run result, then times in interleaved rounds (each figure is its best round, as
noise on a shared machine only ever adds time):

  - ``summary_json``: the summary built from the run result;
  - ``summary_bytes``: that summary encoded (orjson, two-space indent, sorted keys);
  - the whole write as ``branchleaf run`` makes it: built, encoded and written to a temporary
    file renamed into place;
  - for comparison, the standard library's ``json.dump(indent=2, sort_keys=True)`` through a
    temporary file's text wrapper, as the summary was written before orjson.

Prints microseconds per leaf for each and the ratio of the old write to the new one; checks
that both give the same JSON; exits 1 (``FAIL:``) when the whole write is over ``--limit``
microseconds per leaf (3 by default).

    .venv/bin/python bench/summary.py [--leaves 10000] [--rounds 5] [--limit 3]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from workloads import fan_out  # bench/, beside this script

from runner.commands.run import _write_summary, summary_bytes, summary_json
from runner.compiler.build import build_workflow
from runner.config import DEFAULT
from runner.executor.engine import Engine, run_sync
from runner.executor.results import RunResult
from runner.gcpolicy import bulk
from runner.providers.registry import build_providers
from runner.status import Status
from runner.store.recording import provider_map


def a_run(leaves: int) -> tuple[RunResult, dict[str, Any]]:
    """A finished run of :func:`fan_out` on the mock, and its provider map."""
    workflow = build_workflow(fan_out(leaves, name="bench-summary"))
    roles = [name for name, _ in workflow.roles or ()]
    providers = build_providers(DEFAULT, roles)
    engine = Engine(workflow, config=DEFAULT, providers=providers, workspace=Path.cwd())
    result = run_sync(engine.run({"n": leaves}))
    if result.status is not Status.SUCCEEDED:
        raise SystemExit(f"the run ended {result.status.value}: {result.reason}")
    return result, provider_map(workflow, DEFAULT, providers, None)


def old_write(summary: dict[str, Any], folder: Path) -> None:
    """The summary written as before orjson: ``json.dump`` through a text wrapper."""
    with tempfile.NamedTemporaryFile(
        "w", dir=folder, delete=False, suffix=".tmp", encoding="utf-8"
    ) as handle:
        json.dump(summary, handle, indent=2, sort_keys=True, default=str)
    os.replace(handle.name, folder / "old.summary.json")


def best(work: Callable[[], object], rounds: list[float]) -> None:
    """Time one call of ``work`` and add it to ``rounds``."""
    started = time.perf_counter()
    work()
    rounds.append(time.perf_counter() - started)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--leaves", type=int, default=10_000, help="leaves of the run (10,000)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (5)")
    parser.add_argument(
        "--limit", type=float, default=3.0, help="largest us per leaf for the whole write (3)"
    )
    args = parser.parse_args(argv)
    if args.leaves < 1 or args.rounds < 1:
        parser.error("--leaves and --rounds must be at least 1")

    with bulk():  # as the command runs it
        result, served = a_run(args.leaves)
        summary = summary_json(result, served)
        with tempfile.TemporaryDirectory(prefix="branchleaf-bench-") as tmp:
            folder = Path(tmp)
            old_write(summary, folder)
            written = _write_summary(result, folder, served)
            size = written.stat().st_size
            old = (folder / "old.summary.json").read_bytes()
            if json.loads(written.read_bytes()) != json.loads(old):
                print("FAIL: the summary orjson writes is not the JSON json.dump writes")
                return 1
            figures: dict[str, list[float]] = {
                "summary_json (build)": [],
                "summary_bytes (encode)": [],
                "whole write (build, encode, file)": [],
                "before: json.dump(indent=2) through a text file": [],
            }
            work: dict[str, Callable[[], object]] = {
                "summary_json (build)": lambda: summary_json(result, served),
                "summary_bytes (encode)": lambda: summary_bytes(summary),
                "whole write (build, encode, file)": lambda: _write_summary(result, folder, served),
                "before: json.dump(indent=2) through a text file": lambda: old_write(
                    summary, folder
                ),
            }
            for _ in range(args.rounds):
                for label, rounds in figures.items():
                    best(work[label], rounds)

    nodes = len(result.nodes)
    print(f"{args.leaves:,}-leaf run: {nodes:,} nodes, a summary of {size / 1e6:.1f} MB")
    width = max(map(len, figures))
    per_leaf = {label: min(rounds) / args.leaves * 1e6 for label, rounds in figures.items()}
    for label, us in per_leaf.items():
        spread = (max(figures[label]) - min(figures[label])) / min(figures[label]) * 100
        print(f"{label:<{width}}  {us:6.2f} us per leaf  (worst round +{spread:.0f}%)")
    whole = per_leaf["whole write (build, encode, file)"]
    before = per_leaf["before: json.dump(indent=2) through a text file"]
    print(f"\nthe old write alone takes {before / whole:.1f}x the whole new write")
    if whole > args.limit:
        print(f"FAIL: the summary costs {whole:.2f} us per leaf, over the {args.limit} us target")
        return 1
    print(f"OK: the summary costs {whole:.2f} us per leaf, within the {args.limit} us target")
    return 0


if __name__ == "__main__":
    sys.exit(main())
