"""The command line: the parser, the command table and the one error boundary."""

from __future__ import annotations

import argparse
import errno
import importlib
import os
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from runner import __version__

# What a command needs is imported once the command line is parsed: `--version`, `--help` and
# usage errors are answered by argparse alone, and each command imports only its own modules
# (issue 13).
if TYPE_CHECKING:
    from rich.console import Console

LOG_WIDTH = 140
"""Columns of tables printed outside a terminal."""

COMMANDS = {
    "validate": "Check workflow files (schema and semantic rules); exit 2 when any is invalid.",
    "compile": "Print the canonical JSON document of a workflow (YAML, JSON or Starlark).",
    "graph": "Print a Mermaid flowchart of a workflow.",
    "run": "Run workflows (mock provider by default), check their tests, write JSON summaries.",
    "runs": "List the runs in the state: status, done/total, duration, cost.",
    "inspect": "Show a run's node tree with statuses, timings, usage and outputs.",
    "report": "Write a report of stored runs: markdown (the default) or JUnit XML.",
    "replay": "Re-run a recorded run from its trace: no model calls, no commands.",
    "resume": "Finish a crashed, killed or cancelled run without paying again for what it did.",
    "memo": "Memo figures (`memo stats [RUN]`) and why a call missed (`memo explain RUN NODE`).",
    "trace": "Write a run's trace as portable JSONL (`trace export`), or read one (`import`).",
    "watch": "Follow a run from another process: the live view, until it ends.",
    "cancel": "Stop a running run cleanly: what is in flight is cancelled and awaited.",
    "ci": "Validate, run (or replay exported traces) and write the JUnit and markdown reports.",
    "overlay": "The lessons on the overlay branch (cached-main): list, show, demote, revert.",
    "learn": "Propose lessons from a workflow's cases, evaluate them and gate their promotion.",
}
"""Command name -> help; each is implemented by ``runner.commands.<name>.run``."""

EXIT_CODES = (
    "exit codes: 0 success; 1 a workflow failed (a node or a test); 2 invalid input or usage; "
    "3 internal error; 4 a provider failed (unreachable, timed out, refused the key, "
    "unavailable after its retries): the tests were not judged and running again may pass; "
    "130 interrupted"
)
"""What ``branchleaf --help`` says about exit codes (docs/cli.md has the details)."""

SUMMARY_HELP = "where the JSON summary goes (default: reports in the state directory)"


class _Parser(argparse.ArgumentParser):
    """A parser that takes a command's options anywhere among its positionals.

    argparse matches positionals in runs between options, so ``replay RUN --state DIR WORKFLOW``
    ends the optional WORKFLOW before the option and leaves it unrecognized (issue 11). A
    command's own parser (one without subcommands) parses intermixed instead; parsers with
    subcommands cannot, and take no positionals of their own.
    """

    _intermixing = False

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        if self._subparsers is not None or self._intermixing:
            return super().parse_known_args(args, namespace)
        # parse_known_intermixed_args calls parse_known_args back, for each of its two passes.
        self._intermixing = True
        try:
            return self.parse_known_intermixed_args(args, namespace)
        finally:
            self._intermixing = False


