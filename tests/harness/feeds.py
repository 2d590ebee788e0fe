"""Feed-actor tests: the config a feed actor runs on, and the actor in a spawned process as the supervisor runs it."""
from __future__ import annotations

import multiprocessing
import shutil
from pathlib import Path

from engine.instruments import Registry, registry_segment
from engine.ring import Ring, ring_segment
from tests.harness.toml import toml_table

RING_CAPACITY = 65536
MAX_INSTRUMENTS = 64
MAX_ASSETS = 32
MARGIN_OI_OFF = toml_table("margin_oi", enabled=False)
BINANCE_OFF = toml_table("venues.binance", enabled=False)     # on by default


def feed_config(namespace: str, run: str | Path, venue: str, ws_urls: dict, rest_url: str, sections: str = "",
                **venue_keys) -> str:
    """An engine sized as ``open_ring`` and ``open_registry`` make the segments, ``[venues.<venue>]`` with its
    endpoints and ``venue_keys``, then ``sections``."""
    return "\n".join([
        toml_table("engine", namespace=namespace, run_dir=str(run), ring_capacity=RING_CAPACITY,
                   max_instruments=MAX_INSTRUMENTS, max_assets=MAX_ASSETS),
        toml_table(f"venues.{venue}", ws_urls=ws_urls, rest_url=rest_url, **venue_keys), sections])


def open_ring(namespace: str, venue: str) -> Ring:
    """The venue's ring, created as the supervisor creates it."""
    return Ring.open(ring_segment(namespace, venue), RING_CAPACITY)


def open_registry(namespace: str) -> Registry:
    """The instrument registry all feeds share, created as the supervisor creates it."""
    return Registry.open(registry_segment(namespace), MAX_INSTRUMENTS, MAX_ASSETS)


def _run_feed(text: str, venue: str) -> None:
    from actors.feed import FeedActor
    from engine.config import loads
    raise SystemExit(FeedActor(loads(text), venue).start())


def spawn_feed(text: str, venue: str, start: bool = True) -> multiprocessing.Process:
    """The feed actor for ``venue`` on config ``text`` in a spawned daemon process (started unless ``start`` is
    False); the caller stops it."""
    proc = multiprocessing.get_context("spawn").Process(target=_run_feed, args=(text, venue), daemon=True)
    if start:
        proc.start()
    return proc


def stop_feed(proc: multiprocessing.Process, *segments, run: str | Path | None = None) -> None:
    """SIGTERM the spawned feed (its stop path) and wait for it; close the test's ``segments`` (ring, registry,
    ...) and remove its ``run`` directory. The caller checks ``proc.exitcode``."""
    proc.terminate()
    proc.join(15)
    for obj in segments:
        obj.close()
    if run is not None:
        shutil.rmtree(run, ignore_errors=True)
