"""Undertow engine library: records, rings, instruments, config, bus, kernels, simulator."""
__version__ = "0.1.0"
