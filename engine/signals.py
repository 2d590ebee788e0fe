"""Signals: the messages Undertow publishes on its bus.

A signal is a frozen msgspec struct in a tagged union (tag field ``kind``),
encoded as msgpack and sent as two ZeroMQ frames ``[topic, payload]`` with
topic ``<kind>.<ASSET>`` (``cascade.BTC``). Every signal carries the four
timestamps of the event that triggered it (ns since epoch):

* ``ts_exchange``: the exchange's event time,
* ``ts_recv``: when the frame arrived at the feed,
* ``ts_computed``: when the compute actor produced the signal,
* ``ts_published``: when it was handed to ZeroMQ,

plus the schema version ``v`` and a per-topic sequence number ``seq`` so a
subscriber can count what it missed. See ``docs/BUS.md``.
"""
from __future__ import annotations

from typing import Union

import msgspec

__all__ = [
    "SCHEMA_VERSION", "Signal", "SignalBase", "Liquidation", "Cascade", "Volatility", "Heartbeat",
    "VolumeSpike", "DeltaPressure", "WhaleTrade", "TradeMix",
    "MarketCascade", "LiquidationSummary", "Risk",
    "OpenInterestMove", "FundingPressure", "BookPressure", "CorrelationBreak", "ZoneApproach",
    "topic_of", "encode", "decode", "SIGNAL_TYPES", "Alert", "ALERT_ACTIONS", "LEVELS", "REGIMES",
]

SCHEMA_VERSION = 1

LEVELS = ("NONE", "WATCH", "WARNING", "CRITICAL")
REGIMES = ("dormant", "low", "normal", "high", "extreme")


class SignalBase(msgspec.Struct, frozen=True, kw_only=True, tag_field="kind"):
    """Fields every signal has."""

    v: int = SCHEMA_VERSION
    seq: int = 0                 # per-topic sequence, set by the publisher
    asset: str                   # canonical asset (BTC), or "*" for market-wide
    venue: str = ""              # exchange name, "" when aggregated across venues
    symbol: str = ""             # native symbol, "" when aggregated
    ts_exchange: int = 0
    ts_recv: int = 0
    ts_computed: int = 0
    ts_published: int = 0


class Liquidation(SignalBase, frozen=True, kw_only=True, tag="liquidation"):
    """One liquidation as reported by a venue. ``side`` names the liquidated position."""

    side: str                    # "long" | "short"
    price: float
    qty: float                   # base units
    notional_usd: float
    size_class: str = "retail"   # retail | large | whale | institutional
    capped: bool = False         # from a sampled stream (Binance: at most 1/symbol/s)


class Cascade(SignalBase, frozen=True, kw_only=True, tag="cascade"):
    """Cascade risk for an asset (aggregated across venues) and its contributing factors."""

    level: str                   # NONE | WATCH | WARNING | CRITICAL
    score: float                 # 0-10
    previous_level: str = "NONE"
    count: int = 0               # liquidations in the cascade window
    window_s: float = 30.0
    notional_usd: float = 0.0
    long_usd: float = 0.0
    short_usd: float = 0.0
    velocity_usd_s: dict[str, float] = {}   # window label -> USD/s
    velocity_n_s: dict[str, float] = {}     # window label -> events/s
    acceleration_usd_s2: float = 0.0
    regime: str = "normal"
    price: float = 0.0
    factors: dict[str, float] = {}          # factor name -> contribution to the score
    heat: float = 0.0                       # self-excitation of liquidation arrivals, 0..1 (Hawkes branching estimate)
    intensity_n_s: float = 0.0              # recent liquidation arrivals/s behind the heat
    market_regime: str = "normal"           # regime of the market asset whose multiplier scaled the score
    missing_factors: list[str] = []         # factors whose detector is not running (counted as 0)
    also_cascading: list[str] = []          # other assets at WATCH or above right now


class MarketCascade(SignalBase, frozen=True, kw_only=True, tag="market_cascade"):
    """Several assets reached a cascade level within one window: a market-wide cascade (``asset`` = "*")."""

    level: str                   # the lowest level among the assets counted
    assets: list[str]            # the assets cascading, in the order they reached the level
    window_s: float = 60.0
    scores: dict[str, float] = {}
    notional_usd: float = 0.0    # their liquidations in the cascade window


class LiquidationSummary(SignalBase, frozen=True, kw_only=True, tag="liquidation_summary"):
    """Rolling liquidation totals of an asset across venues (lower bounds when a venue samples its stream)."""

    windows: dict[str, dict[str, float]] = {}   # "1m" .. "24h" -> long_n, short_n, long_usd, short_usd
    whale_count_24h: int = 0                    # liquidations at or above the whale threshold
    whale_usd_24h: float = 0.0
    whale_dominant_side: str = ""               # long | short | "" (none or balanced)
    whale_threshold_usd: float = 0.0
    lower_bound: bool = False                   # a capped (sampled) venue contributed in the last 24 h


