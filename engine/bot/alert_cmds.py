"""The proactive-alert commands: /alerts and /liquidations, and the per-chat mute, snooze and subscriptions."""
from __future__ import annotations

from . import fmt as F
from .context import ArgError, BotContext, _asset, _duration
from .prefs import SUBSCRIBE_KINDS, parse_duration
from .status_cmds import _venue_health


# -- alerts, liquidations -----------------------------------------------------------------------
def _thresholds_lines(ctx: BotContext) -> list[str]:
    liq = ctx.cfg.detectors.liquidations.single_usd
    cas = ctx.cfg.detectors.cascade
    lines = [f"• {a}: {F.usd(v, 0)}+ liquidations" for a, v in liq.items() if a != "*"]
    lines.append(f"• others: {F.usd(liq['*'], 0)}+ liquidations")
    lines.append(f"• cascade: ≥ {cas.min_count} liquidations in {cas.window_s:g} s, score levels "
                 f"{'/'.join(f'{x:g}' for x in cas.levels)}")
    return lines


def cmd_alerts(ctx: BotContext, args: list[str]) -> str:
    sub = args[0].lower() if args else ""
    chat = ctx.prefs.chat(ctx.chat_id)
    if sub == "start":
        already = chat["alerts"]
        ctx.prefs.update(ctx.chat_id, alerts=True)
        return "\n".join([F.b("🚨 Proactive Alert Monitoring Started") + (" (was already on)" if already else ""),
                          "✅ Liquidation cascade detection activated", "✅ Liquidation alerts activated",
                          "You'll receive real-time alerts in this chat."])
    if sub == "stop":
        ctx.prefs.update(ctx.chat_id, alerts=False)
        return F.b("🛑 Proactive Alert Monitoring Stopped") + "\nReal-time alerts have been disabled for this chat."
    if sub == "recent":
        return cmd_liquidations(ctx, [])
    if sub not in ("", "status"):
        raise ArgError("❌ Unknown command. Use: start, stop, status, or recent")
    det = ctx.cfg.detectors
    on = chat["alerts"]
    run = lambda enabled: "✅ Running" if enabled and on else "❌ Stopped"   # noqa: E731
    out = [F.b("🚨 Proactive Alert System Status"), "",
           f"📉 {F.b('Liquidation Monitor')}: {run(det.liquidations.enabled)}",
           f"🌊 {F.b('Cascade Monitor')}: {run(det.cascade.enabled)}",
           f"📊 {F.b('OI Explosion Monitor')}: {F.NA} (OI detector not in this engine yet)" , ""]
    if sub == "status":
        now = ctx.now()
        mutes = {a: u for a, u in chat["mutes"].items() if u > now}
        last = ctx.history.liquidations[-1].ts_ns / 1e9 if ctx.history.liquidations else None
        out += [F.b("📊 Detailed Monitoring Status"),
                f"• Liquidations tracked: {len(ctx.history.liquidations)}"
                + (f", last {now - last:.0f}s ago" if last else ""),
                f"• Snoozed until {F.hms(chat['snooze'])} UTC" if chat["snooze"] > now else "• Not snoozed",
                f"• Muted: {', '.join(mutes) or 'none'}",
                f"• Subscriptions: {', '.join(chat['subs']) or 'everything'}", ""]
        out += [f"• {v}: {'✅' if ok else '❌'} connected" for v, ok in _venue_health(ctx).items()] + [""]
    out += [F.b("Commands:"), "/alerts start", "/alerts stop", "/alerts status", "/alerts recent", "",
            F.b("Thresholds:")] + _thresholds_lines(ctx)
    return "\n".join(out)