def _parser(only: str | None = None) -> argparse.ArgumentParser:
    """The command line's parser; with ``only``, the options of that command alone.

    Each command's options cost argparse a formatter per option (about 0.1 ms each, 10 ms for
    all): a command line names one command, so :func:`main` builds the options of that one
    and leaves the others their name and help, which is all ``--help`` and a misspelled
    command need (issue 13).
    """
    parser = _Parser(
        prog="branchleaf",
        description="A headless CI runner for branch-and-leaf LLM-agent workflows.",
        epilog=EXIT_CODES,
    )
    parser.add_argument("--version", action="version", version=f"branchleaf {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of internal errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, help_ in COMMANDS.items():
        options = sub.add_parser(name, help=help_, description=help_)
        if only is None or only == name:
            _OPTIONS[name](options)
    for command in _commands(parser):
        # --debug is the program's, but a user adds it where the command line ends.
        command.add_argument(
            "--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS
        )
    return parser


def _command_named(argv: Sequence[str]) -> str | None:
    """The command a command line names: its first word that is not an option (the program's
    own options take no values), or None."""
    for word in argv:
        if word == "--":
            return None
        if not word.startswith("-"):
            return word if word in COMMANDS else None
    return None


def _validate(validate: argparse.ArgumentParser) -> None:
    validate.add_argument("paths", nargs="+", metavar="PATH", help="workflow files or folders")
    validate.add_argument("--format", choices=("text", "json"), default="text")
    validate.add_argument("--config", help="branchleaf.yaml to check role capabilities against")


def _compile(compile_: argparse.ArgumentParser) -> None:
    compile_.add_argument("file", metavar="FILE", help="workflow file")
    compile_.add_argument("-o", "--output", help="write to this file instead of stdout")
    compile_.add_argument(
        "--compact", action="store_true", help="canonical compact form (the hashed bytes)"
    )


def _graph(graph: argparse.ArgumentParser) -> None:
    graph.add_argument("file", metavar="FILE", help="workflow file")
    graph.add_argument("-o", "--output", help="write to this file instead of stdout")


def _run_options(run: argparse.ArgumentParser) -> None:
    run.add_argument("workflow", nargs="+", metavar="WORKFLOW", help="workflow files, run in turn")
    run.add_argument(
        "--input", action="append", metavar="NAME=VALUE", help="an input, typed as declared"
    )
    run.add_argument("--config", help="branchleaf.yaml (default: ./branchleaf.yaml, else mock)")
    run.add_argument("--mock-script", help="script the mock provider's replies")
    run.add_argument(
        "--mock", action="store_true", help="dry run: every role on the mock provider, no config"
    )
    run.add_argument("--report-dir", metavar="DIR", help=SUMMARY_HELP)
    run.add_argument("--plain", action="store_true", help="plain progress lines, no live view")
    run.add_argument("--state", metavar="DIR", help="state directory (default: .branchleaf)")
    run.add_argument(
        "--changed-files",
        action="store_true",
        help="the files are those a commit changed (pre-commit): a Starlark library runs the "
        "workflows that load it, no workflow among them is not an error, and each workflow "
        "runs with its ci block's inputs and mock script (those given win)",
    )
    run.add_argument(
        "--background",
        action="store_true",
        help="start the run in a detached process and print its run id at once",
    )
    run.add_argument("--run-id", help=argparse.SUPPRESS)  # given by --background to its child
    _overlay_options(run)


def _overlay_options(command: argparse.ArgumentParser, *names: str) -> None:
    command.add_argument(
        "--no-overlay",
        action="store_true",
        help="run without the lessons of the overlay branch",
    )
    command.add_argument(
        "--overlay-branch",
        *names,
        dest="overlay_branch",
        metavar="NAME",
        help="the overlay branch whose active lessons are applied (default: cached-main)",
    )


def _runs(runs: argparse.ArgumentParser) -> None:
    runs.add_argument("--limit", type=_count, default=20, help="how many runs (newest first)")
    _state(runs)


def _inspect(inspect: argparse.ArgumentParser) -> None:
    inspect.add_argument("run", metavar="RUN", help="a run id, a unique prefix of one, or last")
    inspect.add_argument("node", metavar="NODE", nargs="?", help="a node id or path: its details")
    _state(inspect)


def _report(report: argparse.ArgumentParser) -> None:
    report.add_argument(
        "run", nargs="+", metavar="RUN", help="run ids, unique prefixes of them, or last"
    )
    report.add_argument("--format", choices=("markdown", "junit"), default="markdown")
    report.add_argument("-o", "--output", help="write to this file instead of stdout")
    _state(report)


def _replay(replay: argparse.ArgumentParser) -> None:
    replay.add_argument("run", metavar="RUN", help="a run id, a unique prefix of one, or last")
    replay.add_argument(
        "workflow", metavar="WORKFLOW", nargs="?", help="replay this file instead of the recorded"
    )
    replay.add_argument(
        "--allow-live",
        action="store_true",
        help="make the calls the trace does not answer (a fork, recorded as a new run)",
    )
    replay.add_argument("--config", help="branchleaf.yaml for --allow-live calls")
    _running(replay)


def _resume(resume: argparse.ArgumentParser) -> None:
    resume.add_argument("run", metavar="RUN", help="a run id, a unique prefix of one, or last")
    _running(resume)


def _memo(memo: argparse.ArgumentParser) -> None:
    verbs = memo.add_subparsers(dest="verb", required=True, metavar="VERB")
    stats = verbs.add_parser("stats", help="hits, misses and savings of a run, and the memo's size")
    stats.add_argument("run", metavar="RUN", nargs="?", help="a run (default: every run)")
    _state(stats)
    explain = verbs.add_parser("explain", help="why a node's calls missed the memo")
    explain.add_argument("run", metavar="RUN", help="a run id, a unique prefix of one, or last")
    explain.add_argument("node", metavar="NODE", help="a node id or path")
    _state(explain)


def _trace(trace: argparse.ArgumentParser) -> None:
    trace_verbs = trace.add_subparsers(dest="verb", required=True, metavar="VERB")
    export = trace_verbs.add_parser("export", help="write a run's trace as JSONL")
    export.add_argument("run", metavar="RUN", help="a run id, a unique prefix of one, or last")
    export.add_argument("-o", "--output", help="write to this file instead of stdout")
    _state(export)
    import_ = trace_verbs.add_parser("import", help="read a JSONL trace into the state")
    import_.add_argument("file", metavar="FILE", help="a file written by `trace export`")
    _state(import_)


def _watch(watch: argparse.ArgumentParser) -> None:
    watch.add_argument("run", metavar="RUN", help="a run id, a unique prefix of one, or last")
    watch.add_argument("--plain", action="store_true", help="plain progress lines, no live view")
    _state(watch)


def _cancel(cancel: argparse.ArgumentParser) -> None:
    cancel.add_argument("run", metavar="RUN", help="a run id, a unique prefix of one, or last")
    _state(cancel)


def _ci(ci: argparse.ArgumentParser) -> None:
    ci.add_argument("paths", nargs="+", metavar="PATH", help="workflow files or folders")
    ci.add_argument(
        "--replay",
        metavar="DIR",
        help="replay the exported traces (*.jsonl) in DIR instead of running live",
    )
    ci.add_argument(
        "--comment",
        action="store_true",
        help="create or update the pull-request comment (GITHUB_TOKEN, GITHUB_EVENT_PATH)",
    )
    ci.add_argument("--config", help="branchleaf.yaml (default: ./branchleaf.yaml, else mock)")
    ci.add_argument(
        "--report-dir",
        metavar="DIR",
        help="where branchleaf.junit.xml, branchleaf.md and the JSON summaries go "
        "(default: reports in the state directory)",
    )
    _overlay_options(ci)
    _state(ci)


def _overlay(overlay: argparse.ArgumentParser) -> None:
    verbs = overlay.add_subparsers(dest="verb", required=True, metavar="VERB")
    list_ = verbs.add_parser("list", help="the lessons on the branch, with their status")
    show = verbs.add_parser("show", help="one lesson's file and the commits that changed it")
    demote = verbs.add_parser("demote", help="stop runs applying a lesson (a new commit)")
    revert = verbs.add_parser(
        "revert", help="remove a lesson's file from the branch (a new commit)"
    )
    for verb in (show, demote, revert):
        verb.add_argument("lesson", metavar="ID", help="a lesson id")
    for verb in (demote, revert):
        verb.add_argument(
            "--reason", required=True, metavar="TEXT", help="why, kept in the branch's history"
        )
    for verb in (list_, show, demote, revert):
        verb.add_argument(
            "--repo", default=".", metavar="PATH", help="the git repository (default: .)"
        )
        verb.add_argument(
            "--branch",
            default="cached-main",
            metavar="NAME",
            help="the overlay branch (default: cached-main)",
        )


def _learn(learn: argparse.ArgumentParser) -> None:
    learn.add_argument("workflow", metavar="WORKFLOW", help="the workflow file to learn for")
    learn.add_argument(
        "--cases",
        metavar="FILE",
        help="a cases file (YAML or JSONL) instead of the workflow's own cases",
    )
    learn.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of the split, the parent picks and the gate's bootstrap (default: 0)",
    )
    learn.add_argument(
        "--split",
        type=float,
        nargs=3,
        metavar=("REFLECTION", "SELECTION", "HELD_OUT"),
        help="the shares of the cases in each set (default: 0.3 0.3 0.4)",
    )
    learn.add_argument(
        "--rounds",
        type=_count,
        default=1,
        help="teacher -> student -> frontier rounds (default: 1)",
    )
    learn.add_argument("--alpha", type=float, default=0.05, help="the gate's McNemar alpha")
    learn.add_argument(
        "--threshold",
        type=float,
        default=0.0,
        help="with a metric: the least bootstrap lower bound of the mean difference (default: 0)",
    )
    learn.add_argument(
        "--require",
        action="append",
        metavar="TEST",
        help="a test that must pass on every held-out case with the lesson; repeat for several",
    )
    learn.add_argument(
        "--cost-cap",
        type=float,
        metavar="USD",
        help="the most a candidate's evaluation may cost to be promoted",
    )
    learn.add_argument(
        "--max-calls", type=_count, metavar="N", help="model calls the whole learn run may make"
    )
    learn.add_argument("--max-tokens", type=_count, metavar="N", help="tokens it may spend")
    learn.add_argument("--max-cost", type=float, metavar="USD", help="dollars it may spend")
    learn.add_argument(
        "--promote",
        action="store_true",
        help="commit the lessons the gate promotes to the overlay branch",
    )
    learn.add_argument(
        "--push",
        action="store_true",
        help="with --promote: push the branch (--force-with-lease naming its old value)",
    )
    learn.add_argument("--remote", default="origin", help="where --push pushes (default: origin)")
    learn.add_argument(
        "--repo",
        default=".",
        metavar="PATH",
        help="the git repository of the overlay branch (default: .)",
    )
    learn.add_argument("--config", help="branchleaf.yaml (default: ./branchleaf.yaml, else mock)")
    learn.add_argument("--mock", action="store_true", help="every role on the mock provider")
    learn.add_argument("--mock-script", help="script the mock provider's replies")
    _overlay_options(learn, "--branch")
    _state(learn)
    learn.add_argument(
        "--report-dir",
        metavar="DIR",
        help="where <workflow>.learn.json goes (default: reports in the state directory)",
    )


