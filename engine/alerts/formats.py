"""Telegram message text: HTML for every signal kind, escaping, the 4096 split and the plain-text fallback.

:func:`split_html` cuts between lines and keeps every part well-formed.
Dynamic text always goes through :func:`esc`.
"""
from __future__ import annotations

import html
import re
import time
from typing import TYPE_CHECKING, Iterable

import msgspec

from ..alerting import compact_usd, usd
from ..signals import Cascade, FundingPressure, Liquidation, SignalBase, Volatility

if TYPE_CHECKING:  # pragma: no cover
    from .cascade_live import CascadeState

__all__ = ["MAX_MESSAGE", "esc", "html_to_plain", "split_html", "utf16_len", "render_signal", "render_liquidation",
           "render_volatility", "render_generic", "render_cascade_live", "render_cascade_summary",
           "render_market_report", "render_startup", "render_digest", "render_escalation", "kind_of"]

MAX_MESSAGE = 4096          # Telegram's limit, in UTF-16 units after entity parsing
_TAG = re.compile(r"<[^<>]*>")
_LEVEL_ICON = {"WATCH": "👀", "WARNING": "⚠️", "CRITICAL": "🚨", "NONE": "✅"}
_TIMESTAMPS = {"ts_exchange", "ts_recv", "ts_computed", "ts_published", "v", "seq", "kind"}


def esc(x: object) -> str:
    """Escape text for Telegram HTML (``&``, ``<``, ``>``)."""
    return html.escape(str(x), quote=False)


def html_to_plain(text: str) -> str:
    """The visible text of our HTML, for the fallback when Telegram rejects the markup."""
    return html.unescape(_TAG.sub("", text))


def utf16_len(s: str) -> int:
    """Length as Telegram counts it."""
    return len(s.encode("utf-16-le")) // 2


def _visible_len(line: str) -> int:
    return utf16_len(html_to_plain(line))


def _hard_split(line: str, limit: int) -> list[str]:
    """Cut one over-long line into escaped plain chunks of at most ``limit`` visible units (markup dropped)."""
    chunks, cur, n = [], [], 0
    for ch in html_to_plain(line):
        w = 2 if ord(ch) > 0xFFFF else 1
        if n + w > limit:
            chunks.append(esc("".join(cur)))
            cur, n = [], 0
        cur.append(ch)
        n += w
    if cur:
        chunks.append(esc("".join(cur)))
    return chunks


_OPEN_CLOSE = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9-]*)[^<>]*>")


def _advance(stack: list[tuple[str, str]], line: str) -> None:
    """Update the stack of open tags ``(name, opening tag)`` with the tags of ``line``."""
    for m in _OPEN_CLOSE.finditer(line):
        name = m.group(2).lower()
        if not m.group(1):
            stack.append((name, m.group(0)))
        elif stack and stack[-1][0] == name:
            stack.pop()


def split_html(text: str, limit: int = MAX_MESSAGE) -> list[str]:
    """Split ``text`` into messages of at most ``limit`` visible units, between lines.

    Tags open across a cut are closed at the end of one part and reopened
    at the start of the next. A single line longer than ``limit`` loses its
    markup and is cut into plain chunks; parts with no visible text are dropped.
    """
    parts: list[str] = []
    cur: list[str] = []
    cur_len = 0
    stack: list[tuple[str, str]] = []        # open tags after the last line of cur
    opened: list[tuple[str, str]] = []       # open tags before the first line of cur

    def flush() -> None:
        if cur:
            parts.append("".join(t for _, t in opened) + "\n".join(cur)
                         + "".join(f"</{n}>" for n, _ in reversed(stack)))

    for line in text.split("\n"):
        n = _visible_len(line)
        if n > limit:
            flush()
            parts.extend(_hard_split(line, limit))
            _advance(stack, line)
            cur, cur_len, opened = [], 0, list(stack)
            continue
        extra = n + (1 if cur else 0)
        if cur and cur_len + extra > limit:
            flush()
            cur, cur_len, extra, opened = [], 0, n, list(stack)
        cur.append(line)
        cur_len += extra
        _advance(stack, line)
    flush()
    return [p for p in parts if html_to_plain(p).strip()]


def kind_of(sig: SignalBase) -> str:
    return sig.__struct_config__.tag


def _clock(ns: int) -> str:
    return time.strftime("%H:%M:%S", time.gmtime(ns / 1e9)) + " UTC" if ns else "n/a"


def _price(p: float) -> str:
    return f"${p:,.2f}" if p >= 1 else f"${p:,.6g}"


def _duration(s: float) -> str:
    s = max(0, int(s))
    return f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


