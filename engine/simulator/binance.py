"""Binance USDⓈ-M futures wire protocol for the simulator (PROTOCOLS.md §1).

Contract (2026 layout):

* WS paths ``/public`` (book: ``@bookTicker``, ``@depth<N>[@speed]``, ``@depth[@speed]``)
  and ``/market`` (``@aggTrade``, ``@trade``, ``@markPrice[@1s]``, ``!markPrice@arr[@1s]``,
  ``@forceOrder``, ``!forceOrder@arr``), raw ``/<path>/ws/<s1>/<s2>`` or combined
  ``/<path>/stream?streams=<s1>/<s2>`` (envelope ``{"stream":..,"data":..}``).
* Live ``SUBSCRIBE`` / ``UNSUBSCRIBE`` / ``LIST_SUBSCRIPTIONS`` acked ``{"result":null,"id":N}``;
  malformed requests get ``{"error":{"code":..,"msg":..},"id":N}``.
* A stream requested on the wrong path is **ignored**: acked like Binance acks any
  well-formed name, never delivered, not listed, and counted as ``wrong_path_streams``
  (the live venue silently delivers nothing, so the feed's stale-stream handling is
  what catches it).
* ``forceOrder``: at most one order per symbol per 1000 ms, the latest (throttle on by default).
* REST: ``/fapi/v1/exchangeInfo`` (the market's perpetuals plus :data:`LISTING_EXTRAS`),
  ``/fapi/v1/ticker/24hr``, ``/fapi/v1/openInterest``, ``/fapi/v1/depth``,
  ``/fapi/v1/premiumIndex``, ``/fapi/v1/time``, ``/fapi/v1/ping``, ``/fapi/v1/klines`` (``1m`` only: the
  candles of the trades this simulator has sent, wall-clock minutes, the last :data:`KLINE_MINUTES`).

Real frame (c9s/bbgo PR #1232)::

    {"e":"forceOrder","E":1695714031883,"o":{"s":"BTCUSDT","S":"SELL","o":"LIMIT","f":"IOC",
     "q":"0.115","p":"26142.12","ap":"26245.10","X":"FILLED","l":"0.115","z":"0.115","T":1695714031881}}
"""
from __future__ import annotations

import dataclasses
import json
import re
import time
import zlib
from typing import Any, Callable, Iterable, Mapping
from urllib.parse import parse_qs, urlsplit

from .market import BookDiff, BookTop, Liquidation, MarkBatch, SymbolSpec, Trade, spec_for

__all__ = ["BinanceVenue", "ForceOrderThrottle", "PathError", "stream_category"]

NAME = "binance"
PATHS = ("public", "market")
MAX_STREAMS_PER_CONNECTION = 1024
FORCE_ORDER_WINDOW_S = 1.0
DEPTH_LIMITS = (5, 10, 20, 50, 100, 500, 1000)
FUNDING_INTERVAL_MS = 8 * 3600 * 1000
TRUTH_KEPT = 1000   # true top-of-book states kept per symbol (about 100 s of diffs)
KLINE_MINUTES = 1500   # 1-minute klines kept per symbol
KLINE_MAX_LIMIT = 1500

_PUBLIC_RE = re.compile(r"^[a-z0-9_]+@(bookTicker|depth(5|10|20)?(@(0ms|100ms|250ms|500ms))?|rpiDepth.*)$")
_MARKET_RE = re.compile(
    r"^([a-z0-9_]+@(aggTrade|trade|markPrice(@1s)?|forceOrder|kline_\w+|continuousKline\w*|ticker|miniTicker"
    r"|assetIndex)|!markPrice@arr(@1s)?|!forceOrder@arr|!contractInfo|!ticker@arr|!miniTicker@arr"
    r"|!bookTicker|![a-zA-Z]+@arr\w*)$")
