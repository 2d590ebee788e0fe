"""Typed configuration: ``config.toml`` decoded into frozen, strict structs.

Every section is a ``msgspec.Struct`` with ``forbid_unknown_fields``, so a typo
is an error, not a silent default. :func:`load` raises :class:`ConfigError`
whose message names the key path (``$.venues.binance.symbols``). Secrets never
live here: the Telegram token comes from ``TELEGRAM_BOT_TOKEN``.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Literal

import msgspec

from .security import endpoint_is_local

__all__ = ["Config", "ConfigError", "load", "loads", "dump_json", "to_toml_dict", "default_path"]

_STRUCT = dict(frozen=True, kw_only=True, forbid_unknown_fields=True)

IdleName = Literal["spin", "backoff", "sleep", "park"]
_CASCADE_FACTORS = ("velocity", "acceleration", "volume", "oi", "funding", "volatility")
SYMBOL_SELECTOR = re.compile(r"^(all|top:([1-9][0-9]*))$")   # VenueConfig.symbols given as a string


class ConfigError(ValueError):
    """The configuration is invalid; the message names the key path."""


class EngineConfig(msgspec.Struct, **_STRUCT):
    """Process layout, shared memory and CPU placement."""

    namespace: str = "undertow"          # prefix of shared-memory segments and ipc sockets
    run_dir: str = "/tmp/undertow"       # runtime files: ipc sockets, bus endpoint file
    ring_capacity: int = 1 << 16         # records per feed ring (power of two)
    max_instruments: int = 8192
    max_assets: int = 2048
    compute_workers: int = 1             # assets are sharded across this many compute processes
    compute_cores: list[int] = []        # core per compute worker (cycled); [] = no pinning
    feed_cores: list[int] = []           # cores the feed processes may use; [] = any
    idle: IdleName = "park"              # compute readers: only one process may spin per free core
    park_timeout_ms: float = 5.0
    park_spin_us: float = 0.0            # keep polling this long after work before parking (0: park at once)
    timer_slack_ns: int = 1


class SupervisorConfig(msgspec.Struct, **_STRUCT):
    """Heartbeats, restarts and the loopback health endpoint."""

    heartbeat_timeout_ms: int = 3000     # an actor silent this long is hung and gets restarted
    startup_grace_ms: int = 15000        # allowance for imports and numba warm-up after a (re)start
    restart_backoff_initial_ms: int = 100
    restart_backoff_max_ms: int = 10000
    stop_timeout_ms: int = 5000          # SIGTERM -> SIGKILL escalation
    health_host: str = "127.0.0.1"
    health_port: int = 9464              # 0 disables /health and /metrics
    warm_standby: list[Literal["feed", "compute", "alerts", "recorder", "bot"]] = msgspec.field(
        default_factory=lambda: ["compute"])  # actor kinds kept as an imported spare: a restart is an attach


class BusConfig(msgspec.Struct, **_STRUCT):
    """The ZeroMQ signal bus."""

    endpoint: str = "tcp://127.0.0.1:7300"   # where subscribers connect
    heartbeat_interval_s: float = 1.0
    coverage_interval_s: float = 10.0        # per-venue `coverage` signals (compute worker 0); 0 disables
    sndhwm: int = 100000
    # CurveZMQ, required when endpoint binds beyond loopback: the server certificate (*.key_secret) and,
    # optionally, a directory of client public certificates allowed to subscribe ("" = anyone with our public key)
    curve_secret_key: str = ""
    curve_clients_dir: str = ""


class VenueConfig(msgspec.Struct, **_STRUCT):
    """One exchange's feed. ``ws_urls`` keys are venue-specific (Binance: public, market)."""

    enabled: bool = True
    ws_urls: dict[str, str] = {}
    rest_url: str = ""
    # native symbols, or "all" (every trading perpetual margined in symbol_quotes) or "top:N" (by 24 h USD volume)
    symbols: list[str] | str = []
    symbol_quotes: list[str] = msgspec.field(default_factory=lambda: ["USDT"])
    fallback_symbols: list[str] = []     # used for "all"/"top:N" when the venue's REST cannot be read
    resolve_interval_s: float = 3600.0   # re-resolve "all"/"top:N" this often (new listings); 0 = at start only
    streams: list[str] = msgspec.field(default_factory=lambda: ["liquidations", "trades", "book", "mark", "oi"])
    depth_levels: int = 20
    oi_poll_interval_s: float = 10.0     # open-interest poll period of the hot tier
    oi_hot_symbols: int = 20             # hot tier: the top N symbols by 24 h volume
    oi_tail_interval_s: float = 60.0     # poll period of every other symbol (stretched to fit the weight budget)
    stale_after_s: float = 30.0          # no data on a subscribed stream this long: resubscribe/reconnect
    rotate_after_s: float = 82800.0      # proactive reconnect before the venue's forced close
    reconnect_initial_s: float = 0.5
    reconnect_max_s: float = 30.0
    max_streams_per_connection: int = 200
    rest_weight_per_minute: int = 1200


