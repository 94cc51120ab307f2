"""The memo table: replies of model calls by key, shared across nodes, branches and runs.

Reads go through the reading connection at once; writes are queued on the writer. Replies
stored by this process are also kept in memory, so that a call made before their commit
finds them. A hit reads ahead: the replies of the entries the same earlier run stored next are
read with it, in two queries, since a run that hits one usually asks for the rest in the same
order (issue 13: a query and a decoded event per hit made a run from the memo no faster than
calling the mock).
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from typing import Any

from runner.keys import CallKey
from runner.providers.base import ModelReply
from runner.store.db import StoreError, translated
from runner.store.journal import RunJournal, key_fields, reply_from
from runner.store.stored_json import fast_value, stored_value
from runner.store.writer import Writer, insert

PUT = insert(
    "memo",
    ("slot", "key", "run_id", "seq", "tokens", "cost_usd", "path", "created_at"),
    replace=True,
)
"""A memo entry points at the model_call event holding its request and reply. Its row is
found by ``slot``, the key's first 60 bits as an integer: a table keyed by small integers takes
random inserts far more cheaply than one keyed by 64-character text. The full key is checked
on every read."""
FORGET_SQL = "DELETE FROM memo WHERE slot = ? AND key = ?"
"""An entry whose reply did not fit the output schema of the node that read it."""
KEYS_IN_MEMORY = 200_000
"""Up to this many memo entries, a run holds their keys in memory to find misses at once."""
READ_AHEAD = 256
"""Replies read ahead, from the entries the same run stored next, with a hit read from the
state."""
AHEAD_MOST = 4096
"""The most replies held read ahead; more, and the oldest are dropped."""
WHERE_SQL = "SELECT run_id, seq FROM memo WHERE slot = ? AND key = ?"
NEXT_KEYS_SQL = (
    "SELECT key FROM events WHERE run_id = ? AND seq >= ? AND type = 'model_call'"
    " AND key IS NOT NULL ORDER BY seq LIMIT ?"
)
GET_SQL = (
    "SELECT events.data, memo.cost_usd FROM memo JOIN events"
    " ON events.run_id = memo.run_id AND events.seq = memo.seq"
    " WHERE memo.slot = ? AND memo.key = ?"
)


def slot_of(key: str) -> int:
    """The row a memo key lives in: its first 60 bits (15 hex digits), a positive integer."""
    return int(key[:15], 16)


class StoreMemo:
    """The memo of one state, for one run, whose journal holds the replies it stores."""

    def __init__(self, conn: sqlite3.Connection, writer: Writer, journal: RunJournal) -> None:
        self.conn = conn
        self.writer = writer
        self.journal = journal
        self._mine: dict[str, tuple[ModelReply, float]] = {}
        self._ahead: dict[str, tuple[ModelReply, float]] = {}
        """Replies read ahead of the calls that will ask for them."""
        self._known: set[str] | None = None
        """Every key stored when the run started, when there are few enough to hold: a miss
        is then found without a query. Entries other runs store meanwhile are missed."""
        count = conn.execute("SELECT COUNT(*) FROM memo").fetchone()[0]
        if count <= KEYS_IN_MEMORY:
            self._known = {key for (key,) in conn.execute("SELECT key FROM memo")}

    def get(self, key: str) -> tuple[ModelReply, float] | None:
        """The reply stored under ``key`` and what it cost, if any."""
        try:
            return self._get(key)
        except (sqlite3.DatabaseError, ValueError) as exc:  # a damaged row, or state file
            raise translated(self.writer.directory, exc) from exc

    def _get(self, key: str) -> tuple[ModelReply, float] | None:
        found = self._mine.get(key)
        if found is not None:
            return found
        if self._known is not None and key not in self._known:
            return None
        found = self._ahead.pop(key, None)
        if found is not None:
            return found
        where = self.conn.execute(WHERE_SQL, (slot_of(key), key)).fetchone()
        if where is None:
            return None
        self._read_ahead(where[0], where[1])
        found = self._ahead.pop(key, None)
        if found is not None:
            return found
        row = self.conn.execute(GET_SQL, (slot_of(key), key)).fetchone()  # stored meanwhile
        if row is None:
            return None
        return reply_from(fast_value(row[0], f"the memo entry {key}")["reply"]), row[1]

    def _read_ahead(self, run_id: str, seq: int) -> None:
        """Read the replies of the entries that run ``run_id`` stored from its event ``seq``
        on, by their memo rows (an entry may since point at another run's reply)."""
        keys = [k for (k,) in self.conn.execute(NEXT_KEYS_SQL, (run_id, seq, READ_AHEAD))]
        if not keys:
            return
        slots = ", ".join("?" * len(keys))
        try:
            # Only the reply is read, extracted by SQLite from the event's JSON.
            rows = self.conn.execute(
                "SELECT memo.key, events.data -> '$.reply', memo.cost_usd FROM memo JOIN events"
                " ON events.run_id = memo.run_id AND events.seq = memo.seq"
                f" WHERE memo.slot IN ({slots})",
                [slot_of(k) for k in keys],
            ).fetchall()
        except sqlite3.OperationalError:
            return  # a damaged event among them: each is read whole, to say which and how
        if len(self._ahead) >= AHEAD_MOST:
            self._ahead.clear()
        wanted = set(keys)
        for key, data, cost in rows:
            if key in wanted and data is not None:
                self._ahead[key] = (reply_from(fast_value(data, f"the memo entry {key}")), cost)

    def put(self, key: CallKey, reply: ModelReply, *, cost_usd: float, path: str) -> None:
        """Store a live reply under its key (its model_call event is recorded just before)."""
        last = self.journal.last_call
        if last is None or last[0] != key.digest:
            raise StoreError(f"the call at {path} was not recorded, so the memo cannot hold it")
        seq = last[1]
        self._mine[key.digest] = (reply, cost_usd)
        usage = reply.usage
        self.writer.append(
            PUT,
            (
                slot_of(key.digest),
                key.digest,
                self.journal.run_id,
                seq,
                usage.prompt_tokens + usage.completion_tokens,
                cost_usd,
                path,
                time.time(),
            ),
        )

    def forget(self, key: str) -> None:
        """Drop the entry under ``key``: its reply did not fit the output schema of the node that
        read it, so a later call asks the model again instead of failing the same way."""
        self._mine.pop(key, None)
        self._ahead.pop(key, None)
        if self._known is not None:
            self._known.discard(key)
        self.writer.write(FORGET_SQL, (slot_of(key), key))  # after the group's entries


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
        "SELECT memo.key, events.data, memo.path, memo.run_id, memo.created_at FROM memo"
        " JOIN events ON events.run_id = memo.run_id AND events.seq = memo.seq"
        " WHERE memo.created_at < ? ORDER BY memo.created_at DESC LIMIT ?",
        (when, limit),
    ).fetchall()
    entries = []
    for key, data, path, run_id, created in rows:
        fields = key_fields(stored_value(data, f"the memo entry {key}")["request"])
        if fields is not None:
            entries.append(
                Entry(key=key, fields=fields, path=path, run_id=run_id, created_at=created)
            )
    return entries


def size(conn: sqlite3.Connection) -> tuple[int, int, float]:
    """Entries in the memo, and the tokens and dollars they hold."""
    row = conn.execute(
        "SELECT COUNT(*), COALESCE(SUM(tokens), 0), COALESCE(SUM(cost_usd), 0) FROM memo"
    ).fetchone()
    return int(row[0]), int(row[1]), float(row[2])
