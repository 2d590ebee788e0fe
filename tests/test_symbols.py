"""engine/symbols.py: symbol selectors, fallback, registration, OI tiers within the weight budget, sharding."""
from __future__ import annotations

import asyncio
import json
import logging
import types

import httpx
import pytest

from engine.config import VenueConfig
from engine.instruments import Market, Registry, registry_segment
from engine.rest import RestPoller, WeightBudget
from engine.simulator.binance import LISTING_EXTRAS, BinanceVenue
from engine.symbols import OI_BUDGET_SHARE, oi_schedule, parse_selector, rank, register, resolve
from engine.venues import InstrumentInfo, binance
from tests.test_rest import VirtualClock

pytestmark = pytest.mark.unit

MARKET = ["BTCUSDT", "ETHUSDT", "SOLUSDT"]
MANY = MARKET + [f"C{i:03d}USDT" for i in range(297)]      # 300 perpetuals


def sim_rest(symbols, fail: set[str] = frozenset()):
    """A RestPoller whose transport is the simulator's Binance REST (in-process, no sockets)."""
    venue = BinanceVenue(symbols)
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.raw_path.decode()
        calls.append(request.url.path)
        if request.url.path in fail:
            return httpx.Response(503)
        status, body = venue.rest(path)
        return httpx.Response(status, json=body)

    clock = VirtualClock()
    budget = WeightBudget(2400, clock=clock, sleep=clock.sleep)
    poller = RestPoller(binance, "http://sim", budget, client=httpx.AsyncClient(transport=httpx.MockTransport(handler)))
    return poller, calls


def vcfg(**kw) -> VenueConfig:
    return VenueConfig(**{"fallback_symbols": ["BTCUSDT", "ETHUSDT"], **kw})


def run(coro):
    return asyncio.run(coro)


def test_parse_selector():
    assert parse_selector(["A", "B"]) == ("list", 2, ("A", "B"))
    assert parse_selector("all") == ("all", 0, ())
    assert parse_selector("top:50") == ("top", 50, ())
    for bad in ("top:0", "top:", "ALL", "top:5x", "first:3"):
        with pytest.raises(ValueError):
            parse_selector(bad)


def test_rank_by_volume_keeps_order_on_ties():
    assert rank(["A", "B", "C", "D"], {"C": 5.0, "B": 9.0}) == ["B", "C", "A", "D"]


def test_top_n_on_the_simulator_ranks_by_volume_and_filters_non_perpetuals():
    rest, calls = sim_rest(MANY)
    res = run(resolve(vcfg(symbols="top:3"), binance, rest))
    # the quarterly, the USDC perpetual and the settling contract all have more volume, and are all excluded
    assert res.source == "rest" and res.symbols == ["BTCUSDT", "ETHUSDT", "SOLUSDT"]
    assert set(calls) == {"/fapi/v1/exchangeInfo", "/fapi/v1/ticker/24hr"}
    assert rest.budget.used == 1 + 40
    top50 = run(resolve(vcfg(symbols="top:50"), binance, sim_rest(MANY)[0])).symbols
    assert len(top50) == 50 and top50[:3] == MARKET
    assert all(res.volumes[a] >= res.volumes[b] for a, b in zip(top50, top50[1:]))


def test_all_takes_every_trading_perpetual_of_the_configured_quotes():
    res = run(resolve(vcfg(symbols="all"), binance, sim_rest(MANY)[0]))
    assert sorted(res.symbols) == sorted(MANY) and res.symbols[:3] == MARKET
    extras = {e[0] for e in LISTING_EXTRAS}
    assert not extras & set(res.symbols)
    usdc = run(resolve(vcfg(symbols="all", symbol_quotes=["USDT", "USDC"]), binance, sim_rest(MANY)[0]))
    assert set(usdc.symbols) == set(MANY) | {"BTCUSDC"}


