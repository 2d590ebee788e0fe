"""The delivery worker: drains the outbox in a background thread (asyncio), one lane per chat or URL.

Each lane sends its rows in order (a live message's send before its edits)
and waits, before every request, for the latest of: the row's
``not_before`` (back-off), the lane's flood pause (429 ``retry_after``), the
global flood pause, and the per-chat and global rate limits. A 429 pauses
its chat; when a second chat gets a 429 while another chat's pause is still
running, the limit is evidently the bot's, so every chat is paused. A row
that stays undeliverable for ``max_age_s`` expires (counted, never silent).
Flood pauses run on the monotonic clock and are stored with the re-queued
row, so a restarted worker waits out the pauses it was told about
(:mod:`.pauses`).
"""
from __future__ import annotations

import asyncio
import logging
import random
import threading
import time
from collections import deque
from dataclasses import dataclass, field

from .formats import html_to_plain
from .outbox import Outbox, Row
from .pauses import GLOBAL, FloodPauses
from .tgclient import Outcome, redact

__all__ = ["Delivery", "DeliverySettings", "RateLimiter"]

log = logging.getLogger("undertow.alerts")


@dataclass(frozen=True)
class DeliverySettings:
    per_chat_per_s: float = 1.0        # Telegram: about one message a second per chat
    group_per_min: float = 20.0        # Telegram: 20 a minute in a group
    global_per_s: float = 30.0         # Telegram: about 30 a second overall
    retry_initial_s: float = 1.0
    retry_max_s: float = 60.0
    max_age_s: float = 3600.0


class RateLimiter:
    """Sliding-window limits: at most ``n`` requests per ``window_s`` per key."""

    def __init__(self):
        self._hits: dict[object, deque] = {}

    def next_slot(self, key: object, n: float, window_s: float, now: float) -> float:
        """Earliest time a request for ``key`` may go (``now`` if it may go now)."""
        if n <= 0:
            return now
        q = self._hits.setdefault(key, deque())
        while q and now - q[0] >= window_s:
            q.popleft()
        return now if len(q) < n else q[0] + window_s

    def take(self, key: object, now: float) -> None:
        self._hits.setdefault(key, deque()).append(now)


@dataclass
class DeliveryStats:
    sent: int = 0
    edits: int = 0
    retries: int = 0
    flood_waits: int = 0
    global_pauses: int = 0
    pauses_resumed: int = 0            # flood pauses still running when a restarted worker read them back
    failed: int = 0
    expired: int = 0
    unknown_outcomes: int = 0
    plain_fallbacks: int = 0
    migrated: int = 0
    latencies_s: deque = field(default_factory=lambda: deque(maxlen=10000))  # enqueue -> delivered

    def as_counters(self) -> dict[str, float]:
        return {f"delivery_{k}": v for k, v in self.__dict__.items() if isinstance(v, int)}