class VenuesConfig(msgspec.Struct, **_STRUCT):
    """Per-venue feeds. Empty ``ws_urls``/``rest_url`` mean the venue's live endpoints."""

    binance: VenueConfig = VenueConfig(symbols=["BTCUSDT", "ETHUSDT", "SOLUSDT"],
                                       fallback_symbols=["BTCUSDT", "ETHUSDT", "SOLUSDT"])
    # Each venue below is switched on (here and in config.toml) by the change that adds its module.
    bybit: VenueConfig = VenueConfig(ws_urls={"linear": "wss://stream.bybit.com/v5/public/linear"}, rest_url="https://api.bybit.com", symbols=["BTCUSDT", "ETHUSDT", "SOLUSDT"], fallback_symbols=["BTCUSDT", "ETHUSDT", "SOLUSDT"], rest_weight_per_minute=500)
    okx: VenueConfig = VenueConfig(ws_urls={"public": "wss://ws.okx.com:8443/ws/v5/public"}, rest_url="https://www.okx.com", symbols=["BTC-USDT-SWAP", "ETH-USDT-SWAP", "SOL-USDT-SWAP"], fallback_symbols=["BTC-USDT-SWAP", "ETH-USDT-SWAP", "SOL-USDT-SWAP"], rest_weight_per_minute=300)
    gate: VenueConfig = VenueConfig(ws_urls={"usdt": "wss://fx-ws.gateio.ws/v4/ws/usdt"}, rest_url="https://api.gateio.ws/api/v4", symbols=["BTC_USDT", "ETH_USDT", "SOL_USDT"], rest_weight_per_minute=600)
    bitget: VenueConfig = VenueConfig(ws_urls={"public": "wss://ws.bitget.com/v2/ws/public", "uta": "wss://ws.bitget.com/v3/ws/public"}, rest_url="https://api.bitget.com", symbols=["BTCUSDT", "ETHUSDT", "SOLUSDT"], depth_levels=15, max_streams_per_connection=50, rest_weight_per_minute=3000)
    hyperliquid: VenueConfig = VenueConfig(ws_urls={"ws": "wss://api.hyperliquid.xyz/ws"}, rest_url="https://api.hyperliquid.xyz", symbols=["BTC", "ETH", "SOL"], streams=["trades", "book", "mark", "oi"], max_streams_per_connection=100, rest_weight_per_minute=600)


class SimulatorConfig(msgspec.Struct, **_STRUCT):
    """The local exchange simulator used by ``undertow demo`` and ``undertow simulate``."""

    host: str = "127.0.0.1"
    port: int = 0                        # 0: pick a free port
    seed: int = 7
    mode: Literal["synthetic", "replay"] = "synthetic"
    venues: list[str] = []               # venue protocols to serve; [] = every one the simulator speaks
    replay_files: list[str] = []
    speed: float = 1.0                   # replay speed factor; 0 = as fast as possible
    symbols: list[str] = msgspec.field(default_factory=lambda: ["BTCUSDT", "ETHUSDT", "SOLUSDT"])
    rate: float = 200.0                  # synthetic market: aggregate frames per second in calm periods
    cascade_every_s: float = 45.0        # mean time between synthetic cascades
    first_cascade_after_s: float = 20.0
    correlation: float = 0.7             # loading of each symbol's returns on the market factor (the first symbol)
    scenarios: list[str] = []            # scripted episodes "NAME[:SYMBOL][@SECONDS][,key=value...]" (engine/simulator/scenarios.py)
    ping_interval_s: float = 180.0
    pong_timeout_s: float = 600.0
    max_connection_age_s: float = 86400.0


