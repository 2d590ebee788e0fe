"""Funding detector: kernel vs reference (hypothesis), normalisation across intervals, squeeze scenario, calm rate."""
from __future__ import annotations

import math

import msgspec
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from engine.config import Config
from engine.detectors.funding import FundingDetector
from engine.record import Kind, Venue
from engine.simulator.market import SyntheticMarket
from tests.reference_positioning import (CALM_S, EPOCH_NS, FakeRegistry, MarketFeed, calm_feed, make_ctx, records,
                                         ref_funding, run_batches)


def _cfg(**kw) -> Config:
    c = Config()
    f = msgspec.structs.replace(c.detectors.funding, **kw)
    return msgspec.structs.replace(c, detectors=msgspec.structs.replace(c.detectors, funding=f))


SMALL = dict(resolution_s=1.0, momentum_window_s=3.0, min_samples=4, z=2.0, ew_alpha=0.3,
             extreme_rate={"*": 0.001}, extreme_floor=0.0002, momentum_rate={"*": 0.0005}, momentum_floor=0.0001)


def _registry():
    reg = FakeRegistry()
    for v in (Venue.BINANCE, Venue.HYPERLIQUID):
        for s, a in (("AUSDT", "A"), ("BUSDT", "B")):
            reg.add(v, s, a)
    return reg


# (instrument, time step, rate, kind, bad rate, settled rate sent (0 = not), next funding time step)
event_st = st.tuples(st.integers(0, 3), st.integers(0, 30), st.floats(-0.003, 0.003),
                     st.sampled_from([Kind.MARK] * 6 + [Kind.TRADE]),
                     st.sampled_from([None] * 8 + [math.nan, math.inf, 5.0]),
                     st.sampled_from([0.0] * 6 + [0.0004, -0.0002, math.nan]), st.integers(0, 3))


