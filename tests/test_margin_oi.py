"""Open interest of coin-margined (inverse) and USDC-margined perps: discovery from each venue's listing,
conversion with the listing's own contract size, polling within the weight budget."""
from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest

from engine import margin_oi
from engine.instruments import Market, Registry, registry_segment
from engine.margin_oi import MARKETS, Contract, MarginOiPoller, Unit, poll_interval, select, to_base
from engine.record import Kind
from engine.rest import RestPoller, WeightBudget
from engine.venues import load

pytestmark = pytest.mark.unit

PRICE = {"BTC": 65_000.0, "ETH": 2_500.0, "SOL": 150.0}


def _market(venue: str, margin: str):
    return next(m for m in MARKETS[venue] if m.margin == margin)


# -- documented listing and OI answers, one inverse and one USDC contract per venue -----------------------------
# (listing body, OI body, asset, expected contract size, expected base qty, expected USD)
BINANCE_DAPI_INFO = {"timezone": "UTC", "serverTime": 1591261042378, "symbols": [
    {"symbol": "BTCUSD_PERP", "pair": "BTCUSD", "contractType": "PERPETUAL", "deliveryDate": 4133404800000,
     "onboardDate": 1597042800000, "contractStatus": "TRADING", "contractSize": 100, "marginAsset": "BTC",
     "baseAsset": "BTC", "quoteAsset": "USD", "pricePrecision": 1, "quantityPrecision": 0,
     "filters": [{"filterType": "PRICE_FILTER", "maxPrice": "4520958", "minPrice": "1000", "tickSize": "0.1"}]},
    {"symbol": "ETHUSD_PERP", "pair": "ETHUSD", "contractType": "PERPETUAL", "contractStatus": "TRADING",
     "contractSize": 10, "marginAsset": "ETH", "baseAsset": "ETH", "quoteAsset": "USD", "filters": []},
    {"symbol": "BTCUSD_250627", "pair": "BTCUSD", "contractType": "CURRENT_QUARTER", "contractStatus": "TRADING",
     "contractSize": 100, "marginAsset": "BTC", "baseAsset": "BTC", "quoteAsset": "USD", "filters": []},
]}
BINANCE_FAPI_INFO = {"symbols": [
    {"symbol": "BTCUSDT", "contractType": "PERPETUAL", "status": "TRADING", "baseAsset": "BTC", "quoteAsset": "USDT",
     "marginAsset": "USDT", "filters": []},
    {"symbol": "BTCUSDC", "contractType": "PERPETUAL", "status": "TRADING", "baseAsset": "BTC", "quoteAsset": "USDC",
     "marginAsset": "USDC", "filters": [{"filterType": "PRICE_FILTER", "tickSize": "0.10"}]},
]}
BYBIT_INVERSE = {"retCode": 0, "retMsg": "OK", "result": {"category": "inverse", "nextPageCursor": "", "list": [
    {"symbol": "BTCUSD", "contractType": "InversePerpetual", "status": "Trading", "baseCoin": "BTC", "quoteCoin": "USD",
     "settleCoin": "BTC", "priceFilter": {"minPrice": "0.50", "maxPrice": "999999.00", "tickSize": "0.50"},
     "lotSizeFilter": {"maxOrderQty": "1000000", "minOrderQty": "1", "qtyStep": "1"}},
    {"symbol": "BTCUSDH25", "contractType": "InverseFutures", "status": "Trading", "baseCoin": "BTC",
     "quoteCoin": "USD", "settleCoin": "BTC"},
]}, "retExtInfo": {}, "time": 1672712495660}
BYBIT_LINEAR = {"retCode": 0, "retMsg": "OK", "result": {"category": "linear", "nextPageCursor": "", "list": [
    {"symbol": "BTCUSDT", "contractType": "LinearPerpetual", "status": "Trading", "baseCoin": "BTC",
     "quoteCoin": "USDT", "settleCoin": "USDT"},
    {"symbol": "ETHPERP", "contractType": "LinearPerpetual", "status": "Trading", "baseCoin": "ETH",
     "quoteCoin": "USDC", "settleCoin": "USDC", "priceFilter": {"tickSize": "0.05"}},
]}, "retExtInfo": {}, "time": 1672712495660}
OKX_SWAPS = {"code": "0", "msg": "", "data": [
    {"instType": "SWAP", "instId": "BTC-USD-SWAP", "uly": "BTC-USD", "instFamily": "BTC-USD", "settleCcy": "BTC",
     "ctVal": "100", "ctMult": "1", "ctValCcy": "USD", "ctType": "inverse", "tickSz": "0.1", "lotSz": "1",
     "state": "live"},
    {"instType": "SWAP", "instId": "BTC-USDC-SWAP", "uly": "BTC-USDC", "instFamily": "BTC-USDC", "settleCcy": "USDC",
     "ctVal": "0.0001", "ctMult": "1", "ctValCcy": "BTC", "ctType": "linear", "tickSz": "0.1", "lotSz": "0.01",
     "state": "live"},
    {"instType": "SWAP", "instId": "BTC-USDT-SWAP", "uly": "BTC-USDT", "instFamily": "BTC-USDT", "settleCcy": "USDT",
     "ctVal": "0.01", "ctMult": "1", "ctValCcy": "BTC", "ctType": "linear", "tickSz": "0.1", "state": "live"},
]}
GATE_BTC = [{"name": "BTC_USD", "type": "inverse", "quanto_multiplier": "0", "mark_price": "65000",
             "order_price_round": "0.1", "position_size": 13000000, "in_delisting": False}]
