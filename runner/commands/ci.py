"""``branchleaf ci PATH... [--replay DIR] [--comment]``: validate, run (or replay), report.

One step for CI: every workflow file found under the paths is validated; then each workflow is
run with the configured providers (the mock when there is no configuration) and the inputs and
mock script of its ``ci`` block, or, with ``--replay DIR``, each exported trace in DIR is
imported and replayed against the workflow as it is now (with the inputs and mock script it was
recorded with). The runs' JUnit XML and markdown reports are written to the report directory; in
GitHub Actions the markdown is appended to the job summary, the report paths and the result are
written as step outputs, and ``--comment`` posts the markdown as one pull-request comment,
edited in place on later runs.
"""

from __future__ import annotations

import argparse
import os
import shlex
from dataclasses import dataclass, field, replace
from pathlib import Path

from rich.console import Console

from runner import exits, ir
from runner.ci_block import with_ci_settings
from runner.commands import replay as replay_command
from runner.commands.run import overlaid, report_dir, run_workflow
from runner.commands.validate import check_paths
from runner.config import MOCK, Config, load_config
from runner.errors import CompileError, UsageError
from runner.plural import plural
from runner.reports import junit, markdown
from runner.reports.model import RunReport, TestOutcome, load
from runner.secrets import Redactor, key_variables, looks_secret
from runner.status import Status
from runner.store import portable
from runner.store.db import opened, state_dir
from runner.store.recording import Recording
from runner.trace_match import Unmatched, match

JUNIT_FILE = "branchleaf.junit.xml"
MARKDOWN_FILE = "branchleaf.md"


@dataclass
class _Runs:
    """The runs made by this command, in order, and the worst exit code among them; a
    workflow repeated for its tests has its runs together, with its tests."""

    ids: list[str] = field(default_factory=list)
    worst: int = 0
    repeated: list[tuple[ir.Workflow, list[str]]] = field(default_factory=list)
    unmatched: list[Unmatched] = field(default_factory=list)

    def started(self, recording: Recording) -> None:
        self.ids.append(recording.run_id)


def run(args: argparse.Namespace, console: Console) -> int:
    """Validate, run or replay, and report; 0 when everything passed, 1 when a workflow failed,
    4 when nothing failed except a provider, 2 when a file is invalid or there is nothing to do,
    130 when interrupted."""
    config = load_config(args.config)
    checked = check_paths(args.paths, config)
    diagnostics = [d for result in checked for d in result.diagnostics]
    if diagnostics:
        raise CompileError(diagnostics)
    workflows = [result.workflow for result in checked if result.workflow is not None]
    if not workflows:
        raise UsageError(f"none of the files under {' '.join(args.paths)} is a workflow")
    console.print(f"{plural(len(workflows), 'workflow')} valid", markup=False)

    made = _Runs()
    options = argparse.Namespace(
        input=None,
        mock_script=None,
        report_dir=args.report_dir,
        plain=True,
        state=args.state,
        argv=getattr(args, "argv", None),
        run_id=None,
        no_overlay=args.no_overlay,
        overlay_branch=args.overlay_branch,
    )
    if args.replay:
        _replay_all(Path(args.replay), workflows, options, made, console)
    else:
        # Every workflow's settings are checked before the first one runs.
        planned = [(workflow, with_ci_settings(workflow, options)) for workflow in workflows]
        for given, live in planned:
            used = overlaid(given, live, console)
            workflow = used.workflow
            if live.input or live.mock_script:
                said = [f"--input {shlex.quote(pair)}" for pair in live.input]
                said += [f"--mock-script {shlex.quote(live.mock_script)}"] * bool(live.mock_script)
                console.print(f"{workflow.name}: from its ci block: {' '.join(said)}", markup=False)
            if live.mock_script:
                console.print(scripted_roles(workflow, config, live.mock_script), markup=False)
            repeats = max((test.repeat or 1 for test in workflow.tests or ()), default=1)
            first = len(made.ids)
            for repeat in range(repeats):
                if repeats > 1:
                    console.print(
                        f"{workflow.name}: repeat {repeat + 1} of {repeats} for its tests",
                        markup=False,
                    )
                code = run_workflow(
                    workflow,
                    config,
                    live,
                    console,
                    started=made.started,
                    repeat=repeat,
                    overlay=used.record,
                )
                if code == 130:
                    return 130
                made.worst = exits.worst((made.worst, code))
            if repeats > 1:
                made.repeated.append((workflow, made.ids[first:]))
    if made.worst == 130:
        return 130
    return _report(made, args, console, config)


def scripted_roles(workflow: ir.Workflow, config: Config, script: str) -> str:
    """Which roles of ``workflow`` the mock script plays and which are live, in one line:
    ``greet: roles mocked by mocks/greet.yaml: judge; live: writer on openai (gpt-4o)``."""
    mocked, live = [], []
    for role, _ in workflow.roles or ():
        provider, model = config.serve(role)
        if provider.type == MOCK:
            mocked.append(role)
        else:
            live.append(f"{role} on {provider.name}" + (f" ({model.name})" if model else ""))
    return (
        f"{workflow.name}: roles mocked by {script}: {', '.join(mocked) or 'none'}; "
        f"live: {', '.join(live) or 'none'}"
    )


