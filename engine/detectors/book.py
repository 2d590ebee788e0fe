"""Order-book pressure per venue book: persistent imbalance and depth collapse (kernel: :func:`book_batch`)."""
from __future__ import annotations

import numpy as np

from engine.kernels.book import B_BASE, B_DEPTH, B_IMB, BOOK_COLS, book_batch
from engine.kernels.sampled import grow_rows, new_stats, threshold_of
from engine.record import Kind
from engine.signals import BookPressure

from .base import PositioningDetector

__all__ = ["BookDetector"]


class BookDetector(PositioningDetector):
    """Imbalance within ``band`` held ``persist_s``; depth below ``collapse_ratio`` of its baseline; ``book.<ASSET>``."""

    name = "book"
    kinds = (Kind.BOOK_DEPTH, Kind.BOOK_TOP)

    def __init__(self, ctx) -> None:
        super().__init__(ctx)
        c = self.cfg
        if not 0 < c.band < 1 or c.persist_s < 0 or c.baseline_tau_s <= 0 or not 0 < c.collapse_ratio < c.rearm_ratio:
            raise ValueError("detectors.book: need 0 < band < 1, persist_s >= 0, baseline_tau_s > 0, "
                             "0 < collapse_ratio < rearm_ratio")
        self.book = np.zeros((1, BOOK_COLS))
        self.imb_stats = new_stats(1)
        self._grow()

    def _resize(self, v) -> None:
        n = max(1, v.n_inst)
        self.book = grow_rows(self.book, n)
        self.imb_stats = grow_rows(self.imb_stats, n)
        self.p_imb = v.per_asset(self.cfg.imbalance)
        self.p_imb_floor = np.full(len(self.p_imb), self.cfg.imbalance_floor)

    def _kernel(self, records: np.ndarray) -> int:
        c, v = self.cfg, self.view
        return book_batch(records, v.inst_asset, v.owned, self.book, self.imb_stats, c.band, c.band * 1e-6,
                          float(c.min_samples), c.z, c.ew_alpha, self.p_imb, self.p_imb_floor, c.imbalance_rearm,
                          int(c.persist_s * 1e9),
                          c.baseline_tau_s * 1e9, float(c.min_baseline_samples), c.collapse_ratio,
                          int(c.collapse_persist_s * 1e9), c.rearm_ratio, self.events, self.counters)

    def _signals(self, events: np.ndarray, now: int) -> list:
        c, v = self.cfg, self.view
        out = []
        for e in events:
            code, iid = int(e["code"]), int(e["key"])
            symbol, venue = v.label(iid)
            common = dict(asset=v.asset_names[e["asset"]], venue=venue, symbol=symbol, ts_exchange=int(e["ts_exchange"]),
                          ts_recv=int(e["ts_recv"]), ts_computed=now, band=c.band)
            if code == 2:
                out.append(BookPressure(event="depth_collapse", side="both", imbalance=float(e["v3"]),
                                        depth_usd=float(e["v0"]), baseline_usd=float(e["v1"]),
                                        threshold=c.collapse_ratio, persisted_s=c.collapse_persist_s, **common))
            else:
                bid, ask = float(e["v2"]), float(e["v3"])
                out.append(BookPressure(event="imbalance", side="bid" if code > 0 else "ask", imbalance=float(e["v0"]),
                                        threshold=float(e["v1"]), bid_usd=bid, ask_usd=ask, depth_usd=bid + ask,
                                        persisted_s=c.persist_s, **common))
        return out

    def thresholds(self, asset: str) -> dict[str, float]:
        c = self.cfg
        out = {"band": c.band, "fallback_imbalance": float(c.imbalance.get(asset, c.imbalance["*"])),
               "imbalance_floor": c.imbalance_floor, "persist_s": c.persist_s, "collapse_ratio": c.collapse_ratio,
               "collapse_persist_s": c.collapse_persist_s}
        a = self.view.asset_id(asset)
        if a is not None:
            thr = [threshold_of(self.imb_stats, int(j), float(c.min_samples), c.z, self.p_imb[a], self.p_imb_floor[a])[1]
                   for j in self.view.instruments_of(a) if self.book[j, B_DEPTH] > 0]
            if thr:
                out["imbalance"] = float(np.mean(thr))
        return out

    def factors(self, asset: str) -> dict[str, float]:
        """``book_imbalance``: the largest |imbalance| / threshold; ``depth_thinning``: 1 - depth / baseline."""
        a = self.view.asset_id(asset)
        if a is None:
            return {}
        c = self.cfg
        imb = thin = 0.0
        for j in self.view.instruments_of(a):
            row = self.book[j]
            if row[B_DEPTH] <= 0:
                continue
            centre, thr = threshold_of(self.imb_stats, int(j), float(c.min_samples), c.z, self.p_imb[a],
                                       self.p_imb_floor[a])
            imb = max(imb, abs(row[B_IMB] - centre) / thr)
            if row[B_BASE] > 0:
                thin = max(thin, 1.0 - row[B_DEPTH] / row[B_BASE])
        return {"book_imbalance": min(1.0, imb), "depth_thinning": max(0.0, min(1.0, thin))}
