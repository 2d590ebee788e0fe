"""Issue 5: minutes without a taker buy/sell split (non-Binance klines) are unknown in delta/CVD, not zero."""
from __future__ import annotations

import numpy as np
import pytest

from engine.bot import analytics as A
from engine.bot.candles import (BUY, MINUTE_MS, MINUTES, SELL, SPLIT, V, CandleStore, aggregate,
                                binance_klines_to_candles, split_coverage, venue_klines_to_candles)
from engine.bot.commands import dispatch, parse
from engine.record import Venue
from tests.test_bot_known_market import NOW_S, KnownMarket

NOW_MS = int(NOW_S * 1000)
MIN_NS = MINUTE_MS * 1_000_000
T0 = (NOW_MS // MINUTE_MS - 120) * MINUTE_MS   # two hours before now, on a minute


def _kline_rows(start_ms: int, minutes: int, px: float = 100.0, vol: float = 5.0) -> list[tuple]:
    """``parse_klines`` rows: (open ms, O, H, L, C, base volume, quote volume, trades)."""
    return [(start_ms + k * MINUTE_MS, px, px + 1, px - 1, px, vol, vol * px, 7) for k in range(minutes)]


def _trades(store: CandleStore, key, start_ms: int, minutes: int, side: float, qty: float = 2.0, px=100.0):
    ts = (start_ms + np.arange(minutes) * MINUTE_MS) * 1_000_000 + 1
    n = len(ts)
    store.add_trades(key, ts, np.full(n, px), np.full(n, qty), np.full(n, side), np.full(n, qty * px))


def test_each_minute_says_whether_its_taker_split_is_known():
    store = CandleStore(600)
    key = ("SOL", "perp")
    assert store.load(key, venue_klines_to_candles(_kline_rows(T0, 3))) == 3
    binance = binance_klines_to_candles([[T0 + 3 * MINUTE_MS, "1", "2", "0.5", "1.5", "10", 0, "15", 4, "6", "9", "0"]])
    assert store.load(key, binance) == 1
    _trades(store, key, T0 + 4 * MINUTE_MS, 2, side=1.0)
    c = store.one_minute(key)
    assert c[:, SPLIT].tolist() == [0, 0, 0, 1, 1, 1] and c[:, MINUTES].tolist() == [1] * 6
    assert c[3, BUY] == 6.0 and c[3, SELL] == 4.0           # Binance's taker-buy volume splits its minute
    assert (c[:3, BUY] == 0).all() and (c[:3, SELL] == 0).all()
    assert split_coverage(c) == (3, 6)
    five = aggregate(c, 5)                                  # minutes 0-4 (by UTC multiple) and the rest
    assert split_coverage(five) == (3, 6) and five[:, MINUTES].sum() == 6
    assert five[:, SPLIT].tolist() == [float(k) for k in _split_per_bucket(c, 5)]


def _split_per_bucket(c, tf):
    b = (c[:, 0] // (tf * MINUTE_MS)).astype(int)
    return [int(c[b == x, SPLIT].sum()) for x in sorted(set(b.tolist()))]


def test_trades_into_a_kline_minute_without_a_split_add_volume_not_a_partial_split():
    store = CandleStore(600)
    key = ("SOL", "perp")
    store.load(key, venue_klines_to_candles(_kline_rows(T0, 1)))
    _trades(store, key, T0, 1, side=1.0, qty=3.0)
    row = store.one_minute(key)[0]
    assert row[V] == 8.0 and row[SPLIT] == 0 and row[BUY] == 0 and row[SELL] == 0


def test_cvd_leaves_out_candles_without_a_split_and_says_how_many_minutes_it_used():
    store = CandleStore(600)
    key = ("SOL", "perp")
    t0 = T0 - T0 % (15 * MINUTE_MS)
    store.load(key, venue_klines_to_candles(_kline_rows(t0, 60)))      # first hour: klines only
    _trades(store, key, t0 + 60 * MINUTE_MS, 30, side=1.0)             # then 30 min of taker buys
    _trades(store, key, t0 + 90 * MINUTE_MS, 30, side=-1.0, qty=1.0)   # and 30 of smaller taker sells
    c = store.candles(key, 15)
    r = A.cvd(c, 15)
    only_trades = A.cvd(c[c[:, SPLIT] > 0], 15)
    assert (r.split_minutes, r.minutes) == (60, 120)
    assert (r.current, r.change, r.trend, r.candles) == (only_trades.current, only_trades.change,
                                                         only_trades.trend, 4)
    assert r.current == pytest.approx(60.0 - 30.0)
    assert A.split_note(c) == " (from 60 of 120 min)"
    assert A.cvd(store.candles(key, 15, since_ms=0)[:4], 15) is None       # klines alone: no curve at all
    store2 = CandleStore(600)
    _trades(store2, key, T0, 30, side=1.0)
    assert A.split_note(store2.candles(key, 15)) == ""


# -- the commands ------------------------------------------------------------------------------------
@pytest.fixture
def market(namespace, tmp_path):
    m = KnownMarket(namespace, tmp_path)
    m.registry.add(Venue.BYBIT, "SOLUSDT", "SOL")      # an asset Binance does not list: bootstrapped from Bybit
    yield m
    m.close()


def ask(market, text: str) -> str:
    name, args = parse(text)
    return dispatch(market.context(), name, args).text


def _sol(market, kline_minutes: int, trade_minutes: int) -> None:
    """SOL: ``kline_minutes`` of Bybit klines, then ``trade_minutes`` of live taker buys up to now."""
    now_min = NOW_MS // MINUTE_MS * MINUTE_MS
    first = now_min - (kline_minutes + trade_minutes - 1) * MINUTE_MS
    store = market.history.candles
    store.load(("SOL", "perp"), venue_klines_to_candles(_kline_rows(first, kline_minutes)))
    if trade_minutes:
        _trades(store, ("SOL", "perp"), first + kline_minutes * MINUTE_MS, trade_minutes, side=1.0)


def test_cvd_of_klines_without_a_split_is_na_not_zero(market):
    _sol(market, 300, 0)
    text = ask(market, "/cvd SOL 15m")
    assert "CVD ANALYSIS - SOL" in text and "n/a: none of the 300 min held for SOL has a taker buy/sell split" in text
    assert "Current CVD" not in text


def test_cvd_over_mixed_minutes_says_from_how_many(market):
    _sol(market, 240, 60)
    text = ask(market, "/cvd SOL 15m")
    assert "Current CVD</b>: +120.00 SOL (from 60 of 300 min)" in text
    assert "5 candles)" in text    # 15 m candles with trades: 12:00 (from 12:08, beside klines) to 13:00


def test_price_delta_lines_and_control_mark_minutes_without_a_split(market):
    _sol(market, 1380, 10)
    text = ask(market, "/price SOL")
    assert "L/S: 100%/0% (taker) (from 10 of 1390 min)" in text      # Delta 24h
    assert "L/S: 100%/0% (taker) (from 10 of 15 min)" in text        # Delta 15m
    assert "24H Control: 🟢 BUYERS (100% pressure) (from 10 of 1390 min)" in text


def test_price_delta_with_no_split_at_all_is_na(market):
    _sol(market, 300, 0)
    text = ask(market, "/price SOL")
    assert "Delta 24h: n/a (no taker split in its 300 min: venue klines)" in text
    assert "Delta 15m: n/a (no taker split in its 15 min: venue klines)" in text
    assert "24H Control: n/a" in text and "L/S:" not in text


def test_analysis_marks_cvd_and_last_delta(market):
    _sol(market, 300, 0)
    text = ask(market, "/analysis SOL 15m")
    assert "• CVD: n/a (no taker split: venue klines)" in text
    assert "DELTA (last 15m candle, taker): n/a (no taker split: venue klines)" in text


def test_binance_listed_answers_keep_their_format(market):
    """BTC's minutes come from trades: no coverage notes anywhere."""
    for cmd in ("/cvd BTC", "/price BTC", "/analysis BTC 15m"):
        text = ask(market, cmd)
        assert "(from " not in text and "no taker split" not in text, cmd
    assert "L/S: 100%/0% (taker)\n" in ask(market, "/price BTC")
