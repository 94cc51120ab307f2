"""The workflows the benchmarks run, as documents: a wide fan-out and a long chain. Each
benchmark names its own, so that their summaries and states stay apart."""

from __future__ import annotations

from typing import Any


def fan_out(leaves: int, *, schema: bool = True, name: str = "bench-fan-out") -> dict[str, Any]:
    """An expand of ``leaves`` leaves (with an output schema), then a reduce over them."""
    body: dict[str, Any] = {
        "kind": "leaf",
        "id": "one",
        "role": "worker",
        "prompt": "Item {{ item }}",
    }
    if schema:
        body["output"] = {
            "type": "object",
            "properties": {"ok": {"type": "boolean"}},
            "required": ["ok"],
        }
    return {
        "version": 1,
        "name": name,
        "inputs": {"n": {"type": "integer", "default": leaves}},
        "roles": {"worker": {}},
        "budget": {"leaves": leaves},
        "concurrency": {"leaves": 64},
        "steps": {
            "kind": "sequence",
            "id": "main",
            "steps": [
                {
                    "kind": "expand",
                    "id": "fan",
                    "over": "range(inputs.n) | list",
                    "as": "item",
                    "max_children": leaves,
                    "body": body,
                },
                {
                    "kind": "reduce",
                    "id": "count",
                    "inputs": ["fan"],
                    "expr": "outputs.fan | length",
                },
            ],
        },
    }


def chain(steps: int, *, name: str = "bench-chain") -> dict[str, Any]:
    """A sequence of ``steps`` leaves."""
    return {
        "version": 1,
        "name": name,
        "roles": {"worker": {}},
        "steps": {
            "kind": "sequence",
            "id": "main",
            "steps": [
                {"kind": "leaf", "id": f"s{i}", "role": "worker", "prompt": f"step {i}"}
                for i in range(steps)
            ],
        },
    }
