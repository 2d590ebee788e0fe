"""Bybit v5 linear wire protocol for the simulator (PROTOCOLS.md §2 and §9).

Contract served:

* WS path ``/v5/public/linear`` only; nothing is subscribed in the URL. Client
  frames ``{"req_id":..,"op":"subscribe"|"unsubscribe"|"ping","args":[..]}``;
  acks ``{"success":true,"ret_msg":"","conn_id":..,"req_id":..,"op":..}``, the
  pong ``{"success":true,"ret_msg":"pong",..,"op":"ping"}``; an unknown topic
  fails the whole request with ``"ret_msg":"error:handler not found,topic:<t>"``
  (the text seen on the live venue) and a malformed one with ``"Params Error"``;
  at most 21,000 characters of topics per connection.
* ``publicTrade.{s}``: the trades of one symbol in one step, batched (``S`` =
  taker side, ``i`` = a UUID). ``allLiquidation.{s}``: **every** liquidation,
  pushed in batches every 500 ms of market time (``throttle=False``: every
  step), ``S`` = liquidated position side ("Buy" = a long was liquidated),
  ``p`` = the order's (bankruptcy-like) price, ``v`` in base coin.
* ``orderbook.1.{s}``: a snapshot per top-of-book change. ``orderbook.{50,200,1000}.{s}``:
  a snapshot first, then deltas every 100 ms; ``u`` steps by one per message of a
  topic (as in Bybit's own historical dumps), ``seq`` is the market's update id.
  A new subscription makes the next frame of its topic a snapshot for every
  subscriber (the protocol allows a snapshot at any time).
* ``tickers.{s}``: a full snapshot first, then once a second a delta carrying
  only the fields whose text changed. ``openInterest`` is both sides (twice the
  market's figure) and ``singleOpenInterest`` one side (§2.5, 2026-06 change).
* REST (HTTP 200 always; errors carry ``retCode != 0``): ``/v5/market/instruments-info``
  (``limit`` default 500, max 1000, ``cursor`` pagination), ``/v5/market/tickers``,
  ``/v5/market/open-interest``, ``/v5/market/orderbook``, ``/v5/market/time``.

Not modelled: the 10-minute idle cut-off (the server core owns connection timers)
and the 200 ms cadence of ``orderbook.1000`` (all depths get the 100 ms deltas).
"""
from __future__ import annotations

import base64
import json
import re
import time
import uuid
from typing import Any, Callable, Iterable, Mapping
from urllib.parse import parse_qs, urlsplit

from .klines import KlineBook, select
from .market import BookDiff, BookTop, Liquidation, MarkBatch, SymbolSpec, Trade, spec_for

__all__ = ["BybitVenue", "WS_PATH"]

NAME = "bybit"
WS_PATH = "/v5/public/linear"
MAX_ARGS_CHARS = 21_000
LIQUIDATION_BATCH_S = 0.5
BOOK_DEPTHS = (50, 200, 1000)
MAX_TRADES_PER_MESSAGE = 1024
FUNDING_INTERVAL_MS = 8 * 3600 * 1000
# Inverse perps (category=inverse) and USDC perps (category=linear, settleCoin USDC) for engine/margin_oi.py:
# symbol -> the USDT perp whose market it follows; each holds MARGIN_OI_SHARE of that perp's open interest.
# Only their listing and open interest are served.
INVERSE = {"BTCUSD": "BTCUSDT", "ETHUSD": "ETHUSDT", "SOLUSD": "SOLUSDT"}   # 1 USD contracts, OI in USD
USDC_PERPS = {"BTCPERP": "BTCUSDT", "ETHPERP": "ETHUSDT", "SOLPERP": "SOLUSDT"}   # base-coin quantities
MARGIN_OI_SHARE = 0.25
OI_INTERVALS = ("5min", "15min", "30min", "1h", "4h", "1d")
_OI_INTERVAL_MS = {"5min": 300_000, "15min": 900_000, "30min": 1_800_000, "1h": 3_600_000, "4h": 14_400_000,
                   "1d": 86_400_000}
