"""Per-actor liveness and counters in shared memory.

Each actor owns one row (found by name): its pid, a heartbeat (monotonic ns,
comparable across processes), start time, restart count and up to
``MAX_COUNTERS`` named float counters. The supervisor reads the table to
detect hung actors and to serve ``/metrics``; ``undertow status`` reads it too.

A row's counters (names and values) are published under a seqlock (``counters_seq``:
odd while the owning actor writes), so a reader sees a whole publish or retries; a
first publish is never seen half-named. A new process claiming a row starts it with no
counters (they are per process; ``restarts`` carries across).
"""
from __future__ import annotations

import json
import logging
import time

import msgspec

import numpy as np

from . import shm

__all__ = ["ActorTable", "ActorRow", "actor_table_segment", "MAX_COUNTERS"]

log = logging.getLogger("undertow.actors")

MAX_ACTORS = 64
MAX_COUNTERS = 128
NAMES_BYTES = 4096

ROW_DTYPE = np.dtype([
    ("name", "S32"),
    ("pid", np.int64),
    ("heartbeat_ns", np.int64),   # time.monotonic_ns() of the last beat
    ("started_ns", np.int64),     # wall clock
    ("restarts", np.int64),
    ("state", np.int64),          # 0 free, 1 starting, 2 running, 3 stopped
    ("counters", np.float64, (MAX_COUNTERS,)),
    ("counter_names", f"S{NAMES_BYTES}"),  # JSON list, written when a new counter appears
    ("counters_seq", np.int64),   # seqlock over counters + counter_names: odd while a publish is in progress
])

STARTING, RUNNING, STOPPED = 1, 2, 3
READ_RETRY_S = 0.5   # how long a reader waits out a publish in progress before reporting the row unreadable


def actor_table_segment(namespace: str) -> str:
    return shm.segment_name(namespace, "actors", "table")


class ActorRow:
    """One actor's row: heartbeat and counters (written by the owning actor only)."""

    def __init__(self, table: "ActorTable", index: int):
        self.table = table
        self.index = index
        self._row = table.rows[index:index + 1]
        self._counters = self._row["counters"][0]
        self._seq = self._row["counters_seq"]
        self._names: list[str] = _decode_names(self._row["counter_names"][0]) or []
        self._index = {n: i for i, n in enumerate(self._names)}

    def beat(self) -> None:
        """Record liveness now."""
        self._row["heartbeat_ns"] = time.monotonic_ns()

    def set_state(self, state: int) -> None:
        self._row["state"] = state

    def _name_new(self, names) -> bytes | None:
        """Give each unseen name in ``names`` a slot; the encoded new name list, or None when nothing was added.

        A name that does not fit (``MAX_COUNTERS`` names or ``NAMES_BYTES`` of JSON) gets slot -1: logged
        once, never fatal, not exported.
        """
        added = False
        for name in names:
            if name in self._index:
                continue
            enc = json.dumps([*self._names, name]).encode()
            if len(self._names) >= MAX_COUNTERS or len(enc) > NAMES_BYTES:
                self._index[name] = -1
                log.error("actor table: no room for counter %r (max %d counters, %d bytes of names); "
                          "it is not exported", name, MAX_COUNTERS, NAMES_BYTES)
                continue
            self._index[name] = len(self._names)
            self._names.append(name)
            added = True
        return json.dumps(self._names).encode() if added else None

    def set(self, name: str, value: float) -> None:
        """Set counter ``name``."""
        self.update({name: value})

    def update(self, values: dict[str, float]) -> None:
        """Set several counters as one publish: new names and every value inside one seqlock write."""
        names = self._name_new(values)
        self._seq += 1            # odd: readers retry
        if names is not None:
            self._row["counter_names"] = names
        idx = self._index
        for k, v in values.items():
            i = idx[k]
            if i >= 0:
                self._counters[i] = v
        self._seq += 1            # even: the publish is whole

    def counters(self) -> dict[str, float]:
        """The row's last whole publish as ``{name: value}``; ``{}`` (logged) if it stays unreadable."""
        deadline = None
        while True:
            seq = int(self._seq[0])
            if not seq & 1:
                raw = bytes(self._row["counter_names"][0])
                values = self._counters.copy()
                if int(self._seq[0]) == seq:
                    names = _decode_names(raw)
                    if names is not None:
                        return {n: float(values[i]) for i, n in enumerate(names)}
            now = time.monotonic()
            if deadline is None:
                deadline = now + READ_RETRY_S
            elif now >= deadline:
                log.error("actor table: row %d's counters stayed mid-publish for %.1f s (writer died while "
                          "writing?); reported empty", self.index, READ_RETRY_S)
                return {}
            time.sleep(0)


