"""Benchmarks run only when asked: `pytest bench -m bench --benchmark-enable`."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
