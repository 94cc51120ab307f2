"""``branchleaf compile FILE``: print the canonical JSON document of a workflow."""

from __future__ import annotations

import argparse
import json

from rich.console import Console

from runner.canonical import canonical_json
from runner.commands.output import emit
from runner.compiler.build import to_document
from runner.compiler.pipeline import compile_file


def run(args: argparse.Namespace, console: Console) -> int:
    """Compile one workflow and print its document."""
    workflow = compile_file(args.file)
    document = to_document(workflow)
    if args.compact:
        text = canonical_json(document)
    else:
        text = json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False)
    emit(text + "\n", args.output, console)
    return 0