class LiquidationsConfig(msgspec.Struct, **_STRUCT):
    """Per-liquidation signals and size classes (fallback USD thresholds per asset)."""

    enabled: bool = True
    single_usd: dict[str, float] = msgspec.field(default_factory=lambda: {"BTC": 100_000.0, "ETH": 50_000.0, "SOL": 25_000.0, "*": 10_000.0})
    large_multiple: float = 1.0          # >= single_usd -> large
    whale_multiple: float = 5.0
    institutional_multiple: float = 20.0
    publish_min_usd: float = 0.0         # publish every liquidation at or above this
    summary_interval_s: float = 60.0     # rolling totals + 24 h whale summary per asset this often (wall clock)


class VelocityConfig(msgspec.Struct, **_STRUCT):
    """Liquidation velocity and acceleration windows."""

    enabled: bool = True
    windows_s: list[float] = msgspec.field(default_factory=lambda: [1.0, 5.0, 20.0, 60.0])


class VolatilityConfig(msgspec.Struct, **_STRUCT):
    """Multi-timeframe realized volatility and its regime."""

    enabled: bool = True
    windows_s: list[float] = msgspec.field(default_factory=lambda: [60.0, 300.0, 900.0])
    # annualised realized-vol boundaries between dormant|low|normal|high|extreme
    regime_bounds: list[float] = msgspec.field(default_factory=lambda: [0.15, 0.35, 0.70, 1.20])
    regime_multipliers: list[float] = msgspec.field(default_factory=lambda: [0.6, 0.8, 1.0, 1.3, 1.6])


class CascadeConfig(msgspec.Struct, **_STRUCT):
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
    factor_detectors: dict[str, str] = msgspec.field(default_factory=lambda: {"volume": "volume", "oi": "open_interest", "funding": "funding"})
    factor_refresh_s: float = 0.25       # how often (wall clock) the detectors' factors are copied into the kernel
    heat_tau_s: float = 10.0             # time constant of the self-excitation (Hawkes) estimate
    heat_baseline_per_s: float = 0.01    # floor of the baseline liquidation rate the heat is measured against
    burst_boost: list[float] = msgspec.field(default_factory=lambda: [1.5, 0.8, 0.7])   # x1.5 when acceleration >= 0.8 and velocity >= 0.7 (the seeds' rule)
    market_asset: str = "BTC"            # whose volatility regime scales every asset's score
    market_min_assets: int = 3           # this many assets at market_level within market_window_s -> market-wide cascade
    market_window_s: float = 60.0
    market_level: Literal["WATCH", "WARNING", "CRITICAL"] = "WARNING"


class ZonesConfig(msgspec.Struct, **_STRUCT):
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


class VolumeConfig(msgspec.Struct, **_STRUCT):
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


class CvdConfig(msgspec.Struct, **_STRUCT):
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


class WhalesConfig(msgspec.Struct, **_STRUCT):
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


class OpenInterestConfig(msgspec.Struct, **_STRUCT):
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


class FundingConfig(msgspec.Struct, **_STRUCT):
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


class BookConfig(msgspec.Struct, **_STRUCT):
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


class CorrelationConfig(msgspec.Struct, **_STRUCT):
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


