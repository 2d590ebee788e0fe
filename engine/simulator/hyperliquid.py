"""Hyperliquid perpetuals wire protocol for the simulator (PROTOCOLS.md §6, §9).

Contract:

* One WS path ``/ws``; nothing is subscribed in the URL. Client messages:
  ``{"method":"subscribe"|"unsubscribe","subscription":{"type":..,"coin":..}}``, acked
  ``{"channel":"subscriptionResponse","data":{"method":..,"subscription":{..}}}``; a bad
  request, an unknown coin, a repeated subscribe or an unsubscribe of nothing gets
  ``{"channel":"error","data":"<text>"}``. ``{"method":"ping"}`` -> ``{"channel":"pong"}``.
* Subscription types served: ``trades``, ``l2Book``, ``bbo``, ``activeAssetCtx`` (per coin)
  and ``allMids``. A new subscription first gets the current state: the recent trades,
  the book, the asset context (what Hyperliquid sends), then live frames.
* ``l2Book`` is a full 20-level snapshot per side, at most every 0.5 s per coin
  (``throttle=False``: on every 100 ms book update). Coins are the market symbols'
  bases (``BTCUSDT`` -> ``BTC``); sizes are coin units; ``side`` ``B``/``A`` is the taker
  side; ``tid`` is a 50-bit hash, not a sequence.
* No liquidation channel: a market liquidation reaches the public ``trades`` stream as
  an ordinary trade (a liquidated long is a taker sell), indistinguishable from others.
* Keepalive: a connection to which the server has sent nothing for
  :attr:`HyperliquidVenue.idle_timeout_s` (60 s) is closed; a ping's pong counts.
  Connections that never send a message are not tracked (the venue object only
  sees a client through its messages).
* ``POST /info`` cannot be served: the server core's HTTP parser accepts GET only.
  The socket's equivalent is served instead:
  ``{"method":"post","id":N,"request":{"type":"info","payload":{"type":"metaAndAssetCtxs"}}}`` ->
  ``{"channel":"post","data":{"id":N,"response":{"type":"info","payload":{"type":..,"data":<body>}}}}``
  for ``meta``, ``metaAndAssetCtxs``, ``l2Book``, ``allMids`` and ``recentTrades``;
  other requests get ``"response":{"type":"error","payload":"<text>"}``.
"""
from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from typing import Any, Callable, Iterable, Mapping
from urllib.parse import urlsplit

from websockets.protocol import State

from engine.venues.hyperliquid import subscription

from .klines import KlineBook, select
from .market import BookDiff, BookTop, Liquidation, MarkBatch, Trade, spec_for

__all__ = ["HyperliquidVenue"]

NAME = "hyperliquid"
PATH = "/ws"
BOOK_PUSH_INTERVAL_S = 0.5
IDLE_TIMEOUT_S = 60.0
MAX_SUBSCRIPTIONS = 1000           # per IP on the venue; per connection here
RECENT_TRADES = 10                 # trades in the batch sent on a new trades subscription
BOOK_LEVELS = 20
COIN_TYPES = ("trades", "l2Book", "bbo", "activeAssetCtx")
GLOBAL_TYPES = ("allMids",)
_TID_MASK = (1 << 50) - 1
_USERS = '["0x6802b4267f7f2bf7003dcf993c51542245b38329","0xecb63caa47c7c4e77f60f1ce858cf28dc2b82b00"]'
_SWEEP_S = 1.0


def _tid(n: int) -> int:
    """A 50-bit hash of a running trade number (Hyperliquid tids are unordered)."""
    return ((n * 0x9E3779B97F4A7C15) ^ (n >> 7)) & _TID_MASK


def _dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"))