BITGET_COIN = {"code": "00000", "msg": "success", "requestTime": 1695796781343, "data": [
    {"symbol": "BTCUSD", "baseCoin": "BTC", "quoteCoin": "USD", "symbolType": "perpetual", "symbolStatus": "normal",
     "sizeMultiplier": "0.001", "pricePlace": "1", "priceEndStep": "1"}]}
BITGET_USDC = {"code": "00000", "msg": "success", "requestTime": 1695796781343, "data": [
    {"symbol": "SOLPERP", "baseCoin": "SOL", "quoteCoin": "USDC", "symbolType": "perpetual", "symbolStatus": "normal",
     "pricePlace": "3", "priceEndStep": "1"}]}


def _bybit_oi(symbol, category, oi):
    return {"retCode": 0, "retMsg": "OK", "result": {"symbol": symbol, "category": category, "nextPageCursor": "",
            "list": [{"openInterest": oi, "timestamp": "1669571400000"}]}, "retExtInfo": {}, "time": 1672053548579}


def _bitget_oi(symbol, size):
    return {"code": "00000", "msg": "success", "requestTime": 1695796781343,
            "data": {"openInterestList": [{"symbol": symbol, "size": size}], "ts": "1695796781344"}}


CASES = [
    # Binance COIN-M: openInterest counts contracts of contractSize USD (100 for BTC, 10 for ETH)
    ("binance", "coin", BINANCE_DAPI_INFO, {"symbol": "BTCUSD_PERP", "pair": "BTCUSD", "openInterest": "23006337",
                                            "contractType": "PERPETUAL", "time": 1591261042378},
     "BTC", 100.0, 23006337 * 100 / 65_000.0, 23006337 * 100.0),
    ("binance", "coin", BINANCE_DAPI_INFO, {"symbol": "ETHUSD_PERP", "pair": "ETHUSD", "openInterest": "5000000",
                                            "contractType": "PERPETUAL", "time": 1591261042378},
     "ETH", 10.0, 5_000_000 * 10 / 2_500.0, 50_000_000.0),
    ("binance", "usdc", BINANCE_FAPI_INFO, {"openInterest": "10659.509", "symbol": "BTCUSDC", "time": 1589437530011},
     "BTC", 1.0, 10659.509, 10659.509 * 65_000.0),
    # Bybit inverse: openInterest in USD (1 USD contracts); USDC perps (ETHPERP) in base coin
    ("bybit", "coin", BYBIT_INVERSE, _bybit_oi("BTCUSD", "inverse", "461134384.00000000"),
     "BTC", 1.0, 461134384 / 65_000.0, 461134384.0),
    ("bybit", "usdc", BYBIT_LINEAR, _bybit_oi("ETHPERP", "linear", "12000.5"), "ETH", 1.0, 12000.5, 12000.5 * 2_500.0),
    # OKX: oi contracts, oiCcy base, oiUsd USD (inverse: 3,000,000 contracts x 100 USD)
    ("okx", "coin", OKX_SWAPS, {"code": "0", "msg": "", "data": [
        {"instId": "BTC-USD-SWAP", "instType": "SWAP", "oi": "3000000", "oiCcy": "4615.384615",
         "oiUsd": "300000000", "ts": "1743041250440"}]}, "BTC", 100.0, 4615.384615, 300_000_000.0),
    ("okx", "usdc", OKX_SWAPS, {"code": "0", "msg": "", "data": [
        {"instId": "BTC-USDC-SWAP", "instType": "SWAP", "oi": "250000", "oiCcy": "25", "oiUsd": "1625000",
         "ts": "1743041250440"}]}, "BTC", 0.0001, 25.0, 1_625_000.0),
    # Gate BTC-settled BTC_USD: position_size in 1 USD contracts, to base at the mark in the same body
    ("gate", "coin", GATE_BTC, GATE_BTC[0], "BTC", 1.0, 13_000_000 / 65_000.0, 13_000_000.0),
    # Bitget COIN-FUTURES and USDC-FUTURES: size in base coin
    ("bitget", "coin", BITGET_COIN, _bitget_oi("BTCUSD", "2043.65"), "BTC", 1.0, 2043.65, 2043.65 * 65_000.0),
    ("bitget", "usdc", BITGET_USDC, _bitget_oi("SOLPERP", "90000"), "SOL", 1.0, 90_000.0, 90_000.0 * 150.0),
]


