"""Spot-led or perp-led: which market's taker flow drove a move.

Used by the CVD detector (``DeltaPressure.led_by``, ``cvd()``'s ``led_by_<window>``) and by the bot's
``/cvd``; it imports neither, so a detector does not depend on the bot.
"""
from __future__ import annotations

import math
from typing import Mapping

import numpy as np

__all__ = ["leading_market", "taker_delta_usd", "led_by"]


def taker_delta_usd(buy: np.ndarray, sell: np.ndarray, price: np.ndarray) -> float:
    """Taker buy minus sell base volume, each row valued at its ``price`` (USD), summed."""
    return float(((buy - sell) * price).sum()) if len(buy) else 0.0


def leading_market(spot_delta_usd: float, perp_delta_usd: float) -> str:
    """Which market led a taker-flow move: "spot", "perp", or "none" when the combined delta is zero.

    The leader is the market whose delta points the way of the combined move and is the larger of the
    two in that direction (a market pushing against the move never leads it).
    """
    total = spot_delta_usd + perp_delta_usd
    if total == 0.0 or not math.isfinite(total):
        return "none"
    sign = 1.0 if total > 0 else -1.0
    return "spot" if spot_delta_usd * sign > perp_delta_usd * sign else "perp"


def led_by(delta_usd_by_market: Mapping[str, float]) -> str:
    """``DeltaPressure.led_by`` from an asset's window delta per market ("spot", "perp"): the leader, or ""
    when one of the two markets is not watched or the combined delta is zero."""
    spot, perp = delta_usd_by_market.get("spot"), delta_usd_by_market.get("perp")
    if spot is None or perp is None:
        return ""
    leader = leading_market(spot, perp)
    return "" if leader == "none" else leader
