"""Parse + normalize cost: Undertow's venue parsers against cryptofeed's own handlers for the same venue.

cryptofeed is NOT a dependency of Undertow: run this from a separate virtual
environment that has cryptofeed (and numpy, msgspec) installed, with the
repository on PYTHONPATH, e.g.

    python3 -m venv /tmp/cfvenv && /tmp/cfvenv/bin/pip install cryptofeed msgspec numpy
    PYTHONPATH=. /tmp/cfvenv/bin/python bench/cryptofeed_compare.py [--baseline VENUE=OLD_MODULE.py] [--rounds N]

All parse the same real frames of cryptofeed's own captures: Binance USD-M 2021 (aggTrade,
bookTicker), OKX 2022 (trades), Gate futures 2023 (book_ticker) and Bitget 2022 (USDT-M trade,
ticker); only frames Undertow turns into records are timed (book diffs need a live snapshot and are
left out; the captures hold no other trade or ticker frames). Contenders: Undertow's parser,
cryptofeed's handler, the same normalisation written with stdlib ``json`` (bench/bench_parse.py,
bench/stdlib_parsers.py), and with ``--baseline`` an older copy of a venue module (``git show
REV:engine/venues/binance.py > /tmp/old.py``) for a before/after in one run. They take turns, one
pass each per round, best pass kept, timed by the thread's CPU time: the machine is shared and
noisy, so compare ratios from one run. cryptofeed's symbol tables come from the captured REST
responses, so nothing touches the network; its callbacks are no-ops. Prints µs per frame and ratios,
then one JSON line.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.bench_parse import CLOCK, load_module   # noqa: E402 (after the path insert)

SHARED = Path(os.environ.get("UNDERTOW_SHARED") or ROOT.parent / "shared") / "data" / "cryptofeed" / "sample_data"


# venue: (websocket capture, REST capture, cryptofeed feed class, {frame kind: marker near the frame's start})
CASES = {
    "binance": ("BINANCE_FUTURES.ws.1.0", "BINANCE_FUTURES.0", "BinanceFutures",
                {"aggTrade": b"@aggTrade", "bookTicker": b"@bookTicker"}),
    "okx": ("OKX.ws.1.0", "OKX.0", "OKX", {"trades": b'"channel":"trades"'}),
    "gate": ("GATEIO_FUTURES.ws.1.0", "GATEIO_FUTURES.0", "GateioFutures", {"book_ticker": b'"futures.book_ticker"'}),
    "bitget": ("BITGET.ws.2.0", "BITGET.0", "Bitget", {"trade": b'"channel":"trade"', "ticker": b'"channel":"ticker"'}),
}
# venues whose symbol table takes several REST answers: (the answer a URL asks for, the kind of an answer)
_REST_KEYS = {
    "okx": (lambda url: url.split("instType=", 1)[1].split("&", 1)[0], lambda answer: answer["data"][0]["instType"]),
    "bitget": (lambda url: url.rsplit("=", 1)[1] if "productType=" in url else "spbl",
               lambda answer: answer["data"][0]["symbol"].rsplit("_", 1)[1].lower()),
}


def rest_payloads(venue: str) -> list[bytes]:
    from engine.captures import iter_capture
    return [fr.payload for fr in iter_capture(SHARED / CASES[venue][1]) if fr.direction == "rest"]


def contract_sizes(module, venue: str) -> dict[str, float] | None:
    """Contract sizes the venue's parser needs (OKX, Gate: sizes are contracts), from the REST capture."""
    if venue == "okx":
        sizes: dict[str, float] = {}
        for payload in rest_payloads(venue):
            sizes.update(module.contract_sizes(module.parse_exchange_info(payload)))
        return sizes
    if venue == "gate":
        (payload,) = rest_payloads(venue)
        return {i.symbol: i.contract_size for i in module.parse_exchange_info(payload)}
    return None


def undertow_parser(module, venue: str):
    """``module``'s Parser with the contract sizes the venue needs, read from the REST capture."""
    sizes = contract_sizes(module, venue)
    lookup = _Registry().lookup
    return module.Parser(lookup) if sizes is None else module.Parser(lookup, contract_sizes=sizes)


def frames(venue: str, module) -> dict[str, list[bytes]]:
    """The capture's frames of each kind that Undertow's parser turns into records."""
    from engine.captures import iter_capture
    from engine.venues import Outcome
    capture, _, _, kinds = CASES[venue]
    parser = undertow_parser(module, venue)
    out: dict[str, list[bytes]] = {kind: [] for kind in kinds}
    for fr in iter_capture(SHARED / capture):
        if fr.direction != "recv":
            continue
        for kind, marker in kinds.items():
            if marker in fr.payload[:80] and parser.parse(fr.payload, 0, [])[0] == Outcome.EMITTED:
                out[kind].append(fr.payload)
    return out


class _Registry(dict):
    """Symbol -> id, a new id on first sight (the feed actor's lookup is a method over a dict, too)."""

    def lookup(self, symbol: str) -> int:
        return self.setdefault(symbol, len(self))

    def __missing__(self, symbol: str) -> int:   # ``ids[symbol]`` (Binance's stdlib normalisation)
        return self.lookup(symbol)


def parser_pass(module, venue: str):
    """One timed pass of ``module``'s Parser over the payloads -> seconds per frame."""
    parser = undertow_parser(module, venue)

    def run(payloads: list[bytes]) -> float:
        parse, out = parser.parse, []
        t0 = CLOCK()
        for p in payloads:
            parse(p, 0, out)
            out.clear()
        return (CLOCK() - t0) / len(payloads)
    return run


