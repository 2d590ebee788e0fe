"""Bitget USDT-M futures wire protocol for the simulator (PROTOCOLS.md §5).

* WS ``/v2/ws/public`` (args ``{"instType":"USDT-FUTURES","channel":..,"instId":..}``):
  ``trade`` (first push after subscribing = ``snapshot`` of recent trades, then
  ``update``), ``books1`` (from best bid/ask changes), ``books5``/``books15``
  (snapshots every 150 ms), ``books`` (full-depth snapshot, then ``update`` deltas
  with ``seq``/``pseq``; ``checksum`` is 0 as observed since 2026-06) and
  ``ticker`` (mark, index, funding, ``holdingAmount``; once a second here).
* WS ``/v3/ws/public`` (args ``{"instType":"usdt-futures","topic":..}``): the
  ``liquidation`` topic. ``side`` is the liquidated **position** (``buy`` = long),
  ``amount`` is USDT. With ``throttle`` the push follows one documented rule: once a
  second, the largest liquidation per symbol and side of that second.
* ``{"op":"subscribe"|"unsubscribe","args":[..]}`` answered with one
  ``{"event":"subscribe","arg":{..}}`` per arg (v3 acks add ``connId``); an unknown
  symbol gets ``{"event":"error","arg":{..},"code":30003,"msg":"..Symbol not exists","op":"subscribe"}``;
  other errors' codes are the simulator's own. Text ``ping`` -> text ``pong``; a client that
  has sent something but no ``ping`` for ``ping_timeout_s`` (2 min) is closed.
* REST ``/api/v2/mix/market/contracts``, ``/tickers``, ``/ticker``, ``/open-interest``
  (all ``?productType=USDT-FUTURES``), ``/api/v2/public/time``; bodies
  ``{"code":"00000","msg":"success","requestTime":..,"data":..}``.
"""
from __future__ import annotations

import asyncio
import collections
import json
import time
from typing import Any, Callable, Iterable, Mapping
from urllib.parse import parse_qs, urlsplit

from .klines import KlineBook, select
from .market import BookDiff, BookTop, Liquidation, MarkBatch, SymbolSpec, Trade, spec_for

__all__ = ["BitgetVenue", "LiquidationSampler"]

NAME = "bitget"
V2_PATH, V3_PATH = "/v2/ws/public", "/v3/ws/public"
PRODUCT_TYPE, UTA_INST_TYPE = "USDT-FUTURES", "usdt-futures"
# Margin types beside USDT-FUTURES (engine/margin_oi.py): productType -> (symbol suffix, quote); sizes are base coin,
# each contract holding MARGIN_OI_SHARE of its asset's simulated USDT-perp open interest
MARGIN_PRODUCTS = {"COIN-FUTURES": ("USD", "USD"), "USDC-FUTURES": ("PERP", "USDC")}
MARGIN_OI_SHARE = 0.25
MAX_CHANNELS_PER_CONNECTION = 1000
PING_TIMEOUT_S = 120.0
LIQUIDATION_WINDOW_S = 1.0
SNAPSHOT_EVERY_MS = 150                 # books5 / books15 cadence
RECENT_TRADES = 50                      # trades in the snapshot a new trade subscriber gets
FULL_BOOK_LEVELS = 200
FUNDING_INTERVAL_MS = 8 * 3600 * 1000
V2_CHANNELS = ("trade", "ticker", "books", "books1", "books5", "books15")


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


class LiquidationSampler:
    """Keep the largest liquidation per (symbol, side) in each window; release them when it ends."""

    def __init__(self, window_s: float = LIQUIDATION_WINDOW_S) -> None:
        self.window_s = window_s
        self.window_end: float | None = None
        self.largest: dict[tuple[str, bool], Liquidation] = {}
        self.suppressed = 0

    def offer(self, liq: Liquidation) -> None:
        if self.window_end is None:
            self.window_end = liq.t + self.window_s
        key = (liq.symbol, liq.long_liquidated)
        kept = self.largest.get(key)
        if kept is None:
            self.largest[key] = liq
            return
        self.suppressed += 1
        if liq.qty * liq.avg_price > kept.qty * kept.avg_price:
            self.largest[key] = liq

    def due(self, t: float) -> list[Liquidation]:
        """The sampled liquidations, once the window has closed at ``t`` (simulated seconds)."""
        if self.window_end is None or t + 1e-9 < self.window_end:
            return []
        out = sorted(self.largest.values(), key=lambda liq: liq.t)
        self.largest.clear()
        self.window_end = None
        return out


