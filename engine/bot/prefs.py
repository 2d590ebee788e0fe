"""Per-chat alert preferences set by bot commands: on/off, mutes, snooze, subscriptions.

Stored as one JSON file (written atomically) in the state directory, so they
survive restarts and the alert actor can honour them with :meth:`Prefs.allows`.
"""
from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

__all__ = ["Prefs", "parse_duration", "prefs_path", "SUBSCRIBE_KINDS"]

SUBSCRIBE_KINDS = ("cascade", "liquidation", "volatility", "oi", "funding", "risk")
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
MAX_DURATION_S = 30 * 86400


def parse_duration(text: str) -> float | None:
    """Seconds of ``30m``, ``2h``, ``1d``, ``90s`` (at most 30 days), or None."""
    m = _DURATION.match(text.strip().lower())
    if not m:
        return None
    s = float(m.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]
    return s if 0 < s <= MAX_DURATION_S else None


def prefs_path(state_dir: str | os.PathLike) -> Path:
    """Where the bot keeps the chats' preferences (beside the alert outbox, in the alerts' state directory)."""
    return Path(state_dir) / "bot-prefs.json"


class Prefs:
    """Chat id -> {"alerts": bool, "mutes": {asset: until}, "snooze": until, "subs": [...]}."""

    def __init__(self, path: str | os.PathLike | None, default_alerts: bool = True):
        self.path = Path(path) if path else None
        self.default_alerts = default_alerts
        self.chats: dict[str, dict] = {}
        if self.path is not None and self.path.exists():
            try:
                self.chats = json.loads(self.path.read_text())
            except (OSError, json.JSONDecodeError):
                self.chats = {}

    def chat(self, chat_id: int) -> dict:
        c = self.chats.setdefault(str(chat_id), {})
        c.setdefault("alerts", self.default_alerts)
        c.setdefault("mutes", {})
        c.setdefault("snooze", 0.0)
        c.setdefault("subs", [])
        return c

    def save(self) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.chats, sort_keys=True))
        os.chmod(tmp, 0o600)
        tmp.replace(self.path)

    def update(self, chat_id: int, **fields) -> dict:
        c = self.chat(chat_id)
        c.update(fields)
        self.save()
        return c

    def allows(self, chat_id: int, kind: str, asset: str, now: float | None = None) -> bool:
        """Whether an alert of ``kind`` for ``asset`` may go to ``chat_id`` now."""
        now = time.time() if now is None else now
        c = self.chat(chat_id)
        if not c["alerts"] or c["snooze"] > now or c["mutes"].get(asset, 0.0) > now:
            return False
        subs = c["subs"]
        return not subs or kind in subs or asset in subs


class PrefsView:
    """Read-only :meth:`Prefs.allows` for another process (the alert actor): reloads the file when it changes."""

    def __init__(self, path: str | os.PathLike, default_alerts: bool = True):
        self.path = Path(path)
        self.default_alerts = default_alerts
        self._stamp: int | None = None
        self._prefs = Prefs(None, default_alerts)

    def __call__(self, chat_id: int, kind: str, asset: str) -> bool:
        try:
            stamp = self.path.stat().st_mtime_ns
        except FileNotFoundError:
            stamp = 0
        if stamp != self._stamp:
            self._stamp = stamp
            self._prefs = Prefs(self.path if stamp else None, self.default_alerts)
        return self._prefs.allows(chat_id, kind, asset)
