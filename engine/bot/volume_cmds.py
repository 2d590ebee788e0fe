"""The volume-intelligence commands: /volume, /volscan, /cvd, /oi and /profile."""
from __future__ import annotations

import math
from datetime import datetime, timezone

from . import analytics as A
from . import fmt as F
from .candles import C, T, split_coverage
from .context import DAY_MS, ArgError, BotContext, _asset, _key, _now_ms, _split_market, _tf
from .profile import PROFILE_TIMEFRAMES, tpo, verdict, volume_profile, vwap


# -- /volume, /volscan ------------------------------------------------------------
def _spike(ctx: BotContext, asset: str, tf_min: int, market: str | None = None):
    now_ms = _now_ms(ctx)
    c = ctx.history.candles.candles(_key(ctx, asset, market), tf_min, now_ms - 98 * tf_min * 60_000)
    dt = datetime.fromtimestamp(now_ms / 1000, timezone.utc)
    return A.volume_spike(c, tf_min, now_ms, dt.hour, dt.weekday()), len(c)


def cmd_volume(ctx: BotContext, args: list[str]) -> str:
    args, market = _split_market(args)
    asset = _asset(ctx, args[0] if args else None, "/volume BTC-USDT 15m")
    tf, tf_min = _tf(args[1] if len(args) > 1 else None, "15m")
    s, n = _spike(ctx, asset, tf_min, market)
    if s is None:
        raise ArgError(f"❌ Not enough {tf} history for {asset} yet ({n} candles; a closed candle and a "
                       f"baseline are needed).")
    analysis = ("Significant volume activity detected!" if s.significant else
                "Volume above normal" if s.level == "LOW" else "Normal volume levels")
    return "\n".join([
        F.b(f"📊 VOLUME ANALYSIS - {asset}"), "",
        f"{s.emoji} {F.b('Spike Level')}: {s.level}",
        f"📈 {F.b('Volume Change')}: {F.pct(s.pct, 1)} (last closed {tf} candle)",
        f"⏰ {F.b('Timeframe')}: {tf}", "",
        f"📊 {F.b('Current Volume')}: {F.num(s.current, 2)} {asset}",
        f"💰 {F.b('USD Value')}: {F.usd(s.usd, 1)}",
        f"📊 {F.b('Baseline Volume')}: {F.num(s.baseline, 2)} {asset} (trimmed median of {s.candles} candles, "
        f"session-adjusted)",
        f"⏳ {F.b('Running candle')}: {F.num(s.in_progress, 2)} {asset} pro-rated", "",
        f"🔍 {F.b('Analysis')}: {analysis}", "", F.footer(ctx.now())])


def cmd_volscan(ctx: BotContext, args: list[str]) -> str:
    try:
        threshold = float(args[0].rstrip("%")) if args else 200.0
    except ValueError:
        raise ArgError(f"❌ Threshold must be a number. Usage: <code>/volscan 200 15m</code> "
                       f"(got {F.esc(args[0])})") from None
    tf, tf_min = _tf(args[1] if len(args) > 1 else None, "15m")
    hits = []
    assets = sorted({a for a, _ in ctx.history.candles.keys()})
    for asset in assets:
        s, _ = _spike(ctx, asset, tf_min)
        if s is not None and F.known(s.pct) and s.pct >= threshold:
            hits.append((s.pct, asset, s))
    if not hits:
        return f"😴 No volume spikes &gt;{threshold:g}% found in {tf} timeframe ({len(assets)} assets scanned)"
    hits.sort(reverse=True)
    out = [F.b("🔍 VOLUME SPIKES DETECTED"), "", f"📊 Threshold: {threshold:g}%", f"⏰ Timeframe: {tf}",
           f"🎯 Found: {len(hits)} of {len(assets)} assets", ""]
    for k, (p, asset, s) in enumerate(hits[:5], 1):
        out += [f"{F.b(f'{k}.')} {asset} {s.emoji}", f"📈 Spike: {F.pct(p, 0)}", f"💰 Volume: {F.usd(s.usd, 1)}", ""]
    if len(hits) > 5:
        out.append(f"… and {len(hits) - 5} more spikes")
    out.append(F.footer(ctx.now()))
    return "\n".join(out)


