"""OKX v5 public WebSocket and REST for the simulator (PROTOCOLS.md §3, §9).

Contract:

* WS path ``/ws/v5/public`` (``/ws/v5/business`` is accepted but carries nothing the
  simulator makes); no streams in the URL: ``{"op":"subscribe","args":[{"channel":..,"instId":..}]}``
  acked by one ``{"event":"subscribe","arg":{..},"connId":..}`` per arg; bad requests get
  ``{"event":"error","code":"60012"|"60018"|"64003","msg":..,"connId":..}`` (``id`` echoed).
* Text ``ping`` -> text ``pong``. A socket that was pushed nothing for
  :attr:`OkxVenue.idle_close_s` (30 s) is closed, as OKX does.
* Channels: ``trades``, ``bbo-tbt``, ``books`` (snapshot on subscribe with ``prevSeqId:-1``,
  then updates chained ``prevSeqId`` = previous ``seqId``, ``checksum:0``; a no-change update is
  the empty heartbeat with ``seqId == prevSeqId``), ``books5``, ``mark-price`` (1 s),
  ``funding-rate`` (on subscribe, then every 30 s), ``open-interest`` (every 3 s),
  ``tickers`` (1 s) and ``liquidation-orders`` per ``instType`` (SWAP only).
* Sizes are contracts of ``ctVal`` base units (BTC 0.01, ETH 0.1, SOL 1: OKX's own
  values); a liquidation's ``side`` is the order side (``sell`` = long liquidated) with
  ``posSide`` ``net``, or ``long``/``short`` for every third one (hedge-mode accounts).
* ``liquidation-orders`` is sampled: at most one order per instrument per second, the
  latest (throttle on by default; OKX's old docs state this cap, the current ones say only
  that the stream is partial).
* Coin-margined (inverse, ``BTC-USD-SWAP``: ``ctVal`` in USD, ``settleCcy`` the coin) and
  USDC-margined (``BTC-USDC-SWAP``) swaps of the simulated BTC/ETH/SOL with OKX's face values
  (:data:`INVERSE_CT_VAL`, :data:`USDC_CT_VAL`) are listed by ``/instruments`` and answered by
  ``/open-interest`` (each holds :data:`MARGIN_OI_SHARE` of its USDT swap's OI, read by
  engine/margin_oi.py); nothing else about them is served. With
  :attr:`OkxVenue.inverse_liquidation_every` = N > 0, every N-th liquidation of an asset with an
  inverse swap is pushed on ``liquidation-orders`` as that swap's (whole 100/10 USD contracts);
  off by default, since it takes those liquidations away from the USDT swaps every other test reads.
* REST: ``/api/v5/public/instruments``, ``/api/v5/public/open-interest``,
  ``/api/v5/market/tickers``, ``/api/v5/market/ticker``, ``/api/v5/public/mark-price``,
  ``/api/v5/public/funding-rate``, ``/api/v5/public/liquidation-orders``, ``/api/v5/public/time``;
  bodies are ``{"code":"0","msg":"","data":[..]}``.
"""
from __future__ import annotations

import asyncio
import collections
import json
import math
import time
from typing import Any, Callable, Iterable, Mapping
from urllib.parse import parse_qs, urlsplit

from .binance import ForceOrderThrottle
from .klines import KlineBook, select
from .market import BookDiff, BookTop, Liquidation, MarkBatch, MarkUpdate, SymbolSpec, Trade, spec_for

__all__ = ["OkxVenue", "inst_id", "CT_VAL", "INVERSE_CT_VAL", "USDC_CT_VAL", "MARGIN_OI_SHARE"]

