"""The whole CLI with the state on, as users run it: ``python -m runner run`` / ``replay`` /
a second identical run answered by the memo, each a fresh process on the mock.

Measures, in one run of this script:
  - a 10,000-leaf ``expand`` + ``reduce``: the run in a fresh state, a second identical run
    (every call a memo hit) and the replay of the first run, in interleaved rounds (each
    figure is its best round, as noise on a shared machine only ever adds time);
  - a 100,000-leaf run and its replay: the peak resident memory of each process;
  - a 1,000-step ``sequence`` chain: microseconds per step in the run itself (its summary's
    duration) and from the CLI beyond start-up (a 1-step chain's time taken off), which
    includes validating the 1,000 steps.
Targets (issue 13): the replay and the memo-answered run take no longer than the run, the
100,000-leaf replay peaks under 350 MB, the chain runs under 100 us per step. Exits 1 over
target. ``--against DIR`` measures another checkout (``git worktree add DIR COMMIT``) in the
same interleaved rounds, for before/after ratios on one machine load.

    .venv/bin/python bench/cli.py [--leaves 10000] [--big 100000] [--chain 1000] [--repeat 3]
        [--against DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from workloads import chain, fan_out  # bench/, beside this script

TARGET_REPLAY_RATIO = 1.0
TARGET_MEMO_RATIO = 1.0
TARGET_REPLAY_MB = 350.0
TARGET_STEP_US = 100.0


def cli(args: list[str], cwd: Path) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds and peak resident MB of one ``python -m runner`` process (the
    CPU time moves less than the wall time on a loaded machine)."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "runner", *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    assert process.stdout is not None
    out = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        sys.stdout.write(out.decode(errors="replace"))
        raise SystemExit(f"`runner {' '.join(args)}` exited {process.returncode}")
    return elapsed, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def run_args(workflow: Path, state: Path) -> list[str]:
    """The arguments of a run of ``workflow`` recorded in ``state``."""
    return ["run", str(workflow), "--plain", "--state", str(state), "--report-dir", str(state)]


def replay_args(state: Path) -> list[str]:
    """The arguments of a replay of the last run in ``state``."""
    return ["replay", "last", "--plain", "--state", str(state), "--report-dir", str(state)]


NAMES = ("run", "memo", "replay", "short", "long")


@dataclass
class Figures:
    """What one checkout measured, per figure: wall and CPU seconds of each round."""

    checkout: Path
    wall: dict[str, list[float]] = field(default_factory=lambda: {n: [] for n in NAMES})
    cpu: dict[str, list[float]] = field(default_factory=lambda: {n: [] for n in NAMES})
    chain_run_s: list[float] = field(default_factory=list)
    """The long chain's own duration, from its summary (validation and start-up left out)."""
    big: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    """The big run's seconds and MB, then its replay's."""

    def best(self, name: str) -> float:
        """The best round of a figure."""
        return min(self.wall[name])

    def spread(self, name: str) -> str:
        """A figure's rounds and its best CPU time."""
        wall = self.wall[name]
        return f"(rounds {min(wall):.2f}-{max(wall):.2f} s, CPU {min(self.cpu[name]):.2f} s)"


def one_round(figures: Figures, root: Path, files: dict[str, Path]) -> None:
    """One round of the 10,000-leaf and chain figures, in fresh states under ``root``."""

    def measure(name: str, argv: list[str]) -> None:
        wall, used, _ = cli(argv, figures.checkout)
        figures.wall[name].append(wall)
        figures.cpu[name].append(used)

    state = Path(tempfile.mkdtemp(dir=root))
    measure("run", run_args(files["fan"], state))
    measure("memo", run_args(files["fan"], state))
    measure("replay", replay_args(state))
    state = Path(tempfile.mkdtemp(dir=root))
    measure("short", run_args(files["short"], state))
    measure("long", run_args(files["long"], state))
    summary = json.loads((state / "bench-cli-chain.summary.json").read_text(encoding="utf-8"))
    figures.chain_run_s.append(summary["duration_s"])


