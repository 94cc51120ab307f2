"""``branchleaf inspect RUN [NODE]``: a run's node tree with statuses, timings, usage and
outputs; with NODE, everything recorded about that node."""

from __future__ import annotations

import argparse
import json
import re
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.tree import Tree

from runner.commands.runs import COLOURS
from runner.errors import UsageError
from runner.humanize import cost, duration
from runner.plural import plural
from runner.reports.divergences import kind_of
from runner.reports.model import overlay_line, served_line
from runner.status import Status, tests_note
from runner.store import runs as store
from runner.store.db import opened, state_dir
from runner.store.trace import Event, events

_JUDGE_CALL = re.compile(r"/judge\[\d+\]$")
OUTPUT_CHARS = 120
"""How much of a node's output the tree shows."""


def run(args: argparse.Namespace, console: Console) -> int:
    """Show a run, or one node of it."""
    with opened(state_dir(args.state), create=False) as conn:
        record = store.find(conn, args.run)
        recorded = events(conn, record.id)
    status = store.shown_status(record)
    shown = store.summary_status(record)
    colour = COLOURS.get(shown, "white")
    reason = record.reason or tests_note(store.test_results(record))
    console.print(
        f"run {escape(record.id)}: {escape(record.workflow)} [{colour}]{shown}[/]"
        f" ({record.done}/{record.total} done, {duration(record.duration_s)}, "
        f"{plural(record.calls, 'call')}, {plural(record.tokens, 'token')}, "
        f"{cost(record.cost_usd)}, memo {plural(record.memo_hits, 'hit')} / "
        f"{plural(record.memo_misses, 'miss', 'misses')})"
        + (f" — {escape(reason)}" if reason else "")
    )
    console.print(served_line(record.providers), markup=False)
    applied = overlay_line(record.overlay)
    if applied:
        console.print(applied, markup=False)
    if args.node:
        return _node(args.node, recorded, console)
    console.print(_tree(record.workflow, recorded, running=status == store.RUNNING))
    return 0


def _tree(name: str, recorded: list[Event], *, running: bool) -> Tree:
    """Nodes nested as they ran: a node's children are the nodes that started inside it."""
    root = Tree(escape(name))
    # A node's events all sit between its start and its end in the logical order
    # (runner.order), so a node started before another one ends is inside it.
    open_nodes: list[tuple[str, Tree]] = []  # (end position, its tree)
    ended = {e.path: e for e in recorded if e.type == "node_finished"}
    # A replay's first divergence is shown with its diff; later ones (which mostly repeat it)
    # by their first line, with `inspect RUN NODE` a step away for the rest.
    diverged = [False]
    retried = _retried(recorded)
    started = {e.path for e in recorded if e.type == "node_started"}
    for event in recorded:
        skipped = event.type == "node_finished" and event.data.get("attempts") == 0
        # A call a node makes besides its own (a tournament's judges) is shown inside it.
        extra_call = event.type == "model_call" and event.path not in started
        if event.type != "node_started" and not skipped and not extra_call:
            continue
        # A skipped node has only its end, which may be its parent's end too.
        while open_nodes and (
            event.position > open_nodes[-1][0]
            or (event.position == open_nodes[-1][0] and not skipped)
        ):
            open_nodes.pop()
        parent = open_nodes[-1][1] if open_nodes else root
        if extra_call:
            parent.add(_call_label(event))
            continue
        if skipped:  # it never started: it has only its end
            parent.add(_label(event.path, event.data, event, running=running, diverged=diverged))
            continue
        finish = ended.get(event.path)
        retries, earlier = _retries(retried.get(event.path, []), finish)
        label = _label(
            event.path, event.data, finish, running=running, diverged=diverged, extra=retries
        )
        branch = parent.add(label + earlier)
        open_nodes.append((finish.position if finish else "\uffff", branch))
    return root


def _retried(recorded: list[Event]) -> dict[str, list[dict[str, Any]]]:
    """Node path -> the failures its answered model calls retried (a tournament's judge
    calls, ``ID/judge[N]``, count for the tournament)."""
    found: dict[str, list[dict[str, Any]]] = {}
    for event in recorded:
        if event.type == "model_call" and event.data.get("retried"):
            path = _JUDGE_CALL.sub("", event.path)
            found.setdefault(path, []).extend(event.data["retried"])
    return found