class RiskConfig(msgspec.Struct, **_STRUCT):
    """Composite risk score 0-10 per asset from every detector's factors (engine/detectors/risk.py)."""

    enabled: bool = True
    # detector (or "cascade" for the fused kernel's factors) -> weight; weights are normalised over those running
    weights: dict[str, float] = msgspec.field(default_factory=lambda: {"cascade": 0.30, "liquidations": 0.10, "volume": 0.12, "cvd": 0.08, "whales": 0.08, "open_interest": 0.12, "funding": 0.08, "book": 0.07, "correlation": 0.05})
    interval_s: float = 5.0              # stream time between evaluations of an asset
    min_change: float = 0.5              # publish when the score moved this much (or its band changed) ...
    heartbeat_s: float = 60.0            # ... or at least this often while above 0
    bands: list[float] = msgspec.field(default_factory=lambda: [3.0, 5.0, 7.0, 8.5])   # low | moderate | elevated | high | extreme


class ProfilesConfig(msgspec.Struct, **_STRUCT):
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


class DetectorsConfig(msgspec.Struct, **_STRUCT):
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


class ConsoleSinkConfig(msgspec.Struct, **_STRUCT):
    enabled: bool = True
    color: bool = True


class TelegramConfig(msgspec.Struct, **_STRUCT):
    """Telegram delivery (engine/alerts/). The token comes only from TELEGRAM_BOT_TOKEN; unset = no Telegram."""

    enabled: bool = True
    api_base_url: str = "https://api.telegram.org/bot"   # a local Bot API for tests / air-gapped setups
    chat_ids: list[int] = []             # numeric allow-list; empty admits nobody
    admin_user_ids: list[int] = []       # users allowed to run commands that change state
    startup_notice: bool = True          # allowed chats get one notice when monitoring starts
    startup_notice_min_gap_s: float = 600.0   # an actor restarted sooner than this sends none
    per_chat_per_s: float = 1.0          # Telegram's flood limits: ~1 message/s per chat ...
    group_per_min: float = 20.0          # ... 20/min in a group ...
    global_per_s: float = 30.0           # ... ~30/s overall
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 10.0
    edit_interval_s: float = 3.0         # a live cascade message is edited at most this often (level changes at once)


class WebhookConfig(msgspec.Struct, **_STRUCT):
    """HTTP POST of each alerted signal as JSON (through the outbox, with retries)."""

    enabled: bool = False
    url: str = ""
    timeout_s: float = 5.0


class QuietHoursConfig(msgspec.Struct, **_STRUCT):
    """A daily UTC window in which only urgent alerts are sent; the rest wait for the digest."""

    enabled: bool = False
    start: str = "23:00"
    end: str = "07:00"


class AlertsConfig(msgspec.Struct, **_STRUCT):
    """The alert actor: dedup, priorities, budgets and sinks."""

    enabled: bool = True
    cooldown_s: float = 60.0
    kinds: list[str] = msgspec.field(default_factory=lambda: ["cascade", "liquidation"])
    extend_factor: float = 1.5           # within the cooldown, re-alert a liquidation this much bigger ...
    extend_price_pct: float = 1.0        # ... or this much further in price (in the liquidation's direction)
    state_dir: str = ""                  # the durable outbox lives here; "" = <engine.run_dir>/state
    max_age_s: float = 3600.0            # an alert undeliverable this long expires (counted)
    retry_initial_s: float = 1.0         # network-error back-off, doubling up to retry_max_s
    retry_max_s: float = 60.0
    market_wide_assets: int = 3          # this many assets cascading at once: one market report instead
    rearm_s: float = 120.0               # a cascade restarting this soon after its end re-opens its message
    max_per_hour: int = 30               # per chat; normal alerts past it wait for the digest (0 = no cap)
    digest_interval_s: float = 900.0
    # tier per "<kind>.<level or size class>", "<kind>" or "*": digest | normal | urgent
    tiers: dict[str, str] = msgspec.field(default_factory=lambda: {
        "cascade.CRITICAL": "urgent", "cascade": "normal", "market": "urgent", "liquidation.institutional": "urgent",
        "liquidation": "normal", "volatility": "digest", "*": "normal"})
    quiet_hours: QuietHoursConfig = QuietHoursConfig()
    console: ConsoleSinkConfig = ConsoleSinkConfig()
    telegram: TelegramConfig = TelegramConfig()
    webhook: WebhookConfig = WebhookConfig()