@pytest.mark.parametrize("venue, margin, listing, oi, asset, size, base, usd", CASES,
                         ids=[f"{c[0]}-{c[1]}-{c[4]}" for c in CASES])
def test_documented_answers_convert_to_base_and_usd(venue, margin, listing, oi, asset, size, base, usd):
    market = _market(venue, margin)
    infos = market.parse_listing(json.dumps(listing).encode())
    contracts = select(infos, market, ["BTC", "ETH", "SOL"])
    # only trading perpetuals of this margin type: no quarterlies, no USDT perps
    assert all(i.contract_type == "perpetual" and i.quote == market.quote for i in infos
               if i.symbol in {c.symbol for c in contracts})
    contract = next(c for c in contracts if c.asset == asset)
    assert contract.contract_size == pytest.approx(size)
    out: list = []
    ids = {contract.symbol: 7}
    outcome = market.parse_oi(json.dumps(oi).encode(), ids.get, 123, PRICE[asset], out)
    assert outcome.name == "EMITTED" and len(out) == 1
    rec = to_base(out[0], contract, PRICE[asset])
    assert rec[0] == Kind.OPEN_INTEREST and rec[4] == 7
    assert rec[8] == pytest.approx(base, rel=1e-6)
    assert rec[9] == pytest.approx(usd, rel=1e-6)
    assert rec[9] == pytest.approx(rec[7] * rec[8], rel=1e-6)


def test_every_listed_venue_has_both_margin_types_where_it_lists_them():
    assert {m.margin for m in MARKETS["binance"]} == {m.margin for m in MARKETS["bybit"]} == {"coin", "usdc"}
    assert {m.margin for m in MARKETS["okx"]} == {m.margin for m in MARKETS["bitget"]} == {"coin", "usdc"}
    assert [m.margin for m in MARKETS["gate"]] == ["coin"] and MARKETS["hyperliquid"] == ()
    assert margin_oi.coverage("hyperliquid") == "none" and "coin-margined" in margin_oi.coverage("gate")


def test_inverse_contracts_without_a_price_are_not_converted():
    market = _market("binance", "coin")
    contract = Contract("BTCUSD_PERP", "BTC", market, 100.0)
    rec = (Kind.OPEN_INTEREST, 1, 0, 0, 7, 0, 0, 0.0, 1000.0, 0.0, 0.0, 0.0)
    assert to_base(rec, contract, 0.0) is None
    assert to_base(rec, contract, 50_000.0)[8] == pytest.approx(2.0)   # 1000 x 100 USD / 50,000
    assert market.unit is Unit.USD_CONTRACTS


def test_gate_inverse_without_a_mark_emits_nothing():
    body = json.dumps({**GATE_BTC[0], "mark_price": ""}).encode()
    out: list = []
    assert _market("gate", "coin").parse_oi(body, {"BTC_USD": 1}.get, 0, 0.0, out).name == "PARSED" and out == []


def test_poll_interval_is_stretched_into_the_budget_share():
    market = _market("bybit", "coin")
    contracts = [Contract(f"X{i}USD", "BTC", market, 1.0) for i in range(6)]
    # 5 % of 100 weight/min = 5 weight/min; six weight-1 polls need 72 s
    assert poll_interval(contracts, 10.0, 100.0) == pytest.approx(72.0)
    assert poll_interval(contracts, 120.0, 100.0) == 120.0
    assert poll_interval([], 10.0, 100.0) == 10.0


