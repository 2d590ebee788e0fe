"""The ``[detectors.*]`` tables of the configuration (and ``[profiles]``): one struct per detector.

Split out of :mod:`engine.config`, which re-exports every name; validation rules that span
tables stay there.
"""
from __future__ import annotations

from typing import Annotated, Literal

import msgspec

STRUCT = dict(frozen=True, kw_only=True, forbid_unknown_fields=True)

class LiquidationsConfig(msgspec.Struct, **STRUCT):
    """Per-liquidation signals and size classes (fallback USD thresholds per asset)."""

    enabled: bool = True
    single_usd: dict[str, float] = msgspec.field(default_factory=lambda: {"BTC": 100_000.0, "ETH": 50_000.0, "SOL": 25_000.0, "*": 10_000.0})
    large_multiple: float = 1.0          # >= single_usd -> large
    whale_multiple: float = 5.0
    institutional_multiple: float = 20.0
    publish_min_usd: float = 0.0         # publish every liquidation at or above this
    summary_interval_s: float = 60.0     # rolling totals + 24 h whale summary per asset this often (wall clock)


class VelocityConfig(msgspec.Struct, **STRUCT):
    """Liquidation velocity and acceleration windows."""

    enabled: bool = True
    windows_s: list[float] = msgspec.field(default_factory=lambda: [1.0, 5.0, 20.0, 60.0])


class VolatilityConfig(msgspec.Struct, **STRUCT):
    """Multi-timeframe realized volatility and its regime."""

    enabled: bool = True
    windows_s: list[float] = msgspec.field(default_factory=lambda: [60.0, 300.0, 900.0])
    # annualised realized-vol boundaries between dormant|low|normal|high|extreme
    regime_bounds: list[float] = msgspec.field(default_factory=lambda: [0.15, 0.35, 0.70, 1.20])
    regime_multipliers: list[float] = msgspec.field(default_factory=lambda: [0.6, 0.8, 1.0, 1.3, 1.6])


class LeadWeights(msgspec.Struct, **STRUCT):
    """Weights of the cascade score's leading factors, added to the six base weights."""

    fuel: Annotated[float, msgspec.Meta(ge=0.0)] = 0.15
    depth_thinning: Annotated[float, msgspec.Meta(ge=0.0)] = 0.10


class CascadeConfig(msgspec.Struct, **STRUCT):
    """First cascade score: liquidation count/velocity/acceleration scaled by volatility."""

    enabled: bool = True
    window_s: float = 30.0
    min_count: int = 5                   # ORIGIN: >= 5 liquidations of one symbol in 30 s
    levels: list[float] = msgspec.field(default_factory=lambda: [3.0, 5.0, 7.5])  # WATCH, WARNING, CRITICAL score thresholds (0-10)
    hysteresis: float = 1.0
    publish_interval_s: float = 1.0      # while a level holds, re-publish at most this often
    # score weights per factor (ORIGIN's 0.25/0.20/0.20/0.15/0.10/0.10); a factor whose detector is off counts 0
    weights: dict[str, float] = msgspec.field(default_factory=lambda: {"velocity": 0.25, "acceleration": 0.20, "volume": 0.20, "oi": 0.15, "funding": 0.10, "volatility": 0.10})
    # factor -> the plug-in detector whose factors() feed it (largest value, clipped to 0..1)
    # leading factors, weights ADDED to the six above (which stay the seeds' base, not renormalised):
    # fuel = proximity to the nearest modelled zone x its fuel-to-liquidity, depth_thinning = book depth below baseline
    lead_weights: LeadWeights = LeadWeights()
    factor_detectors: dict[str, str] = msgspec.field(default_factory=lambda: {"volume": "volume", "oi": "open_interest", "funding": "funding", "fuel": "zones", "depth_thinning": "book"})
    # speed judged against the asset's own normal: velocity / count saturate no lower than this many times
    # its normal liquidation rate (last hour's or day's mean); 0 = absolute speed only
    relative_speed: Annotated[float, msgspec.Meta(ge=0.0)] = 5.0
    factor_refresh_s: float = 0.25       # how often (wall clock) the detectors' factors are copied into the kernel
    heat_tau_s: float = 10.0             # time constant of the self-excitation (Hawkes) estimate
    heat_baseline_per_s: float = 0.01    # floor of the baseline liquidation rate the heat is measured against
    burst_boost: list[float] = msgspec.field(default_factory=lambda: [1.5, 0.8, 0.7])   # x1.5 when acceleration >= 0.8 and velocity >= 0.7 (the seeds' rule)
    market_asset: str = "BTC"            # whose volatility regime scales every asset's score
    market_min_assets: int = 3           # this many assets at market_level within market_window_s -> market-wide cascade
    market_window_s: float = 60.0
    market_level: Literal["WATCH", "WARNING", "CRITICAL"] = "WARNING"


