"""Bot commands answered from a known state table and history (engine/bot/commands.py)."""
from __future__ import annotations

import pytest

from engine.bot.commands import COMMANDS, dispatch, help_card, menu, parse
from engine.bot.market import parse_symbol
from tests.test_bot_known_market import NOW_S, KnownMarket


@pytest.fixture
def market(namespace, tmp_path):
    m = KnownMarket(namespace, tmp_path)
    yield m
    m.close()


def ask(market, text: str, chat_id: int = 42) -> str:
    name, args = parse(text)
    return dispatch(market.context(chat_id), name, args).text


@pytest.mark.parametrize("text", ["btc", "BTCUSDT", "BTC-USDT", "BTC/USDT", "BTC_USDT", "BTC-USDT-SWAP", "BTCUSD_PERP"])
def test_symbol_spellings_resolve_to_the_asset(text):
    assert parse_symbol(text) == "BTC"


def test_menu_has_the_origin_commands_and_the_new_ones():
    names = [n for n, _ in menu()]
    for n in ("start", "help", "price", "top10", "analysis", "volume", "cvd", "volscan", "oi", "alerts",
              "liquidations", "profile", "funding", "thresholds", "risk", "why", "mute", "unmute", "snooze",
              "subscribe", "unsubscribe", "status"):
        assert n in names
    card = help_card()
    assert all(f"/{c.name}" in card for c in COMMANDS)
    assert "Volume Intelligence" in card and "Proactive Alerts" in card and "Examples" in card


def test_price_blocks_from_state_and_history(market):
    text = ask(market, "/price BTC-USDT")
    assert "⚡ PERPETUALS" in text and "🏪 SPOT" in text and "MARKET INTELLIGENCE" in text
    assert "no spot market of BTC is watched" in text             # nothing invented for spot
    assert "$50,000.00" in text and "+25.00%" in text              # 40,000 -> 50,000 over 24 h
    assert "-$" not in text.split("Price:")[1].split("\n")[0]      # a rise prints a positive $ change
    assert "2,000 BTC" in text                                     # OI summed over three venues
    assert "+200.00 BTC" in text and "+10.00%" in text             # OI change 24 h from the samples
    assert "+20.00 BTC" in text and "+1.00%" in text               # OI change 15 m
    assert "+0.0100% (+10.95% annually" in text and "🟡 LONG PRESSURE" in text
    assert "L/S: 100%/0% (taker)" in text                          # the last 15 min were taker buys
    assert "UTC /" in text and "SGT" in text


def test_price_errors(market):
    assert "Please provide a symbol" in ask(market, "/price")
    unknown = ask(market, "/price DOGE")
    assert "Unknown symbol" in unknown and "BTC" in unknown and "ETH" in unknown
    assert "Unknown symbol" in ask(market, "/price <b>x")   # bad characters are not a symbol


def test_volume_judges_the_closed_candle_against_its_baseline(market):
    text = ask(market, "/volume BTCUSDT")
    assert "VOLUME ANALYSIS - BTC" in text and "Timeframe</b>: 15m" in text
    # 15 BTC/min vs a 15 BTC baseline x1.0 session factor (13:00 UTC) -> 225 vs 15 -> +1400 %
    assert "EXTREME" in text and "🔥🔥🔥" in text and "+1400.0%" in text
    assert "Baseline Volume" in text and "trimmed median of 96 candles" in text
    assert "Unknown timeframe" in ask(market, "/volume BTC 7m")


def test_cvd_default_timeframe_and_real_window(market):
    text = ask(market, "/cvd BTC")
    assert "CVD ANALYSIS - BTC" in text and "Timeframe</b>: 1h" in text
    assert "Change (" in text and "24h Change" not in text
    assert "Change (2d 1h, 49 candles)" in text                 # 2 days of 1 min history = 49 hourly buckets
    assert "BULLISH" in text                                      # taker buying at the end lifts the curve


def test_volscan_threshold_and_validation(market):
    text = ask(market, "/volscan 500 15m")
    assert "VOLUME SPIKES DETECTED" in text and "BTC 🔥🔥🔥" in text and "ETH" not in text
    assert "No volume spikes &gt;5000% found in 15m" in ask(market, "/volscan 5000")
    assert "Threshold must be a number" in ask(market, "/volscan abc")


def test_top10_validation_and_ranking(market):
    assert "Please specify market type" in ask(market, "/top10")
    assert "Invalid market type" in ask(market, "/top10 futures")
    text = ask(market, "/top10 perps")
    assert text.index("BTC") < text.index("ETH") and "by 24 h USD volume" in text and "MCap" not in text


def test_oi_split_by_margin_and_coverage(market):
    text = ask(market, "/oi")                                     # default BTC
    assert "OPEN INTEREST ANALYSIS - BTC" in text
    assert "Total OI: 2,000 BTC ($100.01M)" in text
    assert "Coin-Margined (Inverse): $20.00M | 20.0%" in text
    assert "USDT: $80.01M" in text and "STABLE" in text and "INVERSE" in text
    assert "2 of 6 enabled report OI" in text and "missing:" in text