NAME = "okx"
WS_PATHS = ("/ws/v5/public", "/ws/v5/business")
CT_VAL = {"BTC": 0.01, "ETH": 0.1, "SOL": 1.0}   # OKX's ctVal of the BTC/ETH/SOL-USDT swaps
GENERIC_CT_VAL = 10.0                             # other synthetic symbols: sizes still in contracts
INVERSE_CT_VAL = {"BTC": 100.0, "ETH": 10.0, "SOL": 10.0}   # USD per contract of BTC/ETH/SOL-USD-SWAP
USDC_CT_VAL = {"BTC": 0.0001, "ETH": 0.001}                  # base per contract of BTC/ETH-USDC-SWAP
MARGIN_OI_SHARE = 0.25      # of the asset's USDT-swap open interest, held by each of its margin swaps
IDLE_CLOSE_S = 30.0
FUNDING_EVERY = 30          # mark batches (s) between funding-rate pushes
OI_EVERY = 3                # mark batches between open-interest pushes
FUNDING_INTERVAL_MS = 8 * 3600 * 1000
SNAPSHOT_LEVELS = 400
LIQUIDATION_HISTORY = 200   # details kept for REST /liquidation-orders
INST_CHANNELS = frozenset({"trades", "bbo-tbt", "books", "books5", "mark-price", "funding-rate",
                           "open-interest", "tickers"})
VIP_CHANNELS = frozenset({"books-l2-tbt", "books50-l2-tbt"})   # VIP4+ only: error 64003
_MARGIN_ROUTES = frozenset({"/api/v5/public/instruments", "/api/v5/public/open-interest"})   # serve margin swaps


def inst_id(symbol: str) -> str:
    """OKX instrument id of a simulator symbol (``BTCUSDT`` -> ``BTC-USDT-SWAP``)."""
    spec = spec_for(symbol)
    return f"{spec.base}-{spec.quote}-SWAP"


class _Inst:
    """One swap: names, contract size and number formats, book chain state."""

    def __init__(self, spec: SymbolSpec) -> None:
        self.spec = spec
        self.inst = i = inst_id(spec.symbol)
        self.family = f"{spec.base}-{spec.quote}"
        self.ct = CT_VAL.get(spec.base, GENERIC_CT_VAL)
        self.cd = max(0, spec.qty_decimals + round(math.log10(self.ct)))   # contract decimals
        self.pd = spec.price_decimals
        self.trades, self.bbo, self.books, self.books5 = f"trades:{i}", f"bbo-tbt:{i}", f"books:{i}", f"books5:{i}"
        self.mark, self.funding, self.oi, self.ticker = (
            f"mark-price:{i}", f"funding-rate:{i}", f"open-interest:{i}", f"tickers:{i}")
        self.seq: int | None = None         # seqId of the last book update rendered
        self.pending: list = []             # clients waiting for their books snapshot
        self.arg_prefix = {}

    def sz(self, qty: float) -> str:
        return f"{qty / self.ct:.{self.cd}f}"

    def px(self, price: float) -> str:
        return f"{price:.{self.pd}f}"

    def head(self, channel: str) -> str:
        head = self.arg_prefix.get(channel)
        if head is None:
            head = self.arg_prefix[channel] = f'{{"arg":{{"channel":"{channel}","instId":"{self.inst}"}},'
        return head

    def levels(self, levels: Iterable) -> str:
        return ",".join(f'["{p:.{self.pd}f}","{self.sz(q)}","0","{_orders(q, self.ct)}"]' for p, q in levels)


class _MarginSwap:
    """An inverse or USDC-margined swap that follows the market of a USDT swap (``usdt``)."""

    def __init__(self, usdt: _Inst, quote: str, ct: float) -> None:
        self.usdt = usdt
        self.quote = quote
        self.inverse = quote == "USD"
        self.family = f"{usdt.spec.base}-{quote}"
        self.inst = f"{self.family}-SWAP"
        self.ct = ct
        self.lot = 1.0 if self.inverse else 0.01   # OKX lotSz: whole inverse contracts, 0.01 USDC contracts
        self.cd = 0 if self.inverse else 2

    def contracts(self, qty: float, price: float) -> float:
        """Contracts for ``qty`` base units at ``price``, rounded to the lot."""
        raw = qty * price / self.ct if self.inverse else qty / self.ct
        return round(raw / self.lot) * self.lot

    def listing(self) -> dict:
        spec = self.usdt.spec
        return {
            "alias": "", "baseCcy": "", "category": "1", "ctMult": "1", "ctType": "inverse" if self.inverse else "linear",
            "ctVal": f"{self.ct:g}", "ctValCcy": "USD" if self.inverse else spec.base, "expTime": "",
            "instFamily": self.family, "instId": self.inst, "instType": "SWAP", "lever": "125",
            "listTime": "1611916828000", "lotSz": f"{self.lot:.{self.cd}f}", "maxLmtSz": "100000000",
            "maxMktSz": "10000", "minSz": f"{self.lot:.{self.cd}f}", "optType": "", "quoteCcy": "",
            "ruleType": "normal", "settleCcy": spec.base if self.inverse else self.quote, "state": "live", "stk": "",
            "tickSz": f"{spec.tick:.{spec.price_decimals}f}", "uly": self.family,
        }


