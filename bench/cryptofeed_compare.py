"""Parse + normalize cost: Undertow's Binance parser against cryptofeed's own Binance futures handler.

cryptofeed is NOT a dependency of Undertow: run this from a separate virtual
environment that has cryptofeed (and numpy, msgspec) installed, with the
repository on PYTHONPATH, e.g.

    python3 -m venv /tmp/cfvenv && /tmp/cfvenv/bin/pip install cryptofeed msgspec numpy
    PYTHONPATH=. /tmp/cfvenv/bin/python bench/cryptofeed_compare.py [--baseline OLD_binance.py] [--rounds N]

All parse the same real frames (cryptofeed's own 2021 Binance USD-M capture:
aggTrade and bookTicker; depth diffs need a live snapshot and are left out):
Undertow's parser, the same normalisation with stdlib ``json`` (bench/bench_parse.py),
cryptofeed's handler and, with ``--baseline``, an older copy of engine/venues/binance.py
(``git show REV:engine/venues/binance.py > /tmp/old.py``) for a before/after in one run.
The contenders take turns, one pass each per round, best pass kept: the machine is
shared and noisy, so compare ratios from one run. cryptofeed's symbol table is fed
from the captured exchangeInfo response, so nothing touches the network; its callbacks
are no-ops. Prints µs per frame and ratios, then one JSON line.
"""
from __future__ import annotations

import argparse
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


class _Registry(dict):
    """Symbol -> id, a new id on first sight (the feed actor's lookup is a method over a dict, too)."""

    def lookup(self, symbol: str) -> int:
        return self.setdefault(symbol, len(self))


def parser_pass(module):
    """One timed pass of ``module``'s Parser over the payloads -> seconds per frame."""
    parser = module.Parser(_Registry().lookup)

    def run(payloads: list[bytes]) -> float:
        parse, out = parser.parse, []
        t0 = time.perf_counter()
        for p in payloads:
            parse(p, 0, out)
            out.clear()
        return (time.perf_counter() - t0) / len(payloads)
    return run


def stdlib_pass():
    """One timed pass of the stdlib-json normalisation (bench/bench_parse.py) -> seconds per frame."""
    from bench.bench_parse import stdlib_parse
    ids = _Registry()

    def run(payloads: list[bytes]) -> float:
        out: list = []
        t0 = time.perf_counter()
        for p in payloads:
            stdlib_parse(p, 0, ids, out)
            out.clear()
        return (time.perf_counter() - t0) / len(payloads)
    ids.update({s: 0 for s in ("SUSHIUSDT", "AKROUSDT", "KEEPUSDT", "CTKUSDT")})
    return run


def cryptofeed_pass():
    """One timed pass of cryptofeed's BinanceFutures message handler -> seconds per frame."""
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
    loop = asyncio.new_event_loop()

    async def one_pass(texts: list[str]) -> float:
        t0 = time.perf_counter()
        for m in texts:
            await feed.message_handler(m, None, 0.0)
        return (time.perf_counter() - t0) / len(texts)

    def run(payloads: list[bytes]) -> float:
        return loop.run_until_complete(one_pass([p.decode() for p in payloads]))
    return run


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--baseline", help="an older copy of engine/venues/binance.py, timed as 'before'")
    ap.add_argument("--rounds", type=int, default=30, help="passes per contender (best kept)")
    args = ap.parse_args(argv)
    if not SHARED.is_dir():
        print(f"captures not found at {SHARED}", file=sys.stderr)
        return 1
    from bench.bench_parse import load_module
    from engine.venues import binance
    contenders = {"undertow": parser_pass(binance), "stdlib": stdlib_pass(), "cryptofeed": cryptofeed_pass()}
    if args.baseline:
        contenders["before"] = parser_pass(load_module(args.baseline))
    result = {}
    print(f"{'frames':<12} {'n':>5}" + "".join(f" {name + ' µs':>14}" for name in contenders)
          + "".join(f" {'x ' + name:>14}" for name in contenders if name != "undertow"))
    for kind, payloads in frames().items():
        best = dict.fromkeys(contenders, float("inf"))
        for _ in range(args.rounds):
            for name, run in contenders.items():
                best[name] = min(best[name], run(payloads))
        us = {name: best[name] * 1e6 for name in contenders}
        ratio = {name: us[name] / us["undertow"] for name in contenders if name != "undertow"}
        result[kind] = {"n": len(payloads), **{f"{k}_us": round(v, 3) for k, v in us.items()},
                        **{f"x_{k}": round(v, 2) for k, v in ratio.items()}}
        print(f"{kind:<12} {len(payloads):>5}" + "".join(f" {v:>14.3f}" for v in us.values())
              + "".join(f" {v:>13.2f}x" for v in ratio.values()))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