class Risk(SignalBase, frozen=True, kw_only=True, tag="risk"):
    """Composite risk score 0-10 of an asset, with every contributing factor and why it counts."""

    score: float
    band: str                                   # low | moderate | elevated | high | extreme
    previous_score: float = 0.0
    factors: dict[str, float] = {}              # source -> its 0..1 value
    contributions: dict[str, float] = {}        # source -> points of the score
    reasons: dict[str, str] = {}                # source -> why it counts (value in words)
    missing: list[str] = []                     # sources configured but not running


class Volatility(SignalBase, frozen=True, kw_only=True, tag="volatility"):
    """Realized volatility (annualised) per window and the regime it implies, sent on regime change."""

    regime: str
    previous_regime: str = ""
    realized: dict[str, float] = {}
    price: float = 0.0


class Coverage(SignalBase, frozen=True, kw_only=True, tag="coverage"):
    """How much of one venue the engine saw (``asset`` "*", ``venue`` set), published periodically.

    Liquidation totals from a capped stream are lower bounds: ``saturated_slots`` counts the 1 s slots
    in which a symbol's liquidation followed one in the previous slot (the cap was probably binding);
    ``missed_high`` / ``missed_usd`` estimate what the cap hid, from the uncapped venues' liquidations
    in the same intervals (:mod:`engine.hidden_liquidations`).
    """

    connected_share: float = 0.0
    frames: int = 0
    events: dict[str, int] = {}
    malformed: int = 0
    unknown: int = 0
    gaps: int = 0
    book_resyncs: int = 0
    reconnects: int = 0
    liquidations: int = 0
    liquidations_available: bool = True
    capped: bool = False
    saturated_slots: int = 0
    saturation_share: float = 0.0
    missed_low: float = 0.0
    missed_high: float = 0.0
    missed_usd: float = 0.0


class Heartbeat(SignalBase, frozen=True, kw_only=True, tag="heartbeat"):
    """Periodic liveness from a publisher; ``asset`` holds the publisher's name."""

    uptime_s: float = 0.0
    published: int = 0           # signals this publisher has sent
    info: dict[str, float] = {}


class VolumeSpike(SignalBase, frozen=True, kw_only=True, tag="volume"):
    """USD volume over a window well above the key's own baseline (trimmed median of past windows)."""

    level: str                   # LOW | MODERATE | HIGH | EXTREME
    previous_level: str = "NORMAL"
    window_s: float
    volume_usd: float
    baseline_usd: float
    spike_pct: float             # (volume - baseline) / baseline, in %
    trades: int = 0
    buy_share: float = 0.5       # taker-buy share of the window's USD
    dominant_side: str = "balanced"   # buy | sell | balanced
    whale_share: float = 0.0     # USD share of trades at or above the whale size
    whale_usd: float = 0.0       # the whale size in force
    whale_driven: bool = False


class DeltaPressure(SignalBase, frozen=True, kw_only=True, tag="cvd"):
    """Extreme taker-flow pressure: the window delta far out in the key's own distribution."""

    direction: str               # buy | sell
    market: str = "perp"         # perp | spot
    window_s: float
    delta_usd: float             # taker buy - sell USD over the window
    zscore: float = 0.0          # robust z-score (0 while the fallback applies)
    buy_share: float = 0.5
    buy_sell_ratio: float = 1.0
    cvd_usd: float = 0.0         # cumulative delta since the session start
    acceleration_usd_s2: float = 0.0
    volume_usd: float = 0.0
    fallback: bool = False       # judged by the configured buy-share bound (history still short)
    led_by: str = ""             # spot | perp: the market that led the asset's window delta; "" unless both are watched


class WhaleTrade(SignalBase, frozen=True, kw_only=True, tag="whale"):
    """One trade at or above the asset's dynamic whale size."""

    side: str                    # taker side: buy | sell
    market: str = "perp"
    price: float
    qty: float                   # base units
    notional_usd: float
    threshold_usd: float
    multiple: float              # notional / threshold
    fallback: bool = False       # threshold from config (the asset's history is still short)


class TradeMix(SignalBase, frozen=True, kw_only=True, tag="smart_money"):
    """The asset's trade-size mix turned institutional (large trades dominate and lean one way)."""

    mix: str                     # institutional_accumulation | institutional_distribution | mixed | retail_driven
    previous_mix: str = "none"
    window_s: float
    volume_usd: float
    large_share: float           # USD share of trades at or above the large size
    large_net: float             # (buy - sell) / large USD
    large_usd: float             # the large size in force
    trades: int = 0


class OpenInterestMove(SignalBase, frozen=True, kw_only=True, tag="open_interest"):
    """Open interest exploding or flushing over a window, confirmed across venues (aggregated per asset)."""

    event: str                   # explosion | flush
    change_pct: float            # mean change of the agreeing venues over the window, in %
    threshold_pct: float         # mean threshold in force for them, in %
    window_s: float
    oi_usd: float                # OI of the agreeing venues
    venues: int                  # venues agreeing