def _margin_swaps(insts: Iterable[_Inst]) -> dict[str, _MarginSwap]:
    """The inverse and USDC swaps of the simulated USDT swaps whose asset OKX lists them for, by instId."""
    out = {}
    for v in insts:
        if v.spec.quote != "USDT":
            continue
        for quote, sizes in (("USD", INVERSE_CT_VAL), ("USDC", USDC_CT_VAL)):
            if v.spec.base in sizes:
                m = _MarginSwap(v, quote, sizes[v.spec.base])
                out[m.inst] = m
    return out


def _orders(qty: float, ct: float) -> int:
    return 0 if qty <= 0.0 else 1 + int(qty / ct) % 7


class OkxVenue:
    """Format neutral market events as OKX v5 pushes and speak OKX's WS/REST rules."""

    name = NAME

    def __init__(self, symbols: Iterable[str], *, market: Any = None, throttle: bool = True) -> None:
        self.market = market
        self.insts = {spec_for(s).symbol: _Inst(spec_for(s)) for s in symbols}
        self.by_inst = {v.inst: v for v in self.insts.values()}
        self.margin = _margin_swaps(self.insts.values())
        self.inverse_of = {m.usdt.spec.symbol: m for m in self.margin.values() if m.inverse}
        self.inverse_liquidation_every = 0   # N > 0: every N-th liquidation of such an asset is its inverse swap's
        self._inverse_turn: collections.Counter = collections.Counter()
        self.throttle = ForceOrderThrottle() if throttle else None
        self.klines = KlineBook()
        self.idle_close_s = IDLE_CLOSE_S
        self.mark_count = 0
        self.liquidation_count = 0
        self.recent_liquidations: collections.deque = collections.deque(maxlen=LIQUIDATION_HISTORY)
        self.stats = collections.Counter()
        self._hub: Any = None
        self._last_push: dict[Any, float] = {}
        self._activate: list[tuple[Any, str]] = []
        self._next_idle_check = 0.0

    # ---------------------------------------------------------------- connections

    def owns(self, path: str) -> bool:
        """Say whether this venue serves the WebSocket request path."""
        return urlsplit(path).path.rstrip("/") in WS_PATHS

    def open_session(self, path: str) -> tuple[str, bool, list[str]]:
        """``(category, combined, streams)``: OKX subscribes by message only."""
        route = urlsplit(path).path.rstrip("/")
        if route not in WS_PATHS:
            raise ValueError(path)
        return route.rsplit("/", 1)[1], False, []

    def accept_streams(self, category: str, names: Iterable[str]) -> list[str]:
        return list(names) if category == "public" else []

    @staticmethod
    def envelope(stream: str, raw: bytes) -> bytes:
        return raw   # no combined mode: every push already names its channel in "arg"

    def endpoints(self, host: str, port: int) -> dict:
        return {"ws_urls": {"public": f"ws://{host}:{port}/ws/v5/public"}, "rest_url": f"http://{host}:{port}",
                "symbols": [v.inst for v in self.insts.values()]}

    def counters(self) -> dict:
        """Venue counters merged into the simulator's ``counters()``."""
        suppressed = self.throttle.suppressed if self.throttle is not None else 0
        return {"okx_liquidations_suppressed": suppressed, **{f"okx_{k}": v for k, v in self.stats.items()}}

    # ---------------------------------------------------------------- client messages

    def handle_text(self, client: Any, text: str | bytes, hub: Any) -> bytes | None:
        """Answer one client message (acks and snapshots are written to the client directly)."""
        self._hub = hub
        self._last_push[client] = time.monotonic()
        if text in ("ping", b"ping"):
            return b"pong"
        conn_id = f"{id(client) & 0xFFFFFFFF:08x}"
        try:
            req = json.loads(text)
        except ValueError:
            return _error("60012", f"Invalid request: {_text(text)}", conn_id)
        if not isinstance(req, dict):
            return _error("60012", f"Invalid request: {_text(text)}", conn_id)
        rid = req.get("id")
        if rid is not None and not (isinstance(rid, str) and 1 <= len(rid) <= 32 and rid.isalnum()):
            return _error("60012", f"Invalid request: {_text(text)}", conn_id)
        op, args = req.get("op"), req.get("args")
        if op not in ("subscribe", "unsubscribe") or not isinstance(args, list) or not args:
            return _error("60012", f"Invalid request: {_text(text)}", conn_id, rid)
        names = []
        for a in args:
            name, code, msg = self._stream_of(a, client.category)
            if name is None:
                self.stats["subscribe_errors"] += 1
                return _error(code, msg, conn_id, rid)
            names.append(name)
        acks = [_ack(op, a, conn_id, rid) for a in args]
        if op == "unsubscribe":
            hub.unsubscribe(client, names)
            for v in self.insts.values():
                v.pending = [c for c in v.pending if c is not client or v.books not in names]
            hub.send(client, acks)   # one ack per arg, as OKX sends them
            return None
        direct, later = [], []
        initial = []
        for name in names:
            channel, _, key = name.partition(":")
            v = self.by_inst.get(key)
            if channel == "books":
                hub.unsubscribe(client, [name])   # a resubscribe starts over from a fresh snapshot
                if client not in v.pending:
                    v.pending.append(client)   # subscribed once its snapshot went out (render)
                continue
            if channel == "funding-rate" and self.market is not None:
                initial.append(self._funding_frame(v, self.market.mark(v.spec.symbol), _now_ms()))
            direct.append(name)
        hub.subscribe(client, direct)
        hub.send(client, acks + initial)
        self.stats["subscribes"] += 1
        return None

    def _stream_of(self, arg: Any, category: str) -> tuple[str | None, str, str]:
        """Stream name of one subscribe arg, or (None, code, msg) when OKX would refuse it."""
        if not isinstance(arg, dict) or not isinstance(arg.get("channel"), str):
            return None, "60012", f"Invalid request: {json.dumps(arg)}"
        channel = arg["channel"]
        if channel in VIP_CHANNELS:
            return None, "64003", "Your trading fee tier doesn't meet the requirement to access this channel"
        if category == "public" and channel == "liquidation-orders":
            inst_type = arg.get("instType")
            if inst_type in ("SWAP", "FUTURES", "MARGIN", "OPTION"):
                return f"liquidation-orders:{inst_type}", "", ""
            return None, "60018", f"Wrong URL or channel:{channel},instType:{inst_type} doesn't exist."
        inst = arg.get("instId")
        if category == "public" and channel in INST_CHANNELS and inst in self.by_inst:
            return f"{channel}:{inst}", "", ""
        return None, "60018", (f"Wrong URL or channel:{channel},instId:{inst} doesn't exist. Please use the "
                               f"correct URL, channel and parameters referring to API document.")

    # ---------------------------------------------------------------- market events -> frames

    def render(self, events: list, t: float, subs: Mapping[str, Any], now_ms: int) -> list[tuple[str, bytes]]:
        """Format ``events`` for the subscribed streams; send due book snapshots; close idle sockets."""
        hub = self._hub
        if self._activate:
            for client, name in self._activate:
                hub.subscribe(client, [name])
            self._activate.clear()
        out: list[tuple[str, bytes]] = []
        add = out.append
        insts = self.insts
        liqs: list[Liquidation] = []
        ts = f'"ts":"{now_ms}"'
        for ev in events:
            kind = type(ev)
            if kind is BookTop:
                v = insts[ev.symbol]
                if v.bbo in subs:
                    add((v.bbo, (f'{v.head("bbo-tbt")}"data":[{{"asks":[["{v.px(ev.ask)}","{v.sz(ev.ask_qty)}","0","1"]],'
                                 f'"bids":[["{v.px(ev.bid)}","{v.sz(ev.bid_qty)}","0","1"]],{ts},"seqId":{ev.update_id}}}]}}'
                                 ).encode()))
            elif kind is Trade:
                v = insts[ev.symbol]
                self.klines.add(ev.symbol, ev.price, ev.qty, ev.taker_buy, now_ms)
                if v.trades in subs:
                    add((v.trades, (f'{v.head("trades")}"data":[{{"instId":"{v.inst}","tradeId":"{ev.trade_id}",'
                                    f'"px":"{v.px(ev.price)}","sz":"{v.sz(ev.qty)}","side":"{"buy" if ev.taker_buy else "sell"}",'
                                    f'{ts},"count":"1","source":"0","seqId":{ev.trade_id}}}]}}').encode()))
            elif kind is Liquidation:
                if self.throttle is not None:
                    self.throttle.offer(ev)
                else:
                    liqs.append(ev)
            elif kind is BookDiff:
                self._books(insts[ev.symbol], ev, subs, ts, add)
            elif kind is MarkBatch:
                self._marks(ev, subs, now_ms, add)
        if self.throttle is not None:
            liqs.extend(self.throttle.due(t))
        if liqs:
            self._liquidations(liqs, subs, now_ms, add)
        for v in insts.values():
            if v.pending and v.seq is not None and hub is not None:
                self._send_snapshots(v, hub, now_ms)
        if out or self._last_push:
            self._track_pushes(out, subs)
        return out

    def _books(self, v: _Inst, ev: BookDiff, subs: Mapping, ts: str, add: Callable) -> None:
        prev = ev.prev_last_id if v.seq is None else v.seq
        empty = not ev.bids and not ev.asks
        v.seq = prev if empty else ev.last_id   # a no-change update is the heartbeat: seqId == prevSeqId
        if v.books in subs:
            add((v.books, (f'{v.head("books")}"action":"update","data":[{{"asks":[{v.levels(ev.asks)}],'
                           f'"bids":[{v.levels(ev.bids)}],{ts},"checksum":0,"prevSeqId":{prev},"seqId":{v.seq}}}]}}'
                           ).encode()))
        if v.books5 in subs:
            add((v.books5, (f'{v.head("books5")}"data":[{{"asks":[{v.levels(ev.top_asks[:5])}],'
                            f'"bids":[{v.levels(ev.top_bids[:5])}],"instId":"{v.inst}",{ts},"seqId":{v.seq}}}]}}'
                            ).encode()))

    def _send_snapshots(self, v: _Inst, hub: Any, now_ms: int) -> None:
        """Write the 400-level snapshot to clients that subscribed ``books``; they get updates from the next batch."""
        _, bids, asks = self.market.book_snapshot(v.spec.symbol, SNAPSHOT_LEVELS)
        raw = (f'{v.head("books")}"action":"snapshot","data":[{{"asks":[{v.levels(asks)}],"bids":[{v.levels(bids)}],'
               f'"ts":"{now_ms}","checksum":0,"prevSeqId":-1,"seqId":{v.seq}}}]}}').encode()
        for client in v.pending:
            if client in hub.clients:
                hub.send(client, [raw])   # a snapshot goes to the new subscriber only
                self._activate.append((client, v.books))
                self.stats["book_snapshots"] += 1
        v.pending.clear()

    def _marks(self, ev: MarkBatch, subs: Mapping, now_ms: int, add: Callable) -> None:
        self.mark_count += 1
        funding = self.mark_count % FUNDING_EVERY == 0
        oi = self.mark_count % OI_EVERY == 0
        for m in ev.marks:
            v = self.insts[m.symbol]
            if v.mark in subs:
                add((v.mark, (f'{v.head("mark-price")}"data":[{{"instId":"{v.inst}","instType":"SWAP",'
                              f'"markPx":"{v.px(m.mark)}","ts":"{now_ms}"}}]}}').encode()))
            if funding and v.funding in subs:
                add((v.funding, self._funding_frame(v, m, now_ms)))
            if oi and v.oi in subs:
                add((v.oi, f'{v.head("open-interest")}"data":[{json.dumps(self._oi(v, m.mark, now_ms))}]}}'.encode()))
            if v.ticker in subs:
                add((v.ticker, f'{v.head("tickers")}"data":[{json.dumps(self._ticker(v, m.mark, now_ms))}]}}'.encode()))

    def _funding_frame(self, v: _Inst, m: MarkUpdate, now_ms: int) -> bytes:
        settle = (now_ms // FUNDING_INTERVAL_MS + 1) * FUNDING_INTERVAL_MS
        d = {"fundingRate": f"{m.funding_rate:.10f}", "fundingTime": str(settle), "formulaType": "withRate",
             "impactValue": "", "instId": v.inst, "instType": "SWAP", "interestRate": "0.0001",
             "maxFundingRate": "0.00375", "method": "current_period", "minFundingRate": "-0.00375",
             "nextFundingRate": "", "nextFundingTime": str(settle + FUNDING_INTERVAL_MS),
             "premium": f"{(m.mark - m.index) / m.index:.8f}" if m.index else "0",
             "settFundingRate": f"{m.funding_rate:.10f}", "settState": "settled", "sprd": "0", "ts": str(now_ms)}
        return f'{v.head("funding-rate")}"data":[{json.dumps(d, separators=(",", ":"))}]}}'.encode()

    def _oi(self, v: _Inst, price: float, now_ms: int) -> dict:
        base = self.market.open_interest(v.spec.symbol)
        return {"instId": v.inst, "instType": "SWAP", "oi": v.sz(base), "oiCcy": f"{base:.{v.spec.qty_decimals}f}",
                "oiUsd": f"{base * price:.2f}", "ts": str(now_ms)}

    def _ticker(self, v: _Inst, mark: float, now_ms: int) -> dict:
        spec = v.spec
        # 24 h volume implied by the market's trade rate and typical size (the market keeps no totals)
        base_vol = spec.trade_usd * spec.weight * self.market.rate * 0.4 * 86400.0 / max(mark, 1e-12)
        px = v.px(self.market.price(spec.symbol))
        return {"instType": "SWAP", "instId": v.inst, "last": px, "lastSz": v.sz(spec.step), "askPx": px,
                "askSz": "1", "bidPx": px, "bidSz": "1", "open24h": px, "high24h": px, "low24h": px,
                "volCcy24h": f"{base_vol:.{spec.qty_decimals}f}", "vol24h": v.sz(base_vol),
                "sodUtc0": px, "sodUtc8": px, "ts": str(now_ms)}

    def _liquidations(self, liqs: list, subs: Mapping, now_ms: int, add: Callable) -> None:
        groups: dict[str, tuple[Any, list]] = {}
        for ev in liqs:
            v = self.insts[ev.symbol]
            self.liquidation_count += 1
            hedge = self.liquidation_count % 3 == 0
            pos = ("long" if ev.long_liquidated else "short") if hedge else "net"
            detail = {"bkLoss": "0", "bkPx": v.px(ev.price), "ccy": "", "posSide": pos,
                      "side": "sell" if ev.long_liquidated else "buy", "sz": v.sz(ev.qty), "ts": str(now_ms)}
            inverse = self._as_inverse(ev)
            if inverse is not None:
                swap, detail["sz"] = inverse
                groups.setdefault(swap.inst, (swap, []))[1].append(detail)
                continue
            groups.setdefault(v.inst, (v, []))[1].append(detail)
            self.recent_liquidations.append((v, detail))
        if "liquidation-orders:SWAP" not in subs:
            return
        data = [self._group(target, details) for target, details in groups.values()]
        add(("liquidation-orders:SWAP", (
            '{"arg":{"channel":"liquidation-orders","instType":"SWAP"},"data":'
            + json.dumps(data, separators=(",", ":")) + "}").encode()))

    def _as_inverse(self, ev: Liquidation) -> tuple[_MarginSwap, str] | None:
        """(inverse swap, ``sz`` in its whole USD contracts) when ``ev`` is pushed as the asset's inverse swap's."""
        swap = self.inverse_of.get(ev.symbol) if self.inverse_liquidation_every > 0 else None
        if swap is None:
            return None
        self._inverse_turn[ev.symbol] += 1
        if self._inverse_turn[ev.symbol] % self.inverse_liquidation_every:
            return None
        return swap, f"{max(1.0, swap.contracts(ev.qty, ev.price)):.0f}"

    @staticmethod
    def _group(v: _Inst | _MarginSwap, details: list) -> dict:
        return {"details": details, "instFamily": v.family, "instId": v.inst, "instType": "SWAP", "uly": v.family}

    # ---------------------------------------------------------------- keepalive

    def _track_pushes(self, out: list, subs: Mapping) -> None:
        """Note which clients got a push; close those silent for ``idle_close_s`` (OKX's 30 s rule)."""
        now = time.monotonic()
        last = self._last_push
        for name in {name for name, _ in out}:
            for client in subs.get(name, ()):
                last[client] = now
        if now < self._next_idle_check or self._hub is None:
            return
        self._next_idle_check = now + min(1.0, self.idle_close_s / 4)
        live = self._hub.clients
        for client in [c for c in last if c not in live]:
            del last[client]
        loop = asyncio.get_running_loop()
        for client, at in list(last.items()):
            if client.venue is self and now - at > self.idle_close_s:
                del last[client]
                self.stats["idle_closes"] += 1
                loop.create_task(client.conn.close(4004, "No data received in 30s."))

    # ---------------------------------------------------------------- REST

    def rest(self, path: str) -> tuple[int, Any]:
        """Answer a REST GET: return ``(status, json-able body)``; 404 when the path is not OKX's."""
        parts = urlsplit(path)
        route = parts.path.rstrip("/")
        if not route.startswith("/api/v5/"):
            return 404, {"code": "50000", "msg": "not an OKX path", "data": []}
        q = {k: v[0] for k, v in parse_qs(parts.query).items()}
        now_ms = _now_ms()
        if route == "/api/v5/public/time":
            return 200, _ok([{"ts": str(now_ms)}])
        if route == "/api/v5/market/history-candles":
            return self._rest_candles(q, now_ms)
        handler = {
            "/api/v5/public/instruments": self._rest_instruments,
            "/api/v5/public/open-interest": self._rest_open_interest,
            "/api/v5/market/tickers": self._rest_tickers,
            "/api/v5/market/ticker": self._rest_tickers,
            "/api/v5/public/mark-price": self._rest_marks,
            "/api/v5/public/funding-rate": self._rest_funding,
            "/api/v5/public/liquidation-orders": self._rest_liquidations,
        }.get(route)
        if handler is None:
            return 404, {"code": "50000", "msg": f"Path {route} not found", "data": []}
        if route not in ("/api/v5/market/ticker", "/api/v5/public/funding-rate") and not q.get("instType"):
            return 400, {"code": "50014", "msg": "Parameter instType can not be empty.", "data": []}
        if route in ("/api/v5/market/ticker", "/api/v5/public/funding-rate") and not q.get("instId"):
            return 400, {"code": "50014", "msg": "Parameter instId can not be empty.", "data": []}
        inst = q.get("instId")
        margin_route = route in _MARGIN_ROUTES
        if inst is not None and inst not in self.by_inst and not (margin_route and inst in self.margin):
            return 400, {"code": "51001", "msg": "Instrument ID does not exist", "data": []}
        if q.get("instType", "SWAP") != "SWAP":
            return 200, _ok([])   # the simulator lists perpetual swaps only
        if self.market is None and route != "/api/v5/public/instruments":
            return 503, {"code": "50001", "msg": "Service temporarily unavailable", "data": []}
        margin = [m for i, m in self.margin.items() if inst in (None, i)] if margin_route else []
        chosen = [self.by_inst[inst]] if inst in self.by_inst else [] if inst else list(self.insts.values())
        data = handler(chosen, q, now_ms) if chosen else []
        if route == "/api/v5/public/instruments":
            return 200, _ok(data + [m.listing() for m in margin])
        return 200, _ok(data + [self._margin_oi(m, now_ms) for m in margin])

    def _rest_candles(self, q: dict, now_ms: int) -> tuple[int, dict]:
        """``/api/v5/market/history-candles`` (bar ``1m`` only): bars older than ``after`` and newer than
        ``before``, newest first, ``[ts, o, h, l, c, vol (contracts), volCcy (base), volCcyQuote, confirm]``."""
        v = self.by_inst.get(q.get("instId", ""))
        if v is None:
            return 400, {"code": "51001", "msg": "Instrument ID does not exist", "data": []}
        try:
            limit = int(q.get("limit", "100"))
            after, before = (int(q[k]) if k in q else None for k in ("after", "before"))
        except ValueError:
            return 400, {"code": "50014", "msg": "Parameter limit, after or before error", "data": []}
        if q.get("bar", "1m") != "1m" or not 1 <= limit <= 100:
            return 400, {"code": "51000", "msg": "Parameter bar or limit error", "data": []}
        rows = select(self.klines, v.spec.symbol, None if before is None else before + 1,
                      None if after is None else after - 1, limit)
        return 200, _ok([[str(t), v.px(o), v.px(h), v.px(lo), v.px(c), v.sz(vol), f"{vol:.{v.spec.qty_decimals}f}",
                          f"{quote:.4f}", "1" if t + 60_000 <= now_ms else "0"]
                         for t, (o, h, lo, c, vol, quote, *_) in reversed(rows)])

    @staticmethod
    def _rest_instruments(chosen: list, q: dict, now_ms: int) -> list:
        return [{
            "alias": "", "baseCcy": "", "category": "1", "ctMult": "1", "ctType": "linear",
            "ctVal": f"{v.ct:g}", "ctValCcy": v.spec.base, "expTime": "", "instFamily": v.family, "instId": v.inst,
            "instType": "SWAP", "lever": "100", "listTime": "1611916828000", "lotSz": f"{10.0 ** -v.cd:.{v.cd}f}",
            "maxLmtSz": "100000000", "maxMktSz": "10000", "minSz": f"{10.0 ** -v.cd:.{v.cd}f}", "optType": "",
            "quoteCcy": "", "ruleType": "normal", "settleCcy": v.spec.quote, "state": "live", "stk": "",
            "tickSz": f"{v.spec.tick:.{v.pd}f}", "uly": v.family,
        } for v in chosen]

    def _margin_oi(self, m: _MarginSwap, now_ms: int) -> dict:
        """OI of an inverse or USDC swap: ``oi`` contracts, ``oiCcy`` base coin, ``oiUsd``, as OKX answers it."""
        symbol = m.usdt.spec.symbol
        price = self.market.mark(symbol).mark
        contracts = m.contracts(MARGIN_OI_SHARE * self.market.open_interest(symbol), price)
        usd = contracts * m.ct if m.inverse else contracts * m.ct * price
        return {"instId": m.inst, "instType": "SWAP", "oi": f"{contracts:.{m.cd}f}", "oiCcy": f"{usd / price:.8f}",
                "oiUsd": f"{usd:.2f}", "ts": str(now_ms)}

    def _rest_open_interest(self, chosen: list, q: dict, now_ms: int) -> list:
        return [self._oi(v, self.market.mark(v.spec.symbol).mark, now_ms) for v in chosen]

    def _rest_tickers(self, chosen: list, q: dict, now_ms: int) -> list:
        return [self._ticker(v, self.market.mark(v.spec.symbol).mark, now_ms) for v in chosen]

    def _rest_marks(self, chosen: list, q: dict, now_ms: int) -> list:
        return [{"instType": "SWAP", "instId": v.inst, "markPx": v.px(self.market.mark(v.spec.symbol).mark),
                 "ts": str(now_ms)} for v in chosen]

    def _rest_funding(self, chosen: list, q: dict, now_ms: int) -> list:
        return [json.loads(self._funding_frame(v, self.market.mark(v.spec.symbol), now_ms))["data"][0]
                for v in chosen]

    def _rest_liquidations(self, chosen: list, q: dict, now_ms: int) -> list:
        family = q.get("instFamily") or q.get("uly")
        wanted = {v.inst for v in chosen if family in (None, v.family)}
        groups: dict[str, list] = {}
        for v, detail in reversed(self.recent_liquidations):   # newest first, as OKX lists them
            if v.inst in wanted:
                groups.setdefault(v.inst, []).append(detail)
        return [self._group(self.by_inst[i], d) for i, d in groups.items()]


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _ok(data: list) -> dict:
    return {"code": "0", "msg": "", "data": data}


def _text(text: str | bytes) -> str:
    return text.decode(errors="replace") if isinstance(text, bytes) else text


def _ack(op: str, arg: dict, conn_id: str, rid: Any) -> bytes:
    body = {"id": rid} if rid is not None else {}
    body.update(event=op, arg=arg, connId=conn_id)
    return json.dumps(body, separators=(",", ":")).encode()


def _error(code: str, msg: str, conn_id: str, rid: Any = None) -> bytes:
    body = {"id": rid} if rid is not None else {}
    body.update(event="error", code=code, msg=msg, connId=conn_id)
    return json.dumps(body, separators=(",", ":")).encode()