def render_liquidation(sig: Liquidation, suppressed_before: int = 0) -> str:
    """ORIGIN's single-liquidation push (side, value, size, price, time) plus venue and size class."""
    arrow = "📉" if sig.side == "long" else "📈"
    venue = f" [{esc(sig.venue)}]" if sig.venue else ""
    lower = " (sampled stream: lower bound)" if sig.capped else ""
    lines = [f"🚨 <b>{esc(sig.symbol or sig.asset)} LIQUIDATION</b>{venue} — {esc(sig.size_class.upper())}",
             f"{arrow} <b>{esc(sig.side.upper())}</b> position liquidated",
             f"💰 <b>Value</b>: {usd(sig.notional_usd)}{lower}",
             f"📊 <b>Size</b>: {sig.qty:,.4f} @ {_price(sig.price)}",
             f"🕐 <b>Time</b>: {_clock(sig.ts_exchange)}"]
    if suppressed_before:
        lines.append(f"<i>(+{suppressed_before} similar suppressed)</i>")
    return "\n".join(lines)


def render_volatility(sig: Volatility, suppressed_before: int = 0) -> str:
    rv = ", ".join(f"{esc(k)} {v:.0%}" for k, v in sig.realized.items())
    more = f" <i>(+{suppressed_before} similar suppressed)</i>" if suppressed_before else ""
    return (f"🌊 <b>{esc(sig.asset)} volatility</b>: {esc(sig.previous_regime or '?')} → "
            f"<b>{esc(sig.regime)}</b>\nRealized: {rv or 'n/a'}; price {_price(sig.price)}{more}")


_FUNDING_BASIS = {"predicted_vs_current": "spread", "change": "change"}


def render_funding(sig: FundingPressure, suppressed_before: int = 0) -> str:
    """Funding extreme or momentum: the asset's rate per common interval, annualised, and what was judged."""
    pays = "longs pay" if sig.direction == "positive" else "shorts pay"
    what = sig.event
    if sig.event == "momentum":
        basis = _FUNDING_BASIS.get(sig.basis)
        window = f" over {sig.window_s / 60:g} min" if sig.basis == "change" and sig.window_s else ""
        what = f"momentum ({basis}{window})" if basis else "momentum"
    more = f" <i>(+{suppressed_before} similar suppressed)</i>" if suppressed_before else ""
    return (f"💸 <b>{esc(sig.asset)} funding</b> — {esc(what)}, {pays}\n"
            f"Rate: {sig.rate * 100:+.4f}% per {sig.interval_h:g} h ({sig.annualised_pct:+.2f}% annually); "
            f"judged {sig.value * 100:+.4f}% vs threshold {sig.threshold * 100:.4f}%{more}")


def _scalar(v: object) -> str | None:
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:,.4g}" if abs(v) < 1000 else f"{v:,.0f}"
    if isinstance(v, (int, str)):
        return esc(v) if v != "" else None
    if isinstance(v, dict) and v:
        return esc(", ".join(f"{k} {_scalar(x) or x}" for k, x in list(v.items())[:8]))
    if isinstance(v, (list, tuple)) and v:
        return esc(", ".join(str(x) for x in v[:8]))
    return None


def render_generic(sig: SignalBase, suppressed_before: int = 0) -> str:
    """Any other kind (detectors added later): its name, asset, venue and every non-empty field."""
    d = msgspec.to_builtins(sig)
    venue = f" [{esc(sig.venue)}]" if sig.venue else ""
    lines = [f"ℹ️ <b>{esc(sig.asset)} {esc(kind_of(sig).replace('_', ' ').upper())}</b>{venue}"]
    for k, v in d.items():
        if k in _TIMESTAMPS or k in ("asset", "venue"):
            continue
        s = _scalar(v)
        if s is not None:
            lines.append(f"• {esc(k.replace('_', ' '))}: {s}")
    lines.append(f"🕐 {_clock(sig.ts_exchange)}")
    if suppressed_before:
        lines.append(f"<i>(+{suppressed_before} similar suppressed)</i>")
    return "\n".join(lines)


def render_signal(sig: SignalBase, suppressed_before: int = 0) -> str:
    """A standalone alert for ``sig`` (cascades normally go through the live message instead)."""
    if isinstance(sig, Liquidation):
        return render_liquidation(sig, suppressed_before)
    if isinstance(sig, Volatility):
        return render_volatility(sig, suppressed_before)
    if isinstance(sig, FundingPressure):
        return render_funding(sig, suppressed_before)
    if isinstance(sig, Cascade):
        icon = _LEVEL_ICON.get(sig.level, "•")
        return (f"{icon} <b>{esc(sig.asset)} LIQUIDATION CASCADE</b> — {esc(sig.level)} (score {sig.score:.1f}/10)\n"
                f"⚡ <b>{sig.count} liquidations</b> in {sig.window_s:.0f} seconds\n"
                f"💰 <b>Total</b>: {usd(sig.notional_usd)} (longs {usd(sig.long_usd)}, shorts {usd(sig.short_usd)})\n"
                + _factors_line(sig.factors))
    return render_generic(sig, suppressed_before)


def _factors_line(factors: dict[str, float]) -> str:
    top = [(k, v) for k, v in sorted(factors.items(), key=lambda kv: -kv[1]) if v > 0]
    return "🧮 <b>Factors</b>: " + (", ".join(f"{esc(k)} {v:.1f}" for k, v in top) or "n/a")


def _move(first: float, last: float) -> str:
    if first <= 0 or last <= 0:
        return "n/a"
    pct = (last / first - 1) * 100
    return f"{_price(first)} → {_price(last)} ({pct:+.2f}%)"