_DEPTH_SPEED_MS = {"": 250, "@0ms": 100, "@100ms": 100, "@250ms": 250, "@500ms": 500}
# Listed beside the market's perpetuals but never traded here, each with a 24 h volume above any market
# symbol's, so a symbol selector that forgets to filter (quarterly, USDC-margined, settling) shows it.
LISTING_EXTRAS = (
    ("BTCUSDT_261225", "BTC", "USDT", "CURRENT_QUARTER", "TRADING", 9e10),
    ("BTCUSDC", "BTC", "USDC", "PERPETUAL", "TRADING", 8e10),
    ("OLDUSDT", "OLD", "USDT", "", "SETTLING", 7e10),
)


# Margin types beside the USDT perps (engine/margin_oi.py): COIN-M perps on /dapi (contractSize USD each) and the
# USD-M USDC perp above; each holds MARGIN_OI_SHARE of its asset's simulated USDT-perp open interest.
COIN_M = {"BTCUSD_PERP": ("BTCUSDT", 100), "ETHUSD_PERP": ("ETHUSDT", 10), "SOLUSD_PERP": ("SOLUSDT", 10)}
USDC_PERPS = {"BTCUSDC": "BTCUSDT"}
MARGIN_OI_SHARE = 0.25


def listing_volume_usd(spec: SymbolSpec) -> float:
    """Synthetic 24 h volume of a market symbol: its share of the event rate, and a per-symbol factor
    (stable across runs) so that generic small caps do not tie."""
    return spec.weight * spec.trade_usd * 2e5 * (0.5 + (zlib.crc32(spec.symbol.encode()) % 1000) / 1000)


class PathError(ValueError):
    """The WebSocket path is not one Binance serves."""


def stream_category(name: str) -> str | None:
    """Return ``"public"`` or ``"market"`` for a stream name, ``None`` if it is not a stream name."""
    if _PUBLIC_RE.match(name):
        return "public"
    if _MARKET_RE.match(name):
        return "market"
    return None


class ForceOrderThrottle:
    """Keep the latest liquidation per symbol and release it when its 1000 ms window ends."""

    def __init__(self, window_s: float = FORCE_ORDER_WINDOW_S) -> None:
        self.window_s = window_s
        self.pending: dict[str, Liquidation] = {}
        self.window_end: dict[str, float] = {}
        self.suppressed = 0

    def offer(self, liq: Liquidation) -> None:
        if liq.symbol in self.pending:
            self.suppressed += 1
        else:
            self.window_end[liq.symbol] = liq.t + self.window_s
        self.pending[liq.symbol] = liq

    def due(self, t: float) -> list[Liquidation]:
        """Return the liquidations whose window closed at or before ``t`` (simulated seconds)."""
        out = []
        for sym in [s for s, end in self.window_end.items() if end <= t + 1e-9]:
            del self.window_end[sym]
            out.append(self.pending.pop(sym))
        return out


def _fmt(value: float, decimals: int) -> str:
    return f"{value:.{decimals}f}"


class _SymbolStreams:
    """Precomputed stream names and number formats of one symbol."""

    def __init__(self, spec: SymbolSpec) -> None:
        s = spec.symbol.lower()
        self.spec = spec
        self.agg, self.trade, self.book_ticker = f"{s}@aggTrade", f"{s}@trade", f"{s}@bookTicker"
        self.force, self.mark1, self.mark3 = f"{s}@forceOrder", f"{s}@markPrice@1s", f"{s}@markPrice"
        self.diff_fast = (f"{s}@depth@100ms", f"{s}@depth@0ms")
        self.diff_slow = {250: (f"{s}@depth", f"{s}@depth@250ms"), 500: (f"{s}@depth@500ms",)}
        self.partial = {(n, ms): names for n in (5, 10, 20) for ms, names in (
            (100, (f"{s}@depth{n}@100ms", f"{s}@depth{n}@0ms")),
            (250, (f"{s}@depth{n}", f"{s}@depth{n}@250ms")),
            (500, (f"{s}@depth{n}@500ms",)))}
        self.pd, self.qd = spec.price_decimals, spec.qty_decimals
        self.diff_count = 0
        self.merged: dict[int, list] = {250: [], 500: []}   # BookDiffs waiting for a slow stream
        self.truth: dict[int, tuple] = {}   # diff last_id -> (top bids, top asks) after it (book-sync tests)