class _Coin:
    """One market symbol as a Hyperliquid coin: formats and the state a new subscriber is sent."""

    def __init__(self, symbol: str) -> None:
        self.spec = spec = spec_for(symbol)
        self.symbol = spec.symbol
        self.coin = spec.base
        self.pd, self.qd = spec.price_decimals, spec.qty_decimals
        self.trades, self.book, self.bbo, self.ctx = (f"{t}:{self.coin}" for t in COIN_TYPES)
        self.recent: deque = deque(maxlen=RECENT_TRADES)   # (time ms, tid, side, px, sz)
        self.book_due = 0.0
        self.levels: tuple[list, list] = ([], [])
        self.top: tuple = ()                                 # last (bid, bid_qty, ask, ask_qty)
        self.day_ntl = 0.0
        self.day_base = 0.0
        self.last_ctx: str = ""

    def trade_json(self, ms: int, tid: int, side: str, px: float, sz: float) -> str:
        return (f'{{"coin":"{self.coin}","side":"{side}","px":"{px:.{self.pd}f}","sz":"{sz:.{self.qd}f}",'
                f'"hash":"0x{tid:064x}","time":{ms},"tid":{tid},"users":{_USERS}}}')

    def level_json(self, px: float, sz: float, n: int) -> str:
        return f'{{"px":"{px:.{self.pd}f}","sz":"{sz:.{self.qd}f}","n":{n}}}'

    def book_json(self, bids: list, asks: list, ms: int) -> str:
        b = ",".join(self.level_json(p, q, 1 + int(q * 7919) % 9) for p, q in bids)
        a = ",".join(self.level_json(p, q, 1 + int(q * 7919) % 9) for p, q in asks)
        return f'{{"coin":"{self.coin}","time":{ms},"levels":[[{b}],[{a}]]}}'