# -- the poller over an httpx mock of Bybit ----------------------------------------------------------------------

def _bybit_server(calls: list):
    def handler(request: httpx.Request) -> httpx.Response:
        q = dict(request.url.params)
        calls.append((time.monotonic(), request.url.path, q))
        if request.url.path == "/v5/market/instruments-info":
            return httpx.Response(200, json=BYBIT_INVERSE if q["category"] == "inverse" else BYBIT_LINEAR)
        if request.url.path == "/v5/market/open-interest":
            return httpx.Response(200, json=_bybit_oi(q["symbol"], q["category"], "1000"))
        return httpx.Response(404, json={})
    return handler


@pytest.fixture
def registry(namespace):
    r = Registry.open(registry_segment(namespace), 64, 32)
    yield r
    r.close()


def _poller(registry, calls, budget_per_minute, interval_s, price=65_000.0, skip=()):
    venue = load("bybit")
    written: list = []
    rest = RestPoller(venue, "http://sim", WeightBudget(budget_per_minute),
                      client=httpx.AsyncClient(transport=httpx.MockTransport(_bybit_server(calls))))
    p = MarginOiPoller("bybit", venue, rest, registry, ["BTC", "ETH"], interval_s, budget_per_minute,
                       lambda asset: price, written.extend, skip=set(skip).__contains__)
    return p, written


def test_discovery_registers_inverse_and_usdc_contracts_with_their_margin(registry):
    calls: list = []
    p, _ = _poller(registry, calls, 500, 60.0, skip=())
    contracts = asyncio.run(p.discover())
    assert {c.symbol for c in contracts} == {"BTCUSD", "ETHPERP"}
    inv = registry.get(registry.lookup(load("bybit").VENUE, "BTCUSD"))
    usdc = registry.get(registry.lookup(load("bybit").VENUE, "ETHPERP"))
    assert (inv.market, inv.quote, inv.settle, inv.coin_margined, inv.contract_size) == (
        Market.PERP_INVERSE, "USD", "BTC", True, 1.0)
    assert (usdc.market, usdc.quote, usdc.settle, usdc.coin_margined) == (Market.PERP_LINEAR, "USDC", "USDC", False)
    # a symbol the feed already carries is not polled twice
    p2, _ = _poller(registry, [], 500, 60.0, skip=("ETHPERP",))
    assert [c.symbol for c in asyncio.run(p2.discover())] == ["BTCUSD"]


def test_poller_writes_converted_records_and_stays_within_its_budget_share(registry):
    calls: list = []
    # 5 % of 4800 weight/min = 240/min: two weight-1 contracts every 0.5 s need 240/min exactly; ask 0.1 s
    p, written = _poller(registry, calls, 4800, 0.1)

    async def go():
        stop = time.monotonic() + 1.4
        await p.run(lambda: time.monotonic() > stop)

    asyncio.run(go())
    assert p.interval == pytest.approx(0.5)
    polls = [t for t, path, _ in calls if path == "/v5/market/open-interest"]
    assert 4 <= len(polls) <= 2 * (1.4 / 0.5 + 1)          # unstretched (0.1 s) it would be ~28
    spent_per_min = len(polls) * 60.0 / (polls[-1] - polls[0] + p.interval / 2)
    assert spent_per_min <= margin_oi.MARGIN_OI_BUDGET_SHARE * 4800 * 1.01
    by_symbol = {registry.get(r[4]).symbol: r for r in written}
    assert by_symbol["BTCUSD"][8] == pytest.approx(1000 / 65_000.0)      # 1000 USD contracts
    assert by_symbol["ETHPERP"][8] == pytest.approx(1000.0)              # 1000 ETH
    c = p.counters()
    assert c["margin_oi_contracts"] == 2 and c["margin_oi_records"] == len(written) == len(polls)
    assert c["margin_oi_errors"] == c["margin_oi_no_price"] == 0


def test_a_contract_the_feed_takes_over_is_no_longer_polled(registry):
    calls: list = []
    taken: set = set()
    p, written = _poller(registry, calls, 4800, 0.1)     # two contracts every 0.5 s
    p.skip = taken.__contains__

    async def go():
        p.contracts = await p.discover()
        taken.add("BTCUSD")             # e.g. a re-resolved "all" selection now streams it
        stop = time.monotonic() + 0.4
        await p.run(lambda: time.monotonic() > stop)

    asyncio.run(go())
    polled = [q["symbol"] for _, path, q in calls if path == "/v5/market/open-interest"]
    assert polled == ["ETHPERP"] and {registry.get(r[4]).symbol for r in written} == {"ETHPERP"}


