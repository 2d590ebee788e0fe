"""/status: venue health and coverage, actors, latency and uptime."""
from __future__ import annotations

import math

from . import fmt as F
from .context import BotContext


def _venue_health(ctx: BotContext) -> dict[str, bool]:
    rows = {r["name"]: r for r in ctx.actors()}
    timeout = ctx.cfg.supervisor.heartbeat_timeout_ms / 1000
    from engine.supervisor import enabled_venues
    return {v: bool(rows.get(f"feed:{v}")) and rows[f"feed:{v}"]["state"] == 2
            and rows[f"feed:{v}"]["heartbeat_age_s"] < timeout for v in enabled_venues(ctx.cfg)}


def _coverage_line(c: dict | None) -> str:
    """A venue's coverage row of the state table in words ("" before compute wrote one)."""
    if c is None:
        return ""
    out = f" | connected {c['connected_share']:.0%}"
    if not c["liquidations_available"]:
        return out + ", no liquidation stream"
    out += f", {'≥ ' if c['capped'] else ''}{c['liquidations']:,.0f} liquidations"
    if c["capped"]:
        out += f" (capped stream: {c['saturation_share']:.0%} of slots saturated, ≤ {c['missed_high']:,.0f} missed)"
    return out


def cmd_status(ctx: BotContext, args: list[str]) -> str:
    now_ns = int(ctx.now() * 1e9)
    actors = ctx.actors()
    timeout = ctx.cfg.supervisor.heartbeat_timeout_ms / 1000
    out = [F.b("🩺 UNDERTOW STATUS"), "", F.b("Venues:")]
    health = _venue_health(ctx)
    instruments = ctx.market.instruments()
    cov = ctx.market.table.coverage()
    for v, ok in health.items():
        ins = [i for i in instruments if i.venue == v]
        lag = min(((now_ns - i.row["ts"]) / 1e9 for i in ins if i.row["ts"]), default=math.nan)
        last = f"last event {lag:.1f}s ago" if F.known(lag) else "no event yet"
        out.append(f"• {v}: {'✅' if ok else '❌'} {len(ins)} instruments | {last}{_coverage_line(cov.get(v))}")
    out += [f"Coverage: {sum(health.values())}/{len(health)} venues up", "", F.b("Actors:")]
    for a in actors:
        up = a["state"] == 2 and a["heartbeat_age_s"] < timeout
        uptime = (now_ns - a["started_ns"]) / 1e9 if a["started_ns"] else math.nan
        extra = ""
        cnt = a.get("counters", {})
        if cnt.get("records"):
            extra = f" | {cnt['records']:,.0f} records, {cnt.get('lost', 0):,.0f} lost"
        out.append(f"• {a['name']}: {'✅' if up else '❌'} up {F.span(uptime / 60) if F.known(uptime) else F.NA}, "
                   f"{a['restarts']} restarts{extra}")
    sigs = [s for s in ctx.history.signals if getattr(s, "ts_recv", 0) and getattr(s, "ts_published", 0)]
    if sigs:
        lat = sorted((s.ts_published - s.ts_recv) / 1e6 for s in sigs)
        out += ["", f"Latency frame→bus: p50 {lat[len(lat) // 2]:.1f} ms over the last {len(lat)} signals"]
    out += [f"Bot uptime: {F.span((now_ns - ctx.history.started_ns) / 6e10)}", "", F.footer(ctx.now())]
    return "\n".join(out)