class ZonesConfig(msgspec.Struct, **STRUCT):
    """Liquidation-zone model (engine/kernels/zones.py): positions reconstructed from open-interest flow."""

    enabled: bool = True
    bin_width: float = 0.0025            # price bin width, share of price (log-spaced bins)
    bins: int = 1024                     # bins per asset grid, centred on the asset's first price
    # leverage mix of new positions: key "venue:ASSET", "venue", "ASSET" or "*" -> [[leverage, weight], ...];
    # "*" calibrated on the Hyperliquid position snapshots (bench/zones_calibration.py)
    leverage: dict[str, list[list[float]]] = msgspec.field(default_factory=lambda: {"*": [[2.2, 0.621], [5.3, 0.122], [10.6, 0.069], [19.7, 0.032], [40.9, 0.018], [75.7, 0.003]]})
    maintenance: dict[str, float] = msgspec.field(default_factory=lambda: {"*": 0.005})  # maintenance margin rate, same keys
    taker_weight: float = 0.5            # long share = 0.5 + taker_weight * taker imbalance + funding term
    funding_weight: float = 0.1
    funding_scale: float = 0.0001        # funding rate per interval that gives the full funding tilt
    split_clip: float = 0.05             # long share kept within [clip, 1 - clip]
    split_uncertainty: float = 0.15      # std of the long share: the uncertainty band of each bin
    eval_interval_s: float = 1.0         # stream time between zone evaluations per asset
    vol_halflife_s: float = 300.0        # EWMA half-life of the 1 s return variance
    horizon_s: float = 300.0             # look-ahead of the approach threshold
    approach_sigmas: float = 1.0         # zone_approach when distance <= this many sigma over horizon_s
    large_quantile: float = 0.9          # a zone is large when its USD is at or above this quantile of the side's bins
    min_zone_usd: float = 100_000.0      # ... and at least this
    zone_bins: int = 4                   # adjacent bins summed into one zone
    seed_open_interest: bool = False     # the first OI seen enters the map at the price then (else it stays unmodelled)


class VolumeConfig(msgspec.Struct, **STRUCT):
    """Volume spikes: rolling USD volume per window against the asset's own trimmed-median baseline."""

    enabled: bool = True
    windows_s: list[float] = msgspec.field(default_factory=lambda: [60.0, 300.0, 900.0])  # multiples of 5 s
    baseline_windows: int = 96           # past aligned windows kept per window length
    min_history: int = 10                # past windows needed before a baseline exists (no spikes before)
    trim: float = 0.05                   # share trimmed from each end before the median
    min_baseline_usd_per_min: float = 10_000.0   # floor of the baseline, per minute of window
    # spike % over the baseline: LOW, MODERATE, HIGH, EXTREME (the existing bot's levels)
    levels_pct: list[float] = msgspec.field(default_factory=lambda: [50.0, 150.0, 300.0, 500.0])
    publish_level: Literal["LOW", "MODERATE", "HIGH", "EXTREME"] = "MODERATE"
    whale_driven_share: float = 0.5      # whale USD share of the window that marks a spike whale-driven
    dominant_share: float = 0.6          # taker-buy (or sell) USD share that names a dominant side


class CvdConfig(msgspec.Struct, **STRUCT):
    """Delta / CVD from taker flow, spot and perp separately, and extreme-pressure signals."""

    enabled: bool = True
    windows_s: list[float] = msgspec.field(default_factory=lambda: [60.0, 300.0, 900.0])  # multiples of 5 s
    session_period_s: float = 86_400.0   # CVD restarts every period...
    session_offset_s: float = 0.0        # ...at this offset from 00:00 UTC
    pressure_window_s: float = 300.0     # one of windows_s
    history_windows: int = 96            # past aligned pressure windows kept
    min_history: int = 24                # before that, the buy-share fallback applies (12 gave 2 calm episodes/h)
    pressure_z: float = 4.0              # robust z-score of the window delta
    fallback_buy_share: float = 0.75     # pressure while history is short: buy share >= x or <= 1 - x
    # |delta| floor in USD for any pressure signal; "*" = any other asset
    min_pressure_usd: dict[str, float] = msgspec.field(
        default_factory=lambda: {"BTC": 1_000_000.0, "ETH": 500_000.0, "SOL": 200_000.0, "*": 50_000.0})


