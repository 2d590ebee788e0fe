"""Bybit v5 spot for the simulator: ``publicTrade`` on ``/v5/public/spot`` and the spot REST listing and tickers,
from the same synthetic market as the linear perpetuals (:class:`~engine.simulator.spot_tape.SpotTape`).

Contract served (what :mod:`engine.venues.bybit_spot` expects):

* WS path ``/v5/public/spot`` (the real one); the linear simulator's subscribe/unsubscribe/ping protocol, acks
  and errors, plus spot's cap of 10 args per request (the error text is the simulator's own). Only
  ``publicTrade.{s}`` of a served pair is a spot topic here; any other topic fails the request as
  ``handler not found``.
* ``publicTrade.{s}``: one frame per pair per market step, the linear format with spot's differences: ``i`` a
  numeric string, no ``L``. ``S`` = taker side, ``v`` base coin.
* REST (HTTP 200; errors carry ``retCode != 0``) for ``category=spot`` only, which this venue claims ahead of the
  linear one on the shared host: ``/v5/market/instruments-info`` (one page, no ``contractType``; plus
  :data:`LISTING_EXTRAS`), ``/v5/market/tickers`` (``turnover24h`` in the quote coin), ``/v5/market/kline``
  (the linear route's rows and bounds: interval ``1``, volume in base coin, of the spot trades sent),
  ``/v5/market/time``.
"""
from __future__ import annotations

import collections
import json
import time
from typing import Any, Callable, Iterable, Mapping
from urllib.parse import parse_qs, urlsplit

from .bybit import BybitVenue, _reply
from .spot_tape import SpotPrint, SpotVenue, idle_stats

__all__ = ["BybitSpotVenue", "WS_PATH", "LISTING_EXTRAS"]

NAME = "bybit_spot"
WS_PATH = "/v5/public/spot"
MAX_ARGS_PER_REQUEST = 10
# Listed and ticking but never traded here, with turnover above every served pair, so that a selector that
# forgets to skip stablecoins and leveraged tokens shows it: (symbol, base, quote, price, 24 h turnover USD).
LISTING_EXTRAS = (("USDCUSDT", "USDC", "USDT", 1.0, 9e10), ("BTC3LUSDT", "BTC3L", "USDT", 2.5, 8e10))


