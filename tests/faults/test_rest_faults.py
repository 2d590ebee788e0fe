"""Fault 5: REST 429 with Retry-After, 418, 5xx and a refusing venue, against the simulator's fault API.

What must hold: no request leaves before a 429/418's ``Retry-After`` has
passed, the request weight in any window never exceeds the budget, 5xx are
retried with back-off, every failure is counted by class, and requests
succeed again afterwards. Request times are taken by an httpx event hook as
each request is sent.
"""
from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from engine.config import SimulatorConfig
from engine.rest import RestError, RestPoller, WeightBudget
from engine.simulator import start_in_thread
from engine.venues import binance

from .harness import figure, replay_hint, rng, schedule

pytestmark = pytest.mark.fault

WINDOW_S = 1.0
LIMIT = 8
JITTER_S = 0.05


@pytest.fixture(scope="module")
def sim():
    handle = start_in_thread(SimulatorConfig(rate=50, seed=11, venues=["binance"], first_cascade_after_s=1e6))
    yield handle
    handle.stop()


class Recorder:
    """Monotonic send time and status of every request."""

    def __init__(self):
        self.sent: list[float] = []
        self.replies: list[tuple[float, int, str | None]] = []

    async def on_request(self, request):
        self.sent.append(time.monotonic())

    async def on_response(self, response):
        self.replies.append((time.monotonic(), response.status_code, response.headers.get("Retry-After")))


def _poller(sim, rec: Recorder) -> RestPoller:
    client = httpx.AsyncClient(timeout=5.0, event_hooks={"request": [rec.on_request], "response": [rec.on_response]})
    return RestPoller(binance, sim.endpoints()["rest_url"], WeightBudget(LIMIT, window_s=WINDOW_S), client)


def _max_in_window(times: list[float], window: float) -> int:
    best, j = 0, 0
    for i, t in enumerate(times):
        while times[j] <= t - window:
            j += 1
        best = max(best, i - j + 1)
    return best


def _control(sim, action: str, **kw):
    srv = sim.sim.server
    sim.call(lambda: getattr(srv, action)(**kw))


def test_429_418_and_5xx_schedule_never_breaks_retry_after_or_the_budget(sim):
    name = "rest/schedule"
    r = rng(name)
    faults = schedule(name, 6, actions=("429", "418", "500", "502", "503"))
    rec = Recorder()
    poller = _poller(sim, rec)
    path, params, weight = binance.oi_request("BTCUSDT")
    assert weight == 1
    bans: list[tuple[float, float]] = []    # (reply time, retry-after)
    ok = failed = 0

    async def main():
        nonlocal ok, failed
        for f in faults:
            status = int(f.action)
            retry_after = r.choice((1, 2)) if status in (418, 429) else 1
            _control(sim, "http_error", status=status, n=r.randint(1, 2), retry_after=retry_after)
            for _ in range(r.randint(3, 6)):
                try:
                    await poller.get_retrying(path, params, weight, attempts=3, backoff_s=0.05)
                    ok += 1
                except RestError:
                    failed += 1
        # a burst far above the budget: it must be spread over windows
        results = await asyncio.gather(*(poller.get(path, params, weight) for _ in range(3 * LIMIT)),
                                       return_exceptions=True)
        ok += sum(not isinstance(x, Exception) for x in results)
        await poller.aclose()

    t0 = time.monotonic()
    asyncio.run(main())
    took = time.monotonic() - t0
    bans = [(t, float(ra)) for t, st, ra in rec.replies if st in (418, 429)]
    hint = replay_hint(name) + " faults: " + "; ".join(map(str, faults))
    early = [(t, ra, next((s for s in rec.sent if s > t), None)) for t, ra in bans]
    violations = [(ra, nxt - t) for t, ra, nxt in early if nxt is not None and nxt - t < ra - 0.01]
    assert violations == [], hint
    assert bans, "no 429/418 was served: the schedule proved nothing " + hint
    # the budget is charged when a request is admitted; its bytes leave a few ms later, so a window as the
    # venue sees it is shortened by that jitter (JITTER_S) before counting
    assert _max_in_window(rec.sent, WINDOW_S - JITTER_S) <= LIMIT, hint
    c = poller.counters()
    assert c["rest_requests"] == len(rec.sent) == len(rec.replies)
    assert c["rest_rate_limited"] == len(bans)
    assert c["rest_server_errors"] == sum(1 for _, st, _ in rec.replies if st >= 500)
    assert c["rest_errors"] == sum(1 for _, st, _ in rec.replies if st >= 400)
    assert rec.replies[-1][1] == 200, hint          # the venue answers normally afterwards
    waits = [nxt - t for t, _, nxt in early if nxt is not None]
    figure("rest_faults", name, requests=len(rec.sent), rate_limited=len(bans),
           server_errors=c["rest_server_errors"], ok=ok, failed=failed, max_in_window=_max_in_window(rec.sent, WINDOW_S - JITTER_S),
           budget=LIMIT, window_s=WINDOW_S, min_wait_after_ban_s=round(min(waits), 3) if waits else None,
           seconds=round(took, 2))


def test_refusing_venue_is_counted_and_recovers(sim):
    rec = Recorder()
    poller = _poller(sim, rec)
    path, params, weight = binance.oi_request("ETHUSDT")

    async def main():
        _control(sim, "refuse", seconds=0.5)
        with pytest.raises(RestError) as info:
            await poller.get(path, params, weight)
        assert info.value.status == 503 and info.value.retryable
        await asyncio.sleep(0.6)
        body = await poller.get(path, params, weight)
        await poller.aclose()
        return body

    assert b"openInterest" in asyncio.run(main())
    assert poller.counters()["rest_server_errors"] == 1