class WhalesConfig(msgspec.Struct, **STRUCT):
    """Whale trades (above a high quantile of the asset's own sizes) and the trade-size mix."""

    enabled: bool = True
    whale_quantile: float = 0.999
    large_quantile: float = 0.95         # large trades make up the mix's institutional share
    min_trades: int = 2000               # trades seen before the quantiles replace the fallbacks
    half_life_trades: float = 50_000.0   # older trades weigh half after this many newer ones
    # whale size while history is short; "*" = any other asset
    fallback_usd: dict[str, float] = msgspec.field(
        default_factory=lambda: {"BTC": 500_000.0, "ETH": 250_000.0, "SOL": 100_000.0, "*": 50_000.0})
    large_fallback_ratio: float = 0.1    # large size while history is short = fallback_usd x this
    min_usd: float = 10_000.0            # the whale size never drops below this
    mix_window_s: float = 300.0          # multiple of 5 s
    mix_min_trades: int = 50
    institutional_share: float = 0.6     # large-trade USD share for an institutional mix...
    institutional_net: float = 0.3       # ...with (buy - sell) / large USD at least this (accumulation)
    retail_share: float = 0.25           # large-trade share at most this: retail-driven


class OpenInterestConfig(msgspec.Struct, **STRUCT):
    """OI explosions and flushes per asset, confirmed across venues (engine/detectors/open_interest.py)."""

    enabled: bool = True
    resolution_s: float = 10.0           # OI sampled per instrument at this resolution (venues push or are polled)
    window_s: float = 900.0              # change measured over this window
    # fallback |change| in % over the window while an instrument's own history is short (the existing bot's numbers)
    change_pct: dict[str, float] = msgspec.field(default_factory=lambda: {"BTC": 15.0, "ETH": 18.0, "SOL": 25.0, "*": 30.0})
    floor_pct: float = 5.0               # the own-distribution threshold never goes below this
    z: float = 5.0                       # own threshold: z x EW standard deviation of the instrument's past changes
    min_samples: int = 360               # buckets of history before the own threshold replaces the fallback
    ew_alpha: float = 0.002              # weight of each closed bucket in that history
    min_oi_usd: float = 10_000_000.0     # the agreeing venues' OI must reach this
    min_venues: int = 2                  # venues agreeing in direction (fewer when fewer report the asset)
    rearm: float = 0.5                   # re-arm once fewer than min_venues stay beyond rearm x threshold


class FundingConfig(msgspec.Struct, **STRUCT):
    """Funding level, momentum and extremes per asset, normalised to a common interval (engine/detectors/funding.py)."""

    enabled: bool = True
    common_interval_h: float = 8.0
    # the interval each venue's MARK funding rate is quoted for; "*" for any other
    interval_h: dict[str, float] = msgspec.field(default_factory=lambda: {"binance": 8.0, "bybit": 8.0, "okx": 8.0, "gate": 8.0, "bitget": 8.0, "hyperliquid": 1.0, "*": 8.0})
    resolution_s: float = 60.0           # the asset's level is sampled at this resolution
    momentum_window_s: float = 900.0
    # fallback |rate| per common interval while history is short (ORIGIN labels 0.01 % a squeeze, which is the
    # default rate itself, so the fallback is 0.05 %), and the floor of the own threshold
    extreme_rate: dict[str, float] = msgspec.field(default_factory=lambda: {"*": 0.0005})
    extreme_floor: float = 0.0003
    momentum_rate: dict[str, float] = msgspec.field(default_factory=lambda: {"*": 0.0003})
    momentum_floor: float = 0.0001
    z: float = 5.0
    min_samples: int = 240
    ew_alpha: float = 0.01
    rearm: float = 0.5


class BookConfig(msgspec.Struct, **STRUCT):
    """Order-book pressure: persistent imbalance and depth collapse per venue book (engine/detectors/book.py)."""

    enabled: bool = True
    band: float = 0.005                  # the BOOK_DEPTH band judged (share of mid); BOOK_TOP when a book has none
    imbalance: dict[str, float] = msgspec.field(default_factory=lambda: {"*": 0.5})   # fallback |imbalance|
    imbalance_floor: float = 0.3
    z: float = 4.0
    min_samples: int = 600
    ew_alpha: float = 0.002
    persist_s: float = 10.0              # the imbalance must hold this long on one side (no one-tick flickers)
    imbalance_rearm: float = 0.5         # a fired imbalance re-arms once back inside this share of its threshold
    baseline_tau_s: float = 300.0        # time constant of the depth baseline
    min_baseline_samples: int = 60
    collapse_ratio: float = 0.3          # depth at or below this share of its baseline ...
    collapse_persist_s: float = 2.0      # ... for this long: resting liquidity vanished
    rearm_ratio: float = 0.6


