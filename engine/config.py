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

from .detector_config import STRUCT as _STRUCT
from .detector_config import (  # noqa: F401 - re-exported: the detector tables are part of the config
    LiquidationsConfig,
    VelocityConfig,
    VolatilityConfig,
    CascadeConfig,
    ZonesConfig,
    VolumeConfig,
    CvdConfig,
    WhalesConfig,
    OpenInterestConfig,
    FundingConfig,
    BookConfig,
    CorrelationConfig,
    RiskConfig,
    ProfilesConfig,
    DetectorsConfig,
)
from .security import endpoint_is_local

__all__ = ["Config", "ConfigError", "load", "loads", "dump_json", "to_toml_dict", "default_path"]


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
    realtime_priority: int = 0           # SCHED_FIFO priority (1-98) of the compute workers' loops; 0 = normal
    detector_cadence_ms: float = 100.0   # plug-in detectors run over queued batches at most this much stream time late
    detector_queue_records: int = 256    # ... or once this many records are queued; cadence 0 = after every batch


class SupervisorConfig(msgspec.Struct, **_STRUCT):
    """Heartbeats, restarts and the loopback health endpoint."""

    heartbeat_timeout_ms: int = 3000     # an actor silent this long is hung and gets restarted
    startup_grace_ms: int = 15000        # heartbeat allowance before an actor's first beat (interpreter, imports)
    startup_timeout_ms: int = 600000     # setup + warm-up (numba on a cold cache) must reach RUNNING within this
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
    # Binance spot beside the perps: taker trades (spot vs perp CVD, the bot's SPOT block); "tickers" adds !miniTicker@arr
    binance_spot: VenueConfig = VenueConfig(ws_urls={"spot": "wss://stream.binance.com:9443"}, rest_url="https://api.binance.com", symbols=["BTCUSDT", "ETHUSDT", "SOLUSDT"], fallback_symbols=["BTCUSDT", "ETHUSDT", "SOLUSDT"], streams=["trades"], rest_weight_per_minute=3000)
    # Bybit and OKX spot beside their perps: taker trades only (publicTrade on /v5/public/spot; OKX trades of BTC-USDT)
    bybit_spot: VenueConfig = VenueConfig(ws_urls={"spot": "wss://stream.bybit.com/v5/public/spot"}, rest_url="https://api.bybit.com", symbols=["BTCUSDT", "ETHUSDT", "SOLUSDT"], fallback_symbols=["BTCUSDT", "ETHUSDT", "SOLUSDT"], streams=["trades"], rest_weight_per_minute=100)
    okx_spot: VenueConfig = VenueConfig(ws_urls={"public": "wss://ws.okx.com:8443/ws/v5/public"}, rest_url="https://www.okx.com", symbols=["BTC-USDT", "ETH-USDT", "SOL-USDT"], fallback_symbols=["BTC-USDT", "ETH-USDT", "SOL-USDT"], streams=["trades"], rest_weight_per_minute=300)


class MarginOiConfig(msgspec.Struct, **_STRUCT):
    """Open interest of the coin-margined (inverse) and USDC-margined perps beside each venue's own (engine/margin_oi.py)."""

    enabled: bool = True
    assets: list[str] = msgspec.field(default_factory=lambda: ["BTC", "ETH", "SOL"])
    interval_s: float = 60.0             # each contract polled this often (stretched to fit the venue's REST budget)


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


class AlertBusConfig(msgspec.Struct, **_STRUCT):
    """Each alert as delivered, republished as an ``alert`` signal on the alert actor's own PUB socket."""

    enabled: bool = False
    endpoint: str = "tcp://127.0.0.1:7301"   # loopback or ipc:// unless [bus] has CurveZMQ keys (used here too)
    sndhwm: int = 10000


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
    buildup_s: float = 60.0              # liquidations this far before a cascade's start count in it (kept durably)
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
    bus: AlertBusConfig = AlertBusConfig()


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
    kline_bootstrap: bool = True         # fill the candles from kline REST at start (Binance, then the others)
    kline_minutes: int = 1440            # how far back the bootstrap reaches
    kline_max_symbols: int = 30          # symbols bootstrapped per venue (the registry's first ones)
    kline_weight_per_minute: int = 300   # the bot's own REST budget per venue (never above the venue's)
    poll_interval_ms: float = 50.0       # rings and bus are drained this often (never blocking the event loop)
    oi_sample_interval_s: float = 60.0   # OI samples for the 15 min / 24 h changes


class Config(msgspec.Struct, **_STRUCT):
    """The whole configuration."""

    engine: EngineConfig = EngineConfig()
    supervisor: SupervisorConfig = SupervisorConfig()
    bus: BusConfig = BusConfig()
    venues: VenuesConfig = VenuesConfig()
    margin_oi: MarginOiConfig = MarginOiConfig()
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
    if not 0 <= e.realtime_priority <= 98:   # its ZeroMQ I/O thread runs one above
        bad("engine.realtime_priority", f"must be between 0 (normal scheduling) and 98, got {e.realtime_priority}")
    if e.realtime_priority and e.idle == "spin":
        bad("engine.realtime_priority", "needs idle = park, backoff or sleep: a spinning real-time loop starves its core")
    if not 0 <= e.detector_cadence_ms <= 60_000:
        bad("engine.detector_cadence_ms", "must be between 0 (run after every batch) and 60000")
    if e.detector_queue_records < 1:
        bad("engine.detector_queue_records", "must be >= 1")
    s = cfg.supervisor
    if s.heartbeat_timeout_ms < 200:
        bad("supervisor.heartbeat_timeout_ms", "must be >= 200")
    if s.startup_grace_ms < s.heartbeat_timeout_ms:
        bad("supervisor.startup_grace_ms", "must be >= supervisor.heartbeat_timeout_ms")
    if s.startup_timeout_ms < s.startup_grace_ms:
        bad("supervisor.startup_timeout_ms", "must be >= supervisor.startup_grace_ms")
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
    if cfg.margin_oi.interval_s <= 0:
        bad("margin_oi.interval_s", "must be > 0")
    if not all(a and a.isalnum() for a in cfg.margin_oi.assets):
        bad("margin_oi.assets", "must be asset names such as \"BTC\"")
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
    co = cfg.detectors.correlation
    if not 0 < co.resolution_s < co.short_window_s < co.long_window_s:
        bad("detectors.correlation.resolution_s", "need 0 < resolution_s < short_window_s < long_window_s")
    if any(len(p) != 2 for p in co.pairs):
        bad("detectors.correlation.pairs", "each pair needs two assets")
    if not (co.winsor_k == 0 or co.winsor_k >= 1):
        bad("detectors.correlation.winsor_k", "must be 0 (no clipping) or >= 1 (x the EW mean absolute return)")
    if cfg.recorder.retention_days <= 0 or cfg.recorder.flush_interval_s <= 0:
        bad("recorder.retention_days", "retention_days and flush_interval_s must be > 0")
    _check_flow(cfg.detectors, bad)
    _check_alerts(cfg.alerts, bad)
    if cfg.alerts.bus.enabled and not endpoint_is_local(cfg.alerts.bus.endpoint) and not cfg.bus.curve_secret_key:
        bad("alerts.bus.endpoint", f"{cfg.alerts.bus.endpoint} is reachable beyond loopback: "
                                   "set [bus] curve_secret_key (the alert socket uses the bus's CurveZMQ keys)")
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
    if a.buildup_s <= 0:
        bad("alerts.buildup_s", "must be > 0")


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