_TOPIC_RE = re.compile(r"^(?:(publicTrade|allLiquidation|tickers)|orderbook\.(1|50|200|1000))\.([A-Z0-9]+)$")


def _conn_id(client: Any) -> str:
    """A stable id per connection, in the UUID form Bybit's docs show."""
    return str(uuid.uuid5(uuid.NAMESPACE_OID, str(id(client.conn))))


def _reply(client: Any, req_id: Any, op: Any, success: bool, ret_msg: str) -> bytes:
    return json.dumps({"success": success, "ret_msg": ret_msg, "conn_id": _conn_id(client),
                       "req_id": req_id if isinstance(req_id, str) else "", "op": op if isinstance(op, str) else ""},
                      separators=(",", ":")).encode()


def _trade_uuid(trade_id: int) -> str:
    h = f"{trade_id:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


class _Symbol:
    """Per-symbol topic names, number formats and the state the rendering needs."""

    def __init__(self, spec: SymbolSpec) -> None:
        s = spec.symbol
        self.spec = spec
        self.pd, self.qd = spec.price_decimals, spec.qty_decimals
        self.trade, self.liq, self.ticker, self.top = f"publicTrade.{s}", f"allLiquidation.{s}", f"tickers.{s}", \
            f"orderbook.1.{s}"
        self.depth = {d: f"orderbook.{d}.{s}" for d in BOOK_DEPTHS}
        self.book_u = {d: 1_000_000 for d in (1, *BOOK_DEPTHS)}   # per-topic update id (never 1: that means reset)
        self.pending_liqs: list[Liquidation] = []
        self.last_ticker: dict[str, str] | None = None            # fields as last sent
        self.bid = self.ask = spec.price
        self.bid_qty = self.ask_qty = 0.0
        self.open_price = spec.price
        self.high = self.low = spec.price
        # 24 h figures start from a day at one weighted median trade a second, so rankings hold from the start
        self.turnover = spec.weight * spec.trade_usd * 86_400.0
        self.volume = self.turnover / spec.price