class RecorderConfig(msgspec.Struct, **_STRUCT):
    """The recorder actor: records and signals into daily compressed segments (engine/history.py)."""

    enabled: bool = False
    root: str = "/var/lib/undertow/history"
    retention_days: float = 30.0
    flush_interval_s: float = 5.0        # buffered records reach disk at least this often
    codec: Literal["auto", "zlib", "zstd"] = "auto"   # auto: zstd when the zstandard package is installed, else zlib
    level: int = 3


class BotConfig(msgspec.Struct, **_STRUCT):
    """The Telegram bot actor (actors/bot.py): commands answered from the engine's state and its own history.

    Who may use it, the Bot API address and the token are [alerts.telegram]'s; it runs when Telegram is enabled
    there and a token is set."""

    enabled: bool = True                 # false: Telegram alerts only, no commands
    group_commands: bool = False         # read-only market commands answered in allowed group chats
    auto_start: bool = True              # chats receive alerts from start-up unless they sent /alerts stop
    history_minutes: int = 5760          # 1-minute candles kept per asset (4 days: /profile 1d, 24 h changes)
    kline_bootstrap: bool = True         # fill the candles from Binance kline REST at start
    kline_minutes: int = 1440            # how far back the bootstrap reaches
    kline_max_symbols: int = 30          # Binance symbols bootstrapped (the registry's first ones)
    kline_weight_per_minute: int = 300   # the bot's own REST budget (the feed keeps its own)
    poll_interval_ms: float = 50.0       # rings and bus are drained this often (never blocking the event loop)
    oi_sample_interval_s: float = 60.0   # OI samples for the 15 min / 24 h changes


class Config(msgspec.Struct, **_STRUCT):
    """The whole configuration."""

    engine: EngineConfig = EngineConfig()
    supervisor: SupervisorConfig = SupervisorConfig()
    bus: BusConfig = BusConfig()
    venues: VenuesConfig = VenuesConfig()
    simulator: SimulatorConfig = SimulatorConfig()
    detectors: DetectorsConfig = DetectorsConfig()
    profiles: ProfilesConfig = ProfilesConfig()
    alerts: AlertsConfig = AlertsConfig()
    recorder: RecorderConfig = RecorderConfig()
    bot: BotConfig = BotConfig()


