"""``/accuracy``: the figures of the latest ``undertow backtest``, read from its summary in the state directory."""
from __future__ import annotations

import json
from datetime import datetime, timezone

from . import fmt as F

__all__ = ["cmd_accuracy", "accuracy_text", "load_summary"]


def load_summary(cfg) -> dict:
    """The latest backtest summary; FileNotFoundError when none was saved, ValueError when it is unreadable."""
    from ..backtest.run import summary_path
    path = summary_path(cfg)
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not valid JSON ({exc.msg})") from exc
    if not isinstance(data, dict) or not isinstance(data.get("headline"), dict) \
            or not isinstance(data.get("datasets"), dict):
        raise ValueError(f"{path} has no headline/datasets: not a backtest summary")
    return data


def _pct(x) -> str:
    return f"{100 * x:.0f} %" if F.known(x) else F.NA


def _s(x) -> str:
    return f"{round(x)} s" if F.known(x) else F.NA   # round(): no "-0 s"


def accuracy_text(summary: dict, now_s: float) -> str:
    """The reply for a backtest summary: the pooled figures against the goals, then one line per dataset."""
    h, g = summary["headline"], summary["headline"].get("goals", {})
    age_h = (now_s - summary.get("generated_ns", 0) / 1e9) / 3600
    lines = [F.b("📏 Undertow accuracy (latest backtest)"),
             f"Run {datetime.fromtimestamp(summary.get('generated_ns', 0) / 1e9, timezone.utc):%Y-%m-%d %H:%M} UTC, "
             f"{age_h:.1f} h ago; measured, not promised.", "",
             f"🎯 Cascades caught at WARNING: {F.b(_pct(h.get('recall_warning')))} of {h.get('cascades', 0)} "
             f"(goal ≥ {_pct(g.get('recall_warning'))}), precision {_pct(h.get('precision_warning'))}",
             f"⏱ Median lead before the peak minute: {F.b(_s(h.get('lead_median_s')))} "
             f"(goal ≥ {_s(g.get('lead_median_s'))}, {h.get('leads', 0)} warned)",
             f"🔕 False CRITICAL on calm data: {F.b(F.num(h.get('false_critical_per_asset_day_calm')))} "
             f"per asset per day (goal ≤ {F.num(g.get('false_critical_per_asset_day_calm'), 0)})",
             f"🗺 Zones, top 10 % of bins hit: {F.b(_pct(h.get('zone_precision')))} vs random "
             f"{_pct(h.get('zone_random_baseline'))}, lift {F.num(h.get('zone_lift'))}x "
             f"(goal ≥ {F.num(g.get('zone_lift'), 0)}x); among the bins price reached: lift "
             f"{F.num(h.get('zone_reached_lift'))}x; nearest bins first (no model): lift "
             f"{F.num(h.get('zones_by_distance_lift'))}x; share of liquidated USD in the top bins vs random: "
             f"{F.num(h.get('zones_usd_capture_lift'))}x", "", F.b("Per dataset")]
    for name, f in summary["datasets"].items():
        w = f.get("levels", {}).get("WARNING", {})
        capped = [v for v, c in f.get("coverage", {}).items() if c.get("capped")]
        lines.append(f"• {F.esc(name)} ({F.esc(f.get('kind', '?'))}): {w.get('detected', 0)}/{w.get('labelled', 0)} "
                     f"caught, lead {_s(f.get('lead_s', {}).get('median'))}, zones "
                     f"{_pct(f.get('zones', {}).get('precision'))} vs {_pct(f.get('zones', {}).get('random_baseline'))}"
                     + (f"; capped streams (totals are lower bounds): {F.esc(', '.join(capped))}" if capped else ""))
    return "\n".join(lines)


def cmd_accuracy(ctx, args: list[str]):
    """/accuracy: the latest backtest's figures, or why there are none."""
    try:
        summary = load_summary(ctx.cfg)
    except FileNotFoundError:
        return "n/a: no backtest has been run on this host yet (run <code>undertow backtest</code>)."
    except (OSError, ValueError) as exc:
        return f"❌ The backtest summary cannot be read: {F.esc(str(exc))}"
    return accuracy_text(summary, ctx.now())
