"""The warm-up harness drives a real compute actor through every record kind and its plug-in detectors."""
from __future__ import annotations

import time

import pytest

from engine.warmup import compute_harness, main, mixed_batch

pytestmark = pytest.mark.process


def test_every_record_kind_goes_through_the_compute_actor_and_its_detectors():
    with compute_harness() as (actor, ring, ids):
        batch = mixed_batch(ids, time.time_ns())
        ring.write_many(batch)
        recs, lost = actor.readers[0].poll()
        assert len(recs) == len(batch) and lost == 0
        actor.process_critical(recs)
        assert actor.stats["records"] == len(batch) and actor.stats["sig_liquidation"] == len(ids)
        assert actor.detectors
        actor.run_detectors(recs)      # every plug-in detector over every record kind, without an error


def test_main_succeeds():
    assert main() == 0