def _decoders(module, venue: str, payloads: list[bytes]) -> list:
    """For each payload, the msgspec decode its parser's fast path runs on it (found the way the parser finds
    it, outside the timing)."""
    parser = undertow_parser(module, venue)
    if venue == "binance":
        return [module._decode_envelope] * len(payloads)
    if venue == "gate":
        return [module._decode_update] * len(payloads)
    if venue == "okx":
        p = module._P
        return [parser._fast[x[p:x.find(b'"', p)]][0].decode for x in payloads]
    for x in payloads:   # bitget: the decoder of the route its head was learned with
        parser.parse(x, 0, [])
    return [parser._heads[x[:x.find(91)]][1] for x in payloads]


def decode_pass(module, venue: str, payloads: list[bytes]):
    """One timed pass of the parser's msgspec decode alone (the floor of this design) -> seconds per frame."""
    decoders = _decoders(module, venue, payloads)

    def run(payloads: list[bytes]) -> float:
        t0 = CLOCK()
        for decode, p in zip(decoders, payloads):
            decode(p)
        return (CLOCK() - t0) / len(payloads)
    return run


def stdlib_pass(venue: str):
    """One timed pass of the venue's normalisation written with stdlib ``json`` (bench/bench_parse.py for
    Binance, bench/stdlib_parsers.py for the others) -> seconds per frame."""
    import importlib
    from bench.bench_parse import stdlib_parse
    from bench.stdlib_parsers import bitget_normalise, gate_normalise, okx_normalise
    ids = _Registry()
    lookup = ids.lookup
    sizes = contract_sizes(importlib.import_module(f"engine.venues.{venue}"), venue)
    normalise = {
        "binance": lambda p, out: stdlib_parse(p, 0, ids, out),
        "okx": lambda p, out: okx_normalise(p, 0, out, lookup, sizes),
        "gate": lambda p, out: gate_normalise(p, 0, lookup, sizes, out),
        "bitget": lambda p, out: bitget_normalise(p, lookup, 0, out),
    }[venue]

    def run(payloads: list[bytes]) -> float:
        out: list = []
        t0 = CLOCK()
        for p in payloads:
            normalise(p, out)
            out.clear()
        return (CLOCK() - t0) / len(payloads)
    return run


def cryptofeed_pass(venue: str, payloads: list[bytes]):
    """One timed pass of cryptofeed's message handler for ``venue`` -> seconds per frame."""
    import cryptofeed.exchanges
    from cryptofeed.connection import HTTPSync
    from cryptofeed.defines import TICKER, TRADES
    responses = [json.loads(p) for p in rest_payloads(venue)]
    if venue in _REST_KEYS:   # one instrument list per product type, picked by the URL
        asked, kind = _REST_KEYS[venue]
        by_kind = {kind(r): r for r in responses if r.get("data")}

        def read(self, address, *_a, **_k):
            return by_kind.get(asked(address), {"code": "0", "data": []})
    else:
        def read(self, *_a, **_k):
            return responses[0]
    HTTPSync.read = read                                   # symbol tables from the capture, not the network
    cls = getattr(cryptofeed.exchanges, CASES[venue][2])
    text = b"".join(payloads)
    symbols = [std for std, native in cls.symbol_mapping(refresh=True).items() if f'"{native}"'.encode() in text
               or f'"{native.lower()}@'.encode() in text]

    async def noop(*_a, **_k):
        return None

    feed = cls(symbols=symbols, channels=[TRADES, TICKER], callbacks={TRADES: noop, TICKER: noop})
    loop = asyncio.new_event_loop()

    async def one_pass(texts: list[str]) -> float:
        t0 = CLOCK()
        for m in texts:
            await feed.message_handler(m, None, 0.0)
        return (CLOCK() - t0) / len(texts)

    def run(payloads: list[bytes]) -> float:
        return loop.run_until_complete(one_pass([p.decode() for p in payloads]))
    return run


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--venue", action="append", choices=sorted(CASES), help="venue(s) to compare (default: all)")
    ap.add_argument("--baseline", action="append", default=[], metavar="VENUE=PATH",
                    help="an older copy of engine/venues/<VENUE>.py, timed as 'before'")
    ap.add_argument("--rounds", type=int, default=30, help="passes per contender (best kept)")
    ap.add_argument("--floor", action="store_true", help="also time the parser's msgspec decode alone")
    args = ap.parse_args(argv)
    if not SHARED.is_dir():
        print(f"captures not found at {SHARED}", file=sys.stderr)
        return 1
    import importlib
    baselines = dict(b.split("=", 1) for b in args.baseline)
    result = {}
    for venue in args.venue or list(CASES):
        module = importlib.import_module(f"engine.venues.{venue}")
        for kind, payloads in frames(venue, module).items():
            contenders = {"undertow": parser_pass(module, venue), "cryptofeed": cryptofeed_pass(venue, payloads),
                          "stdlib": stdlib_pass(venue)}
            if venue in baselines:
                contenders["before"] = parser_pass(load_module(baselines[venue]), venue)
            if args.floor:
                contenders["decode"] = decode_pass(module, venue, payloads)
            best = dict.fromkeys(contenders, float("inf"))
            for _ in range(args.rounds):
                for name, run in contenders.items():
                    best[name] = min(best[name], run(payloads))
            us = {name: best[name] * 1e6 for name in contenders}
            row = {"n": len(payloads), **{f"{k}_us": round(v, 3) for k, v in us.items()},
                   **{f"x_{k}": round(v / us["undertow"], 2) for k, v in us.items() if k != "undertow"}}
            result[f"{venue}.{kind}"] = row
            cells = [f"{k} {v:.3f} us" + ("" if k == "undertow" else f" ({v / us['undertow']:.2f}x)")
                     for k, v in us.items()]
            print(f"{venue + '.' + kind:<20} n={len(payloads):<4} " + "  ".join(cells))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
