"""Liquidation-zone kernel (engine/kernels/zones.py) and detector (engine/detectors/zones.py)."""
from __future__ import annotations

import math

import msgspec
import numpy as np
import pytest

from engine.config import ZonesConfig
from engine.kernels.zones import Z, ZoneModel, liquidation_price, reach_probability
from engine.record import RECORD_DTYPE, Kind, Side, Venue

pytestmark = pytest.mark.unit

T0 = 1_771_000_000 * 10**9
S = 10**9


class Tape:
    """Builds a record batch for one instrument (id 0) with a running clock."""

    def __init__(self, t0: int = T0):
        self.t = t0
        self.rows: list[tuple] = []

    def add(self, kind, price=0.0, qty=0.0, side=0, notional=None, aux=0.0, aux2=0.0, dt=S, instrument=0):
        self.t += dt
        self.rows.append((kind, Venue.BINANCE, side, 0, instrument, self.t - 1000, self.t, price, qty,
                          price * qty if notional is None else notional, aux, aux2))
        return self

    def batch(self) -> np.ndarray:
        out = np.array(self.rows, dtype=RECORD_DTYPE)
        self.rows = []
        return out


def model(**changes) -> ZoneModel:
    changes.setdefault("seed_open_interest", False)   # most tests build the map from OI changes alone
    cfg = msgspec.structs.replace(ZonesConfig(), **changes)
    m = ZoneModel(cfg)
    m.resize([("binance", "BTC", 0)], 1)
    return m


def bin_of(m: ZoneModel, price: float) -> int:
    lw = math.log1p(m.cfg.bin_width)
    return int(math.floor((math.log(price) - m.ast[0, 0]) / lw)) + m.nb // 2


def test_positions_land_at_their_liquidation_price_and_leave_as_they_should():
    m = model(leverage={"*": [[10.0, 1.0]]}, maintenance={"*": 0.005}, split_clip=0.0, taker_weight=0.5,
              funding_weight=0.0)
    t = Tape()
    t.add(Kind.MARK, 100.0).add(Kind.OPEN_INTEREST, 100.0, 1000.0)           # first OI: nothing is known about it
    t.add(Kind.TRADE, 100.0, 10.0, Side.BUY).add(Kind.OPEN_INTEREST, 100.0, 1010.0)   # +10 BTC, all taker buys
    m.run(t.batch())
    long_liq = liquidation_price(100.0, 10.0, 0.005, True)                   # 90.5
    mp = m.asset_map(0)
    assert mp["long_usd"][bin_of(m, long_liq)] == pytest.approx(1000.0)
    assert mp["long_usd"].sum() == pytest.approx(1000.0) and mp["short_usd"].sum() == 0.0
    t.add(Kind.TRADE, 110.0, 10.0, Side.SELL).add(Kind.OPEN_INTEREST, 110.0, 1020.0)  # +10 BTC, all taker sells
    m.run(t.batch())
    short_liq = liquidation_price(110.0, 10.0, 0.005, False)                 # 120.45
    mp = m.asset_map(0)
    assert mp["short_usd"][bin_of(m, short_liq)] == pytest.approx(1100.0)
    t.add(Kind.OPEN_INTEREST, 110.0, 1010.0)                                 # 1 % of OI closes: everything shrinks
    m.run(t.batch())
    mp = m.asset_map(0)
    assert mp["long_usd"].sum() == pytest.approx(1000.0 * 1010 / 1020)
    assert mp["short_usd"].sum() == pytest.approx(1100.0 * 1010 / 1020)
    t.add(Kind.MARK, 90.7)                                                   # not yet through the long's bin
    m.run(t.batch())
    assert m.asset_map(0)["long_usd"].sum() > 0
    t.add(Kind.MARK, 90.0)                                                   # through it: liquidated
    m.run(t.batch())
    mp = m.asset_map(0)
    assert mp["long_usd"].sum() == 0.0 and mp["short_usd"].sum() == pytest.approx(1100.0 * 1010 / 1020)
    t.add(Kind.TRADE, 121.0, 1.0, Side.BUY)                                  # and the short through its bin
    m.run(t.batch())
    assert m.asset_map(0)["short_usd"].sum() == 0.0