class FundingPressure(SignalBase, frozen=True, kw_only=True, tag="funding"):
    """Funding (normalised to a common interval, averaged across venues) extreme or moving fast."""

    event: str                   # extreme | momentum
    direction: str               # positive (longs pay) | negative (shorts pay)
    rate: float                  # asset funding rate per common interval (fraction)
    interval_h: float            # the common interval
    annualised_pct: float
    value: float                 # the judged value: the rate (extreme) or its change over the window (momentum)
    threshold: float
    centre: float = 0.0          # the asset's own mean the value is judged around (0 while on the fallback)
    window_s: float = 0.0        # momentum window
    # momentum: predicted_vs_current (a venue sends both rates) | change (the level over window_s); "" for
    # extremes and for messages from before the field
    basis: str = ""


class BookPressure(SignalBase, frozen=True, kw_only=True, tag="book"):
    """Persistent bid/ask USD imbalance near the top of one venue's book, or its resting depth vanishing."""

    event: str                   # imbalance | depth_collapse
    side: str                    # bid | ask (the heavier side) | both (collapse)
    imbalance: float             # (bid - ask) / (bid + ask) USD in the band
    threshold: float = 0.0
    band: float = 0.0            # share of mid (0 = top of book)
    bid_usd: float = 0.0
    ask_usd: float = 0.0
    depth_usd: float = 0.0
    baseline_usd: float = 0.0
    persisted_s: float = 0.0


class CorrelationBreak(SignalBase, frozen=True, kw_only=True, tag="correlation"):
    """Short-window return correlation of a pair fell well below its longer-run level."""

    pair: str                    # "BTC/ETH@binance" or "BTC@binance/BTC@bybit"
    short_corr: float
    long_corr: float
    gap: float                   # long - short
    threshold: float
    resolution_s: float = 0.0



class ZoneApproach(SignalBase, frozen=True, kw_only=True, tag="zone_approach"):
    """Price came within the volatility-scaled distance of a large modelled liquidation zone (engine/kernels/zones.py).

    ``side`` names the positions in the zone: ``long`` zones lie below price (their liquidation is forced selling).
    """

    side: str                    # "long" | "short"
    price: float
    zone_price: float            # USD-weighted liquidation price of the zone
    zone_usd: float              # modelled position notional liquidated there
    zone_band_usd: float = 0.0   # 1-sigma uncertainty of zone_usd
    distance_pct: float = 0.0    # |zone_price - price| / price x 100
    threshold_pct: float = 0.0   # approach distance in force (approach_sigmas x sigma over horizon_s) x 100
    fuel_usd: float = 0.0        # modelled USD force-traded between price and the zone's far edge
    depth_usd: float = 0.0       # resting book USD on that side over the same range (0: no book)
    fuel_to_liquidity: float = 0.0   # fuel_usd / depth_usd (0 when depth is unknown)
    coverage: float = 0.0        # share of the asset's open interest the model explains


ALERT_ACTIONS = ("new", "update", "end", "digest")


class Alert(SignalBase, frozen=True, kw_only=True, tag="alert"):
    """One alert as delivered (topic ``alert.<ASSET>``; ``asset`` ``*`` for market reports and digests)."""

    action: str                  # new | update (a live message rewritten) | end (its summary) | digest
    source: str                  # kind of the signal behind it (cascade, liquidation, ...), market or digest
    tier: str = "normal"         # digest | normal | urgent
    text: str                    # as a human reads it (plain text)
    html: str = ""               # as sent to Telegram
    live_key: str = ""           # the live message an update/end rewrites ("" for standalone alerts)
    reason: str = ""             # why it was sent (the duplicate-suppression decision, or the live action)
    chats: list[int] = []        # Telegram chats it was sent to now
    held: list[int] = []         # Telegram chats that keep it for their next digest (budget or quiet hours)


Signal = Union[Liquidation, Cascade, Volatility, Heartbeat, VolumeSpike, DeltaPressure, WhaleTrade, TradeMix,
               OpenInterestMove, FundingPressure, BookPressure, CorrelationBreak,
               MarketCascade, LiquidationSummary, Risk, ZoneApproach, Coverage, Alert]
# the kinds the engine itself publishes; ``alert`` comes from the alert actor's own socket ([alerts.bus])
SIGNAL_TYPES = (Liquidation, Cascade, Volatility, Heartbeat, VolumeSpike, DeltaPressure, WhaleTrade, TradeMix,
                OpenInterestMove, FundingPressure, BookPressure, CorrelationBreak,
                MarketCascade, LiquidationSummary, Risk, ZoneApproach, Coverage)

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(Signal)


def topic_of(sig: SignalBase) -> str:
    """``<kind>.<ASSET>``, the topic a signal is published on."""
    return f"{sig.__struct_config__.tag}.{sig.asset}"


def encode(sig: SignalBase) -> bytes:
    """Encode a signal as msgpack."""
    return _encoder.encode(sig)


def decode(payload: bytes) -> Signal:
    """Decode a msgpack payload into its signal type; raise msgspec.DecodeError/ValidationError if bad."""
    return _decoder.decode(payload)
