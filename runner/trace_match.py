"""Which workflow file a trace replays against: the one with its recorded workflow name at its
recorded source path. Pure: the workflows found now and the working directory are given.

A trace whose file is gone, or now holds another workflow, matches nothing: replaying the
workflow recorded in it would pass while the workflow it guards is gone (issue 12).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePath

from runner import ir


@dataclass(frozen=True, slots=True, kw_only=True)
class Unmatched:
    """A trace that no workflow file found now can replay."""

    trace: str
    """The trace file."""
    workflow: str
    """The workflow name the trace recorded."""
    source: str | None
    """The workflow file the trace recorded, as it was named then."""
    message: str
    """Why it matches nothing and what to do, in one sentence."""


def same_file(recorded: str, current: str, here: str) -> bool:
    """Whether a trace's recorded workflow file is ``current``, both made relative to ``here``
    (the repository root, where ``ci`` runs) where they are under it. A run recorded in another
    checkout (an absolute path outside ``here``) matches by the end of its path:
    ``/ci/checkout/workflows/a.yaml`` is ``workflows/a.yaml``, whose root is not known."""
    (theirs, elsewhere), (ours, _) = _parts(recorded, here), _parts(current, here)
    if not elsewhere:
        return theirs == ours
    return bool(ours) and theirs[len(theirs) - len(ours) :] == ours


def _parts(path: str, here: str) -> tuple[tuple[str, ...], bool]:
    """The path's parts relative to ``here`` where it can be, and whether it is elsewhere."""
    pure = PurePath(os.path.normpath(path))
    if not pure.is_absolute():
        return pure.parts, False
    if pure.is_relative_to(here):
        return pure.relative_to(here).parts, False
    return pure.parts[1:], True


def match(
    *,
    trace: str,
    name: str,
    source: str | None,
    workflows: Sequence[ir.Workflow],
    here: str,
    exists: bool,
) -> ir.Workflow | Unmatched:
    """The workflow among ``workflows`` that the trace ``trace`` of workflow ``name``, recorded
    from ``source``, replays against; or why there is none. ``exists``: whether ``source``
    names a file on disk now (one that is not among ``workflows``)."""
    named = next((w for w in workflows if w.name == name), None)
    if source is None or not source:
        if named is not None:
            return named
        why = (
            f"trace {trace} records no workflow file, and no workflow found has its name "
            f"{name!r}: the workflow it guards is gone; delete the trace or restore the workflow"
        )
        return Unmatched(trace=trace, workflow=name, source=None, message=why)
    if named is not None and same_file(source, named.source, here):
        return named
    recorded = f"trace {trace} was recorded from {source} (workflow {name!r})"
    there = next((w for w in workflows if same_file(source, w.source, here)), None)
    if there is not None:
        where = f"; {named.source} now has that name" if named is not None else ""
        why = (
            f"{recorded}, which now holds the workflow {there.name!r}{where}: "
            f"{_again(there.source, trace)} or delete the trace"
        )
    elif named is not None:
        why = (
            f"{recorded}, which no longer exists; {named.source} now has that name: if it is "
            f"the same workflow moved, {_again(named.source, trace)}; else delete the "
            "trace or restore the file"
        )
    elif exists:
        why = (
            f"{recorded}, which is not under the paths given: give its folder too, or delete "
            "the trace"
        )
    else:
        why = (
            f"{recorded}, which no longer exists: the workflow it guards is gone; delete the "
            "trace or restore the file"
        )
    return Unmatched(trace=trace, workflow=name, source=source, message=why)


def _again(source: str, trace: str) -> str:
    return (
        f"record the trace again (`branchleaf run {source}`, then "
        f"`branchleaf trace export last -o {trace}`)"
    )