def _check(cfg: Config) -> None:
    """Cross-field rules msgspec cannot express; raise ConfigError naming the key."""
    def bad(path: str, why: str) -> None:
        raise ConfigError(f"{why} - at `$.{path}`")

    e = cfg.engine
    if e.ring_capacity < 1024 or e.ring_capacity & (e.ring_capacity - 1):
        bad("engine.ring_capacity", f"must be a power of two >= 1024, got {e.ring_capacity}")
    if not 1 <= e.compute_workers <= 64:
        bad("engine.compute_workers", f"must be between 1 and 64, got {e.compute_workers}")
    if not e.namespace or not e.namespace.replace("_", "").replace("-", "").isalnum():
        bad("engine.namespace", "must be non-empty letters, digits, '-' or '_'")
    if any(c < 0 for c in e.compute_cores):
        bad("engine.compute_cores", "core numbers must be >= 0")
    if e.park_timeout_ms <= 0:
        bad("engine.park_timeout_ms", "must be > 0")
    if not 0 <= e.park_spin_us <= 100_000:
        bad("engine.park_spin_us", "must be between 0 and 100000")
    s = cfg.supervisor
    if s.heartbeat_timeout_ms < 200:
        bad("supervisor.heartbeat_timeout_ms", "must be >= 200")
    if not 0 <= s.health_port <= 65535:
        bad("supervisor.health_port", "must be a TCP port (0 disables)")
    if not cfg.bus.endpoint.startswith(("tcp://", "ipc://")):
        bad("bus.endpoint", "must start with tcp:// or ipc://")
    if not endpoint_is_local(cfg.bus.endpoint) and not cfg.bus.curve_secret_key:
        bad("bus.curve_secret_key", f"bus.endpoint {cfg.bus.endpoint} is reachable beyond loopback: "
            "give a CurveZMQ server certificate (*.key_secret) or bind to 127.0.0.1 / ipc://")
    if cfg.bus.curve_secret_key and not Path(cfg.bus.curve_secret_key).is_file():
        bad("bus.curve_secret_key", f"no such file: {cfg.bus.curve_secret_key}")
    if cfg.bus.curve_clients_dir and not Path(cfg.bus.curve_clients_dir).is_dir():
        bad("bus.curve_clients_dir", f"no such directory: {cfg.bus.curve_clients_dir}")
    for name in VenuesConfig.__struct_fields__:
        v: VenueConfig = getattr(cfg.venues, name)
        if isinstance(v.symbols, str):
            if not SYMBOL_SELECTOR.match(v.symbols):
                bad(f"venues.{name}.symbols", f'must be a list of symbols, "all" or "top:N" (N >= 1), got {v.symbols!r}')
            if v.enabled and not v.fallback_symbols:
                bad(f"venues.{name}.fallback_symbols", f"symbols = {v.symbols!r} needs a fallback list for when REST fails")
        elif v.enabled and not v.symbols:
            bad(f"venues.{name}.symbols", "an enabled venue needs at least one symbol")
        if not 0 < v.oi_poll_interval_s <= v.oi_tail_interval_s:
            bad(f"venues.{name}.oi_tail_interval_s", "need 0 < oi_poll_interval_s <= oi_tail_interval_s")
        if v.oi_hot_symbols < 0:
            bad(f"venues.{name}.oi_hot_symbols", "must be >= 0")
        if v.resolve_interval_s < 0:
            bad(f"venues.{name}.resolve_interval_s", "must be >= 0 (0: resolve at start only)")
        if v.reconnect_initial_s <= 0 or v.reconnect_max_s < v.reconnect_initial_s:
            bad(f"venues.{name}.reconnect_max_s", "need 0 < reconnect_initial_s <= reconnect_max_s")
        if v.stale_after_s <= 0:
            bad(f"venues.{name}.stale_after_s", "must be > 0")
    vol = cfg.detectors.volatility
    if len(vol.regime_bounds) != 4 or sorted(vol.regime_bounds) != vol.regime_bounds:
        bad("detectors.volatility.regime_bounds", "needs 4 increasing boundaries")
    if len(vol.regime_multipliers) != 5:
        bad("detectors.volatility.regime_multipliers", "needs 5 values (one per regime)")
    cas = cfg.detectors.cascade
    if len(cas.levels) != 3 or sorted(cas.levels) != cas.levels:
        bad("detectors.cascade.levels", "needs 3 increasing thresholds (WATCH, WARNING, CRITICAL)")
    if not cfg.detectors.velocity.windows_s or any(w <= 0 for w in cfg.detectors.velocity.windows_s):
        bad("detectors.velocity.windows_s", "needs positive windows")
    w = cas.weights
    if set(w) - set(_CASCADE_FACTORS) or any(x < 0 for x in w.values()) or not 0.99 <= sum(w.values()) <= 1.01:
        bad("detectors.cascade.weights", f"needs weights >= 0 summing to 1 over {', '.join(_CASCADE_FACTORS)}")
    if len(cas.burst_boost) != 3 or cas.burst_boost[0] < 1:
        bad("detectors.cascade.burst_boost", "needs [boost >= 1, acceleration factor, velocity factor]")
    if cas.heat_tau_s <= 0 or cas.heat_baseline_per_s < 0 or cas.market_min_assets < 2 or cas.market_window_s <= 0:
        bad("detectors.cascade", "need heat_tau_s > 0, heat_baseline_per_s >= 0, market_min_assets >= 2, market_window_s > 0")
    pr = cfg.profiles
    for name in ("single_floor_usd", "oi_change_pct"):
        if "*" not in getattr(pr, name):
            bad(f"profiles.{name}", "needs a \"*\" fallback entry")
    if len(pr.session_starts_utc) != 3 or sorted(pr.session_starts_utc) != pr.session_starts_utc \
            or not all(0 <= h < 24 for h in pr.session_starts_utc):
        bad("profiles.session_starts_utc", "needs 3 increasing UTC hours (European, US, Asian start)")
    if set(pr.session_multipliers) != {"asian", "european", "us", "weekend"}:
        bad("profiles.session_multipliers", "needs exactly asian, european, us and weekend")
    if len(pr.vol_multiplier_bounds) != 2 or not 0 < pr.vol_multiplier_bounds[0] <= pr.vol_multiplier_bounds[1]:
        bad("profiles.vol_multiplier_bounds", "needs [low, high] with 0 < low <= high")
    if not 0.5 <= pr.liquidation_quantile < 1 or not 0.5 <= pr.whale_trade_quantile < 1:
        bad("profiles.liquidation_quantile", "quantiles must be in [0.5, 1)")
    if len(cfg.detectors.risk.bands) != 4 or sorted(cfg.detectors.risk.bands) != cfg.detectors.risk.bands:
        bad("detectors.risk.bands", "needs 4 increasing score bounds")
    if "*" not in cfg.detectors.liquidations.single_usd:
        bad("detectors.liquidations.single_usd", "needs a \"*\" fallback entry")
    z = cfg.detectors.zones
    if not 0 < z.bin_width < 0.1 or z.bins < 16:
        bad("detectors.zones.bin_width", "need 0 < bin_width < 0.1 and bins >= 16")
    if "*" not in z.leverage or "*" not in z.maintenance:
        bad("detectors.zones.leverage", "leverage and maintenance need a \"*\" entry")
    for key, mix in z.leverage.items():
        if not mix or any(len(p) != 2 or p[0] <= 1 or p[1] < 0 for p in mix) or sum(p[1] for p in mix) <= 0:
            bad(f"detectors.zones.leverage.{key}", "needs [[leverage > 1, weight >= 0], ...] with a positive weight")
    if cfg.recorder.retention_days <= 0 or cfg.recorder.flush_interval_s <= 0:
        bad("recorder.retention_days", "retention_days and flush_interval_s must be > 0")
    _check_flow(cfg.detectors, bad)
    _check_alerts(cfg.alerts, bad)
    b = cfg.bot
    if min(b.history_minutes, b.kline_minutes, b.kline_weight_per_minute, b.poll_interval_ms,
           b.oi_sample_interval_s) <= 0 or b.kline_max_symbols < 0:
        bad("bot", "history_minutes, kline_minutes, kline_weight_per_minute, poll_interval_ms and "
                   "oi_sample_interval_s must be > 0, kline_max_symbols >= 0")
    if cfg.simulator.speed < 0:
        bad("simulator.speed", "must be >= 0")
    if not -1.0 <= cfg.simulator.correlation <= 1.0:
        bad("simulator.correlation", "must be in [-1, 1]")
    from .simulator.scenarios import parse_script
    for i, line in enumerate(cfg.simulator.scenarios):
        try:
            parse_script(line)
        except ValueError as exc:
            bad(f"simulator.scenarios[{i}]", str(exc))


