"""Kline bootstrap beyond Binance: each venue's kline parser on its documented format, its simulator route, and
the bot's bootstrap filling an asset Binance does not list from the next venue in line."""
from __future__ import annotations

import asyncio
import json
import time

import numpy as np
import pytest

from actors.bot import KLINE_SOURCES, bootstrap_klines, covered_keys, kline_fetch, kline_targets
from engine.bot.candles import BUY, C, H, L, MINUTE_MS, N, O, SELL, T, USD, V, fetch_venue_klines
from engine.bot.history import History
from engine.config import SimulatorConfig
from engine.instruments import Market, Registry, registry_segment
from engine.record import Venue
from engine.rest import RestPoller, WeightBudget
from engine.simulator import start_in_thread
from engine.venues import bitget, bybit, gate, hyperliquid, okx
from tests.conftest import wait_until
from tests.harness.bot import bot_config

STATS = ("kline_symbols", "kline_candles", "kline_failed", "kline_malformed")


# -- each venue's documented kline format -----------------------------------------------------------------
DOCUMENTED = {
    bybit: (b'{"retCode":0,"retMsg":"OK","result":{"symbol":"BTCUSDT","category":"linear","list":['
            b'["1670608800000","17071","17073","17027","17055.5","268.611","4580000.5"],'
            b'["1670608740000","17071.5","17071.5","17061","17071","4.177","71300.25"]]},'
            b'"retExtInfo":{},"time":1672025956592}',
            [(1670608740000, 17071.5, 17071.5, 17061.0, 17071.0, 4.177, 71300.25, 0),
             (1670608800000, 17071.0, 17073.0, 17027.0, 17055.5, 268.611, 4580000.5, 0)]),
    okx: (b'{"code":"0","msg":"","data":['
          b'["1597026443085","3.731","3.799","3.494","3.72","24912403","2491240.3","9267283.6","0"],'
          b'["1597026383085","3.721","3.743","3.677","3.708","8422410","842241","3122996.5","1"]]}',
          [(1597026383085, 3.721, 3.743, 3.677, 3.708, 842241.0, 3122996.5, 0),
           (1597026443085, 3.731, 3.799, 3.494, 3.72, 2491240.3, 9267283.6, 0)]),
    bitget: (b'{"code":"00000","msg":"success","requestTime":1695865615662,"data":['
             b'["1695835800000","26210.5","26210.5","26194.5","26194.5","26.26","687897.63"],'
             b'["1695835860000","26194.5","26200","26190","26199","1.5","39295.5"]]}',
             [(1695835800000, 26210.5, 26210.5, 26194.5, 26194.5, 26.26, 687897.63, 0),
              (1695835860000, 26194.5, 26200.0, 26190.0, 26199.0, 1.5, 39295.5, 0)]),
    hyperliquid: (b'[{"T":1681923659999,"c":"29258.0","h":"29309.0","i":"1m","l":"29250.0","n":189,'
                  b'"o":"29295.0","s":"BTC","t":1681923600000,"v":"0.98639"}]',
                  [(1681923600000, 29295.0, 29309.0, 29250.0, 29258.0, 0.98639,
                    0.98639 * (29295.0 + 29258.0) / 2, 189)]),
}


@pytest.mark.parametrize("module", list(DOCUMENTED), ids=lambda m: m.__name__.rsplit(".", 1)[1])
def test_each_venue_parses_its_documented_kline_format(module):
    payload, want = DOCUMENTED[module]
    got = module.parse_klines(payload)
    assert [g[0] for g in got] == [w[0] for w in want] and [g[7] for g in got] == [w[7] for w in want]
    assert np.allclose([g[1:7] for g in got], [w[1:7] for w in want])


def test_gate_counts_contracts_in_either_size_form():
    ints = b'[{"t":1539852480,"v":97151,"c":"1.032","h":"1.033","l":"1.030","o":"1.031","sum":"3580"}]'
    decimals = b'[{"t":1539852480,"v":"97151.5","c":"1.032","h":"1.033","l":"1.030","o":"1.031","sum":"3580"}]'
    assert gate.parse_klines(ints, 0.0001) == [(1539852480000, 1.031, 1.033, 1.030, 1.032, 97151 * 0.0001, 3580.0, 0)]
    assert gate.parse_klines(decimals, 1.0)[0][5] == 97151.5


