"""Evaluation cases against the inputs a workflow declares, pure: one set of rules for a
workflow's own ``cases`` and for a cases file (``runner.learning.cases``).

A case's inputs are checked as ``--input`` values are (``runner.render.resolve_inputs``): every
name is a declared input, every value has the declared type, and every input without a default
is given. Case names match the schema's pattern and are unique.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from runner import ir
from runner.canonical import thaw

CASE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
"""What a case name may be (the schema's ``$defs/case`` says the same)."""

_PYTHON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "array": (tuple, list),
    "object": (dict,),
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Finding:
    """One problem of one case."""

    index: int
    """The case's position in the list."""
    pointer: str
    """JSON pointer below the case: ``/inputs/since``, ``/inputs``, ``/name``."""
    message: str
    """What is wrong, in one sentence."""
    hint: str
    """How to fix it."""


def has_type(value: Any, kind: ir.InputType) -> bool:
    """Whether a JSON value is of an input's declared type (a boolean is not a number)."""
    if kind != "boolean" and isinstance(value, bool):
        return False
    return isinstance(value, _PYTHON_TYPES[kind])


def case_findings(
    inputs: Mapping[str, ir.InputSpec],
    cases: Sequence[ir.Case],
    *,
    names_checked: bool = False,
    yaml: bool = True,
    earlier: Callable[[int], str] = lambda index: f"cases[{index}]",
) -> list[Finding]:
    """Every problem of ``cases`` against the declared ``inputs``; ``names_checked``: the
    schema has already checked the names' pattern; ``yaml``: the cases are written in YAML,
    where an unquoted ``1.0`` or ``yes`` is not a string; ``earlier`` names the case at an
    index, for a name given twice."""
    found: list[Finding] = []
    first: dict[str, int] = {}
    for index, case in enumerate(cases):
        if not names_checked and not CASE_NAME.match(case.name):
            found.append(
                Finding(
                    index=index,
                    pointer="/name",
                    message=f"the case name {case.name!r} is not allowed",
                    hint="A case name is letters, digits, _, . and -, starting with a letter "
                    "or a digit.",
                )
            )
        seen = first.setdefault(case.name, index)
        if seen != index:
            found.append(
                Finding(
                    index=index,
                    pointer="/name",
                    message=f"the case name {case.name!r} is already used by {earlier(seen)}",
                    hint=f"Rename this case, say to {case.name + '_2'!r}: every case needs its "
                    "own name.",
                )
            )
        found += _input_findings(index, case, inputs, yaml=yaml)
    return found


def _input_findings(
    index: int, case: ir.Case, inputs: Mapping[str, ir.InputSpec], *, yaml: bool
) -> list[Finding]:
    given: dict[str, Any] = thaw(case.inputs) if case.inputs is not None else {}
    found = []
    for name, value in given.items():
        spec = inputs.get(name)
        pointer = f"/inputs/{name}"
        if spec is None:
            close = difflib.get_close_matches(name, list(inputs), n=1)
            guess = f" Did you mean {close[0]!r}?" if close else ""
            declared = ", ".join(inputs) or "none"
            found.append(
                Finding(
                    index=index,
                    pointer=pointer,
                    message=f"case {case.name!r} sets {name!r}, which is not an input of the "
                    "workflow",
                    hint=f"Declare it under inputs, or take it out of the case (declared: "
                    f"{declared}).{guess}",
                )
            )
        elif not has_type(value, spec.type):
            quote = " In YAML, quote a string that reads as a number or a boolean." * (
                yaml and spec.type == "string"
            )
            found.append(
                Finding(
                    index=index,
                    pointer=pointer,
                    message=f"case {case.name!r} sets {name!r} to a value that is not of type "
                    f"{spec.type}, as the input is declared",
                    hint=f"Give a value of type {spec.type}.{quote}",
                )
            )
    for name, spec in inputs.items():
        if name not in given and not spec.has_default:
            found.append(
                Finding(
                    index=index,
                    pointer="/inputs",
                    message=f"case {case.name!r} does not set the input {name!r}, which has no "
                    "default",
                    hint=f"Give {name} a value of type {spec.type} in the case's inputs, or "
                    "give the input a default.",
                )
            )
    return found
