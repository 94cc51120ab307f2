"""The compile pipeline: source file -> document -> schema -> IR -> semantic checks.

Both languages go through the same three stages, and nothing runs before all three pass.
"""

from __future__ import annotations

import functools
import gc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from runner import ir
from runner.compiler.build import build_workflow
from runner.compiler.repair import mend
from runner.compiler.schema import schema_diagnostics, workflow_validator
from runner.compiler.semantic import Checker, RoleCapabilities
from runner.compiler.source import Document, Location
from runner.errors import CompileError, Diagnostic, UsageError
from runner.userfiles import UnreadableFile, read_user_text

WORKFLOW_SUFFIXES = {".yaml": "yaml", ".yml": "yaml", ".json": "json", ".star": "starlark"}


@dataclass(frozen=True, slots=True, kw_only=True)
class Checked:
    """The outcome of checking one file."""

    path: str
    """The file, as named."""
    workflow: ir.Workflow | None
    """The compiled workflow, when it is valid."""
    diagnostics: tuple[Diagnostic, ...]
    """Every problem found; empty when valid."""
    kind: str = "workflow"
    """``workflow``; ``library`` for a Starlark file that only defines helpers (it never calls
    ``workflow()``); ``skipped`` for a YAML or JSON file found in a folder that is not a
    workflow (no ``version`` and no ``steps``), such as a mock script."""
    name_locator: Callable[[], Location | None] | None = None
    """Finds where the workflow's ``name`` is set, asked only when a message needs it: for a
    Starlark file it takes a second evaluation (``starlark_loader``)."""

    @property
    def name_location(self) -> Location | None:
        """Where the workflow's ``name`` is set in the source, when it is valid and known."""
        return self.name_locator() if self.name_locator is not None else None


def load_source(path: str, *, library_ok: bool = False) -> Document | None:
    """Load a workflow file into its document (``None`` for a Starlark library)."""
    if not Path(path).exists():
        raise CompileError([Diagnostic(file=path, rule="syntax", message="no such file or folder")])
    language = WORKFLOW_SUFFIXES.get(Path(path).suffix.lower())
    if language is None:
        raise CompileError(
            [
                Diagnostic(
                    file=path,
                    rule="syntax",
                    message="not a workflow file",
                    hint="Workflows are .yaml, .yml, .json or .star files.",
                )
            ]
        )
    # Read for every language, Starlark too, so that a pipe, a device or a file that is not
    # UTF-8 is refused here, in one way, before a loader waits on it.
    try:
        text = read_user_text(path)
    except UnreadableFile as exc:
        raise CompileError(
            [
                Diagnostic(
                    file=path,
                    line=exc.line,
                    col=exc.col,
                    rule="syntax",
                    message=f"the file {exc.reason}",
                )
            ]
        ) from exc
    if language == "starlark":
        from runner.compiler.starlark_loader import load_starlark

        return load_starlark(path, library_ok=library_ok)
    from runner.compiler.yaml_loader import load_json, load_yaml

    return load_json(path, text) if language == "json" else load_yaml(path, text)


def compile_document(
    document: Document, *, capabilities: RoleCapabilities | None = None
) -> ir.Workflow:
    """Validate a document and build its IR; raises CompileError with every problem found."""
    problems = schema_diagnostics(document)
    if problems:
        raise CompileError(sorted([*problems, *_beyond_schema(document, capabilities)], key=_order))
    workflow = build_workflow(document.data, source=document.path)
    problems = Checker(document, workflow, capabilities).run()
    if problems:
        raise CompileError(sorted(problems, key=_order))
    return workflow


def _beyond_schema(document: Document, capabilities: RoleCapabilities | None) -> list[Diagnostic]:
    """The semantic problems of a schema-invalid document, found on it mended (see
    ``repair``), leaving out whatever depends on the parts that had to be mended."""
    mended = mend(document.data, workflow_validator())
    if mended is None:
        return []
    workflow = build_workflow(mended.data, source=document.path)
    return Checker(
        document, workflow, capabilities, changed=mended.changed, stand_ins=mended.stand_ins
    ).run()


def compile_file(path: str, *, capabilities: RoleCapabilities | None = None) -> ir.Workflow:
    """Load, validate and compile one workflow file."""
    checked = check_file(path, capabilities=capabilities)
    if checked.workflow is None:
        raise CompileError(checked.diagnostics)
    return checked.workflow


