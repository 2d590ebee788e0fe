"""The bot actor in its own process (ring records in, /price answered through the local Bot API), the kline
bootstrap against the simulator's Binance REST, and the supervisor starting the bot only with a token."""
from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from actors.bot import bootstrap_klines, kline_targets
from engine.actor_table import ActorTable, actor_table_segment
from engine.bot import fmt as F
from engine.bot.candles import BUY, C, H, L, MINUTE_MS, N, O, SELL, T, USD, V
from engine.bot.history import History
from engine.config import Config, SimulatorConfig, loads
from engine.instruments import Registry, registry_segment
from engine.record import Flag, Kind, Side, Venue, empty_records
from engine.rest import RestPoller, WeightBudget
from engine.simulator import start_in_thread
from engine.supervisor import Supervisor, actor_specs
from engine.venues import binance
from tests.conftest import wait_until
from tests.fakes.botapi import FakeBotAPI
from tests.harness.bot import bot_config

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "424242:bot-actor-SECRET-token"
CHAT, ADMIN = 42, 7
MIN_NS = 60_000_000_000


def _config(namespace: str, run, api_url: str) -> str:
    """Binance BTC (its REST unreachable) and the local Bot API, CHAT allowed and ADMIN an admin."""
    return bot_config(namespace, run, api_url, {"binance": {"symbols": ["BTCUSDT"], "rest_url": "http://127.0.0.1:9"}},
                      telegram={"chat_ids": [CHAT], "admin_user_ids": [ADMIN]})


def _trades(iid: int, start_ns: int, n: int, px0: float) -> np.ndarray:
    """One BTC trade every 30 s from ``start_ns``: price px0 + 10 k, qty 0.1 (k + 1), taker buy on even k."""
    recs = empty_records(n)
    for k in range(n):
        ts = start_ns + k * 30_000_000_000
        px, qty = px0 + 10.0 * k, 0.1 * (k + 1)
        recs[k] = (Kind.TRADE, Venue.BINANCE, Side.BUY if k % 2 == 0 else Side.SELL, 0, iid, ts, ts + 1_000_000,
                   px, qty, px * qty, 0, 0)
    return recs


def _bot_row(ns: str) -> dict | None:
    table = ActorTable.open(actor_table_segment(ns))
    return next((r for r in table.snapshot() if r["name"] == "bot"), None)