class CorrelationConfig(msgspec.Struct, **STRUCT):
    """Correlation breaks between asset pairs on one venue and one asset across venues (engine/detectors/correlation.py)."""

    enabled: bool = True
    pairs: list[list[str]] = msgspec.field(default_factory=lambda: [["BTC", "ETH"], ["BTC", "SOL"]])
    cross_venue: bool = True             # also each asset's perp on one venue vs another
    resolution_s: float = 5.0            # returns sampled at this resolution (MARK index, else mark price)
    short_window_s: float = 300.0        # EW time constants of the short and the longer-run correlation
    long_window_s: float = 3600.0
    gap: float = 0.5                     # fallback break: long - short correlation at least this
    gap_floor: float = 0.35
    z: float = 5.0
    min_samples: int = 720
    min_long_corr: float = 0.3           # only a pair that is normally correlated can break
    rearm: float = 0.5
    winsor_k: float = 4.0                # returns clipped to +- this x the leg's EW mean |return| (0 = off)


class RiskConfig(msgspec.Struct, **STRUCT):
    """Composite risk score 0-10 per asset from every detector's factors (engine/detectors/risk.py)."""

    enabled: bool = True
    # detector (or "cascade" for the fused kernel's factors) -> weight; weights are normalised over those running
    weights: dict[str, float] = msgspec.field(default_factory=lambda: {"cascade": 0.30, "liquidations": 0.10, "volume": 0.12, "cvd": 0.08, "whales": 0.08, "open_interest": 0.12, "funding": 0.08, "book": 0.07, "correlation": 0.05})
    interval_s: float = 5.0              # stream time between evaluations of an asset
    min_change: float = 0.5              # publish when the score moved this much (or its band changed) ...
    heartbeat_s: float = 60.0            # ... or at least this often while above 0
    bands: list[float] = msgspec.field(default_factory=lambda: [3.0, 5.0, 7.0, 8.5])   # low | moderate | elevated | high | extreme


class ProfilesConfig(msgspec.Struct, **STRUCT):
    """Asset profiles and the dynamic thresholds derived from them (engine/profiles.py)."""

    refresh_interval_s: float = 300.0    # recompute every profile this often (wall clock)
    snapshot_name: str = "profiles.json" # written into engine.run_dir for `undertow thresholds`
    bootstrap_rest: bool = True          # 24 h tickers from each venue's REST at compute start
    min_liquidations: int = 200          # own-size quantiles need this many liquidations, else the configured fallback
    min_trades: int = 500
    liquidation_quantile: float = 0.99   # single-liquidation threshold: this quantile of the asset's own sizes
    whale_trade_quantile: float = 0.999
    single_floor_usd: dict[str, float] = msgspec.field(default_factory=lambda: {"BTC": 25_000.0, "ETH": 10_000.0, "SOL": 5_000.0, "*": 2_000.0})
    # UTC hour where the European and US sessions start and Asia resumes; Saturday and Sunday are "weekend"
    session_starts_utc: list[int] = msgspec.field(default_factory=lambda: [7, 13, 22])
    session_multipliers: dict[str, float] = msgspec.field(default_factory=lambda: {"asian": 0.8, "european": 1.0, "us": 1.2, "weekend": 0.6})
    vol_reference: float = 0.5           # annualised RV at which the volatility multiplier is 1 ...
    vol_multiplier_bounds: list[float] = msgspec.field(default_factory=lambda: [0.5, 2.0])   # ... clipped to these
    # liquidity tier by 24 h USD volume (ascending bounds): small | mid | large | major
    tier_bounds_usd: list[float] = msgspec.field(default_factory=lambda: [50e6, 500e6, 5e9])
    # fallbacks when a profile cannot be computed (the existing bot's numbers)
    oi_change_pct: dict[str, float] = msgspec.field(default_factory=lambda: {"BTC": 15.0, "ETH": 18.0, "SOL": 25.0, "*": 30.0})
    oi_window_s: float = 900.0
    oi_min_usd: float = 10_000_000.0
    oi_min_venues: int = 2
    volume_spike_pct: dict[str, float] = msgspec.field(default_factory=lambda: {"EXTREME": 500.0, "HIGH": 300.0, "MODERATE": 150.0, "LOW": 50.0})


class DetectorsConfig(msgspec.Struct, **STRUCT):
    liquidations: LiquidationsConfig = LiquidationsConfig()
    velocity: VelocityConfig = VelocityConfig()
    volatility: VolatilityConfig = VolatilityConfig()
    cascade: CascadeConfig = CascadeConfig()
    risk: RiskConfig = RiskConfig()
    zones: ZonesConfig = ZonesConfig()
    volume: VolumeConfig = VolumeConfig()
    cvd: CvdConfig = CvdConfig()
    whales: WhalesConfig = WhalesConfig()
    open_interest: OpenInterestConfig = OpenInterestConfig()
    funding: FundingConfig = FundingConfig()
    book: BookConfig = BookConfig()
    correlation: CorrelationConfig = CorrelationConfig()
