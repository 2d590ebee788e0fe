"""Single-producer, many-consumer ring of records in shared memory.

Layout (little-endian u64 words)::

    word 0..7    magic, layout version, capacity, record size, generation,
                 producer pid, producer heartbeat (monotonic ns), created (wall ns)
    word 8       write cursor: count of records ever published
    word 9       parked bytes: byte i is 1 while reader slot i waits on its doorbell
    word 10      claim cursor: records the producer has started to write
    word 16..79  eight reader slots of 8 words: state, pid, read cursor, lost,
                 doorbell token, name (2 words), generation seen
    byte 1024..  capacity records of RECORD_DTYPE

The producer announces record ``n`` in the claim cursor, writes it into slot
``n % capacity`` and then publishes the write cursor ``n + 1``. A reader copies what it has not seen and then re-reads
the cursor: anything the producer may have overwritten meanwhile is discarded
and counted as lost, so a reader never returns a torn record and always knows
exactly how many it missed (``written == read + lost``).
"""
from __future__ import annotations

import os
import socket
import struct
import time

import numpy as np

from . import shm
from .idle import doorbell_address
from .record import RECORD_DTYPE, RECORD_SIZE

__all__ = ["Ring", "RingReader", "RingError", "MAX_READERS", "ring_segment"]

MAGIC = 0x474E4952574F5455  # "UTOWRING"
LAYOUT_VERSION = 1
MAX_READERS = 8
DATA_OFFSET = 1024

_W_MAGIC, _W_VERSION, _W_CAPACITY, _W_RECSIZE, _W_GENERATION, _W_PID, _W_HEARTBEAT, _W_CREATED = range(8)
_W_CURSOR = 8
_W_PARKED = 9
_W_CLAIM = 10
_SLOT_BASE = 16
_SLOT_WORDS = 8
_S_STATE, _S_PID, _S_CURSOR, _S_LOST, _S_TOKEN, _S_NAME0, _S_NAME1, _S_GEN = range(8)

RECORD_STRUCT = struct.Struct("<BBbBIqqddddd")
assert RECORD_STRUCT.size == RECORD_SIZE


class RingError(RuntimeError):
    """A ring segment is missing, foreign or of another layout."""


def ring_segment(namespace: str, name: str) -> str:
    """Segment name of ring ``name`` in ``namespace``."""
    return shm.segment_name(namespace, "ring", name)


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _encode_name(name: str) -> tuple[int, int]:
    raw = name.encode()[:16].ljust(16, b"\0")
    return struct.unpack("<QQ", raw)


def _decode_name(w0: int, w1: int) -> str:
    return struct.pack("<QQ", w0, w1).rstrip(b"\0").decode(errors="replace")


