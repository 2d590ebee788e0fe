"""``undertow capture-stats``: run a venue's real parser over capture files and count what it makes.

One JSON line per file::

    {"file": .., "frames": .., "malformed": .., "unknown": ..,
     "events": {"trade": .., "liquidation": .., "book": .., "mark": .., "oi": ..},
     "notional_usd": {"trade": .., "liquidation": ..}}

``frames`` counts the frames received from the exchange over WebSocket
(client frames, connection lines and REST bodies are not parser input);
``book`` counts top-of-book records (depth-band records are not counted). Every symbol is
accepted: the parser's lookup gives each new symbol the next id.
"""
from __future__ import annotations

import json
import os
import sys
from typing import Iterable

from engine import venues
from engine.captures import CaptureFormatError, iter_capture
from engine.record import Flag, Kind
from engine.venues import Outcome

__all__ = ["file_stats", "main"]

_EVENT_NAMES = ("trade", "liquidation", "book", "mark", "oi")


def _event_name(kind: int) -> str | None:
    name = Kind.NAMES.get(kind)
    return name if name in _EVENT_NAMES else None


def file_stats(venue_name: str, path: str | os.PathLike) -> dict:
    """Parse every received frame of the capture at ``path`` with venue ``venue_name``'s parser."""
    venue = venues.load(venue_name)
    ids: dict[str, int] = {}
    parser = venue.Parser(lambda s: ids.setdefault(s, len(ids)), Flag.REPLAY)
    frames = malformed = unknown = 0
    events = dict.fromkeys(_EVENT_NAMES, 0)
    notional = {"trade": 0.0, "liquidation": 0.0}
    names = {k: _event_name(k) for k in Kind.NAMES}
    out: list = []
    for fr in iter_capture(path):
        if fr.direction != "recv":
            continue
        frames += 1
        out.clear()
        outcome, _ = parser.parse(fr.payload, fr.ts_ns, out)
        if outcome == Outcome.MALFORMED:
            malformed += 1
        elif outcome == Outcome.UNKNOWN:
            unknown += 1
        for r in out:
            name = names.get(r[0])
            if name is None:
                continue
            events[name] += 1
            if name in notional:
                notional[name] += r[9]
    return {"file": str(path), "frames": frames, "malformed": malformed, "unknown": unknown, "events": events,
            "notional_usd": {k: round(v, 2) for k, v in notional.items()}}


def main(venue_name: str, files: Iterable[str], out=None) -> int:
    """Print one JSON line per file; return 0, or 1 when a file could not be read (reported on stderr)."""
    out = out or sys.stdout
    if venue_name not in venues.VENUES:
        print(f"undertow: unknown venue {venue_name!r} (have {', '.join(venues.VENUES)})", file=sys.stderr)
        return 2
    code = 0
    for path in files:
        try:
            stats = file_stats(venue_name, path)
        except (OSError, EOFError, CaptureFormatError) as exc:
            print(f"undertow: {path}: {exc}", file=sys.stderr)
            code = 1
            continue
        out.write(json.dumps(stats) + "\n")
        out.flush()
    return code