def test_the_gate_simulator_sends_decimal_sizes_only_with_the_header():
    from engine.simulator.gate import GateVenue
    sim = GateVenue(["BTCUSDT"], market=object())
    minute0 = 28_000_000 * MINUTE_MS
    sim.klines.add("BTCUSDT", 50_000.0, 0.00015, True, minute0 + 1_000)     # 1.5 contracts of 0.0001 BTC
    path, params, _ = gate.kline_request("BTC_USDT", minute0, minute0 + MINUTE_MS)
    url = "/api/v4" + path + "?" + "&".join(f"{k}={v}" for k, v in params.items())
    with_header = sim.rest(url, {"X-Gate-Size-Decimal": "1"})
    floored = sim.rest(url)
    assert with_header[0] == floored[0] == 200
    assert with_header[1][0]["v"] == "1.5" and floored[1][0]["v"] == 1
    assert gate.parse_klines(json.dumps(with_header[1]).encode(), 0.0001)[0][5] == pytest.approx(0.00015)
    assert gate.parse_klines(json.dumps(floored[1]).encode(), 0.0001)[0][5] == pytest.approx(0.0001)


@pytest.mark.parametrize("module, body", [
    (bybit, b'{"retCode":10001,"retMsg":"params error","result":{},"retExtInfo":{},"time":1}'),
    (bybit, b'{"retCode":0,"result":{"list":[["1670608800000","x","1","1","1","1","1"]]}}'),
    (okx, b'{"code":"51001","msg":"Instrument ID does not exist","data":[]}'),
    (okx, b'{"code":"0","data":[["1597026383085","3.7","3.7","3.6"]]}'),
    (gate, b'{"label":"INVALID_PARAM_VALUE","message":"Invalid request parameter"}'),
    (bitget, b'{"code":"40034","msg":"Parameter symbol does not exist","data":null}'),
    (hyperliquid, b'{"error":"unsupported"}'),
    (hyperliquid, b'not json'),
], ids=lambda x: getattr(x, "__name__", "")[-6:] or None)
def test_a_malformed_or_refused_kline_reply_is_none(module, body):
    assert module.parse_klines(body) is None


# -- paging and the bootstrap's counting, without a network ------------------------------------------------
def test_okx_pages_follow_its_100_row_windows_and_pass_the_weight():
    minute0 = 28_000_000 * MINUTE_MS
    calls = []

    async def get(path, params, weight):
        calls.append((params["before"], params["after"], weight))
        ts = [t for t in range(minute0, minute0 + 250 * MINUTE_MS, MINUTE_MS) if params["before"] < t < params["after"]]
        return json.dumps({"code": "0", "msg": "", "data": [[str(t), "2", "3", "1", "2.5", "10", "1", "2.5", "1"]
                                                            for t in reversed(ts)]}).encode()

    got = asyncio.run(fetch_venue_klines(get, okx, "SOL-USDT-SWAP", 250, minute0 + 250 * MINUTE_MS))
    assert [c[2] for c in calls] == [1, 1, 1] and calls[0][0] == minute0 - 1
    assert [c[1] for c in calls] == [minute0 + k * MINUTE_MS for k in (100, 200, 250)]
    assert got[:, T].tolist() == list(range(minute0, minute0 + 250 * MINUTE_MS, MINUTE_MS))
    assert (got[:, V] == 1.0).all() and (got[:, BUY] == 0).all() and (got[:, SELL] == 0).all()


def test_a_venue_reply_with_impossible_numbers_is_counted_malformed(namespace):
    async def get(path, params, weight):
        return b'{"code":"00000","data":[["1695835800000","-1","2","1","1","1","1"]]}'
    history, stats = History(candle_minutes=60), dict.fromkeys(STATS, 0)
    src = next(s for s in KLINE_SOURCES if s.venue_name == "bitget")
    reg = Registry.open(registry_segment(namespace), 8, 4)
    try:
        asyncio.run(bootstrap_klines(history, [("BTCUSDT", ("BTC", "perp"))], get, 10, 1695835800000 + 600_000,
                                     lambda: 1695835800000 + 600_000, stats, fetch=kline_fetch(src, reg)))
    finally:
        reg.close()
    assert stats["kline_malformed"] == 1 and history.candles.one_minute(("BTC", "perp")).size == 0