_OPTIONS: dict[str, Callable[[argparse.ArgumentParser], None]] = {
    "validate": _validate,
    "compile": _compile,
    "graph": _graph,
    "run": _run_options,
    "runs": _runs,
    "inspect": _inspect,
    "report": _report,
    "replay": _replay,
    "resume": _resume,
    "memo": _memo,
    "trace": _trace,
    "watch": _watch,
    "cancel": _cancel,
    "ci": _ci,
    "overlay": _overlay,
    "learn": _learn,
}
"""Command name -> what adds its arguments (and its verbs) to its parser."""


def _commands(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    """The parsers of the commands under ``parser`` (``memo stats``, not ``memo``)."""
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                children = _commands(child)
                found += children or [child]
    return found


LIMIT_MAX = 1_000_000
"""The most runs one listing asks for (SQLite's integers end before Python's do)."""


def _count(text: str) -> int:
    """A positive whole number, for argparse."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 1 <= value <= LIMIT_MAX:
        raise argparse.ArgumentTypeError(f"{text} is not between 1 and {LIMIT_MAX:,}")
    return value


def _state(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--state", metavar="DIR", help="state directory (default: .branchleaf)")


def _running(parser: argparse.ArgumentParser) -> None:
    """The options of commands that run a workflow."""
    _state(parser)
    parser.add_argument("--report-dir", metavar="DIR", help=SUMMARY_HELP)
    parser.add_argument("--plain", action="store_true", help="plain progress lines, no live view")


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command and return its exit code."""
    words = list(sys.argv[1:] if argv is None else argv)
    try:
        args = _parser(_command_named(words)).parse_args(words)
        args.argv = words  # recorded with a run
    except SystemExit as exc:  # argparse has printed the usage error
        return exc.code if isinstance(exc.code, int) else 2
    from rich.console import Console

    # Logs (CI, pipes) are wider than the 80 columns rich assumes outside a terminal.
    wide = None if sys.stdout.isatty() or "COLUMNS" in os.environ else LOG_WIDTH
    console = Console(highlight=False, soft_wrap=True, width=wide)
    errors = Console(stderr=True, highlight=False, soft_wrap=True)
    return _run(args, console, errors)


def _run(args: argparse.Namespace, console: Console, errors: Console) -> int:
    from runner.errors import CompileError, RunnerError
    from runner.gcpolicy import bulk

    try:
        command = importlib.import_module(f"runner.commands.{args.command}")
        with bulk():  # commands load and build many objects that live until they end
            code: int = command.run(args, console)
        return code
    except CompileError as exc:
        for diagnostic in exc.diagnostics:
            errors.print(f"[bold red]error:[/] {_escape(diagnostic.render())}")
        return exc.exit_code
    except RunnerError as exc:
        errors.print(f"[bold red]error:[/] {_escape(str(exc))}")
        return exc.exit_code
    except KeyboardInterrupt:
        errors.print("[yellow]interrupted[/]")
        return 130
    except BrokenPipeError:
        # The reader went away (`inspect last | head`): nothing more to say, and nobody to say
        # it to; stdout is pointed at nothing so that closing it cannot fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as exc:
        if exc.errno in _FULL or isinstance(exc.filename, str):
            errors.print(f"[bold red]error:[/] {_escape(_os_error(exc))}")
            return 3 if exc.errno in _FULL else 2
        return _internal(args, errors, exc)
    except Exception as exc:
        # Imported on the way out: the commands that never open the state (validate, compile)
        # need not pay for sqlite3 at start-up.
        import sqlite3

        if isinstance(exc, sqlite3.DatabaseError) and not isinstance(exc, sqlite3.ProgrammingError):
            # Raised where a run writes as it goes, outside the commands' own translation.
            from runner.store.db import state_dir, translated

            failure = translated(state_dir(getattr(args, "state", None)), exc)
            errors.print(f"[bold red]error:[/] {_escape(str(failure))}")
            return failure.exit_code
        return _internal(args, errors, exc)


_FULL = {errno.ENOSPC, errno.EDQUOT}
"""No room left: the machine's trouble, not a bad argument (exit 3, but no bug)."""


def _os_error(exc: OSError) -> str:
    """One sentence for a file the system refused: which, why, and what to do."""
    why = exc.strerror or str(exc)
    if exc.errno in _FULL:
        where = f" writing {exc.filename}" if exc.filename is not None else ""
        return f"no space left on the device{where}: free some space and run the command again"
    return f"cannot use {exc.filename}: {why}; check the path and its permissions"


def _internal(args: argparse.Namespace, errors: Console, exc: BaseException) -> int:
    if args.debug:
        import traceback

        errors.print(_escape(traceback.format_exc()))
    errors.print(
        f"[bold red]internal error:[/] {type(exc).__name__}: {_escape(str(exc))}. "
        "This is a bug in branchleaf; rerun with --debug for the traceback and report it."
    )
    return 3


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


if __name__ == "__main__":
    sys.exit(main())
