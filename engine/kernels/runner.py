"""Own the kernels' arrays for one compute worker and run batches through :func:`pipeline.process_batch`."""
from __future__ import annotations

import numpy as np

from . import columns as C
from .cascade import P_MARKET, cascade_params
from .hawkes import grow_state, new_state
from .pipeline import (DONE, EVENT_DTYPE, EVENTS_FULL, ON_CASCADE, ON_RINGS, ON_VELOCITY, ON_VOLATILITY,
                       process_batch)
from .velocity import VelocityLayout, VelocityRings
from ..record import RECORD_DTYPE, empty_records
from .volatility import NORMAL, VolatilityState
from .windows import SampleRings

__all__ = ["BatchRunner", "single_usd_of", "whale_usd_of"]

EVENTS_CAPACITY = 4096
LIQS_CAPACITY = 4096       # liquidation indices per batch (the ring reader's batch size)


def single_usd_of(liq_cfg, asset: str) -> float:
    """The asset's single-liquidation threshold in USD (its own entry, else ``"*"``)."""
    return float(liq_cfg.single_usd.get(asset, liq_cfg.single_usd["*"]))


def whale_usd_of(liq_cfg, asset: str) -> float:
    """The asset's configured whale threshold: ``whale_multiple`` x its single-liquidation threshold."""
    return single_usd_of(liq_cfg, asset) * liq_cfg.whale_multiple