# -- /cvd -------------------------------------------------------------------------------
def _led_by_line(ctx: BotContext, asset: str, since_ms: int) -> list[str]:
    """Which market led the taker flow since ``since_ms``, when both spot and perp of ``asset`` are watched."""
    keys = ctx.history.candles.keys()
    if (asset, "spot") not in keys or (asset, "perp") not in keys:
        return []
    c = {m: ctx.history.candles.one_minute((asset, m), since_ms) for m in ("spot", "perp")}
    blind = [m for m in c if len(c[m]) and not split_coverage(c[m])[0]]
    if blind:
        return [f"🧭 {F.b('Flow Leader')}: {F.NA} (no taker split for {' or '.join(blind)}: venue klines)"]
    spot, perp = (A.taker_delta_usd(c[m]) for m in ("spot", "perp"))
    led = A.leading_market(spot, perp)
    label = {"spot": "SPOT-LED 🏪", "perp": "PERP-LED ⚡"}.get(led, "NEUTRAL")
    return [f"🧭 {F.b('Flow Leader')}: {label} (taker delta spot {F.usd(spot)}{A.split_note(c['spot'])}, "
            f"perp {F.usd(perp)}{A.split_note(c['perp'])})"]


def cmd_cvd(ctx: BotContext, args: list[str]) -> str:
    args, market = _split_market(args)
    asset = _asset(ctx, args[0] if args else None, "/cvd BTC-USDT 1h")
    tf, tf_min = _tf(args[1] if len(args) > 1 else None, "1h")
    now_ms = _now_ms(ctx)
    c = ctx.history.candles.candles(_key(ctx, asset, market), tf_min, now_ms - 96 * tf_min * 60_000)[-96:]
    known, minutes = split_coverage(c)
    if len(c) and not known:
        return (F.b(f"📈 CVD ANALYSIS - {asset}") + f"\n\n{F.NA}: none of the {minutes} min held for {asset} has a "
                f"taker buy/sell split (venue klines carry none; minutes built from live trades will)")
    r = A.cvd(c, tf_min)
    if r is None:
        raise ArgError(f"❌ Not enough {tf} history for {asset} yet ({len(c)} candles"
                       + (f"; taker split in {known} of {minutes} min" if known < minutes else "") + ").")
    icon = {"BULLISH": "🟢📈", "BEARISH": "🔴📉"}.get(r.trend, "⚪➡️")
    div = "⚠️ " + F.b("DIVERGENCE DETECTED") if r.divergence else "✅ No divergence"
    return "\n".join([
        F.b(f"📈 CVD ANALYSIS - {asset}"), "",
        f"{icon} {F.b('CVD Trend')}: {r.trend}",
        f"💹 {F.b('Current CVD')}: {F.signed(r.current, 2)} {asset}{A.split_note(c)}",
        f"📊 {F.b(f'Change ({F.span(r.span_minutes)}, {r.candles} candles)')}: {F.signed(r.change, 2)} {asset}",
        f"⏰ {F.b('Timeframe')}: {tf}", "",
        f"🔍 {F.b('Price vs CVD')}: {div}",
        f"📊 {F.b('Price Trend')}: {r.price_trend}",
        *_led_by_line(ctx, asset, int(c[0, T])), "",
        f"💡 {F.b('What is CVD?')}",
        "• Cumulative Volume Delta: taker buys minus taker sells, trade by trade",
        "• Rising CVD: aggressive buyers; falling CVD: aggressive sellers",
        "• Divergence: price and CVD slopes (20 candles) disagree", "", F.footer(ctx.now())])




