"""Compile (or load from the cache) every numba kernel the compute actor uses, before it is timed.

A cold numba cache costs about half a minute of compilation on a 2-core machine the first time
the compute actor sees each record kind; a supervised actor must not spend that inside its
start-up allowance, and tests must not spend it inside their timeouts. :func:`compile_kernels`
drives a real :class:`~actors.compute.ComputeActor` in-process, on a private namespace, through
batches of every record kind and its plug-in detectors. The compute actor calls :func:`ensure_compiled`
from its ``warm_up()`` hook (its start-up beats go on meanwhile, so the supervisor waits for it),
so its event loop never compiles; ``python -m engine.warmup`` (``scripts/test`` and
``scripts/install.sh``) fills the on-disk cache ahead of time. A completed run leaves a stamp in
the numba cache directory, keyed by the kernels' sources and numba's version: with it a (re)start
skips the harness and loads each kernel from the cache on first use (milliseconds each), which
keeps a restart an attach.
"""
from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Iterator

import msgspec

from engine import shm
from engine.config import Config, VenuesConfig
from engine.instruments import Registry, registry_segment
from engine.record import Kind, Side, Venue
from engine.ring import Ring, ring_segment

__all__ = ["compute_harness", "mixed_batch", "compile_kernels", "ensure_compiled", "main"]

log = logging.getLogger("undertow.warmup")

SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT")
_compiled = False   # compile_kernels() already ran in this process


@contextlib.contextmanager
def compute_harness(ring_capacity: int = 65536, namespace: str = "") -> Iterator[tuple]:
    """A set-up ComputeActor reading one Binance ring: yields ``(actor, ring, instrument ids)``; cleans up.

    With ``namespace`` its shared memory lives inside that namespace (``<namespace>-warmup<pid>``), so the
    supervisor's sweep removes it when the process is killed before cleaning up.
    """
    from actors.compute import ComputeActor
    ns = f"{namespace}-warmup{os.getpid()}" if namespace else "wu" + uuid.uuid4().hex[:8]
    run = tempfile.mkdtemp(prefix="ut-warm-")
    cfg = msgspec.convert({
        "engine": {"namespace": ns, "run_dir": run, "ring_capacity": ring_capacity},
        "bus": {"endpoint": f"ipc://{run}/bus.sock"},
        "venues": {v: {"enabled": False} for v in VenuesConfig.__struct_fields__} | {"binance": {"symbols": list(SYMBOLS)}},
        "profiles": {"bootstrap_rest": False},   # no REST calls from a harness
    }, Config)
    reg = Registry.open(registry_segment(ns), cfg.engine.max_instruments, cfg.engine.max_assets)
    ids = [reg.add(Venue.BINANCE, s, s[:-4]) for s in SYMBOLS]
    ring = Ring.open(ring_segment(ns, "binance"), cfg.engine.ring_capacity)
    actor = ComputeActor(cfg, 0)
    try:
        actor.setup()
        yield actor, ring, ids
    finally:
        actor.teardown()
        ring.close()
        reg.close()
        shm.sweep(ns)
        shutil.rmtree(run, ignore_errors=True)


def mixed_batch(ids: list[int], t_ns: int, price: float = 60000.0) -> list[tuple]:
    """One record of every market kind per instrument (trade both sides, liquidation, book, mark, OI)."""
    recs = []
    for k, iid in enumerate(ids):
        t = t_ns + k * 1_000_000
        p = price / (k + 1)
        recs += [
            (Kind.TRADE, Venue.BINANCE, Side.BUY, 0, iid, t, t, p, 0.01, p * 0.01, float(t % 1_000_000 + 1), 1.0),
            (Kind.TRADE, Venue.BINANCE, Side.SELL, 0, iid, t + 1, t + 1, p, 0.02, p * 0.02, float(t % 1_000_000 + 2), 1.0),
            (Kind.LIQUIDATION, Venue.BINANCE, Side.LONG, 0, iid, t + 2, t + 2, p, 0.5, p * 0.5, p, 0.0),
            (Kind.BOOK_TOP, Venue.BINANCE, 0, 0, iid, t + 3, t + 3, p * 0.9999, 1.0, p * 2.0, p * 1.0001, 1.0),
            (Kind.MARK, Venue.BINANCE, 0, 0, iid, t + 4, t + 4, p, p, 0.0, 0.0001, float(t // 1_000_000 + 3_600_000)),
            (Kind.OPEN_INTEREST, Venue.BINANCE, 0, 0, iid, t + 5, t + 5, p, 1000.0, 1000.0 * p, 0.0, 0.0),
            (Kind.BOOK_DEPTH, Venue.BINANCE, 0, 0, iid, t + 6, t + 6, p, 0.01, 2e6, 1e6, 1e6),
        ]
    return recs


def compile_kernels(namespace: str = "") -> float:
    """Compile (or load from the cache) every kernel the compute actor runs; seconds taken (0 when done before).

    ``namespace``: the caller's, to hold the harness's shared memory (see :func:`compute_harness`).
    """
    global _compiled
    if _compiled:
        return 0.0
    t0 = time.monotonic()
    with compute_harness(namespace=namespace) as (actor, ring, ids):
        reader = actor.readers[0]
        t = time.time_ns()
        for step in range(3):           # a few batches: windows roll, levels and regimes get evaluated
            ring.write_many(mixed_batch(ids, t + step * 300_000_000))
            recs, _ = reader.poll()
            actor.process(recs)
    _compiled = True
    stamp = _stamp()
    if stamp is not None:
        try:
            stamp.parent.mkdir(parents=True, exist_ok=True)
            stamp.touch()
        except OSError as exc:   # a read-only cache: every start compiles (or loads) in warm_up
            log.warning("cannot stamp the numba cache as warm: %s", exc)
    return time.monotonic() - t0


def _stamp() -> Path | None:
    """The file that says this numba cache holds every kernel of these sources; None without a cache dir."""
    import numba

    import engine
    cache = os.environ.get("NUMBA_CACHE_DIR")
    if not cache:
        return None
    digest = os.path.basename(engine._numba_cache_dir())   # the kernels' sources, whatever the base
    return Path(cache) / f"warmed-{digest}-numba{numba.__version__}"


def ensure_compiled(namespace: str = "") -> float | None:
    """:func:`compile_kernels` unless the cache is stamped warm; seconds taken, or None when skipped."""
    stamp = _stamp()
    if stamp is not None and stamp.exists():
        return None
    return compile_kernels(namespace)


def main() -> int:
    print(f"numba kernels ready in {compile_kernels():.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
