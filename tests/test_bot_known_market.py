"""A known market for the bot and dashboard tests: registry, state table rows and two days of trades."""
from __future__ import annotations

from collections import deque

import numpy as np

from engine.bot.commands import BotContext
from engine.bot.history import History
from engine.bot.market import MarketView
from engine.bot.prefs import Prefs
from engine.config import Config
from engine.instruments import Market, Registry, registry_segment
from engine.kernels import columns as C
from engine.record import Flag, Kind, Side, Venue, empty_records
from engine.state import StateTable

NOW_S = 1_767_225_600.0 + 13 * 3600 + 7 * 60 + 30   # 2026-01-01 13:07:30 UTC (a Thursday)
NOW_NS = int(NOW_S * 1e9)
MIN_NS = 60_000_000_000


class KnownMarket:
    """BTC on binance + bybit (perps), ETH on binance; BTC rose from 40,000 to 50,000 over the last day."""

    def __init__(self, namespace: str, tmp_path):
        self.registry = Registry.open(registry_segment(namespace), 64, 16)
        self.table = StateTable.open(namespace, 64, 16)
        self.table.set_windows([1.0, 5.0], [60.0], 30.0)
        r = self.registry
        self.btc_bn = r.add(Venue.BINANCE, "BTCUSDT", "BTC")
        self.btc_by = r.add(Venue.BYBIT, "BTCUSDT", "BTC")
        self.eth_bn = r.add(Venue.BINANCE, "ETHUSDT", "ETH")
        self.btc_inv = r.add(Venue.BINANCE, "BTCUSD_PERP", "BTC", market=Market.PERP_INVERSE, quote="USD")
        rows = np.zeros((64, C.NCOL))
        for iid, px, oi, funding in ((self.btc_bn, 50_000.0, 1_000.0, 0.0001), (self.btc_by, 50_010.0, 600.0, -0.0002),
                                     (self.eth_bn, 3_000.0, 20_000.0, 0.00005), (self.btc_inv, 50_000.0, 400.0, 0.0001)):
            rows[iid, C.NOW_TS] = NOW_NS - 2_000_000_000
            rows[iid, C.PRICE] = px
            rows[iid, C.MARK] = px
            rows[iid, C.FUNDING] = funding
            rows[iid, C.OI] = oi
            rows[iid, C.OI_USD] = oi * px
        self.table.write("i", np.array([self.btc_bn, self.btc_by, self.eth_bn, self.btc_inv]), rows)
        arow = np.zeros((16, C.NCOL))
        btc = r.asset_id("BTC")
        arow[btc, C.NOW_TS] = NOW_NS
        arow[btc, C.PRICE] = 50_000.0
        arow[btc, C.SCORE] = 5.5
        arow[btc, C.LEVEL] = 2
        arow[btc, C.F_VELOCITY], arow[btc, C.F_ACCEL], arow[btc, C.F_REGIME] = 2.5, 2.0, 0.5
        arow[btc, C.CASCADE_SUMS:C.CASCADE_SUMS + 4] = (7, 2, 1_500_000.0, 200_000.0)
        self.table.write("a", np.array([btc]), arow)
        self.history = History(candle_minutes=3000)
        self.history.ingest(self._trades(), self.registry)
        self.history.ingest(self._liquidations(), self.registry)
        # OI 24 h and 15 min ago: 900 / 500 and 990 / 590 BTC
        for ago, bn, by in ((86400, 900.0, 500.0), (900, 990.0, 590.0)):
            for key, oi in ((("binance", "BTCUSDT"), bn), (("bybit", "BTCUSDT"), by), (("binance", "BTCUSD_PERP"), 400.0)):
                self.history.oi.setdefault(key, deque()).append((NOW_NS - ago * 10**9, oi, oi * 50_000))
        self.prefs = Prefs(tmp_path / "prefs.json")
        self.actors = [{"name": "feed:binance", "pid": 1, "state": 2, "restarts": 0, "heartbeat_age_s": 0.1,
                        "started_ns": NOW_NS - 3600 * 10**9, "counters": {"records": 12345, "lost": 0}}]

    def _trades(self) -> np.ndarray:
        """One BTC trade a minute on binance for 2 days (40,000 -> 50,000 over the last 24 h), taker buys in
        the last 15 minutes and sells before; volume 1 BTC a minute except 15 BTC a minute in the last closed
        15-minute candle. ETH: flat 3,000, 10 ETH a minute, alternating sides."""
        n = 2 * 1440
        recs = empty_records(2 * n)
        start = (NOW_NS // MIN_NS) * MIN_NS - (n - 1) * MIN_NS
        spike_from = (NOW_NS // (15 * MIN_NS)) * 15 * MIN_NS - 15 * MIN_NS
        for k in range(n):
            ts = start + k * MIN_NS + 1
            mins_ago = (NOW_NS - ts) / MIN_NS
            px = 40_000.0 if mins_ago >= 1440 else 40_000.0 + 10_000.0 * (1440 - mins_ago) / 1440
            px = 50_000.0 if k == n - 1 else px
            qty = 15.0 if spike_from <= ts < spike_from + 15 * MIN_NS else 1.0
            side = Side.BUY if mins_ago < 15 else Side.SELL
            recs[2 * k] = (Kind.TRADE, Venue.BINANCE, side, 0, self.btc_bn, ts, ts, px, qty, px * qty, 0, 0)
            recs[2 * k + 1] = (Kind.TRADE, Venue.BINANCE, Side.BUY if k % 2 else Side.SELL, 0, self.eth_bn, ts, ts,
                               3_000.0, 10.0, 30_000.0, 0, 0)
        return recs

    def _liquidations(self) -> np.ndarray:
        recs = empty_records(3)
        for k, (iid, venue, side, usd, flags) in enumerate((
                (self.btc_bn, Venue.BINANCE, Side.LONG, 125_000.0, Flag.CAPPED),
                (self.btc_by, Venue.BYBIT, Side.SHORT, 60_000.0, 0),
                (self.eth_bn, Venue.BINANCE, Side.LONG, 30_000.0, Flag.CAPPED))):
            ts = NOW_NS - (k + 1) * 30 * 10**9
            recs[k] = (Kind.LIQUIDATION, venue, side, flags, iid, ts, ts, 50_000.0, usd / 50_000.0, usd, 0, 0)
        return recs

    def context(self, chat_id: int = 42, cfg: Config | None = None) -> BotContext:
        return BotContext(MarketView(self.registry, self.table), self.history, self.prefs, cfg or Config(),
                          actors=lambda: self.actors, now=lambda: NOW_S, chat_id=chat_id)

    def close(self) -> None:
        self.table.close()
        self.registry.close()