def reference_map(events, m: ZoneModel, mix, mm, tw, clip):
    """Plain-Python reference: explicit positions with known liquidation prices."""
    positions = []   # [side, liq, usd]
    oi = 0.0
    buy = sell = vnum = vqty = 0.0
    last = 0.0
    for kind, price, qty, side in events:
        if kind == Kind.TRADE:
            buy += price * qty if side > 0 else 0.0
            sell += price * qty if side < 0 else 0.0
            vnum += price * qty
            vqty += qty
        if kind in (Kind.TRADE, Kind.MARK):
            last = price
            ip = bin_of(m, price)
            positions = [p for p in positions if not (p[0] == 0 and bin_of(m, p[1]) > ip)
                         and not (p[0] == 1 and bin_of(m, p[1]) < ip)]
        if kind == Kind.OPEN_INTEREST:
            if oi > 0 and qty > oi:
                entry = vnum / vqty if vqty else last
                imb = (buy - sell) / (buy + sell) if buy + sell else 0.0
                s = min(1 - clip, max(clip, 0.5 + tw * imb))
                total = sum(w for _, w in mix)
                for L, w in mix:
                    usd = (qty - oi) * entry * w / total
                    positions.append([0, liquidation_price(entry, L, mm, True), usd * s])
                    positions.append([1, liquidation_price(entry, L, mm, False), usd * (1 - s)])
            elif oi > 0:
                for p in positions:
                    p[2] *= qty / oi
            oi = qty
            buy = sell = vnum = vqty = 0.0
    out = np.zeros((2, m.nb))
    for side, liq, usd in positions:
        out[side, bin_of(m, liq)] += usd
    return out


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_kernel_matches_explicit_position_reference(seed):
    rng = np.random.default_rng(seed)
    mix = [[5.0, 0.3], [20.0, 0.5], [50.0, 0.2]]
    m = model(leverage={"*": mix}, maintenance={"*": 0.004}, split_clip=0.1, taker_weight=0.4, funding_weight=0.0)
    t = Tape()
    events = []
    price, oi = 100.0, 5000.0
    t.add(Kind.MARK, price)
    events.append((Kind.MARK, price, 0.0, 0))
    for _ in range(400):
        u = rng.random()
        if u < 0.6:
            price *= math.exp(rng.normal(0, 0.01))
            side = Side.BUY if rng.random() < 0.5 else Side.SELL
            q = float(rng.uniform(0.1, 5))
            t.add(Kind.TRADE, price, q, side)
            events.append((Kind.TRADE, price, q, side))
        elif u < 0.7:
            price *= math.exp(rng.normal(0, 0.01))
            t.add(Kind.MARK, price)
            events.append((Kind.MARK, price, 0.0, 0))
        else:
            oi = max(100.0, oi + float(rng.normal(20, 60)))
            t.add(Kind.OPEN_INTEREST, price, oi)
            events.append((Kind.OPEN_INTEREST, price, oi, 0))
    m.run(t.batch())
    ref = reference_map(events, m, mix, 0.004, 0.4, 0.1)
    mp = m.asset_map(0)
    assert ref.sum() > 0
    np.testing.assert_allclose(mp["long_usd"], ref[0], rtol=1e-9, atol=1e-6)
    np.testing.assert_allclose(mp["short_usd"], ref[1], rtol=1e-9, atol=1e-6)


def build_zone_below(m: ZoneModel, t: Tape, price: float = 100.0) -> None:
    """Warm the volatility (60 one-second marks) and put a large long zone about 3 % below price."""
    rng = np.random.default_rng(0)
    t.add(Kind.MARK, price).add(Kind.OPEN_INTEREST, price, 1000.0)
    for _ in range(60):
        t.add(Kind.MARK, price * math.exp(rng.normal(0, 0.0005)))
    t.add(Kind.TRADE, price, 500.0, Side.BUY).add(Kind.OPEN_INTEREST, price, 1500.0)   # 50 k USD long at 33x
    for band, usd in ((0.005, 2000.0), (0.01, 4000.0), (0.02, 8000.0)):
        t.add(Kind.BOOK_DEPTH, price, band, notional=2 * usd, aux=usd, aux2=usd)
    m.run(t.batch())


