"""The venue parsers' normalisation written with stdlib ``json.loads``: the baseline each msgspec parser
is measured against (tests check both give the same records; bench/cryptofeed_compare.py times them beside
cryptofeed). Binance's is :func:`bench.bench_parse.stdlib_parse`."""
from __future__ import annotations

import json
import math

from engine.record import Flag, Kind, Side, Venue
from engine.venues import Outcome

__all__ = ["okx_normalise", "gate_normalise", "bitget_normalise"]

_INF = math.inf
_TAKER = {"buy": Side.BUY, "sell": Side.SELL}


def okx_normalise(payload: bytes, ts_recv: int, out: list, lookup, sizes) -> Outcome:
    """OKX.ws.1.0 frames (trades, books): the msgspec parser's normalisation on ``json.loads`` dicts."""
    try:
        msg = json.loads(payload)
    except ValueError:
        return Outcome.MALFORMED
    if "event" in msg:
        return Outcome.CONTROL
    arg = msg["arg"]
    channel, inst = arg["channel"], arg.get("instId", "")
    if channel == "tickers":
        return Outcome.IGNORED
    iid, ct = lookup(inst), sizes.get(inst)
    if iid is None or ct is None:
        return Outcome.IGNORED
    inverse = inst.count("-") == 2 and inst.split("-")[1] == "USD"
    try:
        if channel == "trades":
            start = len(out)
            for d in msg["data"]:
                px, sz, side, ts = float(d["px"]), float(d["sz"]), _TAKER.get(d["side"]), int(d["ts"])
                if not (0.0 <= px < _INF and 0.0 <= sz < _INF and side is not None):
                    del out[start:]
                    return Outcome.MALFORMED
                notional = sz * ct if inverse else sz * ct * px
                qty = notional / px if inverse else sz * ct
                out.append((Kind.TRADE, Venue.OKX, side, 0, iid, ts * 1_000_000, ts_recv, px, qty, notional,
                            float(int(d.get("tradeId", 0))), float(int(d.get("count", 1)))))
            return Outcome.EMITTED
        if channel == "books":
            if msg["action"] != "snapshot":
                return Outcome.PARSED
            d = msg["data"][0]
            bid, bq = float(d["bids"][0][0]), float(d["bids"][0][1])
            ask, aq = float(d["asks"][0][0]), float(d["asks"][0][1])
            bq, aq = (bq * ct / bid, aq * ct / ask) if inverse else (bq * ct, aq * ct)
            out.append((Kind.BOOK_TOP, Venue.OKX, 0, Flag.SNAPSHOT, iid, int(d["ts"]) * 1_000_000, ts_recv,
                        bid, bq, bid * bq + ask * aq, ask, aq))
            return Outcome.EMITTED
    except (KeyError, IndexError, TypeError, ValueError):
        return Outcome.MALFORMED
    return Outcome.UNKNOWN


def gate_normalise(payload: bytes, ts: int, lookup, sizes: dict, out: list) -> None:
    """GATEIO_FUTURES.ws.1.0 frames (book_ticker, trades): the parser's normalisation with json.loads."""
    d = json.loads(payload)
    if d.get("event") != "update":
        return
    ch, res = d["channel"], d["result"]
    if ch == "futures.book_ticker":
        b, a, m = float(res["b"]), float(res["a"]), sizes[res["s"]]
        bq, aq = float(res["B"]) * m, float(res["A"]) * m
        if all(math.isfinite(v) for v in (b, a, bq, aq)) and b > 0 and a > 0 and bq >= 0 and aq >= 0:
            out.append((Kind.BOOK_TOP, Venue.GATE, 0, 0, lookup(res["s"]), (res["t"] or d["time_ms"]) * 1_000_000,
                        ts, b, bq, b * bq + a * aq, a, aq))
    elif ch == "futures.trades":
        for it in res:
            p, size, m = float(it["price"]), float(it["size"]), sizes[it["contract"]]
            if p > 0 and size != 0 and math.isfinite(p) and math.isfinite(size):
                q = abs(size) * m
                out.append((Kind.TRADE, Venue.GATE, Side.BUY if size > 0 else Side.SELL, 0, lookup(it["contract"]),
                            it["create_time_ms"] * 1_000_000, ts, p, q, p * q, float(it["id"]), 1.0))
    # order_book_update deltas: decoded and counted only, as in the msgspec parser


def bitget_normalise(payload: bytes, lookup, ts_recv: int, out: list) -> int:
    """BITGET.ws.2.0 frames (v1 mix trade, ticker, books): the reference normaliser on ``json.loads``;
    returns the outcome as an int."""
    if payload == b"pong":
        return 2
    try:
        m = json.loads(payload)
    except ValueError:
        return 5
    if "event" in m:
        return 2
    arg, action, data = m["arg"], m["action"], m["data"]
    ch, inst = arg["channel"], arg["instId"]
    iid = lookup(inst)
    if ch == "trade":
        if action != "update":
            return 1
        for ts, p, q, side in data:
            p, q = float(p), float(q)
            out.append((Kind.TRADE, Venue.BITGET, Side.BUY if side == "buy" else Side.SELL, 0, iid,
                        int(ts) * 1_000_000, ts_recv, p, q, p * q, 0.0, 1.0))
        return 0
    if ch == "ticker":
        t = data[0]
        mark = float(t["markPrice"])
        out.append((Kind.MARK, Venue.BITGET, 0, 0, iid, int(t["systemTime"]) * 1_000_000, ts_recv, mark,
                    float(t["indexPrice"]), 0.0, float(t["capitalRate"]), float(t["nextSettleTime"])))
        return 0
    if ch == "books":
        b = data[0]
        if action != "snapshot":
            return 1
        (bid, bq), (ask, aq) = [float(x) for x in b["bids"][0]], [float(x) for x in b["asks"][0]]
        out.append((Kind.BOOK_TOP, Venue.BITGET, 0, 0, iid, int(b["ts"]) * 1_000_000, ts_recv,
                    bid, bq, bid * bq + ask * aq, ask, aq))
        return 0
    return 3
