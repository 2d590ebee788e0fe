"""Named shared-memory segments that no process's resource tracker may unlink.

Python 3.11 registers every ``SharedMemory`` it opens with the resource
tracker, which unlinks the segment when *that* process exits, even when another
process owns it. Segments here are never tracked: the supervisor owns them and
sweeps its namespace on start and stop.
"""
from __future__ import annotations

import fcntl
import os
from contextlib import contextmanager
from multiprocessing import resource_tracker, shared_memory

__all__ = ["create", "attach", "open_or_create", "open_or_create_stamped", "unlink", "sweep", "segment_name", "list_segments", "locked"]

SHM_DIR = "/dev/shm"


def segment_name(namespace: str, kind: str, name: str) -> str:
    """Return the segment name for an object of ``kind`` called ``name`` in ``namespace``."""
    return f"ut-{namespace}-{kind}-{name}"


def _untrack(shm: shared_memory.SharedMemory) -> shared_memory.SharedMemory:
    try:
        resource_tracker.unregister(shm._name, "shared_memory")  # noqa: SLF001
    except Exception:  # pragma: no cover - tracker absent or already gone
        pass
    return shm


def create(name: str, size: int) -> shared_memory.SharedMemory:
    """Create a new zero-filled segment; raise FileExistsError if it exists."""
    return _untrack(shared_memory.SharedMemory(name=name, create=True, size=size))


def attach(name: str) -> shared_memory.SharedMemory:
    """Attach to an existing segment; raise FileNotFoundError if absent."""
    return _untrack(shared_memory.SharedMemory(name=name, create=False))


def open_or_create(name: str, size: int) -> tuple[shared_memory.SharedMemory, bool]:
    """Attach to ``name`` or create it with ``size`` bytes; return (segment, created)."""
    try:
        return create(name, size), True
    except FileExistsError:
        return attach(name), False


def open_or_create_stamped(name: str, size: int, header: dict[int, int], magic: tuple[int, int]):
    """Attach to ``name`` or create it, writing u64 ``header`` words and then the ``magic`` word last.

    The magic (``(word index, value)``) marks the header complete, so a process
    that attaches while another creates never trusts a half-written header.
    Return (segment, created).
    """
    import numpy as np  # local: shm is imported by processes that never stamp a header

    with locked(name):
        seg, created = open_or_create(name, size)
        if created:
            words = np.ndarray((max([*header, magic[0]]) + 1,), dtype=np.uint64, buffer=seg.buf)
            for i, v in header.items():
                words[i] = v
            words[magic[0]] = magic[1]
            del words
    return seg, created


def unlink(name: str) -> bool:
    """Remove a segment by name; return whether it existed."""
    try:
        os.unlink(os.path.join(SHM_DIR, name.lstrip("/")))
        return True
    except FileNotFoundError:
        return False


def list_segments(namespace: str) -> list[str]:
    """Names of the segments (and lock files) that belong to ``namespace``."""
    prefix = f"ut-{namespace}-"
    try:
        return sorted(n for n in os.listdir(SHM_DIR) if n.startswith(prefix))
    except FileNotFoundError:  # pragma: no cover - no /dev/shm
        return []


def sweep(namespace: str) -> list[str]:
    """Unlink every segment of ``namespace``; return the names removed."""
    removed = [n for n in list_segments(namespace) if unlink(n)]
    return removed


@contextmanager
def locked(name: str):
    """Hold an exclusive inter-process lock tied to segment ``name``."""
    fd = os.open(os.path.join(SHM_DIR, name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
