"""Undertow engine library: records, rings, instruments, config, bus, kernels, simulator."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

__version__ = "0.1.0"


def _numba_cache_dir(kernels: Path = Path(__file__).parent / "kernels") -> str:
    """A numba cache directory keyed by the kernels' sources.

    numba keys a cached kernel on its own function's source, not on the constants it reads from
    other modules (the column layout in ``engine/kernels/columns.py``): after such a change a stale
    cached kernel would write to the wrong columns. Keying the directory on every kernel module's
    bytes makes any change start a fresh cache.
    """
    digest = hashlib.sha1()
    for f in sorted(kernels.glob("*.py")):
        digest.update(f.name.encode())
        digest.update(f.read_bytes())
    base = os.environ.get("UNDERTOW_NUMBA_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "undertow", "numba")
    return os.path.join(base, digest.hexdigest()[:16])


if "NUMBA_CACHE_DIR" not in os.environ:   # must be set before numba is first imported
    os.environ["NUMBA_CACHE_DIR"] = _numba_cache_dir()