def report(figures: Figures, args: argparse.Namespace) -> bool:
    """Print one checkout's figures; whether they are within the targets."""
    run_s, memo_s, replay_s = (figures.best(k) for k in ("run", "memo", "replay"))
    step_us = (figures.best("long") - figures.best("short")) / max(args.chain - 1, 1) * 1e6
    run_step_us = min(figures.chain_run_s) / args.chain * 1e6
    big_run_s, big_run_mb, big_replay_s, big_replay_mb = figures.big
    print(f"{figures.checkout}:")
    print(f"  {args.leaves}-leaf fan-out, the state on:")
    print(f"    run in a fresh state        {run_s:6.2f} s {figures.spread('run')}")
    print(
        f"    second run, from the memo   {memo_s:6.2f} s {figures.spread('memo')}"
        f"  {memo_s / run_s:.2f}x the run"
    )
    print(
        f"    replay of the run           {replay_s:6.2f} s {figures.spread('replay')}"
        f"  {replay_s / run_s:.2f}x the run"
    )
    print(
        f"  {args.chain}-step chain: {run_step_us:.0f} us per step in the run itself;"
        f" {step_us:.0f} us per step from the CLI beyond start-up (validation included)"
    )
    print(
        f"  {args.big}-leaf run {big_run_s:.1f} s, peak {big_run_mb:.0f} MB;"
        f" its replay {big_replay_s:.1f} s, peak {big_replay_mb:.0f} MB"
    )
    return (
        replay_s <= run_s * TARGET_REPLAY_RATIO
        and memo_s <= run_s * TARGET_MEMO_RATIO
        and big_replay_mb <= TARGET_REPLAY_MB
        and run_step_us <= TARGET_STEP_US
    )


def main() -> int:
    """Run the benchmarks and print their figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leaves", type=int, default=10_000)
    parser.add_argument("--big", type=int, default=100_000, help="leaves of the memory run")
    parser.add_argument("--chain", type=int, default=1_000)
    parser.add_argument(
        "--repeat", type=int, default=3, help="rounds; each figure is its best round"
    )
    parser.add_argument(
        "--against",
        type=Path,
        help="another checkout (an older commit) measured in the same rounds, for a ratio",
    )
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-cli-"))
    files = {"fan": root / "fan.yaml", "long": root / "chain.yaml", "short": root / "one.yaml"}
    files["fan"].write_text(
        json.dumps(fan_out(args.leaves, name="bench-cli-fan-out")), encoding="utf-8"
    )
    files["long"].write_text(
        json.dumps(chain(args.chain, name="bench-cli-chain")), encoding="utf-8"
    )
    files["short"].write_text(json.dumps(chain(1, name="bench-cli-chain")), encoding="utf-8")
    checkouts = [Figures(Path.cwd())]
    if args.against is not None:
        checkouts.append(Figures(args.against.resolve()))
    try:
        # Interleaved rounds, best of each: the machine's noise only ever adds time.
        for _ in range(args.repeat):
            for figures in checkouts:
                one_round(figures, root, files)
        big = root / "big.yaml"
        big.write_text(json.dumps(fan_out(args.big, name="bench-cli-fan-out")), encoding="utf-8")
        for figures in checkouts:
            state = Path(tempfile.mkdtemp(dir=root))
            big_run_s, _, big_run_mb = cli(run_args(big, state), figures.checkout)
            big_replay_s, _, big_replay_mb = cli(replay_args(state), figures.checkout)
            figures.big = (big_run_s, big_run_mb, big_replay_s, big_replay_mb)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"python {sys.version.split()[0]}, best of {args.repeat} interleaved rounds")
    ok = report(checkouts[0], args)
    for figures in checkouts[1:]:
        report(figures, args)
    print(
        ("OK" if ok else "OVER TARGET")
        + f": targets a replay and a memo run no longer than the run, a {args.big}-leaf replay"
        f" under {TARGET_REPLAY_MB:g} MB, {TARGET_STEP_US:g} us per chain step in the run"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