# -- against the simulator -----------------------------------------------------------------------------------
SOL = {"bybit": (Venue.BYBIT, "SOLUSDT", "SOLUSDT"), "okx": (Venue.OKX, "SOL-USDT-SWAP", "SOLUSDT"),
       "bitget": (Venue.BITGET, "SOLUSDT", "SOLUSDT"), "gate": (Venue.GATE, "SOL_USDT", "SOLUSDT"),
       "hyperliquid": (Venue.HYPERLIQUID, "SOL", "SOLUSDT")}


@pytest.mark.process
def test_bootstrap_fills_an_asset_binance_does_not_list_from_each_venue(namespace):
    registry = Registry.open(registry_segment(namespace), 64, 16)
    registry.add(Venue.BINANCE, "BTCUSDT", "BTC")
    for name, (venue, symbol, _) in SOL.items():
        registry.add(venue, symbol, "SOL", quote="USDC" if name == "hyperliquid" else "USDT")
    registry.add(Venue.GATE, "BTC_USDT", "BTC", contract_size=0.0001)
    sources = {s.venue_name: s for s in KLINE_SOURCES}
    order = [s for s in KLINE_SOURCES if s.market == Market.PERP_LINEAR]
    # BTC comes from Binance only; SOL from Bybit, the first venue after Binance that lists it
    plan = {s.venue_name: kline_targets(registry, 10, s.venue, s.market,
                                        covered_keys(registry, order[:order.index(s)], s.market)) for s in order}
    assert plan == {"binance": [("BTCUSDT", ("BTC", "perp"))], "bybit": [("SOLUSDT", ("SOL", "perp"))],
                    "okx": [], "bitget": [], "gate": [], "hyperliquid": []}

    cfg = SimulatorConfig(venues=list(SOL), symbols=["BTCUSDT", "SOLUSDT"], rate=600.0)
    with start_in_thread(cfg) as sim:
        books = {name: sim.sim.server.venues[name].klines for name in SOL}
        wait_until(lambda: all(books[n].rows.get(spec) for n, (_, _, spec) in SOL.items())
                   and books["gate"].rows.get("BTCUSDT"), timeout=15, message="simulator trades on every venue")
        time.sleep(0.5)
        sim.call(sim.sim.pause)                          # the klines stop changing
        now_ms = time.time_ns() // 1_000_000 + MINUTE_MS  # the current minute counts as closed
        boundary = now_ms - now_ms % MINUTE_MS
        got, stats = {}, {}

        async def one(name, symbol, key):
            src = sources[name]
            history, st = History(candle_minutes=120), dict.fromkeys(STATS, 0)
            poller = RestPoller(src.module, sim.endpoints(name)["rest_url"], WeightBudget(300))
            try:
                await bootstrap_klines(history, [(symbol, key)], poller.get_retrying, 30, now_ms, lambda: boundary,
                                       st, fetch=kline_fetch(src, registry))
            finally:
                await poller.aclose()
            return history.candles.one_minute(key), st

        for name, (_, symbol, _) in SOL.items():
            got[name], stats[name] = asyncio.run(one(name, symbol, ("SOL", "perp")))
        got["gate-btc"], stats["gate-btc"] = asyncio.run(one("gate", "BTC_USDT", ("BTC", "perp")))
        rows = {name: dict(books[name].rows[spec]) for name, (_, _, spec) in SOL.items()}
        rows["gate-btc"] = dict(books["gate"].rows["BTCUSDT"])
    registry.close()

    for name, candles in got.items():
        served = rows[name]
        assert stats[name] == {"kline_symbols": 1, "kline_candles": len(served), "kline_failed": 0,
                               "kline_malformed": 0}, name
        assert candles[:, T].tolist() == sorted(served), name
        for c in candles:
            o, h, lo, cl, vol, quote, n, *_ = served[int(c[T])]
            assert np.allclose(c[[O, H, L, C]], [o, h, lo, cl], rtol=1e-6), name
            assert c[L] <= min(c[O], c[C]) <= max(c[O], c[C]) <= c[H]
            if name.startswith("gate"):      # whole contracts (Gate floors without the size-decimal header)
                mult = 0.0001 if name == "gate-btc" else 1.0
                assert c[V] == pytest.approx(np.floor(round(vol / mult, 6)) * mult, rel=1e-9, abs=1e-12), name
            else:
                assert c[V] == pytest.approx(vol, rel=1e-6, abs=1e-6), name
            if name == "hyperliquid":
                assert c[N] == n and c[USD] == pytest.approx(vol * (o + cl) / 2, rel=1e-3)
            else:
                assert c[USD] == pytest.approx(quote, rel=1e-6, abs=1e-3), name
            assert c[BUY] == c[SELL] == 0, "a taker split was invented"


