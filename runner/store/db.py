"""The state database: where it lives, how it is opened, and its schema with migrations.

One file, ``state.db``, under ``.branchleaf/`` (or ``--state DIR``). Several processes use it
at once (a run, a ``watch`` of it, a second run), so it is opened in WAL mode, where readers
never block the writer, with a busy timeout, and every write transaction starts with
``BEGIN IMMEDIATE``: a transaction that only later asks to write can fail at once with
"database is locked", whatever the timeout. ``synchronous=NORMAL`` makes a commit safe from a
killed process (SIGKILL included) without an fsync per commit.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

from runner.errors import RunnerError, UsageError

STATE_DIR = ".branchleaf"
"""The default state directory, in the working directory."""
DB_FILE = "state.db"
BUSY_TIMEOUT_MS = 30_000
CHECKPOINT_PAGES = 1_000
"""WAL pages (4 MiB) after which a commit copies them into the database. Nearly every commit is
the writer process's, so the copying happens there, a few MiB at a time, while the run goes on;
left to the end, closing the state would copy a whole 10,000-leaf run's 20 MiB while the run
waits (50 ms, where this leaves 4)."""
CACHE_KIB = 32_768
"""Page cache per connection."""

PRAGMAS = (
    f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}",
    "PRAGMA journal_mode = WAL",
    "PRAGMA synchronous = NORMAL",
    f"PRAGMA wal_autocheckpoint = {CHECKPOINT_PAGES}",
    f"PRAGMA cache_size = -{CACHE_KIB}",
)
"""How every connection to the state is set up."""

SCHEMA_VERSION = 2
"""The schema this version writes; older databases are migrated when opened."""

MIGRATIONS: dict[int, str] = {
    1: """
    CREATE TABLE runs (
        id TEXT PRIMARY KEY,
        workflow TEXT NOT NULL,
        workflow_hash TEXT NOT NULL,
        source TEXT,
        document TEXT NOT NULL,
        inputs TEXT NOT NULL,
        env TEXT NOT NULL DEFAULT '{}',
        config TEXT NOT NULL,
        providers TEXT NOT NULL,
        mode TEXT NOT NULL,
        parent TEXT,
        status TEXT NOT NULL,
        reason TEXT,
        pid INTEGER,
        host TEXT,
        argv TEXT,
        started_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        finished_at REAL,
        done INTEGER NOT NULL DEFAULT 0,
        total INTEGER NOT NULL DEFAULT 0,
        failed INTEGER NOT NULL DEFAULT 0,
        calls INTEGER NOT NULL DEFAULT 0,
        tokens INTEGER NOT NULL DEFAULT 0,
        cost_usd REAL NOT NULL DEFAULT 0,
        memo_hits INTEGER NOT NULL DEFAULT 0,
        memo_misses INTEGER NOT NULL DEFAULT 0,
        saved_tokens INTEGER NOT NULL DEFAULT 0,
        saved_usd REAL NOT NULL DEFAULT 0,
        output TEXT,
        tests TEXT,
        cancel_requested INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX runs_by_start ON runs (started_at);
    CREATE TABLE events (
        run_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        position TEXT NOT NULL,
        path TEXT NOT NULL,
        type TEXT NOT NULL,
        key TEXT,
        data TEXT NOT NULL,
        at REAL NOT NULL,
        PRIMARY KEY (run_id, seq)
    ) WITHOUT ROWID;
    CREATE TABLE memo (
        slot INTEGER PRIMARY KEY,
        key TEXT NOT NULL,
        run_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        tokens INTEGER NOT NULL,
        cost_usd REAL NOT NULL,
        path TEXT,
        created_at REAL NOT NULL
    );
    CREATE INDEX memo_by_time ON memo (created_at);
    """,
    # The overlay lessons a run applied (JSON), so that its replay applies the same ones.
    2: """
    ALTER TABLE runs ADD COLUMN overlay TEXT
    """,
}
"""Version -> the DDL that brings the previous version to it."""


class StoreError(RunnerError):
    """The state database cannot be opened, read or written."""

    exit_code = 3


class DamagedRow(ValueError):
    """A stored row that decodes, but not to what was written there."""


class NotInState(StoreError):
    """What was asked for is not in the state (no state yet, no such run): a usage error."""

    exit_code = 2


_DAMAGED = {11, 26}
"""SQLite's primary result codes for a file that is not (or no longer) a sound database:
SQLITE_CORRUPT and SQLITE_NOTADB."""
_FULL = 13
"""SQLITE_FULL."""
_BUSY = {5, 6}
"""SQLITE_BUSY and SQLITE_LOCKED."""


def damaged(directory: Path, why: object) -> StoreError:
    """The error for a state whose file or rows cannot be read back."""
    return StoreError(
        f"the state in {directory} is damaged ({why}): move {directory} aside to start a new "
        "state there, and bring back runs exported before with `branchleaf trace import FILE`"
    )


def translated(directory: Path, exc: sqlite3.Error | ValueError) -> StoreError:
    """One sentence for a failure of the state database, by what the user can do about it."""
    if isinstance(exc, DamagedRow):
        return damaged(directory, str(exc))
    if isinstance(exc, ValueError):  # a row whose JSON does not decode
        return damaged(directory, "a stored row is not valid JSON")
    code = getattr(exc, "sqlite_errorcode", None)
    primary = code & 0xFF if isinstance(code, int) else None
    if primary in _DAMAGED:
        return damaged(directory, exc)
    if primary == _FULL:
        return StoreError(
            f"the state database in {directory} cannot grow: the disk is full; free some "
            "space and run the command again"
        )
    if primary in _BUSY:
        return StoreError(
            f"the state database in {directory} stayed locked by another process for "
            f"{BUSY_TIMEOUT_MS // 1000} s: run the command again once it is done"
        )
    return StoreError(f"cannot use the state database in {directory}: {exc}")


def state_dir(given: str | None) -> Path:
    """The state directory: ``--state DIR``, else ``.branchleaf`` in the working directory."""
    return Path(given) if given else Path(STATE_DIR)


def connect(directory: Path, *, create: bool = True) -> sqlite3.Connection:
    """An open, migrated connection to the state in ``directory``.

    ``create=False`` raises StoreError when there is no state yet, rather than making one.
    """
    path = directory / DB_FILE
    if not path.exists():
        if not create:
            raise NotInState(
                f"there is no Branchleaf state in {directory}: run a workflow first, "
                "or name the state directory with --state DIR"
            )
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except FileExistsError as exc:
            raise UsageError(
                f"cannot make the state directory {directory}: a file of that name is there; "
                "name another with --state DIR"
            ) from exc
        except OSError as exc:
            raise UsageError(
                f"cannot make the state directory {directory}: {exc.strerror or exc}; "
                "name another with --state DIR"
            ) from exc
    try:
        conn = sqlite3.connect(
            path,
            timeout=BUSY_TIMEOUT_MS / 1000,
            isolation_level=None,
        )
    except sqlite3.Error as exc:
        raise StoreError(
            f"cannot open the state database {path}: {exc}; check that it is a file this user "
            "may read and write, or name another state with --state DIR"
        ) from exc
    try:
        for pragma in PRAGMAS:
            conn.execute(pragma)
        _migrate(conn, path)
    except sqlite3.Error as exc:
        conn.close()
        raise translated(directory, exc) from exc
    except StoreError:
        conn.close()
        raise
    return conn


@contextmanager
def opened(directory: Path, *, create: bool = True) -> Iterator[sqlite3.Connection]:
    """:func:`connect`, closed at the end of the block; a database error or a stored row that
    does not decode, raised in the block, becomes one StoreError saying what to do."""
    with closing(connect(directory, create=create)) as conn:
        try:
            yield conn
        except sqlite3.ProgrammingError:
            raise  # a statement of ours that is wrong: a bug, not the state's fault
        except (sqlite3.DatabaseError, json.JSONDecodeError, DamagedRow) as exc:
            raise translated(directory, exc) from exc
        except RecursionError:
            # Rows are decoded with a bound (``runner.store.stored_json``); a value just under
            # it can still exhaust the stack when it is walked again, to be printed or hashed.
            raise damaged(directory, "a stored value nests too deeply to be used") from None


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """A write transaction taken at once (``BEGIN IMMEDIATE``), committed or rolled back."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _migrate(conn: sqlite3.Connection, path: Path) -> None:
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version == SCHEMA_VERSION:
        _check_layout(conn, path)
        return
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"the state database {path} was written by a newer Branchleaf (schema {version}, "
            f"this one knows {SCHEMA_VERSION}): upgrade Branchleaf, or use another --state DIR"
        )
    with transaction(conn):
        # Read again inside the transaction: another process may have migrated meanwhile.
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        for target in range(version + 1, SCHEMA_VERSION + 1):
            for statement in MIGRATIONS[target].split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {target}")


def _check_layout(conn: sqlite3.Connection, path: Path) -> None:
    """Refuse, with a way out, a state whose tables are not those of its schema version (one
    written by a development build before the version was released)."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(runs)")}
    memo = {row[1] for row in conn.execute("PRAGMA table_info(memo)")}
    if not {"env", "cancel_requested", "overlay"} <= columns or "slot" not in memo:
        raise StoreError(
            f"the state database {path} has an older layout of schema {SCHEMA_VERSION}, "
            "written by a development build: move it away (or delete it) to start a new state"
        )