class KlineBook:
    """1-minute klines of the trades sent, per symbol, as ``/fapi/v1/klines`` rows (numbers kept as floats)."""

    def __init__(self, keep: int = KLINE_MINUTES) -> None:
        self.keep = keep
        self.rows: dict[str, dict[int, list]] = {}   # symbol -> open ms -> [o, h, l, c, vol, quote, n, buy, buy_quote]

    def add(self, symbol: str, price: float, qty: float, taker_buy: bool, now_ms: int) -> None:
        book = self.rows.setdefault(symbol, {})
        t = now_ms - now_ms % 60_000
        k = book.get(t)
        if k is None:
            k = book[t] = [price, price, price, price, 0.0, 0.0, 0, 0.0, 0.0]
            if len(book) > self.keep:
                del book[min(book)]
        k[1], k[2], k[3] = max(k[1], price), min(k[2], price), price
        k[4] += qty
        k[5] += qty * price
        k[6] += 1
        if taker_buy:
            k[7] += qty
            k[8] += qty * price

    def query(self, symbol: str, start: int | None, end: int | None, limit: int, pd: int, qd: int) -> list:
        """Rows opening in [start, end]: the first ``limit`` from ``start``, else the last ``limit``."""
        times = sorted(t for t in self.rows.get(symbol, {}) if (start is None or t >= start)
                       and (end is None or t <= end))
        times = times[:limit] if start is not None else times[-limit:]
        out = []
        for t in times:
            o, h, lo, c, v, q, n, bv, bq = self.rows[symbol][t]
            out.append([t, _fmt(o, pd), _fmt(h, pd), _fmt(lo, pd), _fmt(c, pd), _fmt(v, qd), t + 59_999,
                        _fmt(q, 4), n, _fmt(bv, qd), _fmt(bq, 4), "0"])
        return out


