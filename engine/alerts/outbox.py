"""The durable outbox: every Telegram/webhook alert is a row in SQLite before any send is tried.

Rows move ``pending -> inflight -> sent`` (or ``failed``, ``expired``,
``superseded`` for an edit replaced by a newer one). A row left ``inflight``
by a killed process had an unknown outcome: :meth:`Outbox.recover` puts it
back to ``pending`` and counts it, because re-sending it may duplicate the
message (the only way a duplicate can happen). Each thread opens its own
:class:`Outbox` on the same file (WAL mode).
"""
from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Outbox", "Row", "outbox_path"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    sink TEXT NOT NULL,            -- telegram | webhook
    target TEXT NOT NULL,          -- chat id, or URL
    op TEXT NOT NULL,              -- send | edit
    live_key TEXT,                 -- live message this send creates or this edit rewrites
    body TEXT NOT NULL,
    parse_mode TEXT,               -- HTML, or NULL for plain text
    state TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    unknown INTEGER NOT NULL DEFAULT 0,   -- sends whose outcome was unknown (may have arrived)
    created REAL NOT NULL,
    not_before REAL NOT NULL,
    done_at REAL,
    message_id INTEGER,
    error TEXT
);
CREATE INDEX IF NOT EXISTS outbox_lane ON outbox(state, sink, target, id);
CREATE TABLE IF NOT EXISTS live (key TEXT, target TEXT, message_id INTEGER, PRIMARY KEY (key, target));
CREATE TABLE IF NOT EXISTS chats (old TEXT PRIMARY KEY, new TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value REAL NOT NULL);
CREATE TABLE IF NOT EXISTS pauses (target TEXT PRIMARY KEY, until REAL NOT NULL, length REAL NOT NULL);
"""


def outbox_path(state_dir: str | Path) -> Path:
    return Path(state_dir) / "alerts-outbox.sqlite3"


@dataclass(frozen=True)
class Row:
    id: int
    sink: str
    target: str
    op: str
    live_key: str | None
    body: str
    parse_mode: str | None
    attempts: int
    unknown: int
    created: float
    not_before: float


_ROW_COLS = "id, sink, target, op, live_key, body, parse_mode, attempts, unknown, created, not_before"


class _Batch:
    """The context manager behind :meth:`Outbox.batch` (a plain class: the router enters one per signal)."""

    __slots__ = ("db", "depth")

    def __init__(self, db: sqlite3.Connection):
        self.db = db
        self.depth = 0

    def __enter__(self) -> "_Batch":
        self.depth += 1
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        self.depth -= 1
        if self.depth == 0 and self.db.in_transaction:
            self.db.execute("ROLLBACK" if exc_type is not None else "COMMIT")
        return False


class Outbox:
    """One connection to the outbox file; see the module docstring."""

    def __init__(self, path: str | Path, clock=time.time):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.clock = clock
        self.db = sqlite3.connect(str(self.path), isolation_level=None, timeout=10.0, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")  # WAL: a committed row survives the process being killed
        self.db.executescript(_SCHEMA)
        self._batch = _Batch(self.db)

    def close(self) -> None:
        self.db.close()

    # -- writing -----------------------------------------------------------
    def batch(self) -> "_Batch":
        """``with outbox.batch():`` one transaction around the writes inside (an inner batch joins the outer).

        The router writes a signal's outbox rows and the policy state they change
        (budgets, digest lines, cooldown keys) in one batch, so a kill never keeps
        one without the other. The transaction opens at the first write
        (:meth:`begin_write`): a signal that writes nothing takes no lock."""
        return self._batch

    def begin_write(self) -> None:
        """Inside a batch: open its transaction (write lock first, then reads) unless open already."""
        if self._batch.depth and not self.db.in_transaction:
            self.db.execute("BEGIN IMMEDIATE")

    def enqueue(self, sink: str, target: str | int, body: str, op: str = "send", live_key: str | None = None,
                parse_mode: str | None = "HTML", not_before: float | None = None) -> int:
        """Store one message; an edit supersedes older pending edits of the same live message."""
        now = self.clock()
        with self.batch():
            self.begin_write()
            target = self.resolve(str(target))
            if op == "edit":
                self.db.execute("UPDATE outbox SET state='superseded', done_at=? WHERE state='pending' AND op='edit'"
                                " AND live_key=? AND target=?", (now, live_key, target))
            cur = self.db.execute(
                "INSERT INTO outbox (sink, target, op, live_key, body, parse_mode, created, not_before)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (sink, target, op, live_key, body, parse_mode, now, now if not_before is None else not_before))
            return cur.lastrowid

    def recover(self) -> int:
        """After a restart: rows left in flight go back to pending (outcome unknown); return how many."""
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            n = self.db.execute("UPDATE outbox SET state='pending', unknown=unknown+1 WHERE state='inflight'").rowcount
            self._bump("unknown_outcomes", n)
        return n

    def mark_inflight(self, row_id: int) -> None:
        self.db.execute("UPDATE outbox SET state='inflight', attempts=attempts+1 WHERE id=?", (row_id,))

    def mark_sent(self, row: Row, message_id: int | None = None) -> None:
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute("UPDATE outbox SET state='sent', done_at=?, message_id=?, error=NULL WHERE id=?",
                            (self.clock(), message_id, row.id))
            if row.op == "send" and row.live_key and message_id is not None:
                self.db.execute("INSERT OR REPLACE INTO live (key, target, message_id) VALUES (?, ?, ?)",
                                (row.live_key, row.target, message_id))

    def retry(self, row_id: int, not_before: float, error: str, unknown: bool = False,
              pauses: dict[str, tuple[float, float]] | None = None) -> None:
        """Back to pending, not before ``not_before``; ``unknown``: the failed attempt may have been delivered.

        ``pauses``: flood pauses (target -> wall-clock deadline, length in seconds) this failure
        started, stored in the same transaction (:mod:`.pauses`)."""
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute("UPDATE outbox SET state='pending', not_before=?, error=?, unknown=unknown+? WHERE id=?",
                            (not_before, error[:500], int(unknown), row_id))
            if unknown:
                self._bump("unknown_outcomes", 1)
            for target, (until, length) in (pauses or {}).items():
                self.db.execute("INSERT OR REPLACE INTO pauses (target, until, length) VALUES (?, ?, ?)",
                                (target, until, length))

    def fail(self, row_id: int, error: str, state: str = "failed") -> None:
        self.db.execute("UPDATE outbox SET state=?, done_at=?, error=? WHERE id=?",
                        (state, self.clock(), error[:500], row_id))

    def to_plain(self, row: Row, plain: str) -> None:
        """Replace the body by its plain-text version (Telegram rejected the markup); retry at once."""
        self.db.execute("UPDATE outbox SET state='pending', body=?, parse_mode=NULL WHERE id=?", (plain, row.id))

    def resend_live(self, row: Row) -> None:
        """The live message is gone (deleted): turn this edit into a send that creates a new one."""
        self.db.execute("UPDATE outbox SET state='pending', op='send' WHERE id=?", (row.id,))

    def migrate(self, old: str, new: str) -> int:
        """Chat ``old`` became ``new``: move pending rows and live messages, remember the mapping."""
        old, new = str(old), str(new)
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute("INSERT OR REPLACE INTO chats (old, new) VALUES (?, ?)", (old, new))
            self.db.execute("UPDATE chats SET new=? WHERE new=?", (new, old))
            n = self.db.execute("UPDATE outbox SET target=? WHERE target=? AND state IN ('pending', 'inflight')",
                                (new, old)).rowcount
            self.db.execute("UPDATE OR REPLACE live SET target=? WHERE target=?", (new, old))
            self._bump("migrations", 1)
        return n

    # -- reading -----------------------------------------------------------
    def resolve(self, target: str) -> str:
        """The current id of a chat that may have migrated."""
        r = self.db.execute("SELECT new FROM chats WHERE old=?", (str(target),)).fetchone()
        return r[0] if r else str(target)

    def lanes(self) -> list[tuple[str, str]]:
        """(sink, target) pairs with pending rows."""
        return [tuple(r) for r in self.db.execute(
            "SELECT DISTINCT sink, target FROM outbox WHERE state='pending'")]

    def next_row(self, sink: str, target: str) -> Row | None:
        """The oldest pending row of a lane (per-lane FIFO keeps a live message's send before its edits)."""
        r = self.db.execute(f"SELECT {_ROW_COLS} FROM outbox WHERE state='pending' AND sink=? AND target=?"
                            " ORDER BY id LIMIT 1", (sink, target)).fetchone()
        return Row(*r) if r else None

    def pauses(self) -> list[tuple[str, float, float]]:
        """Stored flood pauses ``(target, wall-clock deadline, length)``; ones already over are deleted first."""
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute("DELETE FROM pauses WHERE until <= ?", (self.clock(),))
            return [tuple(r) for r in self.db.execute("SELECT target, until, length FROM pauses")]

    def live_message(self, key: str, target: str) -> int | None:
        r = self.db.execute("SELECT message_id FROM live WHERE key=? AND target=?", (key, target)).fetchone()
        return r[0] if r else None

    def live_send_state(self, key: str, target: str) -> str | None:
        """State of the send that creates live message ``key`` in ``target`` (None if there is none)."""
        r = self.db.execute("SELECT state FROM outbox WHERE live_key=? AND target=? AND op='send'"
                            " ORDER BY id DESC LIMIT 1", (key, target)).fetchone()
        return r[0] if r else None

    def counts(self) -> dict[str, int]:
        """Rows per state."""
        return dict(self.db.execute("SELECT state, COUNT(*) FROM outbox GROUP BY state").fetchall())

    def rows(self, state: str | None = None) -> list[dict]:
        cur = self.db.execute("SELECT * FROM outbox" + (" WHERE state=?" if state else "") + " ORDER BY id",
                              (state,) if state else ())
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r)) for r in cur.fetchall()]

    def meta(self, key: str, default: float = 0.0) -> float:
        r = self.db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return r[0] if r else default

    def set_meta(self, key: str, value: float) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def _bump(self, key: str, n: int) -> None:
        if n:
            self.db.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE"
                            " SET value = value + excluded.value", (key, n))
