"""Plumbing shared by the detector plug-ins: the trade-flow base and the positioning base.

Both own a kernel event buffer and bad-input counters, follow the registry as it
grows, and turn the kernel's events of one batch into signals; a subclass holds
only its state arrays, its kernel call and its signal.
"""
from __future__ import annotations

import time

import numpy as np

from . import Detector
from ..kernels import flow
from ..kernels.batches import Q_FIRST_TS, Q_KINDS, Q_LAST_TS, Q_N, Q_SIZE, kind_bits, kind_mask, queue_put
from ..kernels.sampled import POS_EVENT_DTYPE
from ..kernels.windows import ring_pow2
from .registry_view import RegistryView

__all__ = ["DetectorQueue", "FlowDetector", "PositioningDetector", "fallback_of", "window_label"]

FLOW_EVENTS = 1024
POSITIONING_EVENTS = 256


def fallback_of(table: dict[str, float], asset: str) -> float:
    """The asset's own entry of a per-asset config table, else its ``"*"`` entry."""
    return float(table.get(asset, table["*"]))


def window_label(seconds: float) -> str:
    """``60.0`` -> ``"1m"``, ``90.0`` -> ``"90s"``."""
    return f"{seconds / 60:g}m" if seconds % 60 == 0 else f"{seconds:g}s"


class FlowDetector(Detector):
    """Base of the trade-flow detectors (volume, cvd, whales) over :mod:`engine.kernels.flow`.

    ``consumes`` (here and on every detector that has it): the :func:`kind_mask` bits of the record
    kinds ``run`` reads; the compute actor skips a detector whose bits miss the batch's kinds.

    The subclass's ``__init__`` sets ``keys`` (:class:`flow.FlowKeys`), ``widths`` and its state,
    then calls :meth:`_grow`; it defines ``_grow`` (size the state to ``keys.n_keys``, calling
    :meth:`_grow_ring`), ``_call(records, start)`` (its kernel) and ``_signal(ev, rec)``.
    """

    def __init__(self, ctx) -> None:
        super().__init__(ctx)
        self.events = np.zeros(FLOW_EVENTS, dtype=flow.EVENT_DTYPE)
        self.counters = np.zeros(flow.N_COUNTERS, dtype=np.int64)

    def _new_ring(self, channels: int) -> None:
        """An empty bucket ring of ``channels`` long enough for the widest window."""
        self.ring = np.zeros((0, ring_pow2(int(self.widths[-1]) + 1), channels))
        self.head = np.zeros(0, dtype=np.int64)

    def _grow_ring(self, n: int) -> None:
        self.ring = flow.grow(self.ring, n)
        self.head = flow.grow(self.head, n, flow.EMPTY)

    def _per_key(self, table: dict[str, float]) -> np.ndarray:
        """``fallback_of(table, asset)`` for every key's asset (one 0.0 while there is no key)."""
        return np.array([fallback_of(table, a) for a in self.keys.key_asset] or [0.0])

    def _first_key(self, asset: str) -> int | None:
        """The asset's aggregated key (its perp key when markets are split), None if unknown."""
        keys = self.keys.asset_keys(asset)
        return keys[0] if keys else None

    consumes = kind_bits(flow.TRADE)

    def run(self, records: np.ndarray) -> list:
        if not len(records) or not kind_mask(records) & self.consumes:
            return []
        if self.keys.refresh():
            self._grow()
        return [self._signal(ev, records[ev["rec"]])
                for batch in flow.drain(self._call, records, self.events) for ev in batch]


class PositioningDetector(Detector):
    """Base of the positioning detectors (open interest, funding, book, correlation) over
    :mod:`engine.kernels.sampled` (each with its own kernel module).

    A subclass names the record ``kinds`` it reads, sizes its state in ``_resize(view)`` (called
    when the registry grew), runs its kernel in ``_kernel(records) -> n events`` and builds
    signals in ``_signals(events, now)``. ``counters``: bad values, records too late for the ring.
    """

    kinds: tuple[int, ...] = ()

    def __init__(self, ctx) -> None:
        super().__init__(ctx)
        self.consumes = kind_bits(*self.kinds)
        self.view = RegistryView(ctx)
        self.events = np.zeros(POSITIONING_EVENTS, dtype=POS_EVENT_DTYPE)
        self.counters = np.zeros(2, dtype=np.int64)
        self.last_events = self.events[:0]

    def _grow(self) -> None:
        if self.view.refresh():
            self._resize(self.view)

    def run(self, records: np.ndarray) -> list:
        if not len(records) or not kind_mask(records) & self.consumes:
            return []
        self._grow()
        n = self._kernel(records)
        self.last_events = self.events[:n]   # for tests and tools: the raw kernel events of this batch
        return self._signals(self.last_events, time.time_ns())


class DetectorQueue:
    """Ring batches waiting for the plug-in detectors, so they run over many batches at once.

    Most of a detector's cost per call is Python and kernel dispatch, not records: run per ring batch
    (thousands a second at high rates) it takes more CPU than the liquidation path it follows. The
    compute loop :meth:`add`\\ s each batch after its liquidation path and runs the detectors over
    :meth:`take` when :meth:`add` says so: ``max_records`` queued, or the queue spans ``cadence_s`` of
    stream time (``ts_recv``); :meth:`overdue` (wall clock) covers a stream that went quiet. The
    detectors see the same records in the same order, only in bigger batches.
    """

    def __init__(self, cadence_s: float, max_records: int, dtype: np.dtype) -> None:
        if cadence_s <= 0 or max_records < 1:
            raise ValueError("detector queue: need cadence_s > 0 and max_records >= 1")
        self.cadence_ns = int(cadence_s * 1e9)
        self.cadence_s = cadence_s
        self.buf = np.zeros(max_records, dtype=dtype)
        self.state = np.zeros(Q_SIZE, dtype=np.int64)   # queue_put's: count, kind_mask, first / last ts_recv
        self.deadline = 0.0         # time.monotonic() by which the queue runs even if no record comes
        queue_put(self.buf, self.state, self.buf[:0])    # compiled (or loaded) now, not on the first batch
        kind_mask(self.buf[:0])

    def __len__(self) -> int:
        return int(self.state[Q_N])

    def add(self, records: np.ndarray, now: float) -> bool | None:
        """Queue a batch; return whether the queue is now due to run, None (nothing queued) if it does not fit."""
        st = self.state
        empty = not st[Q_N]
        if not queue_put(self.buf, st, records):
            return None
        if empty:
            self.deadline = now + self.cadence_s
        return bool(st[Q_N] == len(self.buf) or st[Q_LAST_TS] - st[Q_FIRST_TS] >= self.cadence_ns)

    def overdue(self, now: float) -> bool:
        return now >= self.deadline and self.state[Q_N] > 0

    def take(self) -> tuple[np.ndarray, int]:
        """(queued records, their kind_mask), emptying the queue; the view is valid until the next :meth:`add`."""
        st = self.state
        out, kinds = self.buf[:st[Q_N]], int(st[Q_KINDS])
        st[Q_N] = st[Q_KINDS] = 0
        return out, kinds