class BinanceVenue:
    """Format neutral market events as Binance frames and speak Binance's WS/REST rules."""

    name = NAME
    paths = PATHS
    max_streams = MAX_STREAMS_PER_CONNECTION

    def __init__(self, symbols: Iterable[str], *, market: Any = None, throttle: bool = True) -> None:
        self.market = market
        self.symbols = {spec_for(s).symbol: _SymbolStreams(spec_for(s)) for s in symbols}
        self.throttle = ForceOrderThrottle() if throttle else None
        self.wrong_path_streams = 0
        self.mark_count = 0
        self.klines = KlineBook()

    # ---------------------------------------------------------------- connections

    def owns(self, path: str) -> bool:
        """Say whether this venue serves the WebSocket request path."""
        return urlsplit(path).path.split("/")[1:2] in (["public"], ["market"])

    def open_session(self, path: str) -> tuple[str, bool, list[str]]:
        """Parse a WS path into ``(category, combined, streams)``; raise PathError when invalid."""
        parts = urlsplit(path)
        segs = parts.path.strip("/").split("/")
        if len(segs) < 2 or segs[0] not in PATHS:
            raise PathError(path)
        category, mode = segs[0], segs[1]
        if mode == "ws":
            return category, False, [s for s in segs[2:] if s]
        if mode == "stream" and len(segs) == 2:
            names = parse_qs(parts.query).get("streams", [""])[0]
            return category, True, [s for s in names.split("/") if s]
        raise PathError(path)

    def accept_streams(self, category: str, names: Iterable[str]) -> list[str]:
        """Return the names deliverable on ``category``; count (and drop) the wrong-path ones."""
        ok = []
        for n in names:
            if stream_category(n) == category:
                ok.append(n)
            else:
                self.wrong_path_streams += 1
        return ok

    def handle_text(self, client: Any, text: str | bytes, hub: Any) -> bytes:
        """Answer one client message; ``hub.subscribe/unsubscribe(client, names)`` change routing."""
        try:
            req = json.loads(text)
        except ValueError:
            return b'{"error":{"code":3,"msg":"Invalid JSON"},"id":null}'
        if not isinstance(req, dict):
            return b'{"error":{"code":2,"msg":"Invalid request"},"id":null}'
        rid = req.get("id")
        if not (rid is None or isinstance(rid, int) or (isinstance(rid, str) and len(rid) <= 36)):
            return b'{"error":{"code":2,"msg":"Invalid request: invalid id"},"id":null}'
        method, params = req.get("method"), req.get("params", [])
        if method == "LIST_SUBSCRIPTIONS":
            return json.dumps({"result": sorted(client.streams), "id": rid}, separators=(",", ":")).encode()
        if method in ("SUBSCRIBE", "UNSUBSCRIBE"):
            if not isinstance(params, list) or not all(isinstance(p, str) for p in params):
                return self._error(2, "Invalid request: params must be a list of stream names", rid)
            bad = [p for p in params if stream_category(p) is None]
            if bad:
                return self._error(2, f"Invalid request: unknown stream name '{bad[0]}'", rid)
            if method == "SUBSCRIBE":
                names = self.accept_streams(client.category, params)
                if len(client.streams | set(names)) > self.max_streams:
                    return self._error(2, f"Invalid request: more than {self.max_streams} streams", rid)
                hub.subscribe(client, names)
            else:
                hub.unsubscribe(client, params)
            return json.dumps({"result": None, "id": rid}, separators=(",", ":")).encode()
        if method in ("SET_PROPERTY", "GET_PROPERTY"):
            if method == "GET_PROPERTY":
                return json.dumps({"result": client.combined, "id": rid}, separators=(",", ":")).encode()
            if isinstance(params, list) and params[:1] == ["combined"] and len(params) == 2:
                client.combined = bool(params[1])
                return json.dumps({"result": None, "id": rid}, separators=(",", ":")).encode()
            return self._error(0, "Unknown property", rid)
        return self._error(2, "Invalid request: unknown method", rid)

    @staticmethod
    def _error(code: int, msg: str, rid: Any) -> bytes:
        return json.dumps({"error": {"code": code, "msg": msg}, "id": rid}, separators=(",", ":")).encode()

    @staticmethod
    def envelope(stream: str, raw: bytes) -> bytes:
        """Wrap a raw payload for a combined-stream connection."""
        return b'{"stream":"' + stream.encode() + b'","data":' + raw + b"}"

    def endpoints(self, host: str, port: int) -> dict:
        return {"ws_urls": {p: f"ws://{host}:{port}/{p}" for p in PATHS}, "rest_url": f"http://{host}:{port}"}

    # ---------------------------------------------------------------- market events -> frames

    def render(self, events: list, t: float, subs: Mapping[str, Any], now_ms: int) -> list[tuple[str, bytes]]:
        """Format ``events`` (and throttled liquidations due at ``t``) for the subscribed streams."""
        out: list[tuple[str, bytes]] = []
        add = out.append
        syms = self.symbols
        for ev in events:
            kind = type(ev)
            if kind is BookTop:
                ss = syms[ev.symbol]
                if ss.book_ticker in subs:
                    add((ss.book_ticker, (
                        f'{{"e":"bookTicker","u":{ev.update_id},"s":"{ev.symbol}","b":"{ev.bid:.{ss.pd}f}",'
                        f'"B":"{ev.bid_qty:.{ss.qd}f}","a":"{ev.ask:.{ss.pd}f}","A":"{ev.ask_qty:.{ss.qd}f}",'
                        f'"T":{now_ms},"E":{now_ms}}}').encode()))
            elif kind is Trade:
                ss = syms[ev.symbol]
                maker = "false" if ev.taker_buy else "true"   # m: the buyer is the maker
                self.klines.add(ev.symbol, ev.price, ev.qty, ev.taker_buy, now_ms)
                if ss.agg in subs:
                    add((ss.agg, (
                        f'{{"e":"aggTrade","E":{now_ms},"s":"{ev.symbol}","a":{ev.trade_id},'
                        f'"p":"{ev.price:.{ss.pd}f}","q":"{ev.qty:.{ss.qd}f}","f":{ev.trade_id},'
                        f'"l":{ev.trade_id},"T":{now_ms},"m":{maker}}}').encode()))
                if ss.trade in subs:
                    add((ss.trade, (
                        f'{{"e":"trade","E":{now_ms},"T":{now_ms},"s":"{ev.symbol}","t":{ev.trade_id},'
                        f'"p":"{ev.price:.{ss.pd}f}","q":"{ev.qty:.{ss.qd}f}","X":"MARKET","m":{maker}}}').encode()))
            elif kind is Liquidation:
                if self.throttle is not None:
                    self.throttle.offer(ev)
                else:
                    self._force_order(ev, subs, now_ms, add)
            elif kind is BookDiff:
                self._depth(ev, subs, now_ms, add)
            elif kind is MarkBatch:
                self._marks(ev, subs, now_ms, add)
        if self.throttle is not None:
            for liq in self.throttle.due(t):
                self._force_order(liq, subs, now_ms, add)
        return out

    def counters(self) -> dict:
        """Venue counters merged into the simulator's ``counters()``."""
        return {"force_orders_suppressed": self.force_orders_suppressed, "wrong_path_streams": self.wrong_path_streams}

    @property
    def force_orders_suppressed(self) -> int:
        return self.throttle.suppressed if self.throttle is not None else 0

    def _force_order(self, ev: Liquidation, subs: Mapping, now_ms: int, add: Callable) -> None:
        ss = self.symbols[ev.symbol]
        if ss.force not in subs and "!forceOrder@arr" not in subs:
            return
        q = f"{ev.qty:.{ss.qd}f}"
        raw = (f'{{"e":"forceOrder","E":{now_ms},"o":{{"s":"{ev.symbol}","S":"{"SELL" if ev.long_liquidated else "BUY"}",'
               f'"o":"LIMIT","f":"IOC","q":"{q}","p":"{ev.price:.{ss.pd}f}","ap":"{ev.avg_price:.{ss.pd}f}",'
               f'"X":"FILLED","l":"{q}","z":"{q}","T":{now_ms}}}}}').encode()
        if ss.force in subs:
            add((ss.force, raw))
        if "!forceOrder@arr" in subs:   # one object per event despite the name (§1.9.3)
            add(("!forceOrder@arr", raw))

    def _depth(self, ev: BookDiff, subs: Mapping, now_ms: int, add: Callable) -> None:
        ss = self.symbols[ev.symbol]
        ss.diff_count += 1
        n = ss.diff_count
        ss.truth[ev.last_id] = (ev.top_bids, ev.top_asks)
        if len(ss.truth) > TRUTH_KEPT:
            del ss.truth[next(iter(ss.truth))]
        for name in ss.diff_fast:
            if name in subs:
                add((name, self._depth_raw(ss, ev.first_id, ev.last_id, ev.prev_last_id, ev.bids, ev.asks, now_ms)))
        for ms, names in ss.diff_slow.items():
            # 100 ms diffs are merged into the slower speed's intervals
            pending = ss.merged[ms]
            pending.append(ev)
            if (n * 100) // ms == ((n - 1) * 100) // ms:
                continue
            wanted = [nm for nm in names if nm in subs]
            if wanted:
                bids: dict[float, float] = {}
                asks: dict[float, float] = {}
                for d in pending:
                    bids.update(d.bids)
                    asks.update(d.asks)
                raw = self._depth_raw(ss, pending[0].first_id, ev.last_id, pending[0].prev_last_id,
                                      sorted(bids.items(), reverse=True), sorted(asks.items()), now_ms)
                for nm in wanted:
                    add((nm, raw))
            pending.clear()
        for (levels, ms), names in ss.partial.items():
            if ms != 100 and (n * 100) // ms == ((n - 1) * 100) // ms:
                continue
            for nm in names:
                if nm in subs:
                    add((nm, self._depth_raw(ss, ev.first_id, ev.last_id, ev.prev_last_id,
                                             ev.top_bids[:levels], ev.top_asks[:levels], now_ms)))

    def true_book(self, symbol: str, update_id: int) -> tuple[list, list] | None:
        """The market's best ``TOP_LEVELS`` bids and asks right after the diff ending at ``update_id``
        (None if no diff ended there or it is too old)."""
        ss = self.symbols.get(symbol)
        return None if ss is None else ss.truth.get(update_id)

    @staticmethod
    def _depth_raw(ss: _SymbolStreams, first: int, last: int, prev: int, bids: list, asks: list,
                   now_ms: int) -> bytes:
        pd, qd = ss.pd, ss.qd
        b = ",".join(f'["{p:.{pd}f}","{q:.{qd}f}"]' for p, q in bids)
        a = ",".join(f'["{p:.{pd}f}","{q:.{qd}f}"]' for p, q in asks)
        return (f'{{"e":"depthUpdate","E":{now_ms},"T":{now_ms},"s":"{ss.spec.symbol}","U":{first},"u":{last},'
                f'"pu":{prev},"b":[{b}],"a":[{a}]}}').encode()

    def _marks(self, ev: MarkBatch, subs: Mapping, now_ms: int, add: Callable) -> None:
        self.mark_count += 1
        slow = self.mark_count % 3 == 0    # the plain streams update every 3 s
        next_funding = (now_ms // FUNDING_INTERVAL_MS + 1) * FUNDING_INTERVAL_MS
        objs = []
        want_arr = "!markPrice@arr@1s" in subs or (slow and "!markPrice@arr" in subs)
        for m in ev.marks:
            ss = self.symbols[m.symbol]
            if not (want_arr or ss.mark1 in subs or (slow and ss.mark3 in subs)):
                continue
            raw = (f'{{"e":"markPriceUpdate","E":{now_ms},"s":"{m.symbol}","p":"{m.mark:.8f}",'
                   f'"i":"{m.index:.8f}","P":"{m.mark:.8f}","r":"{m.funding_rate:.8f}","T":{next_funding}}}')
            objs.append(raw)
            if ss.mark1 in subs:
                add((ss.mark1, raw.encode()))
            if slow and ss.mark3 in subs:
                add((ss.mark3, raw.encode()))
        if want_arr:
            arr = ("[" + ",".join(objs) + "]").encode()
            if "!markPrice@arr@1s" in subs:
                add(("!markPrice@arr@1s", arr))
            if slow and "!markPrice@arr" in subs:
                add(("!markPrice@arr", arr))

    # ---------------------------------------------------------------- REST

    def rest(self, path: str) -> tuple[int, Any]:
        """Answer a REST GET: return ``(status, json-able body)``."""
        parts = urlsplit(path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        route = parts.path.rstrip("/")
        now_ms = time.time_ns() // 1_000_000
        if route == "/fapi/v1/ping":
            return 200, {}
        if route == "/fapi/v1/time":
            return 200, {"serverTime": now_ms}
        if route == "/fapi/v1/exchangeInfo":
            return 200, self._exchange_info(now_ms)
        if route == "/fapi/v1/ticker/24hr":
            return self._tickers(query.get("symbol"), now_ms)
        if route.startswith("/dapi/") or (route == "/fapi/v1/openInterest" and query.get("symbol") in USDC_PERPS):
            return self._margin_rest(route, query.get("symbol"), now_ms)
        if route not in ("/fapi/v1/openInterest", "/fapi/v1/depth", "/fapi/v1/premiumIndex", "/fapi/v1/klines"):
            return 404, {"code": -5000, "msg": f"Path {parts.path}, Method GET is invalid"}
        symbol = query.get("symbol")
        if symbol is None and route == "/fapi/v1/premiumIndex":
            return 200, [self._premium(s, now_ms) for s in self.symbols]
        if not symbol:
            return 400, {"code": -1102, "msg": "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed."}
        if symbol not in self.symbols or self.market is None:
            return 400, {"code": -1121, "msg": "Invalid symbol."}
        ss = self.symbols[symbol]
        if route == "/fapi/v1/openInterest":
            return 200, {"openInterest": _fmt(self.market.open_interest(symbol), ss.qd), "symbol": symbol, "time": now_ms}
        if route == "/fapi/v1/premiumIndex":
            return 200, self._premium(symbol, now_ms)
        if route == "/fapi/v1/klines":
            return self._klines(ss, query)
        try:
            limit = int(query.get("limit", "500"))
        except ValueError:
            return 400, {"code": -1100, "msg": "Illegal characters found in parameter 'limit'; legal range is '^[0-9]{1,20}$'."}
        limit = next((n for n in DEPTH_LIMITS if n >= limit), 1000)
        last_id, bids, asks = self.market.book_snapshot(symbol, limit)
        return 200, {"lastUpdateId": last_id, "E": now_ms, "T": now_ms,
                     "bids": [[_fmt(p, ss.pd), _fmt(q, ss.qd)] for p, q in bids],
                     "asks": [[_fmt(p, ss.pd), _fmt(q, ss.qd)] for p, q in asks]}

    def _margin_rest(self, route: str, symbol: str | None, now_ms: int) -> tuple[int, Any]:
        """COIN-M ``/dapi/v1/exchangeInfo`` and ``/dapi/v1/openInterest`` (contracts), USDC-perp OI (base)."""
        coin_m = {s: v for s, v in COIN_M.items() if v[0] in self.symbols}
        if route == "/dapi/v1/exchangeInfo":
            return 200, {"timezone": "UTC", "serverTime": now_ms, "symbols": [
                {"symbol": s, "pair": s.split("_")[0], "contractType": "PERPETUAL", "contractStatus": "TRADING",
                 "contractSize": size, "marginAsset": spec_for(m).base, "baseAsset": spec_for(m).base,
                 "quoteAsset": "USD", "pricePrecision": 1, "quantityPrecision": 0, "filters": []}
                for s, (m, size) in coin_m.items()]}
        market_symbol = coin_m.get(symbol, (USDC_PERPS.get(symbol),))[0]
        if route not in ("/dapi/v1/openInterest", "/fapi/v1/openInterest"):
            return 404, {"code": -5000, "msg": f"Path {route}, Method GET is invalid"}
        if market_symbol not in self.symbols or self.market is None:
            return 400, {"code": -1121, "msg": "Invalid symbol."}
        base = MARGIN_OI_SHARE * self.market.open_interest(market_symbol)
        if symbol in coin_m:   # contracts of contractSize USD
            return 200, {"symbol": symbol, "pair": symbol.split("_")[0], "contractType": "PERPETUAL", "time": now_ms,
                         "openInterest": str(round(base * self.market.price(market_symbol) / coin_m[symbol][1]))}
        return 200, {"openInterest": _fmt(base, 3), "symbol": symbol, "time": now_ms}

    def _tickers(self, symbol: str | None, now_ms: int) -> tuple[int, Any]:
        """``/fapi/v1/ticker/24hr``: synthetic 24 h volumes that rank the market's symbols by their weight."""
        rows = []
        for ss in self.symbols.values():
            spec = ss.spec
            price = self.market.price(spec.symbol) if self.market is not None else spec.price
            rows.append((spec.symbol, price, listing_volume_usd(spec)))
        rows += [(sym, spec_for(sym).price, vol) for sym, *_, vol in LISTING_EXTRAS]
        if symbol is not None:
            rows = [r for r in rows if r[0] == symbol]
            if not rows:
                return 400, {"code": -1121, "msg": "Invalid symbol."}
        body = [{"symbol": sym, "lastPrice": _fmt(price, 8), "volume": _fmt(vol / price, 3),
                 "quoteVolume": _fmt(vol, 2), "openTime": now_ms - 86_400_000, "closeTime": now_ms, "count": 1000}
                for sym, price, vol in rows]
        return 200, body if symbol is None else body[0]

    def rest_weight(self, path: str) -> int:
        parts = urlsplit(path)
        if parts.path.startswith("/fapi/v1/ticker/24hr"):
            return 1 if parse_qs(parts.query).get("symbol") else 40
        if parts.path.startswith("/fapi/v1/depth"):
            limit = int(parse_qs(parts.query).get("limit", ["500"])[0] or 500)
            return 2 if limit <= 50 else 5 if limit <= 100 else 10 if limit <= 500 else 20
        if parts.path.startswith("/fapi/v1/klines"):
            raw = parse_qs(parts.query).get("limit", ["500"])[0]
            limit = int(raw) if raw.isdigit() else 500   # a bad limit is answered 400 by rest()
            return 1 if limit < 100 else 2 if limit < 500 else 5 if limit <= 1000 else 10
        return 1

    def _klines(self, ss: _SymbolStreams, query: dict) -> tuple[int, Any]:
        if query.get("interval") != "1m":
            return 400, {"code": -1120, "msg": "Invalid interval."}
        try:
            limit = int(query.get("limit", "500"))
            start, end = (int(query[k]) if k in query else None for k in ("startTime", "endTime"))
        except ValueError:
            return 400, {"code": -1100, "msg": "Illegal characters found in a parameter."}
        if not 0 < limit <= KLINE_MAX_LIMIT:
            return 400, {"code": -1130, "msg": "Data sent for parameter 'limit' is not valid."}
        return 200, self.klines.query(ss.spec.symbol, start, end, limit, ss.pd, ss.qd)

    def _premium(self, symbol: str, now_ms: int) -> dict:
        m = self.market.mark(symbol)
        return {"symbol": symbol, "markPrice": _fmt(m.mark, 8), "indexPrice": _fmt(m.index, 8),
                "estimatedSettlePrice": _fmt(m.mark, 8), "lastFundingRate": _fmt(m.funding_rate, 8),
                "interestRate": "0.00010000",
                "nextFundingTime": (now_ms // FUNDING_INTERVAL_MS + 1) * FUNDING_INTERVAL_MS, "time": now_ms}

    def _exchange_info(self, now_ms: int) -> dict:
        listed = [(ss.spec, "PERPETUAL", "TRADING") for ss in self.symbols.values()]
        listed += [(dataclasses.replace(spec_for(sym), symbol=sym, base=base, quote=quote), ctype, status)
                   for sym, base, quote, ctype, status, _ in LISTING_EXTRAS]
        symbols = []
        for spec, ctype, status in listed:
            symbols.append({
                "symbol": spec.symbol, "pair": spec.symbol.split("_")[0], "contractType": ctype,
                "deliveryDate": 4133404800000, "onboardDate": 1569398400000, "status": status,
                "baseAsset": spec.base, "quoteAsset": spec.quote, "marginAsset": spec.quote,
                "pricePrecision": spec.price_decimals, "quantityPrecision": spec.qty_decimals,
                "baseAssetPrecision": 8, "quotePrecision": 8, "underlyingType": "COIN",
                "filters": [
                    {"filterType": "PRICE_FILTER", "minPrice": _fmt(spec.tick, spec.price_decimals),
                     "maxPrice": "4529764", "tickSize": _fmt(spec.tick, spec.price_decimals)},
                    {"filterType": "LOT_SIZE", "minQty": _fmt(spec.step, spec.qty_decimals),
                     "maxQty": "1000", "stepSize": _fmt(spec.step, spec.qty_decimals)},
                    {"filterType": "MIN_NOTIONAL", "notional": "100"},
                ],
                "orderTypes": ["LIMIT", "MARKET"], "timeInForce": ["GTC", "IOC", "FOK", "GTX"],
            })
        return {"timezone": "UTC", "serverTime": now_ms, "futuresType": "U_MARGINED",
                "rateLimits": [{"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 2400}],
                "exchangeFilters": [], "assets": [], "symbols": symbols}
