"""Scripted scenarios of the synthetic market: each changes what it says and nothing is lost after it ends."""
from __future__ import annotations

import math

import numpy as np
import pytest

from engine.simulator.market import BookDiff, MarkBatch, SyntheticMarket, Trade
from engine.simulator.scenarios import SCENARIOS, parse_script


def _market(**kw) -> SyntheticMarket:
    kw.setdefault("cascade_every_s", 0.0)
    return SyntheticMarket(("BTCUSDT", "ETHUSDT", "SOLUSDT"), seed=kw.pop("seed", 11), **kw)


def _trades(events, symbol):
    return [e for e in events if isinstance(e, Trade) and e.symbol == symbol]


def test_whale_print_emits_the_scripted_trade():
    m = _market()
    m.run(2.0)
    m.script("whale_print", "ETHUSDT", usd=2_000_000.0, side="sell")
    events = m.run(0.05)
    big = [e for e in _trades(events, "ETHUSDT") if e.price * e.qty > 1_500_000.0]
    assert len(big) == 1 and not big[0].taker_buy
    assert big[0].price * big[0].qty == pytest.approx(2_000_000.0, rel=0.01)


def test_volume_burst_multiplies_the_trade_rate_then_ends():
    m = _market()
    before = len(_trades(m.run(30.0), "SOLUSDT"))
    m.script("volume_burst", "SOLUSDT", duration=30.0, factor=6.0, side="buy")
    burst = _trades(m.run(30.0), "SOLUSDT")
    after = len(_trades(m.run(30.0), "SOLUSDT"))
    assert len(burst) > 4 * before
    assert sum(t.taker_buy for t in burst) / len(burst) > 0.7
    assert after < 2 * before
    assert m.states["SOLUSDT"].volume_mult == 1.0 and m.states["SOLUSDT"].flow_bias == 0.0


@pytest.mark.parametrize("name,sign,pct", [("oi_explosion", 1, 40.0), ("oi_flush", -1, 35.0)])
def test_open_interest_moves_by_the_scripted_share(name, sign, pct):
    m = _market()
    m.run(1.0)
    oi0 = m.open_interest("BTCUSDT")
    m.script(name, "BTCUSDT", duration=60.0, pct=pct)
    m.run(60.0)
    change = m.open_interest("BTCUSDT") / oi0 - 1.0
    assert sign * change > 0.8 * pct / 100.0   # trades and liquidations add a little noise


def test_funding_squeeze_drives_funding_to_the_target():
    m = _market()
    m.script("funding_squeeze", "ETHUSDT", duration=120.0, rate=0.004)
    events = m.run(100.0)
    marks = [u.funding_rate for e in events if isinstance(e, MarkBatch) for u in e.marks if u.symbol == "ETHUSDT"]
    assert np.mean(marks[-30:]) == pytest.approx(0.004, rel=0.1)
    assert abs(np.mean(marks[:3])) < 0.002


def _book_usd(m, symbol, levels=20):
    _, bids, asks = m.book_snapshot(symbol, levels)
    return sum(p * q for p, q in bids), sum(p * q for p, q in asks)


def test_book_imbalance_and_depth_collapse_scale_resting_size():
    m = _market()
    m.run(5.0)
    bid0, ask0 = _book_usd(m, "BTCUSDT")
    m.script("book_imbalance", "BTCUSDT", duration=20.0, side="ask", factor=5.0)
    m.run(10.0)
    bid1, ask1 = _book_usd(m, "BTCUSDT")
    assert ask1 / bid1 > 2.5 * ask0 / bid0
    m.run(11.0)
    m.script("depth_collapse", "BTCUSDT", duration=10.0)
    m.run(0.5)
    bid2, ask2 = _book_usd(m, "BTCUSDT")
    assert bid2 + ask2 < 0.3 * (bid0 + ask0)
    m.run(10.0)
    assert m.states["BTCUSDT"].book_mult == [pytest.approx(1.0), pytest.approx(1.0)]


