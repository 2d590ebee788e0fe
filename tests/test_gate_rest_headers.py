"""Gate's ``X-Gate-Size-Decimal: 1`` on REST, from the feed's poller through the simulator's HTTP server.

Gate answers sizes in contracts: decimal strings to a client sending the header, floored integers to one that
does not, on REST as on the socket (Gate's announcement of the size-field change, 2025-12-18). ETH_USDT (0.01 ETH
contracts) rests fractional contracts, so without the header the feed's ETH book snapshot loses them.
"""
from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
from types import SimpleNamespace

import httpx
import pytest

from engine.rest import RestPoller, WeightBudget
from engine.simulator.gate import MULTIPLIERS
from engine.simulator.market import spec_for
from engine.simulator.runner import start_in_thread
from engine.venues import binance, gate

DECIMAL = {"X-Gate-Size-Decimal": "1"}


def _recording_client(seen: list) -> httpx.AsyncClient:
    def answer(request: httpx.Request) -> httpx.Response:
        seen.append((request.method, request.url.path, request.headers.get("x-gate-size-decimal")))
        return httpx.Response(200, json=[])
    return httpx.AsyncClient(transport=httpx.MockTransport(answer))


@pytest.mark.unit
def test_gate_asks_for_decimal_sizes_on_rest_as_on_its_socket():
    assert gate.REST_HEADERS == gate.WS_HEADERS == DECIMAL
    assert not hasattr(binance, "REST_HEADERS")


@pytest.mark.unit
def test_poller_sends_its_venues_headers_on_every_request_over_a_shared_client():
    """A client passed in (margin OI shares the feed's) stays header-free: each poller adds its venue's own."""
    seen: list = []

    async def main():
        client = _recording_client(seen)
        gate_rest = RestPoller(gate, "http://gate.test/api/v4", WeightBudget(600), client=client)
        binance_rest = RestPoller(binance, "http://binance.test", WeightBudget(600), client=client)
        post = SimpleNamespace(REST_METHOD="POST", REST_HEADERS={"X-Gate-Size-Decimal": "1"})
        post_rest = RestPoller(post, "http://post.test", WeightBudget(600), client=client)
        await gate_rest.get(*gate.depth_snapshot_request("ETH_USDT"))
        await binance_rest.get("/fapi/v1/time", {}, 1)
        await gate_rest.get(*gate.oi_request("ETH_USDT"))
        await post_rest.get("/info", {"type": "meta"}, 1)
        await client.aclose()

    asyncio.run(main())
    assert seen == [("GET", "/api/v4/futures/usdt/order_book", "1"), ("GET", "/fapi/v1/time", None),
                    ("GET", "/api/v4/futures/usdt/contracts/ETH_USDT", "1"), ("POST", "/info", "1")]


@pytest.mark.process
@pytest.mark.timeout(30)
def test_simulator_server_hands_request_headers_to_gate_and_still_serves_header_blind_venues():
    with start_in_thread(rate=100.0, venues=["gate", "binance"], seed=4, first_cascade_after_s=1e9) as sim:
        url = sim.endpoints("gate")["rest_url"] + "/futures/usdt/order_book"
        params = {"contract": "ETH_USDT", "limit": "20", "with_id": "true"}
        with httpx.Client(timeout=10) as client:
            decimal = client.get(url, params=params, headers=DECIMAL).json()
            plain = client.get(url, params=params).json()
            ping = client.get(sim.endpoints("binance")["rest_url"] + "/fapi/v1/ping")
    assert all(isinstance(lv["s"], str) for lv in decimal["bids"] + decimal["asks"])
    assert all(isinstance(lv["s"], int) for lv in plain["bids"] + plain["asks"])
    assert ping.status_code == 200


def _state(levels, spec, n: int) -> tuple:
    return tuple((round(p, spec.price_decimals), round(q, spec.qty_decimals)) for p, q in levels[:n])


@pytest.mark.process
@pytest.mark.timeout(60)
def test_gate_feed_actor_starts_eth_from_the_true_book(namespace):
    """The feed actor's own feed (symbols resolved and registered, parser, books, snapshots through its RestPoller):
    right after ETH's REST snapshot loads, its best levels are the simulator's true book at the book's id."""
    from actors.feed import FeedActor
    from engine import symbols as symbol_selection
    from engine.config import loads
    from tests.faults.test_book_faults import Truth
    from tests.harness.feeds import BINANCE_OFF, MARGIN_OI_OFF, feed_config, open_registry

    top = 5           # levels compared: deep enough that floored sizes show, shallow enough that no delta
    market_symbol, contract = "ETHUSDT", "ETH_USDT"   # replayed after the snapshot moves a level in from beyond
    spec = spec_for(market_symbol)
    run = tempfile.mkdtemp(prefix="ut-gate-headers-", dir="/tmp")
    loaded: list[tuple[int, tuple, tuple]] = []   # (book id, book's best levels, truth at that id)

    async def main(sim, truth):
        ep = sim.endpoints("gate")
        text = feed_config(namespace, run, "gate", ep["ws_urls"], ep["rest_url"], BINANCE_OFF + "\n" + MARGIN_OI_OFF,
                           symbols=[contract, "BTC_USDT"], streams=["book"], stale_after_s=60.0)
        actor = FeedActor(loads(text), "gate")
        actor.registry = open_registry(namespace)
        actor.write = lambda recs: None
        rest = RestPoller(actor.venue, ep["rest_url"], WeightBudget(actor.budget_per_minute))
        try:
            resolution = await symbol_selection.resolve(actor.vcfg, actor.venue, rest, "gate")
            actor._start_feed(rest, actor.register(resolution))
            parser = actor.feeds[0].parser
            snapshot = parser.book_snapshot

            def checked_snapshot(symbol, payload, ts, out):
                result = snapshot(symbol, payload, ts, out)
                book = parser.books.book(symbol)
                if symbol == contract and book.synced:
                    state = (_state(book.levels(top)[0], spec, top), _state(book.levels(top)[1], spec, top))
                    true = truth.states[market_symbol].get(book.last_id)
                    loaded.append((book.last_id, state, true and (true[0][:top], true[1][:top])))
                return result
            parser.book_snapshot = checked_snapshot
            for _ in range(400):
                if loaded:
                    break
                await asyncio.sleep(0.05)
        finally:
            for feed in actor.feeds:
                feed.stop()
            await asyncio.gather(*actor.feed_tasks, return_exceptions=True)
            await rest.aclose()
            actor.registry.close()

    try:
        with start_in_thread(rate=100.0, venues=["gate"], seed=7, symbols=["BTCUSDT", market_symbol],
                             first_cascade_after_s=1e9, cascade_every_s=0.0) as sim:
            truth = sim.call(Truth, sim.sim.market, sim.sim.venue("gate"), (market_symbol,))
            asyncio.run(main(sim, truth))
    finally:
        shutil.rmtree(run, ignore_errors=True)
    assert loaded, "ETH's book never synced from a REST snapshot"
    book_id, state, true = loaded[0]
    assert true is not None, f"no true book recorded at id {book_id}"
    assert state == true
    # the case the header exists for: a level resting a fraction of a 0.01 ETH contract
    contracts = [q / MULTIPLIERS["ETH"] for _, q in true[0] + true[1]]
    assert any(abs(c - round(c)) > 1e-6 for c in contracts), json.dumps(true)
