"""Gate.io USDT-settled futures wire protocol for the simulator (PROTOCOLS.md §4, §9).

Contract:

* One WS path ``/v4/ws/usdt``; every frame is a plain JSON object (no combined mode).
  ``{"time":s,"channel":"futures.trades","event":"subscribe","payload":["BTC_USDT"]}`` is acked
  ``{"time":..,"time_ms":..,"channel":..,"event":"subscribe","payload":[..],"result":{"status":"success"}}``;
  a refused one gets ``"error":{"code":2,"message":..}`` and ``"result":{"status":"failed"}``.
  ``id`` is echoed when sent. ``futures.ping`` is answered ``futures.pong``; protocol pings
  come from the server core.
* Sizes are contracts (``quanto_multiplier`` base units each), signed where Gate signs them.
  A connection that sent ``X-Gate-Size-Decimal: 1`` gets decimal strings; others get integers,
  floored (a trade that floors to 0 contracts is not shown). REST answers follow the same header
  (``rest(path, headers)``: order book, tickers, contract stats); without it they are integers.
* Channels: ``futures.trades`` (``size`` sign = taker side), ``futures.public_liquidates``
  (contracts or ``!all``; ``size < 0`` = sell order = long liquidated; orders of one contract are
  batched over a 1 s window, flushed early at 20 orders, when ``throttle`` is on),
  ``futures.book_ticker``, ``futures.order_book_update`` (``[contract, "20ms"|"100ms", "20"|"50"|"100"]``,
  ``U``/``u`` ids continuing the REST snapshot's ``id``), ``futures.tickers`` (1 s).
* REST under ``/api/v4/futures/usdt``: ``/contracts`` (all, unpaginated), ``/contracts/{c}``,
  ``/order_book?contract=&limit=&with_id=true``, ``/tickers[?contract=]``, ``/contract_stats?contract=``;
  errors ``{"label":..,"message":..}``.

Frame format (docs example, §4.2)::

    {"channel":"futures.public_liquidates","event":"update","time":1541505434,"time_ms":1541505434123,
     "result":[{"price":"215.1","size":"-124.5","time":1541486601123,"contract":"BTC_USDT"}]}
"""
from __future__ import annotations

import json
import math
import time
from typing import Any, Iterable, Mapping
from urllib.parse import parse_qs, urlsplit

from .klines import KlineBook, select
from .market import BookDiff, BookTop, Liquidation, MarkBatch, SymbolSpec, Trade, spec_for

__all__ = ["GateVenue", "LiquidationBatcher", "native_symbol"]

NAME = "gate"
WS_PATH = "/v4/ws/usdt"
REST_PREFIX = "/api/v4/futures/usdt"
# BTC-settled inverse perps (engine/margin_oi.py): contract -> the USDT contract whose market it follows; 1 USD
# contracts (quanto_multiplier "0") holding INVERSE_OI_SHARE of that contract's open interest
INVERSE_PREFIX = "/api/v4/futures/btc"
INVERSE = {"BTC_USD": "BTC_USDT"}
INVERSE_OI_SHARE = 0.25
DECIMAL_HEADER = "X-Gate-Size-Decimal"
LIQ_WINDOW_S = 1.0
LIQ_BATCH_MAX = 20
BOOK_INTERVALS = ("20ms", "100ms")
BOOK_LEVELS = ("20", "50", "100")
FUNDING_INTERVAL_S = 8 * 3600
# real quanto_multiplier of the main contracts (GET /futures/usdt/contracts); others: one quantity step
MULTIPLIERS = {"BTC": 0.0001, "ETH": 0.01, "SOL": 1.0}
CHANNELS = ("futures.trades", "futures.public_liquidates", "futures.book_ticker", "futures.order_book_update",
            "futures.tickers")


def native_symbol(spec: SymbolSpec) -> str:
    """``BTCUSDT`` -> ``BTC_USDT``."""
    return f"{spec.base}_{spec.quote}"