# -- /oi --------------------------------------------------------------------------------------
def _oi_by_venue(with_oi, asset: str) -> list[str]:
    """Per venue and in total: stablecoin-margined (USDT + USDC) | coin-margined OI, in base units and USD."""
    split: dict[str, list[float]] = {}   # venue -> [stable base, stable USD, coin base, coin USD]
    for i in with_oi:
        row = split.setdefault(i.venue, [0.0] * 4)
        k = 2 if i.market == "inverse" else 0
        row[k] += i.row["oi"]
        row[k + 1] += i.row["oi_usd"]
    total = [sum(r[k] for r in split.values()) for k in range(4)]
    side = lambda q, u: f"{F.num(q, 0)} {asset} ({F.usd(u)})" if u > 0 else F.NA   # noqa: E731
    ranked = sorted(split.items(), key=lambda item: -item[1][1] - item[1][3])
    return ([F.b("🏦 BY VENUE (stablecoin | coin-margined):")]
            + [f"• {v.title()}: {side(*r[:2])} | {side(*r[2:])}" for v, r in ranked]
            + [f"• Total: {side(*total[:2])} | {side(*total[2:])}"])


def _margin_coverage(ctx: BotContext, with_oi, enabled: list[str]) -> list[str]:
    """Which coin-margined and USDC contracts report, and which margin types each enabled venue follows."""
    from engine.margin_oi import MARKETS, coverage
    extra = [f"{i.venue.title()} {F.esc(i.symbol)}" for i in with_oi if i.market == "inverse" or i.quote == "USDC"]
    out = [f"• Coin-margined/USDC contracts reporting: {', '.join(extra) or 'none'}"]
    if ctx.cfg.margin_oi.enabled:
        follows = [f"{v} ({coverage(v) if MARKETS[v] else 'no other margin type listed'})"
                   for v in enabled if v in MARKETS]
        out.append(f"• Margin types followed: {'; '.join(follows)}")
    else:
        out.append("• Margin types followed: none ([margin_oi] is disabled)")
    return out


def cmd_oi(ctx: BotContext, args: list[str]) -> str:
    asset = _asset(ctx, args[0] if args else "BTC", "/oi BTC")
    ins = [i for i in ctx.market.instruments(asset) if i.market != "spot"]
    with_oi = [i for i in ins if i.row["oi_usd"] > 0]
    now_ns = int(ctx.now() * 1e9)
    from engine.supervisor import enabled_venues
    from engine.venues import load
    enabled = [v for v in enabled_venues(ctx.cfg)   # spot venues carry no open interest
               if hasattr(load(v), "oi_request") or getattr(load(v), "OI_STREAMED", False)]
    total_usd = sum(i.row["oi_usd"] for i in with_oi)
    if not with_oi:
        return (F.b(f"📊 OPEN INTEREST ANALYSIS - {asset}") + f"\n\n{F.NA}: no venue has reported OI for {asset} "
                f"yet (enabled: {', '.join(enabled)})")
    cats: dict[str, float] = {}
    for i in with_oi:
        cats["USD" if i.market == "inverse" else i.quote] = cats.get("USD" if i.market == "inverse" else i.quote,
                                                                     0.0) + i.row["oi_usd"]
    stable = sum(v for k, v in cats.items() if k != "USD")
    inverse = cats.get("USD", 0.0)
    share = lambda x: f"{x / total_usd * 100:.1f}%"   # noqa: E731
    out = [F.b(f"📊 OPEN INTEREST ANALYSIS - {asset}"), "", F.b("🔢 MARKET TYPE BREAKDOWN:"),
           f"• Total OI: {F.num(sum(i.row['oi'] for i in with_oi), 0)} {asset} ({F.usd(total_usd)})",
           f"• Stablecoin-Margined: {F.usd(stable)} | {share(stable)}"]
    out += [f"  - {k}: {F.usd(v)} ({share(v)})" for k, v in sorted(cats.items()) if k != "USD"]
    out += [f"• Coin-Margined (Inverse): {F.usd(inverse)} | {share(inverse)}", ""] + _oi_by_venue(with_oi, asset)
    out += ["", F.b("📈 TOP MARKETS:")]
    for k, i in enumerate(sorted(with_oi, key=lambda i: -i.row["oi_usd"])[:13], 1):
        vol, _ = ctx.history.volume_24h(i.id, now_ns)
        age = (now_ns - i.row["ts"]) / 1e9 if i.row["ts"] else math.nan
        out += [f"{k}. {i.venue.title()} {F.esc(i.symbol)}: {F.num(i.row['oi'], 0)} {asset} ({F.usd(i.row['oi_usd'])})"
                f" | {share(i.row['oi_usd'])} {'INVERSE' if i.market == 'inverse' else 'STABLE'}",
                f"   Funding: {A.venue_funding_text(ctx.cfg.detectors.funding, i)} | "
                f"Vol 24h: {F.num(vol, 0)} {asset} (stream) | age {F.num(age, 0)}s"]
    reporting = sorted({i.venue for i in with_oi})
    missing = [v for v in enabled if v not in reporting]
    out += ["", F.b("🏢 COVERAGE SUMMARY:"), f"• Exchanges: {len(reporting)} of {len(enabled)} enabled report OI "
            f"({', '.join(reporting)})" + (f"; missing: {', '.join(missing)}" if missing else ""),
            f"• Markets: {len(with_oi)} total"] + _margin_coverage(ctx, with_oi, enabled) + ["", F.footer(ctx.now())]
    return "\n".join(out)