# -- the bot actor's passes, in order of preference ----------------------------------------------------------


@pytest.mark.process
@pytest.mark.timeout(90)
def test_the_bot_actor_fills_each_asset_from_the_first_venue_that_lists_it(namespace, tmp_path):
    from actors.bot import BotActor
    from engine.actor_table import ActorTable, actor_table_segment
    from engine.config import loads
    from engine.ring import Ring, ring_segment
    from tests.fakes.botapi import FakeBotAPI

    token = "525252:kline-order-token"
    now_ms = time.time_ns() // 1_000_000
    minute = now_ms - now_ms % MINUTE_MS
    past = [minute - k * MINUTE_MS for k in range(6, 1, -1)]
    registry = Registry.open(registry_segment(namespace), 64, 16)
    registry.add(Venue.BINANCE, "BTCUSDT", "BTC")
    for sym, asset in (("BTCUSDT", "BTC"), ("SOLUSDT", "SOL")):
        registry.add(Venue.BYBIT, sym, asset)
    for coin in ("BTC", "SOL", "ETH"):
        registry.add(Venue.HYPERLIQUID, coin, coin, quote="USDC")
    rings = [Ring.open(ring_segment(namespace, v), 4096) for v in ("binance", "bybit", "hyperliquid")]
    seeded = {"binance": ("BTCUSDT", 50_000.0), "bybit": ("SOLUSDT", 150.0), "hyperliquid": ("ETHUSDT", 3_000.0)}
    with start_in_thread(SimulatorConfig(venues=list(seeded), symbols=["BTCUSDT", "SOLUSDT", "ETHUSDT"], rate=50.0,
                                         seed=5, first_cascade_after_s=1e9)) as sim, FakeBotAPI(token=token) as api:
        def seed():     # past minutes the simulator never traded: one kline each, priced per venue
            for venue, (spec, price) in seeded.items():
                for m in past:
                    sim.sim.venue(venue).klines.add(spec, price, 2.0, True, m + 1_000)
        sim.call(seed)
        urls = {v: sim.endpoints(v)["rest_url"] for v in seeded}
        cfg = loads(bot_config(namespace, tmp_path, api.base_url,
                               {"binance": {"symbols": ["BTCUSDT"], "rest_url": urls["binance"]},
                                "bybit": {"symbols": ["SOLUSDT"], "rest_url": urls["bybit"]},
                                "hyperliquid": {"symbols": ["ETH"], "rest_url": urls["hyperliquid"]}},
                               telegram={"chat_ids": [7]}, bot={"kline_minutes": 30}))
        actor = BotActor(cfg, env={"TELEGRAM_BOT_TOKEN": token})
        actor._table = ActorTable.open(actor_table_segment(namespace))
        actor.setup()

        async def drive():
            main = asyncio.create_task(actor._main())
            done = lambda: all(actor.kline_stats[v]["kline_symbols"] == 1 for v in seeded)   # noqa: E731
            deadline = time.monotonic() + 40
            while not done():
                assert time.monotonic() < deadline, actor.kline_stats
                await asyncio.sleep(0.05)
            counters = actor._counters()
            actor.stopping = True
            await asyncio.wait_for(main, 15)
            return counters

        try:
            counters = asyncio.run(drive())
        finally:
            actor.teardown()
            for obj in (*rings, registry):
                obj.close()
    candles = actor.history.candles
    # BTC from Binance only (Bybit and Hyperliquid list it too), SOL from Bybit, ETH from Hyperliquid
    for asset, price in (("BTC", 50_000.0), ("SOL", 150.0), ("ETH", 3_000.0)):
        past_rows = candles.one_minute((asset, "perp"), since_ms=past[0], until_ms=past[-1])
        assert past_rows[:, T].tolist() == past and (past_rows[:, C] == price).all(), asset
    assert counters["kline_symbols"] == counters["bybit_kline_symbols"] == counters["hyperliquid_kline_symbols"] == 1
    assert counters["bybit_kline_failed"] == counters["hyperliquid_kline_malformed"] == 0
    assert counters["hyperliquid_kline_rest_requests"] == 1 and counters["bybit_kline_rest_requests"] == 1