def test_explicit_list_is_kept_and_unknown_symbols_are_reported(caplog):
    rest, calls = sim_rest(MARKET)
    with caplog.at_level(logging.WARNING, "undertow.symbols"):
        res = run(resolve(vcfg(symbols=["ETHUSDT", "NOPEUSDT"]), binance, rest))
    assert res.symbols == ["ETHUSDT", "NOPEUSDT"] and res.source == "config"
    assert res.infos["ETHUSDT"].tick_size == 0.01
    assert "NOPEUSDT" in caplog.text
    assert calls == ["/fapi/v1/exchangeInfo"]        # 2 symbols <= 20 hot: no tickers needed


@pytest.mark.parametrize("failing", [{"/fapi/v1/exchangeInfo"}, {"/fapi/v1/ticker/24hr"}])
def test_selector_falls_back_to_the_configured_list_with_a_log_line(failing, caplog):
    rest, calls = sim_rest(MANY, fail=failing)
    with caplog.at_level(logging.WARNING, "undertow.symbols"):
        res = run(resolve(vcfg(symbols="top:10"), binance, rest))
    assert res.source == "fallback" and res.symbols == ["BTCUSDT", "ETHUSDT"]
    assert "cannot resolve symbols = 'top:10'" in caplog.text and "fallback_symbols" in caplog.text
    assert calls.count(next(iter(failing))) == 3        # retried (5xx is retryable) before giving up
    assert rest.server_errors == 3


def test_all_without_tickers_still_resolves():
    rest, _ = sim_rest(MANY, fail={"/fapi/v1/ticker/24hr"})
    res = run(resolve(vcfg(symbols="all"), binance, rest))
    assert res.source == "rest" and sorted(res.symbols) == sorted(MANY) and res.volumes == {}


# -- a tiny venue module of another shape: paginated listing, inverse contracts --------------

def fake_venue():
    pages = {
        "": [("AAA-USDT-SWAP", "AAA", "USDT", "perpetual", "trading", 0.01),
             ("BBB-USDT-SWAP", "BBB", "USDT", "perpetual", "trading", 10.0)],
        "2": [("CCC-USDT-SWAP", "CCC", "USDT", "perpetual", "suspended", 1.0),
              ("DDD-USDT-250627", "DDD", "USDT", "future", "trading", 1.0),
              ("EEE-USD-SWAP", "EEE", "USD", "perpetual", "trading", 100.0)],
        "3": [("1000FFF-USDT-SWAP", "1000FFF", "USDT", "perpetual", "trading", 1.0)],
    }
    following = {"": "2", "2": "3", "3": None}
    volumes = {"AAA-USDT-SWAP": 5.0, "BBB-USDT-SWAP": 50.0, "CCC-USDT-SWAP": 500.0, "1000FFF-USDT-SWAP": 20.0,
               "EEE-USD-SWAP": 1000.0}

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/tickers":
            return httpx.Response(200, json=[{"inst": s, "vol": v} for s, v in volumes.items()])
        cursor = request.url.params.get("after", "")
        return httpx.Response(200, json={"data": pages[cursor], "next": following[cursor]})

    def parse_exchange_info(payload):
        try:
            doc = json.loads(payload)
            return [InstrumentInfo(s, b, q, t, st, 0.1, cs) for s, b, q, t, st, cs in doc["data"]]
        except (ValueError, KeyError, TypeError):
            return None

    def next_page(payload, params):
        nxt = json.loads(payload)["next"]
        return None if nxt is None else {**params, "after": nxt}

    venue = types.SimpleNamespace(
        __name__="engine.venues.fake", VENUE=200,
        EXCHANGE_INFO_REQUEST=("/instruments", {"type": "SWAP"}, 5), parse_exchange_info=parse_exchange_info,
        next_page=next_page, TICKERS_REQUEST=("/tickers", {}, 5),
        parse_tickers=lambda p: {d["inst"]: d["vol"] for d in json.loads(p)},
        oi_request=lambda s: ("/oi", {"inst": s}, 2), base_from_symbol=lambda s: s.split("-")[0])
    clock = VirtualClock()
    rest = RestPoller(venue, "http://fake", WeightBudget(100, clock=clock, sleep=clock.sleep),
                      client=httpx.AsyncClient(transport=httpx.MockTransport(handler)))
    return venue, rest


