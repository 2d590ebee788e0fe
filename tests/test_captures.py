"""Capture readers on the recorded files in shared/data."""
from __future__ import annotations

import gzip
import os
from collections import Counter
from pathlib import Path

import pytest

from engine.captures import CaptureFormatError, detect_format, iter_capture

SHARED = Path(os.environ.get("UNDERTOW_SHARED") or Path(__file__).resolve().parents[2] / "shared") / "data"
needs_data = pytest.mark.skipif(not SHARED.is_dir(), reason=f"shared capture data not found at {SHARED}")


@pytest.mark.unit
def test_cryptofeed_lines(tmp_path):
    p = tmp_path / "X.ws.1.0"
    p.write_bytes(b"wss://h/s?streams=a <-> 1626992740.179554\n"
                  b"configuration: {\"x\":1}\n"
                  b"wss://h/s <- 1626992740.2: {\"method\":\"SUBSCRIBE\"}\n"
                  b"1626992741.06217: {\"a\":1}\n"
                  b"https://h/r -> 1626992741.5: {\"b\":2}\n")
    assert detect_format(p) == "cryptofeed"
    frames = list(iter_capture(p))
    assert [f.direction for f in frames] == ["open", "sent", "recv", "rest"]
    assert frames[0].ts_ns == 1626992740_179554000 and frames[0].url == "wss://h/s?streams=a"
    assert frames[2] == (1626992741_062170000, "recv", None, b'{"a":1}')
    assert frames[3].url == "https://h/r" and frames[3].payload == b'{"b":2}'


@pytest.mark.unit
@pytest.mark.parametrize("name,scale", [("x.gz", 1), ("x.dat.gz", 1000)])
def test_hftbacktest_units_and_gzip(tmp_path, name, scale):
    p = tmp_path / name
    with gzip.open(p, "wb") as f:
        f.write(b'1680652700599351 {"lastUpdateId": 1, "bids": [], "asks": []}\n'
                b'1680652700423575 {"stream":"btcusdt@trade","data":{}}\n')
    assert detect_format(p) == "hftbacktest"
    frames = list(iter_capture(p))
    assert [f.direction for f in frames] == ["rest", "recv"]
    assert frames[1].ts_ns == 1680652700423575 * scale


@pytest.mark.unit
def test_unknown_format_is_an_error(tmp_path):
    p = tmp_path / "junk"
    p.write_bytes(b"hello world\n")
    with pytest.raises(CaptureFormatError):
        detect_format(p)


@pytest.mark.unit
def test_jsonl_lines_have_no_clock(tmp_path):
    p = tmp_path / "dump.data"
    p.write_bytes(b'{"topic":"a","ts":1}\n\n{"topic":"b","ts":2}\n')
    assert detect_format(p) == "jsonl"
    assert [(f.ts_ns, f.direction, f.payload) for f in iter_capture(p)] == [
        (0, "recv", b'{"topic":"a","ts":1}'), (0, "recv", b'{"topic":"b","ts":2}')]


@pytest.mark.playback
@needs_data
def test_bybit_dump_is_jsonl():
    frames = list(iter_capture(SHARED / "bybit/nautilus_trader/2024-12-01_XRPUSDT_ob500.data"))
    assert len(frames) == 50     # PROVENANCE.md section 5: 1 snapshot + 49 deltas
    assert frames[0].payload.startswith(b'{"topic":"orderbook.500.XRPUSDT","type":"snapshot"')


# frames per direction, from PROVENANCE.md sections 1-3 (recv = the "frames" column)
EXPECTED = {
    "cryptofeed/sample_data/BINANCE_FUTURES.ws.1.0": {"open": 1, "recv": 1535},
    "cryptofeed/sample_data/BINANCE_FUTURES.http.0.0": {"rest": 4},
    "cryptofeed/sample_data/BINANCE_FUTURES.0": {"rest": 1},
    "cryptofeed/sample_data/BINANCE_DELIVERY.ws.1.0": {"open": 1, "recv": 4371},
    "cryptofeed/sample_data/OKX.ws.1.0": {"open": 1, "sent": 3, "recv": 410},
    "binance_usdm/hftbacktest/btcusdt_20230404.dat.gz": {"recv": 13383, "rest": 1},
    "binance_usdm/hftbacktest/btcusdt_20240719.gz": {"recv": 60570},
    "binance_usdm/collect-binancefutures/btcusdt_20220811.dat.gz": {"recv": 1532, "rest": 1},
    "binance_coinm/hftbacktest/btcusd_perp_20240808.gz": {"recv": 48269, "rest": 1},
    "hyperliquid/hftbacktest/btcusd_20250126.gz": {"recv": 55},
}


@pytest.mark.playback
@needs_data
@pytest.mark.parametrize("rel", sorted(EXPECTED))
def test_real_capture_frame_counts(rel):
    frames = list(iter_capture(SHARED / rel))
    assert dict(Counter(f.direction for f in frames)) == EXPECTED[rel]
    ts = [f.ts_ns for f in frames]
    assert all(1.5e18 < t < 2e18 for t in ts), "timestamps must be ns since the epoch"