class LiquidationBatcher:
    """Gate's push rule since 2026-08-20: per contract, a 1 s window, flushed early at 20 orders."""

    def __init__(self, window_s: float = LIQ_WINDOW_S, max_batch: int = LIQ_BATCH_MAX) -> None:
        self.window_s, self.max_batch = window_s, max_batch
        self.pending: dict[str, list[Liquidation]] = {}
        self.window_end: dict[str, float] = {}
        self.early_flushes = 0

    def offer(self, liq: Liquidation) -> list[Liquidation] | None:
        """Add one order; return a full batch when it reaches ``max_batch``."""
        batch = self.pending.setdefault(liq.symbol, [])
        if not batch:
            self.window_end[liq.symbol] = liq.t + self.window_s
        batch.append(liq)
        if len(batch) >= self.max_batch:
            self.early_flushes += 1
            del self.window_end[liq.symbol]
            return self.pending.pop(liq.symbol)
        return None

    def due(self, t: float) -> list[list[Liquidation]]:
        """Return the batches whose window closed at or before ``t`` (simulated seconds)."""
        out = []
        for sym in [s for s, end in self.window_end.items() if end <= t + 1e-9]:
            del self.window_end[sym]
            out.append(self.pending.pop(sym))
        return out


def _dec(x: float) -> str:
    text = f"{x:.8f}".rstrip("0").rstrip(".")
    return text if text not in ("", "-0") else "0"


class _Contract:
    """One contract: native name, multiplier, stream keys (integer and decimal size forms)."""

    def __init__(self, spec: SymbolSpec) -> None:
        self.spec = spec
        self.name = native_symbol(spec)
        self.mult = MULTIPLIERS.get(spec.base, spec.step)
        self.pd = spec.price_decimals
        self.keys = {ch: (f"{ch}:{self.name}", f"{ch}:{self.name}#d") for ch in CHANNELS}

    def contracts(self, qty: float) -> float:
        return round(qty / self.mult, 6)

    def rest_size(self, qty: float, decimal: bool) -> str | int:
        """A REST size of ``qty`` base units: decimal string with the header, else Gate's floored integer."""
        contracts = self.contracts(qty)
        return _dec(contracts) if decimal else math.floor(contracts)

    def size(self, contracts: float, decimal: bool) -> str:
        """A size field: decimal string, or Gate's floored integer without the header."""
        if decimal:
            return f'"{_dec(contracts)}"'
        return str(math.floor(abs(contracts)) * (-1 if contracts < 0 else 1))