def combine(workflow: ir.Workflow, reports: list[RunReport]) -> list[RunReport]:
    """The reports of a workflow's repeats as the reports show them: the first run's, its
    tests counted over their repeats against their pass rates and its usage summed over the
    repeats that succeeded; then, on its own, every repeat whose run did not succeed (a failed
    node fails the workflow whatever the rates)."""
    outcomes = []
    for test in workflow.tests or ():
        runs = test.repeat or 1
        rate = 1.0 if test.pass_rate is None else test.pass_rate
        considered = reports[:runs]
        failed = [
            (report, outcome)
            for report in considered
            if (outcome := _outcome_in(report, test.name)) is None or not outcome.passed
        ]
        passes = len(considered) - len(failed)
        message = None
        if failed:
            report, outcome = failed[0]
            why = outcome.message if outcome is not None else "it was not checked"
            message = f"first failure (run {report.run_id}): {why}"
        outcomes.append(
            TestOutcome(
                name=test.name,
                passed=passes >= rate * runs - 1e-9,
                message=message,
                runs=runs,
                passes=passes,
                threshold=rate,
            )
        )
    counted = [reports[0]]
    broken: list[RunReport] = []
    for report in reports[1:]:
        (counted if report.status == Status.SUCCEEDED else broken).append(report)
    first = replace(
        reports[0],
        tests=tuple(outcomes),
        repeats=tuple(report.run_id for report in counted[1:]),
        duration_s=sum(report.duration_s for report in counted),
        calls=sum(report.calls for report in counted),
        tokens=sum(report.tokens for report in counted),
        cost_usd=sum(report.cost_usd for report in counted),
        memo_hits=sum(report.memo_hits for report in counted),
        memo_misses=sum(report.memo_misses for report in counted),
        saved_tokens=sum(report.saved_tokens for report in counted),
        saved_usd=sum(report.saved_usd for report in counted),
    )
    return [first, *broken]


def _outcome_in(report: RunReport, name: str) -> TestOutcome | None:
    return next((outcome for outcome in report.tests if outcome.name == name), None)


def _replay_all(
    directory: Path,
    workflows: list[ir.Workflow],
    options: argparse.Namespace,
    made: _Runs,
    console: Console,
) -> None:
    """Import each trace in ``directory`` and replay it against the workflow file it was
    recorded from, found now with the same name; a trace that matches none is unmatched."""
    if not directory.is_dir():
        raise UsageError(f"--replay {directory}: no such directory of traces")
    traces = sorted(directory.glob("*.jsonl"))
    if not traces:
        raise UsageError(
            f"--replay {directory}: no traces (*.jsonl, written by `branchleaf trace export`)"
        )
    for path in traces:
        trace = portable.loads(portable.read_file(str(path)), str(path))
        with opened(state_dir(options.state)) as conn:
            imported = portable.store(conn, trace)
        source = trace.run["source"]
        current = match(
            trace=str(path),
            name=str(trace.run["workflow"]),
            source=source,
            workflows=workflows,
            here=os.getcwd(),
            exists=bool(source) and Path(source).is_file(),
        )
        if isinstance(current, Unmatched):
            console.print(f"error: {current.message}", markup=False)
            made.unmatched.append(current)
            made.worst = max(made.worst, 1)
            continue
        replay_args = argparse.Namespace(
            **vars(options),
            run=imported.run_id,
            workflow=current.source,
            allow_live=False,
            config=None,
        )
        code = replay_command.run(replay_args, console, started=made.started)
        if code == 130:
            made.worst = 130
            return
        made.worst = exits.worst((made.worst, code))


def _report(made: _Runs, args: argparse.Namespace, console: Console, config: Config) -> int:
    """Write the reports of the runs made, hand them to GitHub, and return the exit code."""
    with opened(state_dir(args.state), create=False) as conn:
        reports = {run_id: load(conn, run_id) for run_id in made.ids}
    for workflow, ids in made.repeated:
        combined = combine(workflow, [reports.pop(run_id) for run_id in ids])
        reports[ids[0]] = combined[0]
        reports.update((report.run_id, report) for report in combined[1:])
    shown = [reports[run_id] for run_id in made.ids if run_id in reports]
    directory = report_dir(args)
    junit_path = directory / JUNIT_FILE
    markdown_path = directory / MARKDOWN_FILE
    text = markdown.render(shown, made.unmatched)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        junit_path.write_text(junit.render(shown, made.unmatched), encoding="utf-8")
        markdown_path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write the reports to {directory}: {exc.strerror}") from exc
    console.print(f"reports written to {junit_path} and {markdown_path}", markup=False)
    # A repeated workflow's runs may fail tests its pass rates forgive: the reports decide.
    code = exits.worst(exits.of_run(report.status, report.passed) for report in shown)
    if made.unmatched:  # a trace whose workflow is gone is a failed check
        code = exits.worst((code, exits.FAILED))
    result = {exits.SUCCESS: "passed", exits.PROVIDER_FAILED: "provider_failed"}.get(code, "failed")
    _append(os.environ.get("GITHUB_STEP_SUMMARY"), text + "\n")
    _append(
        os.environ.get("GITHUB_OUTPUT"),
        f"junit={junit_path}\nmarkdown={markdown_path}\nresult={result}\n",
    )
    if args.comment:
        from runner.github import post_report  # PyGithub loads only when a comment is asked

        # The comment is public: no secret that reached a report goes with it.
        names = {name for name in os.environ if looks_secret(name)} | key_variables(config)
        posted = post_report(Redactor.from_environment(names).redact(text))
        if posted.warning:
            Console(stderr=True, highlight=False, soft_wrap=True).print(
                f"warning: {posted.warning}", markup=False
            )
        else:
            console.print(f"pull-request comment {posted.action}: {posted.url}", markup=False)
    # A cancelled run stops ci before it reports, so this is 0, 1 or 4.
    return code


def _append(target: str | None, text: str) -> None:
    """Append to a file GitHub Actions named in the environment, if it did."""
    if not target:
        return
    try:
        with open(target, "a", encoding="utf-8") as handle:
            handle.write(text)
    except OSError as exc:
        raise UsageError(f"cannot append to {target}: {exc.strerror}") from exc
