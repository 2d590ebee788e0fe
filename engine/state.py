"""The state table: latest per-instrument and per-asset metrics in shared memory.

Compute workers write the rows of the assets they own; the bot, /metrics and
``undertow status`` read them without asking a compute process. Each row is
guarded by a seqlock: the writer makes the row's counter odd, writes, then
makes it even; a reader copies the row and retries while the counter was odd
or changed, so it never returns a half-written row.

Layout: a 512-byte header (magic, version, sizes, window seconds), then
``max_instruments`` instrument rows, then ``max_assets`` asset rows, then
``VENUE_ROWS`` venue rows (per-venue coverage, indexed by venue id), each
``[seq u64, updated_ns i64, NCOL float64]`` in the column layout of
:mod:`engine.kernels.columns` (venue rows: its ``COVERAGE_COLUMNS``).
"""
from __future__ import annotations

import os
import time

import numpy as np

from . import shm
from .kernels import columns as C
from .signals import LEVELS, REGIMES

__all__ = ["StateTable", "state_segment"]

MAGIC = 0x4554415453574F54  # "TOWSTATE"
VERSION = 2   # 2: venue (coverage) rows after the asset rows
HEADER = 512
ROW_WORDS = 2 + C.NCOL
READ_TIMEOUT_S = 1.0
SPINS_BEFORE_YIELD = 100

_W_MAGIC, _W_VERSION, _W_MAX_INSTR, _W_MAX_ASSETS, _W_NCOL, _W_N_VEL, _W_N_VOL, _W_CASCADE_S = range(8)
_VEL_AT, _VOL_AT = 8, 8 + C.MAX_WINDOWS


def state_segment(namespace: str) -> str:
    """Segment name of the state table in ``namespace``."""
    return shm.segment_name(namespace, "state", "table")


