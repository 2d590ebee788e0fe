"""The backtest report: ``report.md`` with PNG plots and ``summary.json`` in the output directory."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..signals import LEVELS
from . import metrics as M
from .labels import minute_usd

__all__ = ["write_report", "markdown"]


def _f(x, fmt: str = "{:.2f}", none: str = "n/a") -> str:
    return none if x is None else fmt.format(x)


def _pct(x) -> str:
    return _f(None if x is None else 100 * x, "{:.1f} %")


def markdown(summary: dict, plots: dict[str, list[str]]) -> str:
    """The report text (plots: dataset name -> image file names, '' for the overall ones)."""
    h = summary["headline"]
    g = h["goals"]
    lines = ["# Undertow backtest", "",
             "Cascade labels: minutes whose liquidation USD is at least "
             f"{summary['params']['labels']['multiple']}x the asset's normal liquidation minute (median of the "
             "trailing day's non-empty minutes) and "
             f"{summary['params']['labels']['z']} robust deviations above it; alarms are cascade-level onsets "
             f"up to {summary['params']['max_lead_s']:.0f} s before a cascade's start. The first "
             f"{summary['params']['warmup_s']:.0f} s of each asset (the engine learning its profile) are not scored.",
             "",
             "## Headline (pooled over the datasets)", "",
             "| figure | measured | goal |", "|---|---|---|",
             f"| recall at WARNING (non-calm datasets, {h['cascades']} cascades) | {_pct(h['recall_warning'])} "
             f"(Wilson 95 % low {_pct(h['recall_warning_wilson_low'])}) | >= {_pct(g['recall_warning'])} |",
             f"| precision at WARNING | {_pct(h['precision_warning'])} | |",
             f"| median lead of the first WARNING/CRITICAL before the peak minute ({h['leads']} detected) | "
             f"{_f(h['lead_median_s'], '{:.0f} s')} | >= {g['lead_median_s']:.0f} s |",
             f"| false CRITICAL per asset per day on calm data ({h['calm_asset_days']:.3f} asset-days) | "
             f"{_f(h['false_critical_per_asset_day_calm'])} | <= {g['false_critical_per_asset_day_calm']:.0f} |",
             f"| zone precision, top 10 % of bins (Wilson 95 % low) vs random | {_pct(h['zone_precision'])} "
             f"({_pct(h['zone_precision_wilson_low'])}) vs {_pct(h['zone_random_baseline'])}: "
             f"{_f(h['zone_lift'], '{:.2f}x')} | >= {g['zone_lift']:.0f}x |",
             f"| zone precision, candidates limited to the bins price reached within the horizon | "
             f"{_pct(h['zone_reached_precision'])} vs {_pct(h['zone_reached_random_baseline'])}: "
             f"{_f(h['zone_reached_lift'], '{:.2f}x')} | |",
             f"| zone lift of other rankings: modelled USD alone / nearest bins first (no model) | "
             f"{_f(h.get('zones_by_usd_lift'), '{:.2f}x')} / {_f(h.get('zones_by_distance_lift'), '{:.2f}x')} | |",
             f"| realized liquidation USD in the top 10 % bins vs a random pick's: model / USD alone / distance alone | "
             f"{_f(h.get('zones_usd_capture_lift'), '{:.2f}x')} / {_f(h.get('zones_by_usd_usd_capture_lift'), '{:.2f}x')}"
             f" / {_f(h.get('zones_by_distance_usd_capture_lift'), '{:.2f}x')} | |", ""]
    lines += [f"![{p}]({p})" for p in plots.get("", [])]
    for name, f in summary["datasets"].items():
        lines += ["", f"## {name} ({f['kind']}{', calm' if f['calm'] else ''})", "",
                  f"{', '.join(f['assets'])}; {f['span_s'] / 3600:.2f} h; {f['records']:,} records "
                  f"({f['records_lost']} lost); {f['truth_liquidations']:,} true liquidations "
                  f"(${f['truth_usd']:,.0f}); {f['cascades']} labelled cascades; wall {f['wall_s']} s.", "",
                  "| level | detected / labelled | recall | alarms | precision | false alarms | false / asset / day |",
                  "|---|---|---|---|---|---|---|"]
        for lv in LEVELS[1:]:
            x = f["levels"][lv]
            lines.append(f"| {lv} | {x['detected']} / {x['labelled']} | {_pct(x['recall'])} | {x['alarms']} | "
                         f"{_pct(x['precision'])} | {x['false_alarms']} | {_f(x['false_per_asset_day'])} |")
        ld, z, zr = f["lead_s"], f["zones"], f["zones_reached"]
        lines += ["", f"Lead (s): median {_f(ld['median'], '{:.0f}')}, quartiles {_f(ld['p25'], '{:.0f}')} .. "
                      f"{_f(ld['p75'], '{:.0f}')}, range {_f(ld['min'], '{:.0f}')} .. {_f(ld['max'], '{:.0f}')} "
                      f"(n = {ld['n']}).", "",
                  f"Zones: {z['snapshots']} snapshots ({z['empty_snapshots']} with an empty model near price); "
                  f"top bins hit {z['top_hits']:.1f} / {z['top_bins']} = {_pct(z['precision'])} (Wilson low "
                  f"{_pct(z['precision_wilson_low'])}) vs random {_pct(z['random_baseline'])}, lift "
                  f"{_f(z['lift'], '{:.2f}x')}; among the bins price reached: {_pct(zr['precision'])} vs random "
                  f"{_pct(zr['random_baseline'])}, lift {_f(zr['lift'], '{:.2f}x')} ({zr['top_hits']:.1f} / "
                  f"{zr['top_bins']}); ranked by modelled USD alone lift "
                  f"{_f(f.get('zones_by_usd', {}).get('lift'), '{:.2f}x')}, by distance alone "
                  f"{_f(f.get('zones_by_distance', {}).get('lift'), '{:.2f}x')}."]
        e = f.get("zone_map_error")
        if e:
            lines += ["", f"Zone map vs the true map ({e['snapshots']} snapshots): total-variation distance median "
                          f"{_f(e['median'], '{:.3f}')} (0 = same shape, 1 = disjoint), modelled / true USD median "
                          f"{_f(e['usd_ratio_median'], '{:.3f}')}."]
        lines += ["", "Coverage (liquidations the engine received per venue; capped streams are lower bounds):", "",
                  "| venue | liquidations | USD | capped | saturated 1 s slots | missed (estimate) "
                  "| missed USD (estimate) | share of true USD |",
                  "|---|---|---|---|---|---|---|---|"]
        for v, c in f["coverage"].items():
            lines.append(f"| {v} | {c['liquidations']:,} | ${c['usd']:,.0f} | {'yes' if c['capped'] else 'no'} | "
                         f"{c['saturated_slots']:,} | {c['missed_high']:,.0f} | ${c.get('missed_usd', 0.0):,.0f} | "
                         f"{_pct(c['share_of_truth_usd'])} |")
        if f["skipped"]:
            lines += ["", "Left out of the series: " + ", ".join(f"{k}: {v}" for k, v in f["skipped"].items())]
        lines += [""] + [f"![{p}]({p})" for p in plots.get(name, [])]
    return "\n".join(lines) + "\n"


def _timeline(path: Path, d, f: dict) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    assets = f["assets"]
    fig, axes = plt.subplots(len(assets), 1, figsize=(11, 2.6 * len(assets)), squeeze=False, sharex=True)
    t0 = d.t0_ns
    onsets = M.onsets(s for s in d.signals if type(s).__struct_config__.tag == "cascade")
    for ax, a in zip(axes[:, 0], assets):
        sel = d.truth[d.truth["asset"] == a]
        minutes, usd = minute_usd(sel["t_ns"], sel["usd"], d.t0_ns, d.t1_ns)
        ax.bar((minutes - t0) / 3.6e12, usd, width=1 / 60, align="edge", color="0.35", label="liquidation USD / min")
        for c in f["labels"]:
            if c["asset"] == a:
                ax.axvspan((c["start_ns"] - t0) / 3.6e12, (c["end_ns"] - t0) / 3.6e12, color="orange", alpha=0.3)
        for lv, colour in ((2, "gold"), (3, "red")):
            xs = [(o.t_ns - t0) / 3.6e12 for o in onsets if o.asset == a and o.level == lv]
            if xs:
                ax.vlines(xs, 0, 1, transform=ax.get_xaxis_transform(), colors=colour, lw=0.8,
                          label=f"{LEVELS[lv]} onset")
        ax.set_ylabel(f"{a} USD")
        ax.legend(loc="upper left", fontsize=7)
    axes[-1, 0].set_xlabel("hours from the start (orange: labelled cascades)")
    fig.suptitle(f"{d.name}: liquidations, labelled cascades and alarms")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _overall(out: Path, summary: dict) -> list[str]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    names = list(summary["datasets"])
    leads = [v for f in summary["datasets"].values() for v in f["lead_s"]["values"]]
    fig, ax = plt.subplots(figsize=(7, 3))
    if leads:
        ax.hist(leads, bins=min(30, max(5, len(leads))), color="steelblue")
    ax.axvline(60, color="red", ls="--", label="goal 60 s")
    ax.set_xlabel("lead of the first WARNING/CRITICAL before the peak minute (s)")
    ax.set_ylabel("cascades")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "lead_times.png", dpi=90)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(7, 3))
    x = np.arange(len(names))
    prec = [summary["datasets"][n]["zones"]["precision"] or 0.0 for n in names]
    base = [summary["datasets"][n]["zones"]["random_baseline"] or 0.0 for n in names]
    ax.bar(x - 0.2, prec, 0.4, label="top 10 % bins")
    ax.bar(x + 0.2, base, 0.4, label="random baseline")
    ax.set_xticks(x, names, rotation=15, fontsize=8)
    ax.set_ylabel("share of bins hit")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "zone_precision.png", dpi=90)
    plt.close(fig)
    return ["lead_times.png", "zone_precision.png"]


def write_report(out: Path, summary: dict, datasets: list, p) -> Path:
    """Write plots, ``summary.json`` and ``report.md`` into ``out``; return the report's path."""
    out.mkdir(parents=True, exist_ok=True)
    plots = {"": _overall(out, summary)}
    for d in datasets:
        name = f"timeline_{d.name}.png"
        _timeline(out / name, d, summary["datasets"][d.name])
        plots[d.name] = [name]
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    path = out / "report.md"
    path.write_text(markdown(summary, plots))
    return path
