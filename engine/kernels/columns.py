"""Column layout of the per-instrument and per-asset metric rows the kernels fill.

One float64 row per key (instrument id or asset id). The same layout serves
both; cascade columns stay zero on instrument rows. The state table copies
these rows verbatim, so this module is the single source of the layout.
"""
from __future__ import annotations

__all__ = ["MAX_WINDOWS", "NCOL", "COLUMNS", "LIQ_CHANNELS"]

MAX_WINDOWS = 8   # velocity and volatility windows each (config lists are shorter)

# liquidation channels of the window sums
N_LONG, N_SHORT, USD_LONG, USD_SHORT = 0, 1, 2, 3
LIQ_CHANNELS = 4

NOW_TS = 0          # stream time (ns) of the last update of this row
PRICE = 1           # last trade price
LAST_TRADE_TS = 2
MARK = 3
INDEX = 4
FUNDING = 5
OI = 6              # open interest, base units
OI_USD = 7
BID = 8
BID_SIZE = 9
ASK = 10
ASK_SIZE = 11
CASCADE_SUMS = 12   # 4 channels over the cascade window
MINUTE_SUMS = 16    # 4 channels over 1 min
HOUR_SUMS = 20      # 4 channels over 1 h
VEL_N = 24          # events/s per velocity window
VEL_USD = VEL_N + MAX_WINDOWS          # USD/s per velocity window
ACCEL = VEL_USD + MAX_WINDOWS          # USD/s^2 between window k and k+1
ACCEL_HEAD = ACCEL + MAX_WINDOWS       # the acceleration the cascade score uses
RV = ACCEL_HEAD + 1                    # annualised realized vol per volatility window
RV_OBS = RV + MAX_WINDOWS              # 1 s returns observed in the longest window
REGIME = RV_OBS + 1                    # 0 dormant .. 4 extreme
REGIME_MULT = REGIME + 1
SCORE = REGIME_MULT + 1
LEVEL = SCORE + 1                      # 0 NONE .. 3 CRITICAL
F_COUNT = LEVEL + 1                    # score contributions
F_VELOCITY = F_COUNT + 1
F_ACCEL = F_VELOCITY + 1
F_REGIME = F_ACCEL + 1
LAST_LIQ_TS = F_REGIME + 1
LAST_SIGNAL_TS = LAST_LIQ_TS + 1      # written by the compute actor when it publishes for the key
NCOL = LAST_SIGNAL_TS + 1

#: name -> column, for readers that want a dict
COLUMNS = {
    name: value for name, value in dict(globals()).items()
    if name.isupper() and isinstance(value, int) and name not in ("MAX_WINDOWS", "NCOL", "LIQ_CHANNELS")
    and not name.startswith(("N_", "USD_"))
}
