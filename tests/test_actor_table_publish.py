"""Actor-table counters are published whole: a concurrent reader never sees a half-named or mixed publish."""
from __future__ import annotations

import multiprocessing
import os
import time

import pytest

from engine.actor_table import ActorTable, actor_table_segment

pytestmark = pytest.mark.process

NAMES = [f"counter_{i:02d}" for i in range(40)]
ROWS = 20


def _writer(namespace: str, run_s: float) -> None:
    """Claim fresh rows and publish all NAMES at once, then republish them with a new shared value."""
    table = ActorTable.open(actor_table_segment(namespace))
    deadline = time.monotonic() + run_s
    n = 0
    while time.monotonic() < deadline:
        row = table.row(f"w:{n % ROWS}", pid=os.getpid())
        # a fresh row's first publish names 40 counters; later publishes add one name each
        extra = {f"late_{n // ROWS}": float(n)} if n >= ROWS else {}
        row.update({k: float(n) for k in NAMES} | extra)
        row.update({k: float(n) + 0.5 for k in NAMES})
        n += 1
    table.close()


def test_a_concurrent_reader_never_sees_a_half_named_or_mixed_publish(namespace):
    table = ActorTable.open(actor_table_segment(namespace))
    proc = multiprocessing.get_context("fork").Process(target=_writer, args=(namespace, 2.0))
    proc.start()
    reads = named = 0
    try:
        deadline = time.monotonic() + 10
        while proc.is_alive() and time.monotonic() < deadline:
            for r in table.snapshot():
                c = r["counters"]
                reads += 1
                if not c:
                    continue        # claimed, nothing published yet
                named += 1
                missing = [k for k in NAMES if k not in c]
                assert not missing, f"{r['name']} read half-named: {len(missing)} of {len(NAMES)} names missing"
                assert len({c[k] for k in NAMES}) == 1, f"{r['name']} read a mix of two publishes"
        proc.join(10)
        assert proc.exitcode == 0
    finally:
        if proc.is_alive():
            proc.kill()
        table.close()
    assert named > 100, f"only {named} published rows read in {reads} reads: the test did not exercise the race"


def test_a_writer_that_died_mid_publish_leaves_a_row_the_next_owner_can_use(namespace):
    table = ActorTable.open(actor_table_segment(namespace))
    try:
        row = table.row("compute:0", pid=os.getpid())
        row.update({"records": 5.0})
        row._seq += 1                                   # a publish begins ...
        row._row["counter_names"] = b'["records", "lo'  # ... and its writer is SIGKILLed mid-write
        assert table.snapshot()[0]["counters"] == {}    # reported empty after READ_RETRY_S, not torn
        again = table.row("compute:0", pid=os.getpid())  # the restarted actor claims its row
        again.update({"records": 7.0, "lost": 1.0})
        assert table.snapshot()[0]["counters"] == {"records": 7.0, "lost": 1.0}
    finally:
        table.close()


def test_a_restarted_actor_does_not_show_its_predecessors_counters(namespace):
    table = ActorTable.open(actor_table_segment(namespace))
    try:
        table.row("compute:0", pid=100).update({"producer_restarts": 3.0})
        table.row("compute:0", pid=100)                   # the same process again (the actor's own claim)
        assert table.snapshot()[0]["counters"] == {"producer_restarts": 3.0}
        table.row("compute:0", pid=101, restarts=1)       # the supervisor starts its replacement
        assert table.snapshot()[0]["counters"] == {}
        table.row("compute:0", pid=101).update({"producer_restarts": 1.0})
        assert table.snapshot()[0]["counters"] == {"producer_restarts": 1.0}
    finally:
        table.close()
