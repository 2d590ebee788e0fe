"""The bot's commands as pure handlers: engine state and history in, reply text (HTML) out.

Every command is registered once in :data:`COMMANDS` (name, menu text, help
section, example, whether it changes state); the command menu and the help
card are generated from it. :func:`dispatch` parses a message, checks the
arguments and returns a :class:`Reply`, never raising for bad input. The
handlers live in one module per help section (price_cmds, volume_cmds,
analysis_cmds, alert_cmds, risk_cmds, accuracy, status_cmds); what they share
is in context.py.
"""
from __future__ import annotations

from . import fmt as F
from .accuracy import cmd_accuracy
from .alert_cmds import cmd_alerts, cmd_liquidations, cmd_mute, cmd_snooze, cmd_subscribe, cmd_unmute, cmd_unsubscribe
from .analysis_cmds import cmd_analysis, cmd_chart, cmd_zones
from .context import ArgError, BotContext, Command, Reply
from .price_cmds import cmd_funding, cmd_price, cmd_top10
from .risk_cmds import cmd_risk, cmd_thresholds, cmd_why
from .status_cmds import cmd_status
from .volume_cmds import cmd_cvd, cmd_oi, cmd_profile, cmd_volscan, cmd_volume

__all__ = ["Reply", "BotContext", "Command", "COMMANDS", "dispatch", "help_card", "menu", "UNAUTHORIZED",
           "GENERIC_ERROR"]

UNAUTHORIZED = "❌ Unauthorized access"
GENERIC_ERROR = "❌ An error occurred. Please try again later."


# -- /start, /help --------------------------------------------------------------
SECTIONS = ("🎯 Comprehensive Analysis", "💰 Price Commands", "📊 Volume Intelligence", "🚨 Proactive Alerts",
            "🛡️ Risk", "📋 Other")


def help_card(ctx: BotContext | None = None, args: list[str] | None = None) -> str:
    lines = [F.b("🚀 Undertow: Crypto Trading Assistant"), ""]
    for sec in SECTIONS:
        cmds = [c for c in COMMANDS if c.section == sec]
        if not cmds:
            continue
        lines.append(F.b(sec))
        lines += [f"/{c.name}{(' ' + F.esc(c.usage)) if c.usage else ''} - {F.esc(c.description)}"
                  + (" (admin)" if c.admin else "") for c in cmds]
        lines.append("")
    lines += [F.b("Examples"), "<code>/price BTC</code>  <code>/volume ETH 1h</code>  <code>/cvd SOL</code>  "
              "<code>/profile BTC</code>  <code>/mute ETH 2h</code>",
              "Account commands (/balance, /positions, /pnl) are out of scope: Undertow holds no exchange keys."]
    return "\n".join(lines)