def test_zone_rows_fuel_ratio_and_approach_event():
    m = model(leverage={"*": [[33.0, 1.0]]}, maintenance={"*": 0.0}, split_clip=0.0, taker_weight=0.5,
              funding_weight=0.0, min_zone_usd=10_000.0, approach_sigmas=1.0, horizon_s=300.0)
    t = Tape()
    build_zone_below(m, t)
    row = m.out[0]
    zp = row[Z.LONG + Z.ZONE_PRICE]
    assert zp == pytest.approx(100.0 * (1 - 1 / 33.0), rel=0.003)
    assert row[Z.LONG + Z.ZONE_USD] == pytest.approx(50_000.0)
    assert math.isnan(row[Z.SHORT + Z.ZONE_USD])                      # the short side is empty
    # sigma over 5 min from 0.05 % per second: about 0.05 % x sqrt(300) = 0.87 %; the zone is 3 % away
    assert 0.004 < row[Z.SIGMA] < 0.02
    assert row[Z.LONG + Z.DISTANCE] > row[Z.THRESHOLD]
    # depth is taken from price to the zone's far edge (the fuel's range): beyond the widest band (2 %) it is
    # extrapolated in proportion, so it lies between the 2 % depth scaled to the zone price and to its far edge
    dist = row[Z.LONG + Z.DISTANCE]
    far = dist + m.cfg.zone_bins * m.cfg.bin_width
    assert 8000.0 * dist / 0.02 <= row[Z.LONG + Z.DEPTH_USD] <= 8000.0 * far / 0.02
    assert row[Z.LONG + Z.RATIO] == pytest.approx(50_000.0 / row[Z.LONG + Z.DEPTH_USD])
    # price drifts down towards the zone: one event when it comes within the threshold
    evs = []
    p = 100.0
    for _ in range(70):
        p *= 0.9995
        t.add(Kind.MARK, p)
        evs.extend(m.run(t.batch()).tolist())
    assert len(evs) == 1
    ev = m.events.dtype.names
    e = dict(zip(ev, evs[0]))
    assert e["side"] == 1 and e["distance"] <= e["threshold"]
    assert e["zone_usd"] == pytest.approx(50_000.0)


def test_batching_does_not_change_the_events():
    def run(split: int):
        m = model(leverage={"*": [[33.0, 1.0]]}, maintenance={"*": 0.0}, split_clip=0.0, min_zone_usd=10_000.0)
        t = Tape()
        build_zone_below(m, t)
        p = 100.0
        for _ in range(70):
            p *= 0.9995
            t.add(Kind.MARK, p)
        recs = t.batch()
        out = [m.run(recs[i:i + split]) for i in range(0, len(recs), split)]
        return np.concatenate(out).tolist(), m.out.copy()

    a, out_a = run(1)
    b, out_b = run(17)
    assert a == b and len(a) == 1
    np.testing.assert_array_equal(out_a, out_b)


class _Reg:
    def get(self, iid):
        from engine.instruments import Instrument
        return Instrument(iid, Venue.BINANCE, "BTCUSDT", "BTC", 0, 0, "USDT", 1.0, 0.0)


class _Runner:
    inst_asset = np.zeros(1, dtype=np.int64)
    asset_names = ["BTC"]
    owned = np.ones(1, dtype=bool)


def test_detector_publishes_zone_approach_with_factors_and_summary():
    from engine.config import Config, DetectorsConfig
    from engine.detectors import DetectorContext
    from engine.detectors.zones import ZonesDetector
    from engine.signals import ZoneApproach, decode, encode

    zc = msgspec.structs.replace(ZonesConfig(), leverage={"*": [[33.0, 1.0]]}, maintenance={"*": 0.0},
                                 split_clip=0.0, min_zone_usd=10_000.0,
                                 seed_open_interest=False)
    cfg = msgspec.structs.replace(Config(), detectors=msgspec.structs.replace(DetectorsConfig(), zones=zc))
    det = ZonesDetector(DetectorContext(cfg, _Reg(), _Runner()))
    t = Tape()
    det._sync()
    build_zone_below(det.model, t)
    far = det.factors("BTC")
    assert 0.0 <= far["zone_proximity"] < 1.0 and 0.0 < far["fuel_to_liquidity"] < 1.0
    summary = det.zones("BTC")
    assert summary["long"]["usd"] == pytest.approx(50_000.0) and summary["short"] is None
    p, sigs = 100.0, []
    while not sigs and p > 95.0:
        p *= 0.9995
        t.add(Kind.MARK, p)
        sigs += det.run(t.batch())
    assert len(sigs) == 1 and isinstance(sigs[0], ZoneApproach)
    s = sigs[0]
    assert s.side == "long" and s.asset == "BTC" and s.distance_pct <= s.threshold_pct
    assert s.fuel_to_liquidity == pytest.approx(s.fuel_usd / s.depth_usd)
    assert decode(encode(s)) == s
    assert det.factors("BTC")["zone_proximity"] > far["zone_proximity"]
    assert det.thresholds("BTC")["approach_pct"] > 0


