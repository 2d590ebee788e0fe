"""The price commands: /price, /top10 and /funding."""
from __future__ import annotations

import math
from datetime import datetime, timezone

import numpy as np

from . import analytics as A
from . import fmt as F
from .candles import BUY, C, SELL, USD, V, split_coverage
from .context import DAY_MS, ArgError, BotContext, _asset, _change, _now_ms, _primary, _window


def _delta_line(label: str, c: np.ndarray, px: float) -> str:
    if not len(c) or c[:, V].sum() <= 0:
        return f"📈 {label}: {F.NA}"
    known, minutes = split_coverage(c)
    if not known:
        return f"📈 {label}: {F.NA} (no taker split in its {minutes} min: venue klines)"
    buy, sell = c[:, BUY].sum(), c[:, SELL].sum()
    d = buy - sell
    share = buy / (buy + sell) * 100 if buy + sell > 0 else math.nan
    dot = "🟢" if d > 0 else "🔴" if d < 0 else "⚪"
    return (f"📈 {label}: {F.b(f'{dot} {F.signed(d, 2)} ({F.usd(d * px)})')} | "
            f"L/S: {share:.0f}%/{100 - share:.0f}% (taker){A.split_note(c)}")


# -- /price -----------------------------------------------------------------------
def _market_block(ctx: BotContext, asset: str, cls: str, now_ms: int) -> tuple[list[str], dict]:
    c1 = ctx.history.candles.one_minute((asset, cls), now_ms - DAY_MS - 10 * 60_000)
    instruments = [i for i in ctx.market.instruments(asset) if (i.market == "spot") == (cls == "spot")]
    prim = _primary(instruments)
    px = prim.row["price"] if prim and prim.row["price"] > 0 else (c1[-1, C] if len(c1) else math.nan)
    if not len(c1) and prim is None:
        return [f"{F.NA}: no {cls} market of {asset} is watched"], {}
    ch24, d24 = _change(c1, 1440, now_ms)
    ch15, d15 = _change(c1, 15, now_ms)
    c24 = _window(c1, now_ms - DAY_MS)
    cur15 = _window(c1, (now_ms // 900_000) * 900_000)
    last15 = _window(c1, now_ms - 15 * 60_000)
    from .candles import aggregate
    atr24 = A.atr(aggregate(c24, 240), 6)
    atr15 = A.atr(aggregate(c24, 15), 7)
    v24, u24 = c24[:, V].sum(), c24[:, USD].sum()
    v15, u15 = cur15[:, V].sum(), cur15[:, USD].sum()
    dot = "🟢" if F.known(ch15) and ch15 >= 0 else "🔴"
    lines = [
        f"💰 Price: {F.b(F.price(px))} | {F.pct(ch24)} | {F.usd(d24)} | ATR: {F.num(atr24)}",
        f"{dot} Price Change 15m: {F.b(F.pct(ch15))} | {F.usd(d15)} | ATR: {F.num(atr15)}",
        f"📊 Volume 24h: {F.b(f'{F.num(v24, 0)} {asset} ({F.usd(u24)})')}",
        f"📊 Volume 15m: {F.b(f'{F.num(v15)} {asset} ({F.usd(u15)})')}",
        _delta_line("Delta 24h", c24, px),
        _delta_line("Delta 15m", last15, px),
    ]
    flows = {"b24": c24[:, BUY].sum(), "s24": c24[:, SELL].sum(), "b15": last15[:, BUY].sum(),
             "s15": last15[:, SELL].sum(), "v24": v24, "v15": v15, "n24": A.split_note(c24),
             "n15": A.split_note(last15)}
    if cls == "perp" and instruments:
        lines += _oi_funding_lines(ctx, asset, instruments, prim, px)
    return lines, flows


def _oi_funding_lines(ctx, asset, instruments, prim, px) -> list[str]:
    oi = sum(i.row["oi"] for i in instruments)
    oi_usd = sum(i.row["oi_usd"] for i in instruments)
    now_ns = int(ctx.now() * 1e9)
    lines = [f"📈 OI: {F.b(f'{F.num(oi, 0)} {asset} ({F.usd(oi_usd)})')} "
             f"({sum(i.row['oi'] > 0 for i in instruments)} venues)" if oi > 0 else f"📈 OI: {F.NA}"]
    for label, secs in (("24h", 86400), ("15m", 900)):
        past = [ctx.history.oi_ago(i.venue, i.symbol, secs, now_ns) for i in instruments if i.row["oi"] > 0]
        if oi > 0 and past and all(p is not None for p in past):
            d = oi - sum(p[0] for p in past)
            value = f"{F.signed(d)} {asset} ({F.usd(d * px, 1)}) | {F.pct(d / oi * 100)}"
            lines.append(f"📊 OI Change {label}: {F.b(value)}")
        else:
            lines.append(f"📊 OI Change {label}: {F.NA} (history shorter than {label})")
    lines += _funding_lines(ctx, prim)
    return lines


def _next_reset_s(ctx: BotContext, ins) -> float:
    nxt = ctx.history.next_funding_ms.get((ins.venue, ins.symbol))
    now = ctx.now()
    if nxt:
        return nxt / 1000.0 - now
    hour = datetime.fromtimestamp(now, timezone.utc)
    secs = hour.hour * 3600 + hour.minute * 60 + hour.second
    return (8 * 3600 - secs % (8 * 3600)) % (8 * 3600)


def _funding_lines(ctx: BotContext, ins) -> list[str]:
    if ins is None or not ins.row["mark"]:
        return [f"💸 Funding: {F.NA}"]
    f = A.funding_figure(ctx.cfg.detectors.funding, ins.venue, ins.row["funding"])
    label, remark = A.funding_pressure(f.common_pct)
    return [f"💸 Funding: {f.pct:+.4f}% ({f.annual_pct:+.2f}% annually, {f.interval_h:g} h periods) [{ins.venue}]",
            f"⏰ Resets in: {F.countdown(_next_reset_s(ctx, ins))} | {label}",
            f"🎯 Strategy: {remark}"]


def cmd_price(ctx: BotContext, args: list[str]) -> str:
    asset = _asset(ctx, args[0] if args else None, "/price BTC-USDT")
    now_ms = _now_ms(ctx)
    out = [F.b(f"📊 {asset}") + " (every watched venue)", ""]
    flows = {}
    for cls, title in (("spot", "🏪 SPOT"), ("perp", "⚡ PERPETUALS")):
        lines, fl = _market_block(ctx, asset, cls, now_ms)
        out += [F.b(title)] + lines + [""]
        flows = fl or flows
    out.append(F.b("🧠 MARKET INTELLIGENCE"))
    if flows:
        mom = A.momentum_label(flows["b15"] - flows["s15"], flows["b15"] + flows["s15"],
                               flows["b24"] - flows["s24"], flows["b24"] + flows["s24"])
        out.append(f"💪 24H Control: {A.control_label(flows['b24'], flows['s24'])}{flows['n24']} | Momentum: {mom}")
        out.append(f"⚡ 15M Control: {A.control_label(flows['b15'], flows['s15'])}{flows['n15']} | "
                   f"Activity: {A.activity_label(flows['v15'], flows['v24'])}")
    else:
        out.append(F.NA)
    out += ["", F.footer(ctx.now())]
    return "\n".join(out)


# -- /top10 -----------------------------------------------------------------------
def cmd_top10(ctx: BotContext, args: list[str]) -> str:
    if not args:
        raise ArgError("❌ Please specify market type. Use: <code>/top10 spot</code> or <code>/top10 perps</code>")
    kind = args[0].lower()
    if kind not in ("spot", "perps", "perp"):
        raise ArgError("❌ Invalid market type. Use: <code>/top10 spot</code> or <code>/top10 perps</code>")
    cls = "spot" if kind == "spot" else "perp"
    if cls == "spot" and ctx.spot_tickers is not None and ctx.spot_tickers.tickers:
        return _top10_spot_tickers(ctx)
    now_ms = _now_ms(ctx)
    rows = []
    for asset, c in ctx.history.candles.keys():
        if c != cls:
            continue
        c1 = ctx.history.candles.one_minute((asset, cls), now_ms - DAY_MS - 10 * 60_000)
        c24 = _window(c1, now_ms - DAY_MS)
        if len(c24):
            rows.append((c24[:, USD].sum(), asset, c1, c24))
    rows.sort(reverse=True)
    title = "SPOT" if cls == "spot" else "PERPS"
    if not rows:
        return f"🏆 {F.b(f'TOP 10 {title} MARKETS')}\n\n{F.NA}: no {cls} trades seen yet"
    out = [F.b(f"🏆 TOP 10 {title} MARKETS") + " (by 24 h USD volume on the watched venues)", ""]
    for k, (u24, asset, c1, c24) in enumerate(rows[:10], 1):
        ch, _ = _change(c1, 1440, now_ms)
        dot = "🟢" if F.known(ch) and ch >= 0 else "🔴" if F.known(ch) else "⚪"
        out += [f"{F.b(f'{k}.')} {asset} {dot} {F.pct(ch)}", f"💰 Price: {F.price(c1[-1, C])}",
                f"📊 Vol: {F.num(c24[:, V].sum(), 0)} {asset} ({F.usd(u24)})"]
        if cls == "perp":
            ins = ctx.market.instruments(asset)
            oi, oi_usd = sum(i.row["oi"] for i in ins), sum(i.row["oi_usd"] for i in ins)
            out.append(f"📈 OI: {F.num(oi, 0)} {asset} ({F.usd(oi_usd)})" if oi > 0 else f"📈 OI: {F.NA}")
            fund = A.asset_funding_pct(ctx.cfg.detectors.funding, ins)   # mean of the venues, per common interval
            out.append(f"💸 Funding: {fund:+.4f}%" if F.known(fund) else f"💸 Funding: {F.NA}")
        out.append("")
    out.append(f"🕐 Updated: {F.hms(ctx.now())} UTC")
    return "\n".join(out)


def _top10_spot_tickers(ctx: BotContext) -> str:
    """/top10 spot from the Binance all-market mini-ticker: every plain */USDT pair, watched or not."""
    top = ctx.spot_tickers.top(10)
    out = [F.b("🏆 TOP 10 SPOT MARKETS") + " (by 24 h USD volume, Binance spot */USDT, all-market mini-ticker)", ""]
    for k, (_, base, t) in enumerate(top, 1):
        dot = "🟢" if t.change_pct >= 0 else "🔴"
        out += [f"{F.b(f'{k}.')} {base} {dot} {F.pct(t.change_pct)}", f"💰 Price: {F.price(t.last)}",
                f"📊 Vol: {F.num(t.base_volume, 0)} {base} ({F.usd(t.quote_volume)})", ""]
    age = ctx.spot_tickers.age_s(ctx.now())
    out.append(f"🕐 Updated: {F.hms(ctx.now())} UTC (tickers {age:.0f} s old)")
    return "\n".join(out)


# -- /funding ---------------------------------------------------------------------------------------
def cmd_funding(ctx: BotContext, args: list[str]) -> str:
    asset = _asset(ctx, args[0] if args else None, "/funding BTC")
    ins = [i for i in ctx.market.instruments(asset) if i.market != "spot" and i.row["mark"]]
    if not ins:
        return f"💸 {F.b(f'FUNDING - {asset}')}\n\n{F.NA}: no venue has reported a funding rate yet"
    out = [F.b(f"💸 FUNDING - {asset}"), "Predicted rate for the coming settlement; last settled where known", ""]
    fcfg = ctx.cfg.detectors.funding
    w = sum(i.row["oi_usd"] for i in ins)
    for i in sorted(ins, key=lambda i: -i.row["oi_usd"]):
        f = A.funding_figure(fcfg, i.venue, i.row["funding"])
        label, _ = A.funding_pressure(f.common_pct)
        settled = i.row.get("funding_settled", 0.0) * 100   # the last settlement's rate: NaN or 0 until known
        current = f" | last settled {settled:+.4f}%" if math.isfinite(settled) and settled else ""
        out.append(f"• {i.venue.title()} {F.esc(i.symbol)}: {A.venue_funding_text(fcfg, i)} "
                   f"({f.annual_pct:+.2f}%/yr){current} | resets in {F.countdown(_next_reset_s(ctx, i))} | {label}")
    if w > 0:   # each venue's rate restated per the common interval first: 1 h and 8 h quotes do not add up
        avg = sum(A.funding_figure(fcfg, i.venue, i.row["funding"]).common_pct * i.row["oi_usd"] for i in ins) / w
        out += ["", f"OI-weighted: {avg:+.4f}% ({avg * 24 * 365 / fcfg.common_interval_h:+.2f}%/yr) "
                    f"{A.funding_pressure(avg)[0]}"]
    out += ["", F.footer(ctx.now())]
    return "\n".join(out)
