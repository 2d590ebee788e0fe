"""Backtest: Undertow's own accuracy, measured on simulated scenarios and real liquidation series.

* :mod:`.offline`: scenarios and real series as the parsed venue records the engine would receive;
* :mod:`.pipeline`: the live compute actor run in-process over them, collecting its signals;
* :mod:`.labels`: cascades labelled from liquidation USD per minute against the asset's normal minute;
* :mod:`.metrics`: recall / precision per level, lead time, false alarms, zone precision (Wilson bound);
* :mod:`.report`: markdown, PNG plots and the JSON summary; :mod:`.run`: ``undertow backtest``.
"""
