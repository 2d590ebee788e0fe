"""Binance spot wire protocol for the simulator, served from the same synthetic market as the perpetuals.

Contract (what :mod:`engine.venues.binance_spot` expects of ``stream.binance.com:9443`` / ``api.binance.com``):

* WS under the prefix ``/spot`` (the real host has no prefix; one simulator port serves every venue and
  Hyperliquid owns ``/ws``): raw ``/spot/ws/<s1>/<s2>`` or combined ``/spot/stream?streams=<s1>/<s2>``.
  ``SUBSCRIBE``/``UNSUBSCRIBE``/``LIST_SUBSCRIPTIONS``/``SET_PROPERTY`` and their acks and errors are the
  USD-M simulator's (the spot API speaks the same JSON); names that are not spot streams (``@forceOrder``,
  ``@markPrice``) are acked, never delivered and counted as ``spot_unknown_streams``.
* Streams: ``<s>@aggTrade``, ``<s>@trade`` (spot frames carry ``M`` and no ``X``) and ``!miniTicker@arr``
  (once per market second, every served pair plus :data:`LISTING_EXTRAS`).
* Prices and flow: :class:`~engine.simulator.spot_tape.SpotTape` (spot = perpetual trade price / (1 + the
  market's basis); a share of the perpetual trades with their own sizes, sides that follow the perpetual's
  most of the time, consecutive trade ids); :meth:`lead` makes a symbol's spot flow one-sided (spot-led
  buying or selling for the CVD tests and scenarios).
* REST: ``/api/v3/exchangeInfo``, ``/api/v3/ticker/24hr``, ``/api/v3/klines`` (1m, the trades sent),
  ``/api/v3/ping``, ``/api/v3/time``.

Server pings and the pong timeout are the simulator's server-wide settings (spot's real ones are 20 s /
60 s), and so is the incoming-message cap (spot allows 5 per second).
"""
from __future__ import annotations

import re
import time
from typing import Any, Iterable, Mapping
from urllib.parse import parse_qs, urlsplit

from .binance import BinanceVenue, PathError, _fmt
from .market import spec_for
from .spot_tape import SpotPrint, SpotVenue, idle_stats

__all__ = ["BinanceSpotVenue", "PREFIX", "LISTING_EXTRAS"]

NAME = "binance_spot"
PREFIX = "/spot"
KLINE_MAX_LIMIT = 1000
_STREAM_RE = re.compile(r"^([a-z0-9]+@(aggTrade|trade|miniTicker|ticker|bookTicker|avgPrice|depth(5|10|20)?"
                        r"(@100ms|@1000ms)?|kline_\w+)|!miniTicker@arr|!ticker@arr)$")
# Listed and ticking but never traded here, with volumes above every served pair, so that a selector or a
# /top10 that forgets to skip stablecoins, leveraged tokens or halted pairs shows it.
LISTING_EXTRAS = (
    ("USDCUSDT", "USDC", "USDT", "TRADING", 1.0, 9e10),
    ("BTCUPUSDT", "BTCUP", "USDT", "TRADING", 30.0, 8e10),
    ("OLDUSDT", "OLD", "USDT", "BREAK", 2.0, 7e10),
)