def _retries(failures: list[dict[str, Any]], finish: Event | None) -> tuple[str, str]:
    """How often a node's calls were retried and why, for its line; and why its attempts
    before the last failed (a node ``retry``), one line each, to follow it."""
    said = earlier = ""
    if failures:
        why = ", ".join(
            f"HTTP {f['status']}" if f.get("status") else _short_error(str(f.get("error", "")))
            for f in failures
        )
        said += f", [yellow]{plural(len(failures), 'failed call')} retried ({escape(why)})[/]"
    if finish is not None and finish.data.get("attempts", 1) > 1:
        said += f", [yellow]ran {finish.data['attempts']} times (node retry)[/]"
        for index, reason in enumerate(finish.data.get("failures", ()), start=1):
            earlier += f"\n[yellow]attempt {index} failed: {escape(str(reason))}[/]"
    return said, earlier


def _short_error(error: str) -> str:
    return "timeout" if "timed out" in error else error[:60]


def _label(
    path: str,
    started: dict[str, Any],
    finish: Event | None,
    *,
    running: bool,
    diverged: list[bool],
    extra: str = "",
) -> str:
    """A node's line: its path, kind, status, time and usage, ``extra`` (its retries), and
    its output or error."""
    kind = started.get("kind", "")
    if finish is None:
        if running:
            return f"{escape(path)} [dim]{kind}[/] [cyan]running[/]"
        return f"{escape(path)} [dim]{kind}[/] [magenta]did not end[/]"
    data = finish.data
    status = data["status"]
    colour = COLOURS.get(status, "white")
    spend = data.get("spend", {})
    usage = ""
    if spend.get("calls") or spend.get("memo_hits"):
        tokens = spend.get("prompt_tokens", 0) + spend.get("completion_tokens", 0)
        usage = f", {tokens} tok"
        if spend.get("memo_hits"):
            usage += f", {spend['memo_hits']} memo"
    error = data.get("error") or ""
    if status == Status.REPLAY_DIVERGED and kind_of(error):
        if diverged[0]:
            error = error.splitlines()[0]
        diverged[0] = True
    shown = _short(data.get("output")) if status == "succeeded" else escape(error)
    went_on = " [dim](tolerated)[/]" if data.get("tolerated") else ""
    return (
        f"{escape(path)} [dim]{kind}[/] [{colour}]{status}[/]{went_on} "
        f"[dim]{duration(float(data.get('duration_s', 0)))}{usage}[/]{extra} {shown}"
    )


def _call_label(event: Event) -> str:
    """A model call that is not a node's own, as the tree shows a leaf: its role, where its
    reply came from, its tokens and its reply."""
    request = event.data.get("request", {})
    reply = event.data.get("reply", {})
    usage = reply.get("usage", {})
    tokens = usage.get("prompt_tokens", 0) + usage.get("completion_tokens", 0)
    source = event.data.get("source", "")
    return (
        f"{escape(event.path)} [dim]model call, role {escape(str(request.get('role')))}[/] "
        f"[green]{escape(source)}[/] [dim]{tokens} tok[/] {_short(reply.get('text'))}"
    )


def _short(value: Any) -> str:
    if value is None:
        return ""
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    text = " ".join(text.split())
    cut = text if len(text) <= OUTPUT_CHARS else text[: OUTPUT_CHARS - 1] + "…"
    return f"[dim]→[/] {escape(cut)}"


def _node(node: str, recorded: list[Event], console: Console) -> int:
    mine = [e for e in recorded if e.path == node or e.data.get("node") == node]
    mine += [
        e for e in recorded if e.type in ("model_call", "command") and e.path.split("/")[0] == node
    ]
    if not mine:
        paths = sorted({e.path for e in recorded if e.type == "node_started"})
        near = ", ".join(p for p in paths if node in p)[:200] or ", ".join(paths[:8])
        raise UsageError(f"the run has no node {node!r} (nodes: {near})")
    seen: set[int] = set()
    for event in mine:
        if event.seq in seen:
            continue
        seen.add(event.seq)
        console.print(f"[bold]{escape(event.path)}[/] {event.type}", highlight=False)
        console.print_json(json.dumps(event.data, sort_keys=True, default=str))
    return 0