def _body(st: "CascadeState", count: int) -> list[str]:
    lines = [f"⚡ <b>{count} liquidations</b> in {st.last.window_s:.0f} seconds "
             f"(whole cascade: {st.n_long + st.n_short} seen)",
             f"💰 <b>Total</b>: {usd(st.total_usd)}{' (lower bound: sampled streams)' if st.capped else ''}",
             f"📊 <b>Breakdown</b>: {st.n_long} longs ({compact_usd(st.long_usd)}), "
             f"{st.n_short} shorts ({compact_usd(st.short_usd)})"]
    if st.venues:
        venues = sorted(st.venues.items(), key=lambda kv: -kv[1])
        shown = ", ".join(f"{esc(v)} {compact_usd(x)}" for v, x in venues[:8])
        lines.append(f"🏦 <b>Venues</b> ({len(venues)}): {shown}{' …' if len(venues) > 8 else ''}")
    if st.peak_minute_usd > 0:
        lines.append(f"⏱ <b>Peak minute</b>: {time.strftime('%H:%M', time.gmtime(st.peak_minute * 60))} UTC, "
                     f"{compact_usd(st.peak_minute_usd)}")
    lines.append(f"📈 <b>Price</b>: {_move(st.first_price, st.last_price)}")
    return lines


def render_cascade_live(st: "CascadeState") -> str:
    """The live message: created when the cascade starts, edited in place while it develops."""
    c = st.last
    icon = _LEVEL_ICON.get(c.level, "•")
    vel = ", ".join(f"{esc(k)} {compact_usd(v)}/s" for k, v in c.velocity_usd_s.items())
    lines = [f"{icon} <b>{esc(st.asset)} LIQUIDATION CASCADE</b> — {esc(c.level)} "
             f"(score {c.score:.1f}/10, peak {esc(st.peak_level)} {st.peak_score:.1f})",
             *_body(st, c.count),
             f"🏎 <b>Velocity</b>: {vel or 'n/a'}; volatility regime {esc(c.regime)}",
             _factors_line(c.factors),
             "⚠️ <b>Potential price impact expected</b>",
             f"🕐 Started {_clock(st.started_ns)}, updated {_clock(c.ts_exchange or st.started_ns)} "
             f"({_duration((c.ts_exchange - st.started_ns) / 1e9 if c.ts_exchange else 0)})"]
    return "\n".join(lines)


def render_cascade_summary(st: "CascadeState") -> str:
    """The live message's final text once the cascade is over (window count at its peak)."""
    return "\n".join([f"✅ <b>{esc(st.asset)} cascade over</b> — peak {esc(st.peak_level)} "
                      f"(score {st.peak_score:.1f}/10), lasted {_duration(st.duration_s)}",
                      *_body(st, st.peak_count),
                      f"🕐 {_clock(st.started_ns)} → {_clock(st.ended_ns)}"])


def render_escalation(st: "CascadeState") -> str:
    """A short new message when a cascade rises to a level not yet alerted (edits do not notify)."""
    c = st.last
    return (f"{_LEVEL_ICON.get(c.level, '•')} <b>{esc(st.asset)} cascade escalated to {esc(c.level)}</b> "
            f"(score {c.score:.1f}/10): {usd(st.total_usd)} liquidated so far, price {_move(st.first_price, st.last_price)}")


def render_market_report(states: Iterable["CascadeState"], active: bool = True, limit: int = 25) -> str:
    """Several assets cascading at once: one compact line per asset, biggest first."""
    states = sorted(states, key=lambda s: -s.total_usd)
    total = sum(s.total_usd for s in states)
    longs = sum(s.long_usd for s in states)
    head = ("🌊 <b>MARKET-WIDE LIQUIDATION CASCADE</b>" if active else "✅ <b>Market-wide cascade over</b>")
    lines = [f"{head} — {len(states)} assets, {usd(total)} liquidated"
             f" ({(longs / total * 100) if total else 0:.0f}% longs)"]
    for s in states[:limit]:
        state = s.last.level if s.active else f"over (peak {s.peak_level})"
        lines.append(f"• <b>{esc(s.asset)}</b> {esc(state)} {s.last.score:.1f} · {compact_usd(s.total_usd)} · "
                     f"{s.n_long}L/{s.n_short}S · {_move(s.first_price, s.last_price)}")
    if len(states) > limit:
        lines.append(f"… and {len(states) - limit} more")
    return "\n".join(lines)


def render_startup(venues: list[str], kinds: list[str], market_wide_assets: int) -> str:
    return ("✅ <b>Undertow started</b>: liquidation-cascade monitoring is on.\n"
            f"Venues: {esc(', '.join(venues) or 'none')}\nAlerts: {esc(', '.join(kinds))}; "
            f"one live message per cascade, a market report when {market_wide_assets}+ assets cascade at once.")


def render_digest(lines: list[str], since_ns: int) -> str:
    """Held-back alerts (budget or quiet hours), one line each."""
    return "\n".join([f"📋 <b>Digest</b>: {len(lines)} alerts since {_clock(since_ns)}", *lines])
