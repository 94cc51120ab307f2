"""Errors Branchleaf reports to its users.

    RunnerError                 one clear sentence; exit code 3 unless a child says otherwise
    ├── UsageError              bad command-line usage (exit 2)
    ├── ConfigError             a bad branchleaf.yaml (exit 2)
    ├── CompileError            a workflow that cannot be loaded or is invalid (exit 2);
    │                           carries every Diagnostic found, not just the first
    ├── ProviderError           a model call that failed (runner.providers.base; exit 1)
    └── StoreError              the state database cannot be used (runner.store.db; exit 3)
        └── NotInState          no state yet, or no such run (exit 2)

Foreign exceptions (YAML, Starlark, jsonschema, OS) are translated once, where they are caught,
with ``raise ... from exc``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True, kw_only=True)
class Diagnostic:
    """One problem found in a workflow source."""

    file: str
    """The source file, as the user named it."""
    message: str
    """What is wrong, in one sentence."""
    pointer: str | None = None
    """JSON pointer of the offending field in the workflow document."""
    line: int | None = None
    """1-based line in ``file``, where the source has it."""
    col: int | None = None
    """1-based column in ``file``, where the source has it."""
    hint: str | None = None
    """How to fix it."""
    rule: str = "schema"
    """Which check found it: syntax, schema, ids, references, expressions, roles, bounds,
    writes, permissions, budget, ci, cases, starlark, names."""

    def location(self) -> str:
        """``file:line:col`` as far as it is known."""
        parts = [self.file]
        if self.line is not None:
            parts.append(str(self.line))
            if self.col is not None:
                parts.append(str(self.col))
        return ":".join(parts)

    def render(self) -> str:
        """The diagnostic as text: the problem on one line, how to fix it on the next."""
        where = f" (at {self.pointer})" if self.pointer else ""
        hint = f"\n    fix: {self.hint}" if self.hint else ""
        return f"{self.location()}: [{self.rule}] {self.message}{where}{hint}"

    def to_json(self) -> dict[str, object]:
        """The diagnostic as a JSON object."""
        return {
            "file": self.file,
            "line": self.line,
            "col": self.col,
            "pointer": self.pointer,
            "rule": self.rule,
            "message": self.message,
            "hint": self.hint,
        }


class RunnerError(Exception):
    """A known failure, reported as one sentence without a traceback."""

    exit_code = 3


class UsageError(RunnerError):
    """The command line asks for something that cannot be done."""

    exit_code = 2


class ConfigError(RunnerError):
    """The configuration file is missing, unreadable or invalid."""

    exit_code = 2


class CompileError(RunnerError):
    """A workflow source could not be loaded, or is invalid."""

    exit_code = 2

    def __init__(self, diagnostics: Sequence[Diagnostic]) -> None:
        self.diagnostics = tuple(diagnostics)
        first = self.diagnostics[0].render() if self.diagnostics else "invalid workflow"
        more = len(self.diagnostics) - 1
        suffix = f" (and {more} more)" if more > 0 else ""
        super().__init__(first + suffix)