def test_book_diffs_carry_the_scaled_levels():
    """Every venue renders BookDiff; the scaling must reach it (not just the market's internal book)."""
    m = _market()
    m.run(2.0)
    m.script("book_imbalance", "BTCUSDT", duration=10.0, side="bid", factor=12.0)
    diffs = [e for e in m.run(1.0) if isinstance(e, BookDiff) and e.symbol == "BTCUSDT"]
    top_bid = sum(p * q for p, q in diffs[-1].top_bids)
    top_ask = sum(p * q for p, q in diffs[-1].top_asks)
    assert top_bid > 3 * top_ask


def _returns_corr(m, seconds, a="BTCUSDT", b="ETHUSDT"):
    pa, pb = [], []
    for _ in range(int(seconds)):
        m.run(1.0)
        pa.append(math.log(m.price(a)))
        pb.append(math.log(m.price(b)))
    return float(np.corrcoef(np.diff(pa), np.diff(pb))[0, 1])


def test_correlation_break_decouples_the_pair():
    m = _market()
    calm = _returns_corr(m, 200)
    m.script("correlation_break", "ETHUSDT", duration=200.0)
    broken = _returns_corr(m, 200)
    assert calm > 0.4
    assert broken < calm - 0.6


def test_cascade_and_calm_scenarios():
    m = SyntheticMarket(("BTCUSDT",), seed=3, cascade_every_s=5.0, first_cascade_after_s=1.0)
    m.script("calm", duration=60.0)
    m.run(59.0)
    assert m.cascades_started == 0
    m.script("cascade", "BTCUSDT", duration=10.0)
    m.run(1.0)
    assert m.cascades_started >= 1


def test_same_seed_same_script_same_events():
    def run():
        m = _market(seed=5)
        m.script("whale_print", "BTCUSDT", at=1.0)
        m.script("volume_burst", "ETHUSDT", at=2.0, duration=3.0)
        return m.run(6.0)
    assert run() == run()


def test_parse_script_and_errors():
    assert parse_script("oi_flush:btcusdt@30,pct=20,side=bid") == ("oi_flush", "BTCUSDT", 30.0,
                                                                   {"pct": 20.0, "side": "bid"})
    assert parse_script("calm") == ("calm", None, None, {})
    with pytest.raises(ValueError, match="unknown scenario"):
        parse_script("meteor:BTCUSDT")
    with pytest.raises(ValueError, match="seconds"):
        parse_script("calm@soon")
    with pytest.raises(ValueError, match="key=value"):
        parse_script("calm,oops")
    m = _market()
    with pytest.raises(ValueError, match="unknown symbol"):
        m.script("whale_print", "DOGEUSDT")
    with pytest.raises(ValueError, match="side must be"):
        m.script("book_imbalance", "BTCUSDT", side="up")
        m.run(0.02)
    assert set(SCENARIOS) >= {"whale_print", "volume_burst", "oi_explosion", "oi_flush", "funding_squeeze",
                              "book_imbalance", "depth_collapse", "correlation_break", "cascade", "calm"}


def test_simulator_scripts_from_config_and_the_http_control():
    import json
    import urllib.request

    from engine.config import SimulatorConfig
    from engine.simulator.runner import start_in_thread

    cfg = SimulatorConfig(venues=["binance"], symbols=["BTCUSDT", "ETHUSDT"], cascade_every_s=0.0,
                          scenarios=["oi_explosion:ETHUSDT@1000,pct=50"])
    with start_in_thread(cfg) as h:
        m = h.sim.market
        assert [(s.name, s.symbol, s.start) for s in m.scripted] == [("oi_explosion", "ETHUSDT", 1000.0)]
        url = f"http://127.0.0.1:{h.port}/_sim/scenario?name=whale_print&symbol=BTCUSDT&usd=3000000"
        with urllib.request.urlopen(url, timeout=5) as resp:
            answer = json.loads(resp.read())
        assert answer["scenario"] == "whale_print" and answer["symbol"] == "BTCUSDT"
        with urllib.request.urlopen(f"http://127.0.0.1:{h.port}/_sim/scenario?name=nope", timeout=5) as resp:
            assert "unknown scenario" in json.loads(resp.read())["error"]


def test_config_rejects_a_bad_scenario_line():
    from engine.config import ConfigError, loads
    with pytest.raises(ConfigError, match=r"simulator.scenarios\[0\]"):
        loads('[simulator]\nscenarios = ["meteor:BTCUSDT"]\n')
