"""Margin OI of OKX's inverse/USDC swaps and Bybit's inverse/USDC perps against the simulator's own REST answers,
and an OKX inverse-swap liquidation from the simulator's WebSocket format through the feed's parser.

The simulator's venue objects answer REST directly (an httpx transport calls ``venue.rest``), so each record can be
checked against the very body it came from: contracts x the contract's real size (OKX ``ctVal`` BTC-USD-SWAP 100 USD,
ETH/SOL-USD-SWAP 10 USD, BTC-USDC-SWAP 0.0001 BTC, ETH-USDC-SWAP 0.001 ETH; Bybit inverse 1 USD)."""
from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from engine.instruments import Market, Registry, registry_segment
from engine.margin_oi import MarginOiPoller
from engine.record import Kind, Side
from engine.rest import RestPoller, WeightBudget
from engine.simulator import bybit as sim_bybit
from engine.simulator import okx as sim_okx
from engine.simulator.market import Liquidation, SyntheticMarket
from engine.venues import Outcome, load, okx

pytestmark = pytest.mark.unit

SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT")
OKX_SIZES = {"BTC-USD-SWAP": 100.0, "ETH-USD-SWAP": 10.0, "SOL-USD-SWAP": 10.0,
             "BTC-USDC-SWAP": 0.0001, "ETH-USDC-SWAP": 0.001}
BYBIT_SIZES = {"BTCUSD": 1.0, "ETHUSD": 1.0, "SOLUSD": 1.0, "BTCPERP": 1.0, "ETHPERP": 1.0, "SOLPERP": 1.0}


@pytest.fixture
def registry(namespace):
    r = Registry.open(registry_segment(namespace), 64, 32)
    yield r
    r.close()


@pytest.fixture(scope="module")
def market():
    m = SyntheticMarket(SYMBOLS, seed=3)
    for _ in range(20):
        m.step()
    return m


def _poll_all(venue_name: str, sim_venue, market, registry) -> tuple[MarginOiPoller, dict, dict]:
    """Discover and poll every margin contract once; return the poller, symbol -> record, symbol -> OI body."""
    bodies: dict[str, dict] = {}

    def handler(request: httpx.Request) -> httpx.Response:
        status, body = sim_venue.rest(request.url.raw_path.decode())
        symbol = request.url.params.get("instId") or request.url.params.get("symbol")
        if "open-interest" in request.url.path and symbol:
            bodies[symbol] = body
        return httpx.Response(status, json=body)

    venue = load(venue_name)
    written: list = []
    rest = RestPoller(venue, "http://sim", WeightBudget(6000),
                      client=httpx.AsyncClient(transport=httpx.MockTransport(handler)))
    poller = MarginOiPoller(venue_name, venue, rest, registry, ["BTC", "ETH", "SOL"], 1.0, 6000,
                            lambda asset: market.price(f"{asset}USDT"), written.extend)

    async def go():
        poller.contracts = await poller.discover()
        for c in poller.contracts:
            await poller.poll_once(c)
        await rest.aclose()

    asyncio.run(go())
    return poller, {registry.get(r[4]).symbol: r for r in written}, bodies


def _share(market, asset: str) -> float:
    return sim_okx.MARGIN_OI_SHARE * market.open_interest(f"{asset}USDT")


def test_okx_inverse_and_usdc_swaps_convert_with_each_contracts_real_size(registry, market):
    poller, recs, bodies = _poll_all("okx", sim_okx.OkxVenue(SYMBOLS, market=market), market, registry)
    assert {c.symbol: c.contract_size for c in poller.contracts} == OKX_SIZES   # no SOL-USDC-SWAP on OKX
    assert set(recs) == set(OKX_SIZES) and poller.n["margin_oi_malformed"] == poller.n["margin_oi_no_price"] == 0
    for symbol, size in OKX_SIZES.items():
        ins = registry.get(registry.lookup(okx.VENUE, symbol))
        inverse = symbol.split("-")[1] == "USD"
        assert (ins.market, ins.quote, ins.contract_size) == (
            Market.PERP_INVERSE if inverse else Market.PERP_LINEAR, "USD" if inverse else "USDC", size)
        assert ins.settle == (ins.asset if inverse else "USDC")
        (d,) = bodies[symbol]["data"]
        contracts, (price, qty, usd) = float(d["oi"]), recs[symbol][7:10]
        if inverse:   # ctVal USD per contract: USD = contracts x ctVal, base = USD / price
            assert contracts == int(contracts) and usd == pytest.approx(contracts * size, abs=0.01)
        else:         # ctVal base per contract
            assert qty == pytest.approx(contracts * size, rel=1e-9)
        assert usd == pytest.approx(qty * price, rel=1e-6)
        assert price == pytest.approx(market.mark(f"{ins.asset}USDT").mark, rel=1e-6)
        # a quarter of the USDT swap's OI: a size applied wrongly (x100, /100, x ctVal twice) misses this by far
        assert qty == pytest.approx(_share(market, ins.asset), rel=1e-3)