class Ring:
    """A shared-memory ring; the producer writes, readers attach with :class:`RingReader`."""

    def __init__(self, segment, segment_name: str):
        self._shm = segment
        self.segment_name = segment_name
        buf = segment.buf
        self._hdr = np.ndarray((DATA_OFFSET // 8,), dtype=np.uint64, buffer=buf)
        if int(self._hdr[_W_MAGIC]) != MAGIC:
            raise RingError(f"{segment_name}: not a ring (bad magic)")
        if int(self._hdr[_W_VERSION]) != LAYOUT_VERSION or int(self._hdr[_W_RECSIZE]) != RECORD_SIZE:
            raise RingError(f"{segment_name}: layout version {int(self._hdr[_W_VERSION])} not supported")
        self.capacity = int(self._hdr[_W_CAPACITY])
        self._mask = self.capacity - 1
        self._buf = buf
        self.data = np.ndarray((self.capacity,), dtype=RECORD_DTYPE, buffer=buf, offset=DATA_OFFSET)
        self._parked = np.ndarray((MAX_READERS,), dtype=np.uint8, buffer=buf, offset=_W_PARKED * 8)
        self._slots = self._hdr[_SLOT_BASE:_SLOT_BASE + MAX_READERS * _SLOT_WORDS].reshape(MAX_READERS, _SLOT_WORDS)
        self._mv = buf[:DATA_OFFSET].cast("Q")  # plain-int header access for the hot path
        self._producing = False
        self._cursor = 0
        self._bell = None
        self._bell_addr: dict[int, bytes] = {}

    # -- lifecycle ---------------------------------------------------------
    @classmethod
    def create(cls, name: str, capacity: int) -> "Ring":
        """Create a ring segment called ``name`` holding ``capacity`` records (a power of two)."""
        if capacity < 2 or capacity & (capacity - 1):
            raise ValueError(f"ring capacity must be a power of two >= 2, got {capacity}")
        seg = shm.create(name, DATA_OFFSET + capacity * RECORD_SIZE)
        hdr = np.ndarray((DATA_OFFSET // 8,), dtype=np.uint64, buffer=seg.buf)
        hdr[_W_VERSION] = LAYOUT_VERSION
        hdr[_W_CAPACITY] = capacity
        hdr[_W_RECSIZE] = RECORD_SIZE
        hdr[_W_CREATED] = time.time_ns()
        hdr[_W_MAGIC] = MAGIC  # last: marks the header complete
        return cls(seg, name)

    @classmethod
    def attach(cls, name: str) -> "Ring":
        """Attach to an existing ring; raise RingError if it does not exist."""
        try:
            seg = shm.attach(name)
        except FileNotFoundError:
            raise RingError(f"ring {name!r} does not exist") from None
        return cls(seg, name)

    @classmethod
    def open(cls, name: str, capacity: int) -> "Ring":
        """Attach to ``name``, creating it with ``capacity`` if it does not exist."""
        with shm.locked(name):
            try:
                return cls.attach(name)
            except RingError:
                return cls.create(name, capacity)

    def close(self) -> None:
        """Release this process's mapping (the segment stays)."""
        if self._bell is not None:
            self._bell.close()
            self._bell = None
        self._mv.release()
        self.data = self._hdr = self._slots = self._parked = None  # drop buffer exports
        try:
            self._shm.close()
        except BufferError:  # pragma: no cover - a caller still holds a view
            pass

    # -- header ------------------------------------------------------------
    @property
    def generation(self) -> int:
        """Bumped each time a producer (re)starts on this ring."""
        return int(self._hdr[_W_GENERATION])

    @property
    def write_cursor(self) -> int:
        """Count of records published so far."""
        return int(self._hdr[_W_CURSOR])

    @property
    def producer_pid(self) -> int:
        return int(self._hdr[_W_PID])

    @property
    def producer_heartbeat_ns(self) -> int:
        return int(self._hdr[_W_HEARTBEAT])

    # -- producer ----------------------------------------------------------
    def become_producer(self) -> int:
        """Claim the producer role: bump the generation and resume at the cursor; return the generation."""
        self._cursor = int(self._hdr[_W_CURSOR])
        self._hdr[_W_CLAIM] = self._cursor  # a write cut short by a crash is simply redone
        self._hdr[_W_PID] = os.getpid()
        self._hdr[_W_HEARTBEAT] = time.monotonic_ns()
        self._hdr[_W_GENERATION] = int(self._hdr[_W_GENERATION]) + 1
        self._producing = True
        self._bell = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._bell.setblocking(False)
        return self.generation

    def heartbeat(self) -> None:
        """Record that the producer is alive."""
        self._hdr[_W_HEARTBEAT] = time.monotonic_ns()

    def write(self, kind, venue, side, flags, instrument, ts_exchange, ts_recv,
              price, qty, notional, aux=0.0, aux2=0.0) -> int:
        """Publish one record given field by field; return its sequence number."""
        c = self._cursor
        mv = self._mv
        mv[_W_CLAIM] = c + 1
        RECORD_STRUCT.pack_into(self._buf, DATA_OFFSET + (c & self._mask) * RECORD_SIZE,
                                kind, venue, side, flags, instrument, ts_exchange, ts_recv,
                                price, qty, notional, aux, aux2)
        self._cursor = c + 1
        mv[_W_CURSOR] = c + 1
        if mv[_W_PARKED]:
            self._ring_bells()
        return c

    def write_tuple(self, rec: tuple) -> int:
        """Publish one record given as a tuple in field order; return its sequence number."""
        c = self._cursor
        mv = self._mv
        mv[_W_CLAIM] = c + 1
        RECORD_STRUCT.pack_into(self._buf, DATA_OFFSET + (c & self._mask) * RECORD_SIZE, *rec)
        self._cursor = c + 1
        mv[_W_CURSOR] = c + 1
        if mv[_W_PARKED]:
            self._ring_bells()
        return c

    def write_many(self, recs: list[tuple]) -> int:
        """Publish several tuple records with one cursor update; return the new cursor."""
        n = len(recs)
        if n == 0:
            return self._cursor
        if n > self.capacity:
            self._cursor += n - self.capacity
            recs = recs[-self.capacity:]
        c = self._cursor
        self._mv[_W_CLAIM] = c + len(recs)
        buf, mask, pack = self._buf, self._mask, RECORD_STRUCT.pack_into
        for rec in recs:
            pack(buf, DATA_OFFSET + (c & mask) * RECORD_SIZE, *rec)
            c += 1
        return self._publish(c)

    def write_batch(self, records: np.ndarray) -> int:
        """Publish a numpy array of records with one cursor update; return the new cursor."""
        n = len(records)
        if n == 0:
            return self._cursor
        if n > self.capacity:
            records = records[-self.capacity:]
            self._cursor += n - self.capacity
            n = self.capacity
        c = self._cursor
        self._mv[_W_CLAIM] = c + n
        i0 = c & self._mask
        first = min(n, self.capacity - i0)
        self.data[i0:i0 + first] = records[:first]
        if first < n:
            self.data[:n - first] = records[first:]
        return self._publish(c + n)

    def _publish(self, c: int) -> int:
        self._cursor = c
        mv = self._mv
        mv[_W_CURSOR] = c
        if mv[_W_PARKED]:
            self._ring_bells()
        return c

    def _ring_bells(self) -> None:
        word = self._mv[_W_PARKED]  # one snapshot: readers flip their bytes concurrently
        i = 0
        while word:
            if word & 0xFF:
                token = int(self._slots[i, _S_TOKEN])
                addr = self._bell_addr.get(token)
                if addr is None:
                    addr = self._bell_addr[token] = doorbell_address(token)
                try:
                    self._bell.sendto(b"\1", addr)
                except OSError:  # reader gone or its queue full: it wakes on its timeout
                    pass
            word >>= 8
            i += 1

    # -- readers -----------------------------------------------------------
    def readers(self) -> list[dict]:
        """Describe the attached reader slots (for status and metrics)."""
        out = []
        for i in range(MAX_READERS):
            s = self._slots[i]
            if int(s[_S_STATE]):
                out.append({"slot": i, "name": _decode_name(int(s[_S_NAME0]), int(s[_S_NAME1])),
                            "pid": int(s[_S_PID]), "cursor": int(s[_S_CURSOR]), "lost": int(s[_S_LOST]),
                            "lag": self.write_cursor - int(s[_S_CURSOR])})
        return out


class RingReader:
    """One consumer's view of a ring, with its own cursor in a named reader slot.

    A reader that attaches with the name of an earlier one (for example after
    a restart) resumes from that reader's cursor; records overwritten in the
    meantime are reported as lost.
    """

    def __init__(self, ring: Ring, name: str, start: str = "resume", doorbell_token: int = 0, batch: int = 4096):
        if start not in ("resume", "latest", "earliest"):
            raise ValueError(f"start must be resume, latest or earliest, not {start!r}")
        self.ring = ring
        self.name = name
        self.lost = 0
        self.read = 0
        self.generation = ring.generation
        self.producer_restarts = 0
        self._buf = np.empty(batch, dtype=RECORD_DTYPE)
        self._empty = self._buf[:0]
        self.slot = self._claim_slot(name, start, doorbell_token)
        self._row = ring._slots[self.slot]

    def _claim_slot(self, name: str, start: str, token: int) -> int:
        ring = self.ring
        n0, n1 = _encode_name(name)
        with shm.locked(ring.segment_name):
            slots = ring._slots
            chosen = None
            for i in range(MAX_READERS):  # same name: resume its cursor
                if int(slots[i, _S_STATE]) and (int(slots[i, _S_NAME0]), int(slots[i, _S_NAME1])) == (n0, n1):
                    chosen = i
                    break
            if chosen is None:
                for i in range(MAX_READERS):
                    if not int(slots[i, _S_STATE]) or not _pid_alive(int(slots[i, _S_PID])):
                        chosen = i
                        slots[i, _S_CURSOR] = ring.write_cursor
                        slots[i, _S_LOST] = 0
                        break
            if chosen is None:
                raise RingError(f"{ring.segment_name}: all {MAX_READERS} reader slots are in use")
            w = ring.write_cursor
            if start == "latest":
                cursor = w
            elif start == "earliest":
                cursor = max(0, w - ring.capacity)
            else:
                cursor = min(int(slots[chosen, _S_CURSOR]), w)
            slots[chosen, _S_CURSOR] = cursor
            slots[chosen, _S_PID] = os.getpid()
            slots[chosen, _S_TOKEN] = token
            slots[chosen, _S_NAME0], slots[chosen, _S_NAME1] = n0, n1
            slots[chosen, _S_STATE] = 1
            self.lost = int(slots[chosen, _S_LOST])
            self._cursor = cursor
            return chosen

    def release(self) -> None:
        """Free the reader slot (its cursor is forgotten)."""
        self.set_parked(False)
        self._row[_S_STATE] = 0

    @property
    def cursor(self) -> int:
        """Sequence number of the next record this reader will return."""
        return self._cursor

    def available(self) -> int:
        """Records published and not yet read (may exceed capacity when lapped)."""
        return self.ring._mv[_W_CURSOR] - self._cursor

    def set_parked(self, parked: bool) -> None:
        """Announce that this reader sleeps on its doorbell (or no longer does)."""
        self.ring._parked[self.slot] = 1 if parked else 0  # one byte: atomic on its own

    def poll(self, max_records: int | None = None) -> tuple[np.ndarray, int]:
        """Return (records, lost): new records (a view valid until the next poll) and how many were missed."""
        ring = self.ring
        w = ring._mv[_W_CURSOR]
        r = self._cursor
        if w == r:
            return self._empty, 0
        cap = ring.capacity
        mv = ring._mv
        gen = mv[_W_GENERATION]
        if gen != self.generation:
            self.producer_restarts += gen - self.generation
            self.generation = gen
        lost = 0
        if w - r > cap:
            lost = w - r - cap
            r = w - cap
        limit = len(self._buf) if max_records is None else min(max_records, len(self._buf))
        n = min(w - r, limit)
        i0 = r & ring._mask
        first = min(n, cap - i0)
        out = self._buf
        out[:first] = ring.data[i0:i0 + first]
        if first < n:
            out[first:n] = ring.data[:n - first]
        # Slots of records below (claim - capacity) may have been reused while we copied.
        valid_from = mv[_W_CLAIM] - cap
        skip = 0
        if r < valid_from:
            skip = min(valid_from - r, n)
            lost += skip
        self._cursor = r + n
        self.lost += lost
        self.read += n - skip
        row = self._row
        row[_S_CURSOR] = self._cursor
        if lost:
            row[_S_LOST] = self.lost
        return out[skip:n], lost