def cmd_liquidations(ctx: BotContext, args: list[str]) -> str:
    asset, window_s, count = None, 3600.0, 5
    for a in args:
        d = parse_duration(a)
        if d is not None:
            window_s = d
        elif a.isdigit():
            count = max(1, min(int(a), 50))
        else:
            asset = _asset(ctx, a, "/liquidations BTC 1h")
    now_ns = int(ctx.now() * 1e9)
    events = ctx.history.recent_liquidations(asset, now_ns - int(window_s * 1e9))
    scope = asset or "all assets"
    if not events:
        return f"📊 No recent liquidations tracked ({scope}, last {F.span(window_s / 60)})"
    longs = [e for e in events if e.side == "long"]
    shorts = [e for e in events if e.side == "short"]
    capped = sorted({e.venue for e in events if e.capped})
    ge = "≥ " if capped else ""
    from engine.supervisor import enabled_venues
    liq_venues = [v for v in enabled_venues(ctx.cfg) if "liquidations" in getattr(ctx.cfg.venues, v).streams]
    seen = sorted({e.venue for e in events})
    out = [F.b(f"📊 Recent Large Liquidations: {scope}, last {F.span(window_s / 60)}"),
           f"📉 Longs: {len(longs)} | {ge}{F.usd(sum(e.usd for e in longs))}",
           f"📈 Shorts: {len(shorts)} | {ge}{F.usd(sum(e.usd for e in shorts))}",
           f"🏦 Coverage: {len(seen)} venues with liquidations ({', '.join(seen)}) of {len(liq_venues)} streaming"]
    if capped:
        out.append(f"⚠️ Lower bounds: {', '.join(capped)} sample their liquidation streams (at most 1/symbol/s)")
    out.append("")
    for e in sorted(events, key=lambda e: -e.usd)[:count]:
        icon = "📉" if e.side == "long" else "📈"
        out.append(f"{icon} {F.b(F.esc(e.symbol))} {e.side.upper()} - ${e.usd:,.0f} at {F.hms(e.ts_ns / 1e9)} UTC "
                   f"({e.venue})")
    return "\n".join(out)


# -- state-changing: mute, snooze, subscriptions ---------------------------------------------------

def cmd_mute(ctx: BotContext, args: list[str]) -> str:
    asset = _asset(ctx, args[0] if args else None, "/mute BTC 2h")
    d = _duration(args[1] if len(args) > 1 else None, "/mute BTC 2h")
    chat = ctx.prefs.chat(ctx.chat_id)
    until = ctx.now() + d
    ctx.prefs.update(ctx.chat_id, mutes={**chat["mutes"], asset: until})
    return f"🔇 {asset} alerts muted for {F.span(d / 60)} (until {F.hms(until)} UTC). /unmute {asset} to undo."


def cmd_unmute(ctx: BotContext, args: list[str]) -> str:
    asset = _asset(ctx, args[0] if args else None, "/unmute BTC")
    mutes = dict(ctx.prefs.chat(ctx.chat_id)["mutes"])
    was = mutes.pop(asset, 0) > ctx.now()
    ctx.prefs.update(ctx.chat_id, mutes=mutes)
    return f"🔔 {asset} alerts unmuted." if was else f"🔔 {asset} was not muted."


def cmd_snooze(ctx: BotContext, args: list[str]) -> str:
    if args and args[0].lower() == "off":
        ctx.prefs.update(ctx.chat_id, snooze=0.0)
        return "⏰ Snooze off: alerts resume."
    d = _duration(args[0] if args else None, "/snooze 1h")
    until = ctx.now() + d
    ctx.prefs.update(ctx.chat_id, snooze=until)
    return f"😴 All alerts snoozed for {F.span(d / 60)} (until {F.hms(until)} UTC). /snooze off to resume."


def _sub_target(ctx: BotContext, text: str | None, usage: str) -> str:
    if not text:
        raise ArgError(f"❌ Say what to subscribe to: a kind ({', '.join(SUBSCRIBE_KINDS)}) or a symbol. "
                       f"Usage: <code>{usage}</code>")
    if text.lower() in SUBSCRIBE_KINDS:
        return text.lower()
    return _asset(ctx, text, usage)


def cmd_subscribe(ctx: BotContext, args: list[str]) -> str:
    t = _sub_target(ctx, args[0] if args else None, "/subscribe cascade")
    subs = list(ctx.prefs.chat(ctx.chat_id)["subs"])
    if t not in subs:
        subs.append(t)
    ctx.prefs.update(ctx.chat_id, subs=subs)
    return f"✅ Subscribed to {t}. This chat now receives: {', '.join(subs)}."


def cmd_unsubscribe(ctx: BotContext, args: list[str]) -> str:
    if not args or args[0].lower() == "all":
        ctx.prefs.update(ctx.chat_id, subs=[])
        return "✅ Subscriptions cleared: this chat receives every alert kind again."
    t = _sub_target(ctx, args[0], "/unsubscribe cascade")
    subs = [s for s in ctx.prefs.chat(ctx.chat_id)["subs"] if s != t]
    ctx.prefs.update(ctx.chat_id, subs=subs)
    return f"✅ Unsubscribed from {t}. Receiving: {', '.join(subs) or 'everything'}."