def _check_flow(det: DetectorsConfig, bad) -> None:
    """Rules of the volume, cvd and whales tables (their kernels use 5 s buckets)."""
    def windows(path: str, ws: list[float]) -> None:
        if not ws or any(w <= 0 or abs(w / 5.0 - round(w / 5.0)) > 1e-9 for w in ws) or sorted(set(ws)) != ws:
            bad(path, "needs increasing positive multiples of 5 s")

    v, c, w = det.volume, det.cvd, det.whales
    windows("detectors.volume.windows_s", v.windows_s)
    if len(v.levels_pct) != 4 or sorted(v.levels_pct) != v.levels_pct:
        bad("detectors.volume.levels_pct", "needs 4 increasing spike % (LOW, MODERATE, HIGH, EXTREME)")
    if not 0 <= v.trim < 0.5:
        bad("detectors.volume.trim", "must be in [0, 0.5)")
    if not 1 <= v.min_history <= v.baseline_windows:
        bad("detectors.volume.min_history", "must be between 1 and baseline_windows")
    windows("detectors.cvd.windows_s", c.windows_s)
    if c.pressure_window_s not in c.windows_s:
        bad("detectors.cvd.pressure_window_s", "must be one of detectors.cvd.windows_s")
    if c.session_period_s <= 0 or not 0 <= c.session_offset_s < c.session_period_s:
        bad("detectors.cvd.session_offset_s", "need session_period_s > 0 and 0 <= session_offset_s < period")
    if not 1 <= c.min_history <= c.history_windows:
        bad("detectors.cvd.min_history", "must be between 1 and history_windows")
    if not 0.5 < c.fallback_buy_share <= 1.0:
        bad("detectors.cvd.fallback_buy_share", "must be in (0.5, 1]")
    if "*" not in c.min_pressure_usd:
        bad("detectors.cvd.min_pressure_usd", "needs a \"*\" fallback entry")
    windows("detectors.whales.mix_window_s", [w.mix_window_s])
    if not 0 < w.large_quantile < w.whale_quantile < 1:
        bad("detectors.whales.whale_quantile", "need 0 < large_quantile < whale_quantile < 1")
    if w.half_life_trades < 1:
        bad("detectors.whales.half_life_trades", "must be >= 1")
    if "*" not in w.fallback_usd:
        bad("detectors.whales.fallback_usd", "needs a \"*\" fallback entry")


