"""Issue 4: asset-level funding is normalised across venue intervals; FundingPressure says its momentum basis."""
from __future__ import annotations

import math
from types import SimpleNamespace

import msgspec
import numpy as np
import pytest

from engine.bot import analytics as A
from engine.config import Config
from engine.detectors import DetectorContext
from engine.detectors.funding import FundingDetector
from engine.instruments import Registry, registry_segment
from engine.kernels import BatchRunner
from engine.kernels import columns as C
from engine.record import Kind, Venue
from engine.signals import FundingPressure, decode, encode
from tests.reference_positioning import EPOCH_NS, FakeRegistry, make_ctx, records

SMALL = dict(resolution_s=1.0, momentum_window_s=3.0, min_samples=4, z=2.0, ew_alpha=0.3,
             extreme_rate={"*": 0.001}, extreme_floor=0.0002, momentum_rate={"*": 0.0005}, momentum_floor=0.0001)


def _cfg(**kw) -> Config:
    c = Config()
    f = msgspec.structs.replace(c.detectors.funding, **kw)
    return msgspec.structs.replace(c, detectors=msgspec.structs.replace(c.detectors, funding=f))


def _mark(venue, iid, t_s, rate, settled=0.0, next_ms=0.0, price=100.0):
    ts = EPOCH_NS + int(t_s * 1e9)
    return (Kind.MARK, venue, 0, 0, iid, ts, ts, price, price, settled, rate, next_ms)


BINANCE_8H = 0.0008     # per 8 h
HYPER_1H = 0.0001       # per 1 h: the same 0.0008 per 8 h


@pytest.mark.parametrize("last", ["binance", "hyperliquid"])
def test_asset_funding_is_the_same_whichever_venue_marked_last(namespace, last):
    """The pipeline and the funding detector over one batch: the asset row holds 0.0008 per 8 h either way,
    each instrument row its venue's own quote."""
    reg = Registry.open(registry_segment(namespace), 64, 16)
    try:
        bn, hl = reg.add(Venue.BINANCE, "BTCUSDT", "BTC"), reg.add(Venue.HYPERLIQUID, "BTC", "BTC")
        cfg = Config()
        runner = BatchRunner(cfg.detectors, reg)
        det = FundingDetector(DetectorContext(cfg, reg, runner))
        marks = [_mark(Venue.BINANCE, bn, 0, BINANCE_8H), _mark(Venue.HYPERLIQUID, hl, 0.5, HYPER_1H)]
        if last == "binance":
            marks = [marks[1], marks[0]]
        recs = records(marks)
        runner.run(recs)
        det.run(recs)
        a = int(runner.inst_asset[bn])
        assert runner.asset_rows[a, C.FUNDING] == pytest.approx(0.0008)
        assert runner.asset_rows[a, C.FUNDING_LEVEL] == pytest.approx(0.0008)
        assert runner.inst_rows[bn, C.FUNDING] == pytest.approx(BINANCE_8H)
        assert runner.inst_rows[hl, C.FUNDING] == pytest.approx(HYPER_1H)
        # a later batch with only one venue's mark keeps the mean of both, not that venue's raw rate
        recs = records([_mark(Venue.HYPERLIQUID, hl, 1.0, HYPER_1H)])
        runner.run(recs)
        det.run(recs)
        assert runner.asset_rows[a, C.FUNDING] == pytest.approx(0.0008)
    finally:
        reg.close()


def _ins(venue, rate, oi_usd=1e6, market="linear"):
    return SimpleNamespace(venue=venue, market=market, row={"funding": rate, "mark": 1.0, "oi_usd": oi_usd})