@settings(max_examples=60, deadline=None)
@given(st.lists(event_st, max_size=150), st.integers(1, 40))
def test_kernel_matches_reference(events, batch):
    reg = _registry()
    det = FundingDetector(make_ctx(reg, _cfg(**SMALL)))
    rows, t = [], 0
    for iid, dt, rate, kind, bad, settled, hop in events:
        t += dt * 100_000_000
        rows.append((kind, 1, 0, 0, iid, EPOCH_NS + t, EPOCH_NS + t, 100.0, 100.0, settled,
                     rate if bad is None else bad, float(1 + t // 1_000_000_000 + hop)))
    recs = records(rows)
    sigs, got = run_batches(det, recs, batch)
    assert all(math.isfinite(s.rate) and math.isfinite(s.value) for s in sigs)
    v = det.view
    want, _ = ref_funding(recs, v.inst_asset, v.inst_venue, det.venue_scale, det.res_ns, det.mom_window,
                          det.level_vals.shape[1], SMALL["min_samples"], SMALL["z"], SMALL["ew_alpha"], det.p_extreme,
                          det.p_extreme_floor, det.p_mom, det.p_mom_floor, 0.5)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert (g[0], g[1], g[2]) == w[:3]
        assert np.allclose(g[5:], w[3:], rtol=1e-9, atol=1e-15)
    assert det.counters[0] == sum(1 for e in events if e[3] == Kind.MARK and (e[4] is not None or math.isnan(e[5])))


def test_rates_are_normalised_to_the_common_interval():
    """Hyperliquid quotes hourly: 0.0001/h is 0.0008 per 8 h, the same as Binance's 0.0008."""
    reg = _registry()
    det = FundingDetector(make_ctx(reg, _cfg(**SMALL)))
    ts = EPOCH_NS
    assert det.run(records([])) == []
    sigs = det.run(records([(Kind.MARK, 1, 0, 0, 0, ts, ts, 1.0, 1.0, 0.0, 0.0008, 0.0),
                            (Kind.MARK, 6, 0, 0, 2, ts, ts, 1.0, 1.0, 0.0, 0.0001, 0.0)]))
    assert det.level("A") == pytest.approx(0.0008)
    assert sigs == [] and det.factors("A")["funding"] == pytest.approx(0.8)
    sigs = det.run(records([(Kind.MARK, 6, 0, 0, 2, ts + 10**9, ts + 10**9, 1.0, 1.0, 0.0, 0.0002, 0.0)]))
    assert [(s.event, s.direction) for s in sigs] == [("extreme", "positive")]
    assert sigs[0].rate == pytest.approx(0.0012) and sigs[0].annualised_pct == pytest.approx(0.0012 * 1095 * 100)


def test_squeeze_scenario_fires():
    m = SyntheticMarket(("BTCUSDT", "ETHUSDT", "SOLUSDT"), seed=9, rate=40.0, cascade_every_s=0.0)
    feed = MarketFeed(m, venues=(Venue.BINANCE, Venue.HYPERLIQUID), bands=(), funding_hours={Venue.HYPERLIQUID: 1.0})
    det = FundingDetector(make_ctx(feed.reg, _cfg(momentum_window_s=120.0)))
    fired = det.run(feed.run(150.0))
    m.script("funding_squeeze", "SOLUSDT", duration=240.0, rate=-0.004)
    for _ in range(30):
        fired += det.run(feed.run(10.0))
    sol = [(s.event, s.direction) for s in fired if s.asset == "SOL"]
    assert ("extreme", "negative") in sol and ("momentum", "negative") in sol
    assert not [s for s in fired if s.asset != "SOL"]


def _calm(seconds: float) -> list:
    recs, reg = calm_feed(seconds)
    det = FundingDetector(make_ctx(reg))
    fired, _ = run_batches(det, recs)
    print(f"\nfunding calm false signals: {len(fired)} in {seconds:g} synthetic s x 3 assets")
    return fired


def test_calm_false_signal_rate():
    assert not _calm(CALM_S)


@pytest.mark.soak
def test_calm_hour_false_signal_rate():
    assert not _calm(3600.0)


def _mark(venue, iid, t_s, rate, settled=0.0, next_ms=0.0):
    ts = EPOCH_NS + int(t_s * 1e9)
    return (Kind.MARK, venue, 0, 0, iid, ts, ts, 1.0, 1.0, settled, rate, next_ms)


def test_momentum_is_predicted_vs_current_when_the_venue_sends_the_settled_rate():
    """OKX-style: the settled rate rides in ``notional``; the predicted one running away from it fires momentum."""
    reg = _registry()
    det = FundingDetector(make_ctx(reg, _cfg(**SMALL)))
    sigs = det.run(records([_mark(Venue.BINANCE, 0, 0, 0.0001, settled=0.0001)]))
    assert sigs == [] and det.spread[0] == pytest.approx(0.0)
    sigs = det.run(records([_mark(Venue.BINANCE, 0, 1, 0.0007, settled=0.0001)]))
    mom = [s for s in sigs if s.event == "momentum"]
    assert [(s.direction, s.window_s) for s in mom] == [("positive", 0.0)]
    assert mom[0].value == pytest.approx(0.0006) and mom[0].threshold == pytest.approx(0.0005)


def test_current_rate_is_the_last_prediction_before_the_settlement():
    """Binance-style: no settled rate sent; when the next funding time moves on, the rate before it is current."""
    reg = _registry()
    det = FundingDetector(make_ctx(reg, _cfg(**SMALL)))
    det.run(records([_mark(Venue.BINANCE, 0, 0, 0.0002, next_ms=1000.0),
                     _mark(Venue.BINANCE, 0, 1, 0.0003, next_ms=1000.0)]))
    assert math.isnan(det.settled[0]) and math.isnan(det.spread[0])
    det.run(records([_mark(Venue.BINANCE, 0, 2, 0.0001, next_ms=2000.0)]))
    assert det.settled[0] == pytest.approx(0.0003) and det.spread[0] == pytest.approx(-0.0002)
    # a late record with the old settlement time does not settle again
    det.run(records([_mark(Venue.BINANCE, 0, 3, -0.0001, next_ms=1000.0)]))
    assert det.settled[0] == pytest.approx(0.0003)
    # hourly venue: normalised to 8 h before the spread is taken
    det.run(records([_mark(Venue.HYPERLIQUID, 2, 4, 0.00001, next_ms=5000.0),
                     _mark(Venue.HYPERLIQUID, 2, 5, 0.00002, next_ms=6000.0)]))
    assert det.settled[2] == pytest.approx(0.00008) and det.rate[2] == pytest.approx(0.00016)


def test_predicted_and_current_reach_the_state_rows():
    from engine.kernels import columns as C
    reg = _registry()
    ctx = make_ctx(reg, _cfg(**SMALL))
    ctx.runner.inst_rows = np.zeros((len(reg), C.NCOL))
    ctx.runner.asset_rows = np.zeros((2, C.NCOL))
    det = FundingDetector(ctx)
    det.run(records([_mark(Venue.BINANCE, 0, 0, 0.0004, settled=0.0002),
                     _mark(Venue.HYPERLIQUID, 2, 0, 0.00005)]))
    i, a = ctx.runner.inst_rows, ctx.runner.asset_rows
    assert i[0, C.FUNDING_SETTLED] == pytest.approx(0.0002) and i[0, C.FUNDING_SPREAD] == pytest.approx(0.0002)
    assert math.isnan(i[2, C.FUNDING_SETTLED]) and i[2, C.FUNDING_LEVEL] == pytest.approx(0.0004)
    assert a[0, C.FUNDING_LEVEL] == pytest.approx(0.0004) and a[0, C.FUNDING_SETTLED] == pytest.approx(0.0002)
    assert a[0, C.FUNDING_SPREAD] == pytest.approx(0.0002)
    assert math.isnan(a[1, C.FUNDING_LEVEL])


def test_okx_sends_the_settled_rate_in_notional():
    from engine.venues import Outcome, okx
    ids: dict[str, int] = {}
    parser = okx.Parser(lambda s: ids.setdefault(s, len(ids)))
    mark = (b'{"arg":{"channel":"mark-price","instId":"BTC-USDT-SWAP"},"data":[{"instType":"SWAP",'
            b'"instId":"BTC-USDT-SWAP","markPx":"84660.1","ts":"1744590349506"}]}')

    def funding(sett: str) -> bytes:
        return (b'{"arg":{"channel":"funding-rate","instId":"BTC-USDT-SWAP"},"data":[{"instId":"BTC-USDT-SWAP",'
                b'"fundingRate":"0.0003","fundingTime":"1744590349506","settFundingRate":' + sett.encode()
                + b',"ts":"1744590349506"}]}')

    out: list = []
    parser.parse(mark, 1, out)
    assert parser.parse(funding('"0.0001"'), 2, out)[0] == Outcome.EMITTED
    assert (out[-1][9], out[-1][10]) == (0.0001, 0.0003)   # notional = settled, aux = predicted
    parser.parse(mark, 3, out)
    assert (out[-1][9], out[-1][10]) == (0.0001, 0.0003)   # the mark stream carries both on
    assert parser.parse(funding('""'), 4, out)[0] == Outcome.EMITTED and out[-1][9] == 0.0   # not sent
    n = len(out)
    assert parser.parse(funding('"x"'), 5, out)[0] == Outcome.MALFORMED and len(out) == n