def test_polls_without_a_streamed_price_are_counted_not_written(registry):
    calls: list = []
    p, written = _poller(registry, calls, 1200, 60.0, price=0.0)

    async def go():
        p.contracts = await p.discover()
        for c in p.contracts:
            await p.poll_once(c)

    asyncio.run(go())
    assert written == [] and p.counters()["margin_oi_no_price"] == 2


def test_a_dead_listing_is_counted_and_retried(registry):
    venue = load("bybit")
    rest = RestPoller(venue, "http://sim", WeightBudget(1200),
                      client=httpx.AsyncClient(transport=httpx.MockTransport(lambda r: httpx.Response(404))))
    p = MarginOiPoller("bybit", venue, rest, registry, ["BTC"], 60.0, 1200, lambda a: 1.0, [].extend)
    assert asyncio.run(p.discover()) == []
    assert p.counters()["margin_oi_errors"] >= 2      # both listings (inverse, linear) failed


def test_real_coin_m_listing_gives_each_contracts_own_size(shared_data):
    """The recorded ``/dapi/v1/exchangeInfo`` (cryptofeed sample, 2021-07): BTC contracts are 100 USD, others 10."""
    path = shared_data / "cryptofeed" / "sample_data" / "BINANCE_DELIVERY.0"
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    body = next(line.split(": ", 1)[1] for line in path.read_text().splitlines() if "/dapi/v1/exchangeInfo" in line)
    market = _market("binance", "coin")
    contracts = {c.symbol: c for c in select(market.parse_listing(body.encode()), market, ["BTC", "ETH", "SOL"])}
    assert set(contracts) == {"BTCUSD_PERP", "ETHUSD_PERP"}           # SOL had no COIN-M perp then; no quarterlies
    assert contracts["BTCUSD_PERP"].contract_size == 100.0 and contracts["ETHUSD_PERP"].contract_size == 10.0
    oi = json.dumps({"symbol": "ETHUSD_PERP", "openInterest": "1000", "time": 1626836043975}).encode()
    out: list = []
    market.parse_oi(oi, {"ETHUSD_PERP": 3}.get, 0, 2_000.0, out)
    assert to_base(out[0], contracts["ETHUSD_PERP"], 2_000.0)[8:10] == pytest.approx((5.0, 10_000.0))


# -- the feed actor against the simulator ------------------------------------------------------------------------

# venue -> {contract the simulator lists: coin-margined?}
SIM_CONTRACTS = {
    "binance": {"BTCUSD_PERP": True, "ETHUSD_PERP": True, "SOLUSD_PERP": True, "BTCUSDC": False},
    "bybit": {"BTCUSD": True, "ETHUSD": True, "SOLUSD": True, "BTCPERP": False, "ETHPERP": False, "SOLPERP": False},
    "okx": {"BTC-USD-SWAP": True, "ETH-USD-SWAP": True, "SOL-USD-SWAP": True, "BTC-USDC-SWAP": False,
            "ETH-USDC-SWAP": False},
    "gate": {"BTC_USD": True},
    "bitget": {"BTCUSD": True, "ETHUSD": True, "SOLUSD": True, "BTCPERP": False, "ETHPERP": False, "SOLPERP": False},
}


