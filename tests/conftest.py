"""Shared test helpers: unique namespaces, shared-data location, waiting with a deadline."""
from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

import pytest

from engine import shm


def shared_data_dir() -> Path:
    """``../shared/data`` beside the repository (``UNDERTOW_SHARED`` overrides ``../shared``)."""
    base = os.environ.get("UNDERTOW_SHARED")
    root = Path(base) if base else Path(__file__).resolve().parents[2] / "shared"
    return root / "data"


@pytest.fixture
def shared_data() -> Path:
    d = shared_data_dir()
    if not d.is_dir():
        pytest.skip(f"recorded captures not available: {d} is absent (set UNDERTOW_SHARED)")
    return d


@pytest.fixture
def namespace():
    """A unique shared-memory namespace, swept afterwards."""
    ns = "t" + uuid.uuid4().hex[:10]
    yield ns
    shm.sweep(ns)


def wait_until(predicate, timeout: float = 10.0, interval: float = 0.01, message: str = "condition"):
    """Poll ``predicate`` until it returns truthy or ``timeout`` passes; return its value or fail."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)
