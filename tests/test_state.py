"""State table: seqlocked rows, readable from any process."""
from __future__ import annotations

import multiprocessing

import numpy as np
import pytest

from engine.kernels import columns as C
from engine.state import StateTable
from tests.conftest import wait_until


def _writer(ns: str, stop, started) -> None:
    table = StateTable.open(ns, 8, 4)
    rows = np.zeros((4, C.NCOL))
    ids = np.arange(4)
    k = 0
    started.set()
    while not stop.is_set():
        k += 1
        rows[:] = k
        table.write("a", ids, rows)
    table.close()


def _reader(ns: str, queue) -> None:
    table = StateTable.attach(ns)
    queue.put((table.read_asset(2)["score"], table.read_instrument(5)["price"]))
    table.close()


@pytest.mark.process
def test_reader_never_sees_a_torn_row(namespace):
    ctx = multiprocessing.get_context("spawn")
    stop, started = ctx.Event(), ctx.Event()
    proc = ctx.Process(target=_writer, args=(namespace, stop, started), daemon=True)
    proc.start()
    try:
        wait_until(started.is_set, timeout=20, message="writer")
        table = StateTable.open(namespace, 8, 4)
        seen = set()
        for _ in range(20000):
            row, _ = table.read_row("a", 1)
            assert (row == row[0]).all()
            seen.add(row[0])
        assert len(seen) > 1  # the writer really was writing meanwhile
        table.close()
    finally:
        stop.set()
        proc.join(10)


@pytest.mark.process
def test_attach_from_another_process(namespace):
    table = StateTable.open(namespace, 8, 4)
    table.set_windows([1.0, 5.0], [60.0], 30.0)
    rows = np.zeros((8, C.NCOL))
    rows[2, C.SCORE] = 6.5
    rows[2, C.LEVEL] = 2
    rows[5, C.PRICE] = 42_000.0
    table.write("a", np.array([2]), rows)
    table.write("i", np.array([5]), rows)
    queue = multiprocessing.get_context("spawn").Queue()
    proc = multiprocessing.get_context("spawn").Process(target=_reader, args=(namespace, queue))
    proc.start()
    assert queue.get(timeout=20) == (6.5, 42_000.0)
    proc.join(10)
    a = table.read_asset(2)
    assert a["level"] == "WARNING" and set(a["velocity_usd_s"]) == {"1s", "5s"} and a["updated_ns"] > 0
    table.close()


@pytest.mark.unit
def test_attach_missing_table_fails(namespace):
    with pytest.raises(FileNotFoundError):
        StateTable.attach(namespace)