def test_bybit_inverse_and_usdc_perps_convert_with_each_contracts_real_size(registry, market):
    poller, recs, bodies = _poll_all("bybit", sim_bybit.BybitVenue(SYMBOLS, market=market), market, registry)
    assert {c.symbol: c.contract_size for c in poller.contracts} == BYBIT_SIZES
    assert set(recs) == set(BYBIT_SIZES)
    for symbol in BYBIT_SIZES:
        ins = registry.get(registry.lookup(load("bybit").VENUE, symbol))
        inverse = not symbol.endswith("PERP")
        assert ins.coin_margined == inverse and ins.quote == ("USD" if inverse else "USDC")
        (point,) = bodies[symbol]["result"]["list"]
        price, qty, usd = recs[symbol][7:10]
        assert price == pytest.approx(market.price(f"{ins.asset}USDT"))
        if inverse:   # openInterest counts 1 USD contracts
            assert usd == pytest.approx(float(point["openInterest"]) * 1.0) and qty == pytest.approx(usd / price)
        else:         # base coin, one side (singleOpenInterest), as the USDT perps answer it
            assert qty == float(point["singleOpenInterest"]) and usd == pytest.approx(qty * price)
        assert qty == pytest.approx(_share(market, ins.asset), rel=1e-3)


def test_okx_inverse_swap_liquidation_has_its_usd_notional(market):
    """liquidation-orders instType SWAP carries inverse swaps too: sz is 100 USD contracts for BTC-USD-SWAP."""
    venue = sim_okx.OkxVenue(SYMBOLS, market=market, throttle=False)
    venue.inverse_liquidation_every = 2   # every second BTC/ETH liquidation is the inverse swap's
    events = [Liquidation("BTCUSDT", 0.0, True, 60_000.0, 60_010.0, 0.5),
              Liquidation("BTCUSDT", 0.0, False, 61_000.0, 60_990.0, 0.25),
              Liquidation("ETHUSDT", 0.0, True, 2_500.0, 2_501.0, 3.0),
              Liquidation("ETHUSDT", 0.0, True, 2_400.0, 2_401.0, 2.0)]
    frames = venue.render(events, 0.0, {"liquidation-orders:SWAP": ()}, 1_700_000_000_000)
    (name, raw), = frames
    groups = {g["instId"]: g["details"] for g in json.loads(raw)["data"]}
    assert set(groups) == {"BTC-USDT-SWAP", "BTC-USD-SWAP", "ETH-USDT-SWAP", "ETH-USD-SWAP"}
    assert [d["sz"] for d in groups["BTC-USD-SWAP"]] == ["152"]     # 0.25 BTC x 61,000 = 15,250 USD / 100
    assert [d["sz"] for d in groups["ETH-USD-SWAP"]] == ["480"]     # 2 ETH x 2,400 = 4,800 USD / 10

    _, listing = venue.rest("/api/v5/public/instruments?instType=SWAP")
    sizes = okx.contract_sizes(okx.parse_exchange_info(json.dumps(listing).encode()))
    ids = {"BTC-USD-SWAP": 1, "ETH-USD-SWAP": 2, "BTC-USDT-SWAP": 3, "ETH-USDT-SWAP": 4}
    parser = okx.Parser(ids.get, contract_sizes=sizes)
    out: list = []
    assert parser.parse(raw, 1, out) == (Outcome.EMITTED, "liquidation-orders:SWAP")
    by_iid = {r[4]: r for r in out if r[0] == Kind.LIQUIDATION}
    inv = by_iid[1]
    assert inv[2] == Side.SHORT and inv[7] == 61_000.0                      # buy order: a short liquidated
    assert inv[9] == pytest.approx(152 * 100.0) and inv[8] == pytest.approx(152 * 100.0 / 61_000.0)
    assert by_iid[2][9] == pytest.approx(480 * 10.0) and by_iid[2][2] == Side.LONG
    assert by_iid[3][9] == pytest.approx(0.5 * 60_000.0)                    # the linear swap: 50 x 0.01 BTC
    assert by_iid[4][9] == pytest.approx(3.0 * 2_500.0)


def test_inverse_liquidations_are_off_by_default(market):
    venue = sim_okx.OkxVenue(SYMBOLS, market=market, throttle=False)
    frames = venue.render([Liquidation("BTCUSDT", 0.0, True, 60_000.0, 60_010.0, 0.5)] * 3, 0.0,
                          {"liquidation-orders:SWAP": ()}, 1_700_000_000_000)
    assert [g["instId"] for g in json.loads(frames[0][1])["data"]] == ["BTC-USDT-SWAP"]