class BinanceSpotVenue(SpotVenue, BinanceVenue):
    """Binance spot frames from the synthetic market; subscribe protocol and klines shared with USD-M."""

    name = NAME
    paths = ("spot",)

    def __init__(self, symbols: Iterable[str], *, market: Any = None, throttle: bool = True, seed: int = 11) -> None:
        super().__init__(symbols, market=market, throttle=False)
        self.open_tape(self.symbols, market, seed)
        self.unknown_streams = 0
        self.ticker_second = -1

    # ---------------------------------------------------------------- connections

    def owns(self, path: str) -> bool:
        segs = urlsplit(path).path.split("/")
        return segs[1:2] == [PREFIX[1:]] and segs[2:3] in (["ws"], ["stream"])

    def open_session(self, path: str) -> tuple[str, bool, list[str]]:
        """``(category, combined, streams)`` of ``/spot/ws/<s>...`` or ``/spot/stream?streams=..``."""
        parts = urlsplit(path)
        segs = parts.path.strip("/").split("/")
        if len(segs) < 2 or segs[0] != PREFIX[1:]:
            raise PathError(path)
        if segs[1] == "ws":
            return "spot", False, [s for s in segs[2:] if s]
        if segs[1] == "stream" and len(segs) == 2:
            names = parse_qs(parts.query).get("streams", [""])[0]
            return "spot", True, [s for s in names.split("/") if s]
        raise PathError(path)

    def accept_streams(self, category: str, names: Iterable[str]) -> list[str]:
        ok = []
        for n in names:
            if _STREAM_RE.match(n):
                ok.append(n)
            else:
                self.unknown_streams += 1
        return ok

    def endpoints(self, host: str, port: int) -> dict:
        return {"ws_urls": {"spot": f"ws://{host}:{port}{PREFIX}"}, "rest_url": f"http://{host}:{port}"}

    # ---------------------------------------------------------------- flow

    def spot_price(self, symbol: str, perp_price: float) -> float:
        """The spot price beside a perpetual price (:meth:`SpotTape.price`)."""
        return self.tape.price(symbol, perp_price)

    def render(self, events: list, t: float, subs: Mapping[str, Any], now_ms: int) -> list[tuple[str, bytes]]:
        out: list[tuple[str, bytes]] = []
        for p in self.tape.prints(events, now_ms):
            self._trade(p, subs, now_ms, out)
        second = int(t)
        if second != self.ticker_second:
            self.ticker_second = second
            if "!miniTicker@arr" in subs:
                out.append(("!miniTicker@arr", self._mini_tickers(now_ms)))
        return out

    def _trade(self, t: SpotPrint, subs: Mapping, now_ms: int, out: list) -> None:
        ss = self.symbols[t.symbol]
        maker = "false" if t.buy else "true"   # m: the buyer is the maker, i.e. the taker sold
        p, q, s, tid = f"{t.price:.{ss.pd}f}", f"{t.qty:.{ss.qd}f}", t.symbol, t.trade_id
        if ss.agg in subs:
            out.append((ss.agg, (f'{{"e":"aggTrade","E":{now_ms},"s":"{s}","a":{tid},"p":"{p}","q":"{q}",'
                                 f'"f":{tid},"l":{tid},"T":{now_ms},"m":{maker},"M":true}}').encode()))
        if ss.trade in subs:
            out.append((ss.trade, (f'{{"e":"trade","E":{now_ms},"s":"{s}","t":{tid},"p":"{p}","q":"{q}",'
                                   f'"T":{now_ms},"m":{maker},"M":true}}').encode()))

    def _rows(self) -> list[tuple]:
        """(symbol, base, quote, status, last, open, high, low, base volume, quote volume) of every listed pair."""
        return ([(sym, ss.spec.base, ss.spec.quote, "TRADING", *self.tape.stats(sym))
                 for sym, ss in self.symbols.items()]
                + [(sym, base, quote, status, *idle_stats(price, usd))
                   for sym, base, quote, status, price, usd in LISTING_EXTRAS])

    def _mini_tickers(self, now_ms: int) -> bytes:
        items = []
        for sym, _, _, _, c, o, h, lo, v, q in self._rows():
            pd = self.symbols[sym].pd if sym in self.symbols else 4
            items.append(f'{{"e":"24hrMiniTicker","E":{now_ms},"s":"{sym}","c":"{c:.{pd}f}","o":"{o:.{pd}f}",'
                         f'"h":"{h:.{pd}f}","l":"{lo:.{pd}f}","v":"{v:.4f}","q":"{q:.4f}"}}')
        return ("[" + ",".join(items) + "]").encode()

    def counters(self) -> dict:
        return {"spot_trades": self.tape.trades, "spot_unknown_streams": self.unknown_streams}

    # ---------------------------------------------------------------- REST

    def rest(self, path: str) -> tuple[int, Any]:
        parts = urlsplit(path)
        route = parts.path.rstrip("/")
        if not route.startswith("/api/v3/"):
            return 404, {"code": -5000, "msg": f"Path {parts.path}, Method GET is invalid"}
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        now_ms = time.time_ns() // 1_000_000
        if route == "/api/v3/ping":
            return 200, {}
        if route == "/api/v3/time":
            return 200, {"serverTime": now_ms}
        if route == "/api/v3/exchangeInfo":
            return 200, self._exchange_info(now_ms)
        if route == "/api/v3/ticker/24hr":
            return self._tickers_24h(query.get("symbol"), now_ms)
        if route == "/api/v3/klines":
            symbol = query.get("symbol")
            if not symbol:
                return 400, {"code": -1102, "msg": "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed."}
            if symbol not in self.symbols:
                return 400, {"code": -1121, "msg": "Invalid symbol."}
            raw = query.get("limit", "500")
            if raw.isdigit() and int(raw) > KLINE_MAX_LIMIT:   # spot serves at most 1000 rows (USD-M 1500)
                return 400, {"code": -1130, "msg": "Data sent for parameter 'limit' is not valid."}
            return self._klines(self.symbols[symbol], query)
        return 404, {"code": -5000, "msg": f"Path {parts.path}, Method GET is invalid"}

    def rest_weight(self, path: str) -> int:
        parts = urlsplit(path)
        if parts.path.startswith("/api/v3/ticker/24hr"):
            return 2 if parse_qs(parts.query).get("symbol") else 80
        return {"/api/v3/exchangeInfo": 20, "/api/v3/klines": 2}.get(parts.path.rstrip("/"), 1)

    def _tickers_24h(self, symbol: str | None, now_ms: int) -> tuple[int, Any]:
        body = [{"symbol": sym, "lastPrice": _fmt(c, 8), "openPrice": _fmt(o, 8), "highPrice": _fmt(h, 8),
                 "lowPrice": _fmt(lo, 8), "volume": _fmt(v, 4), "quoteVolume": _fmt(q, 4),
                 "openTime": now_ms - 86_400_000, "closeTime": now_ms, "count": 1000}
                for sym, _, _, _, c, o, h, lo, v, q in self._rows() if symbol is None or sym == symbol]
        if symbol is not None:
            return (200, body[0]) if body else (400, {"code": -1121, "msg": "Invalid symbol."})
        return 200, body

    def _exchange_info(self, now_ms: int) -> dict:
        symbols = []
        for sym, base, quote, status, *_ in self._rows():
            spec = self.symbols[sym].spec if sym in self.symbols else spec_for(sym)
            symbols.append({
                "symbol": sym, "status": status, "baseAsset": base, "baseAssetPrecision": 8, "quoteAsset": quote,
                "quotePrecision": 8, "quoteAssetPrecision": 8, "orderTypes": ["LIMIT", "MARKET"],
                "isSpotTradingAllowed": True, "isMarginTradingAllowed": False, "permissions": [],
                "permissionSets": [["SPOT"]],
                "filters": [
                    {"filterType": "PRICE_FILTER", "minPrice": _fmt(spec.tick, spec.price_decimals),
                     "maxPrice": "1000000.00", "tickSize": _fmt(spec.tick, spec.price_decimals)},
                    {"filterType": "LOT_SIZE", "minQty": _fmt(spec.step, spec.qty_decimals), "maxQty": "9000",
                     "stepSize": _fmt(spec.step, spec.qty_decimals)},
                ],
            })
        return {"timezone": "UTC", "serverTime": now_ms,
                "rateLimits": [{"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1,
                                "limit": 6000}],
                "exchangeFilters": [], "symbols": symbols}
