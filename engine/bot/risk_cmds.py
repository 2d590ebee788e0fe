"""The risk commands: /thresholds, /risk and /why (/accuracy lives in accuracy.py)."""
from __future__ import annotations

from . import fmt as F
from .context import ArgError, BotContext, _asset


# -- /thresholds, /risk, /why ----------------------------------------------------------------------
def _profile_of(asset: str):
    """The asset profile of engine.profiles when that module exists (built by another change), else None."""
    try:
        from engine import profiles  # noqa: F401
    except ImportError:
        return None
    getter = getattr(profiles, "profile_for", None) or getattr(profiles, "load_profile", None)
    try:
        return getter(asset) if getter else None
    except Exception:   # a profile that cannot be computed is reported as n/a
        return None


def cmd_thresholds(ctx: BotContext, args: list[str]) -> str:
    asset = _asset(ctx, args[0] if args else None, "/thresholds BTC")
    liq = ctx.cfg.detectors.liquidations
    single = liq.single_usd.get(asset, liq.single_usd["*"])
    cas = ctx.cfg.detectors.cascade
    prof = _profile_of(asset)
    out = [F.b(f"📐 THRESHOLDS - {asset}"), "",
           F.b("Asset profile:") + (f" {F.esc(prof)}" if prof is not None else
                                    f" {F.NA} (dynamic profiles not available in this engine; configured values)"),
           "", F.b("Liquidations:"),
           f"• single alert: {F.usd(single, 0)}" + ("" if asset in liq.single_usd else " (the * fallback)"),
           f"• large ≥ {F.usd(single * liq.large_multiple, 0)} | whale ≥ {F.usd(single * liq.whale_multiple, 0)} | "
           f"institutional ≥ {F.usd(single * liq.institutional_multiple, 0)}",
           "", F.b("Cascade:"),
           f"• window {cas.window_s:g} s, at least {cas.min_count} liquidations",
           f"• WATCH ≥ {cas.levels[0]:g}, WARNING ≥ {cas.levels[1]:g}, CRITICAL ≥ {cas.levels[2]:g} "
           f"(score 0-10, hysteresis {cas.hysteresis:g})",
           "", F.b("Volatility regimes (annualised):"),
           "• " + " | ".join(f"{n} < {b:.0%}" for n, b in zip(("dormant", "low", "normal", "high"),
                                                             ctx.cfg.detectors.volatility.regime_bounds))]
    return "\n".join(out)


def _risk_row(ctx: BotContext, asset: str) -> dict:
    row = ctx.market.asset_row(asset)
    if row is None or not row["updated_ns"]:
        raise ArgError(f"❌ No computed state for {asset} yet (the compute actor has not written its row).")
    return row


def cmd_risk(ctx: BotContext, args: list[str]) -> str:
    asset = _asset(ctx, args[0] if args else None, "/risk BTC")
    r = _risk_row(ctx, asset)
    comp = r.get("risk")
    liq = r["liq_cascade_window"]
    out = [F.b(f"🛡️ RISK - {asset}"), "",
           f"• Cascade score: {F.b(format(r['score'], '.2f') + '/10')} ({r['level']})",
           f"• Composite risk: {F.num(comp) + '/10' if F.known(comp) else F.NA + ' (composite risk score not in the state table yet)'}",
           f"• Volatility regime: {r['regime'] or F.NA}",
           f"• Liquidations in window: {liq['long_n'] + liq['short_n']:.0f} (longs {F.usd(liq['long_usd'])}, "
           f"shorts {F.usd(liq['short_usd'])})",
           f"• Last hour: longs {F.usd(r['liq_1h']['long_usd'])}, shorts {F.usd(r['liq_1h']['short_usd'])}",
           "", "Use /why " + asset + " for each factor.", "", F.footer(ctx.now())]
    return "\n".join(out)


def cmd_why(ctx: BotContext, args: list[str]) -> str:
    asset = _asset(ctx, args[0] if args else None, "/why BTC")
    r = _risk_row(ctx, asset)
    cas = ctx.cfg.detectors.cascade
    liq = r["liq_cascade_window"]
    n = liq["long_n"] + liq["short_n"]
    f = r["factors"]
    out = [F.b(f"❓ WHY - {asset}: score {r['score']:.2f}/10 ({r['level']})"), "",
           f"Liquidations in the window: {n:.0f} in {cas.window_s:g} s (a cascade needs {cas.min_count})", "",
           F.b("Contributions:")]
    inputs = {"velocity": "USD/s " + ", ".join(f"{k} {F.usd(v)}" for k, v in r["velocity_usd_s"].items()),
              "acceleration": f"{F.usd(r['acceleration_usd_s2'])}/s²",
              "regime": f"volatility regime {r['regime'] or F.NA}"}
    for name, value in sorted(f.items(), key=lambda kv: -kv[1]):
        out.append(f"• {name}: {value:+.2f} ({inputs.get(name, '')})")
    out += ["", f"Levels: WATCH ≥ {cas.levels[0]:g}, WARNING ≥ {cas.levels[1]:g}, CRITICAL ≥ {cas.levels[2]:g}",
            "Other factors (OI, funding, book depth, composite risk): " + F.NA + " until their detectors publish "
            "into the state table.", "", F.footer(ctx.now())]
    return "\n".join(out)
