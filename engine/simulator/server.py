"""Venue-agnostic WebSocket + REST server core of the simulator.

One ``websockets.asyncio.server`` on one port serves every venue: the venue
object decides which paths it owns, parses sessions and client messages, formats
frames and answers REST. This core owns connection lifecycle (ping/pong via the
library's keepalive, incoming-message rate limit, maximum connection age,
slow-consumer drop), the subscription index and fan-out, counters, and the
fault API, also reachable over HTTP at ``GET /_sim/<action>?<query>``:

=================================================  ============================================================
``disconnect?venue=&mode=clean|reset``             close every connection: close frame 1001, or TCP reset
``pause`` / ``resume``                             stall every stream (the market clock stops; pings answered)
``stall?venue=&pings=1|0`` / ``unstall?venue=``    drop one venue's frames; ``pings=0`` also stops reading the
                                                   sockets, so pings go unanswered (a dead peer)
``drop|duplicate|reorder?n=&venue=&stream=``       the next ``n`` frames of a stream (or of a venue): not sent,
                                                   sent twice, or each held back behind the next matching frame
``delay?n=&venue=&stream=``                        the next ``n`` frames held back together, then sent in order
                                                   before the frame after them (a lagging stream)
``corrupt?n=&mode=truncate|garble&venue=&stream=`` the next ``n`` frames cut short or with bytes overwritten
``http_error?status=429&n=&retry_after=``          the next ``n`` REST requests answer ``status`` (429 and 418
                                                   carry ``Retry-After``; use 500/502/503 for 5xx)
``refuse?seconds=``                                refuse new connections (HTTP 503 to every handshake and REST
                                                   request) for that long
``faults``                                         the faults still pending
=================================================  ============================================================

Every fault is counted in :meth:`SimServer.counters` (``fault_*``) and the
random parts (where a frame is cut, which bytes are garbled) come from a
``random.Random(seed)``, so a run is reproducible.

A venue object (one module per venue, registered in ``runner.SIM_VENUES``) provides:

=====================================  ==================================================
``name``                               venue name (``"binance"``)
``owns(path)``                         whether a WS request path is this venue's
``open_session(path)``                 ``(category, combined, streams)``; ValueError if invalid
``accept_streams(category, names)``    the names deliverable on that category
``handle_text(client, msg, hub)``      the reply (bytes/str, or a list of them) to one client message,
                                       or ``None``; ``hub.send(client, payloads)`` sends more;
                                       ``hub.subscribe/unsubscribe(client, names)`` route streams
``envelope(stream, raw)``              wrap a raw payload for a combined connection
``endpoints(host, port)``              ``{"ws_urls": {...}, "rest_url": ..., ["symbols": [...]]}``
                                       (native symbols, when they differ from the market's)
``render(events, t, subs, now_ms)``    market events -> ``[(stream, payload), ...]``
``rest(path)``                         ``(status, body)`` for a REST path (404: not mine)
``rest_post(path, body)``              optional: the same for a POST API, served on ``post_port``
``claims(path)``                       optional: True for the REST requests that are this venue's on a host it
                                       shares (Bybit ``category=spot``): it is asked before the others
``counters()``                         optional dict merged into the simulator's counters
=====================================  ==================================================

Lifecycle: :meth:`SimServer.publish` is synchronous and writes frames straight
into each connection's transport (the library's documented ``broadcast`` path,
batched per connection), so a slow client never stalls the others; one whose
write buffer passes ``max_write_buffer`` is dropped.
"""
from __future__ import annotations

import asyncio
import collections
import http
import inspect
import json
import logging
import random
import socket
import struct
import time
from typing import Any, Iterable
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response
from websockets.protocol import State

__all__ = ["SimServer", "Client", "FrameFault"]

log = logging.getLogger("undertow.simulator")


class Client:
    """One WebSocket connection: its venue, category (path), mode and streams."""

    __slots__ = ("conn", "venue", "category", "combined", "streams", "recv_times", "opened", "age_timer")

    def __init__(self, conn: ServerConnection, venue: Any, category: str, combined: bool) -> None:
        self.conn = conn
        self.venue = venue
        self.category = category
        self.combined = combined
        self.streams: set[str] = set()
        self.recv_times: collections.deque[float] = collections.deque()
        self.opened = time.monotonic()
        self.age_timer: asyncio.TimerHandle | None = None


