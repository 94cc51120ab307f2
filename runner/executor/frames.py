"""Where a node runs: its outputs in scope, its copy and loop indices, the limits around it.

A frame is never changed once made; children get derived frames. Outputs live in layered
dicts: a sequence's steps share one layer, so a later step reads an earlier one; concurrent
children, copies and cond arms each get their own layer on top, so none sees a sibling. What a
finished child exposes is merged down when the validator's reference rules say it is readable.
"""

from __future__ import annotations

import asyncio
from collections import ChainMap
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runner import ir
from runner.budget import Ledger
from runner.render import Scope

_new = object.__new__


@dataclass(slots=True)
class Tally:
    """Dollars spent under one frame, e.g. by one tournament candidate; added to by calls."""

    cost_usd: float = 0.0
    """Dollars so far."""


@dataclass(slots=True, kw_only=True)
class Frame:
    """The context one node (or one copy of it) runs in; never changed once made.

    Not frozen: a frozen dataclass sets each of its 18 fields through ``object.__setattr__``,
    which made deriving a frame cost 4 us, and an expand derives one per item (issue 13: a
    third of the asyncio floor per leaf). Nothing assigns to a frame's fields after
    :meth:`derive` returns it.
    """

    outputs: ChainMap[str, Any]
    """Outputs readable here; a node's own output is written to the first layer."""
    inputs: Mapping[str, Any]
    """The run's inputs."""
    env: Mapping[str, str]
    """The declared environment entries."""
    variables: Mapping[str, Any]
    """Loop and expand variables, ``iteration``, ``candidate``, ``sample``."""
    copies: tuple[int, ...] = ()
    """Indices of the enclosing copies (expand items, sampled candidates), outermost first."""
    loops: tuple[int, ...] = ()
    """Iterations of the enclosing loops, outermost first."""
    sample: int | None = None
    """The sample index inside a ``count`` candidate."""
    leaf_limits: tuple[asyncio.Semaphore, ...] = ()
    """Semaphores bounding calls and commands here, innermost first."""
    slots: int | None = None
    """The smallest of those bounds (``None``: unbounded)."""
    branches: int | None = None
    """Bound on concurrent children of fan-out nodes here."""
    ledger: Ledger | None = None
    """The innermost budget ledger."""
    commands: tuple[str, ...] = ()
    """Command-line globs admitted here."""
    cwd: Path = Path()
    """Working directory for commands: the workspace, or a worktree."""
    memo: ir.Memo = ir.DEFAULT_MEMO
    """Memo use here."""
    tallies: tuple[Tally, ...] = ()
    """Cost tallies this frame's calls add to."""
    watch: dict[str, tuple[str, int]] | None = None
    """Inside a loop: each leaf's last request and how often in a row it was sent."""
    trail: str = ""
    """The enclosing repetitions, as the prefix of this frame's logical positions
    (``runner.order``)."""
    tolerant: bool = False
    """Inside a child of a fan-out with ``min_successes``: failures here are tolerated."""

    def path(self, node_id: str) -> str:
        """The node's path: derived id with copy indices, then loop iterations."""
        return self.at(ir.instance_id(node_id, self.copies))

    def at(self, instance_id: str) -> str:
        """The path of an instance id (a node id with its copy indices) in this frame."""
        return instance_id + "".join(f"@{i}" for i in self.loops) if self.loops else instance_id

    def scope(self) -> Scope:
        """What templates and expressions see here."""
        return Scope(
            inputs=self.inputs, outputs=self.outputs, env=self.env, variables=self.variables
        )

    def layer(self, **changes: Any) -> Frame:
        """A frame with its own output layer on top (for a concurrent child, copy or arm)."""
        return self.derive(outputs=self.outputs.new_child(), **changes)

    def derive(self, **changes: Any) -> Frame:
        """This frame with some fields changed (each a field's name).

        Copied field by field into an instance made without ``__init__``, then changed:
        half the cost of calling the constructor with every field, and an expand derives one
        frame per item.
        """
        new: Frame = _new(Frame)
        new.outputs = self.outputs
        new.inputs = self.inputs
        new.env = self.env
        new.variables = self.variables
        new.copies = self.copies
        new.loops = self.loops
        new.sample = self.sample
        new.leaf_limits = self.leaf_limits
        new.slots = self.slots
        new.branches = self.branches
        new.ledger = self.ledger
        new.commands = self.commands
        new.cwd = self.cwd
        new.memo = self.memo
        new.tallies = self.tallies
        new.watch = self.watch
        new.trail = self.trail
        new.tolerant = self.tolerant
        for name, value in changes.items():
            setattr(new, name, value)
        return new

    def with_variables(self, **variables: Any) -> Frame:
        """The same frame with more variables bound."""
        return self.derive(variables={**self.variables, **variables})

    def record(self, node_id: str, output: Any) -> None:
        """Make a finished node's output readable to what runs after it here."""
        self.outputs[node_id] = output

    def expose(self, child: Frame) -> None:
        """Merge what a finished child layer holds into this frame's layer."""
        self.outputs.maps[0].update(child.outputs.maps[0])