class BybitSpotVenue(SpotVenue, BybitVenue):
    """Bybit spot frames from the synthetic market; subscribe protocol and REST envelope shared with linear."""

    name = NAME
    ws_path, ws_category = WS_PATH, "spot"

    def __init__(self, symbols: Iterable[str], *, market: Any = None, throttle: bool = True, seed: int = 12) -> None:
        super().__init__(symbols, market=market, throttle=throttle)
        self.open_tape(self.symbols, market, seed)
        self.topics = {s: f"publicTrade.{s}" for s in self.symbols}
        self.stats.update(bybit_spot_subscribe_errors=0)   # beside the linear protocol's own counters
        self.sent: collections.Counter[str] = collections.Counter()   # symbol -> trades pushed to subscribers

    # ---------------------------------------------------------------- connections

    def _valid(self, topic: str) -> bool:
        return topic.startswith("publicTrade.") and topic[12:] in self.topics

    def handle_text(self, client: Any, text: str | bytes, hub: Any) -> bytes:
        """The linear protocol, after spot's cap of 10 args per subscribe/unsubscribe request."""
        try:
            req = json.loads(text)
        except ValueError:
            req = None
        if isinstance(req, dict) and isinstance(req.get("args"), list) and len(req["args"]) > MAX_ARGS_PER_REQUEST:
            self.stats["bybit_spot_subscribe_errors"] += 1
            return _reply(client, req.get("req_id", ""), req.get("op"), False,
                          f"error:args count over {MAX_ARGS_PER_REQUEST}")
        return super().handle_text(client, text, hub)

    def endpoints(self, host: str, port: int) -> dict:
        return {"ws_urls": {"spot": f"ws://{host}:{port}{WS_PATH}"}, "rest_url": f"http://{host}:{port}",
                "symbols": list(self.symbols)}

    def counters(self) -> dict:
        return {**self.stats, "bybit_spot_trades": self.tape.trades, "bybit_spot_trades_sent": sum(self.sent.values())}

    # ---------------------------------------------------------------- market events -> frames

    def render(self, events: list, t: float, subs: Mapping[str, Any], now_ms: int) -> list[tuple[str, bytes]]:
        by_symbol: dict[str, list[SpotPrint]] = {}
        for p in self.tape.prints(events, now_ms):
            by_symbol.setdefault(p.symbol, []).append(p)
        out: list[tuple[str, bytes]] = []
        for symbol, prints in by_symbol.items():
            if self.topics[symbol] in subs:
                self.sent[symbol] += len(prints)
                self._trade_frame(symbol, prints, now_ms, out.append)
        return out

    def _trade_frame(self, symbol: str, prints: list[SpotPrint], now_ms: int, add: Callable) -> None:
        ss, topic = self.symbols[symbol], self.topics[symbol]
        self.trade_seq += 1
        items = ",".join(
            f'{{"i":"{2_290_000_000_000_000_000 + p.trade_id}","T":{now_ms},"p":"{p.price:.{ss.pd}f}",'
            f'"v":"{p.qty:.{ss.qd}f}","S":"{"Buy" if p.buy else "Sell"}","s":"{symbol}","BT":false,"RPI":false,'
            f'"seq":{self.trade_seq}}}' for p in prints)
        add((topic, f'{{"topic":"{topic}","ts":{now_ms},"type":"snapshot","data":[{items}]}}'.encode()))

    # ---------------------------------------------------------------- REST

    def claims(self, path: str) -> bool:
        """REST requests that are spot's on the host it shares with linear: ``/v5/market/...?category=spot``."""
        parts = urlsplit(path)
        return parts.path.startswith("/v5/market/") and parse_qs(parts.query).get("category") == ["spot"]

    def rest(self, path: str) -> tuple[int, Any]:
        """``category=spot`` instruments, tickers and klines (and the server time); 404 for anything else."""
        if not self.claims(path) and urlsplit(path).path.rstrip("/") != "/v5/market/time":
            return 404, {"retCode": 404, "retMsg": "Not Found"}
        parts = urlsplit(path)
        route = parts.path.rstrip("/")
        q = {k: v[0] for k, v in parse_qs(parts.query).items()}
        now_ms = time.time_ns() // 1_000_000
        if route == "/v5/market/time":
            return super().rest(path)
        if route == "/v5/market/kline":
            return self._spot_kline(q, now_ms)
        rows = self._rows()
        if "symbol" in q:
            rows = [r for r in rows if r[0] == q["symbol"]]
            if not rows:
                return self._error("params error: symbol invalid", now_ms)
        if route == "/v5/market/instruments-info":
            return self._ok({"category": "spot", "list": [self._instrument_row(*r[:3]) for r in rows]}, now_ms)
        if route == "/v5/market/tickers":
            return self._ok({"category": "spot", "list": [self._ticker_row(*r) for r in rows]}, now_ms)
        return self._error(f"params error: category spot is not served on {route}", now_ms)

    def _spot_kline(self, q: dict, now_ms: int) -> tuple[int, dict]:
        """The linear ``/v5/market/kline`` of a served pair's spot trades, under ``category`` spot."""
        if q.get("symbol") not in self.symbols:   # listed extras never trade: no klines here
            return self._error("params error: symbol invalid", now_ms)
        status, body = self._kline(q, now_ms)
        if body["retCode"] == 0:
            body["result"]["category"] = "spot"
        return status, body

    def _rows(self) -> list[tuple]:
        """(symbol, base, quote, last, open, high, low, base volume, quote volume) of every listed pair."""
        return ([(sym, ss.spec.base, ss.spec.quote, *self.tape.stats(sym)) for sym, ss in self.symbols.items()]
                + [(sym, base, quote, *idle_stats(price, usd)) for sym, base, quote, price, usd in LISTING_EXTRAS])

    def _instrument_row(self, symbol: str, base: str, quote: str) -> dict:
        ss = self.symbols.get(symbol)
        tick = f"{ss.spec.tick:.{ss.pd}f}" if ss else "0.0001"
        step = f"{ss.spec.step:.{ss.qd}f}" if ss else "0.01"
        return {"symbol": symbol, "baseCoin": base, "quoteCoin": quote, "innovation": "0", "status": "Trading",
                "marginTrading": "none", "stTag": "0",
                "lotSizeFilter": {"basePrecision": step, "quotePrecision": "0.00000001", "minOrderQty": step,
                                  "maxOrderQty": "1000", "minOrderAmt": "1", "maxOrderAmt": "2000000"},
                "priceFilter": {"tickSize": tick},
                "riskParameters": {"priceLimitRatioX": "0.05", "priceLimitRatioY": "0.1"}}

    def _ticker_row(self, symbol: str, base: str, quote: str, last: float, open_: float, high: float, low: float,
                    volume: float, turnover: float) -> dict:
        ss = self.symbols.get(symbol)
        pd = ss.pd if ss else 4
        px = lambda x: f"{x:.{pd}f}"
        return {"symbol": symbol, "bid1Price": px(last), "bid1Size": "1", "ask1Price": px(last), "ask1Size": "1",
                "lastPrice": px(last), "prevPrice24h": px(open_), "price24hPcnt": f"{last / open_ - 1.0:.4f}",
                "highPrice24h": px(high), "lowPrice24h": px(low), "turnover24h": f"{turnover:.4f}",
                "volume24h": f"{volume:.4f}", "usdIndexPrice": px(last)}
