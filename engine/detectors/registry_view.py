"""The registry as the sampled-value detectors read it (instrument -> asset, venue, ownership, per-asset index)."""
from __future__ import annotations

import numpy as np

from ..record import VENUE_NAMES

__all__ = ["RegistryView"]


class RegistryView:
    """What the positioning detectors read from the registry, rebuilt when it grows.

    ``inst_asset`` / ``owned`` / ``asset_names`` come from the compute worker's runner (so
    ownership matches the fused kernel); ``inst_venue`` and the asset -> instruments index
    (``asset_ptr``, ``asset_inst``) are built here.
    """

    def __init__(self, ctx) -> None:
        self.ctx = ctx
        self.n_inst = self.n_assets = -1
        self.inst_asset = np.zeros(0, dtype=np.int64)
        self.inst_venue = np.zeros(0, dtype=np.int64)
        self.owned = np.zeros(0, dtype=np.bool_)
        self.asset_ptr = np.zeros(1, dtype=np.int64)
        self.asset_inst = np.zeros(0, dtype=np.int64)
        self.asset_names: list[str] = []
        self._labels: dict[int, tuple[str, str]] = {}

    def refresh(self) -> bool:
        """Pick up new instruments/assets; return whether anything changed."""
        runner = self.ctx.runner
        runner.refresh()
        n_inst, n_assets = len(runner.inst_asset), len(runner.asset_names)
        if n_inst == self.n_inst and n_assets == self.n_assets:
            return False
        reg = self.ctx.registry
        self.inst_asset = np.ascontiguousarray(runner.inst_asset, dtype=np.int64)
        self.inst_venue = np.array([reg.get(i).venue for i in range(n_inst)], dtype=np.int64)
        self.owned = np.ascontiguousarray(runner.owned, dtype=np.bool_)
        self.asset_names = list(runner.asset_names)
        order = np.argsort(self.inst_asset, kind="stable")
        self.asset_inst = order.astype(np.int64)
        self.asset_ptr = np.searchsorted(self.inst_asset[order], np.arange(n_assets + 1)).astype(np.int64)
        self.n_inst, self.n_assets = n_inst, n_assets
        return True

    def per_asset(self, table: dict[str, float], scale: float = 1.0) -> np.ndarray:
        """``table[asset]`` (else ``table["*"]``) for every asset, times ``scale``."""
        return np.array([float(table.get(n, table["*"])) * scale for n in self.asset_names] or [0.0])

    def asset_id(self, asset: str) -> int | None:
        try:
            return self.asset_names.index(asset)
        except ValueError:
            return None

    def label(self, iid: int) -> tuple[str, str]:
        """(symbol, venue name) of instrument ``iid``."""
        out = self._labels.get(iid)
        if out is None:
            inst = self.ctx.registry.get(iid)
            out = self._labels[iid] = (inst.symbol, VENUE_NAMES.get(inst.venue, str(inst.venue)))
        return out

    def instruments_of(self, a: int) -> np.ndarray:
        return self.asset_inst[self.asset_ptr[a]:self.asset_ptr[a + 1]]