def test_fake_venue_all_follows_pagination_and_top_n_uses_its_tickers():
    venue, rest = fake_venue()
    res = run(resolve(vcfg(symbols="all"), venue, rest))
    assert res.symbols == ["BBB-USDT-SWAP", "1000FFF-USDT-SWAP", "AAA-USDT-SWAP"]   # by volume
    assert len(res.infos) == 6
    venue, rest = fake_venue()
    top = run(resolve(vcfg(symbols="top:2", symbol_quotes=["USDT", "USD"]), venue, rest))
    assert top.symbols == ["EEE-USD-SWAP", "BBB-USDT-SWAP"]
    assert rest.budget.used == 3 * 5 + 5


def test_register_maps_to_canonical_assets(namespace):
    venue, rest = fake_venue()
    res = run(resolve(vcfg(symbols="all", symbol_quotes=["USDT", "USD"]), venue, rest))
    reg = Registry.open(registry_segment(namespace), 64, 16)
    try:
        ids = register(reg, venue, res.symbols + ["GGG-USDT-SWAP", "X" * 40], res.infos)
        assert "X" * 40 not in ids and len(ids) == 5       # too long for the registry: logged, left out
        fff = reg.get(ids["1000FFF-USDT-SWAP"])
        assert (fff.asset, fff.contract_size, fff.quote, fff.market) == ("FFF", 1000.0, "USDT", Market.PERP_LINEAR)
        eee = reg.get(ids["EEE-USD-SWAP"])
        assert (eee.asset, eee.contract_size, eee.quote, eee.market) == ("EEE", 100.0, "USD", Market.PERP_INVERSE)
        ggg = reg.get(ids["GGG-USDT-SWAP"])                # not listed: base from the symbol, no tick
        assert (ggg.asset, ggg.quote, ggg.tick_size) == ("GGG", "USDT", 0.0)
        assert register(reg, venue, ["AAA-USDT-SWAP"], res.infos) == {"AAA-USDT-SWAP": ids["AAA-USDT-SWAP"]}
    finally:
        reg.close()


# -- open-interest tiers ------------------------------------------------------------------

def simulated_max_window_weight(schedule, venue, minutes: int = 10) -> int:
    """Replay the tier timetable (each tier spreads its symbols evenly over its interval) and return
    the most weight in any 60 s window starting at a request."""
    events = []
    for symbols, interval in schedule.tiers():
        step = interval / len(symbols)
        n = int(minutes * 60 / step)
        events += [(k * step, venue.oi_request(symbols[k % len(symbols)])[2]) for k in range(n)]
    events.sort()
    times = [t for t, _ in events]
    best, j, acc = 0, 0, 0
    for i, (t, w) in enumerate(events):          # two pointers: window [t, t + 60)
        while j < len(events) and times[j] < t + 60.0:
            acc += events[j][1]
            j += 1
        best = max(best, acc)
        acc -= w
    return best


def test_binance_300_symbols_hot_tier_is_fast_and_the_tail_fits():
    volumes = {s: float(1000 - n) for n, s in enumerate(MANY)}
    cfg = vcfg(symbols=MANY)
    s = oi_schedule(MANY, volumes, cfg, binance, 1200)
    assert s.hot == MANY[:20] and len(s.tail) == 280
    assert (s.hot_interval_s, s.tail_interval_s) == (10.0, 60.0)     # 120 + 280 = 400 weight/min fits as set
    assert s.weight_per_minute == pytest.approx(400.0)
    assert simulated_max_window_weight(s, binance) <= 1200