def test_the_bot_restates_each_venue_per_the_common_interval():
    fcfg = Config().detectors.funding
    hl = A.funding_figure(fcfg, "hyperliquid", HYPER_1H)
    bn = A.funding_figure(fcfg, "binance", BINANCE_8H)
    assert hl.pct == pytest.approx(0.01) and hl.interval_h == 1.0
    assert hl.common_pct == pytest.approx(bn.common_pct) == pytest.approx(0.08)
    assert hl.annual_pct == pytest.approx(bn.annual_pct) == pytest.approx(0.08 * 1095)
    both = [_ins("binance", BINANCE_8H), _ins("hyperliquid", HYPER_1H)]
    assert A.asset_funding_pct(fcfg, both) == pytest.approx(0.08)
    assert A.asset_funding_pct(fcfg, both[::-1]) == pytest.approx(0.08)
    assert math.isnan(A.asset_funding_pct(fcfg, [_ins("binance", 0.001, market="spot")]))   # spot has no funding
    assert math.isnan(A.asset_funding_pct(fcfg, []))
    assert A.venue_funding_text(fcfg, both[0]) == "+0.0800%"
    assert A.venue_funding_text(fcfg, both[1]) == "+0.0100% per 1 h"


def test_funding_command_weights_normalised_rates(monkeypatch):
    """/funding: each venue shows its own quote; the OI-weighted line averages rates per 8 h."""
    from engine.bot import price_cmds
    ins = [_ins("binance", BINANCE_8H, 3e6), _ins("hyperliquid", HYPER_1H, 1e6)]
    for i, sym in zip(ins, ("BTCUSDT", "BTC")):
        i.symbol, i.row["funding_settled"] = sym, math.nan
    ctx = SimpleNamespace(cfg=Config(), now=lambda: 1_700_000_000.0,
                          market=SimpleNamespace(instruments=lambda asset: ins),
                          history=SimpleNamespace(next_funding_ms={}))
    monkeypatch.setattr(price_cmds, "_asset", lambda ctx, text, usage: "BTC")
    text = price_cmds.cmd_funding(ctx, ["BTC"])
    assert "OI-weighted: +0.0800% (+87.60%/yr)" in text
    assert "Hyperliquid BTC: +0.0100% per 1 h (+87.60%/yr)" in text
    assert "Binance BTCUSDT: +0.0800% (+87.60%/yr)" in text


def _registry():
    reg = FakeRegistry()
    reg.add(Venue.BINANCE, "AUSDT", "A")
    reg.add(Venue.GATE, "G_USDT", "G")
    return reg


def test_momentum_from_predicted_vs_current_says_so():
    det = FundingDetector(make_ctx(_registry(), _cfg(**SMALL)))
    det.run(records([_mark(Venue.BINANCE, 0, 0, 0.0001, settled=0.0001)]))
    sigs = det.run(records([_mark(Venue.BINANCE, 0, 1, 0.0007, settled=0.0001)]))
    mom = [s for s in sigs if s.event == "momentum"]
    assert [(s.basis, s.window_s) for s in mom] == [("predicted_vs_current", 0.0)]


def test_momentum_from_the_level_change_says_so_and_extremes_have_no_basis():
    """Gate sends no settled rate and no next funding time: momentum is the change over the window."""
    det = FundingDetector(make_ctx(_registry(), _cfg(**SMALL)))
    sigs = det.run(records([_mark(Venue.GATE, 1, t, 0.0001) for t in range(8)]))
    assert sigs == []
    sigs = det.run(records([_mark(Venue.GATE, 1, 8, 0.0009)]))
    by_event = {s.event: s for s in sigs}
    assert by_event["momentum"].basis == "change" and by_event["momentum"].window_s == 3.0
    assert by_event["extreme"].basis == ""


def test_a_message_without_basis_decodes_with_an_empty_one():
    sig = FundingPressure(asset="BTC", ts_exchange=1, ts_recv=1, ts_computed=1, event="momentum",
                          direction="positive", rate=0.001, interval_h=8.0, annualised_pct=109.5, value=0.0005,
                          threshold=0.0003, basis="change")
    assert decode(encode(sig)).basis == "change"
    old = msgspec.msgpack.decode(encode(sig))
    del old["basis"]
    assert decode(msgspec.msgpack.encode(old)).basis == ""