class BatchRunner:
    """Kernel state for the assets a worker owns, sized from the registry and grown as it grows."""

    def __init__(self, detectors, registry, worker: int = 0, workers: int = 1):
        self.detectors = detectors
        self.registry = registry
        self.worker, self.workers = worker, workers
        d = detectors
        self.velocity = VelocityLayout(d.velocity.windows_s, d.cascade.window_s)
        self.vol_windows_cfg = d.volatility.windows_s
        self.bounds = np.array(d.volatility.regime_bounds, dtype=np.float64)
        self.multipliers = np.array(d.volatility.regime_multipliers, dtype=np.float64)
        if not d.volatility.enabled:
            self.multipliers = np.ones(5)
        self.cas_params = cascade_params(d.cascade, d.velocity.windows_s, d.velocity.enabled)
        self.on = np.array([d.velocity.enabled or d.cascade.enabled, d.velocity.enabled,
                            d.volatility.enabled, d.cascade.enabled], dtype=np.int64)
        self.clock = np.zeros(1, dtype=np.int64)
        self.events = np.zeros(EVENTS_CAPACITY, dtype=EVENT_DTYPE)
        self.n_inst = self.n_assets = 0
        self.inst_asset = np.zeros(0, dtype=np.int64)
        self.inst_rows = np.zeros((0, C.NCOL))
        self.asset_rows = np.zeros((0, C.NCOL))
        self.inst_rings = VelocityRings(self.velocity, 1)
        self.asset_rings = VelocityRings(self.velocity, 1)
        self.vol = VolatilityState(self.vol_windows_cfg, 1)
        self.hawkes = new_state(1)
        self.samples = SampleRings(1)
        self.single_usd = np.zeros(0)
        self.whale_usd = np.zeros(0)
        self.unknown = 0
        self.scratch = np.zeros((max(len(self.velocity.widths), len(self.vol.windows), 3), C.DAY_CHANNELS))
        self.liqs = np.zeros(LIQS_CAPACITY + 1, dtype=np.int64)
        self.n_inst = self.n_assets = -1  # force the first refresh even for an empty registry
        self.refresh()

    # -- registry ---------------------------------------------------------
    def refresh(self) -> bool:
        """Pick up instruments and assets added to the registry; return whether anything changed."""
        n_inst, n_assets = len(self.registry), self.registry.n_assets
        if n_inst == self.n_inst and n_assets == self.n_assets:
            return False
        self.inst_asset = self.registry.asset_of()
        self.inst_rows = self._grow_rows(self.inst_rows, n_inst)
        self.asset_rows = self._grow_rows(self.asset_rows, n_assets)
        for rings, n in ((self.inst_rings, n_inst), (self.asset_rings, n_assets)):
            rings.grow(max(1, n))
        self.vol.grow(max(1, n_inst))
        self.hawkes = grow_state(self.hawkes, max(1, n_assets))
        self.samples.grow(max(1, n_assets))
        ids = np.arange(n_assets)
        self.owned = (ids % self.workers) == self.worker
        self.asset_names = [self.registry.asset_name(a) for a in range(n_assets)]
        self.single_usd = self._grow_thresholds(self.single_usd, single_usd_of)
        self.whale_usd = self._grow_thresholds(self.whale_usd, whale_usd_of)
        market = self.registry.asset_id(self.detectors.cascade.market_asset)
        self.cas_params[P_MARKET] = -1 if market is None else market
        order = np.argsort(self.inst_asset, kind="stable")
        self.asset_inst = order.astype(np.int64)
        self.asset_ptr = np.searchsorted(self.inst_asset[order], np.arange(n_assets + 1)).astype(np.int64)
        self.events_needed = n_assets + 2
        if len(self.events) < self.events_needed + 64:
            self.events = np.zeros(self.events_needed + EVENTS_CAPACITY, dtype=EVENT_DTYPE)
        self.n_inst, self.n_assets = n_inst, n_assets
        self._bind()
        return True

    def _bind(self) -> None:
        """Collect the kernel's fixed arguments once, and its compiled entry point for their types."""
        self._static = (
            self.inst_asset, self.owned, self.asset_ptr, self.asset_inst, self.single_usd, self.whale_usd,
            self.inst_rings.as_tuple(), self.asset_rings.as_tuple(), self.velocity.widths,
            self.velocity.slots, self.velocity.windows_s, self.vol.as_tuple(), self.vol.windows,
            self.bounds, self.multipliers, self.cas_params, self.hawkes, self.samples.as_tuple(),
            self.on, self.clock,
            self.inst_rows, self.asset_rows, self.scratch, self.events, self.liqs)
        self._entry = None

    def _grow_thresholds(self, old: np.ndarray, fallback) -> np.ndarray:
        """Per-asset thresholds for the grown registry: existing values kept, new assets at the fallback."""
        out = np.array([fallback(self.detectors.liquidations, n) for n in self.asset_names])
        out[: len(old)] = old[: len(out)]
        return out

    def set_thresholds(self, asset: int, single_usd: float, whale_usd: float) -> None:
        """Install an asset's dynamic single-liquidation and whale thresholds (read by the next batch)."""
        self.single_usd[asset] = single_usd
        self.whale_usd[asset] = whale_usd

    def _grow_rows(self, rows: np.ndarray, n: int) -> np.ndarray:
        if n <= len(rows):
            return rows
        out = np.zeros((n, C.NCOL))
        out[: len(rows)] = rows
        out[len(rows):, C.REGIME] = NORMAL
        out[len(rows):, C.REGIME_MULT] = self.multipliers[NORMAL]
        return out

    # -- batches ----------------------------------------------------------
    def run(self, records: np.ndarray) -> list[np.ndarray]:
        """Feed ``records``; return the level/regime events found (copies), in stream order.

        Afterwards :meth:`liquidations` lists the batch's liquidations of owned assets.
        """
        out: list[np.ndarray] = []
        i = 0
        n = len(records)
        if n >= len(self.liqs):
            self.liqs = np.zeros(n + 1, dtype=np.int64)
            self._bind()
        self.liqs[0] = 0
        while i < n:
            i, n_ev, status = self._call(records, i)
            if n_ev:
                out.append(self.events[:n_ev].copy())
            if status == DONE or status == EVENTS_FULL:
                continue
            if not self.refresh() and i < n:  # still unknown: a record from a foreign registry
                self.unknown += 1
                i += 1
        return out

    def liquidations(self) -> np.ndarray:
        """Indices (into the last batch) of its liquidations of owned assets, in stream order."""
        return self.liqs[1:1 + self.liqs[0]]

    def _call(self, records: np.ndarray, start: int):
        entry = self._entry
        if entry is not None and records.flags.c_contiguous and records.flags.writeable:
            return entry(records, start, *self._static)
        # First call with these argument types: go through the dispatcher (it compiles or loads
        # from the cache), then keep the compiled entry point, which skips per-call type matching
        # (a third of the call's cost when the caches are cold).
        result = process_batch(records, start, *self._static)
        sig = tuple(process_batch.typeof_pyval(a) for a in (records, start, *self._static))
        overload = process_batch.overloads.get(sig)
        if overload is not None and records.dtype == RECORD_DTYPE and records.flags.c_contiguous \
                and records.flags.writeable:
            self._entry = overload.entry_point
        return result

    def warm_up(self) -> None:
        """Compile (or load from the cache) the fused kernel with an empty batch."""
        self._call(empty_records(0), 0)
