"""PNG charts rendered locally with matplotlib (Agg, no display): the liquidation heatmap and CVD / liquidations.

* :func:`render_heatmap`: modelled liquidation notional per price bin over time
  (USD, log colour scale, the colour bar says so) with the price path on top.
* :func:`render_cvd_liquidations`: cumulative taker delta (USD) and liquidations
  per minute (long liquidations down, short up).
* :func:`heatmap_from_history` / :func:`zone_frames`: the same from the
  recorded history, replaying the zone model (engine/kernels/zones.py) over it.

The bot sends the returned bytes with sendPhoto.
"""
from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")   # before pyplot: render without a display

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import LogNorm  # noqa: E402

from .history import History  # noqa: E402
from .record import VENUE_NAMES, Kind  # noqa: E402

__all__ = ["ZoneFrames", "zone_frames", "render_heatmap", "render_cvd_liquidations", "heatmap_from_history"]


class ZoneFrames:
    """Snapshots of an asset's zone map: ``usd[frame, bin]`` at ``times`` (ns) over ``bin_prices``, and the price path."""

    def __init__(self, times, bin_prices, usd, price_times, prices):
        self.times = np.asarray(times, dtype=np.int64)
        self.bin_prices = np.asarray(bin_prices, dtype=np.float64)
        self.usd = np.asarray(usd, dtype=np.float64)
        self.price_times = np.asarray(price_times, dtype=np.int64)
        self.prices = np.asarray(prices, dtype=np.float64)


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()


def _minutes(ts_ns: np.ndarray, t0: int) -> np.ndarray:
    return (np.asarray(ts_ns, dtype=np.int64) - t0) / 60e9