class BybitVenue:
    """Format neutral market events as Bybit v5 linear frames and speak Bybit's WS/REST rules."""

    name = NAME

    def __init__(self, symbols: Iterable[str], *, market: Any = None, throttle: bool = True) -> None:
        self.market = market
        self.symbols = {spec_for(s).symbol: _Symbol(spec_for(s)) for s in symbols}
        self.usdc = {s: u for s, u in USDC_PERPS.items() if u in self.symbols}
        self.batch_liquidations = throttle
        self.next_flush = LIQUIDATION_BATCH_S
        self.need_snapshot: set[str] = set()
        self.trade_seq = 1_000_000_000
        self.cs = 1_000_000
        self.klines = KlineBook()
        self.stats = {"bybit_liquidation_batches": 0, "bybit_liquidations_sent": 0, "bybit_subscribe_errors": 0,
                      "bybit_pongs": 0}

    # ---------------------------------------------------------------- connections

    def owns(self, path: str) -> bool:
        """Say whether this venue serves the WebSocket request path."""
        return urlsplit(path).path.rstrip("/") == WS_PATH

    def open_session(self, path: str) -> tuple[str, bool, list[str]]:
        """Bybit subscribes by message only: ``("linear", False, [])``; ValueError for other paths."""
        if not self.owns(path):
            raise ValueError(path)
        return "linear", False, []

    def accept_streams(self, category: str, names: Iterable[str]) -> list[str]:
        """Return the names that are topics this simulator serves."""
        return [n for n in names if self._valid(n)]

    def _valid(self, topic: str) -> bool:
        m = _TOPIC_RE.match(topic)
        return m is not None and m.group(3) in self.symbols

    def handle_text(self, client: Any, text: str | bytes, hub: Any) -> bytes:
        """Answer one client message; ``hub.subscribe/unsubscribe(client, names)`` change routing."""
        try:
            req = json.loads(text)
        except ValueError:
            return _reply(client, "", "", False, "Params Error")
        if not isinstance(req, dict):
            return _reply(client, "", "", False, "Params Error")
        op, rid = req.get("op"), req.get("req_id", "")
        if op == "ping":
            self.stats["bybit_pongs"] += 1
            return _reply(client, rid, op, True, "pong")
        if op not in ("subscribe", "unsubscribe"):
            return _reply(client, rid, op, False, f"error:invalid op,op:{op}" if isinstance(op, str) else "Params Error")
        args = req.get("args")
        if not isinstance(args, list) or not args or not all(isinstance(a, str) for a in args):
            self.stats["bybit_subscribe_errors"] += 1
            return _reply(client, rid, op, False, "Params Error")
        if op == "unsubscribe":
            hub.unsubscribe(client, args)
            return _reply(client, rid, op, True, "")
        bad = next((a for a in args if not self._valid(a)), None)
        if bad is not None:
            self.stats["bybit_subscribe_errors"] += 1
            return _reply(client, rid, op, False, f"error:handler not found,topic:{bad}")
        if sum(map(len, client.streams | set(args))) > MAX_ARGS_CHARS:
            self.stats["bybit_subscribe_errors"] += 1
            return _reply(client, rid, op, False, f"error:args length over {MAX_ARGS_CHARS} characters")
        new = [a for a in args if a not in client.streams]
        hub.subscribe(client, args)
        self.need_snapshot.update(a for a in new if a.startswith(("tickers.", "orderbook.")))
        return _reply(client, rid, op, True, "")

    @staticmethod
    def envelope(stream: str, raw: bytes) -> bytes:
        """Bybit has no combined mode: frames go out as they are."""
        return raw

    def endpoints(self, host: str, port: int) -> dict:
        return {"ws_urls": {"linear": f"ws://{host}:{port}{WS_PATH}"}, "rest_url": f"http://{host}:{port}",
                "symbols": list(self.symbols)}

    def counters(self) -> dict:
        """Venue counters merged into the simulator's ``counters()``."""
        return dict(self.stats)

    # ---------------------------------------------------------------- market events -> frames

    def render(self, events: list, t: float, subs: Mapping[str, Any], now_ms: int) -> list[tuple[str, bytes]]:
        """Format ``events`` (and liquidation batches due at ``t``) for the subscribed topics."""
        out: list[tuple[str, bytes]] = []
        add = out.append
        syms = self.symbols
        trades: dict[str, list[Trade]] = {}
        for ev in events:
            kind = type(ev)
            if kind is Trade:
                ss = syms[ev.symbol]
                ss.volume += ev.qty
                ss.turnover += ev.qty * ev.price
                self.klines.add(ev.symbol, ev.price, ev.qty, ev.taker_buy, now_ms)
                if ss.trade in subs:
                    trades.setdefault(ev.symbol, []).append(ev)
            elif kind is BookTop:
                ss = syms[ev.symbol]
                ss.bid, ss.bid_qty, ss.ask, ss.ask_qty = ev.bid, ev.bid_qty, ev.ask, ev.ask_qty
                if ss.top in subs:
                    add((ss.top, self._book_frame(ss, 1, "snapshot", [(ev.bid, ev.bid_qty)], [(ev.ask, ev.ask_qty)],
                                                  ev.update_id, now_ms)))
            elif kind is Liquidation:
                ss = syms[ev.symbol]
                if ss.liq in subs:
                    ss.pending_liqs.append(ev)
            elif kind is BookDiff:
                self._depth(ev, subs, now_ms, add)
            elif kind is MarkBatch:
                self._tickers(ev, subs, now_ms, add)
        for symbol, batch in trades.items():
            self._trades(syms[symbol], batch, now_ms, add)
        if not self.batch_liquidations or t + 1e-9 >= self.next_flush:
            self.next_flush = (int(t / LIQUIDATION_BATCH_S + 1e-9) + 1) * LIQUIDATION_BATCH_S
            for ss in syms.values():
                if ss.pending_liqs:
                    self._liquidations(ss, now_ms, add)
        return out

    def _trades(self, ss: _Symbol, batch: list[Trade], now_ms: int, add: Callable) -> None:
        pd, qd, sym = ss.pd, ss.qd, ss.spec.symbol
        self.trade_seq += 1
        for i in range(0, len(batch), MAX_TRADES_PER_MESSAGE):
            items = ",".join(
                f'{{"T":{now_ms},"s":"{sym}","S":"{"Buy" if ev.taker_buy else "Sell"}","v":"{ev.qty:.{qd}f}",'
                f'"p":"{ev.price:.{pd}f}","L":"ZeroPlusTick","i":"{_trade_uuid(ev.trade_id)}","BT":false,'
                f'"RPI":false,"seq":{self.trade_seq}}}' for ev in batch[i:i + MAX_TRADES_PER_MESSAGE])
            add((ss.trade, f'{{"topic":"{ss.trade}","type":"snapshot","ts":{now_ms},"data":[{items}]}}'.encode()))

    def _liquidations(self, ss: _Symbol, now_ms: int, add: Callable) -> None:
        pd, qd, sym = ss.pd, ss.qd, ss.spec.symbol
        items = ",".join(
            f'{{"T":{now_ms},"s":"{sym}","S":"{"Buy" if ev.long_liquidated else "Sell"}","v":"{ev.qty:.{qd}f}",'
            f'"p":"{ev.price:.{pd}f}"}}' for ev in ss.pending_liqs)
        self.stats["bybit_liquidation_batches"] += 1
        self.stats["bybit_liquidations_sent"] += len(ss.pending_liqs)
        ss.pending_liqs.clear()
        add((ss.liq, f'{{"topic":"{ss.liq}","type":"snapshot","ts":{now_ms},"data":[{items}]}}'.encode()))

    def _book_frame(self, ss: _Symbol, depth: int, kind: str, bids: list, asks: list, seq: int, now_ms: int) -> bytes:
        pd, qd = ss.pd, ss.qd
        ss.book_u[depth] += 1
        b = ",".join(f'["{p:.{pd}f}","{q:.{qd}f}"]' for p, q in bids)
        a = ",".join(f'["{p:.{pd}f}","{q:.{qd}f}"]' for p, q in asks)
        data = f'{{"s":"{ss.spec.symbol}","b":[{b}],"a":[{a}],"u":{ss.book_u[depth]},"seq":{seq}}}'
        topic = ss.top if depth == 1 else ss.depth[depth]
        if depth == 1:   # futures level 1 puts ts before type (§2.4)
            return f'{{"topic":"{topic}","ts":{now_ms},"type":"{kind}","data":{data},"cts":{now_ms}}}'.encode()
        return f'{{"topic":"{topic}","type":"{kind}","ts":{now_ms},"data":{data},"cts":{now_ms}}}'.encode()

    def _depth(self, ev: BookDiff, subs: Mapping, now_ms: int, add: Callable) -> None:
        ss = self.symbols[ev.symbol]
        for depth, topic in ss.depth.items():
            if topic not in subs:
                continue
            if topic in self.need_snapshot and self.market is not None:
                self.need_snapshot.discard(topic)
                seq, bids, asks = self.market.book_snapshot(ev.symbol, depth)   # seq: the state it shows
                add((topic, self._book_frame(ss, depth, "snapshot", bids, asks, seq, now_ms)))
            elif topic not in self.need_snapshot:
                add((topic, self._book_frame(ss, depth, "delta", ev.bids, ev.asks, ev.last_id, now_ms)))

    def _ticker_fields(self, ss: _Symbol, mark: float, index: float, funding: float, now_ms: int) -> dict[str, str]:
        spec, pd = ss.spec, ss.pd
        last = self.market.price(spec.symbol) if self.market is not None else mark
        ss.high, ss.low = max(ss.high, last), min(ss.low, last)
        oi = self.market.open_interest(spec.symbol) if self.market is not None else 0.0
        both = 2.0 * oi
        return {
            "symbol": spec.symbol, "tickDirection": "ZeroPlusTick",
            "price24hPcnt": f"{last / ss.open_price - 1.0:.6f}", "lastPrice": f"{last:.{pd}f}",
            "prevPrice24h": f"{ss.open_price:.{pd}f}", "highPrice24h": f"{ss.high:.{pd}f}",
            "lowPrice24h": f"{ss.low:.{pd}f}", "prevPrice1h": f"{ss.open_price:.{pd}f}",
            "markPrice": f"{mark:.{pd}f}", "indexPrice": f"{index:.{pd}f}",
            "openInterest": f"{both:.{ss.qd}f}", "openInterestValue": f"{both * mark:.2f}",
            "singleOpenInterest": f"{oi:.{ss.qd}f}", "singleOpenInterestValue": f"{oi * mark:.2f}",
            "turnover24h": f"{ss.turnover:.4f}", "volume24h": f"{ss.volume:.4f}", "fundingIntervalHour": "8",
            "fundingCap": "0.005", "nextFundingTime": str((now_ms // FUNDING_INTERVAL_MS + 1) * FUNDING_INTERVAL_MS),
            "fundingRate": f"{funding:.6f}", "bid1Price": f"{ss.bid:.{pd}f}", "bid1Size": f"{ss.bid_qty:.{ss.qd}f}",
            "ask1Price": f"{ss.ask:.{pd}f}", "ask1Size": f"{ss.ask_qty:.{ss.qd}f}", "preOpenPrice": "", "preQty": "",
            "curPreListingPhase": "",
        }

    def _tickers(self, ev: MarkBatch, subs: Mapping, now_ms: int, add: Callable) -> None:
        for m in ev.marks:
            ss = self.symbols[m.symbol]
            if ss.ticker not in subs:
                continue
            fields = self._ticker_fields(ss, m.mark, m.index, m.funding_rate, now_ms)
            self.cs += 1
            if ss.last_ticker is None or ss.ticker in self.need_snapshot:
                self.need_snapshot.discard(ss.ticker)
                kind, data = "snapshot", fields
            else:
                kind = "delta"
                data = {"symbol": m.symbol, **{k: v for k, v in fields.items() if ss.last_ticker.get(k) != v}}
            ss.last_ticker = fields
            body = json.dumps({"topic": ss.ticker, "type": kind, "data": data, "cs": self.cs, "ts": now_ms},
                              separators=(",", ":"))
            add((ss.ticker, body.encode()))

    # ---------------------------------------------------------------- REST

    def rest(self, path: str) -> tuple[int, Any]:
        """Answer a REST GET: ``(status, json-able body)``; 404 for paths that are not Bybit's."""
        parts = urlsplit(path)
        route = parts.path.rstrip("/")
        if not route.startswith("/v5/market/"):
            return 404, {"retCode": 404, "retMsg": "Not Found"}
        q = {k: v[0] for k, v in parse_qs(parts.query).items()}
        now_ms = time.time_ns() // 1_000_000
        if route == "/v5/market/time":
            ns = time.time_ns()
            return self._ok({"timeSecond": str(ns // 1_000_000_000), "timeNano": str(ns)}, now_ms)
        handler = {"/v5/market/instruments-info": self._instruments, "/v5/market/tickers": self._rest_tickers,
                   "/v5/market/open-interest": self._open_interest, "/v5/market/orderbook": self._orderbook,
                   "/v5/market/kline": self._kline}.get(route)
        if handler is None:
            return 404, {"retCode": 404, "retMsg": "Not Found"}
        if q.get("category") == "inverse" and route in ("/v5/market/instruments-info", "/v5/market/open-interest"):
            return self._inverse(route, q, now_ms)
        if q.get("category") != "linear":
            return self._error("params error: category is invalid", now_ms)
        symbol = q.get("symbol")
        usdc = route in ("/v5/market/instruments-info", "/v5/market/open-interest") and symbol in self.usdc
        if symbol is not None and symbol not in self.symbols and not usdc:
            return self._error("params error: symbol invalid", now_ms)
        if self.market is None and route != "/v5/market/instruments-info":
            return self._error("market data unavailable in replay mode", now_ms)
        return handler(q, now_ms)

    def _kline(self, q: dict, now_ms: int) -> tuple[int, dict]:
        """``/v5/market/kline`` (interval ``1`` only): ``[start, open, high, low, close, volume, turnover]``
        strings, newest first."""
        limit = self._int_param(q, "limit", 200, 1, 1000)
        if limit is None or q.get("interval") != "1" or "symbol" not in q:
            return self._error("params error: symbol, interval 1 and limit 1-1000 are required here", now_ms)
        try:
            start, end = (int(q[k]) if k in q else None for k in ("start", "end"))
        except ValueError:
            return self._error("params error: start/end must be integers", now_ms)
        ss = self.symbols[q["symbol"]]
        f = f".{ss.pd}f"
        rows = [[str(t), format(o, f), format(h, f), format(lo, f), format(c, f), f"{v:.{ss.qd}f}", f"{quote:.4f}"]
                for t, (o, h, lo, c, v, quote, *_) in select(self.klines, q["symbol"], start, end, limit)]
        return self._ok({"category": "linear", "symbol": q["symbol"], "list": rows[::-1]}, now_ms)

    @staticmethod
    def _ok(result: Any, now_ms: int) -> tuple[int, dict]:
        return 200, {"retCode": 0, "retMsg": "OK", "result": result, "retExtInfo": {}, "time": now_ms}

    @staticmethod
    def _error(msg: str, now_ms: int, code: int = 10001) -> tuple[int, dict]:
        return 200, {"retCode": code, "retMsg": msg, "result": {}, "retExtInfo": {}, "time": now_ms}

    @staticmethod
    def _int_param(q: dict, name: str, default: int, low: int, high: int) -> int | None:
        try:
            n = int(q.get(name, default))
        except ValueError:
            return None
        return n if low <= n <= high else None

    def _instruments(self, q: dict, now_ms: int) -> tuple[int, dict]:
        limit = self._int_param(q, "limit", 500, 1, 1000)
        if limit is None:
            return self._error("params error: limit must be between 1 and 1000", now_ms)
        names = [*sorted(self.symbols), *sorted(self.usdc)] if "symbol" not in q else [q["symbol"]]
        start = 0
        if q.get("cursor"):
            try:
                start = int(base64.urlsafe_b64decode(q["cursor"].encode()).decode().partition("=")[2])
            except (ValueError, UnicodeDecodeError):
                return self._error("params error: cursor invalid", now_ms)
        page = names[start:start + limit]
        more = start + limit < len(names)
        cursor = base64.urlsafe_b64encode(f"offset={start + limit}".encode()).decode() if more else ""
        return self._ok({"category": "linear", "list": [self._linear_instrument(s) for s in page],
                         "nextPageCursor": cursor}, now_ms)

    def _linear_instrument(self, name: str) -> dict:
        """A USDT perp's listing, or a USDC perp's (its USDT perp's, quoted and settled in USDC)."""
        if name in self.symbols:
            return self._instrument(self.symbols[name].spec)
        return {**self._instrument(self.symbols[self.usdc[name]].spec), "symbol": name, "quoteCoin": "USDC",
                "settleCoin": "USDC"}

    @staticmethod
    def _instrument(spec: SymbolSpec) -> dict:
        tick, step = f"{spec.tick:.{spec.price_decimals}f}", f"{spec.step:.{spec.qty_decimals}f}"
        return {
            "symbol": spec.symbol, "contractType": "LinearPerpetual", "status": "Trading", "baseCoin": spec.base,
            "quoteCoin": spec.quote, "launchTime": "1585526400000", "deliveryTime": "0", "deliveryFeeRate": "",
            "priceScale": str(spec.price_decimals),
            "leverageFilter": {"minLeverage": "1", "maxLeverage": "100.00", "leverageStep": "0.01"},
            "priceFilter": {"minPrice": tick, "maxPrice": "1999999.80", "tickSize": tick},
            "lotSizeFilter": {"maxOrderQty": "1190.000", "minOrderQty": step, "qtyStep": step,
                              "postOnlyMaxOrderQty": "1190.000", "maxMktOrderQty": "500.000",
                              "minNotionalValue": "5"},
            "unifiedMarginTrade": True, "fundingInterval": 480, "settleCoin": spec.quote, "copyTrading": "both",
            "upperFundingRate": "0.005", "lowerFundingRate": "-0.005", "isPreListing": False, "preListingInfo": None,
        }

    def _inverse(self, route: str, q: dict, now_ms: int) -> tuple[int, dict]:
        """category=inverse: the inverse perps of the simulated assets, OI in USD (1 USD contracts)."""
        listed = {s: m for s, m in INVERSE.items() if m in self.symbols}
        if route == "/v5/market/instruments-info":
            items = [{**self._instrument(self.symbols[m].spec), "symbol": s, "contractType": "InversePerpetual",
                      "quoteCoin": "USD", "settleCoin": self.symbols[m].spec.base} for s, m in listed.items()]
            return self._ok({"category": "inverse", "list": items, "nextPageCursor": ""}, now_ms)
        symbol = q.get("symbol")
        if symbol not in listed or self.market is None:
            return self._error("params error: symbol invalid", now_ms)
        usd = MARGIN_OI_SHARE * self.market.open_interest(listed[symbol]) * self.market.price(listed[symbol])
        step = _OI_INTERVAL_MS.get(q.get("intervalTime"), 300_000)
        return self._ok({"symbol": symbol, "category": "inverse", "nextPageCursor": "",
                         "list": [{"openInterest": f"{round(usd)}", "timestamp": str(now_ms // step * step)}]}, now_ms)

    def _rest_tickers(self, q: dict, now_ms: int) -> tuple[int, dict]:
        names = [q["symbol"]] if "symbol" in q else list(self.symbols)
        rows = []
        for s in names:
            m = self.market.mark(s)
            rows.append(self._ticker_fields(self.symbols[s], m.mark, m.index, m.funding_rate, now_ms))
        return self._ok({"category": "linear", "list": rows}, now_ms)

    def _open_interest(self, q: dict, now_ms: int) -> tuple[int, dict]:
        symbol, interval = q.get("symbol"), q.get("intervalTime")
        if symbol is None:
            return self._error("params error: symbol is required", now_ms)
        if interval not in OI_INTERVALS:
            return self._error("params error: intervalTime invalid", now_ms)
        if self._int_param(q, "limit", 50, 1, 200) is None:
            return self._error("params error: limit must be between 1 and 200", now_ms)
        step = _OI_INTERVAL_MS[interval]
        if symbol in self.usdc:   # a USDC perp: its share of the USDT perp's OI, in base coin like it
            ss = self.symbols[self.usdc[symbol]]
            oi = MARGIN_OI_SHARE * self.market.open_interest(ss.spec.symbol)
        else:
            ss = self.symbols[symbol]
            oi = self.market.open_interest(symbol)
        point = {"openInterest": f"{2.0 * oi:.{ss.qd}f}", "singleOpenInterest": f"{oi:.{ss.qd}f}",
                 "timestamp": str(now_ms // step * step)}
        return self._ok({"symbol": symbol, "category": "linear", "list": [point], "nextPageCursor": ""}, now_ms)

    def _orderbook(self, q: dict, now_ms: int) -> tuple[int, dict]:
        symbol = q.get("symbol")
        if symbol is None:
            return self._error("params error: symbol is required", now_ms)
        limit = self._int_param(q, "limit", 25, 1, 500)
        if limit is None:
            return self._error("params error: limit must be between 1 and 500", now_ms)
        ss = self.symbols[symbol]
        last_id, bids, asks = self.market.book_snapshot(symbol, limit)
        pd, qd = ss.pd, ss.qd
        return self._ok({"s": symbol, "b": [[f"{p:.{pd}f}", f"{x:.{qd}f}"] for p, x in bids],
                         "a": [[f"{p:.{pd}f}", f"{x:.{qd}f}"] for p, x in asks], "ts": now_ms, "u": last_id,
                         "seq": last_id, "cts": now_ms}, now_ms)
