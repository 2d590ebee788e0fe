"""The scripted market of ``undertow demo``: one schedule that makes every detector fire within 10 minutes.

Each entry is a simulator scenario line (``engine/simulator/scenarios.py``) with its start and
duration in seconds of the full 10-minute schedule; :func:`demo_script` scales both by ``scale``
(the short test variant runs the same story compressed). The detectors judge against each asset's
own distribution, so the first minute is left ordinary for their baselines to form; the synthetic
market's own random cascades keep running in between. The three cascades inside one minute near
the end make the market-wide cascade rule fire (several assets at WARNING within its window).
"""
from __future__ import annotations

import msgspec

__all__ = ["DEMO_SCHEDULE", "DEMO_DURATION_S", "demo_script", "demo_config"]

DEMO_DURATION_S = 600.0

#: (scenario, symbol, start s, duration s, extra parameters)
DEMO_SCHEDULE: tuple[tuple[str, str, float, float, str], ...] = (
    ("cascade", "ETHUSDT", 20.0, 20.0, ""),
    # then no random cascades until the scripted ones: one cascade's jump outweighs many minutes of
    # ordinary returns in a correlation (the market's background liquidations go on)
    ("calm", "BTCUSDT", 45.0, 425.0, ""),
    ("whale_print", "BTCUSDT", 60.0, 0.0, "count=3"),
    ("volume_burst", "ETHUSDT", 80.0, 60.0, "factor=10,side=buy"),
    ("oi_explosion", "SOLUSDT", 90.0, 120.0, "pct=45"),
    ("funding_squeeze", "ETHUSDT", 120.0, 180.0, "rate=0.004"),
    ("book_imbalance", "BTCUSDT", 150.0, 90.0, "side=bid,factor=8"),
    ("depth_collapse", "ETHUSDT", 260.0, 60.0, ""),
    ("oi_flush", "BTCUSDT", 300.0, 120.0, "pct=40"),
    ("whale_print", "ETHUSDT", 330.0, 0.0, "count=2,side=sell"),
    # after the longer-run correlation has its history (demo_config: 2 min)
    ("correlation_break", "SOLUSDT", 330.0, 150.0, "loading=-1"),   # BTC/SOL: clear of the ETH cascade
    ("cascade", "BTCUSDT", 480.0, 40.0, ""),
    ("cascade", "ETHUSDT", 486.0, 40.0, ""),
    ("cascade", "SOLUSDT", 492.0, 40.0, ""),
)


#: the shortest an episode may be squeezed to: a cascade needs its liquidations to pile up, a book
#: imbalance to persist
MIN_DURATION_S = {"cascade": 20.0, "book_imbalance": 10.0, "depth_collapse": 10.0, "correlation_break": 20.0}


def demo_script(scale: float = 1.0) -> list[str]:
    """The schedule as simulator script lines, times and durations multiplied by ``scale``."""
    if not scale > 0:
        raise ValueError(f"demo script scale must be positive, got {scale}")
    lines = []
    for name, symbol, start, duration, params in DEMO_SCHEDULE:
        duration = max(duration * scale, min(duration, MIN_DURATION_S.get(name, 0.0)))
        line = f"{name}:{symbol}@{start * scale:g},duration={duration:g}"
        lines.append(f"{line},{params}" if params else line)
    return lines


def _demo_correlation(c, resolution_s: float, short_s: float, long_s: float):
    """The correlation table for a demo: windows of at least 3 (short) and 20 (long) samples.

    Venues send marks about once a second, so compression cannot sample returns faster than 1 s; a
    window compressed to 2 or 10 one-second returns is noise (the synthetic market's 1 s return
    correlation is only about 0.3-0.5 to begin with), so the windows keep a minimum number of samples.
    """
    return msgspec.structs.replace(c, resolution_s=resolution_s, short_window_s=max(short_s, 3 * resolution_s),
                                   long_window_s=max(long_s, 20 * resolution_s))


def demo_config(cfg, scale: float = 1.0):
    """``cfg`` with the detectors' time scales shortened for a demo of ``DEMO_DURATION_S * scale`` seconds.

    A live engine judges open interest over 15 minutes, volume against ten past windows and correlation
    against an hour; a 10-minute demo cannot wait for that, so the demo (only the demo) measures the same
    things over minutes (``scale`` shrinks them, and the CVD / trade-mix windows, the book's persistence
    and the liquidation summary period, further for the compressed test variant). Thresholds and their fallbacks are unchanged.
    """
    d = cfg.detectors

    def sec(x: float, step: float = 1.0) -> float:   # scaled seconds, a multiple of ``step``, at least one step
        return max(step, round(x * scale / step) * step)

    changes = {
        "liquidations": msgspec.structs.replace(d.liquidations, summary_interval_s=sec(d.liquidations.summary_interval_s)),
        "volume": msgspec.structs.replace(d.volume, windows_s=sorted({sec(30.0, 5.0), sec(60.0, 5.0)}),
                                          min_history=4),
        "cvd": msgspec.structs.replace(d.cvd, windows_s=[sec(w, 5.0) for w in d.cvd.windows_s],
                                       pressure_window_s=sec(d.cvd.pressure_window_s, 5.0)),
        "whales": msgspec.structs.replace(d.whales, mix_window_s=sec(d.whales.mix_window_s, 5.0)),
        "open_interest": msgspec.structs.replace(d.open_interest, resolution_s=sec(5.0), window_s=sec(120.0),
                                                 min_oi_usd=1_000_000.0),
        "book": msgspec.structs.replace(d.book, persist_s=sec(d.book.persist_s),
                                        baseline_tau_s=sec(d.book.baseline_tau_s),
                                        collapse_persist_s=sec(d.book.collapse_persist_s)),
        "correlation": _demo_correlation(d.correlation, sec(5.0), sec(30.0), sec(120.0)),
    }
    # the demo's traders run high leverage, so their liquidation zones sit within a cascade's reach
    # (the calibrated live mix puts most open interest at 2-5x, 18 %+ away: no 10-minute move gets there)
    changes["zones"] = msgspec.structs.replace(d.zones, leverage={"*": [[20.0, 0.5], [50.0, 0.5]]})
    return msgspec.structs.replace(cfg, detectors=msgspec.structs.replace(d, **changes))
