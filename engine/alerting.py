"""Alert policy (duplicate suppression with cooldowns) and console formatting.

Pure functions and a small state machine, so the alert actor stays thin and
the rules are unit-tested without a bus.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

from .signals import LEVELS, Cascade, Liquidation, SignalBase, Volatility

__all__ = ["Dedup", "Decision", "format_console", "usd"]


def usd(x: float) -> str:
    """``$1,234,567`` for amounts, ``$1.2M``-style only in compact contexts."""
    return f"${x:,.0f}"


def compact_usd(x: float) -> str:
    for div, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= div:
            return f"${x / div:.1f}{suffix}"
    return f"${x:,.0f}"


@dataclass
class Decision:
    send: bool
    reason: str
    suppressed_before: int = 0  # similar alerts suppressed since the last one sent for this key


@dataclass
class KeyState:
    """What duplicate suppression remembers of one key: the last alert sent and how many were held back since."""

    last_sent: float
    level: int
    size: float
    suppressed: int = 0
    price: float = 0.0


class Dedup:
    """Decide which signals become alerts.

    * cascade: alert when an asset's level rises, when it ends (falls to
      NONE after an alert), and re-alert at the same level only after
      ``cooldown_s``; a lower but still elevated level is not an alert.
    * liquidation: only sizes above retail; per (asset, side, size class)
      one alert per ``cooldown_s`` unless the new one is at least
      ``extend_factor`` times bigger than the last alerted, or at a price
      ``extend_price_pct`` % further in the liquidation's direction (lower
      for longs, higher for shorts).
    * other kinds: one per (kind, asset) per ``cooldown_s``.
    """

    def __init__(self, cooldown_s: float = 60.0, extend_factor: float = 1.5,
                 kinds: tuple[str, ...] | list[str] = ("cascade", "liquidation"), extend_price_pct: float = 0.0):
        self.cooldown_s = cooldown_s
        self.extend_factor = extend_factor
        self.extend_price = extend_price_pct / 100.0
        self.kinds = set(kinds)
        self._state: dict[tuple, KeyState] = {}
        self.sent = 0
        self.suppressed = 0

    def key_changed(self, key: tuple, st: KeyState) -> None:
        """Called after ``key``'s state changed (an alert sent, or one more held back); a durable subclass stores it."""

    def _decide(self, key: tuple, now: float, level: int, size: float, rule, price: float = 0.0) -> Decision:
        st = self._state.get(key)
        send, reason = rule(st)
        if send:
            before = st.suppressed if st else 0
            self._state[key] = st = KeyState(now, level, size, price=price)
            self.sent += 1
            self.key_changed(key, st)
            return Decision(True, reason, before)
        if st is not None and reason != "not alertable":
            st.suppressed += 1
            self.key_changed(key, st)
        self.suppressed += 1
        return Decision(False, reason)

    def decide(self, sig: SignalBase, now: float | None = None) -> Decision:
        """Whether ``sig`` should be sent now, and why."""
        now = time.monotonic() if now is None else now
        kind = sig.__struct_config__.tag
        if kind not in self.kinds:
            return Decision(False, "kind not alerted")
        if isinstance(sig, Cascade):
            lvl = LEVELS.index(sig.level) if sig.level in LEVELS else 0

            def rule(st):
                if st is None or st.level == 0:
                    return (lvl > 0, "cascade started" if lvl > 0 else "not alertable")
                if lvl == 0:
                    return True, "cascade ended"
                if lvl > st.level:
                    return True, "level rose"
                if lvl == st.level and now - st.last_sent >= self.cooldown_s:
                    return True, "still elevated after cooldown"
                return False, "cooldown"
            return self._decide(("cascade", sig.asset), now, lvl, sig.notional_usd, rule)
        if isinstance(sig, Liquidation):
            if sig.size_class == "retail":
                return Decision(False, "below alert size")

            def rule(st):
                if st is None or now - st.last_sent >= self.cooldown_s:
                    return True, "new"
                if sig.notional_usd >= st.size * self.extend_factor:
                    return True, "bigger than last alert"
                if self.extend_price > 0 and st.price > 0 and sig.price > 0:
                    moved = (st.price - sig.price) if sig.side == "long" else (sig.price - st.price)
                    if moved >= st.price * self.extend_price:
                        return True, "further in price than last alert"
                return False, "cooldown"
            return self._decide(("liquidation", sig.asset, sig.side, sig.size_class), now, 0, sig.notional_usd, rule,
                                price=sig.price)

        def rule(st):
            if st is None or now - st.last_sent >= self.cooldown_s:
                return True, "new"
            return False, "cooldown"
        return self._decide((kind, sig.asset), now, 0, 0.0, rule)


def _clock(ns: int) -> str:
    return time.strftime("%H:%M:%S", time.gmtime(ns / 1e9)) + " UTC" if ns else "n/a"


def format_console(sig: SignalBase, decision: Decision | None = None) -> str:
    """Readable multi-line text for a signal (the existing bot's content, plain text)."""
    more = f"\n   (+{decision.suppressed_before} similar suppressed)" if decision and decision.suppressed_before else ""
    if isinstance(sig, Liquidation):
        arrow = "📉" if sig.side == "long" else "📈"
        venue = f" [{sig.venue}]" if sig.venue else ""
        capped = " (sampled stream: lower bound)" if sig.capped else ""
        return (f"🚨 {sig.symbol or sig.asset} LIQUIDATION{venue} — {sig.size_class.upper()}\n"
                f"   {arrow} {sig.side.upper()} position liquidated\n"
                f"   💰 Value: {usd(sig.notional_usd)}{capped}\n"
                f"   📊 Size: {sig.qty:,.4f} @ ${sig.price:,.2f}\n"
                f"   🕐 Time: {_clock(sig.ts_exchange)}{more}")
    if isinstance(sig, Cascade):
        if sig.level == "NONE":
            return (f"✅ {sig.asset} cascade over (was {sig.previous_level}); score {sig.score:.1f}/10, "
                    f"{sig.count} liquidations in the last {sig.window_s:.0f} s{more}")
        icon = {"WATCH": "👀", "WARNING": "⚠️", "CRITICAL": "🚨"}.get(sig.level, "•")
        factors = ", ".join(f"{k} {v:.1f}" for k, v in sorted(sig.factors.items(), key=lambda kv: -kv[1]) if v > 0)
        vel = ", ".join(f"{k} {compact_usd(v)}/s" for k, v in sig.velocity_usd_s.items())
        return (f"{icon} {sig.asset} LIQUIDATION CASCADE — {sig.level} (score {sig.score:.1f}/10)\n"
                f"   ⚡ {sig.count} liquidations in {sig.window_s:.0f} seconds\n"
                f"   💰 Total: {usd(sig.notional_usd)} (longs {usd(sig.long_usd)}, shorts {usd(sig.short_usd)})\n"
                f"   🏎  Velocity: {vel or 'n/a'}; volatility regime: {sig.regime}\n"
                f"   🧮 Factors: {factors or 'n/a'}\n"
                f"   🕐 Time: {_clock(sig.ts_exchange)}, price ${sig.price:,.2f}{more}")
    if isinstance(sig, Volatility):
        rv = ", ".join(f"{k} {v:.0%}" for k, v in sig.realized.items())
        return f"🌊 {sig.asset} volatility regime {sig.previous_regime or '?'} → {sig.regime} ({rv}){more}"
    return f"{sig.__struct_config__.tag} {sig.asset}{more}"