@pytest.mark.process
@pytest.mark.timeout(60)
def test_feed_actors_write_margin_oi_records_from_the_simulator(namespace, tmp_path):
    """One simulator, one feed actor per venue (as the supervisor runs them, on one registry)."""
    from engine.record import venue_id
    from engine.ring import RingReader
    from engine.simulator.market import spec_for
    from engine.simulator.runner import start_in_thread
    from tests.conftest import wait_until
    from tests.harness.feeds import feed_config, open_registry, open_ring, spawn_feed
    from tests.harness.toml import toml_table

    venues = sorted(SIM_CONTRACTS)
    with start_in_thread(rate=300.0, venues=venues, seed=5, first_cascade_after_s=1e9) as sim:
        reg = open_registry(namespace)
        rings, procs = {}, []
        margin = toml_table("margin_oi", assets=["BTC", "ETH", "SOL"], interval_s=1.0)
        for venue in venues:
            ep = sim.endpoints(venue)
            symbols = (ep.get("symbols") or ["BTCUSDT", "ETHUSDT", "SOLUSDT"])[:3]
            rings[venue] = open_ring(namespace, venue)
            text = feed_config(namespace, tmp_path, venue, ep["ws_urls"], ep["rest_url"], margin, symbols=symbols,
                               fallback_symbols=symbols, stale_after_s=60.0, rest_weight_per_minute=6000)
            procs.append(spawn_feed(text, venue, start=False))
        for p in procs:
            p.start()
        got: dict[tuple[str, str], tuple] = {}
        try:
            readers = {v: RingReader(r, "test", start="earliest") for v, r in rings.items()}

            def drain():
                for venue, reader in readers.items():
                    recs, _ = reader.poll()
                    for r in recs:
                        if r["kind"] == Kind.OPEN_INTEREST and r["venue"] == venue_id(venue):
                            ins = reg.get(int(r["instrument"]))
                            got[venue, ins.symbol] = (ins, float(r["price"]), float(r["qty"]), float(r["notional"]))
                return all((v, s) in got for v, wanted in SIM_CONTRACTS.items() for s in wanted)

            wait_until(drain, 45, message="margin OI records of every simulated margin contract")
        finally:
            for p in procs:
                p.terminate()
            for p in procs:
                p.join(15)
            for obj in (*rings.values(), reg):
                obj.close()
        assert [p.exitcode for p in procs] == [0] * len(procs)
    for venue, wanted in SIM_CONTRACTS.items():
        for symbol, coin in wanted.items():
            ins, price, qty, usd = got[venue, symbol]
            assert ins.coin_margined == coin and ins.settle == (ins.asset if coin else "USDC")
            assert usd == pytest.approx(price * qty, rel=1e-6)
            # the simulator gives each margin contract a quarter of the USDT perp's (drifting) OI, in base units:
            # a contract size applied wrongly (x100, /100) lands far outside this band
            start = spec_for(f"{ins.asset}USDT").oi_base * 0.25
            assert start / 3 < qty < start * 3, (venue, symbol, qty, start)


# -- /oi -----------------------------------------------------------------------------------------------------------

def test_oi_reply_splits_stablecoin_from_coin_margined_per_venue(namespace, tmp_path):
    """Known state: Binance BTCUSDT 1,000 BTC + BTCUSD_PERP 400 BTC, Bybit BTCUSDT 600 BTC; add Bybit's USDC perp
    (100 BTC) and OKX's inverse swap (200 BTC) as the margin-OI poller registers them."""
    import numpy as np

    from engine.bot.commands import dispatch, parse
    from engine.kernels import columns as C
    from engine.record import Venue
    from tests.test_bot_known_market import NOW_NS, KnownMarket

    m = KnownMarket(namespace, tmp_path)
    try:
        usdc = m.registry.add(Venue.BYBIT, "BTCPERP", "BTC", quote="USDC")
        inv = m.registry.add(Venue.OKX, "BTC-USD-SWAP", "BTC", market=Market.PERP_INVERSE, contract_size=100.0,
                             quote="USD")
        rows = np.zeros((64, C.NCOL))
        for iid, oi in ((usdc, 100.0), (inv, 200.0)):
            rows[iid, C.NOW_TS], rows[iid, C.PRICE], rows[iid, C.OI], rows[iid, C.OI_USD] = NOW_NS, 50_000.0, oi, oi * 5e4
        m.table.write("i", np.array([usdc, inv]), rows)
        name, args = parse("/oi BTC")
        text = dispatch(m.context(42), name, args).text
    finally:
        m.close()
    assert "BY VENUE (stablecoin | coin-margined)" in text
    assert "• Binance: 1,000 BTC ($50.00M) | 400 BTC ($20.00M)" in text
    assert "• Bybit: 700 BTC ($35.01M) | n/a" in text                   # USDT 600 + USDC 100, both stablecoin
    assert "• Okx: n/a | 200 BTC ($10.00M)" in text
    assert "• Total: 1,700 BTC ($85.01M) | 600 BTC ($30.00M)" in text
    assert "USDC: $5.00M" in text and "Coin-Margined (Inverse): $30.00M" in text
    assert "contracts reporting: Binance BTCUSD_PERP, Bybit BTCPERP, Okx BTC-USD-SWAP" in text
    assert "gate (coin-margined)" in text and "hyperliquid (no other margin type listed)" in text
