"""``branchleaf memo stats [RUN]`` and ``branchleaf memo explain RUN NODE``."""

from __future__ import annotations

import argparse

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from runner.errors import UsageError
from runner.humanize import cost
from runner.jsondiff import diff
from runner.keys import CALL_FIELDS, differences
from runner.plural import plural
from runner.store import memo as store_memo
from runner.store import runs as store
from runner.store.db import opened, state_dir
from runner.store.journal import key_fields
from runner.store.trace import Event, events

EXPLAIN_CANDIDATES = 2000
"""How many earlier memo entries ``explain`` compares a call with."""


def run(args: argparse.Namespace, console: Console) -> int:
    """Dispatch to the verb."""
    if args.verb == "stats":
        return _stats(args, console)
    return _explain(args, console)


def _stats(args: argparse.Namespace, console: Console) -> int:
    with opened(state_dir(args.state), create=False) as conn:
        records = [store.find(conn, args.run)] if args.run else store.listed(conn, 10_000)
        entries, tokens, dollars = store_memo.size(conn)
        per_node = _per_node(events(conn, records[0].id)) if args.run else []
    hits = sum(r.memo_hits for r in records)
    misses = sum(r.memo_misses for r in records)
    asked = hits + misses
    rate = f"{hits / asked:.0%}" if asked else "n/a"
    scope = f"run {records[0].id}" if args.run else plural(len(records), "run")
    console.print(
        f"{scope}: {plural(hits, 'hit')}, {plural(misses, 'miss', 'misses')} "
        f"(hit rate {rate}); saved {plural(sum(r.saved_tokens for r in records), 'token')} "
        f"and {cost(sum(r.saved_usd for r in records))}",
        markup=False,
    )
    console.print(
        f"memo: {plural(entries, 'entry', 'entries')} holding {plural(tokens, 'token')} "
        f"worth {cost(dollars)}",
        markup=False,
    )
    if per_node:
        table = Table(title="per node", title_justify="left")
        for column in ("node", "hits", "misses", "saved tokens", "saved $"):
            table.add_column(column, justify="left" if column == "node" else "right")
        for path, node_hits, node_misses, saved, saved_usd in per_node:
            table.add_row(
                escape(path), str(node_hits), str(node_misses), str(saved), cost(saved_usd)
            )
        console.print(table)
    return 0


def _per_node(recorded: list[Event]) -> list[tuple[str, int, int, int, float]]:
    rows = []
    for event in recorded:
        if event.type != "node_finished":
            continue
        spend = event.data.get("spend", {})
        if spend.get("memo_hits") or spend.get("memo_misses"):
            rows.append(
                (
                    event.path,
                    spend.get("memo_hits", 0),
                    spend.get("memo_misses", 0),
                    spend.get("saved_tokens", 0),
                    spend.get("saved_usd", 0.0),
                )
            )
    return rows


def _explain(args: argparse.Namespace, console: Console) -> int:
    with opened(state_dir(args.state), create=False) as conn:
        record = store.find(conn, args.run)
        calls = [
            e
            for e in events(conn, record.id)
            if e.type == "model_call"
            and (
                e.path == args.node
                or e.data["request"]["node_id"] == args.node
                or e.path.startswith(args.node + "[")
            )
        ]
        if not calls:
            raise UsageError(
                f"run {record.id} made no model call at {args.node!r}: `inspect {record.id}` "
                "lists its nodes"
            )
        earlier = store_memo.entries_before(conn, record.started_at, EXPLAIN_CANDIDATES)
    for call in calls:
        fields = key_fields(call.data["request"])
        source = call.data["source"]
        head = f"{call.path}: {source}"
        if source == "memo":
            console.print(f"{head} (answered by the memo)", markup=False)
            continue
        if fields is None:
            console.print(
                f"{head}: the call had no key, so the memo could not answer it", markup=False
            )
            continue
        mine = tuple(fields.get(name) for name in CALL_FIELDS)
        if not earlier:
            console.print(f"{head}: the memo held no entry from before this run", markup=False)
            continue
        nearest = min(
            earlier,
            key=lambda entry: (
                len(differences(tuple(entry.fields.get(n) for n in CALL_FIELDS), mine)),
                entry.path != call.path,
            ),
        )
        changed = differences(tuple(nearest.fields.get(n) for n in CALL_FIELDS), mine)
        where = f"{nearest.path} of run {nearest.run_id}"
        if not changed:
            console.print(
                f"{head}: an identical entry ({where}) exists now; it was stored "
                "after this call was made",
                markup=False,
            )
            continue
        console.print(
            f"{head}: the nearest earlier entry ({where}) differs in {', '.join(changed)}",
            markup=False,
        )
        for name in changed:
            lines = diff(name, nearest.fields.get(name), fields.get(name), was="memo")
            console.print("\n".join(lines), markup=False, highlight=False)
    return 0
