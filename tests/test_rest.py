"""engine/rest.py: the rolling weight budget, Retry-After handling, error classes, OI polling."""
from __future__ import annotations

import asyncio
import email.utils
import json
import time
import types

import httpx
import pytest

from engine.record import Kind
from engine.rest import RestError, RestPoller, WeightBudget, retry_after_seconds
from engine.venues import InstrumentInfo, binance

pytestmark = pytest.mark.unit


class VirtualClock:
    """Monotonic time that only moves when someone sleeps on it."""

    def __init__(self) -> None:
        self.t = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.t += seconds
        await asyncio.sleep(0)


def budget(limit: int, clock: VirtualClock) -> WeightBudget:
    return WeightBudget(limit, clock=clock, sleep=clock.sleep)


def max_window_weight(spends: list[tuple[float, int]], window: float = 60.0) -> int:
    """The most weight inside any half-open window [t, t + window) that starts at a spend."""
    return max(sum(w for u, w in spends if t <= u < t + window) for t, _ in spends)


# -- WeightBudget ----------------------------------------------------------------------

def test_budget_spend_wait_and_refill_as_the_window_slides():
    clock = VirtualClock()
    b = budget(100, clock)
    assert b.wait_time(100) == 0 and b.available() == 100
    b.spend(60)
    clock.t += 10
    b.spend(40)
    assert b.available() == 0
    assert b.wait_time(1) == pytest.approx(50.0)      # the 60 spent at t0 returns at t0 + 60
    assert b.wait_time(61) == pytest.approx(60.0)     # needs the 40 spent at t0 + 10 back too
    clock.t += 50
    assert b.available() == 60 and b.wait_time(60) == 0 and b.wait_time(61) == pytest.approx(10.0)
    clock.t += 10
    assert b.available() == 100 and b.used == 100


def test_budget_weight_above_the_limit_waits_for_an_empty_window_instead_of_forever():
    clock = VirtualClock()
    b = budget(10, clock)
    b.spend(3)
    assert b.wait_time(40) == pytest.approx(60.0)
    clock.t += 60
    assert b.wait_time(40) == 0


def test_budget_block_for_holds_every_weight_until_it_expires():
    clock = VirtualClock()
    b = budget(100, clock)
    b.block_for(30)
    assert b.wait_time(1) == pytest.approx(30.0)
    b.block_for(5)                                     # a shorter ban never shortens a longer one
    assert b.wait_time(1) == pytest.approx(30.0)
    clock.t += 30
    assert b.wait_time(1) == 0


def test_budget_acquire_sleeps_exactly_until_the_weight_fits():
    clock = VirtualClock()
    b = budget(10, clock)

    async def go():
        for _ in range(25):
            await b.acquire(1)

    asyncio.run(go())
    assert b.used == 25 and clock.t == pytest.approx(1120.0)   # 10 at once, 10 at +60, 5 at +120


def test_concurrent_acquirers_never_exceed_the_limit_in_any_window():
    clock = VirtualClock()
    b = budget(50, clock)
    spends: list[tuple[float, int]] = []

    async def poller(weight: int, n: int):
        for _ in range(n):
            await b.acquire(weight)
            spends.append((clock(), weight))
            await asyncio.sleep(0)

    async def go():
        await asyncio.gather(poller(1, 200), poller(3, 60), poller(7, 20), poller(50, 2))

    asyncio.run(go())
    assert len(spends) == 282
    assert max_window_weight(spends) <= 50
    # and the budget is used, not wasted: 620 weight at 50 a minute needs 13 windows at least
    # (each weight-50 request takes a window of its own); allow one more for fragmentation
    assert 12 * 60 <= clock.t - 1000.0 <= 14 * 60


# -- Retry-After -----------------------------------------------------------------------

def test_retry_after_seconds_and_http_date():
    assert retry_after_seconds("7") == 7.0
    assert retry_after_seconds("0.5") == 0.5
    assert retry_after_seconds(None) == 60.0
    assert retry_after_seconds("soon", default=9.0) == 9.0
    now = 1_700_000_000.0
    date = email.utils.formatdate(now + 120, usegmt=True)      # "Tue, 14 Nov 2023 22:15:20 GMT"
    assert retry_after_seconds(date, wall=lambda: now) == pytest.approx(120.0)
    past = email.utils.formatdate(now - 30, usegmt=True)
    assert retry_after_seconds(past, wall=lambda: now) == 0.0
    assert retry_after_seconds("Tue, 14 Nov 2023 22:15:20", default=5.0) == 5.0   # no zone: not a valid date