class _Sym:
    """Precomputed stream names, formats and recent state of one symbol."""

    def __init__(self, spec: SymbolSpec) -> None:
        s = spec.symbol
        self.spec = spec
        self.trade, self.ticker, self.books = f"trade.{s}", f"ticker.{s}", f"books.{s}"
        self.books1, self.books5, self.books15 = f"books1.{s}", f"books5.{s}", f"books15.{s}"
        self.pd, self.qd = spec.price_decimals, spec.qty_decimals
        self.recent: collections.deque = collections.deque(maxlen=RECENT_TRADES)   # rendered trade items
        self.top = (0.0, 0.0, 0.0, 0.0)                                          # bid, bid qty, ask, ask qty
        self.diffs = 0

    def head(self, channel: str, action: str) -> str:
        return (f'{{"action":"{action}","arg":{{"instType":"{PRODUCT_TYPE}","channel":"{channel}",'
                f'"instId":"{self.spec.symbol}"}},"data":[')

    def levels(self, levels: Iterable) -> str:
        pd, qd = self.pd, self.qd
        return ",".join(f'["{p:.{pd}f}","{q:.{qd}f}"]' for p, q in levels)


class BitgetVenue:
    """Format neutral market events as Bitget frames and speak Bitget's WS/REST rules."""

    name = NAME

    def __init__(self, symbols: Iterable[str], *, market: Any = None, throttle: bool = True,
                 ping_timeout_s: float = PING_TIMEOUT_S) -> None:
        self.market = market
        self.symbols = {spec_for(s).symbol: _Sym(spec_for(s)) for s in symbols}
        self.sampler = LiquidationSampler() if throttle else None
        self.klines = KlineBook()
        self.ping_timeout_s = ping_timeout_s
        self.last_ping: dict[Any, float] = {}   # client -> monotonic time of its last ping (or first message)
        self.ping_timeouts = 0
        self.subscribe_errors = 0
        self._next_ping_check = 0.0

    # ---------------------------------------------------------------- connections

    def owns(self, path: str) -> bool:
        """Say whether this venue serves the WebSocket request path."""
        return urlsplit(path).path.rstrip("/") in (V2_PATH, V3_PATH)

    def open_session(self, path: str) -> tuple[str, bool, list[str]]:
        """``(category "v2"|"v3", combined False, no streams)``: Bitget subscribes by message only."""
        route = urlsplit(path).path.rstrip("/")
        if route not in (V2_PATH, V3_PATH):
            raise ValueError(path)
        return ("v2" if route == V2_PATH else "v3"), False, []

    def accept_streams(self, category: str, names: Iterable[str]) -> list[str]:
        return [n for n in names if self._category_of(n) == category]

    def _category_of(self, name: str) -> str | None:
        if name == "liquidation":
            return "v3"
        channel, _, symbol = name.partition(".")
        return "v2" if channel in V2_CHANNELS and symbol in self.symbols else None

    def handle_text(self, client: Any, text: str | bytes, hub: Any) -> bytes | None:
        """Answer one client message; subscribe replies go out one frame per arg."""
        if isinstance(text, bytes):
            text = text.decode(errors="replace")
        self.last_ping.setdefault(client, time.monotonic())
        if text == "ping":
            self.last_ping[client] = time.monotonic()
            return b"pong"
        try:
            req = json.loads(text)
        except ValueError:
            return _dumps({"event": "error", "code": 30012, "msg": "param error: not valid JSON"})
        if not isinstance(req, dict) or req.get("op") not in ("subscribe", "unsubscribe") \
                or not isinstance(req.get("args"), list) or not req["args"]:
            return _dumps({"event": "error", "code": 30002, "msg": "illegal request", "op": str(req.get("op", ""))
                           if isinstance(req, dict) else ""})
        op = req["op"]
        replies, names = [], []
        for arg in req["args"]:
            name, error = self._stream_of(client.category, arg)
            if error:
                self.subscribe_errors += 1
                replies.append(_dumps({"event": "error", "arg": arg, "code": error[0], "msg": error[1], "op": op}))
                continue
            names.append(name)
            ack: dict = {"event": op, "arg": arg}
            if client.category == "v3":
                ack["connId"] = f"sim-{id(client):x}"
            replies.append(_dumps(ack))
        if op == "subscribe":
            if len(client.streams | set(names)) > MAX_CHANNELS_PER_CONNECTION:
                return _dumps({"event": "error", "code": 30007, "msg": "channel limit exceeded", "op": op})
            fresh = [n for n in names if n not in client.streams]
            hub.subscribe(client, names)
            replies.extend(self._first_pushes(fresh))
        else:
            hub.unsubscribe(client, names)
        _send(hub, client, replies)
        return None

    def _stream_of(self, category: str, arg: Any) -> tuple[str, tuple[int, str] | None]:
        """Stream name of one subscribe arg, or an error ``(code, msg)``."""
        if not isinstance(arg, dict):
            return "", (30002, "illegal request: arg must be an object")
        if category == "v3":
            if arg.get("instType") != UTA_INST_TYPE:
                return "", (30001, f"instType:{arg.get('instType')} doesn't exist")
            if arg.get("topic") != "liquidation":
                return "", (30001, f"topic:{arg.get('topic')} doesn't exist")
            return "liquidation", None
        if arg.get("instType") != PRODUCT_TYPE:
            return "", (30001, f"instType:{arg.get('instType')} doesn't exist")
        channel, inst = arg.get("channel"), arg.get("instId")
        if channel not in V2_CHANNELS:
            return "", (30001, f"channel:{channel} doesn't exist")
        if inst not in self.symbols:
            return "", (30003, f"instType:{PRODUCT_TYPE},channel:{channel},instId:{inst} Symbol not exists")
        return f"{channel}.{inst}", None

    def _first_pushes(self, names: list[str]) -> list[bytes]:
        """What a new subscriber gets at once: recent trades, a full book, a ticker."""
        out = []
        now_ms = time.time_ns() // 1_000_000
        for name in names:
            channel, _, symbol = name.partition(".")
            ss = self.symbols.get(symbol)
            if ss is None or self.market is None:
                continue
            if channel == "trade":
                items = ",".join(reversed(ss.recent))     # newest first, as the venue lists them
                out.append(f'{ss.head("trade", "snapshot")}{items}],"ts":{now_ms}}}'.encode())
            elif channel == "books":
                seq, bids, asks = self.market.book_snapshot(symbol, FULL_BOOK_LEVELS)
                out.append(self._book(ss, "books", "snapshot", bids, asks, seq, 0, now_ms))
            elif channel == "ticker":
                out.append(self._ticker(ss, self.market.mark(symbol), now_ms, "snapshot"))
        return out

    @staticmethod
    def envelope(stream: str, raw: bytes) -> bytes:
        return raw          # Bitget has no combined mode

    def endpoints(self, host: str, port: int) -> dict:
        return {"ws_urls": {"public": f"ws://{host}:{port}{V2_PATH}", "uta": f"ws://{host}:{port}{V3_PATH}"},
                "rest_url": f"http://{host}:{port}", "symbols": list(self.symbols)}

    def counters(self) -> dict:
        """Venue counters merged into the simulator's ``counters()``."""
        return {"bitget_liquidations_suppressed": self.sampler.suppressed if self.sampler else 0,
                "bitget_ping_timeouts": self.ping_timeouts, "bitget_subscribe_errors": self.subscribe_errors}

    def _check_pings(self) -> None:
        now = time.monotonic()
        if now < self._next_ping_check:
            return
        self._next_ping_check = now + min(1.0, self.ping_timeout_s / 4)
        for client, last in list(self.last_ping.items()):
            if client.conn.protocol.close_sent is not None or client.conn.transport.is_closing():
                del self.last_ping[client]
            elif now - last > self.ping_timeout_s:
                del self.last_ping[client]
                self.ping_timeouts += 1
                asyncio.get_running_loop().create_task(client.conn.close(1000, "no ping received"))

    # ---------------------------------------------------------------- market events -> frames

    def render(self, events: list, t: float, subs: Mapping[str, Any], now_ms: int) -> list[tuple[str, bytes]]:
        """Format ``events`` (and sampled liquidations due at ``t``) for the subscribed streams."""
        if self.last_ping:
            self._check_pings()
        out: list[tuple[str, bytes]] = []
        trades: dict[str, list[str]] = {}
        liqs: list[Liquidation] = []
        syms = self.symbols
        for ev in events:
            kind = type(ev)
            if kind is Trade:
                ss = syms[ev.symbol]
                item = (f'{{"ts":"{now_ms}","price":"{ev.price:.{ss.pd}f}","size":"{ev.qty:.{ss.qd}f}",'
                        f'"side":"{"buy" if ev.taker_buy else "sell"}","tradeId":"{ev.trade_id}"}}')
                ss.recent.append(item)
                self.klines.add(ev.symbol, ev.price, ev.qty, ev.taker_buy, now_ms)
                if ss.trade in subs:
                    trades.setdefault(ev.symbol, []).append(item)
            elif kind is BookTop:
                ss = syms[ev.symbol]
                ss.top = (ev.bid, ev.bid_qty, ev.ask, ev.ask_qty)
                if ss.books1 in subs:
                    out.append((ss.books1, self._book(ss, "books1", "snapshot", [(ev.bid, ev.bid_qty)],
                                                      [(ev.ask, ev.ask_qty)], ev.update_id, 0, now_ms)))
            elif kind is Liquidation:
                if self.sampler is not None:
                    self.sampler.offer(ev)
                else:
                    liqs.append(ev)
            elif kind is BookDiff:
                self._depth(ev, subs, now_ms, out)
            elif kind is MarkBatch:
                for m in ev.marks:
                    ss = syms[m.symbol]
                    if ss.ticker in subs:
                        out.append((ss.ticker, self._ticker(ss, m, now_ms, "snapshot")))
        for symbol, items in trades.items():   # the venue batches the fills of one moment
            ss = syms[symbol]
            out.append((ss.trade, f'{ss.head("trade", "update")}{",".join(items)}],"ts":{now_ms}}}'.encode()))
        if self.sampler is not None:
            liqs.extend(self.sampler.due(t))
        if liqs and "liquidation" in subs:
            out.append(("liquidation", self._liquidations(liqs, now_ms)))
        return out

    def _liquidations(self, liqs: list[Liquidation], now_ms: int) -> bytes:
        items = ",".join(
            f'{{"symbol":"{liq.symbol}","side":"{"buy" if liq.long_liquidated else "sell"}",'
            f'"price":"{liq.avg_price:.{self.symbols[liq.symbol].pd}f}","amount":"{liq.qty * liq.avg_price:.6f}",'
            f'"ts":"{now_ms}"}}' for liq in liqs)
        return (f'{{"action":"update","arg":{{"instType":"{UTA_INST_TYPE}","topic":"liquidation"}},'
                f'"data":[{items}],"ts":{now_ms}}}').encode()

    def _depth(self, ev: BookDiff, subs: Mapping, now_ms: int, out: list) -> None:
        ss = self.symbols[ev.symbol]
        ss.diffs += 1
        n = ss.diffs
        if ss.books in subs:   # pseq = the previous delta's seq; a subscribe snapshot's seq lies in [pseq, seq]
            out.append((ss.books, self._book(ss, "books", "update", ev.bids, ev.asks, ev.last_id, ev.prev_last_id,
                                             now_ms)))
        if (n * 100) // SNAPSHOT_EVERY_MS == ((n - 1) * 100) // SNAPSHOT_EVERY_MS:
            return
        for channel, name, depth in (("books5", ss.books5, 5), ("books15", ss.books15, 15)):
            if name in subs:
                out.append((name, self._book(ss, channel, "snapshot", ev.top_bids[:depth], ev.top_asks[:depth],
                                             ev.last_id, 0, now_ms)))

    @staticmethod
    def _book(ss: _Sym, channel: str, action: str, bids: list, asks: list, seq: int, pseq: int, now_ms: int) -> bytes:
        pseq_field = f',"pseq":{pseq}' if channel == "books" else ""
        return (f'{ss.head(channel, action)}{{"asks":[{ss.levels(asks)}],"bids":[{ss.levels(bids)}],'
                f'"checksum":0,"seq":{seq}{pseq_field},"ts":"{now_ms}"}}],"ts":{now_ms}}}').encode()

    def _ticker(self, ss: _Sym, m: Any, now_ms: int, action: str) -> bytes:
        pd, qd = ss.pd, ss.qd
        bid, bq, ask, aq = ss.top
        oi = self.market.open_interest(ss.spec.symbol) if self.market is not None else 0.0
        last = self.market.price(ss.spec.symbol) if self.market is not None else m.mark
        next_funding = (now_ms // FUNDING_INTERVAL_MS + 1) * FUNDING_INTERVAL_MS
        return (f'{ss.head("ticker", action)}{{"instId":"{ss.spec.symbol}","lastPr":"{last:.{pd}f}",'
                f'"bidPr":"{bid:.{pd}f}","askPr":"{ask:.{pd}f}","bidSz":"{bq:.{qd}f}","askSz":"{aq:.{qd}f}",'
                f'"fundingRate":"{m.funding_rate:.6f}","nextFundingTime":"{next_funding}",'
                f'"markPrice":"{m.mark:.{pd}f}","indexPrice":"{m.index:.{pd + 2}f}","holdingAmount":"{oi:.{qd}f}",'
                f'"symbolType":"1","symbol":"{ss.spec.symbol}","ts":"{now_ms}"}}],"ts":{now_ms}}}').encode()

    # ---------------------------------------------------------------- REST

    def rest(self, path: str) -> tuple[int, Any]:
        """Answer a REST GET: ``(status, json-able body)``; 404 for paths that are not Bitget's."""
        parts = urlsplit(path)
        route = parts.path.rstrip("/")
        if not route.startswith(("/api/v2/", "/api/v3/")):
            return 404, {"code": "40404", "msg": "Request URL NOT FOUND"}
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        now_ms = time.time_ns() // 1_000_000
        if route == "/api/v2/public/time":
            return 200, _ok({"serverTime": str(now_ms)}, now_ms)
        if route == "/api/v2/mix/market/candles":
            return self._candles(query, now_ms)
        handlers: dict[str, Callable] = {
            "/api/v2/mix/market/contracts": self._contracts, "/api/v2/mix/market/tickers": self._tickers,
            "/api/v2/mix/market/ticker": self._tickers, "/api/v2/mix/market/open-interest": self._open_interest,
        }
        handler = handlers.get(route)
        if handler is None:
            return 404, {"code": "40404", "msg": "Request URL NOT FOUND", "requestTime": now_ms, "data": None}
        product = query.get("productType", "")
        if not product:
            return 400, {"code": "40019", "msg": "Parameter productType cannot be empty", "requestTime": now_ms,
                         "data": None}
        if product.upper() in MARGIN_PRODUCTS and route.endswith(("/contracts", "/open-interest")):
            return self._margin(route, product.upper(), query.get("symbol"), now_ms)
        if product.upper() != PRODUCT_TYPE:
            return 400, {"code": "40020", "msg": "Parameter productType error", "requestTime": now_ms, "data": None}
        symbol = query.get("symbol")
        needs_symbol = route.endswith(("/ticker", "/open-interest"))
        if needs_symbol and not symbol:
            return 400, {"code": "40019", "msg": "Parameter symbol cannot be empty", "requestTime": now_ms, "data": None}
        if symbol is not None and symbol not in self.symbols:
            return 400, {"code": "40034", "msg": "Parameter symbol does not exist", "requestTime": now_ms,
                         "data": None}
        return 200, _ok(handler([symbol] if symbol else list(self.symbols), now_ms), now_ms)

    def _candles(self, query: dict, now_ms: int) -> tuple[int, dict]:
        """``/api/v2/mix/market/candles`` (``1m`` only, at most 1000 rows): ``[ts, open, high, low, close,
        baseVolume, quoteVolume]`` strings, oldest first."""
        ss = self.symbols.get(query.get("symbol", ""))
        if ss is None or query.get("productType", "").upper() != PRODUCT_TYPE:
            return 400, {"code": "40034", "msg": "Parameter symbol or productType error", "requestTime": now_ms,
                         "data": None}
        try:
            limit = int(query.get("limit", "100"))
            start, end = (int(query[k]) if k in query else None for k in ("startTime", "endTime"))
        except ValueError:
            return 400, {"code": "40017", "msg": "Parameter verification failed", "requestTime": now_ms, "data": None}
        if query.get("granularity") != "1m" or not 1 <= limit <= 1000:
            return 400, {"code": "40017", "msg": "Parameter granularity or limit error", "requestTime": now_ms,
                         "data": None}
        rows = select(self.klines, ss.spec.symbol, start, None if end is None else end - 1, limit)
        f = f".{ss.pd}f"
        return 200, _ok([[str(t), format(o, f), format(h, f), format(lo, f), format(c, f), f"{v:.{ss.qd}f}",
                          f"{quote:.4f}"] for t, (o, h, lo, c, v, quote, *_) in rows], now_ms)

    def _contracts(self, symbols: list[str], now_ms: int) -> list:
        out = []
        for s in symbols:
            spec = self.symbols[s].spec
            step = round(spec.tick * 10 ** spec.price_decimals)
            out.append({
                "symbol": s, "baseCoin": spec.base, "quoteCoin": spec.quote, "buyLimitPriceRatio": "0.05",
                "sellLimitPriceRatio": "0.05", "feeRateUpRatio": "0.005", "makerFeeRate": "0.0002",
                "takerFeeRate": "0.0006", "openCostUpRatio": "0.01", "supportMarginCoins": [spec.quote],
                "minTradeNum": f"{spec.step:.{spec.qty_decimals}f}", "priceEndStep": str(max(1, step)),
                "volumePlace": str(spec.qty_decimals), "pricePlace": str(spec.price_decimals),
                "sizeMultiplier": f"{spec.step:.{spec.qty_decimals}f}", "symbolType": "perpetual",
                "minTradeUSDT": "5", "maxSymbolOrderNum": "200", "maxProductOrderNum": "400",
                "maxPositionNum": "150", "symbolStatus": "normal", "offTime": "-1", "limitOpenTime": "-1",
                "deliveryTime": "", "deliveryStartTime": "", "deliveryPeriod": "", "launchTime": "",
                "fundInterval": "8", "minLever": "1", "maxLever": "125", "posLimit": "0.1",
                "maintainTime": "", "maxMarketOrderQty": "1000", "maxOrderQty": "10000", "isRwa": "NO",
            })
        return out

    def _margin(self, route: str, product: str, symbol: str | None, now_ms: int) -> tuple[int, Any]:
        """COIN-FUTURES / USDC-FUTURES: the simulated assets' contracts and their OI (base coin)."""
        suffix, quote = MARGIN_PRODUCTS[product]
        names = {self.symbols[s].spec.base + suffix: s for s in self.symbols}
        if route.endswith("/contracts"):
            return 200, _ok([{**self._contracts([s], now_ms)[0], "symbol": n, "quoteCoin": quote,
                              "supportMarginCoins": [self.symbols[s].spec.base if quote == "USD" else quote]}
                             for n, s in names.items()], now_ms)
        if symbol not in names or self.market is None:
            return 400, {"code": "40034", "msg": "Parameter symbol does not exist", "requestTime": now_ms, "data": None}
        size = MARGIN_OI_SHARE * self.market.open_interest(names[symbol])
        return 200, _ok({"openInterestList": [{"symbol": symbol, "size": f"{size:.{self.symbols[names[symbol]].qd}f}"}],
                         "ts": str(now_ms)}, now_ms)

    def _tickers(self, symbols: list[str], now_ms: int) -> list:
        out = []
        for s in symbols:
            ss = self.symbols[s]
            if self.market is None:
                continue
            m = self.market.mark(s)
            price = self.market.price(s)
            pd, qd = ss.pd, ss.qd
            base_vol = ss.spec.trade_usd * 86400.0 / price     # about one median trade a second for a day
            out.append({
                "symbol": s, "lastPr": f"{price:.{pd}f}", "askPr": f"{ss.top[2]:.{pd}f}", "bidPr": f"{ss.top[0]:.{pd}f}",
                "bidSz": f"{ss.top[1]:.{qd}f}", "askSz": f"{ss.top[3]:.{qd}f}", "high24h": f"{price * 1.02:.{pd}f}",
                "low24h": f"{price * 0.98:.{pd}f}", "ts": str(now_ms), "change24h": "0", "baseVolume": f"{base_vol:.{qd}f}",
                "quoteVolume": f"{base_vol * price:.2f}", "usdtVolume": f"{base_vol * price:.2f}",
                "openUtc": f"{price:.{pd}f}", "changeUtc24h": "0", "indexPrice": f"{m.index:.{pd + 2}f}",
                "fundingRate": f"{m.funding_rate:.6f}", "holdingAmount": f"{self.market.open_interest(s):.{qd}f}",
                "deliveryStartTime": "", "deliveryTime": "", "deliveryStatus": "", "open24h": f"{price:.{pd}f}",
                "markPrice": f"{m.mark:.{pd}f}",
            })
        return out

    def _open_interest(self, symbols: list[str], now_ms: int) -> dict:
        rows = [{"symbol": s, "size": f"{self.market.open_interest(s):.{self.symbols[s].qd}f}"}
                for s in symbols if self.market is not None]
        return {"openInterestList": rows, "ts": str(now_ms)}


def _ok(data: Any, now_ms: int) -> dict:
    return {"code": "00000", "msg": "success", "requestTime": now_ms, "data": data}


def _send(hub: Any, client: Any, frames: list[bytes]) -> None:
    """Write several frames to one client now (the server core's reply path takes one frame)."""
    if frames:
        hub.send(client, frames)