@pytest.mark.parametrize("n", [3, 20, 300, 600, 2000])
@pytest.mark.parametrize("budget", [100, 1200, 2400])
@pytest.mark.parametrize("hot,hot_i,tail_i", [(20, 10.0, 60.0), (0, 10.0, 30.0), (500, 1.0, 5.0)])
def test_oi_schedule_never_plans_more_than_its_share_of_the_budget(n, budget, hot, hot_i, tail_i):
    symbols = [f"S{i}USDT" for i in range(n)]
    cfg = vcfg(symbols=symbols, oi_hot_symbols=hot, oi_poll_interval_s=hot_i, oi_tail_interval_s=tail_i)
    s = oi_schedule(symbols, {}, cfg, binance, budget)
    assert sorted(s.hot + s.tail) == sorted(symbols) and s.hot == symbols[:hot]
    assert s.weight_per_minute <= OI_BUDGET_SHARE * budget + 1e-9
    assert s.hot_interval_s >= hot_i and s.tail_interval_s >= tail_i
    assert simulated_max_window_weight(s, binance, minutes=3) <= budget
    if s.hot and s.tail:
        assert s.hot_interval_s <= s.tail_interval_s


def test_oi_schedule_uses_each_requests_weight():
    venue, _ = fake_venue()                      # weight 2 per poll
    symbols = [f"X{i}-USDT-SWAP" for i in range(40)]
    s = oi_schedule(symbols, {}, vcfg(symbols=symbols, oi_hot_symbols=10), venue, 100)
    # hot 10 x 2 x 6 = 120/min > 75/2, tail 30 x 2 = 60/min: both stretched by 180/75
    assert s.hot_interval_s == pytest.approx(24.0) and s.tail_interval_s == pytest.approx(144.0)
    assert s.weight_per_minute == pytest.approx(75.0)


# -- sharding at scale ------------------------------------------------------------------

def test_binance_plan_shards_300_symbols_within_the_stream_limits():
    cfg = VenueConfig(symbols=MANY)
    plans = binance.plan(cfg)
    wanted = binance.streams_for(MANY, cfg.streams, cfg.depth_levels)
    assert len(wanted["market"]) == 900 and len(wanted["public"]) == 600
    assert all(len(p.streams) <= min(cfg.max_streams_per_connection, binance.MAX_STREAMS_PER_CONNECTION)
               for p in plans)
    for path in ("market", "public"):
        mine = [p for p in plans if p.key.startswith(path + "/")]
        assert [s for p in mine for s in p.streams] == wanted[path]       # each stream once, in order
        assert all(p.url.startswith(binance.DEFAULT_WS_URLS[path]) for p in mine)
    assert len(plans) == 5 + 3 and len({p.key for p in plans}) == len(plans)
    # a configured limit above Binance's 1024 streams per socket is capped at 1024
    big = binance.plan(VenueConfig(symbols=[f"S{i}USDT" for i in range(400)], max_streams_per_connection=5000))
    assert [len(p.streams) for p in big] == [800, 1024, 176]


# -- the demo -----------------------------------------------------------------------------

def test_demo_keeps_a_selector_and_falls_back_to_the_simulators_symbols():
    from engine.cli import point_at_simulator
    from engine.config import loads
    ep = {"binance": {"ws_urls": {"public": "ws://h:1/public", "market": "ws://h:1/market"}, "rest_url": "http://h:1"}}
    cfg = loads('[venues.binance]\nsymbols = "top:2"\nfallback_symbols = ["XRPUSDT"]\n')
    b = point_at_simulator(cfg, ep).venues.binance
    assert (b.symbols, b.fallback_symbols, b.rest_url) == ("top:2", cfg.simulator.symbols, "http://h:1")
    listed = point_at_simulator(loads('[venues.binance]\nsymbols = ["XRPUSDT"]\n'), ep).venues.binance
    assert listed.symbols == cfg.simulator.symbols
