"""``undertow capture-stats``: exact counts on real Binance captures and on a synthetic file."""
from __future__ import annotations

import gzip
import json

import pytest

from engine.capture_stats import file_stats
from engine.cli import main as cli

pytestmark = pytest.mark.unit

# Frame counts from PROVENANCE.md §1-3 (the REST snapshot the recorder spliced in is not a WS frame).
REAL = {
    "binance_usdm/hftbacktest/btcusdt_20230404.dat.gz":
        {"frames": 13_384 - 1, "trade": 2197, "book": 6765, "mark": 99},
    "binance_usdm/hftbacktest/btcusdt_20240718.gz": {"frames": 11_414 - 1, "trade": 974, "book": 7113, "mark": 0},
    "binance_usdm/collect-binancefutures/btcusdt_20220811.dat.gz":
        {"frames": 1326 + 206, "trade": 1326, "book": 0, "mark": 0},
    "cryptofeed/sample_data/BINANCE_FUTURES.ws.1.0": {"frames": 1535, "trade": 91, "book": 613, "mark": 0},
}


def trade_notional(path) -> float:
    """Sum of price x quantity over the trade frames, read with the standard library only."""
    opener = gzip.open if path.suffix == ".gz" else open
    total = 0.0
    with opener(path, "rt") as f:
        for line in f:
            start = line.find("{")
            if start < 0:
                continue
            doc = json.loads(line[start:])
            data = doc.get("data", doc) if isinstance(doc, dict) else {}
            if isinstance(data, dict) and data.get("e") in ("trade", "aggTrade"):
                total += float(data["p"]) * float(data["q"])
    return total


@pytest.mark.playback
@pytest.mark.parametrize("rel", sorted(REAL))
def test_real_binance_captures(shared_data, rel):
    want = REAL[rel]
    stats = file_stats("binance", shared_data / rel)
    assert (stats["frames"], stats["malformed"], stats["unknown"]) == (want["frames"], 0, 0)
    assert stats["events"] == {"trade": want["trade"], "liquidation": 0, "book": want["book"], "mark": want["mark"],
                               "oi": 0}
    assert stats["notional_usd"]["trade"] == pytest.approx(trade_notional(shared_data / rel), abs=0.01)
    assert stats["notional_usd"]["liquidation"] == 0.0


SYNTHETIC = [
    'wss://fstream.binance.com/stream?streams=btcusdt@aggTrade <-> 1700000000.0',
    'wss://fstream.binance.com/stream?streams=btcusdt@aggTrade <- 1700000000.1: {"method":"SUBSCRIBE","params":["btcusdt@aggTrade"],"id":1}',
    '1700000000.2: {"result":null,"id":1}',
    '1700000000.3: {"stream":"btcusdt@aggTrade","data":{"e":"aggTrade","E":1700000000300,"a":1,"s":"BTCUSDT","p":"100.0","q":"2.5","f":1,"l":1,"T":1700000000299,"m":false}}',
    '1700000000.4: {"stream":"btcusdt@aggTrade","data":{"e":"aggTrade","E":1700000000400,"a":2,"s":"BTCUSDT","p":"0","q":"0","f":2,"l":2,"T":1700000000399,"m":true}}',
    '1700000000.5: {"e":"forceOrder","E":1700000000500,"o":{"s":"ETHUSDT","S":"SELL","o":"LIMIT","f":"IOC","q":"3","p":"1990","ap":"2000","X":"FILLED","l":"3","z":"3","T":1700000000499}}',
    '1700000000.6: {"e":"bookTicker","u":5,"s":"BTCUSDT","b":"99.9","B":"1","a":"100.1","A":"2","T":1700000000600,"E":1700000000600}',
    '1700000000.7: {"e":"markPriceUpdate","E":1700000000700,"s":"BTCUSDT","p":"100.0","i":"100.1","r":"0.0001","T":1700006400000}',
    '1700000000.8: {"e":"somethingNew","E":1700000000800,"s":"BTCUSDT"}',
    '1700000000.9: {"stream":"btcusdt@aggTrade","data":{"e":"aggTrade","p":',
    'https://fapi.binance.com/fapi/v1/openInterest?symbol=BTCUSDT -> 1700000001.0: {"openInterest":"5","symbol":"BTCUSDT","time":1700000001000}',
]


def test_synthetic_capture_counts_every_outcome(tmp_path):
    path = tmp_path / "mixed.cap"
    path.write_text("\n".join(SYNTHETIC) + "\n")
    stats = file_stats("binance", path)
    assert stats == {
        "file": str(path), "frames": 8, "malformed": 1, "unknown": 1,   # ack, 2 trades, liq, book, mark, new, broken
        "events": {"trade": 1, "liquidation": 1, "book": 1, "mark": 1, "oi": 0},
        "notional_usd": {"trade": 250.0, "liquidation": 6000.0},
    }


def test_cli_prints_one_json_line_per_file_and_reports_bad_files(tmp_path, capsys):
    good = tmp_path / "a.cap"
    good.write_text("\n".join(SYNTHETIC[2:5]) + "\n")
    gz = tmp_path / "b.jsonl.gz"
    with gzip.open(gz, "wt") as f:
        f.write(SYNTHETIC[6].split(": ", 1)[1] + "\n")
    bad = tmp_path / "c.cap"
    bad.write_text("not a capture at all\n")
    assert cli(["capture-stats", "--venue", "binance", str(good), str(bad), str(gz)]) == 1
    out, err = capsys.readouterr()
    lines = [json.loads(x) for x in out.splitlines()]
    assert [(x["file"], x["frames"], x["events"]["trade"], x["events"]["book"]) for x in lines] == [
        (str(good), 3, 1, 0), (str(gz), 1, 0, 1)]
    assert "c.cap" in err
    assert cli(["capture-stats", "--venue", "nowhere", str(good)]) == 2
