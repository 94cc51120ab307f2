"""``branchleaf graph FILE``: print a Mermaid flowchart of a workflow."""

from __future__ import annotations

import argparse

from rich.console import Console

from runner.commands.output import emit
from runner.compiler.pipeline import compile_file
from runner.graph import mermaid


def run(args: argparse.Namespace, console: Console) -> int:
    """Compile one workflow and print its graph."""
    emit(mermaid(compile_file(args.file)), args.output, console)
    return 0
