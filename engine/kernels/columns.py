"""Column layout of the per-instrument and per-asset metric rows the kernels fill.

One float64 row per key (instrument id or asset id). The same layout serves
both; cascade columns stay zero on instrument rows. The state table copies
these rows verbatim, so this module is the single source of the layout.
"""
from __future__ import annotations

__all__ = ["MAX_WINDOWS", "NCOL", "COLUMNS", "LIQ_CHANNELS", "FACTOR_COLUMNS", "LIQ_WINDOW_COLUMNS", "VENUE_ROWS",
           "COVERAGE_COLUMNS"]

MAX_WINDOWS = 8   # velocity and volatility windows each (config lists are shorter)

# liquidation channels of the window sums
N_LONG, N_SHORT, USD_LONG, USD_SHORT = 0, 1, 2, 3
LIQ_CHANNELS = 4
DAY_CHANNELS = 8     # the 24 h ring adds the same 4 channels for whale-or-larger liquidations

NOW_TS = 0          # stream time (ns) of the last update of this row
PRICE = 1           # last trade price
LAST_TRADE_TS = 2
MARK = 3
INDEX = 4
FUNDING = 5          # instrument rows: the venue's raw rate; asset rows: the funding detector's mean per common interval
OI = 6              # open interest, base units
OI_USD = 7
BID = 8
BID_SIZE = 9
ASK = 10
ASK_SIZE = 11
CASCADE_SUMS = 12   # 4 channels over the cascade window
MINUTE_SUMS = 16    # 4 channels over 1 min
HOUR_SUMS = 20      # 4 channels over 1 h
M5_SUMS = 24        # 4 channels over 5 min (1 min buckets)
M15_SUMS = 28       # 4 channels over 15 min
H4_SUMS = 32        # 4 channels over 4 h (15 min buckets)
DAY_SUMS = 36       # 4 channels over 24 h
WHALE_DAY = 40      # 4 channels over 24 h, whale-or-larger liquidations only
VEL_N = 44          # events/s per velocity window
VEL_USD = VEL_N + MAX_WINDOWS          # USD/s per velocity window
ACCEL = VEL_USD + MAX_WINDOWS          # USD/s^2 between window k and k+1
ACCEL_HEAD = ACCEL + MAX_WINDOWS       # the acceleration the cascade score uses
RV = ACCEL_HEAD + 1                    # annualised realized vol per volatility window
RV_OBS = RV + MAX_WINDOWS              # 1 s returns observed in the longest window
REGIME = RV_OBS + 1                    # 0 dormant .. 4 extreme
REGIME_MULT = REGIME + 1
HEAT = REGIME_MULT + 1                 # self-excitation of liquidation arrivals, 0..1 (kernels/hawkes.py)
INTENSITY = HEAT + 1                   # recent liquidation arrivals/s behind the heat
X_VOLUME = INTENSITY + 1               # inputs 0..1 from the volume / OI / funding detectors' factors()
X_OI = X_VOLUME + 1
X_FUNDING = X_OI + 1
SCORE = X_FUNDING + 1
LEVEL = SCORE + 1                      # 0 NONE .. 3 CRITICAL
F_VELOCITY = LEVEL + 1                 # score contributions (points of the 0-10 score)
F_ACCEL = F_VELOCITY + 1
F_VOLUME = F_ACCEL + 1
F_OI = F_VOLUME + 1
F_FUNDING = F_OI + 1
F_VOLATILITY = F_FUNDING + 1
F_BURST = F_VOLATILITY + 1             # what the burst boost added (velocity and acceleration both high)
F_REGIME = F_BURST + 1                 # what the market regime multiplier added (negative when calm)
LAST_LIQ_TS = F_REGIME + 1
LAST_CAPPED_TS = LAST_LIQ_TS + 1       # last liquidation from a sampled (capped) stream
LAST_SIGNAL_TS = LAST_CAPPED_TS + 1    # written by the compute actor when it publishes for the key
# written by the funding detector (NaN until known); instrument rows per the venue's interval except
# FUNDING_LEVEL, asset rows per the common interval (detectors.funding.common_interval_h), mean across venues
FUNDING_SETTLED = LAST_SIGNAL_TS + 1   # the rate that applied at the last settlement ("current")
FUNDING_LEVEL = FUNDING_SETTLED + 1    # the rate for the coming settlement ("predicted") per common interval
FUNDING_SPREAD = FUNDING_LEVEL + 1     # predicted - current per common interval
# leading cascade factors (inputs 0..1 from the zones / book detectors' factors(), and their score contributions)
X_FUEL = FUNDING_SPREAD + 1            # proximity to the nearest modelled zone x its fuel-to-liquidity
X_THINNING = X_FUEL + 1                # book depth below its baseline
F_FUEL = X_THINNING + 1
F_THINNING = F_FUEL + 1
NCOL = F_THINNING + 1

# Venue rows of the state table (one per venue id, written by compute worker 0 with each coverage
# signal, engine/coverage.py): their own small layout in the same row width.
VENUE_ROWS = 32
COVERAGE_COLUMNS = {name: k for k, name in enumerate((
    "ts", "connected_share", "frames", "events", "malformed", "unknown", "gaps", "book_resyncs", "reconnects",
    "liquidations", "liquidations_available", "capped", "saturated_slots", "saturation_share", "missed_low",
    "missed_high"))}
assert len(COVERAGE_COLUMNS) <= NCOL

#: factor name -> score-contribution column, in the order of the cascade weights
FACTOR_COLUMNS = {"velocity": F_VELOCITY, "acceleration": F_ACCEL, "volume": F_VOLUME, "oi": F_OI,
                  "funding": F_FUNDING, "volatility": F_VOLATILITY, "fuel": F_FUEL, "depth_thinning": F_THINNING}
#: liquidation window label -> its 4-channel sums column
LIQ_WINDOW_COLUMNS = {"1m": MINUTE_SUMS, "5m": M5_SUMS, "15m": M15_SUMS, "1h": HOUR_SUMS, "4h": H4_SUMS,
                      "24h": DAY_SUMS}

#: name -> column, for readers that want a dict
COLUMNS = {
    name: value for name, value in dict(globals()).items()
    if name.isupper() and isinstance(value, int)
    and name not in ("MAX_WINDOWS", "NCOL", "LIQ_CHANNELS", "DAY_CHANNELS", "VENUE_ROWS")
    and not name.startswith(("N_", "USD_"))
}