class Delivery:
    """Send what the outbox holds through ``senders`` (sink name -> sender with ``async send(row, mid)``)."""

    def __init__(self, path, senders: dict, settings: DeliverySettings = DeliverySettings(), clock=time.time,
                 mono=time.monotonic):
        self.path = path
        self.senders = senders
        self.s = settings
        self.clock = clock
        self.stats = DeliveryStats()
        self.rates = RateLimiter()
        self.pauses = FloodPauses(clock, mono)
        self.recovered = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._ready = threading.Event()
        self._lanes: dict[tuple[str, str], asyncio.Task] = {}
        self.ob: Outbox | None = None

    # -- thread control ----------------------------------------------------
    def start(self) -> "Delivery":
        self._thread = threading.Thread(target=self._run_thread, name="alert-delivery", daemon=True)
        self._thread.start()
        self._ready.wait(10)
        return self

    def wake(self) -> None:
        """New rows are in the outbox."""
        if self._loop is not None and self._wake is not None:
            self._loop.call_soon_threadsafe(self._wake.set)

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping = True
        self.wake()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run_thread(self) -> None:
        try:
            asyncio.run(self._main())
        except Exception:
            log.exception("alert delivery stopped")

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self.ob = Outbox(self.path, clock=self.clock)
        self.recovered = self.ob.recover()
        self.stats.pauses_resumed = self.pauses.load(self.ob.pauses())
        self.stats.unknown_outcomes += self.recovered
        if self.recovered:
            log.warning("%d alerts were in flight when the actor stopped; re-sending them (may duplicate)",
                        self.recovered)
        self._ready.set()
        try:
            while not self._stopping:
                for lane in self.ob.lanes():
                    task = self._lanes.get(lane)
                    if (task is None or task.done()) and lane[0] in self.senders:
                        self._lanes[lane] = asyncio.create_task(self._lane(*lane))
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), 0.25)
                except asyncio.TimeoutError:
                    pass
        finally:
            lanes = [t for t in self._lanes.values() if not t.done()]
            if lanes:  # let sends in flight finish (an interrupted one would count as unknown outcome)
                _, pending = await asyncio.wait(lanes, timeout=2.0)
                for t in pending:
                    t.cancel()
                await asyncio.gather(*pending, return_exceptions=True)
            for sender in self.senders.values():
                await sender.close()
            self.ob.close()

    # -- one lane ------------------------------------------------------------
    def _ready_at(self, row: Row, now: float) -> float:
        t = max(row.not_before, now + self.pauses.left(row.target))
        if row.sink != "telegram":
            return t
        t = max(t, now + self.pauses.left(GLOBAL),
                self.rates.next_slot(("chat", row.target), self.s.per_chat_per_s, 1.0, now),
                self.rates.next_slot("global", self.s.global_per_s, 1.0, now))
        if row.target.startswith("-"):  # groups and channels
            t = max(t, self.rates.next_slot(("group", row.target), self.s.group_per_min, 60.0, now))
        return t

    def _take_rate(self, row: Row, now: float) -> None:
        if row.sink == "telegram":
            self.rates.take(("chat", row.target), now)
            self.rates.take("global", now)
            if row.target.startswith("-"):
                self.rates.take(("group", row.target), now)

    def _backoff(self, attempts: int) -> float:
        d = min(self.s.retry_max_s, self.s.retry_initial_s * 2 ** max(0, attempts - 1))
        return d * random.uniform(0.8, 1.2)

    async def _lane(self, sink: str, target: str) -> None:
        sender = self.senders[sink]
        ob = self.ob
        while not self._stopping:
            row = ob.next_row(sink, target)
            if row is None:
                return
            now = self.clock()
            if now - row.created > self.s.max_age_s:
                ob.fail(row.id, "expired: undeliverable for max_age_s", state="expired")
                self.stats.expired += 1
                log.error("alert %d to %s/%s expired after %.0f s undelivered", row.id, sink, target, now - row.created)
                continue
            wait = self._ready_at(row, now) - now
            if wait > 0:
                await asyncio.sleep(min(wait, 0.5))
                continue
            message_id = None
            if row.op == "edit":
                message_id = ob.live_message(row.live_key, target)
                if message_id is None:
                    # the send that creates it failed for good (or never existed): nothing to edit
                    ob.fail(row.id, f"no live message ({ob.live_send_state(row.live_key, target)})")
                    self.stats.failed += 1
                    continue
            self._take_rate(row, now)
            ob.mark_inflight(row.id)
            out = await sender.send(row, message_id)
            self._handle(row, out)
            if out.status == "migrated":
                return  # the rows moved to another lane

    def _handle(self, row: Row, out: Outcome) -> None:
        ob, now = self.ob, self.clock()
        if out.status == "ok":
            ob.mark_sent(row, out.message_id)
            if row.op == "edit":
                self.stats.edits += 1
            else:
                self.stats.sent += 1
            self.stats.latencies_s.append(now - row.created)
        elif out.status == "flood":
            self.stats.flood_waits += 1
            wait = max(out.retry_after, 0.0)
            bot_wide = row.sink == "telegram" and self.pauses.others_paused(row.target)
            stored = {target: p for target in ((row.target, GLOBAL) if bot_wide else (row.target,))
                      if (p := self.pauses.pause(target, wait)) is not None}
            if bot_wide:
                self.stats.global_pauses += 1
            # the pause (monotonic clock) holds the row back, not a wall-clock not_before
            ob.retry(row.id, now, out.error, pauses=stored)
            log.warning("%s %s: flood control, retry after %.1f s", row.sink, row.target, out.retry_after)
        elif out.status in ("retry", "unknown"):
            unknown = out.status == "unknown" and row.op == "send"
            self.stats.retries += 1
            self.stats.unknown_outcomes += int(unknown)
            ob.retry(row.id, now + self._backoff(row.attempts + 1), out.error, unknown=unknown)
            log.warning("%s %s: %s; retrying", row.sink, row.target, redact(out.error))
        elif out.status == "bad_markup" and row.parse_mode:
            self.stats.plain_fallbacks += 1
            ob.to_plain(row, html_to_plain(row.body))
            log.warning("%s %s: markup rejected (%s); sending as plain text", row.sink, row.target, out.error)
        elif out.status == "migrated" and out.new_target:
            self.stats.migrated += 1
            ob.retry(row.id, now, out.error)
            moved = ob.migrate(row.target, out.new_target)
            log.warning("chat %s migrated to %s; %d pending alerts moved", row.target, out.new_target, moved)
        elif out.status == "gone" and row.op == "edit":
            ob.resend_live(row)  # the live message was deleted: post a new one
        else:
            self.stats.failed += 1
            ob.fail(row.id, out.error)
            log.error("%s %s: permanent failure, alert %d dropped: %s", row.sink, row.target, row.id, out.error)