class HyperliquidVenue:
    """Format neutral market events as Hyperliquid frames and speak its WS protocol."""

    name = NAME

    def __init__(self, symbols: Iterable[str], *, market: Any = None, throttle: bool = True) -> None:
        self.market = market
        self.throttle = throttle
        self.coins = {c.symbol: c for c in map(_Coin, symbols)}
        self.by_coin = {c.coin: c for c in self.coins.values()}
        self.idle_timeout_s = IDLE_TIMEOUT_S
        self.trade_count = 0
        self.klines = KlineBook()                # candles of every trade sent, liquidations' included
        self.liquidation_trades = 0
        self.errors_sent = 0
        self.idle_closes = 0
        self.posts_served = 0
        self._sent: dict[str, float] = {}          # stream -> monotonic time of its last frame
        self._replied: dict[Any, float] = {}       # client -> monotonic time of its last reply
        self._next_sweep = 0.0
        self._tasks: set[asyncio.Task] = set()

    # ---------------------------------------------------------------- connections

    def owns(self, path: str) -> bool:
        """Say whether this venue serves the WebSocket request path."""
        return urlsplit(path).path.rstrip("/") == PATH

    def open_session(self, path: str) -> tuple[str, bool, list[str]]:
        """Every session starts with no subscription."""
        return "ws", False, []

    def accept_streams(self, category: str, names: Iterable[str]) -> list[str]:
        return [n for n in names if self._stream_of(subscription(n)) == n]

    def _stream_of(self, sub: Any) -> str | None:
        """Stream name of a subscription object, or None if this simulator cannot serve it."""
        if not isinstance(sub, dict):
            return None
        t = sub.get("type")
        if t in GLOBAL_TYPES:
            return t
        coin = sub.get("coin")
        if t in COIN_TYPES and isinstance(coin, str) and coin in self.by_coin:
            return f"{t}:{coin}"
        return None

    def handle_text(self, client: Any, text: str | bytes, hub: Any) -> bytes:
        """Answer one client message; ``hub.subscribe/unsubscribe(client, names)`` change routing."""
        self._replied[client] = time.monotonic()
        try:
            req = json.loads(text)
        except ValueError:
            return self._error(f"Error parsing JSON into valid websocket request: {str(text)[:100]}")
        method = req.get("method") if isinstance(req, dict) else None
        if method == "ping":
            return b'{"channel":"pong"}'
        if method in ("subscribe", "unsubscribe"):
            sub = req.get("subscription")
            stream = self._stream_of(sub)
            if stream is None:
                return self._error(f"Invalid subscription {_dumps(sub)}")
            if method == "subscribe":
                if stream in client.streams:
                    return self._error(f"Already subscribed: {_dumps(sub)}")
                if len(client.streams) >= MAX_SUBSCRIPTIONS:
                    return self._error(f"Cannot track more than {MAX_SUBSCRIPTIONS} total subscriptions")
                hub.subscribe(client, [stream])
                self._send_state(client, stream)
            else:
                if stream not in client.streams:
                    return self._error(f"Already unsubscribed: {_dumps(sub)}")
                hub.unsubscribe(client, [stream])
            return _dumps({"channel": "subscriptionResponse",
                           "data": {"method": method, "subscription": sub}}).encode()
        if method == "post":
            return self._post(req)
        return self._error(f"Error parsing JSON into valid websocket request: {str(text)[:100]}")

    def _error(self, text: str) -> bytes:
        self.errors_sent += 1
        return _dumps({"channel": "error", "data": text}).encode()

    def _send_state(self, client: Any, stream: str) -> None:
        """Queue the current state of a new subscription behind its ack (Hyperliquid sends it first)."""
        frame = self._state_frame(stream, time.time_ns() // 1_000_000)
        if frame is None:
            return
        task = asyncio.get_running_loop().create_task(client.conn.send(frame))
        self._tasks.add(task)
        task.add_done_callback(self._sent_state)

    def _sent_state(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if not task.cancelled():
            task.exception()   # a client gone meanwhile: nothing to do

    def _state_frame(self, stream: str, now_ms: int) -> str | None:
        t, _, coin = stream.partition(":")
        if t == "allMids":
            return None   # the next mark tick carries it
        c = self.by_coin[coin]
        if t == "trades":
            if not c.recent:
                return None
            return '{"channel":"trades","data":[' + ",".join(c.trade_json(*r) for r in c.recent) + "]}"
        if t == "l2Book":
            if self.market is None:
                return None
            _, bids, asks = self.market.book_snapshot(c.symbol, BOOK_LEVELS)
            return f'{{"channel":"l2Book","data":{c.book_json(bids, asks, now_ms)}}}'
        if t == "bbo":
            return self._bbo_frame(c, now_ms) if c.top else None
        if self.market is None:
            return None
        return f'{{"channel":"activeAssetCtx","data":{{"coin":"{coin}","ctx":{self._ctx_json(c)}}}}}'

    @staticmethod
    def envelope(stream: str, raw: bytes) -> bytes:
        return raw   # Hyperliquid frames name their channel themselves

    def endpoints(self, host: str, port: int) -> dict:
        return {"ws_urls": {"ws": f"ws://{host}:{port}{PATH}"}, "rest_url": f"http://{host}:{port}",
                "symbols": [c.coin for c in self.coins.values()]}

    def counters(self) -> dict:
        """Venue counters merged into the simulator's ``counters()``."""
        return {"hl_liquidation_trades": self.liquidation_trades, "hl_errors_sent": self.errors_sent,
                "hl_idle_closes": self.idle_closes, "hl_posts_served": self.posts_served}

    # ---------------------------------------------------------------- market events -> frames

    def render(self, events: list, t: float, subs: Mapping[str, Any], now_ms: int) -> list[tuple[str, bytes]]:
        """Format ``events`` for the subscribed streams (trades batched per coin, like a block)."""
        out: list[tuple[str, bytes]] = []
        add = out.append
        coins = self.coins
        batches: dict[str, list[str]] = {}
        for ev in events:
            kind = type(ev)
            if kind is Trade:
                self._trade(coins[ev.symbol], now_ms, "B" if ev.taker_buy else "A", ev.price, ev.qty, subs, batches)
            elif kind is Liquidation:
                # a liquidated long is sold into the book: an ordinary taker-sell trade on the public stream
                self.liquidation_trades += 1
                self._trade(coins[ev.symbol], now_ms, "A" if ev.long_liquidated else "B", ev.avg_price, ev.qty,
                            subs, batches)
            elif kind is BookDiff:
                c = coins[ev.symbol]
                c.levels = (ev.top_bids, ev.top_asks)
                if c.book in subs and (not self.throttle or t >= c.book_due):
                    c.book_due = t + BOOK_PUSH_INTERVAL_S
                    add((c.book, f'{{"channel":"l2Book","data":{c.book_json(ev.top_bids, ev.top_asks, now_ms)}}}'
                         .encode()))
            elif kind is BookTop:
                c = coins[ev.symbol]
                c.top = (ev.bid, ev.bid_qty, ev.ask, ev.ask_qty)
                if c.bbo in subs:
                    add((c.bbo, self._bbo_frame(c, now_ms).encode()))
            elif kind is MarkBatch:
                self._marks(ev, subs, add)
        for stream, objs in batches.items():
            add((stream, ('{"channel":"trades","data":[' + ",".join(objs) + "]}").encode()))
        if out or self._replied:
            self._track(out)
        return out

    def _trade(self, c: _Coin, ms: int, side: str, px: float, sz: float, subs: Mapping, batches: dict) -> None:
        self.trade_count += 1
        tid = _tid(self.trade_count)
        c.recent.append((ms, tid, side, px, sz))
        self.klines.add(c.symbol, px, sz, side == "B", ms)
        c.day_ntl += px * sz
        c.day_base += sz
        if c.trades in subs:
            batches.setdefault(c.trades, []).append(c.trade_json(ms, tid, side, px, sz))

    def _bbo_frame(self, c: _Coin, now_ms: int) -> str:
        bid, bq, ask, aq = c.top
        return (f'{{"channel":"bbo","data":{{"coin":"{c.coin}","time":{now_ms},'
                f'"bbo":[{c.level_json(bid, bq, 1)},{c.level_json(ask, aq, 1)}]}}}}')

    def _ctx_json(self, c: _Coin) -> str:
        m = self.market.mark(c.symbol)
        pd = c.pd
        mid = (c.top[0] + c.top[2]) / 2 if c.top else m.mark
        funding = m.funding_rate / 8.0   # the market's rate is per 8 h; Hyperliquid quotes the hourly rate
        premium = m.mark / m.index - 1.0 if m.index else 0.0
        return (f'{{"funding":"{funding:.10f}","openInterest":"{self.market.open_interest(c.symbol):.{c.qd}f}",'
                f'"prevDayPx":"{c.spec.price:.{pd}f}","dayNtlVlm":"{c.day_ntl:.4f}","premium":"{premium:.10f}",'
                f'"oraclePx":"{m.index:.{pd}f}","markPx":"{m.mark:.{pd}f}","midPx":"{mid:.{pd}f}",'
                f'"impactPxs":["{mid:.{pd}f}","{mid:.{pd}f}"],"dayBaseVlm":"{c.day_base:.{c.qd}f}"}}')

    def _marks(self, ev: MarkBatch, subs: Mapping, add: Callable) -> None:
        if self.market is None:
            return
        for m in ev.marks:
            c = self.coins[m.symbol]
            if c.ctx in subs:
                add((c.ctx, f'{{"channel":"activeAssetCtx","data":{{"coin":"{c.coin}","ctx":{self._ctx_json(c)}}}}}'
                     .encode()))
        if "allMids" in subs:
            add(("allMids", _dumps({"channel": "allMids", "data": {"mids": self._mids()}}).encode()))

    def _mids(self) -> dict[str, str]:
        return {c.coin: f"{self.market.mark(c.symbol).mark:.{c.pd}f}" for c in self.coins.values()}

    # ---------------------------------------------------------------- keepalive

    def _track(self, frames: list) -> None:
        """Note when each stream last sent; once a second, close clients idle past ``idle_timeout_s``."""
        now = time.monotonic()
        sent = self._sent
        for stream, _ in frames:
            sent[stream] = now
        if now < self._next_sweep:
            return
        self._next_sweep = now + _SWEEP_S
        limit = now - self.idle_timeout_s
        for client, replied in list(self._replied.items()):
            if client.conn.state is not State.OPEN:
                del self._replied[client]
                continue
            last = max([replied] + [sent.get(s, 0.0) for s in client.streams])
            if last < limit:
                del self._replied[client]
                self.idle_closes += 1
                task = asyncio.get_running_loop().create_task(client.conn.close(1000, "idle timeout"))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    # ---------------------------------------------------------------- info requests over the socket

    def _post(self, req: dict) -> bytes:
        rid = req.get("id")
        request = req.get("request")
        if not isinstance(rid, int) or isinstance(rid, bool) or not isinstance(request, dict):
            return self._error(f"Error parsing JSON into valid websocket request: {_dumps(req)[:100]}")
        payload = request.get("payload")
        if request.get("type") != "info" or not isinstance(payload, dict):
            response = {"type": "error", "payload": "the simulator serves info requests only"}
        else:
            body = self.info(payload)
            if body is None:
                response = {"type": "error", "payload": f"Failed to deserialize the JSON body: {_dumps(payload)[:100]}"}
            else:
                self.posts_served += 1
                response = {"type": "info", "payload": {"type": payload.get("type"), "data": body}}
        return _dumps({"channel": "post", "data": {"id": rid, "response": response}}).encode()

    def rest_post(self, path: str, body: bytes) -> tuple[int, Any] | None:
        """``POST /info`` with a JSON body, as the live API takes it."""
        if path != "/info":
            return None
        try:
            payload = json.loads(body)
        except ValueError:
            return 422, {"error": "Failed to deserialize the JSON body"}
        answer = self.info(payload) if isinstance(payload, dict) else None
        return (200, answer) if answer is not None else (422, {"error": f"unsupported info request {payload!r}"[:200]})

    def info(self, payload: dict) -> Any:
        """The body ``POST /info`` answers for ``payload``, or None for a request not served."""
        t = payload.get("type")
        if t == "meta":
            return self._meta()
        if self.market is None:
            return None
        if t == "metaAndAssetCtxs":
            return [self._meta(), [json.loads(self._ctx_json(c)) for c in self.coins.values()]]
        if t == "allMids":
            return self._mids()
        if t == "candleSnapshot":
            return self._candles(payload.get("req"))
        c = self.by_coin.get(payload.get("coin"))
        if c is None:
            return None
        if t == "l2Book":
            _, bids, asks = self.market.book_snapshot(c.symbol, BOOK_LEVELS)
            return json.loads(c.book_json(bids, asks, time.time_ns() // 1_000_000))
        if t == "recentTrades":
            return [json.loads(c.trade_json(*r)) for r in c.recent]
        return None

    def _candles(self, req: Any) -> list | None:
        """``candleSnapshot`` (``1m`` only): the coin's candles opening in [startTime, endTime], oldest first, at
        most the last 5000; None (HTTP 422) for a request the simulator does not serve."""
        if not isinstance(req, dict) or req.get("interval") != "1m" or req.get("coin") not in self.by_coin:
            return None
        c = self.by_coin[req["coin"]]
        start, end = req.get("startTime"), req.get("endTime")
        if not isinstance(start, int) or not isinstance(end, (int, type(None))):
            return None
        f = f".{c.pd}f"
        return [{"t": t, "T": t + 59_999, "s": c.coin, "i": "1m", "o": format(o, f), "c": format(cl, f),
                 "h": format(h, f), "l": format(lo, f), "v": f"{v:.{c.qd}f}", "n": n}
                for t, (o, h, lo, cl, v, _, n, *_) in select(self.klines, c.symbol, start, end, 5000)]

    def _meta(self) -> dict:
        return {"universe": [{"name": c.coin, "szDecimals": c.qd, "maxLeverage": 40, "onlyIsolated": False,
                              "isDelisted": None} for c in self.coins.values()]}
