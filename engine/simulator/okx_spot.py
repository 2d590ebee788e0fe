"""OKX v5 spot for the simulator: ``trades`` of spot pairs (``BTC-USDT``) and the ``instType=SPOT`` listing and
tickers, from the same synthetic market as the swaps (:class:`~engine.simulator.spot_tape.SpotTape`).

Contract served (what :mod:`engine.venues.okx_spot` expects):

* WS under the prefix ``/okx-spot``: ``/okx-spot/ws/v5/public``. The real venue serves spot on the swaps'
  ``/ws/v5/public``; one simulator port serves every venue and the swap simulator owns that path, which is
  the only departure. The swap simulator's protocol (subscribe ops, one ack per arg, error events, text
  ``ping``/``pong``, the 30 s idle close); only ``trades`` of a served spot pair is accepted, anything else
  gets error 60018 as an unknown channel/instId does.
* ``trades``: one push per spot trade, the swap format (``side`` = taker side, ``count`` 1, ``source``
  ``0``, ``seqId``) with ``sz`` in the **base currency** (no contracts on spot).
* REST with ``instType=SPOT`` (or a spot ``instId``), which this venue claims ahead of the swap one on the
  shared host: ``/api/v5/public/instruments`` (empty ``ctVal``, ``baseCcy``/``quoteCcy``; plus
  :data:`LISTING_EXTRAS`), ``/api/v5/market/tickers`` and ``/api/v5/market/ticker`` (``volCcy24h`` in the
  quote currency, ``vol24h`` base), ``/api/v5/market/history-candles`` (the swap route's bounds, bar ``1m``, of
  the spot trades sent; spot's ``vol`` is base currency, ``volCcy`` and ``volCcyQuote`` quote). Bodies
  ``{"code":"0","msg":"","data":[..]}``.
"""
from __future__ import annotations

import collections
from typing import Any, Iterable, Mapping
from urllib.parse import parse_qs, urlsplit

from .okx import OkxVenue, _now_ms, _ok
from .spot_tape import SpotVenue, idle_stats

__all__ = ["OkxSpotVenue", "PREFIX", "WS_PATH", "LISTING_EXTRAS"]

NAME = "okx_spot"
PREFIX = "/okx-spot"
WS_PATH = f"{PREFIX}/ws/v5/public"
# Listed but never traded here, with volumes above every served pair, so that a selector that forgets to skip
# stablecoins or suspended pairs shows it: (instId, base, quote, state, price, 24 h quote volume).
LISTING_EXTRAS = (("USDC-USDT", "USDC", "USDT", "live", 1.0, 9e10), ("OLD-USDT", "OLD", "USDT", "suspend", 2.0, 8e10))


