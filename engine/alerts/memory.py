"""What the alert policy remembers across restarts, kept in the outbox's SQLite file.

* per-chat hourly budgets: the send times of the last hour (``budget``);
* the quiet-hours / digest queue: held one-line alerts (``held``) and each
  chat's last digest time (``digests``);
* duplicate suppression: every cooldown key's state (``dedup``).

The router writes these in the same transaction as the outbox rows they go
with (:meth:`engine.alerts.outbox.Outbox.batch`), so a killed actor restarts
with a chat's budget as spent, a cooldown still running and a pending digest
still due, never with half of a decision.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

from ..alerting import Dedup, KeyState
from .outbox import Outbox

__all__ = ["PolicyMemory", "ChatMemory", "DurableDedup", "BUDGET_WINDOW_S"]

BUDGET_WINDOW_S = 3600.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS budget (chat INTEGER NOT NULL, t REAL NOT NULL);
CREATE INDEX IF NOT EXISTS budget_chat ON budget(chat, t);
CREATE TABLE IF NOT EXISTS held (id INTEGER PRIMARY KEY AUTOINCREMENT, chat INTEGER NOT NULL, line TEXT NOT NULL,
                                 t REAL NOT NULL);
CREATE TABLE IF NOT EXISTS digests (chat INTEGER PRIMARY KEY, last REAL NOT NULL);
CREATE TABLE IF NOT EXISTS dedup (key TEXT PRIMARY KEY, last_sent REAL NOT NULL, level INTEGER NOT NULL,
                                  size REAL NOT NULL, suppressed INTEGER NOT NULL, price REAL NOT NULL);
"""


@dataclass
class ChatMemory:
    """One chat's stored policy state."""

    sent: list[float] = field(default_factory=list)   # send times within the budget window, oldest first
    held: list[str] = field(default_factory=list)     # digest lines, oldest first
    held_since: float = 0.0
    last_digest: float = 0.0


class PolicyMemory:
    """Reads and writes the policy tables on the outbox's connection (the router's thread)."""

    PRUNE_EVERY_S = 60.0    # budget entries past the window are deleted at most this often

    def __init__(self, outbox: Outbox):
        self.outbox = outbox
        self.db = outbox.db
        self.db.executescript(_SCHEMA)
        self._pruned = 0.0

    def _write(self, sql: str, args: tuple) -> None:
        self.outbox.begin_write()    # joins the router's batch for this signal
        self.db.execute(sql, args)

    # -- chat gate -----------------------------------------------------------
    def sent(self, chat: int, t: float) -> None:
        if t - self._pruned >= self.PRUNE_EVERY_S:
            self._write("DELETE FROM budget WHERE t<=?", (t - BUDGET_WINDOW_S,))
            self._pruned = t
        self._write("INSERT INTO budget (chat, t) VALUES (?, ?)", (chat, t))

    def held(self, chat: int, line: str, t: float) -> None:
        self._write("INSERT INTO held (chat, line, t) VALUES (?, ?, ?)", (chat, line, t))

    def digest_taken(self, chat: int, t: float) -> None:
        """The chat's held lines went into a digest at ``t``."""
        self._write("DELETE FROM held WHERE chat=?", (chat,))
        self._write("INSERT OR REPLACE INTO digests (chat, last) VALUES (?, ?)", (chat, t))

    def chats(self, now: float) -> dict[int, ChatMemory]:
        """Every chat's stored state as of ``now`` (budget entries older than the window left out)."""
        out: dict[int, ChatMemory] = {}
        for chat, t in self.db.execute("SELECT chat, t FROM budget WHERE t>? ORDER BY t", (now - BUDGET_WINDOW_S,)):
            out.setdefault(chat, ChatMemory()).sent.append(t)
        for chat, line, t in self.db.execute("SELECT chat, line, t FROM held ORDER BY id"):
            m = out.setdefault(chat, ChatMemory())
            if not m.held:
                m.held_since = t
            m.held.append(line)
        for chat, last in self.db.execute("SELECT chat, last FROM digests"):
            out.setdefault(chat, ChatMemory()).last_digest = last
        return out

    # -- duplicate suppression ----------------------------------------------
    def save_key(self, key: tuple, st: KeyState) -> None:
        self._write("INSERT OR REPLACE INTO dedup (key, last_sent, level, size, suppressed, price)"
                    " VALUES (?, ?, ?, ?, ?, ?)", (json.dumps(list(key)), st.last_sent, st.level, st.size, st.suppressed, st.price))

    def keys(self) -> dict[tuple, KeyState]:
        return {tuple(json.loads(k)): KeyState(last_sent, level, size, suppressed, price)
                for k, last_sent, level, size, suppressed, price in self.db.execute(
                    "SELECT key, last_sent, level, size, suppressed, price FROM dedup")}


class DurableDedup(Dedup):
    """:class:`engine.alerting.Dedup` whose cooldown keys are stored in a :class:`PolicyMemory` and reloaded."""

    def __init__(self, *args, memory: PolicyMemory | None = None, **kw):
        super().__init__(*args, **kw)
        self.memory = memory
        if memory is not None:
            self._state.update(memory.keys())

    def key_changed(self, key: tuple, st: KeyState) -> None:
        if self.memory is not None:
            self.memory.save_key(key, st)