class GateVenue:
    """Format neutral market events as Gate USDT-futures frames and speak Gate's WS/REST rules."""

    name = NAME

    def __init__(self, symbols: Iterable[str], *, market: Any = None, throttle: bool = True) -> None:
        self.market = market
        self.by_spec = {spec_for(s).symbol: _Contract(spec_for(s)) for s in symbols}
        self.contracts = {c.name: c for c in self.by_spec.values()}
        self.batcher = LiquidationBatcher() if throttle else None
        self.klines = KlineBook()
        self.liquidation_batches = 0
        self.subscribe_errors = 0

    # ---------------------------------------------------------------- connections

    def owns(self, path: str) -> bool:
        """Say whether this venue serves the WebSocket request path."""
        return urlsplit(path).path.rstrip("/") == WS_PATH

    def open_session(self, path: str) -> tuple[str, bool, list[str]]:
        """Every Gate socket starts empty and subscribes by message."""
        if not self.owns(path):
            raise ValueError(path)
        return "usdt", False, []

    def accept_streams(self, category: str, names: Iterable[str]) -> list[str]:
        return list(names)

    def handle_text(self, client: Any, text: str | bytes, hub: Any) -> bytes:
        """Answer one client message; ``hub.subscribe/unsubscribe(client, keys)`` change routing."""
        now_ns = time.time_ns()
        head = {"time": now_ns // 1_000_000_000, "time_ms": now_ns // 1_000_000}
        try:
            req = json.loads(text)
        except ValueError:
            return self._error(head, "", "", 1, "invalid request: not JSON")
        if not isinstance(req, dict):
            return self._error(head, "", "", 1, "invalid request: not an object")
        if "id" in req:
            head["id"] = req["id"]
        channel, event = req.get("channel"), req.get("event")
        if channel == "futures.ping":
            return _dumps({**head, "channel": "futures.pong", "event": "", "result": None})
        if event not in ("subscribe", "unsubscribe") or not isinstance(channel, str):
            return self._error(head, channel, event, 1, "invalid request: unknown event")
        payload = req.get("payload")
        if channel not in CHANNELS:
            return self._error(head, channel, event, 2, f"unknown channel {channel}")
        if not isinstance(payload, list) or not payload or not all(isinstance(p, str) for p in payload):
            return self._error(head, channel, event, 2, "invalid argument: payload must be a list of strings")
        keys, problem = self._keys(channel, payload, self._decimal(client))
        if problem:
            return self._error(head, channel, event, 2, problem)
        (hub.subscribe if event == "subscribe" else hub.unsubscribe)(client, keys)
        return _dumps({**head, "channel": channel, "event": event, "payload": payload,
                       "result": {"status": "success"}})

    @staticmethod
    def _decimal(client: Any) -> bool:
        request = getattr(getattr(client, "conn", None), "request", None)
        return request is not None and request.headers.get(DECIMAL_HEADER) == "1"

    def _keys(self, channel: str, payload: list[str], decimal: bool) -> tuple[list[str], str]:
        """Routing keys of one request, or an error message."""
        form = 1 if decimal else 0
        if channel == "futures.order_book_update":
            if len(payload) != 3 or payload[0] not in self.contracts:
                return [], f"invalid argument: {payload}"
            interval, level = payload[1], payload[2]
            if interval not in BOOK_INTERVALS or level not in BOOK_LEVELS or (interval == "20ms" and level != "20"):
                return [], f"invalid argument: interval {interval} level {level}"
            return [self.contracts[payload[0]].keys[channel][form]], ""
        if channel == "futures.public_liquidates" and payload == ["!all"]:
            return [f"{channel}:!all" + ("#d" if decimal else "")], ""
        unknown = [p for p in payload if p not in self.contracts]
        if unknown:
            return [], f"unknown contract {unknown[0]}"
        return [self.contracts[p].keys[channel][form] for p in payload], ""

    def _error(self, head: dict, channel: Any, event: Any, code: int, message: str) -> bytes:
        self.subscribe_errors += 1
        return _dumps({**head, "channel": channel or "", "event": event or "",
                       "error": {"code": code, "message": message}, "result": {"status": "failed"}})

    @staticmethod
    def envelope(stream: str, raw: bytes) -> bytes:
        return raw   # Gate has no combined mode

    def endpoints(self, host: str, port: int) -> dict:
        return {"ws_urls": {"usdt": f"ws://{host}:{port}{WS_PATH}"}, "rest_url": f"http://{host}:{port}/api/v4",
                "symbols": list(self.contracts)}

    def counters(self) -> dict:
        """Venue counters merged into the simulator's ``counters()``."""
        early = self.batcher.early_flushes if self.batcher is not None else 0
        return {"gate_liquidation_batches": self.liquidation_batches, "gate_liquidation_early_flushes": early,
                "gate_subscribe_errors": self.subscribe_errors}

    # ---------------------------------------------------------------- market events -> frames

    def render(self, events: list, t: float, subs: Mapping[str, Any], now_ms: int) -> list[tuple[str, bytes]]:
        """Format ``events`` (and liquidation batches due at ``t``) for the subscribed keys."""
        out: list[tuple[str, bytes]] = []
        trades: dict[str, list[Trade]] = {}
        liq_batches: list[list[Liquidation]] = []
        for ev in events:
            kind = type(ev)
            if kind is Trade:
                trades.setdefault(ev.symbol, []).append(ev)
                self.klines.add(ev.symbol, ev.price, ev.qty, ev.taker_buy, now_ms)
            elif kind is BookTop:
                self._book_ticker(ev, subs, now_ms, out)
            elif kind is Liquidation:
                if self.batcher is None:
                    liq_batches.append([ev])
                else:
                    full = self.batcher.offer(ev)
                    if full:
                        liq_batches.append(full)
            elif kind is BookDiff:
                self._book_update(ev, subs, now_ms, out)
            elif kind is MarkBatch:
                self._tickers(ev, subs, now_ms, out)
        for symbol, batch in trades.items():
            self._trades(self.by_spec[symbol], batch, subs, now_ms, out)
        if self.batcher is not None:
            liq_batches.extend(self.batcher.due(t))
        for batch in liq_batches:
            self._liquidations(batch, subs, now_ms, out)
        return out

    @staticmethod
    def _frame(channel: str, now_ms: int, result: str) -> bytes:
        return (f'{{"time":{now_ms // 1000},"time_ms":{now_ms},"channel":"{channel}","event":"update",'
                f'"result":{result}}}').encode()

    def _trades(self, c: _Contract, batch: list[Trade], subs: Mapping, now_ms: int, add: list) -> None:
        for form, key in enumerate(c.keys["futures.trades"]):
            if key not in subs:
                continue
            items = []
            for tr in batch:
                n = c.contracts(tr.qty)
                if not form and n < 1.0:
                    continue   # floors to 0 contracts without the decimal header
                size = c.size(n if tr.taker_buy else -n, bool(form))
                items.append(f'{{"size":{size},"id":{tr.trade_id},"create_time":{now_ms // 1000},'
                             f'"create_time_ms":{now_ms},"price":"{tr.price:.{c.pd}f}","contract":"{c.name}"}}')
            if items:
                add.append((key, self._frame("futures.trades", now_ms, "[" + ",".join(items) + "]")))

    def _liquidations(self, batch: list[Liquidation], subs: Mapping, now_ms: int, add: list) -> None:
        c = self.by_spec[batch[0].symbol]
        channel = "futures.public_liquidates"
        targets = [(key, bool(form)) for form, key in enumerate(c.keys[channel]) if key in subs]
        targets += [(key, key.endswith("#d")) for key in (f"{channel}:!all", f"{channel}:!all#d") if key in subs]
        if not targets:
            return
        self.liquidation_batches += 1
        for key, decimal in targets:
            items = []
            for liq in batch:
                n = c.contracts(liq.qty)
                if not decimal and n < 1.0:
                    continue   # floors to 0 contracts without the decimal header
                # a liquidated long is closed by a sell order: negative size
                size = c.size(-n if liq.long_liquidated else n, decimal)
                items.append(f'{{"price":"{liq.avg_price:.{c.pd}f}","size":{size},"time":{now_ms},'
                             f'"contract":"{c.name}"}}')
            if items:
                add.append((key, self._frame(channel, now_ms, "[" + ",".join(items) + "]")))

    def _book_ticker(self, ev: BookTop, subs: Mapping, now_ms: int, add: list) -> None:
        c = self.by_spec[ev.symbol]
        for form, key in enumerate(c.keys["futures.book_ticker"]):
            if key in subs:
                d = bool(form)
                add.append((key, self._frame("futures.book_ticker", now_ms, (
                    f'{{"t":{now_ms},"u":{ev.update_id},"s":"{c.name}","b":"{ev.bid:.{c.pd}f}",'
                    f'"B":{c.size(c.contracts(ev.bid_qty), d)},"a":"{ev.ask:.{c.pd}f}",'
                    f'"A":{c.size(c.contracts(ev.ask_qty), d)}}}'))))

    def _book_update(self, ev: BookDiff, subs: Mapping, now_ms: int, add: list) -> None:
        c = self.by_spec[ev.symbol]
        for form, key in enumerate(c.keys["futures.order_book_update"]):
            if key in subs:
                d = bool(form)
                b = ",".join(f'{{"p":"{p:.{c.pd}f}","s":{c.size(c.contracts(q), d)}}}' for p, q in ev.bids)
                a = ",".join(f'{{"p":"{p:.{c.pd}f}","s":{c.size(c.contracts(q), d)}}}' for p, q in ev.asks)
                add.append((key, self._frame("futures.order_book_update", now_ms, (
                    f'{{"t":{now_ms},"s":"{c.name}","U":{ev.first_id},"u":{ev.last_id},"b":[{b}],"a":[{a}]}}'))))

    def _tickers(self, ev: MarkBatch, subs: Mapping, now_ms: int, add: list) -> None:
        for m in ev.marks:
            c = self.by_spec[m.symbol]
            for form, key in enumerate(c.keys["futures.tickers"]):
                if key in subs:
                    add.append((key, self._frame("futures.tickers", now_ms, "[" + _dumps(
                        self._ticker(c, now_ms, bool(form))).decode() + "]")))

    def _ticker(self, c: _Contract, now_ms: int, decimal: bool = False) -> dict:
        m = self.market.mark(c.spec.symbol)
        oi = c.contracts(self.market.open_interest(c.spec.symbol))
        price = self.market.price(c.spec.symbol)
        return {"contract": c.name, "last": f"{price:.{c.pd}f}", "mark_price": f"{m.mark:.{c.pd}f}",
                "index_price": f"{m.index:.{c.pd}f}", "funding_rate": f"{m.funding_rate:.6f}",
                "total_size": _dec(oi) if decimal else str(math.floor(oi)),
                "volume_24h_quote": _dec(round(c.spec.trade_usd * 86400 * c.spec.weight, 2)),
                "volume_24h_base": _dec(round(c.spec.trade_usd * 86400 * c.spec.weight / price, 4)), "t": now_ms}

    # ---------------------------------------------------------------- REST

    def _candlesticks(self, query: dict, decimal: bool) -> tuple[int, Any]:
        """``/futures/usdt/candlesticks`` (``1m`` only; ``limit`` or ``from``/``to`` in seconds, not both; at most
        2000 points): ``{t, o, h, l, c, v, sum}`` oldest first, ``v`` in contracts: a decimal string with the
        size-decimal header, else floored to an integer."""
        c = self.contracts.get(query.get("contract", ""))
        if c is None or self.market is None:
            return 400, {"label": "INVALID_PARAM_VALUE", "message": "Invalid request parameter `contract`"}
        try:
            limit = int(query.get("limit", "100"))
            start, end = (int(query[k]) * 1000 if k in query else None for k in ("from", "to"))
        except ValueError:
            return 400, {"label": "INVALID_PARAM_VALUE", "message": "Invalid request parameter"}
        if query.get("interval", "5m") != "1m" or ("limit" in query and (start or end)) or not 1 <= limit <= 2000:
            return 400, {"label": "INVALID_PARAM_VALUE", "message": "interval 1m, and limit or from/to"}
        if start is not None and end is not None and end - start >= 2000 * 60_000:
            return 400, {"label": "INVALID_PARAM_VALUE", "message": "Too many points requested"}
        rows = select(self.klines, c.spec.symbol, start, end, 2000 if start is not None else limit)
        f = f".{c.pd}f"
        size = _dec if decimal else math.floor
        return 200, [{"t": t // 1000, "v": size(c.contracts(v)), "c": format(cl, f), "h": format(h, f),
                      "l": format(lo, f), "o": format(o, f), "sum": f"{quote:.4f}"}
                     for t, (o, h, lo, cl, v, quote, *_) in rows]

    def rest(self, path: str, headers: Mapping[str, str] | None = None) -> tuple[int, Any]:
        """Answer a REST GET: return ``(status, json-able body)``; 404 for paths not Gate's.

        With ``X-Gate-Size-Decimal: 1`` in ``headers`` the order book, ticker and contract-stats sizes are
        decimal strings, so an order book equals the simulated book at its ``id``; without it they are
        Gate's floored integers (fractional contracts lost, as Gate answers such a client).
        """
        decimal = _size_decimal(headers)
        parts = urlsplit(path)
        route = parts.path.rstrip("/")
        if route.startswith(INVERSE_PREFIX + "/contracts"):
            return self._inverse(route[len(INVERSE_PREFIX + "/contracts"):].lstrip("/"))
        if not route.startswith(REST_PREFIX):
            return 404, {"label": "NOT_FOUND", "message": "not found"}
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        tail = route[len(REST_PREFIX):]
        if tail == "/contracts":
            return 200, [self._contract(c) for c in self.contracts.values()]
        if tail.startswith("/contracts/"):
            c = self.contracts.get(tail[len("/contracts/"):])
            if c is None or self.market is None:
                return 400, {"label": "CONTRACT_NOT_FOUND", "message": "Contract not found"}
            return 200, self._contract(c)
        if tail == "/tickers":
            wanted = [query["contract"]] if "contract" in query else list(self.contracts)
            if self.market is None or any(w not in self.contracts for w in wanted):
                return 400, {"label": "INVALID_CONTRACT", "message": "Invalid contract"}
            now_ms = time.time_ns() // 1_000_000
            return 200, [self._ticker(self.contracts[w], now_ms, decimal) for w in wanted]
        if tail == "/candlesticks":
            return self._candlesticks(query, decimal)
        if tail not in ("/order_book", "/contract_stats"):
            return 404, {"label": "NOT_FOUND", "message": "not found"}
        c = self.contracts.get(query.get("contract", ""))
        if c is None or self.market is None:
            return 400, {"label": "INVALID_PARAM_VALUE", "message": "Invalid request parameter `contract`"}
        if tail == "/contract_stats":
            return 200, [self._stats(c, decimal)]
        try:
            limit = int(query.get("limit", "10"))
        except ValueError:
            return 400, {"label": "INVALID_PARAM_VALUE", "message": "Invalid request parameter `limit`"}
        if not 1 <= limit <= 100:   # the synthetic book holds fewer levels than Gate's 300
            return 400, {"label": "INVALID_PARAM_VALUE", "message": "Invalid request parameter `limit`"}
        last_id, bids, asks = self.market.book_snapshot(c.spec.symbol, limit)
        now = time.time()
        body: dict = {"current": round(now, 3), "update": round(now, 3),
                      "asks": [{"p": f"{p:.{c.pd}f}", "s": c.rest_size(q, decimal)} for p, q in asks],
                      "bids": [{"p": f"{p:.{c.pd}f}", "s": c.rest_size(q, decimal)} for p, q in bids]}
        if query.get("with_id") == "true":
            body["id"] = last_id
        return 200, body

    def _inverse(self, name: str) -> tuple[int, Any]:
        """``/futures/btc/contracts[/{name}]``: the inverse contracts whose USDT market is simulated."""
        listed = {n: self.contracts[u] for n, u in INVERSE.items() if u in self.contracts}
        if name and (name not in listed or self.market is None):
            return 400, {"label": "CONTRACT_NOT_FOUND", "message": "Contract not found"}
        out = []
        for n, c in listed.items():
            body = {**self._contract(c), "name": n, "type": "inverse", "quanto_multiplier": "0"}
            if self.market is not None:
                usd = INVERSE_OI_SHARE * self.market.open_interest(c.spec.symbol) * self.market.mark(c.spec.symbol).mark
                body["position_size"] = round(usd)
            out.append(body)
        return 200, (out[list(listed).index(name)] if name else out)

    def _contract(self, c: _Contract) -> dict:
        spec = c.spec
        body = {"name": c.name, "type": "direct", "quanto_multiplier": _dec(c.mult), "in_delisting": False,
                "order_price_round": f"{spec.tick:.{c.pd}f}", "mark_price_round": f"{spec.tick:.{c.pd}f}",
                "order_size_min": 1, "order_size_max": 1000000, "leverage_min": "1", "leverage_max": "100",
                "funding_interval": FUNDING_INTERVAL_S,
                "funding_next_apply": (int(time.time()) // FUNDING_INTERVAL_S + 1) * FUNDING_INTERVAL_S}
        if self.market is not None:
            m = self.market.mark(spec.symbol)
            body.update(mark_price=f"{m.mark:.{c.pd}f}", index_price=f"{m.index:.{c.pd}f}",
                        last_price=f"{self.market.price(spec.symbol):.{c.pd}f}",
                        funding_rate=f"{m.funding_rate:.6f}",
                        position_size=math.floor(c.contracts(self.market.open_interest(spec.symbol))))
        return body

    def _stats(self, c: _Contract, decimal: bool = False) -> dict:
        m = self.market.mark(c.spec.symbol)
        oi = c.contracts(self.market.open_interest(c.spec.symbol))
        if not decimal:
            oi = math.floor(oi)
        return {"time": int(time.time()), "contract": c.name, "open_interest": _dec(oi) if decimal else oi,
                "open_interest_usd": round(oi * c.mult * m.mark, 2), "mark_price": round(m.mark, c.pd),
                "long_liq_size": 0, "short_liq_size": 0, "long_liq_usd": 0, "short_liq_usd": 0}


def _size_decimal(headers: Mapping[str, str] | None) -> bool:
    """Whether a request's headers ask for decimal sizes (``X-Gate-Size-Decimal: 1``; names are case-blind)."""
    return any(k.lower() == DECIMAL_HEADER.lower() and str(v).strip() == "1" for k, v in (headers or {}).items())


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()
