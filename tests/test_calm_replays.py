"""Calm replays: real captures of ordinary hours and calm synthetic minutes through the compute actor.

The bounds, and why:

* no cascade signal at any level and no market-wide cascade: none of these captures holds a
  liquidation stream, and the calm synthetic market has no cascades (its few random liquidations
  are far below ``cascade.min_count`` in 30 s);
* no open-interest, funding, correlation or volume signal: each needs minutes of its own history
  (15 min OI window, ten past volume windows, an hour-long correlation) or a move far beyond the
  configured fallbacks, which an ordinary few minutes do not have;
* whales: by construction the whale size is the 0.999 quantile of the asset's own trades once
  ``whales.min_trades`` are seen, so about one trade in a thousand is a whale; the bound is three
  times that plus the trades above the configured fallback before then (``bench/calm_rates.py``
  measured 37 whales in 21,313 Binance BTC trades of 2024-08-08, 12 in 10,701 of 2024-07-18/19);
* the risk score stays in its lowest band (below ``risk.bands[0]``).

``bench/calm_rates.py`` prints the full table (every capture, a synthetic hour); the ``soak`` variant
here asserts the same bounds on all of it.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import calm_rates as cr  # noqa: E402

from engine.config import Config  # noqa: E402
from engine.record import Kind  # noqa: E402

pytestmark = pytest.mark.playback

NEVER_ON_CALM = ("cascade", "market_cascade", "open_interest", "funding", "correlation", "volume")


def check_calm(r: cr.Result) -> None:
    for kind in NEVER_ON_CALM:
        assert r.counts.get(kind, 0) == 0, (r.label, kind, [s for s in r.signals if cr.kind_of(s) == kind][:3])
    cfg = Config().detectors
    trades = r.kinds.get(Kind.TRADE, 0)
    whales = r.counts.get("whale", 0)
    assert whales <= 3 * (1 - cfg.whales.whale_quantile) * trades + r.above_fallback, (r.label, whales, trades)
    top = Config().detectors.risk.bands[0]
    assert all(s.score < top for s in r.signals if cr.kind_of(s) == "risk"), r.label


def test_calm_binance_capture(shared_data):
    label, venue, files = cr.CAPTURES[0]
    r = cr.replay_capture(label, venue, [str(shared_data / f) for f in files])
    assert r.kinds[Kind.TRADE] == 2197 and r.assets == ["BTC"] and r.span_s > 90   # PROVENANCE.md §2
    assert r.kinds.get(Kind.MARK, 0) > 90   # the 2023 file carries markPrice@1s: funding is judged
    print(f"\n{label}: {r.counts} over {r.span_s:.0f} s")
    check_calm(r)


def test_calm_synthetic_minutes():
    r = cr.synthetic_calm(120.0)
    assert r.assets == ["BTC", "ETH", "SOL"] and r.span_s >= 119
    assert {Kind.TRADE, Kind.MARK, Kind.OPEN_INTEREST, Kind.BOOK_DEPTH} <= set(r.kinds)
    print(f"\nsynthetic calm: {r.counts} over {r.span_s:.0f} s")
    check_calm(r)


@pytest.mark.soak
def test_calm_every_capture_and_a_synthetic_hour(shared_data):
    for label, venue, files in cr.CAPTURES:
        check_calm(cr.replay_capture(label, venue, [str(shared_data / f) for f in files]))
    check_calm(cr.synthetic_calm(3600.0))
