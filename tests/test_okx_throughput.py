"""OKX parse + normalise cost: the msgspec parser against stdlib ``json.loads`` + the same normalisation,
on the real frames of OKX.ws.1.0. The test checks both give identical records and prints µs/frame;
``python -m tests.test_okx_throughput`` prints the figures alone."""
from __future__ import annotations

import math
import os
import time
from pathlib import Path

import pytest

from bench.stdlib_parsers import okx_normalise as stdlib_parse
from engine.captures import iter_capture
from engine.venues import okx

SHARED = Path(os.environ.get("UNDERTOW_SHARED") or Path(__file__).resolve().parents[2] / "shared") / "data"
WS = SHARED / "cryptofeed/sample_data/OKX.ws.1.0"
REST = SHARED / "cryptofeed/sample_data/OKX.0"


def load():
    sizes: dict[str, float] = {}
    for fr in iter_capture(REST):
        sizes.update(okx.contract_sizes(okx.parse_exchange_info(fr.payload)))
    frames = [fr.payload for fr in iter_capture(WS) if fr.direction == "recv"]
    ids: dict[str, int] = {}
    return frames, sizes, lambda s: ids.setdefault(s, len(ids))


def measure(frames, sizes, lookup, repeat: int = 5, rounds: int = 20) -> dict[str, float]:
    """Best-of-``repeat`` µs per frame of each parser over ``rounds`` passes of ``frames``."""
    parser = okx.Parser(lookup, contract_sizes=sizes)

    def run_msgspec():
        out: list = []
        parse = parser.parse
        for _ in range(rounds):
            for p in frames:
                parse(p, 1, out)
            out.clear()

    def run_stdlib():
        out: list = []
        for _ in range(rounds):
            for p in frames:
                stdlib_parse(p, 1, out, lookup, sizes)
            out.clear()

    result = {}
    for name, fn in (("msgspec", run_msgspec), ("stdlib", run_stdlib)):
        best = math.inf
        for _ in range(repeat):
            t0 = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - t0)
        result[name] = best / (rounds * len(frames)) * 1e6
    return result


@pytest.mark.playback
@pytest.mark.skipif(not WS.is_file(), reason=f"OKX capture not found at {WS}")
def test_msgspec_and_stdlib_normalise_identically_and_msgspec_is_faster(capsys):
    frames, sizes, lookup = load()
    parser = okx.Parser(lookup, contract_sizes=sizes)
    for p in frames:
        a: list = []
        b: list = []
        assert parser.parse(p, 7, a)[0] == stdlib_parse(p, 7, b, lookup, sizes)
        assert a == b
    us = measure(frames, sizes, lookup, repeat=3, rounds=5)
    with capsys.disabled():
        print(f"\nOKX.ws.1.0 ({len(frames)} frames): msgspec {us['msgspec']:.2f} µs/frame, "
              f"stdlib json {us['stdlib']:.2f} µs/frame")
    assert us["msgspec"] < us["stdlib"]


if __name__ == "__main__":
    f, s, lk = load()
    r = measure(f, s, lk)
    print(f"OKX.ws.1.0 ({len(f)} frames): msgspec {r['msgspec']:.2f} µs/frame, stdlib json {r['stdlib']:.2f} µs/frame, "
          f"ratio {r['stdlib'] / r['msgspec']:.1f}x")
