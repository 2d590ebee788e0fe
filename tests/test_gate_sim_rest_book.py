"""The Gate simulator's REST order book against its true book.

Gate answers sizes in contracts: decimal strings to a client that sends ``X-Gate-Size-Decimal: 1``, floored integers
to one that does not (PROTOCOLS.md §4.1). ETH_USDT (0.01 ETH contracts) rests fractional contracts in the simulated
book, so only the decimal answer can equal it; the feed's book, loaded from that answer through Gate's real parser,
then holds every level of the simulator's book at the snapshot's id."""
from __future__ import annotations

import json
import math

import pytest

from engine.books import attach
from engine.simulator.gate import MULTIPLIERS, GateVenue
from engine.simulator.market import SyntheticMarket
from engine.venues import gate

pytestmark = pytest.mark.unit

SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT")
DECIMAL = {"X-Gate-Size-Decimal": "1"}
LIMIT = 50


@pytest.fixture(scope="module")
def venue():
    market = SyntheticMarket(SYMBOLS, seed=4)
    for _ in range(30):
        market.step()
    return GateVenue(SYMBOLS, market=market)


def _book_path(contract: str) -> str:
    path, query, _ = gate.depth_snapshot_request(contract, LIMIT)
    return "/api/v4" + path + "?" + "&".join(f"{k}={v}" for k, v in query.items())


@pytest.mark.parametrize("contract", ["BTC_USDT", "ETH_USDT", "SOL_USDT"])
def test_decimal_snapshot_loads_the_simulators_true_book_at_its_id(venue, contract):
    symbol = contract.replace("_", "")
    true_id, true_bids, true_asks = venue.market.book_snapshot(symbol, LIMIT)
    status, body = venue.rest(_book_path(contract), DECIMAL)
    assert status == 200 and body["id"] == true_id
    assert all(isinstance(lv["s"], str) for lv in body["bids"] + body["asks"])

    mult = MULTIPLIERS[symbol[:-4]]
    parser = gate.Parser({contract: 3}.get, contract_sizes={contract: mult})
    books = attach(parser, gate, LIMIT)
    out: list = []
    parser.book_snapshot(contract, json.dumps(body).encode(), 1, out)
    book = books.books[contract]
    assert book.last_id == true_id and out   # synced and published
    for side, truth in ((book.bids, true_bids), (book.asks, true_asks)):
        assert sorted(side) == pytest.approx(sorted(p for p, _ in truth), rel=1e-12)
        assert [side[p] for p in sorted(side)] == pytest.approx([q for _, q in sorted(truth)], rel=1e-9)


def test_without_the_header_sizes_are_gates_floored_integers(venue):
    _, true_bids, true_asks = venue.market.book_snapshot("ETHUSDT", LIMIT)
    contracts = [q / MULTIPLIERS["ETH"] for _, q in true_bids + true_asks]
    assert any(abs(c - round(c)) > 1e-6 for c in contracts)   # the case the decimal form exists for
    status, body = venue.rest(_book_path("ETH_USDT"))
    assert status == 200
    sizes = [lv["s"] for lv in body["bids"] + body["asks"]]
    assert all(isinstance(s, int) for s in sizes)
    assert sizes == [math.floor(round(c, 6)) for c in contracts]


def test_stats_and_tickers_follow_the_header(venue):
    _, stats = venue.rest("/api/v4/futures/usdt/contract_stats?contract=ETH_USDT", DECIMAL)
    _, plain = venue.rest("/api/v4/futures/usdt/contract_stats?contract=ETH_USDT")
    oi = venue.market.open_interest("ETHUSDT") / MULTIPLIERS["ETH"]
    assert float(stats[0]["open_interest"]) == pytest.approx(oi, rel=1e-9)
    assert plain[0]["open_interest"] == math.floor(round(oi, 6))
    _, (ticker,) = venue.rest("/api/v4/futures/usdt/tickers?contract=ETH_USDT", {"x-gate-size-decimal": "1"})
    assert float(ticker["total_size"]) == pytest.approx(oi, rel=1e-9)