class StateTable:
    """Per-instrument and per-asset metric rows with a seqlock each."""

    def __init__(self, segment, name: str):
        self._shm = segment
        self.name = name
        buf = segment.buf
        hdr = np.ndarray((HEADER // 8,), dtype=np.uint64, buffer=buf)
        if int(hdr[_W_MAGIC]) != MAGIC or int(hdr[_W_VERSION]) != VERSION or int(hdr[_W_NCOL]) != C.NCOL:
            raise RuntimeError(f"{name}: not a state table of version {VERSION}")
        self._hdr = hdr
        self._hdr_f = np.ndarray((HEADER // 8,), dtype=np.float64, buffer=buf)
        self.max_instruments = int(hdr[_W_MAX_INSTR])
        self.max_assets = int(hdr[_W_MAX_ASSETS])
        n_i, n_a = self.max_instruments, self.max_assets
        words = np.ndarray(((n_i + n_a + C.VENUE_ROWS) * ROW_WORDS,), dtype=np.uint64, buffer=buf, offset=HEADER)
        rows = words.reshape(-1, ROW_WORDS)
        parts = {"i": slice(0, n_i), "a": slice(n_i, n_i + n_a), "v": slice(n_i + n_a, None)}
        self._seq = {k: rows[sl, 0] for k, sl in parts.items()}
        self._updated = {k: rows[sl, 1:2].view(np.int64) for k, sl in parts.items()}
        data = rows[:, 2:].view(np.float64)
        self._data = {k: data[sl] for k, sl in parts.items()}

    @staticmethod
    def _size(max_instruments: int, max_assets: int) -> int:
        return HEADER + (max_instruments + max_assets + C.VENUE_ROWS) * ROW_WORDS * 8

    @classmethod
    def open(cls, namespace: str, max_instruments: int, max_assets: int) -> "StateTable":
        """Attach to the namespace's table, creating it with these sizes if it does not exist."""
        name = state_segment(namespace)
        seg, _ = shm.open_or_create_stamped(
            name, cls._size(max_instruments, max_assets),
            {_W_VERSION: VERSION, _W_MAX_INSTR: max_instruments, _W_MAX_ASSETS: max_assets, _W_NCOL: C.NCOL},
            (_W_MAGIC, MAGIC))
        return cls(seg, name)

    @classmethod
    def attach(cls, namespace: str) -> "StateTable":
        """Attach to an existing table; raise FileNotFoundError if there is none."""
        name = state_segment(namespace)
        return cls(shm.attach(name), name)

    def close(self) -> None:
        self._hdr = self._hdr_f = self._seq = self._updated = self._data = None
        try:
            self._shm.close()
        except BufferError:  # pragma: no cover - a caller still holds a view
            pass

    # -- writer -------------------------------------------------------------
    def set_windows(self, velocity_s, volatility_s, cascade_s: float) -> None:
        """Record the window seconds the rows' columns stand for (for readers' labels)."""
        f, h = self._hdr_f, self._hdr
        h[_W_N_VEL], h[_W_N_VOL] = len(velocity_s), len(volatility_s)
        f[_VEL_AT:_VEL_AT + len(velocity_s)] = velocity_s
        f[_VOL_AT:_VOL_AT + len(volatility_s)] = volatility_s
        f[_W_CASCADE_S] = cascade_s

    def write(self, which: str, ids: np.ndarray, rows: np.ndarray) -> None:
        """Write ``rows[ids]`` into rows ``ids`` of ``which`` ("i" instruments, "a" assets, "v" venues) under their seqlocks."""
        seq = self._seq[which]
        seq[ids] += 1          # odd: readers of these rows retry
        self._data[which][ids] = rows[ids]
        self._updated[which][ids, 0] = time.time_ns()
        seq[ids] += 1          # even: consistent again

    # -- readers ------------------------------------------------------------
    def read_row(self, which: str, rid: int) -> tuple[np.ndarray, int]:
        """Return a consistent copy of one row and its write time (ns)."""
        seq, data, upd = self._seq[which], self._data[which], self._updated[which]
        deadline = None
        tries = 0
        while True:
            s1 = int(seq[rid])
            if not s1 & 1:
                row = data[rid].copy()
                ts = int(upd[rid, 0])
                if int(seq[rid]) == s1:
                    return row, ts
            tries += 1
            if tries > SPINS_BEFORE_YIELD:  # a writer is mid-row: let it finish
                os.sched_yield()
                if deadline is None:
                    deadline = time.monotonic() + READ_TIMEOUT_S
                elif time.monotonic() > deadline:
                    break
        raise TimeoutError(f"{self.name}: row {which}{rid} kept changing")

    def read_instrument(self, iid: int) -> dict:
        """Latest metrics of instrument ``iid``."""
        return self._as_dict(*self.read_row("i", iid), asset=False)

    def read_asset(self, aid: int) -> dict:
        """Latest aggregated metrics, cascade score and level of asset ``aid``."""
        return self._as_dict(*self.read_row("a", aid), asset=True)

    def read_venue(self, vid: int) -> dict | None:
        """Latest coverage figures of venue id ``vid`` (``COVERAGE_COLUMNS`` names), None if never written."""
        r, updated_ns = self.read_row("v", vid)
        if not updated_ns:
            return None
        out = {name: float(r[k]) for name, k in C.COVERAGE_COLUMNS.items()}
        out.update(ts=int(out["ts"]), updated_ns=updated_ns, capped=bool(out["capped"]),
                   liquidations_available=bool(out["liquidations_available"]))
        return out

    def coverage(self) -> dict[str, dict]:
        """Venue name -> :meth:`read_venue` for every venue with coverage written."""
        from .record import VENUE_NAMES
        out = {}
        for vid in range(C.VENUE_ROWS):
            row = self.read_venue(vid)
            if row is not None:
                out[VENUE_NAMES.get(vid, str(vid))] = row
        return out

    def _as_dict(self, r: np.ndarray, updated_ns: int, asset: bool) -> dict:
        nvel, nvol = int(self._hdr[_W_N_VEL]), int(self._hdr[_W_N_VOL])
        vel_s = self._hdr_f[_VEL_AT:_VEL_AT + nvel]
        vol_s = self._hdr_f[_VOL_AT:_VOL_AT + nvol].tolist()
        vel_s = vel_s.tolist()
        r = r.tolist()

        def sums(at: int) -> dict:
            return {"long_n": r[at], "short_n": r[at + 1], "long_usd": r[at + 2], "short_usd": r[at + 3]}

        out = {
            "updated_ns": updated_ns, "ts": int(r[C.NOW_TS]), "price": r[C.PRICE],
            "last_trade_ts": int(r[C.LAST_TRADE_TS]), "mark": r[C.MARK], "funding": r[C.FUNDING],
            # funding: an instrument's raw rate as its venue quotes it (its own interval); an asset's, the funding
            # detector's mean of its venues' rates per common interval (0 while that detector is off).
            # funding detector: predicted (coming settlement) and settled ("current") rates, NaN until known
            "funding_predicted": r[C.FUNDING_LEVEL], "funding_settled": r[C.FUNDING_SETTLED],
            "funding_spread": r[C.FUNDING_SPREAD],
            "oi": r[C.OI], "oi_usd": r[C.OI_USD],
            **{f"liq_{w}": sums(c) for w, c in C.LIQ_WINDOW_COLUMNS.items()},
            "liq_cascade_window": sums(C.CASCADE_SUMS),
            "velocity_n_s": {f"{w:g}s": r[C.VEL_N + k] for k, w in enumerate(vel_s)},
            "velocity_usd_s": {f"{w:g}s": r[C.VEL_USD + k] for k, w in enumerate(vel_s)},
            "acceleration_usd_s2": r[C.ACCEL_HEAD],
            "realized_vol": {f"{w:g}s": r[C.RV + k] for k, w in enumerate(vol_s)},
            "regime": REGIMES[int(r[C.REGIME])] if updated_ns else "",
            "last_liquidation_ts": int(r[C.LAST_LIQ_TS]),
        }
        if asset:
            out.update(score=r[C.SCORE], level=LEVELS[int(r[C.LEVEL])], last_signal_ts=int(r[C.LAST_SIGNAL_TS]),
                       factors={**{k: r[c] for k, c in C.FACTOR_COLUMNS.items()}, "burst": r[C.F_BURST],
                                "regime": r[C.F_REGIME]},
                       heat=r[C.HEAT], whale_24h=sums(C.WHALE_DAY))
        else:
            out.update(index=r[C.INDEX], bid=r[C.BID], bid_size=r[C.BID_SIZE], ask=r[C.ASK],
                       ask_size=r[C.ASK_SIZE])
        return out
