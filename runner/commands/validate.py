"""``branchleaf validate PATH...``: check workflow files without running anything."""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from runner.compiler.pipeline import Checked, check_file, discover
from runner.config import Config, load_config
from runner.errors import ConfigError, Diagnostic, UsageError
from runner.plural import plural


def check_paths(paths: list[str], config: Config) -> list[Checked]:
    """Every workflow file named or found under ``paths``, checked against ``config``'s role
    capabilities when a configuration file was loaded, each of two workflows with the same name
    given a diagnostic; UsageError when a path does not exist or there is no workflow file."""
    capabilities = config.capabilities if config.path is not None else None
    files = discover(paths)
    if not files:
        raise UsageError(f"no workflow files (.yaml, .yml, .json, .star) under {' '.join(paths)}")
    return same_names([check_file(path, capabilities=capabilities, lenient=True) for path in files])


def same_names(results: list[Checked]) -> list[Checked]:
    """``results`` with a diagnostic on each workflow whose name another one has too: the
    JUnit suites, the test history and the traces of a workflow are keyed by its name."""
    by_name: dict[str, dict[Path, Checked]] = {}
    for result in results:
        if result.workflow is not None:
            # A file named twice (a folder and a file in it) is still one workflow.
            files = by_name.setdefault(result.workflow.name, {})
            files.setdefault(Path(result.path).resolve(), result)
    clashes = {
        file: (name, list(same.values()))
        for name, same in by_name.items()
        if len(same) > 1
        for file in same
    }
    return [
        replace(result, diagnostics=(_same_name(result, *clashes[file]),))
        if result.workflow is not None and (file := Path(result.path).resolve()) in clashes
        else result
        for result in results
    ]


def _same_name(result: Checked, name: str, same: list[Checked]) -> Diagnostic:
    file, line, col = result.name_location or (result.path, None, None)
    here = Path(result.path).resolve()
    others = [_where(other) for other in same if Path(other.path).resolve() != here]
    return Diagnostic(
        file=file,
        line=line,
        col=col,
        pointer="/name",
        rule="names",
        message=f"the workflow name {name!r} is also the name of {', '.join(others)}",
        hint="Rename one: JUnit suites, test history and traces are keyed by the workflow name.",
    )


def _where(result: Checked) -> str:
    if result.name_location is None:
        return result.path
    file, line, _ = result.name_location
    return f"{file}:{line}"


def run(args: argparse.Namespace, console: Console) -> int:
    """Validate every workflow named or found; 0 when all are valid, 2 otherwise."""
    results = _check_scripts(check_paths(args.paths, load_config(args.config)))
    if args.format == "json":
        console.print_json(json.dumps(_report(results)))
    else:
        _print_text(results, console)
    return 2 if any(result.diagnostics for result in results) else 0


def _check_scripts(results: list[Checked]) -> list[Checked]:
    """``results`` with the problems of each ``ci.mock_script`` that does not load (``ci``
    would refuse to run the workflow with it); a warning on standard error of each entry of
    one that loads that no call can use."""
    errors = Console(stderr=True, highlight=False, soft_wrap=True)
    checked = []
    for result in results:
        workflow = result.workflow
        if workflow is None or workflow.ci is None or workflow.ci.mock_script is None:
            checked.append(result)
            continue
        from runner.providers.script import ScriptError, load_script, unused_entries

        path = (Path(workflow.source).parent / workflow.ci.mock_script).as_posix()
        try:
            script = load_script(path)
        except ScriptError as exc:
            checked.append(replace(result, diagnostics=(*result.diagnostics, *exc.diagnostics)))
            continue
        except ConfigError as exc:  # unreadable: a folder, a pipe, not UTF-8
            problem = Diagnostic(
                file=path,
                line=None,
                col=None,
                pointer="",
                rule="ci",
                message=str(exc),
                hint="Give ci.mock_script the path of a mock script (docs/mock-script.md).",
            )
            checked.append(replace(result, diagnostics=(*result.diagnostics, problem)))
            continue
        for line in unused_entries(script, workflow):
            errors.print(f"warning: {line}", markup=False)
        checked.append(result)
    return checked


def _report(results: list[Checked]) -> dict[str, object]:
    return {
        "valid": not any(result.diagnostics for result in results),
        "errors": sum(len(result.diagnostics) for result in results),
        "files": [
            {
                "path": result.path,
                "kind": result.kind,
                "valid": not result.diagnostics,
                "name": result.workflow.name if result.workflow else None,
                "hash": result.workflow.hash if result.workflow else None,
                "diagnostics": [d.to_json() for d in result.diagnostics],
            }
            for result in results
        ],
    }


def _print_text(results: list[Checked], console: Console) -> None:
    bad = 0
    for result in results:
        if result.diagnostics:
            bad += 1
            for diagnostic in result.diagnostics:
                console.print(f"[red]✗[/] {escape(diagnostic.render())}")
        elif result.workflow is not None:
            console.print(f"[green]✓[/] {escape(result.path)} ({escape(result.workflow.name)})")
        elif result.kind == "library":
            console.print(f"[green]✓[/] {escape(result.path)} (Starlark library)")
        else:
            console.print(
                f"[dim]- {escape(result.path)} skipped: not a workflow (no version, no steps)[/]"
            )
    errors = sum(len(result.diagnostics) for result in results)
    checked = sum(1 for result in results if result.kind != "skipped")
    if not checked:
        console.print("No workflows among the files given.")
    elif bad:
        console.print(
            f"[red]{plural(errors, 'error')} in {bad} of {plural(checked, 'file')}.[/] "
            f"Fix {'it' if errors == 1 else 'them'} and run validate again."
        )
    else:
        console.print(f"[green]{plural(checked, 'file')} valid.[/]")