def check_file(
    path: str,
    *,
    capabilities: RoleCapabilities | None = None,
    lenient: bool = False,
) -> Checked:
    """Every problem of one workflow file, never an exception for bad input.

    ``lenient``, as ``validate`` is: a Starlark file that never calls ``workflow()`` is a
    library (its code is still evaluated and its errors reported), and a YAML or JSON mapping
    with neither ``version`` nor ``steps`` (a mock script, a configuration) is not a workflow
    and is passed over, and said to be.
    """
    with _collection_paused():
        return _check(path, capabilities=capabilities, lenient=lenient)


@contextmanager
def _collection_paused() -> Iterator[None]:
    """The cyclic garbage collector held off while one file is checked.

    A long workflow allocates hundreds of thousands of small objects (YAML nodes, values, IR
    nodes), none of them garbage, and each pass of the collector also walks everything the
    imports made: about a third of validating a 1,000-step file went to it. What one check
    allocates is bounded (``yaml_loader.MAX_VALUES``); cycles it leaves are collected at the
    next pass after it.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _check(path: str, *, capabilities: RoleCapabilities | None, lenient: bool) -> Checked:
    try:
        document = load_source(path, library_ok=lenient)
        if document is None:
            return Checked(path=path, workflow=None, diagnostics=(), kind="library")
        if lenient and not _looks_like_workflow(document.data):
            return Checked(path=path, workflow=None, diagnostics=(), kind="skipped")
        workflow = compile_document(document, capabilities=capabilities)
    except CompileError as exc:
        return Checked(path=path, workflow=None, diagnostics=exc.diagnostics)
    except RecursionError:
        return Checked(
            path=path,
            workflow=None,
            diagnostics=(
                Diagnostic(
                    file=path,
                    rule="bounds",
                    message="the workflow nests too deeply to be read",
                    hint="Flatten the workflow.",
                ),
            ),
        )
    return Checked(
        path=path,
        workflow=workflow,
        diagnostics=(),
        name_locator=functools.partial(document.locate, "/name"),
    )


def _looks_like_workflow(data: object) -> bool:
    return not isinstance(data, dict) or "version" in data or "steps" in data


def existing(paths: list[str]) -> None:
    """Raise UsageError naming the paths given that do not exist."""
    missing = [path for path in paths if not Path(path).exists()]
    if missing:
        raise UsageError(f"no such file or folder: {', '.join(missing)}")


def discover(paths: list[str]) -> list[str]:
    """Workflow files named or found under folders (hidden ones left out), sorted per folder,
    each once however many of the paths reach it; UsageError when a path does not exist."""
    existing(paths)
    found: dict[Path, str] = {}
    for path in paths:
        root = Path(path)
        if not root.is_dir():
            found.setdefault(root.resolve(), path)
            continue
        for file in sorted(root.rglob("*")):
            hidden = any(part.startswith(".") for part in file.relative_to(root).parts)
            if file.is_file() and not hidden and file.suffix.lower() in WORKFLOW_SUFFIXES:
                found.setdefault(file.resolve(), str(file))
    return list(found.values())


def dependents(library: str) -> list[str]:
    """The Starlark files that load ``library``, directly or through other files.

    ``load()`` reaches only files under the loading workflow's folder, so they are in the
    library's folder or in a folder above it; those are searched up to the working directory.
    """
    from runner.compiler.starlark_loader import loaded_files

    target = Path(library).resolve()
    here = Path.cwd().resolve()
    folders = [target.parent]
    if target.is_relative_to(here):
        folders += [folder for folder in target.parent.parents if folder.is_relative_to(here)]
    found: list[str] = []
    for folder in folders:
        for candidate in sorted(folder.glob("*.star")):
            if candidate == target or candidate.name.startswith(".") or not candidate.is_file():
                continue
            if target in loaded_files(str(candidate)):
                found.append(_shown(candidate))
    return found


def _shown(path: Path) -> str:
    """A path as messages show it: relative to the working directory when it is under it."""
    try:
        return str(path.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _order(diagnostic: Diagnostic) -> tuple[str, int, int, str]:
    return (diagnostic.file, diagnostic.line or 0, diagnostic.col or 0, diagnostic.pointer or "")