# -- RestPoller against an httpx.MockTransport ------------------------------------------

class Server:
    """Scripted REST replies; records the virtual time of every request."""

    def __init__(self, clock: VirtualClock, script: list):
        self.clock = clock
        self.script = list(script)
        self.calls: list[tuple[float, str, dict]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls.append((self.clock(), request.url.path, dict(request.url.params)))
        step = self.script.pop(0) if self.script else 200
        if isinstance(step, Exception):
            raise step
        if isinstance(step, httpx.Response):
            return step
        symbol = request.url.params.get("symbol", "BTCUSDT")
        return httpx.Response(step, json={"openInterest": "10.5", "symbol": symbol, "time": 1700000000000})


def poller(server: Server, clock: VirtualClock, limit: int = 2400, venue=binance) -> RestPoller:
    client = httpx.AsyncClient(transport=httpx.MockTransport(server))
    return RestPoller(venue, "http://sim", budget(limit, clock), client=client)


def run(coro):
    return asyncio.run(coro)


@pytest.mark.parametrize("status", [429, 418])
def test_rate_limit_reply_blocks_the_budget_and_no_request_goes_before_it_expires(status):
    clock = VirtualClock()
    server = Server(clock, [httpx.Response(status, headers={"Retry-After": "7"}), 200])
    p = poller(server, clock)

    async def go():
        with pytest.raises(RestError) as err:
            await p.get("/fapi/v1/openInterest", {"symbol": "BTCUSDT"}, 1)
        assert err.value.status == status and err.value.retryable
        assert await p.get("/fapi/v1/openInterest", {"symbol": "BTCUSDT"}, 1)

    run(go())
    (t0, *_), (t1, *_) = server.calls
    assert t1 - t0 >= 7.0
    assert (p.rate_limited, p.errors, p.requests) == (1, 1, 2)


def test_rate_limit_with_an_http_date_blocks_until_that_date():
    clock = VirtualClock()
    when = email.utils.formatdate(time.time() + 90, usegmt=True)
    server = Server(clock, [httpx.Response(429, headers={"Retry-After": when}), 200])
    p = poller(server, clock)

    async def go():
        with pytest.raises(RestError):
            await p.get("/x", {}, 1)
        await p.get("/x", {}, 1)

    run(go())
    gap = server.calls[1][0] - server.calls[0][0]
    assert 88.0 <= gap <= 91.0    # HTTP dates have 1 s resolution


def test_rate_limit_blocks_every_caller_of_the_venue():
    clock = VirtualClock()
    server = Server(clock, [httpx.Response(429, headers={"Retry-After": "30"})])
    shared = budget(2400, clock)
    mk = lambda: RestPoller(binance, "http://sim", shared,
                            client=httpx.AsyncClient(transport=httpx.MockTransport(server)))
    a, b = mk(), mk()

    async def go():
        with pytest.raises(RestError):
            await a.get("/x", {}, 1)
        await b.get("/y", {}, 1)

    run(go())
    assert server.calls[1][0] - server.calls[0][0] >= 30.0


def test_server_errors_and_timeouts_are_counted_and_classified():
    clock = VirtualClock()
    server = Server(clock, [httpx.Response(503), httpx.ReadTimeout("slow"), httpx.ConnectError("refused"),
                            httpx.Response(400)])
    p = poller(server, clock)

    async def go():
        outcomes = []
        for _ in range(4):
            try:
                await p.get("/x", {}, 1)
            except RestError as exc:
                outcomes.append((exc.status, exc.retryable))
        return outcomes

    assert run(go()) == [(503, True), (0, True), (0, True), (400, False)]
    assert (p.server_errors, p.timeouts, p.transport_errors, p.errors, p.requests) == (1, 1, 1, 4, 4)


def test_get_retrying_retries_5xx_and_timeouts_later_but_not_4xx():
    clock = VirtualClock()
    server = Server(clock, [httpx.Response(502), httpx.ReadTimeout("slow"), 200])
    p = poller(server, clock)
    assert run(p.get_retrying("/x", {}, 1, attempts=3, backoff_s=2.0))
    assert [round(t - server.calls[0][0], 6) for t, *_ in server.calls] == [0.0, 2.0, 6.0]
    server2 = Server(clock, [httpx.Response(404), 200])
    p2 = poller(server2, clock)
    with pytest.raises(RestError):
        run(p2.get_retrying("/x", {}, 1))
    assert len(server2.calls) == 1


def test_open_interest_poll_retries_a_failed_symbol_on_its_next_turn():
    clock = VirtualClock()
    server = Server(clock, [httpx.Response(500), httpx.ReadTimeout("slow"), 200, 200, 200, 200])
    p = poller(server, clock)
    written: list = []
    ids = {"BTCUSDT": 0, "ETHUSDT": 1}

    def stop():
        return len(server.calls) >= 6

    run(p.poll_open_interest(["BTCUSDT", "ETHUSDT"], 0.02, ids.get, lambda iid: 100.0, written.extend, stop))
    assert [c[2]["symbol"] for c in server.calls] == ["BTCUSDT", "ETHUSDT"] * 3
    # the first round failed for both symbols; both came round again and were written
    assert [(r[0], r[4]) for r in written][:2] == [(Kind.OPEN_INTEREST, 0), (Kind.OPEN_INTEREST, 1)]
    assert written[0][9] == pytest.approx(1050.0)   # 10.5 base at the reference price 100
    assert (p.server_errors, p.timeouts) == (1, 1)


def test_concurrent_pollers_sharing_one_budget_stay_under_it():
    clock = VirtualClock()
    shared = budget(30, clock)
    spends: list[tuple[float, int]] = []
    weights = {"/w1": 1, "/w5": 5, "/w10": 10}

    def handler(request):
        spends.append((clock(), weights[request.url.path]))
        return httpx.Response(200, json={})

    pollers = [RestPoller(binance, "http://sim", shared, client=httpx.AsyncClient(transport=httpx.MockTransport(handler)))
               for _ in range(3)]

    async def hammer(p, path, n):
        for _ in range(n):
            await p.get(path, {}, weights[path])

    async def go():
        await asyncio.gather(hammer(pollers[0], "/w1", 60), hammer(pollers[1], "/w5", 12), hammer(pollers[2], "/w10", 6))

    run(go())
    assert len(spends) == 78 and sum(w for _, w in spends) == 180
    assert max_window_weight(spends) <= 30


# -- instrument list pagination -------------------------------------------------------

def test_instruments_follow_next_page_until_none():
    pages = {None: (["AUSDT", "BUSDT"], "p2"), "p2": (["CUSDT"], "p3"), "p3": (["DUSDT"], None)}

    def handler(request):
        cursor = request.url.params.get("after")
        syms, nxt = pages[cursor]
        return httpx.Response(200, json={"list": syms, "next": nxt})

    def parse(payload):
        return [InstrumentInfo(s, s[:-4], "USDT", "perpetual", "trading", 0.1, 1.0)
                for s in json.loads(payload)["list"]]

    def next_page(payload, params):
        nxt = json.loads(payload)["next"]
        return None if nxt is None else {**params, "after": nxt}

    venue = types.SimpleNamespace(EXCHANGE_INFO_REQUEST=("/instruments", {"kind": "swap"}, 2),
                                  parse_exchange_info=parse, next_page=next_page)
    clock = VirtualClock()
    p = RestPoller(venue, "http://sim", budget(100, clock), client=httpx.AsyncClient(transport=httpx.MockTransport(handler)))
    infos = run(p.instruments())
    assert [i.symbol for i in infos] == ["AUSDT", "BUSDT", "CUSDT", "DUSDT"]
    assert p.budget.used == 6 and p.requests == 3


def test_post_venues_send_params_as_a_json_body():
    seen = []

    def handler(request):
        seen.append((request.method, request.url.path, json.loads(request.content)))
        return httpx.Response(200, json=[{"name": "BTC"}])

    venue = types.SimpleNamespace(REST_METHOD="POST")
    clock = VirtualClock()
    p = RestPoller(venue, "http://hl", budget(100, clock), client=httpx.AsyncClient(transport=httpx.MockTransport(handler)))
    assert run(p.get("/info", {"type": "metaAndAssetCtxs"}, 20)) == b'[{"name":"BTC"}]'
    assert seen == [("POST", "/info", {"type": "metaAndAssetCtxs"})] and p.budget.used == 20
