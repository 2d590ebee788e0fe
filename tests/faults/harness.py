"""Seeds, fault schedules and figures shared by the fault tests.

Every fault test draws its randomness from :func:`rng` (seeded by the test's
own name and ``UNDERTOW_FAULT_SEED``, default 7) and builds its fault list
with :func:`schedule`, so a failing run replays exactly: the assertion
message carries the seed, and ``UNDERTOW_FAULT_SEED=<seed> pytest <test>``
repeats the same faults in the same order.

Each test reports its figure through :func:`figure`: printed (see it with
``-s``) and appended as one JSON line to ``$UNDERTOW_FAULT_FIGURES`` when
set; ``bench/fault_figures.py`` runs the suite and prints them all.
"""
from __future__ import annotations

import json
import math
import os
import random
import zlib
from dataclasses import dataclass, field
from typing import Any, Sequence

__all__ = ["BASE_SEED", "rng", "Fault", "schedule", "figure", "percentile", "scaled", "replay_hint"]

BASE_SEED = int(os.environ.get("UNDERTOW_FAULT_SEED", "7"))


def rng(name: str) -> random.Random:
    """A generator seeded from ``name`` and the base seed: independent per test, stable across runs."""
    return random.Random(BASE_SEED * 1_000_003 + zlib.crc32(name.encode()))


@dataclass(frozen=True)
class Fault:
    """One scheduled fault: what, where, when (seconds from the start) and its parameters."""

    at_s: float
    action: str
    target: str = ""
    params: dict = field(default_factory=dict)

    def __str__(self) -> str:
        extra = "".join(f" {k}={v}" for k, v in self.params.items())
        return f"t+{self.at_s:.3f}s {self.action} {self.target}{extra}".rstrip()


def schedule(name: str, n: int, actions: Sequence[str], targets: Sequence[str] = ("",),
             spacing_s: tuple[float, float] = (0.0, 0.0)) -> list[Fault]:
    """``n`` faults chosen at random from ``actions`` x ``targets``, spaced by a uniform draw in ``spacing_s``."""
    r = rng(name + "/schedule")
    t = 0.0
    out = []
    for _ in range(n):
        t += r.uniform(*spacing_s)
        out.append(Fault(round(t, 6), r.choice(list(actions)), r.choice(list(targets))))
    return out


def scaled(default: int, heavy: int, heavy_run: bool) -> int:
    """The count for this run: ``default`` in the ``fault`` subset, ``heavy`` behind ``fault_heavy``."""
    return heavy if heavy_run else default


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100) of a non-empty sequence."""
    s = sorted(values)
    k = max(0, min(len(s) - 1, math.ceil(q / 100.0 * len(s)) - 1))
    return s[k]


def figure(name: str, seed_name: str, **values: Any) -> dict:
    """Print one figure and append it to ``$UNDERTOW_FAULT_FIGURES`` (JSON lines)."""
    rec = {"figure": name, "seed": BASE_SEED, "test": seed_name, **values}
    print("FIGURE " + json.dumps(rec, sort_keys=True))
    path = os.environ.get("UNDERTOW_FAULT_FIGURES")
    if path:
        with open(path, "a") as f:
            f.write(json.dumps(rec, sort_keys=True) + "\n")
    return rec


def replay_hint(name: str) -> str:
    """What to put in an assertion message so the failure can be replayed."""
    return f"replay: UNDERTOW_FAULT_SEED={BASE_SEED} pytest -k {name.split('/')[0]}"