def render_heatmap(asset: str, frames: ZoneFrames, title: str | None = None) -> bytes:
    """The liquidation heatmap of ``asset`` as PNG bytes."""
    fig, ax = plt.subplots(figsize=(10, 5.5))
    if len(frames.times) and len(frames.prices):
        t0 = int(frames.times[0])
        lo, hi = np.nanmin(frames.prices), np.nanmax(frames.prices)
        pad = max(hi - lo, hi * 0.02) * 0.6
        rows = (frames.bin_prices >= lo - pad) & (frames.bin_prices <= hi + pad)
        z = frames.usd[:, rows].T
        z = np.where(z > 0, z, np.nan)
        x = _minutes(frames.times, t0)   # frame end times, bins at their centre prices ("nearest" shading)
        y = frames.bin_prices[rows]
        if np.isfinite(z).any():
            vmax = np.nanmax(z)
            mesh = ax.pcolormesh(x, y, z, shading="nearest", cmap="inferno",
                                 norm=LogNorm(vmin=max(vmax * 1e-3, 1.0), vmax=max(vmax, 10.0)))
            cb = fig.colorbar(mesh, ax=ax)
            cb.set_label("modelled liquidation notional per price bin (USD)")
        ax.plot(_minutes(frames.price_times, t0), frames.prices, color="cyan", lw=1.0, label="price")
        ax.set_ylim(lo - pad, hi + pad)
        ax.legend(loc="upper left")
    else:
        ax.text(0.5, 0.5, "no data in the history for this range", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel("minutes")
    ax.set_ylabel(f"{asset} price (USD)")
    ax.set_title(title or f"{asset} liquidation heatmap (Undertow zone model, USD)")
    fig.tight_layout()
    return _png(fig)


def render_cvd_liquidations(asset: str, records: np.ndarray, title: str | None = None) -> bytes:
    """CVD (cumulative taker buy - sell USD) and liquidations per minute of ``asset``'s ``records``, as PNG bytes."""
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(10, 6), sharex=True, gridspec_kw={"height_ratios": [3, 2]})
    trades = records[records["kind"] == Kind.TRADE]
    liqs = records[records["kind"] == Kind.LIQUIDATION]
    if len(records):
        t0 = int(records["ts_exchange"].min())
        signed = np.where(trades["side"] > 0, trades["notional"], -trades["notional"])
        ax1.plot(_minutes(trades["ts_exchange"], t0), np.cumsum(signed), color="tab:blue", lw=1.0)
        minute = ((liqs["ts_exchange"] - t0) // 60_000_000_000).astype(np.int64)
        n = int(minute.max()) + 1 if len(minute) else 0
        longs = np.bincount(minute[liqs["side"] > 0], weights=liqs["notional"][liqs["side"] > 0], minlength=n)
        shorts = np.bincount(minute[liqs["side"] < 0], weights=liqs["notional"][liqs["side"] < 0], minlength=n)
        ax2.bar(np.arange(n), -longs, width=0.9, color="tab:red", label="long liquidations (USD)")
        ax2.bar(np.arange(n), shorts, width=0.9, color="tab:green", label="short liquidations (USD)")
        ax2.axhline(0, color="grey", lw=0.5)
        ax2.legend(loc="lower left", fontsize=8)
        venues = sorted({VENUE_NAMES.get(int(v), str(v)) for v in np.unique(records["venue"])})
        ax1.set_title(title or f"{asset} CVD and liquidations ({', '.join(venues)})")
    else:
        ax1.text(0.5, 0.5, "no data in the history for this range", ha="center", va="center", transform=ax1.transAxes)
        ax1.set_title(title or f"{asset} CVD and liquidations")
    ax1.set_ylabel("CVD (USD)")
    ax2.set_ylabel("USD per minute")
    ax2.set_xlabel("minutes")
    fig.tight_layout()
    return _png(fig)


def zone_frames(records: np.ndarray, inst_meta: list[tuple[str, str, int]], asset_id: int, zones_cfg,
                n_frames: int = 120, funding_cfg=None) -> ZoneFrames:
    """Run the zone model over ``records`` (ids as in ``inst_meta``) and snapshot asset ``asset_id``'s map."""
    from .kernels.zones import ZoneModel
    model = ZoneModel(zones_cfg, funding_cfg=funding_cfg)
    n_assets = max([m[2] for m in inst_meta], default=0) + 1
    model.resize(inst_meta, n_assets)
    if not len(records):
        return ZoneFrames([], [], np.zeros((0, model.nb)), [], [])
    ts = records["ts_recv"]
    edges = np.linspace(int(ts[0]), int(ts[-1]) + 1, n_frames + 1).astype(np.int64)
    cuts = np.searchsorted(ts, edges[1:])
    usd, times, start = [], [], 0
    for end, t in zip(cuts.tolist(), edges[1:].tolist()):
        model.run(records[start:end])
        start = end
        m = model.asset_map(asset_id)
        usd.append(m["long_usd"] + m["short_usd"])
        times.append(t)
    mine = {i for i, meta in enumerate(inst_meta) if meta[2] == asset_id}
    priced = records[np.isin(records["kind"], (Kind.TRADE, Kind.MARK)) & np.isin(records["instrument"], list(mine))]
    return ZoneFrames(times, model.bin_prices(asset_id), np.array(usd), priced["ts_recv"], priced["price"])


def heatmap_from_history(root: str, asset: str, zones_cfg, span_ns: int, chart: str = "heatmap",
                         until_ns: int | None = None, funding_cfg=None) -> bytes:
    """PNG of ``asset`` over the last ``span_ns`` of the history at ``root`` (heatmap, or ``chart="cvd"``)."""
    hist = History(root)
    infos = hist.instruments()
    ids = sorted(i.id for i in infos.values() if i.asset.upper() == asset)
    if not ids:
        raise ValueError(f"{asset}: no instrument of this asset in {root}")
    end = until_ns
    if end is None:
        days = hist.days()
        if not days:
            raise ValueError(f"{root}: the history is empty")
        last = hist.records(t0=int(np.datetime64(days[-1], "ns").astype(np.int64)))
        end = int(last["ts_recv"].max()) if len(last) else 0
    recs = hist.records(end - span_ns, end, instruments=set(ids))
    if chart == "cvd":
        return render_cvd_liquidations(asset, recs)
    # ids of the recording are dense from 0: the asset is id 0 here, everything else id 1 (ignored)
    meta = [(VENUE_NAMES.get(infos[i].venue, "*"), infos[i].asset, 0 if i in ids else 1)
            for i in range(max(infos) + 1)] if infos else []
    return render_heatmap(asset, zone_frames(recs, meta, 0, zones_cfg, funding_cfg=funding_cfg))