def test_first_open_interest_seeds_the_map_at_the_price_when_asked():
    t = Tape()
    t.add(Kind.OPEN_INTEREST, 0.0, 500.0)                                    # before any price: waits
    t.add(Kind.MARK, 100.0).add(Kind.OPEN_INTEREST, 100.0, 1000.0)
    seeded, plain = model(leverage={"*": [[10.0, 1.0]]}, seed_open_interest=True), model(leverage={"*": [[10.0, 1.0]]})
    batch = t.batch()
    seeded.run(batch)
    plain.run(batch)
    mp = seeded.asset_map(0)
    assert mp["long_usd"][bin_of(seeded, liquidation_price(100.0, 10.0, 0.005, True))] == pytest.approx(50_000.0)
    assert mp["short_usd"][bin_of(seeded, liquidation_price(100.0, 10.0, 0.005, False))] == pytest.approx(50_000.0)
    assert plain.asset_map(0)["long_usd"].sum() == 0.0 and plain.asset_map(0)["short_usd"].sum() == 0.0
    t.add(Kind.OPEN_INTEREST, 100.0, 900.0)                                  # later readings: changes only
    seeded.run(t.batch())
    assert seeded.asset_map(0)["long_usd"].sum() == pytest.approx(45_000.0)


def test_reach_probability_and_the_expected_usd_ranking():
    prices = 100.0 * np.exp(np.array([-0.02, -0.01, 0.0, 0.01, 0.05]))
    r = reach_probability(prices, 100.0, 0.01 / math.sqrt(100.0), 100.0)     # sigma over the horizon: 1 %
    assert r[2] == pytest.approx(1.0) and r[1] == pytest.approx(r[3])
    assert r[1] == pytest.approx(2 * (1 - 0.841344746), abs=1e-6)            # one sigma away: 2 (1 - Phi(1))
    assert r[0] == pytest.approx(2 * (1 - 0.977249868), abs=1e-6) and r[4] < 1e-6
    assert np.isnan(reach_probability(prices, 100.0, float("nan"), 100.0)).all()
    m = model(leverage={"*": [[10.0, 1.0]]}, seed_open_interest=True, horizon_s=300.0)
    t = Tape()
    t.add(Kind.MARK, 100.0).add(Kind.OPEN_INTEREST, 100.0, 1000.0)
    m.run(t.batch())
    mp = m.asset_map(0)
    assert np.isnan(mp["reach"]).all()                                       # no volatility yet: USD alone
    assert np.array_equal(mp["expected_usd"], mp["long_usd"] + mp["short_usd"])
    for i in range(60):                                                      # a 0.1 % zig-zag every second
        t.add(Kind.TRADE, 100.0 * (1.001 if i % 2 else 1.0), 1.0, Side.BUY)
    m.run(t.batch())
    mp = m.asset_map(0)
    sigma = m.sigma_1s(0)
    assert 0.0005 < sigma < 0.0015
    expect = reach_probability(mp["price"], float(m.ast[0, 8]), sigma, 300.0)
    np.testing.assert_allclose(mp["reach"], expect)
    np.testing.assert_allclose(mp["expected_usd"], (mp["long_usd"] + mp["short_usd"]) * expect)


def test_funding_tilts_the_split_per_common_interval_whatever_interval_the_venue_quotes():
    """Hyperliquid quotes funding per 1 h, Binance per 8 h: the same pressure (0.01 %/h = 0.08 %/8 h) must tilt
    new positions alike (the kernel restates each venue's rate per detectors.funding's common interval)."""
    from engine.config import Config
    fcfg = Config().detectors.funding
    cfg = msgspec.structs.replace(ZonesConfig(), seed_open_interest=False, leverage={"*": [[10.0, 1.0]]},
                                  maintenance={"*": 0.005}, split_clip=0.0, taker_weight=0.0, funding_weight=0.3,
                                  funding_scale=0.001)
    longs = {}
    for venue, rate in (("binance", 0.0008), ("hyperliquid", 0.0001)):
        m = ZoneModel(cfg, funding_cfg=fcfg)
        m.resize([(venue, "BTC", 0)], 1)
        t = Tape()
        t.add(Kind.MARK, 100.0, aux=rate).add(Kind.OPEN_INTEREST, 100.0, 1000.0)
        t.add(Kind.OPEN_INTEREST, 100.0, 1010.0)                               # +10 BTC, no taker flow
        m.run(t.batch())
        mp = m.asset_map(0)
        longs[venue] = mp["long_usd"].sum() / (mp["long_usd"].sum() + mp["short_usd"].sum())
    # positive funding (longs pay) with clip(0.0008 / 0.001) = 0.8: a long share of 0.5 - or + 0.24
    assert longs["binance"] == pytest.approx(longs["hyperliquid"]) and abs(longs["binance"] - 0.5) == pytest.approx(0.24)