# -- /profile ---------------------------------------------------------------------------------
def cmd_profile(ctx: BotContext, args: list[str]) -> str:
    want_tpo = [a for a in args if a.lower() == "tpo"]
    rest = [a for a in args if a.lower() != "tpo"]
    asset = _asset(ctx, rest[0] if rest else "BTC", "/profile BTC")
    now_ms = _now_ms(ctx)
    session = (now_ms // DAY_MS) * DAY_MS
    c1 = ctx.history.candles.one_minute(_key(ctx, asset), session)
    if not len(c1):
        raise ArgError(f"❌ No {asset} trades since 00:00 UTC yet.")
    px = c1[-1, C]
    out = [F.b(f"📊 MARKET PROFILE - {asset}"), f"💰 Current: {F.price(px)}",
           f"Session from 00:00 UTC ({len(c1)} one-minute candles, first included)", "─" * 30]
    in_vp = in_tpo = 0
    found = {}
    from .candles import aggregate
    for label, minutes, bins in PROFILE_TIMEFRAMES:
        c = aggregate(c1, minutes)
        vp, tp, vw = volume_profile(c, bins), tpo(c), vwap(c)
        name = "Daily" if label == "1d" else label.upper()
        out += ["", F.b(f"{name} Profile")]
        if vp is None:
            out.append(f"- {F.NA} (no volume)")
            continue
        found[label] = (vp, tp)
        in_vp += vp.contains(px)
        in_tpo += bool(tp and tp.contains(px))
        trunc = math.trunc((px - vw) / vw * 10000) / 100 if F.known(vw) and vw else math.nan
        arrow = "↑" if F.known(vw) and px >= vw else "↓"
        rows = [(vp.vah, f"- VAH: {F.price(vp.vah)} {'✅' if vp.contains(px) else '❌'}"),
                (vp.poc, f"- POC: {F.price(vp.poc)}"), (vp.val, f"- VAL: {F.price(vp.val)}"),
                (vw if F.known(vw) else -1, f"- VWAP ({'Daily' if label == '1d' else 'Session'}): {F.price(vw)} "
                                            f"{arrow} ({trunc:+.2f}%)")]
        out += [t for _, t in sorted(rows, key=lambda r: -r[0])]
        if tp and (label == "30m" or want_tpo):
            out.append(f"TPO: POC: {F.price(tp.poc)} | VAL: {F.price(tp.val)} | VAH: {F.price(tp.vah)}")
    label, reading, strategy = verdict(in_vp, in_tpo)
    out += ["─" * 30, F.b("📍 ANALYSIS"), f"• {F.b(label)}: {reading} (in VA: VP {in_vp}/6, TPO {in_tpo}/6)",
            f"• Strategy: {strategy}", "", F.b("📊 KEY LEVELS")]
    if "1h" in found:
        out.append(f"- 1H POC: {F.price(found['1h'][0].poc)} (High volume node)")
    if "4h" in found:
        out.append(f"- 4H VA: {F.price(found['4h'][0].val)} - {F.price(found['4h'][0].vah)}")
    if "1d" in found:
        out.append(f"- Daily POC: {F.price(found['1d'][0].poc)} (Major reference)")
    out += ["", F.footer(ctx.now())]
    return "\n".join(out)