_NAMES = msgspec.json.Decoder(list[str])


def _decode_names(raw: bytes) -> list[str] | None:
    """The counter-name list stored in a row; None when it does not decode (a torn write)."""
    try:
        return _NAMES.decode(raw or b"[]")
    except msgspec.DecodeError:   # ValidationError included
        return None


class ActorTable:
    """The table of actor rows for one namespace."""

    def __init__(self, segment, name: str):
        self._shm = segment
        self.name = name
        self.rows = np.ndarray((MAX_ACTORS,), dtype=ROW_DTYPE, buffer=segment.buf)

    @classmethod
    def open(cls, name: str) -> "ActorTable":
        with shm.locked(name):
            seg, _ = shm.open_or_create(name, MAX_ACTORS * ROW_DTYPE.itemsize)
        return cls(seg, name)

    def close(self) -> None:
        self.rows = None
        try:
            self._shm.close()
        except BufferError:  # pragma: no cover
            pass

    def row(self, actor: str, pid: int | None = None, restarts: int | None = None) -> ActorRow:
        """Find or claim the row of ``actor``; with ``pid`` mark it as (re)started by that process."""
        key = actor.encode()[:32]
        with shm.locked(self.name):
            idx = None
            free = None
            for i in range(MAX_ACTORS):
                n = self.rows[i]["name"]
                if n == key:
                    idx = i
                    break
                if free is None and not n:
                    free = i
            if idx is None:
                if free is None:
                    raise RuntimeError(f"{self.name}: actor table full")
                idx = free
                self.rows[idx]["name"] = key
            row = self.rows[idx:idx + 1]
            if row["counters_seq"][0] & 1:   # its last writer died mid-publish: a fresh one starts
                row["counters_seq"] += 1
            if pid is not None and pid != row["pid"][0]:
                # a new process: the last one's counters are not its own (a reader comparing before and
                # after a restart would otherwise take the dead process's values for the new one's)
                row["counters_seq"] += 1
                row["counter_names"] = b""
                row["counters"] = 0.0
                row["counters_seq"] += 1
            if pid is not None:
                self.rows[idx]["pid"] = pid
                self.rows[idx]["started_ns"] = time.time_ns()
                self.rows[idx]["heartbeat_ns"] = time.monotonic_ns()
                self.rows[idx]["state"] = STARTING
            if restarts is not None:
                self.rows[idx]["restarts"] = restarts
        return ActorRow(self, idx)

    def snapshot(self, counters: bool = True) -> list[dict]:
        """Every claimed row as a dict; ``counters=False`` skips decoding the counters (the watch loop's case)."""
        now = time.monotonic_ns()
        out = []
        for i in range(MAX_ACTORS):
            r = self.rows[i]
            if not r["name"]:
                continue
            out.append({"name": r["name"].decode(), "pid": int(r["pid"]), "state": int(r["state"]),
                        "restarts": int(r["restarts"]), "heartbeat_age_s": (now - int(r["heartbeat_ns"])) / 1e9,
                        "started_ns": int(r["started_ns"]),
                        "counters": ActorRow(self, i).counters() if counters else {}})
        return out