@pytest.mark.process
def test_bot_actor_answers_price_from_ring_records(namespace, tmp_path):
    from engine.ring import Ring, ring_segment
    run = tmp_path / "run"
    run.mkdir()
    registry = Registry.open(registry_segment(namespace), 64, 16)
    btc = registry.add(Venue.BINANCE, "BTCUSDT", "BTC")
    ring = Ring.open(ring_segment(namespace, "binance"), 4096)
    ring.become_producer()
    now_ns = time.time_ns()
    start_ns = now_ns - 20 * MIN_NS
    before, after = _trades(btc, start_ns, 20, 60_000.0), _trades(btc, start_ns + 10 * MIN_NS, 20, 60_200.0)
    ring.write_batch(before)         # read from the ring's history: the bot starts at its oldest record
    with FakeBotAPI(token=TOKEN) as api:
        cfg_file = tmp_path / "bot.toml"
        # the kline bootstrap aims at a closed port: its failures are counted and the bot answers anyway
        cfg_file.write_text(_config(namespace, run, api.base_url))
        env = {**os.environ, "TELEGRAM_BOT_TOKEN": TOKEN, "PYTHONUNBUFFERED": "1"}
        proc = subprocess.Popen([sys.executable, "-m", "engine.cli", "--log-level", "DEBUG", "actor", "bot",
                                 "--config", str(cfg_file)], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
        try:
            assert api.wait_for(lambda: api.calls_to("setMyCommands"), timeout=30), "the bot never registered its menu"
            ring.write_batch(after)
            liq = empty_records(2)
            liq[0] = (Kind.LIQUIDATION, Venue.BINANCE, Side.LONG, Flag.CAPPED, btc, now_ns - 5 * 10**9, now_ns,
                      60_100.0, 2.0, 120_200.0, 0, 0)
            liq[1] = (Kind.LIQUIDATION, Venue.BINANCE, Side.SHORT, Flag.CAPPED, btc, now_ns - 4 * 10**9, now_ns,
                      60_120.0, 0.5, 30_060.0, 0, 0)
            ring.write_batch(liq)
            total = len(before) + len(after) + len(liq)
            wait_until(lambda: (r := _bot_row(namespace)) and r["counters"].get("records") == total, timeout=10,
                       message="the bot read every record")
            api.inject_command(chat_id=CHAT, text="/price BTC", user_id=1)
            api.inject_command(chat_id=CHAT, text="/liquidations BTC", user_id=1)
            api.inject_command(chat_id=CHAT, text="/status", user_id=1)
            api.inject_command(chat_id=99, text="/price BTC", user_id=1)     # not allowed: no answer
            assert api.wait_for(lambda: len(api.sent(chat_id=CHAT)) >= 3, timeout=10)
            wait_until(lambda: (c := _bot_row(namespace)["counters"]).get("kline_failed") == 1
                       and c.get("commands_answered") == 3, timeout=20,
                       message="the failed kline bootstrap and the answers counted")
            row = _bot_row(namespace)
        finally:
            proc.send_signal(signal.SIGTERM)
            out, _ = proc.communicate(timeout=20)
        price, liqs, status = (m.text for m in api.sent(chat_id=CHAT))
        assert api.sent(chat_id=99) == []
    ring.close()
    registry.close()
    assert proc.returncode == 0, out[-2000:]

    trades = np.concatenate([before, after])
    last = trades[np.argmax(trades["ts_exchange"])]
    buy = trades["qty"][trades["side"] > 0].sum()
    sell = trades["qty"][trades["side"] < 0].sum()
    assert f"💰 Price: {F.price(last['price'])}" in price                       # the newest trade's price
    assert f"📊 Volume 24h: {F.num(trades['qty'].sum(), 0)} BTC ({F.usd(trades['notional'].sum())})" in price
    assert f"Delta 24h: 🟢 {F.signed(buy - sell, 2)}" in price or f"Delta 24h: 🔴 {F.signed(buy - sell, 2)}" in price
    assert f"L/S: {buy / (buy + sell) * 100:.0f}%/" in price
    assert "Longs: 1 | ≥ $120.20K" in liqs and "Shorts: 1 | ≥ $30.06K" in liqs
    assert "• bot: ✅ up " in status and f"{total} records, 0 lost" in status     # the actor table, live

    c = row["counters"]
    assert (c["records"], c["lost"], c["commands_answered"], c["commands_ignored"]) == (total, 0, 3, 1)
    assert c["telegram_up"] == 1 and row["heartbeat_age_s"] < 3.0
    assert c["kline_rest_errors"] >= 1 and c["kline_symbols"] == 0
    assert TOKEN not in out and TOKEN.split(":")[1] not in out


def test_ring_backlog_lapped_records_and_kline_boundary(namespace, tmp_path):
    """In-process: the bot reads a ring from its oldest record, counts what a lap overwrote, and keeps klines out
    of the minutes from that oldest record on."""
    from actors.bot import BotActor
    from engine.ring import Ring, ring_segment
    cfg = loads(_config(namespace, tmp_path, "http://127.0.0.1:9/bot"))
    registry = Registry.open(registry_segment(namespace), 64, 16)
    btc = registry.add(Venue.BINANCE, "BTCUSDT", "BTC")
    ring = Ring.open(ring_segment(namespace, "binance"), 4096)
    ring.become_producer()
    oldest = time.time_ns() - 30 * MIN_NS
    ring.write_batch(_trades(btc, oldest, 4096, 60_000.0))
    actor = BotActor(cfg, env={"TELEGRAM_BOT_TOKEN": TOKEN})
    actor._table = ActorTable.open(actor_table_segment(namespace))
    try:
        actor.setup()
        assert actor.poll_rings() == 4096 and actor.poll_rings() == 0
        assert actor.first_ts_ns["binance"] == oldest
        assert actor._kline_boundary_ms() == (oldest // 1_000_000) // MINUTE_MS * MINUTE_MS
        ring.write_batch(_trades(btc, oldest + 4096 * 30 * 10**9, 5000, 61_000.0))   # laps the 4096-slot ring
        assert actor.poll_rings() == 4096
        assert (actor.stats["records"], actor.stats["lost"]) == (8192, 5000 - 4096)
        assert actor.history.candles.trades == 8192
    finally:
        actor.teardown()
        ring.close()
        registry.close()


# -- kline bootstrap against the simulator ------------------------------------------------------------------

def _sim_klines(rest: str, symbol: str) -> list:
    with urllib.request.urlopen(f"{rest}/fapi/v1/klines?symbol={symbol}&interval=1m&limit=1500", timeout=5) as r:
        return json.loads(r.read())


@pytest.mark.process
def test_kline_bootstrap_from_the_simulator(namespace):
    registry = Registry.open(registry_segment(namespace), 64, 16)
    for sym, asset in (("BTCUSDT", "BTC"), ("ETHUSDT", "ETH"), ("1000PEPEUSDT", "PEPE"), ("NOPEUSDT", "NOPE")):
        registry.add(Venue.BINANCE, sym, asset)
    registry.add(Venue.BYBIT, "SOLUSDT", "SOL")
    targets = kline_targets(registry, 10)
    assert targets == [("BTCUSDT", ("BTC", "perp")), ("ETHUSDT", ("ETH", "perp")), ("NOPEUSDT", ("NOPE", "perp"))]
    with start_in_thread(SimulatorConfig(venues=["binance"], symbols=["BTCUSDT", "ETHUSDT"], rate=400.0)) as sim:
        rest = sim.endpoints("binance")["rest_url"]
        wait_until(lambda: len(_sim_klines(rest, "BTCUSDT")) and _sim_klines(rest, "ETHUSDT"), timeout=10,
                   message="simulator trades")
        time.sleep(0.5)
        sim.call(sim.sim.pause)                          # the market stands still: the klines stop changing
        sim.call(sim.sim.server.http_error, 502, 1)     # the first request fails once: retried, counted
        history, stats = History(candle_minutes=600), dict.fromkeys(
            ("kline_symbols", "kline_candles", "kline_failed", "kline_malformed"), 0)
        # treat the simulator's current minute as closed (it has no older minutes): "now" is a minute later
        now_ms = time.time_ns() // 1_000_000 + MINUTE_MS
        boundary = now_ms - now_ms % MINUTE_MS

        async def go():
            poller = RestPoller(binance, rest, WeightBudget(300))
            try:
                await bootstrap_klines(history, targets, poller.get_retrying, 60, now_ms, lambda: boundary, stats)
            finally:
                await poller.aclose()
            return poller.counters()

        rest_counts = asyncio.run(go())
        served = {s: _sim_klines(rest, s) for s in ("BTCUSDT", "ETHUSDT")}
    registry.close()
    assert stats == {"kline_symbols": 2, "kline_candles": stats["kline_candles"], "kline_failed": 1,
                     "kline_malformed": 0}
    assert rest_counts["rest_server_errors"] == 1 and rest_counts["rest_errors"] == 2   # the 502 and NOPEUSDT's 400
    assert stats["kline_candles"] == sum(len(v) for v in served.values())
    for sym, asset in (("BTCUSDT", "BTC"), ("ETHUSDT", "ETH")):
        got = history.candles.one_minute((asset, "perp"))
        assert len(got) == len(served[sym]) >= 1
        for g, r in zip(got, served[sym]):
            assert g[T] == r[0] and (g[O], g[H], g[L]) == (float(r[1]), float(r[2]), float(r[3]))
            assert g[C] == float(r[4]) and g[N] == r[8] and g[N] > 0
            assert g[V] == pytest.approx(float(r[5])) and g[BUY] == pytest.approx(float(r[9]))
            assert g[SELL] == pytest.approx(float(r[5]) - float(r[9])) and g[USD] == pytest.approx(float(r[7]))
            assert g[L] <= min(g[O], g[C]) <= max(g[O], g[C]) <= g[H]


def test_kline_bootstrap_never_fills_minutes_the_trades_cover():
    """The boundary keeps klines out of minutes from the first ring trade on; a minute built from trades is
    never overwritten."""
    minute0 = 28_000_000 * MINUTE_MS
    rows = [[minute0 + k * MINUTE_MS, "10", "12", "9", "11", "5", minute0 + k * MINUTE_MS + 59_999, "55", 7, "2",
             "22", "0"] for k in range(5)]

    async def get(path, params, weight):
        assert path == "/fapi/v1/klines" and params["interval"] == "1m" and weight == 5
        return json.dumps([r for r in rows if params["startTime"] <= r[0] < params["endTime"]]).encode()

    history = History(candle_minutes=100)
    trade_min = minute0 + 1 * MINUTE_MS           # a trade in the second minute, already folded in
    history.candles.add_trades(("BTC", "perp"), np.array([trade_min * 1_000_000 + 5]), np.array([10.5]),
                               np.array([1.0]), np.array([1]), np.array([10.5]))
    stats = dict.fromkeys(("kline_symbols", "kline_candles", "kline_failed", "kline_malformed"), 0)
    asyncio.run(bootstrap_klines(history, [("BTCUSDT", ("BTC", "perp"))], get, 10, minute0 + 5 * MINUTE_MS,
                                 lambda: minute0 + 3 * MINUTE_MS, stats))
    got = history.candles.one_minute(("BTC", "perp"))
    assert got[:, T].tolist() == [minute0 + k * MINUTE_MS for k in range(3)]
    assert got[1, V] == 1.0 and got[1, C] == 10.5           # the trade's minute is kept as built
    assert got[0, V] == 5.0 and got[2, BUY] == 2.0 and got[2, SELL] == 3.0
    assert stats["kline_candles"] == 2 and stats["kline_symbols"] == 1

    async def bad(path, params, weight):
        return b'{"code": -1121, "msg": "Invalid symbol."}'
    asyncio.run(bootstrap_klines(history, [("BTCUSDT", ("BTC", "perp"))], bad, 10, minute0, lambda: minute0, stats))
    assert stats["kline_malformed"] == 1


# -- the supervisor starts the bot only with a token ---------------------------------------------------------

def _names(cfg: Config, env: dict) -> list[str]:
    return list(Supervisor(cfg, env=env).children)


def test_supervisor_starts_the_bot_only_with_a_token(tmp_path):
    cfg = loads("[recorder]\nenabled = false\n")
    assert "bot" not in _names(cfg, {})
    assert "bot" not in _names(cfg, {"TELEGRAM_BOT_TOKEN": "  "})
    assert _names(cfg, {"TELEGRAM_BOT_TOKEN": TOKEN})[-1] == "bot"
    (tmp_path / "telegram_bot_token").write_text(TOKEN + "\n")      # systemd LoadCredential
    assert "bot" in _names(cfg, {"CREDENTIALS_DIRECTORY": str(tmp_path)})
    for off in ("[bot]\nenabled = false\n", "[alerts.telegram]\nenabled = false\n"):
        assert "bot" not in [s.name for s in actor_specs(loads(off), {"TELEGRAM_BOT_TOKEN": TOKEN})]
