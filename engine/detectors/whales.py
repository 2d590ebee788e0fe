"""Whale-trade and trade-mix detector: ``whale.<ASSET>`` and ``smart_money.<ASSET>`` from :mod:`engine.kernels.whales`."""
from __future__ import annotations

import time

import numpy as np

from .base import FlowDetector, fallback_of
from ..kernels import flow
from ..kernels import whales as K
from ..instruments import Market
from ..signals import TradeMix, WhaleTrade

__all__ = ["WhalesDetector"]


class WhalesDetector(FlowDetector):
    """Single trades above the asset's own high size quantile, and its trade-size mix."""

    name = "whales"

    def __init__(self, ctx) -> None:
        super().__init__(ctx)
        c = self.cfg
        self.widths = flow.bucket_counts([c.mix_window_s], "detectors.whales.mix_window_s")
        p = self.params = np.zeros(K.P_SIZE)
        p[K.P_WHALE_Q], p[K.P_LARGE_Q], p[K.P_MIN_TRADES] = c.whale_quantile, c.large_quantile, c.min_trades
        p[K.P_DECAY], p[K.P_FLOOR] = 0.5 ** (1.0 / c.half_life_trades), c.min_usd
        p[K.P_LARGE_RATIO], p[K.P_INST_SHARE], p[K.P_INST_NET] = (c.large_fallback_ratio, c.institutional_share,
                                                                  c.institutional_net)
        p[K.P_RETAIL_SHARE], p[K.P_MIX_MIN_TRADES] = c.retail_share, c.mix_min_trades
        self.keys = flow.FlowKeys(ctx.registry, ctx.runner, per_instrument=False, split_markets=False)
        self.sizes = flow.SizeHistogram()
        self.fallback = np.zeros(1)
        self._new_ring(K.CHANNELS)
        self.mix = np.zeros((0, K.M_SIZE))
        self.scratch = np.zeros((1, K.CHANNELS))
        self._grow()

    def _grow(self) -> None:
        n = max(1, self.keys.n_keys)
        self.sizes.grow(n)
        self.fallback = self._per_key(self.cfg.fallback_usd)
        self._grow_ring(n)
        self.mix = flow.grow(self.mix, n)

    def _call(self, records: np.ndarray, start: int):
        return K.whales_batch(records, start, self.keys.inst_akey, self.widths, self.sizes.as_tuple(), self.fallback,
                              self.ring, self.head, self.mix, self.params, self.scratch, self.events, self.counters)

    def _signal(self, ev, rec):
        k, v = int(ev["key"]), ev["vals"]
        stamps = dict(asset=self.keys.key_asset[k], ts_exchange=int(rec["ts_exchange"]), ts_recv=int(rec["ts_recv"]),
                      ts_computed=time.time_ns())
        if ev["kind"] == K.EV_WHALE:
            inst = self.ctx.registry.get(int(rec["instrument"]))
            return WhaleTrade(
                **stamps, venue=flow.VENUE_NAMES.get(inst.venue, str(inst.venue)), symbol=inst.symbol,
                market=Market.NAMES.get(inst.market, "perp"), side="buy" if ev["level"] > 0 else "sell",
                price=float(v[5]), qty=float(v[6]), notional_usd=float(v[0]), threshold_usd=float(v[1]),
                multiple=float(v[2]), fallback=bool(v[4]))
        return TradeMix(
            **stamps, mix=K.MIXES[ev["level"]], previous_mix=K.MIXES[ev["prev"]], window_s=self.cfg.mix_window_s,
            volume_usd=float(v[K.M_USD]), large_share=float(v[K.M_LARGE_SHARE]), large_net=float(v[K.M_LARGE_NET]),
            large_usd=float(v[K.M_LARGE_USD]), trades=int(v[K.M_TRADES]))

    def thresholds(self, asset: str) -> dict[str, float]:
        """Whale and large sizes in force (fallbacks until the asset has ``min_trades`` trades) and the mix bounds."""
        k = self._first_key(asset)
        fb = fallback_of(self.cfg.fallback_usd, asset)
        c = self.cfg
        out = {"whale_usd": max(fb, c.min_usd), "large_usd": max(fb, c.min_usd) * c.large_fallback_ratio,
               "fallback": 1.0, "trades_seen": 0.0}
        if k is not None and self.sizes.count[k]:
            out.update(whale_usd=float(self.mix[k, K.M_WHALE_USD]), large_usd=float(self.mix[k, K.M_LARGE_USD]),
                       fallback=float(self.mix[k, K.M_FALLBACK]), trades_seen=float(self.sizes.count[k]))
        out.update(institutional_share=c.institutional_share, institutional_net=c.institutional_net,
                   retail_share=c.retail_share)
        return out

    def factors(self, asset: str) -> dict[str, float]:
        """Large-trade USD share of the mix window, and 1 while the mix is institutional."""
        k = self._first_key(asset)
        if k is None:
            return {}
        cls = int(self.mix[k, K.M_CLASS])
        return {"large_share": float(min(1.0, self.mix[k, K.M_LARGE_SHARE])),
                "institutional": 1.0 if cls in (K.ACCUMULATION, K.DISTRIBUTION) else 0.0}
