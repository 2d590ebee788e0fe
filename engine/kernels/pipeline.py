"""The compute loop's fused kernel: one pass over a ring batch feeding every detector.

Per record of an owned asset (``owned[asset]``), in stream order:

* the stream clock (largest record time seen) advances; each time it enters
  a new 250 ms bucket, every live key is refreshed (velocity decays without
  new events) and every live asset's cascade level is re-evaluated;
* trades update prices and realized vol (:mod:`volatility`), regime changes
  become events;
* liquidations update the window sums and velocity (:mod:`velocity`) per
  instrument and asset, the asset's heat (:mod:`hawkes`) and size samples, and
  re-score the asset's cascade (:mod:`cascade`), level changes become events;
* trades of the market asset (``cas_params[P_MARKET]``, BTC) feed its realized
  vol even in a worker that does not own it: every worker scales its cascade
  scores by the market regime;
* book tops, marks and open interest land in their columns.

Level and regime changes are found per record, so they do not depend on how
records were batched. Each event carries a copy of the asset row at that
moment, so the signal built from it shows what triggered it.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from . import columns as C
from .cascade import P_MARKET, P_TAU_S, evaluate, market_mult, refresh_heat
from .hawkes import excite
from .velocity import BUCKET_NS, add_liquidation, refresh_row
from .volatility import on_trade, refresh_asset, refresh_instrument
from .windows import record_ts, sample_add
from ..record import Flag

__all__ = ["EVENT_DTYPE", "EV_LEVEL", "EV_REGIME", "ON_RINGS", "ON_VELOCITY", "ON_VOLATILITY", "ON_CASCADE",
           "DONE", "EVENTS_FULL", "UNKNOWN_INSTRUMENT", "process_batch"]

EVENT_DTYPE = np.dtype([
    ("kind", np.uint8), ("prev", np.int8), ("new", np.int8),
    ("asset", np.int32), ("instrument", np.int32), ("rec", np.int32),
    ("ts", np.int64), ("ts_exchange", np.int64), ("ts_recv", np.int64),
    ("row", np.float64, (C.NCOL,)),
])
EV_LEVEL, EV_REGIME = 1, 2
ON_RINGS, ON_VELOCITY, ON_VOLATILITY, ON_CASCADE = 0, 1, 2, 3
DONE, EVENTS_FULL, UNKNOWN_INSTRUMENT = 0, 1, 2

TRADE, LIQUIDATION, BOOK_TOP, MARK, OPEN_INTEREST = 1, 2, 3, 4, 5
CAPPED = int(Flag.CAPPED)   # a plain int global: numba freezes it as a constant


@njit(cache=True, inline="always")
def _emit(events, n, kind, prev, new, a, iid, i, ts, rec, row):
    ev = events[n]
    ev["kind"] = kind
    ev["prev"] = prev
    ev["new"] = new
    ev["asset"] = a
    ev["instrument"] = iid
    ev["rec"] = i
    ev["ts"] = ts
    ev["ts_exchange"] = rec["ts_exchange"]
    ev["ts_recv"] = rec["ts_recv"]
    ev["row"][:] = row
    return n + 1


@njit(cache=True)
def _refresh_velocity(rings, key, now, widths, slots, windows_s, scratch, row, velocity_on):
    refresh_row(rings, key, now, widths, slots, windows_s, scratch, row)
    if not velocity_on:
        row[C.VEL_N:C.RV] = 0.0


@njit(cache=True)
def process_batch(records, start, inst_asset, owned, asset_ptr, asset_inst, single_usd, whale_usd,
                  inst_rings, asset_rings, widths, slots, vel_windows,
                  vol_state, vol_windows, bounds, multipliers, cas_params, hawkes, samples,
                  on, clock, inst_rows, asset_rows, scratch, events, liqs):
    """Process ``records[start:]``; return (next record, events written, status).

    ``single_usd`` / ``whale_usd``: per asset, the single-liquidation and whale
    thresholds in force (the caller updates them in place from the profiles).

    The index of every liquidation of an owned asset is appended to ``liqs``
    (``liqs[0]`` holds the count; the caller resets it per batch), so the
    caller publishes them without scanning the batch again.

    Status ``EVENTS_FULL``: drain ``events`` and call again from the next
    record; ``UNKNOWN_INSTRUMENT``: refresh the registry (or skip that record)
    and call again.
    """
    n_inst = inst_asset.shape[0]
    n_assets = asset_rows.shape[0]
    nvol = vol_windows.shape[0]
    vel_on = on[ON_VELOCITY] != 0
    market = int(cas_params[P_MARKET])
    tau_ns = cas_params[P_TAU_S] * 1e9
    n_ev = 0
    for i in range(start, records.shape[0]):
        if n_ev + 2 + n_assets > events.shape[0]:
            return i, n_ev, EVENTS_FULL
        rec = records[i]
        iid = rec["instrument"]
        if iid >= n_inst:
            return i, n_ev, UNKNOWN_INSTRUMENT
        a = inst_asset[iid]
        if not owned[a]:
            if a == market and rec["kind"] == TRADE and on[ON_VOLATILITY]:
                if on_trade(vol_state, iid, record_ts(rec), rec["price"]):
                    refresh_instrument(vol_state, iid, vol_windows, scratch, inst_rows[iid])
                    refresh_asset(asset_ptr, asset_inst, inst_rows, a, nvol, bounds, multipliers, asset_rows[a])
            continue
        ts = record_ts(rec)
        if ts > clock[0]:
            swept = clock[0] // BUCKET_NS
            clock[0] = ts
            if ts // BUCKET_NS > swept and on[ON_RINGS]:
                for k in range(n_inst):
                    r = inst_rows[k]
                    if owned[inst_asset[k]] and r[C.DAY_SUMS + C.N_LONG] + r[C.DAY_SUMS + C.N_SHORT] > 0:
                        _refresh_velocity(inst_rings, k, ts, widths, slots, vel_windows, scratch, r, vel_on)
                for b in range(n_assets):
                    r = asset_rows[b]
                    if not owned[b] or (r[C.DAY_SUMS + C.N_LONG] + r[C.DAY_SUMS + C.N_SHORT] == 0
                                        and r[C.LEVEL] == 0):
                        continue
                    _refresh_velocity(asset_rings, b, ts, widths, slots, vel_windows, scratch, r, vel_on)
                    refresh_heat(hawkes, b, ts, r, cas_params)
                    if on[ON_CASCADE]:
                        prev = evaluate(r, single_usd[b], market_mult(asset_rows, r, cas_params), cas_params)
                        if prev != r[C.LEVEL]:
                            n_ev = _emit(events, n_ev, EV_LEVEL, prev, r[C.LEVEL], b, -1, i, ts, rec, r)
        now = clock[0]
        irow = inst_rows[iid]
        arow = asset_rows[a]
        irow[C.NOW_TS] = now
        kind = rec["kind"]
        if kind == TRADE:
            price = rec["price"]
            irow[C.PRICE] = price
            irow[C.LAST_TRADE_TS] = ts
            sample_add(samples, a, 0, rec["notional"])
            arow[C.PRICE] = price
            arow[C.LAST_TRADE_TS] = ts
            if on[ON_VOLATILITY] and on_trade(vol_state, iid, ts, price):
                refresh_instrument(vol_state, iid, vol_windows, scratch, irow)
                prev = refresh_asset(asset_ptr, asset_inst, inst_rows, a, nvol, bounds, multipliers, arow)
                if prev != arow[C.REGIME]:
                    n_ev = _emit(events, n_ev, EV_REGIME, prev, arow[C.REGIME], a, iid, i, now, rec, arow)
        elif kind == LIQUIDATION:
            n_liq = liqs[0] + 1
            if n_liq < liqs.shape[0]:
                liqs[n_liq] = i
                liqs[0] = n_liq
            irow[C.LAST_LIQ_TS] = ts
            arow[C.LAST_LIQ_TS] = ts
            usd = rec["notional"]
            if rec["flags"] & CAPPED:
                irow[C.LAST_CAPPED_TS] = ts
                arow[C.LAST_CAPPED_TS] = ts
            sample_add(samples, a, 1, usd)
            excite(hawkes, a, ts, tau_ns)
            if on[ON_RINGS]:
                whale = usd >= whale_usd[a]
                add_liquidation(inst_rings, iid, ts, rec["side"], usd, whale)
                add_liquidation(asset_rings, a, ts, rec["side"], usd, whale)
                _refresh_velocity(inst_rings, iid, now, widths, slots, vel_windows, scratch, irow, vel_on)
                _refresh_velocity(asset_rings, a, now, widths, slots, vel_windows, scratch, arow, vel_on)
            refresh_heat(hawkes, a, now, arow, cas_params)
            if on[ON_CASCADE]:
                prev = evaluate(arow, single_usd[a], market_mult(asset_rows, arow, cas_params), cas_params)
                if prev != arow[C.LEVEL]:
                    n_ev = _emit(events, n_ev, EV_LEVEL, prev, arow[C.LEVEL], a, iid, i, now, rec, arow)
        elif kind == BOOK_TOP:
            irow[C.BID] = rec["price"]
            irow[C.BID_SIZE] = rec["qty"]
            irow[C.ASK] = rec["aux"]
            irow[C.ASK_SIZE] = rec["aux2"]
        elif kind == MARK:
            irow[C.MARK] = rec["price"]
            irow[C.INDEX] = rec["qty"]
            irow[C.FUNDING] = rec["aux"]
            arow[C.MARK] = rec["price"]
            # the asset's FUNDING is the funding detector's mean per common interval, not this venue's raw rate
        elif kind == OPEN_INTEREST:
            arow[C.OI] += rec["qty"] - irow[C.OI]
            arow[C.OI_USD] += rec["notional"] - irow[C.OI_USD]
            irow[C.OI] = rec["qty"]
            irow[C.OI_USD] = rec["notional"]
        arow[C.NOW_TS] = now
    return records.shape[0], n_ev, DONE