def _check_alerts(a: AlertsConfig, bad) -> None:
    """Rules of the [alerts] tables."""
    bad_tiers = {k: v for k, v in a.tiers.items() if v not in ("digest", "normal", "urgent")}
    if bad_tiers:
        bad("alerts.tiers", f"tiers are digest, normal or urgent; got {bad_tiers}")
    for key in ("start", "end"):
        if not re.match(r"^([01][0-9]|2[0-3]):[0-5][0-9]$", getattr(a.quiet_hours, key)):
            bad(f"alerts.quiet_hours.{key}", "must be HH:MM (UTC)")
    t = a.telegram
    if not t.api_base_url.startswith(("http://", "https://")):
        bad("alerts.telegram.api_base_url", "must be an http(s) URL")
    if min(t.per_chat_per_s, t.group_per_min, t.global_per_s, t.read_timeout_s, t.connect_timeout_s) <= 0:
        bad("alerts.telegram", "rates and timeouts must be > 0")
    if a.webhook.enabled and not a.webhook.url.startswith(("http://", "https://")):
        bad("alerts.webhook.url", "an enabled webhook needs an http(s) URL")
    if a.retry_initial_s <= 0 or a.retry_max_s < a.retry_initial_s or a.max_age_s <= 0:
        bad("alerts.retry_max_s", "need 0 < retry_initial_s <= retry_max_s and max_age_s > 0")
    if a.market_wide_assets < 2:
        bad("alerts.market_wide_assets", "must be >= 2")


def loads(text: str | bytes, source: str = "<config>", fmt: str = "toml") -> Config:
    """Decode and validate config text (``fmt`` "toml", or "json" for an effective config written by the daemon)."""
    try:
        cfg = (msgspec.json if fmt == "json" else msgspec.toml).decode(text, type=Config)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    except msgspec.DecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from None
    try:
        _check(cfg)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    return cfg


def load(path: str | os.PathLike | None = None) -> Config:
    """Load the config file at ``path`` (default: :func:`default_path`)."""
    p = Path(path) if path is not None else default_path()
    try:
        text = p.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read config: {exc.strerror}") from None
    return loads(text, str(p), "json" if p.suffix == ".json" else "toml")


def default_path() -> Path:
    """``$UNDERTOW_CONFIG``, else ``./config.toml``, else the packaged default next to the code."""
    env = os.environ.get("UNDERTOW_CONFIG")
    if env:
        return Path(env)
    local = Path("config.toml")
    if local.exists():
        return local
    return Path(__file__).resolve().parent.parent / "config.toml"


def dump_json(cfg: Config, path: str | os.PathLike) -> Path:
    """Write ``cfg`` as JSON (atomically) so child processes can load the exact effective config."""
    p = Path(path)
    tmp = p.with_suffix(".tmp")
    tmp.write_bytes(msgspec.json.encode(cfg))
    tmp.replace(p)
    return p


def to_toml_dict(cfg: Config) -> dict:
    """The effective configuration as plain builtins (for printing)."""
    return msgspec.to_builtins(cfg)
