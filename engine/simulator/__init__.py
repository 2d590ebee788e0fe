"""Local exchange simulator: a synthetic market (or capture replay) served over real venue protocols.

Layout: ``market`` (venue-agnostic synthetic market), ``mechanics`` (the mechanistic market: cascades
from leveraged positions, ``population`` and ``regimes`` beside it), ``server`` (WebSocket/REST
core, lifecycle, faults), one module per venue (``binance``), ``replay``
(captures), ``runner`` (``Simulator``, ``run``, ``start_in_thread``).
"""
from .mechanics import REGIMES, MechanisticMarket
from .runner import Simulator, SimulatorHandle, run, start_in_thread

__all__ = ["Simulator", "SimulatorHandle", "run", "start_in_thread", "MechanisticMarket", "REGIMES"]