class OkxSpotVenue(SpotVenue, OkxVenue):
    """OKX spot pushes from the synthetic market; subscribe protocol and keepalive shared with the swaps."""

    name = NAME
    ws_path, ws_category = WS_PATH, "public"

    def __init__(self, symbols: Iterable[str], *, market: Any = None, throttle: bool = True, seed: int = 13) -> None:
        super().__init__(symbols, market=market, throttle=False)
        self.open_tape(self.insts, market, seed)
        self.pairs = {v.family: v for v in self.insts.values()}     # spot instId (BTC-USDT) -> the swap's _Inst
        self.streams = {sym: f"trades:{v.family}" for sym, v in self.insts.items()}
        self.sent: collections.Counter[str] = collections.Counter()   # symbol -> trades pushed to subscribers

    # ---------------------------------------------------------------- connections

    def _stream_of(self, arg: Any, category: str) -> tuple[str | None, str, str]:
        """``trades`` of a served spot pair; any other channel or instId is refused as OKX refuses unknown ones."""
        if not isinstance(arg, dict) or not isinstance(arg.get("channel"), str):
            return super()._stream_of(arg, category)   # the 60012 reply to a malformed arg
        channel, inst = arg["channel"], arg.get("instId")
        if channel == "trades" and inst in self.pairs:
            return f"trades:{inst}", "", ""
        return None, "60018", (f"Wrong URL or channel:{channel},instId:{inst} doesn't exist. Please use the "
                               f"correct URL, channel and parameters referring to API document.")

    def endpoints(self, host: str, port: int) -> dict:
        return {"ws_urls": {"public": f"ws://{host}:{port}{WS_PATH}"}, "rest_url": f"http://{host}:{port}",
                "symbols": list(self.pairs)}

    def counters(self) -> dict:
        return {**super().counters(), "okx_spot_trades": self.tape.trades,
                "okx_spot_trades_sent": sum(self.sent.values())}

    # ---------------------------------------------------------------- market events -> frames

    def render(self, events: list, t: float, subs: Mapping[str, Any], now_ms: int) -> list[tuple[str, bytes]]:
        out: list[tuple[str, bytes]] = []
        for p in self.tape.prints(events, now_ms):
            stream = self.streams[p.symbol]
            if stream not in subs:
                continue
            self.sent[p.symbol] += 1
            v = self.insts[p.symbol]
            pair = v.family
            sz = f"{p.qty:.{v.spec.qty_decimals}f}"   # base currency: spot has no contracts
            out.append((stream, (f'{{"arg":{{"channel":"trades","instId":"{pair}"}},"data":[{{"instId":"{pair}",'
                                 f'"tradeId":"{p.trade_id}","px":"{v.px(p.price)}","sz":"{sz}",'
                                 f'"side":"{"buy" if p.buy else "sell"}","ts":"{now_ms}","count":"1","source":"0",'
                                 f'"seqId":{p.trade_id}}}]}}').encode()))
        if out or self._last_push:
            self._track_pushes(out, subs)   # the 30 s idle close, as on the swap socket
        return out

    # ---------------------------------------------------------------- REST

    def claims(self, path: str) -> bool:
        """REST requests that are spot's on the host it shares with the swaps: ``instType=SPOT`` or a spot instId."""
        parts = urlsplit(path)
        q = parse_qs(parts.query)
        return parts.path.startswith("/api/v5/") and (q.get("instType") == ["SPOT"]
                                                      or q.get("instId", [""])[0] in self.pairs)

    def rest(self, path: str) -> tuple[int, Any]:
        """Spot instruments, tickers and candles; 404 for what it does not claim or serve."""
        if not self.claims(path):
            return 404, {"code": "50000", "msg": "not an OKX spot request", "data": []}
        parts = urlsplit(path)
        route = parts.path.rstrip("/")
        q = {k: v[0] for k, v in parse_qs(parts.query).items()}
        if route == "/api/v5/market/history-candles":
            return self._spot_candles(q)
        rows = [r for r in self._rows() if q.get("instId") in (None, r[0])]
        if route == "/api/v5/public/instruments":
            return 200, _ok([self._instrument(*r[:4]) for r in rows])
        if route in ("/api/v5/market/tickers", "/api/v5/market/ticker"):
            now_ms = _now_ms()
            return 200, _ok([self._ticker(r, now_ms) for r in rows if r[3] == "live"])
        return 404, {"code": "50000", "msg": f"Path {route} not found for SPOT", "data": []}

    def _spot_candles(self, q: dict) -> tuple[int, dict]:
        """The swap route's candles of a spot pair's trades, with spot's volume columns: ``[ts, o, h, l, c, vol
        (base), volCcy (quote), volCcyQuote (quote), confirm]``."""
        v = self.pairs.get(q.get("instId", ""))
        if v is None:
            return 400, {"code": "51001", "msg": "Instrument ID does not exist", "data": []}
        status, body = self._rest_candles({**q, "instId": v.inst}, _now_ms())   # the swap's _Inst names it
        if status == 200:
            body["data"] = [[*row[:5], row[6], row[7], row[7], row[8]] for row in body["data"]]
        return status, body

    def _rows(self) -> list[tuple]:
        """(instId, base, quote, state, last, open, high, low, base volume, quote volume) of every listed pair."""
        return ([(pair, v.spec.base, v.spec.quote, "live", *self.tape.stats(v.spec.symbol))
                 for pair, v in self.pairs.items()]
                + [(inst, base, quote, state, *idle_stats(price, usd))
                   for inst, base, quote, state, price, usd in LISTING_EXTRAS])

    def _instrument(self, inst: str, base: str, quote: str, state: str) -> dict:
        v = self.pairs.get(inst)
        tick = f"{v.spec.tick:.{v.pd}f}" if v else "0.0001"
        lot = f"{v.spec.step:.{v.spec.qty_decimals}f}" if v else "0.0001"
        return {"alias": "", "baseCcy": base, "category": "1", "ctMult": "", "ctType": "", "ctVal": "",
                "ctValCcy": "", "expTime": "", "instFamily": "", "instId": inst, "instType": "SPOT", "lever": "10",
                "listTime": "1548133413000", "lotSz": lot, "maxLmtSz": "10000", "maxMktSz": "1000000",
                "minSz": lot, "optType": "", "quoteCcy": quote, "settleCcy": "", "state": state, "stk": "",
                "tickSz": tick, "uly": ""}

    def _ticker(self, row: tuple, now_ms: int) -> dict:
        inst, _, _, _, last, open_, high, low, base_vol, quote_vol = row
        v = self.pairs.get(inst)
        px = v.px if v else (lambda x: f"{x:.4f}")
        return {"instType": "SPOT", "instId": inst, "last": px(last), "lastSz": "1", "askPx": px(last), "askSz": "1",
                "bidPx": px(last), "bidSz": "1", "open24h": px(open_), "high24h": px(high), "low24h": px(low),
                "volCcy24h": f"{quote_vol:.4f}", "vol24h": f"{base_vol:.4f}", "ts": str(now_ms),
                "sodUtc0": px(open_), "sodUtc8": px(open_)}
