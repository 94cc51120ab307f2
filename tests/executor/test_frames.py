"""Frames: derived frames keep every field they do not change."""

from __future__ import annotations

import asyncio
import dataclasses
from collections import ChainMap
from pathlib import Path

from runner import ir
from runner.budget import Ledger
from runner.executor.frames import Frame, Tally
from runner.executor.results import Spend


def full_frame() -> Frame:
    """A frame with every field away from its default."""
    return Frame(
        outputs=ChainMap({"a": 1}),
        inputs={"n": 2},
        env={"CI": "true"},
        variables={"item": 3},
        copies=(1, 2),
        loops=(4,),
        sample=5,
        leaf_limits=(asyncio.Semaphore(2),),
        slots=2,
        branches=3,
        ledger=Ledger("the run", ir.Budget(leaves=9)),
        commands=("git *",),
        cwd=Path("/tmp/x"),
        memo="off",
        tallies=(Tally(),),
        watch={},
        trail="000001.000002/",
        tolerant=True,
    )


def test_derive_keeps_every_field_it_does_not_change() -> None:
    frame = full_frame()
    defaults = Frame(outputs=ChainMap(), inputs={}, env={}, variables={})
    for field in dataclasses.fields(Frame):
        assert getattr(frame, field.name) != getattr(defaults, field.name), field.name
    assert frame.derive() == frame
    changed = frame.derive(sample=7)
    assert changed.sample == 7
    assert dataclasses.replace(changed, sample=5) == frame


def test_layer_stacks_outputs_and_with_variables_adds() -> None:
    frame = full_frame()
    child = frame.layer(copies=(9,))
    child.record("b", 2)
    assert child.outputs["a"] == 1
    assert "b" not in frame.outputs
    frame.expose(child)
    assert frame.outputs["b"] == 2
    assert frame.with_variables(x=1).variables == {"item": 3, "x": 1}


def test_spend_total_is_the_sum() -> None:
    spends = [Spend(calls=1, prompt_tokens=2, cost_usd=0.5), Spend(calls=2, completion_tokens=3)]
    assert Spend.total(spends) == spends[0] + spends[1]
    assert Spend.total([]) == Spend()