def test_profile_includes_the_first_session_candle(market):
    text = ask(market, "/profile BTC")
    assert "MARKET PROFILE - BTC" in text and "1M Profile" in text and "Daily Profile" in text
    minutes_since_midnight = int(NOW_S % 86400 // 60) + 1
    assert f"({minutes_since_midnight} one-minute candles, first included)" in text
    assert "TPO: POC:" in text.split("30M Profile")[1].split("1H Profile")[0]
    assert any(v in text for v in ("BALANCED", "TRENDING", "TRANSITIONING"))
    assert "1H POC" in text and "4H VA" in text and "Daily POC" in text
    assert ask(market, "/profile BTC tpo").count("TPO: POC") == 6


def test_liquidations_are_lower_bounds_with_coverage(market):
    text = ask(market, "/liquidations BTC 1h")
    assert "Longs: 1 | ≥ $125.00K" in text and "Shorts: 1 | ≥ $60.00K" in text
    assert "Lower bounds: binance" in text and "Coverage: 2 venues" in text
    assert "📉 <b>BTCUSDT</b> LONG - $125,000 at 13:07:00 UTC (binance)" in text
    assert "Bad duration" not in text
    assert "No recent liquidations" in ask(market, "/liquidations BTC 10s")


def test_alerts_subcommands(market):
    status = ask(market, "/alerts")
    assert "Proactive Alert System Status" in status and "Liquidation Monitor" in status
    assert "Commands:" in status and "Thresholds:" in status and "BTC: $100K+" in status
    assert "Monitoring Stopped" in ask(market, "/alerts stop")
    assert "❌ Stopped" in ask(market, "/alerts")
    assert "Monitoring Started" in ask(market, "/alerts start")
    assert "Unknown command. Use: start, stop, status, or recent" in ask(market, "/alerts foo")
    assert "Detailed Monitoring Status" in ask(market, "/alerts status")
    assert "Recent Large Liquidations" in ask(market, "/alerts recent")


def test_mute_snooze_subscribe_persist_and_filter(market):
    assert "muted for 2h" in ask(market, "/mute BTC 2h")
    assert not market.prefs.allows(42, "cascade", "BTC", now=NOW_S + 60)
    assert market.prefs.allows(42, "cascade", "ETH", now=NOW_S + 60)
    assert market.prefs.allows(42, "cascade", "BTC", now=NOW_S + 7300)
    assert "Bad duration" in ask(market, "/mute BTC soon")
    assert "unmuted" in ask(market, "/unmute BTC")
    assert "snoozed for 30m" in ask(market, "/snooze 30m")
    assert not market.prefs.allows(42, "liquidation", "ETH", now=NOW_S + 60)
    assert "Snooze off" in ask(market, "/snooze off")
    assert "Subscribed to cascade" in ask(market, "/subscribe cascade")
    assert not market.prefs.allows(42, "liquidation", "ETH", now=NOW_S)
    assert "Unknown symbol" in ask(market, "/subscribe nonsense")
    from engine.bot.prefs import Prefs
    assert Prefs(market.prefs.path).chat(42)["subs"] == ["cascade"]    # survives a restart


def test_risk_why_funding_thresholds_status(market):
    risk = ask(market, "/risk BTC")
    assert "5.50/10" in risk and "WARNING" in risk and "Composite risk: n/a" in risk
    why = ask(market, "/why BTC")
    assert why.index("velocity: +2.50") < why.index("acceleration: +2.00") and "9 in 30 s" in why
    assert "No computed state for ETH" in ask(market, "/risk ETH")
    funding = ask(market, "/funding BTC")
    assert "Bybit BTCUSDT: -0.0200%" in funding and "OI-weighted" in funding
    th = ask(market, "/thresholds BTC")
    assert "single alert: $100K" in th and "whale ≥ $500K" in th
    status = ask(market, "/status")
    assert "binance: ✅" in status and "bybit: ❌" in status and "12,345 records" in status


def test_unknown_command_points_to_help(market):
    assert "/help" in ask(market, "/frobnicate")


def test_zones_and_chart_send_pngs_from_the_recorded_history(market, tmp_path):
    import msgspec
    from engine.config import Config
    from engine.history import HistoryWriter, InstrumentInfo
    from engine.record import Venue
    from tests.test_replay import market as recorded_market
    root = tmp_path / "history"
    w = HistoryWriter(str(root))
    w.set_instruments([InstrumentInfo(0, Venue.BINANCE, "BTCUSDT", "BTC"), InstrumentInfo(1, Venue.BINANCE, "ETHUSDT", "ETH")])
    w.add_records("binance", recorded_market({"BTC": 0, "ETH": 1}))
    w.flush()
    base = Config()
    cfg = msgspec.structs.replace(base, recorder=msgspec.structs.replace(base.recorder, enabled=True, root=str(root)))
    ctx = market.context(cfg=cfg)
    for name, words in (("zones", "liquidation zones"), ("chart", "CVD")):
        reply = dispatch(ctx, name, ["BTC", "4h"])
        assert reply.photo is not None and reply.photo.startswith(b"\x89PNG"), reply.text
        assert words in reply.text and "last 4 h" in reply.text
    off = dispatch(market.context(), "zones", ["BTC"])                 # recorder off: says why, no image
    assert off.photo is None and "recorder is off" in off.text
    assert "Unknown symbol" in dispatch(ctx, "zones", ["DOGE"]).text