class FrameFault:
    """A pending fault on the next ``n`` frames of ``stream`` (or of all streams of ``venue``)."""

    __slots__ = ("action", "venue", "stream", "n", "mode", "held")
    ACTIONS = ("drop", "duplicate", "reorder", "corrupt", "delay")

    def __init__(self, action: str, n: int, venue: str | None = None, stream: str | None = None,
                 mode: str = "truncate") -> None:
        if action not in self.ACTIONS:
            raise ValueError(f"unknown frame fault {action!r}")
        if mode not in ("truncate", "garble"):
            raise ValueError(f"unknown corrupt mode {mode!r}")
        self.action, self.n, self.venue, self.stream, self.mode = action, n, venue, stream, mode
        self.held: tuple | None = None   # reorder: the frame waiting for the next one; delay: the frames held

    def matches(self, venue: str, stream: str) -> bool:
        return (self.venue is None or self.venue == venue) and (self.stream is None or self.stream == stream)

    def describe(self) -> dict:
        return {"action": self.action, "n": self.n, "venue": self.venue, "stream": self.stream, "mode": self.mode}


class SimServer:
    """Serve ``venues`` on ``host:port``; route published frames to subscribed clients."""

    def __init__(self, venues: Iterable[Any], *, host: str = "127.0.0.1", port: int = 0,
                 ping_interval_s: float = 180.0, pong_timeout_s: float = 600.0,
                 max_connection_age_s: float = 86400.0, max_messages_per_s: int = 10,
                 max_write_buffer: int = 64 << 20, seed: int = 0) -> None:
        self.venues = {v.name: v for v in venues}
        self.host, self.requested_port = host, port
        self.ping_interval_s, self.pong_timeout_s = ping_interval_s, pong_timeout_s
        self.max_connection_age_s = max_connection_age_s
        self.max_messages_per_s = max_messages_per_s
        self.max_write_buffer = max_write_buffer
        self.clients: set[Client] = set()
        self.subs: dict[str, dict[str, set[Client]]] = {name: {} for name in self.venues}
        self.running = asyncio.Event()      # cleared while paused
        self.running.set()
        self.subscribed = asyncio.Event()   # set once any client subscribed to anything
        self.extra_counters: list = []      # callables returning dicts merged into counters()
        self.rest_override = None           # callable(venue, path) -> (status, body) | None (replay)
        self._server = None
        self.port = 0
        self._post_server: asyncio.AbstractServer | None = None
        self.post_port = 0
        self.frames_by_stream: collections.Counter[str] = collections.Counter()
        self.stats = collections.Counter()
        self.rng = random.Random(seed)
        self.frame_faults: list[FrameFault] = []
        self.http_faults: collections.deque[tuple[int, float]] = collections.deque()
        self.stalled: dict[str, bool] = {}   # venue -> pings still answered
        self.refuse_until = 0.0              # time.monotonic() before which new connections are refused

    # ---------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        """Start listening; ``port`` holds the bound port afterwards."""
        self._server = await serve(
            self._handle, self.host, self.requested_port, process_request=self._process_request,
            ping_interval=self.ping_interval_s, ping_timeout=self.pong_timeout_s,
            compression=None, max_size=1 << 20, close_timeout=2.0)
        self.port = self._server.sockets[0].getsockname()[1]
        if any(hasattr(v, "rest_post") for v in self.venues.values()):
            # websockets' HTTP parser takes GET only: POST APIs (Hyperliquid /info) get a second port
            self._post_server = await asyncio.start_server(self._serve_post, self.host, 0)
            self.post_port = self._post_server.sockets[0].getsockname()[1]

    def endpoints(self, name: str) -> dict:
        """Venue ``name``'s URLs on this server (its POST API on the POST port, when it has one)."""
        v = self.venues[name]
        ep = v.endpoints(self.host, self.port)
        if hasattr(v, "rest_post") and self.post_port:
            ep = {**ep, "rest_url": f"http://{self.host}:{self.post_port}"}
        return ep

    async def _serve_post(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Minimal HTTP/1.1 for POST APIs: one request per connection, answered and closed."""
        status, body = 400, {"error": "bad request"}
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10.0)
            lines = head.decode("latin-1").split("\r\n")
            method, target, _ = lines[0].split(" ", 2)
            headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:] if ln)}
            data = await reader.readexactly(int(headers.get("content-length", "0")))
            path = urlsplit(target).path
            status, body = 404, {"error": f"no POST route {path}"}
            if method != "POST":
                status, body = 405, {"error": "POST only on this port"}
            else:
                for v in self.venues.values():
                    answer = v.rest_post(path, data) if hasattr(v, "rest_post") else None
                    if answer is not None and answer[0] != 404:
                        self.stats["rest_requests"] += 1
                        status, body = answer
                        if self.http_faults:
                            fault = self._http_fault()
                            status, body = fault.status_code, fault.body
                        break
        except (asyncio.IncompleteReadError, asyncio.TimeoutError, ValueError, asyncio.LimitOverrunError):
            pass
        data = body if isinstance(body, bytes) else json.dumps(body, separators=(",", ":")).encode()
        writer.write(f"HTTP/1.1 {status} {http.HTTPStatus(status).phrase}\r\nContent-Type: application/json\r\n"
                     f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n".encode() + data)
        try:
            await writer.drain()
            writer.close()
            await writer.wait_closed()
        except (ConnectionError, OSError):
            pass

    async def stop(self) -> None:
        """Close every connection and stop listening."""
        if self._post_server is not None:
            self._post_server.close()
            await self._post_server.wait_closed()
            self._post_server = None
        if self._server is None:
            return
        self._server.close(close_connections=True)
        await self._server.wait_closed()
        self._server = None

    # ---------------------------------------------------------------- routing

    def subscribe(self, client: Client, names: Iterable[str]) -> None:
        index = self.subs[client.venue.name]
        for n in names:
            if n not in client.streams:
                client.streams.add(n)
                index.setdefault(n, set()).add(client)
        if client.streams:
            self.subscribed.set()

    def unsubscribe(self, client: Client, names: Iterable[str]) -> None:
        index = self.subs[client.venue.name]
        for n in names:
            if n in client.streams:
                client.streams.discard(n)
                members = index.get(n)
                if members is not None:
                    members.discard(client)
                    if not members:
                        del index[n]

    def publish(self, venue: str, frames: list[tuple]) -> int:
        """Send ``(stream, raw[, wrapped])`` frames to the subscribers of each stream; return frames sent."""
        if not frames:
            return 0
        if venue in self.stalled:
            self.stats["fault_frames_stalled"] += len(frames)
            return 0
        if self.frame_faults:
            frames = self._apply_frame_faults(venue, frames)
        index = self.subs[venue]
        envelope = self.venues[venue].envelope
        batches: dict[Client, list[bytes]] = {}
        counts = self.frames_by_stream
        sent = 0
        for frame in frames:
            stream, raw = frame[0], frame[1]
            members = index.get(stream)
            if not members:
                continue
            wrapped = frame[2] if len(frame) > 2 else None
            for c in members:
                if c.combined:
                    if wrapped is None:
                        wrapped = envelope(stream, raw)
                    payload = wrapped
                else:
                    payload = raw
                batch = batches.get(c)
                if batch is None:
                    batches[c] = [payload]
                else:
                    batch.append(payload)
            counts[stream] += len(members)
            sent += len(members)
        for c, payloads in batches.items():
            self._write(c, payloads)
        self.stats["frames_sent"] += sent
        return sent

    def send(self, client: Client, payloads: list[bytes]) -> None:
        """Send ``payloads`` to one client only (per-arg acks, a snapshot for a new subscriber)."""
        self._write(client, payloads)

    def _write(self, client: Client, payloads: list[bytes]) -> None:
        conn = client.conn
        proto = conn.protocol
        if proto.state is not State.OPEN:
            return
        for p in payloads:
            proto.send_text(p)
        conn.transport.write(b"".join(proto.data_to_send()))
        if conn.transport.get_write_buffer_size() > self.max_write_buffer:
            self.stats["slow_consumer_drops"] += 1
            log.warning("dropping slow consumer %s", conn.remote_address)
            conn.transport.abort()

    def write_buffered(self) -> int:
        """Return the largest write buffer among connected clients (bytes)."""
        return max((c.conn.transport.get_write_buffer_size() for c in self.clients), default=0)

    # ---------------------------------------------------------------- faults

    async def disconnect(self, venue: str | None = None, *, abrupt: bool = False) -> int:
        """Close every connection (of ``venue``): clean close 1001, or abrupt TCP reset; return count."""
        victims = [c for c in self.clients if venue is None or c.venue.name == venue]
        for c in victims:
            if abrupt:
                self._reset(c.conn)
            else:
                await c.conn.close(1001, "simulator: forced disconnect")
        self.stats["forced_disconnects"] += len(victims)
        return len(victims)

    def _apply_frame_faults(self, venue: str, frames: list[tuple]) -> list[tuple]:
        out: list[tuple] = []
        for frame in frames:
            fault = next((f for f in self.frame_faults if (f.n > 0 or f.held) and f.matches(venue, frame[0])), None)
            if fault is None:
                out.append(frame)
                continue
            action = fault.action
            if action == "delay":
                if fault.n > 0:
                    fault.held = (*(fault.held or ()), frame)
                    fault.n -= 1
                else:
                    out.extend(fault.held)
                    out.append(frame)
                    self.stats["fault_delayed"] += len(fault.held)
                    fault.held = None
                continue
            if action == "reorder":
                if fault.held is None:
                    fault.held = frame
                    continue
                out.append(frame)
                out.append(fault.held)
                fault.held = None
                self.stats["fault_reordered"] += 1
            elif action == "drop":
                self.stats["fault_dropped"] += 1
            elif action == "duplicate":
                out.append(frame)
                out.append(frame)
                self.stats["fault_duplicated"] += 1
            else:
                out.append((frame[0], self._corrupt(frame[1], fault.mode)))   # a wrapped copy would stay intact
                self.stats["fault_corrupted"] += 1
            fault.n -= 1
        self.frame_faults = [f for f in self.frame_faults if f.n > 0 or f.held is not None]
        return out

    def _corrupt(self, raw: bytes, mode: str) -> bytes:
        if len(raw) < 2:
            return b"{"
        if mode == "truncate":
            return raw[:self.rng.randrange(1, len(raw))]
        data = bytearray(raw)
        for _ in range(max(1, len(data) // 16)):
            data[self.rng.randrange(len(data))] = self.rng.choice(b'{}[]",:x\\')
        return bytes(data)

    def inject(self, action: str, n: int = 1, *, venue: str | None = None, stream: str | None = None,
               mode: str = "truncate") -> FrameFault:
        """Drop / duplicate / reorder / corrupt the next ``n`` frames of ``stream`` (or of ``venue``, or all)."""
        fault = FrameFault(action, int(n), venue, stream, mode)
        self.frame_faults.append(fault)
        self.stats[f"fault_{action}_injected"] += 1
        return fault

    def stall(self, venue: str | None = None, *, pings: bool = True) -> None:
        """Stop ``venue``'s frames (every venue if None); ``pings=False`` also stops answering pings."""
        for name in ([venue] if venue else list(self.venues)):
            self.stalled[name] = pings
            if not pings:
                for c in self.clients:
                    if c.venue.name == name:
                        c.conn.transport.pause_reading()
        self.stats["fault_stalls"] += 1

    def unstall(self, venue: str | None = None) -> None:
        """Undo :meth:`stall` (of ``venue``, or of every venue)."""
        for name in ([venue] if venue else list(self.stalled)):
            if self.stalled.pop(name, True) is False:
                for c in self.clients:
                    if c.venue.name == name and not c.conn.transport.is_closing():
                        c.conn.transport.resume_reading()

    def http_error(self, status: int = 429, n: int = 1, retry_after: float = 1.0) -> None:
        """Answer the next ``n`` REST requests with ``status`` (429/418 with ``Retry-After``)."""
        if not 400 <= status <= 599:
            raise ValueError(f"status must be 4xx or 5xx, got {status}")
        self.http_faults.extend([(int(status), float(retry_after))] * int(n))

    def refuse(self, seconds: float) -> None:
        """Refuse new connections and REST requests for ``seconds``."""
        self.refuse_until = time.monotonic() + float(seconds)

    def faults(self) -> dict:
        """The faults still pending."""
        return {"frames": [f.describe() for f in self.frame_faults], "http": len(self.http_faults),
                "stalled": sorted(self.stalled), "refusing_s": max(0.0, self.refuse_until - time.monotonic())}

    @staticmethod
    def _reset(conn: ServerConnection) -> None:
        sock = conn.transport.get_extra_info("socket")
        if sock is not None:  # linger 0: close() sends RST instead of FIN
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.transport.abort()

    def pause(self) -> None:
        """Stall every stream (connections stay open, pings still answered)."""
        self.running.clear()

    def resume(self) -> None:
        self.running.set()

    def counters(self) -> dict:
        """Return a snapshot of the server's counters."""
        out = dict.fromkeys(("frames_sent", "connections_opened", "connections_closed", "forced_disconnects",
                             "rate_limit_disconnects", "pong_timeouts", "slow_consumer_drops", "rest_requests",
                             "fault_dropped", "fault_duplicated", "fault_reordered", "fault_corrupted",
                             "fault_frames_stalled", "fault_stalls", "fault_http_errors", "fault_refused"), 0)
        out.update(self.stats)
        out.update(connections=len(self.clients), paused=not self.running.is_set(),
                   frames_by_stream=dict(self.frames_by_stream))
        for extra in self.extra_counters:
            out.update(extra())
        return out

    # ---------------------------------------------------------------- HTTP

    async def _process_request(self, conn: ServerConnection, request: Request) -> Response | None:
        path = request.path
        route = urlsplit(path).path
        if route.startswith("/_sim/"):
            return await self._control(route[len("/_sim/"):], path)
        if self.refuse_until and time.monotonic() < self.refuse_until:
            self.stats["fault_refused"] += 1
            return _json(503, {"code": -1, "msg": "simulator: refusing connections"})
        venue = self._venue_for(path)
        upgrade = "websocket" in request.headers.get("Upgrade", "").lower()
        if upgrade:
            return None if venue is not None else _json(404, {"code": -1, "msg": f"no stream path {route}"})
        for v in self._rest_order(path):
            answer = self.rest_override(v, path) if self.rest_override else None
            if answer is None and hasattr(v, "rest"):
                # header-aware venues (Gate's X-Gate-Size-Decimal) get the request's headers
                answer = (v.rest(path, request.headers) if "headers" in inspect.signature(v.rest).parameters
                          else v.rest(path))
            if answer is not None and answer[0] != 404:
                self.stats["rest_requests"] += 1
                if self.http_faults:
                    return self._http_fault()
                return _json(*answer)
        return _json(404, {"code": -5000, "msg": f"Path {route}, Method GET is invalid"})

    def _http_fault(self) -> Response:
        status, retry_after = self.http_faults.popleft()
        self.stats["fault_http_errors"] += 1
        self.stats[f"fault_http_{status}"] += 1
        resp = _json(status, {"code": -1003 if status in (418, 429) else -1000, "msg": f"simulator: HTTP {status}"})
        if status in (418, 429):
            resp.headers["Retry-After"] = f"{retry_after:g}"
        return resp

    async def _control(self, action: str, path: str) -> Response:
        query = {k: v[0] for k, v in parse_qs(urlsplit(path).query).items()}
        if action == "counters":
            return _json(200, self.counters())
        if action == "disconnect":
            n = await self.disconnect(query.get("venue"), abrupt=query.get("mode") == "reset")
            return _json(200, {"disconnected": n})
        if action == "pause":
            self.pause()
            return _json(200, {"paused": True})
        if action == "resume":
            self.resume()
            return _json(200, {"paused": False})
        try:
            return _json(200, self._fault_action(action, query))
        except KeyError:
            pass
        except ValueError as exc:
            return _json(400, {"error": str(exc)})
        hook = getattr(self, "control_" + action, None)  # extra actions installed by the Simulator
        if hook is not None:
            return _json(200, hook(query))
        return _json(404, {"error": f"unknown control action {action!r}"})

    def _fault_action(self, action: str, q: dict) -> dict:
        """Run one fault action of the HTTP API; KeyError if ``action`` is not one."""
        venue, stream = q.get("venue"), q.get("stream")
        if venue is not None and venue not in self.venues:
            raise ValueError(f"unknown venue {venue!r}")
        if action in FrameFault.ACTIONS:
            f = self.inject(action, int(q.get("n", "1")), venue=venue, stream=stream, mode=q.get("mode", "truncate"))
            return {"injected": f.describe()}
        if action == "stall":
            self.stall(venue, pings=q.get("pings", "1") != "0")
            return {"stalled": sorted(self.stalled)}
        if action == "unstall":
            self.unstall(venue)
            return {"stalled": sorted(self.stalled)}
        if action == "http_error":
            self.http_error(int(q.get("status", "429")), int(q.get("n", "1")), float(q.get("retry_after", "1")))
            return {"http": len(self.http_faults)}
        if action == "refuse":
            self.refuse(float(q.get("seconds", "1")))
            return self.faults()
        if action == "faults":
            return self.faults()
        raise KeyError(action)

    def _rest_order(self, path: str) -> list:
        """The venues in the order they are asked for a REST ``path``: those that claim it first."""
        venues = list(self.venues.values())
        first = [v for v in venues if hasattr(v, "claims") and v.claims(path)]
        return first + [v for v in venues if v not in first] if first else venues

    def _venue_for(self, path: str) -> Any:
        return next((v for v in self.venues.values() if v.owns(path)), None)

    # ---------------------------------------------------------------- connections

    async def _handle(self, conn: ServerConnection) -> None:
        venue = self._venue_for(conn.request.path)
        try:
            category, combined, names = venue.open_session(conn.request.path)
        except ValueError:
            await conn.close(1008, "invalid path")
            return
        client = Client(conn, venue, category, combined)
        self.clients.add(client)
        self.stats["connections_opened"] += 1
        self.subscribe(client, venue.accept_streams(category, names))
        loop = asyncio.get_running_loop()
        client.age_timer = loop.call_later(
            self.max_connection_age_s, lambda: loop.create_task(conn.close(1000, "connection age limit")))
        try:
            async for message in conn:
                if self._over_limit(client):
                    self.stats["rate_limit_disconnects"] += 1
                    await conn.close(1008, "Too many messages")
                    break
                reply = venue.handle_text(client, message, self)
                if reply is not None:
                    replies = reply if isinstance(reply, list) else [reply]
                    self._write(client, [r if isinstance(r, bytes) else r.encode() for r in replies])
        except Exception:  # a dropped socket ends the loop with ConnectionClosed
            pass
        finally:
            client.age_timer.cancel()
            self.unsubscribe(client, list(client.streams))
            self.clients.discard(client)
            close_sent = conn.protocol.close_sent
            if close_sent is not None and close_sent.code == 1011:  # the library's keepalive timeout
                self.stats["pong_timeouts"] += 1
            self.stats["connections_closed"] += 1

    def _over_limit(self, client: Client) -> bool:
        now = time.monotonic()
        times = client.recv_times
        times.append(now)
        while times and times[0] <= now - 1.0:
            times.popleft()
        return len(times) > self.max_messages_per_s


def _json(status: int, body: Any) -> Response:
    data = body if isinstance(body, bytes) else json.dumps(body, separators=(",", ":")).encode()
    headers = Headers([("Content-Type", "application/json"), ("Content-Length", str(len(data))),
                       ("Connection", "close")])
    return Response(status, http.HTTPStatus(status).phrase, headers, data)
