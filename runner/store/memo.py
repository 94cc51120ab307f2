"""The memo table: replies of model calls by key, shared across nodes, branches and runs.

Reads go through the reading connection at once; writes are queued on the writer. Replies
stored by this process are also kept in memory, so that a call made before their commit
finds them.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from typing import Any

from runner.keys import CALL_FIELDS, CallKey
from runner.providers.base import ModelReply, Usage
from runner.store.journal import reply_json
from runner.store.writer import Json, Writer

PUT_SQL = (
    "INSERT OR REPLACE INTO memo (key, fields, reply, tokens, cost_usd, run_id, path, created_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)


def reply_from(data: dict[str, Any]) -> ModelReply:
    """A reply from its JSON object (``runner.store.journal.reply_json``)."""
    usage = data["usage"]
    return ModelReply(
        text=data["text"],
        model=data.get("model"),
        finish_reason=data.get("finish_reason"),
        usage=Usage(
            prompt_tokens=usage["prompt_tokens"],
            completion_tokens=usage["completion_tokens"],
            cached_prompt_tokens=usage.get("cached_prompt_tokens", 0),
            cost_usd=usage.get("cost_usd", 0.0),
            estimated=usage.get("estimated", False),
        ),
    )


class StoreMemo:
    """The memo of one state, for one run."""

    def __init__(self, conn: sqlite3.Connection, writer: Writer, run_id: str) -> None:
        self.conn = conn
        self.writer = writer
        self.run_id = run_id
        self._mine: dict[str, tuple[ModelReply, float]] = {}

    def get(self, key: str) -> tuple[ModelReply, float] | None:
        """The reply stored under ``key`` and what it cost, if any."""
        found = self._mine.get(key)
        if found is not None:
            return found
        row = self.conn.execute("SELECT reply, cost_usd FROM memo WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        return reply_from(json.loads(row[0])), row[1]

    def put(self, key: CallKey, reply: ModelReply, *, cost_usd: float, path: str) -> None:
        """Store a live reply under its key."""
        self._mine[key.digest] = (reply, cost_usd)
        usage = reply.usage
        self.writer.write(
            PUT_SQL,
            (
                key.digest,
                Json(list(key.fields)),
                Json(reply_json(reply)),
                usage.prompt_tokens + usage.completion_tokens,
                cost_usd,
                self.run_id,
                path,
                time.time(),
            ),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Entry:
    """One memo entry, as ``memo explain`` compares them."""

    key: str
    """Its key."""
    fields: dict[str, Any]
    """The fields its key covers, by name."""
    path: str | None
    """The node path that stored it."""
    run_id: str | None
    """The run that stored it."""
    created_at: float
    """When."""


def entries_before(conn: sqlite3.Connection, when: float, limit: int = 2000) -> list[Entry]:
    """The newest entries stored before ``when``, newest first."""
    rows = conn.execute(
        "SELECT key, fields, path, run_id, created_at FROM memo WHERE created_at < ?"
        " ORDER BY created_at DESC LIMIT ?",
        (when, limit),
    ).fetchall()
    return [
        Entry(
            key=key,
            fields=dict(zip(CALL_FIELDS, json.loads(fields), strict=True)),
            path=path,
            run_id=run_id,
            created_at=created,
        )
        for key, fields, path, run_id, created in rows
    ]


def size(conn: sqlite3.Connection) -> tuple[int, int, float]:
    """Entries in the memo, and the tokens and dollars they hold."""
    row = conn.execute(
        "SELECT COUNT(*), COALESCE(SUM(tokens), 0), COALESCE(SUM(cost_usd), 0) FROM memo"
    ).fetchone()
    return int(row[0]), int(row[1]), float(row[2])
