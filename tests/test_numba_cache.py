"""The numba cache directory follows the kernels' sources (a column-layout change must not reuse stale kernels)."""
from __future__ import annotations

import os

import pytest

import engine

pytestmark = pytest.mark.unit


def test_cache_dir_changes_with_any_kernel_module(tmp_path, monkeypatch):
    monkeypatch.setenv("UNDERTOW_NUMBA_CACHE", str(tmp_path / "cache"))
    k = tmp_path / "kernels"
    k.mkdir()
    (k / "columns.py").write_text("PRICE = 0\n")
    (k / "pipeline.py").write_text("def f(): pass\n")
    first = engine._numba_cache_dir(k)
    assert first == engine._numba_cache_dir(k) and first.startswith(str(tmp_path / "cache"))
    (k / "columns.py").write_text("PRICE = 1\n")          # a constant another kernel reads
    assert engine._numba_cache_dir(k) != first


def test_numba_uses_it():
    import numba.core.config
    assert numba.core.config.CACHE_DIR == os.environ["NUMBA_CACHE_DIR"]
