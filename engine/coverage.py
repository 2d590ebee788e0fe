"""Per-venue coverage from the feed actors' counters, as ``coverage`` signals and honest liquidation totals.

Each feed publishes its counters in the actor table (:mod:`engine.actor_table`):
frames and outcomes, events by kind, reconnects, gaps, book resyncs, the
connected share of time, and for capped liquidation streams (Binance's
1/symbol/s ``forceOrder``, OKX) the 1 s slots with a liquidation and how many
of them directly followed the previous slot of the same symbol (saturated).

A capped slot may hide liquidations. ``missed_high`` is the compute actors'
estimate (:mod:`engine.hidden_liquidations`: the uncapped venues' liquidations
of the same asset in the interval each shown record stands for, scaled by the
venue's share of open interest), with its USD in ``missed_usd``. Without it
(no compute row, e.g. before the first counters) the fallback takes each
saturated slot to hide the uncapped venues' average liquidations per busy
(symbol, 1 s) slot minus the one it showed; that average is taken over calm
and busy seconds alike, so it undercounts in cascades. ``missed_low`` is 0: a
capped total is a lower bound, never more.
"""
from __future__ import annotations

import time
from typing import Iterable

import numpy as np

from .kernels import columns as C
from .record import venue_id
from .signals import Coverage

__all__ = ["coverage_signals", "uncapped_rate", "hidden_estimates", "coverage_rows"]


def _c(row: dict, key: str) -> float:
    return float(row.get(key, 0.0))


def uncapped_rate(feeds: dict[str, dict]) -> float | None:
    """Liquidations per busy (symbol, second) slot on venues without a cap, or None when none has any."""
    liqs = slots = 0.0
    for c in feeds.values():
        if _c(c, "capped_liquidations") == 0 and _c(c, "liq_slots") > 0:
            liqs += _c(c, "events_liquidation")
            slots += _c(c, "liq_slots")
    return liqs / slots if slots else None


def coverage_signals(rows: Iterable[dict], no_liquidations: Iterable[str] = ()) -> list[Coverage]:
    """One signal per feed actor row (``{"name": "feed:<venue>", "counters": {...}}``) of the actor table.

    ``no_liquidations``: venues without a public liquidation stream (their totals are reported as 0 with
    ``liquidations_available`` False, never inferred).
    """
    rows = list(rows)
    feeds = {r["name"].split(":", 1)[1]: r.get("counters", {}) for r in rows if r["name"].startswith("feed:")}
    hidden = hidden_estimates(rows)
    rate = uncapped_rate(feeds)
    blind = set(no_liquidations)
    now = time.time_ns()
    out = []
    for venue, c in sorted(feeds.items()):
        events = {k[len("events_"):]: int(v) for k, v in c.items() if k.startswith("events_")}
        capped = _c(c, "capped_liquidations") > 0
        saturated = int(_c(c, "saturated_slots"))
        missed_usd = 0.0
        if capped and venue in hidden:
            missed, missed_usd = hidden[venue]
        else:
            missed = saturated * max(0.0, rate - 1.0) if (capped and rate is not None) else 0.0
        out.append(Coverage(
            asset="*", venue=venue, ts_exchange=now, ts_recv=now, ts_computed=now,
            connected_share=round(_c(c, "connected_share"), 4), frames=int(_c(c, "frames")), events=events,
            malformed=int(_c(c, "malformed")), unknown=int(_c(c, "unknown")), gaps=int(_c(c, "gaps")),
            book_resyncs=int(_c(c, "book_resyncs")), reconnects=int(_c(c, "reconnects")),
            liquidations=events.get("liquidation", 0), liquidations_available=venue not in blind, capped=capped,
            saturated_slots=saturated, saturation_share=round(_c(c, "saturation_share"), 4),
            missed_low=0.0, missed_high=round(missed, 1), missed_usd=round(missed_usd, 0)))
    return out


def hidden_estimates(rows: Iterable[dict]) -> dict[str, tuple[float, float]]:
    """Venue -> (hidden liquidations, hidden USD) summed over the compute actors' counters."""
    out: dict[str, list[float]] = {}
    for r in rows:
        if not r["name"].startswith("compute"):
            continue
        for k, v in r.get("counters", {}).items():
            for prefix, i in (("hidden_liquidations:", 0), ("hidden_usd:", 1)):
                if k.startswith(prefix):
                    out.setdefault(k[len(prefix):], [0.0, 0.0])[i] += float(v)
    return {v: (c, u) for v, (c, u) in out.items()}


def coverage_rows(signals: Iterable[Coverage]) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(venue ids, rows, unknown venue names): the signals' figures as venue rows of the state table.

    ``rows`` is ``VENUE_ROWS x NCOL`` in the layout of ``columns.COVERAGE_COLUMNS`` (``events`` summed over
    kinds, booleans as 0/1, ``ts`` = ``ts_computed``); a venue without an id (or beyond the rows) is named in
    the third item and left out.
    """
    rows = np.zeros((C.VENUE_ROWS, C.NCOL))
    ids, unknown = [], []
    for s in signals:
        try:
            vid = venue_id(s.venue)
        except KeyError:
            vid = -1
        if not 0 <= vid < C.VENUE_ROWS:
            unknown.append(s.venue)
            continue
        row = rows[vid]
        for name, k in C.COVERAGE_COLUMNS.items():
            row[k] = float(s.ts_computed if name == "ts" else sum(s.events.values()) if name == "events"
                           else getattr(s, name))
        ids.append(vid)
    return np.array(ids, dtype=np.int64), rows, unknown
