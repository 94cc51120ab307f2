"""How many model calls a run keeps in flight against real HTTP, and what that costs in time.

For each HTTP provider type (``openai``, ``anthropic``) this starts the loopback model server of
``bench/model_server.py`` in this process, answering every request after ``--latency-ms``, and
runs ``python -m runner run`` as a user does: a workflow that fans out ``--calls`` leaves with
``concurrency: {leaves: BOUND}``, a ``branchleaf.yaml`` mapping its role to the server, and the
state on. It prints, per provider: the most requests the server saw at once, the run's wall time,
the ideal (calls x latency / bound, what a run that always had BOUND calls in flight would take)
and their ratio.

    .venv/bin/python bench/providers.py                      # 2,000 calls, bound 200, 500 ms
    .venv/bin/python bench/providers.py --calls 10000 --bound 1000

It exits 0 when every ratio is within ``--limit`` (default 1.25) and the server saw the bound in
flight, 1 (with a ``FAIL:`` line) when not, 2 when a run fails.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from model_server import Counters, serve  # the bench folder is not a package

KINDS = ("openai", "anthropic")

WORKFLOW = """\
version: 1
name: wide
inputs:
  n: {{type: integer, default: {calls}}}
roles:
  reviewer: {{needs: [json_schema]}}
concurrency: {{leaves: {bound}}}
steps:
  kind: expand
  id: review
  over: "range(inputs.n) | list"
  as: item
  max_children: {calls}
  body:
    kind: leaf
    id: review_one
    role: reviewer
    prompt: "Review item {{{{ item }}}}."
    output: {{type: object, properties: {{ok: {{type: boolean}}}}, required: [ok]}}
"""

CONFIG = """\
providers:
  loopback:
    type: {kind}
    base_url: {url}
    api_key_env: BENCH_PROVIDER_KEY
    timeout_s: 600
    models:
      small: {{capabilities: [json_mode, json_schema]}}
roles:
  default: {{provider: loopback, model: small}}
"""


def measure(
    kind: str, *, calls: int, bound: int, latency_s: float, folder: Path
) -> dict[str, float]:
    """One run against a fresh server; its figures."""
    counters = Counters()
    server = serve(0, latency_s=latency_s, fail=None, every=1, log=None, counters=counters)
    try:
        port = server.server_address[1]
        url = f"http://127.0.0.1:{port}" + ("/v1" if kind == "openai" else "")
        here = folder / kind
        here.mkdir()
        (here / "wide.yaml").write_text(WORKFLOW.format(calls=calls, bound=bound))
        (here / "branchleaf.yaml").write_text(CONFIG.format(kind=kind, url=url))
        env = {**os.environ, "BENCH_PROVIDER_KEY": "bench-key"}
        argv = [sys.executable, "-m", "runner", "run", "wide.yaml", "--plain", "--state", "s"]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        server_before = time.process_time()
        started = time.perf_counter()
        done = subprocess.run(argv, cwd=here, env=env, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - started
        server_cpu = time.process_time() - server_before
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        run_cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    finally:
        server.shutdown()
        server.server_close()
    if done.returncode != 0:
        print(done.stdout[-3000:], done.stderr[-3000:], sep="\n", file=sys.stderr)
        raise SystemExit(f"the {kind} run failed with exit code {done.returncode}")
    ideal = calls * latency_s / bound
    return {
        "requests": counters.total,
        "in_flight": counters.most,
        "wall_s": wall,
        "ideal_s": ideal,
        "ratio": wall / ideal,
        "run_cpu_s": run_cpu,
        "server_cpu_s": server_cpu,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--bound", type=int, default=200)
    parser.add_argument("--latency-ms", type=float, default=500.0)
    parser.add_argument("--limit", type=float, default=1.25, help="largest acceptable ratio")
    parser.add_argument("--providers", nargs="+", choices=KINDS, default=list(KINDS))
    parser.add_argument("--json", action="store_true", help="print the figures as JSON too")
    args = parser.parse_args(argv)
    latency_s = args.latency_ms / 1000
    print(
        f"{args.calls} calls, concurrency.leaves {args.bound}, server latency "
        f"{args.latency_ms:g} ms: ideal {args.calls * latency_s / args.bound:.2f} s"
    )
    failed = False
    figures: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="branchleaf-bench-providers-") as folder:
        for kind in args.providers:
            got = measure(
                kind, calls=args.calls, bound=args.bound, latency_s=latency_s, folder=Path(folder)
            )
            figures[kind] = got
            print(
                f"{kind:>9}: {got['requests']:.0f} requests, at most {got['in_flight']:.0f} in "
                f"flight, {got['wall_s']:.2f} s ({got['ratio']:.2f}x the ideal); CPU: run "
                f"{got['run_cpu_s']:.2f} s, server {got['server_cpu_s']:.2f} s"
            )
            if got["ratio"] > args.limit or got["in_flight"] < args.bound:
                failed = True
                print(
                    f"FAIL: {kind}: {got['in_flight']:.0f} of {args.bound} in flight, "
                    f"{got['ratio']:.2f}x the ideal (limit {args.limit:g}x)"
                )
    if args.json:
        print(json.dumps(figures, indent=2))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
