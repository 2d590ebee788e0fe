"""What every command handler shares: the reply and context types, argument parsing and market look-ups."""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from . import fmt as F
from .candles import C, T, TIMEFRAMES, parse_timeframe
from .history import History
from .market import MarketView
from .prefs import Prefs, parse_duration

DAY_MS = 86_400_000


@dataclass(frozen=True)
class Reply:
    text: str
    parse_mode: str = "HTML"
    photo: bytes | None = None       # a PNG sent with ``text`` as its caption (/zones, /chart)


@dataclass
class BotContext:
    """What the handlers read: live state, history, per-chat prefs, config and the actor table."""

    market: MarketView
    history: History
    prefs: Prefs
    cfg: object
    actors: Callable[[], list[dict]] = list     # actor table snapshot (engine/actor_table.py)
    now: Callable[[], float] = time.time
    chat_id: int = 0
    spot_tickers: object = None                 # engine.bot.spot_tickers.SpotTickers (/top10 spot), when followed


@dataclass(frozen=True)
class Command:
    name: str
    description: str
    section: str
    handler: Callable
    usage: str = ""
    admin: bool = False          # changes state: admin user ids only


class ArgError(Exception):
    """A user error; the message is the reply."""


# -- helpers ------------------------------------------------------------------
def _asset(ctx: BotContext, text: str | None, usage: str) -> str:
    if not text:
        raise ArgError(f"❌ Please provide a symbol. Example: <code>{usage}</code>")
    asset = ctx.market.resolve(text)
    if asset is None:
        watched = ctx.market.assets()
        shown = ", ".join(watched[:20]) + (f" and {len(watched) - 20} more" if len(watched) > 20 else "")
        raise ArgError(f"❌ Unknown symbol <b>{F.esc(text)}</b>. Undertow watches: {shown or 'nothing yet'}.\n"
                       f"Symbols may be written BTC, BTCUSDT, BTC-USDT or BTC/USDT.")
    return asset


def _tf(text: str | None, default: str) -> tuple[str, int]:
    label = (text or default).lower()
    minutes = parse_timeframe(label)
    if minutes is None:
        raise ArgError(f"❌ Unknown timeframe <b>{F.esc(text)}</b>. Use one of: {', '.join(TIMEFRAMES)}.")
    return label, minutes


def _key(ctx: BotContext, asset: str, market: str | None = None) -> tuple[str, str]:
    """The candle series to answer from: ``market`` ("spot"/"perp") when asked, else perp (every venue watched
    is a derivative), spot if only spot."""
    if market is not None:
        return asset, market
    keys = ctx.history.candles.keys()
    return (asset, "perp") if (asset, "perp") in keys or (asset, "spot") not in keys else (asset, "spot")


MARKET_WORDS = {"spot": "spot", "perp": "perp", "perps": "perp"}


def _split_market(args: list[str]) -> tuple[list[str], str | None]:
    """``args`` without a trailing market word (``spot``/``perp``/``perps``), and that market (None if absent)."""
    if len(args) > 1 and args[-1].lower() in MARKET_WORDS:
        return args[:-1], MARKET_WORDS[args[-1].lower()]
    return args, None


def _now_ms(ctx: BotContext) -> int:
    return int(ctx.now() * 1000)


def _duration(text: str | None, usage: str) -> float:
    d = parse_duration(text or "")
    if d is None:
        raise ArgError(f"❌ Bad duration <b>{F.esc(text or '')}</b>. Use e.g. 30m, 2h, 1d (max 30d). "
                       f"Usage: <code>{usage}</code>")
    return d


def _primary(instruments):
    """The reference instrument of an asset: Binance if watched, else the one with the largest OI."""
    if not instruments:
        return None
    for ins in instruments:
        if ins.venue == "binance":
            return ins
    return max(instruments, key=lambda i: i.row["oi_usd"])


def _window(c: np.ndarray, since_ms: int) -> np.ndarray:
    return c[c[:, T] >= since_ms]


def _change(c1m: np.ndarray, minutes: int, now_ms: int) -> tuple[float, float]:
    """(% change, $ change) of the last close against the close ``minutes`` ago; NaN if history is shorter."""
    if not len(c1m):
        return math.nan, math.nan
    ref = c1m[c1m[:, T] <= now_ms - minutes * 60_000]
    if not len(ref) or ref[-1, T] < now_ms - (minutes + 5) * 60_000:
        return math.nan, math.nan
    last, base = c1m[-1, C], ref[-1, C]
    return (last / base - 1.0) * 100.0, last - base
