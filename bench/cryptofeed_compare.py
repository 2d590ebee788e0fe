"""Parse + normalize cost: Undertow's Binance parser against cryptofeed's own Binance futures handler.

cryptofeed is NOT a dependency of Undertow: run this from a separate virtual
environment that has cryptofeed (and numpy, msgspec) installed, with the
repository on PYTHONPATH, e.g.

    python3 -m venv /tmp/cfvenv && /tmp/cfvenv/bin/pip install cryptofeed msgspec numpy
    PYTHONPATH=. /tmp/cfvenv/bin/python bench/cryptofeed_compare.py

Both parse the same real frames (cryptofeed's own 2021 Binance USD-M capture:
aggTrade and bookTicker; depth diffs need a live snapshot and are left out).
cryptofeed's symbol table is fed from the captured exchangeInfo response, so
nothing touches the network; its callbacks are no-ops. Prints µs per frame for
each and the ratio, then one JSON line.
"""
from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHARED = Path(os.environ.get("UNDERTOW_SHARED") or ROOT.parent / "shared") / "data" / "cryptofeed" / "sample_data"


def frames() -> dict[str, list[bytes]]:
    from engine.captures import iter_capture
    out: dict[str, list[bytes]] = {"aggTrade": [], "bookTicker": []}
    for fr in iter_capture(SHARED / "BINANCE_FUTURES.ws.1.0"):
        if fr.direction == "recv":
            for kind in out:
                if b"@" + kind.encode() in fr.payload[:60]:
                    out[kind].append(fr.payload)
    return out


def undertow_cost(payloads: list[bytes], repeat: int) -> float:
    from engine.venues import binance
    ids: dict[str, int] = {}
    parser = binance.Parser(lambda s: ids.setdefault(s, len(ids)))
    out: list = []
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        for p in payloads:
            parser.parse(p, 0, out)
            out.clear()
        best = min(best, (time.perf_counter() - t0) / len(payloads))
    return best * 1e6


def cryptofeed_cost(payloads: list[bytes], repeat: int) -> float:
    from cryptofeed.connection import HTTPSync
    from cryptofeed.defines import TICKER, TRADES
    from cryptofeed.exchanges import BinanceFutures
    from engine.captures import iter_capture
    info = next(json.loads(fr.payload) for fr in iter_capture(SHARED / "BINANCE_FUTURES.0") if fr.direction == "rest")
    HTTPSync.read = lambda self, *a, **k: info              # symbol table from the capture, not the network

    async def noop(*_a, **_k):
        return None

    feed = BinanceFutures(symbols=["SUSHI-USDT-PERP", "AKRO-USDT-PERP", "KEEP-USDT-PERP", "CTK-USDT-PERP"],
                          channels=[TRADES, TICKER], callbacks={TRADES: noop, TICKER: noop})
    texts = [p.decode() for p in payloads]

    async def run() -> float:
        best = float("inf")
        for _ in range(repeat):
            t0 = time.perf_counter()
            for m in texts:
                await feed.message_handler(m, None, 0.0)
            best = min(best, (time.perf_counter() - t0) / len(texts))
        return best

    return asyncio.run(run()) * 1e6


def main() -> int:
    if not SHARED.is_dir():
        print(f"captures not found at {SHARED}", file=sys.stderr)
        return 1
    groups = frames()
    result = {}
    print(f"{'frames':<12} {'n':>5} {'undertow µs':>12} {'cryptofeed µs':>14} {'ratio':>7}")
    for kind, payloads in groups.items():
        ours, theirs = undertow_cost(payloads, 30), cryptofeed_cost(payloads, 30)
        result[kind] = {"n": len(payloads), "undertow_us": round(ours, 3), "cryptofeed_us": round(theirs, 3),
                        "ratio": round(theirs / ours, 1)}
        print(f"{kind:<12} {len(payloads):>5} {ours:>12.2f} {theirs:>14.2f} {theirs / ours:>6.1f}x")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