COMMANDS: list[Command] = [
    Command("start", "🚀 Start the bot and see help", "📋 Other", help_card),
    Command("help", "📋 Show available commands", "📋 Other", help_card),
    Command("analysis", "🎯 Complete market analysis (/analysis BTC 15m)", "🎯 Comprehensive Analysis",
            cmd_analysis, "SYMBOL [tf=15m]"),
    Command("price", "💰 Spot + perp prices (e.g. /price BTC-USDT)", "💰 Price Commands", cmd_price, "SYMBOL"),
    Command("zones", "🗺 Liquidation-zone heatmap (/zones BTC 24h)", "🎯 Comprehensive Analysis", cmd_zones,
            "[SYMBOL] [window]"),
    Command("chart", "📈 CVD and liquidations chart (/chart BTC 24h)", "🎯 Comprehensive Analysis", cmd_chart,
            "[SYMBOL] [window]"),
    Command("top10", "🏆 Top 10 markets by 24 h volume (/top10 spot or /top10 perps)", "💰 Price Commands",
            cmd_top10, "spot|perps"),
    Command("funding", "💸 Funding per venue (/funding BTC)", "💰 Price Commands", cmd_funding, "SYMBOL"),
    Command("volume", "📊 Volume spike analysis (/volume BTC-USDT 15m)", "📊 Volume Intelligence", cmd_volume,
            "SYMBOL [tf=15m] [spot|perp]"),
    Command("cvd", "📈 Cumulative Volume Delta (/cvd BTC-USDT 1h)", "📊 Volume Intelligence", cmd_cvd,
            "SYMBOL [tf=1h] [spot|perp]"),
    Command("volscan", "🔍 Scan volume spikes (/volscan 200 15m)", "📊 Volume Intelligence", cmd_volscan,
            "[threshold=200] [tf=15m]"),
    Command("oi", "📊 Open Interest analysis (/oi BTC)", "📊 Volume Intelligence", cmd_oi, "[SYMBOL=BTC]"),
    Command("profile", "📊 Market Profile (VP & TPO) analysis", "📊 Volume Intelligence", cmd_profile,
            "[SYMBOL=BTC] [tpo]"),
    Command("alerts", "🚨 Proactive alert system control", "🚨 Proactive Alerts", cmd_alerts,
            "[start|stop|status|recent]"),
    Command("liquidations", "📉 Show recent large liquidations", "🚨 Proactive Alerts", cmd_liquidations,
            "[SYMBOL] [window=1h] [count=5]"),
    Command("mute", "🔇 Mute a symbol's alerts (/mute BTC 2h)", "🚨 Proactive Alerts", cmd_mute,
            "SYMBOL DURATION", admin=True),
    Command("unmute", "🔔 Unmute a symbol", "🚨 Proactive Alerts", cmd_unmute, "SYMBOL", admin=True),
    Command("snooze", "😴 Pause all alerts (/snooze 1h, /snooze off)", "🚨 Proactive Alerts", cmd_snooze,
            "DURATION|off", admin=True),
    Command("subscribe", "✅ Only receive a kind or symbol", "🚨 Proactive Alerts", cmd_subscribe, "KIND|SYMBOL",
            admin=True),
    Command("unsubscribe", "❎ Drop a subscription (all: receive everything)", "🚨 Proactive Alerts",
            cmd_unsubscribe, "[KIND|SYMBOL|all]", admin=True),
    Command("thresholds", "📐 Asset profile and alert thresholds", "🛡️ Risk", cmd_thresholds, "SYMBOL"),
    Command("risk", "🛡️ Cascade / risk score now", "🛡️ Risk", cmd_risk, "SYMBOL"),
    Command("why", "❓ What drives the score", "🛡️ Risk", cmd_why, "SYMBOL"),
    Command("accuracy", "📏 Measured accuracy of the warnings and zones (latest backtest)", "🛡️ Risk", cmd_accuracy),
    Command("status", "🩺 Venues, coverage, latency, uptime", "📋 Other", cmd_status),
]
BY_NAME = {c.name: c for c in COMMANDS}
# /alerts start|stop change state; the rest of /alerts is read-only
STATE_CHANGING_ALERTS = ("start", "stop")


def menu() -> list[tuple[str, str]]:
    """(command, description) pairs for setMyCommands."""
    return [(c.name, c.description) for c in COMMANDS]


def parse(text: str, bot_username: str = "") -> tuple[str, list[str]] | None:
    """('price', ['BTC']) from '/price BTC' or '/price@undertow_bot BTC'; None if not a command."""
    if not text or not text.startswith("/"):
        return None
    head, *args = text.split()
    name, _, target = head[1:].partition("@")
    if target and bot_username and target.lower() != bot_username.lower():
        return None
    return name.lower(), args


def changes_state(name: str, args: list[str]) -> bool:
    cmd = BY_NAME.get(name)
    if cmd is None:
        return False
    return cmd.admin or (name == "alerts" and bool(args) and args[0].lower() in STATE_CHANGING_ALERTS)


def dispatch(ctx: BotContext, name: str, args: list[str]) -> Reply:
    """Run command ``name``; argument errors become their helpful reply, unknown commands a pointer to /help."""
    cmd = BY_NAME.get(name)
    if cmd is None:
        return Reply(f"❓ Unknown command /{F.esc(name)}. Send /help for the list.")
    try:
        out = cmd.handler(ctx, args)
        return out if isinstance(out, Reply) else Reply(out)
    except ArgError as exc:
        return Reply(str(exc))
