"""Signal -> alerts: the alert actor's logic, without the bus (unit-testable).

For each signal: the console line (the demo's look) and the webhook post
follow the duplicate-suppression decision (:class:`engine.alerting.Dedup`);
Telegram gets one live message per cascade (:mod:`.cascade_live`),
standalone alerts for the other kinds, each admitted per chat by tier,
budget and quiet hours (:mod:`.policy`), and everything is written to the
outbox (:mod:`.outbox`) for the delivery worker. Each alert decided is also
handed to ``on_alert`` as an :class:`.bus_sink.Alert` (the ZeroMQ sink).

With an outbox, the policy state (budgets, digest queue, cooldown keys) and
the live cascade messages' state are kept in it too (:mod:`.memory`,
:mod:`.live_memory`) and written in the same transaction as the rows of the
signals that changed them.

Commit rule: :meth:`AlertRouter.handle_burst` routes the signals the actor
drained from the bus in one go and commits their rows and every state they
changed in ONE transaction (:meth:`AlertRouter.handle` is a burst of one). A
SIGKILL loses at most the burst being routed (drained, not yet committed: a
few milliseconds), and that burst had no external effect yet: the delivery
worker reads the outbox on its own connection, so it sees (and sends) only
committed rows, and the alerts for the ZeroMQ sink are held until the burst's
last write and published right before its COMMIT (a sink that raises rolls
the burst back), so only a kill during that COMMIT itself can leave a
published alert without its rows. Console lines are printed as the signals
are routed.
"""
from __future__ import annotations

import contextlib
import logging
import sys
import time
from typing import Callable

import msgspec

from ..alerting import Dedup, format_console
from ..signals import Cascade, Heartbeat, Liquidation, SignalBase
from . import formats as F
from .bus_sink import Alert
from .cascade_live import Action, CascadeState, CascadeTracker
from .live_memory import LiveMemory
from .memory import DurableDedup, PolicyMemory
from .outbox import Outbox
from .policy import ChatGate, QuietHours, tier_for

__all__ = ["AlertRouter", "RouterStats"]

log = logging.getLogger("undertow.alerts")


class RouterStats(msgspec.Struct):
    received: int = 0
    bursts: int = 0                 # transactions of handle_burst (signals drained from the bus together)
    burst_max: int = 0              # most signals in one burst
    console_lines: int = 0
    telegram_messages: int = 0      # rows enqueued (parts of split messages counted separately)
    telegram_edits: int = 0
    webhook_posts: int = 0
    held_for_digest: int = 0
    folded_into_cascade: int = 0    # liquidation alerts shown in a live cascade message instead
    muted: int = 0                  # chat deliveries skipped by the chat's preferences (/mute, /snooze, ...)
    bus_alerts: int = 0             # alerts handed to the ZeroMQ sink


def _sub_key(sig: SignalBase) -> str:
    if isinstance(sig, Cascade):
        return sig.level
    if isinstance(sig, Liquidation):
        return sig.size_class
    return ""


class AlertRouter:
    """Turn signals into console lines and outbox rows; call :meth:`tick` often (deferred edits, digests)."""

    def __init__(self, alerts_cfg, outbox: Outbox | None = None, chat_ids: list[int] | None = None,
                 webhook_url: str | None = None, console_out=None, clock: Callable[[], float] = time.time,
                 on_enqueue: Callable[[], None] | None = None,
                 allows: Callable[[int, str, str], bool] | None = None,
                 on_alert: Callable[[Alert], None] | None = None):
        a = alerts_cfg
        self.allows = allows   # per-chat preferences (/alerts stop, /mute, /snooze, /subscribe): chat, kind, asset
        self.a = a
        self.outbox = outbox
        self.chats = list(chat_ids or []) if outbox is not None else []
        self.webhook_url = webhook_url if outbox is not None else None
        self.console_out = console_out if console_out is not None else sys.stdout
        self.clock = clock
        self.on_enqueue = on_enqueue or (lambda: None)
        self.on_alert = on_alert
        self.kinds = set(a.kinds)
        self.memory = PolicyMemory(outbox) if outbox is not None else None
        self.dedup: Dedup = DurableDedup(a.cooldown_s, a.extend_factor, kinds=a.kinds,
                                         extend_price_pct=a.extend_price_pct, memory=self.memory)
        self.tracker = CascadeTracker(a.market_wide_assets, a.rearm_s, a.telegram.edit_interval_s, a.buildup_s)
        self.live = LiveMemory(outbox) if outbox is not None else None
        self.cascades_resumed = self.live.load(self.tracker, clock()) if self.live is not None else 0
        quiet = QuietHours(a.quiet_hours.start, a.quiet_hours.end) if a.quiet_hours.enabled else None
        self.gate = ChatGate(a.max_per_hour, quiet, a.digest_interval_s, memory=self.memory, now=clock())
        self.stats = RouterStats()
        self._unpublished: list[Alert] = []   # alerts for on_alert, held until their transaction commits

    @property
    def telegram(self) -> bool:
        return bool(self.chats)

    @property
    def rendered(self) -> bool:
        """Whether alerts are rendered at all (Telegram chats, or the bus sink): the live-cascade path runs."""
        return self.telegram or self.on_alert is not None

    @contextlib.contextmanager
    def _transaction(self):
        """One outbox transaction; the alerts decided inside go to ``on_alert`` after its last write, right
        before its commit (a sink that raises rolls it back; one that raised earlier published nothing)."""
        try:
            with self.outbox.batch() if self.outbox is not None else contextlib.nullcontext():
                yield
                for alert in self._unpublished:
                    self.on_alert(alert)
        finally:
            self._unpublished.clear()

    # -- entry points --------------------------------------------------------
    def handle(self, sig: SignalBase, now: float | None = None) -> None:
        """Route one signal from the bus (its own transaction)."""
        self.handle_burst((sig,), now)

    def handle_burst(self, sigs, now: float | None = None) -> None:
        """Route signals drained from the bus together, in order; their rows and the state they changed are
        committed in one transaction (see the module docstring). ``now``: for every signal (else the clock
        at each)."""
        sigs = [s for s in sigs if not isinstance(s, Heartbeat)]
        if not sigs:
            return
        with self._transaction():
            for sig in sigs:
                self._handle(sig, self.clock() if now is None else now)
            self._save_live()
        self.stats.bursts += 1
        self.stats.burst_max = max(self.stats.burst_max, len(sigs))
        self.on_enqueue()

    def _handle(self, sig: SignalBase, now: float) -> None:
        self.stats.received += 1
        if isinstance(sig, Liquidation) and self.rendered:
            self.tracker.on_liquidation(sig)
        decision = self.dedup.decide(sig, now)
        if decision.send:
            if self.a.console.enabled:
                print(format_console(sig, decision), file=self.console_out, flush=True)
                self.stats.console_lines += 1
            if self.webhook_url:
                self._enqueue("webhook", self.webhook_url, msgspec.json.encode(msgspec.to_builtins(sig)).decode(),
                              parse_mode=None)
                self.stats.webhook_posts += 1
        if not self.rendered:
            return
        kind = F.kind_of(sig)
        if isinstance(sig, Cascade):
            if kind in self.kinds:
                self._apply(self.tracker.on_cascade(sig, now), now)
        elif decision.send:
            if isinstance(sig, Liquidation) and self.tracker.in_cascade(sig.asset) \
                    and tier_for(self.a.tiers, kind, sig.size_class) != "urgent":
                self.stats.folded_into_cascade += 1   # the live message already counts it
            else:
                html = F.render_signal(sig, decision.suppressed_before)
                tier = tier_for(self.a.tiers, kind, _sub_key(sig))
                got, held = self._broadcast(html, tier, now, kind=kind, asset=sig.asset)
                self._publish("new", kind, tier, html, sig, got, held, reason=decision.reason)

    def tick(self, now: float | None = None) -> None:
        """Deferred live-message edits and due digests."""
        if not self.rendered:
            return
        now = self.clock() if now is None else now
        with self._transaction():
            actions = self.tracker.due(now)
            self._apply(actions, now)
            self._save_live()
            digests = self.gate.due_digests(now) if self.telegram else []
            for chat, lines, since in digests:
                html = F.render_digest(lines, int(since * 1e9))
                for part in F.split_html(html):
                    self._enqueue("telegram", chat, part)
                    self.stats.telegram_messages += 1
                self._publish("digest", "digest", "digest", html, None, {chat}, set(), reason=f"{len(lines)} held")
        if actions or digests:
            self.on_enqueue()

    def startup_notice(self, venues: list[str], gap_s: float, now: float | None = None) -> bool:
        """One notice to every allowed chat, unless one went out less than ``gap_s`` ago (an actor restart)."""
        now = self.clock() if now is None else now
        if not self.telegram or now - self.outbox.meta("startup_notice_at", -1e18) < gap_s:
            return False
        text = F.render_startup(venues, sorted(self.kinds), self.a.market_wide_assets)
        with self._transaction():
            self.outbox.begin_write()
            for chat in self.chats:
                self._enqueue("telegram", chat, text)
                self.stats.telegram_messages += 1
            self.outbox.set_meta("startup_notice_at", now)
        self.on_enqueue()
        return True

    # -- internals -----------------------------------------------------------
    def _save_live(self) -> None:
        """Store the cascade states and build-up this burst or tick changed, with its rows (nothing kept without
        an outbox)."""
        if self.live is not None:
            self.live.save(self.tracker)
        else:
            self.tracker.take_changed()

    def _enqueue(self, sink: str, target, body: str, op: str = "send", live_key: str | None = None,
                 parse_mode: str | None = "HTML") -> None:
        self.outbox.enqueue(sink, target, body, op=op, live_key=live_key, parse_mode=parse_mode)

    def _publish(self, action: str, source: str, tier: str, html: str, sig: SignalBase | None, chats: set[int],
                 held: set[int], reason: str = "", live_key: str = "", asset: str | None = None) -> None:
        if self.on_alert is None:
            return
        self._unpublished.append(Alert(
            asset=asset or (sig.asset if sig is not None else "*"), venue=getattr(sig, "venue", ""),
            symbol=getattr(sig, "symbol", ""), ts_exchange=getattr(sig, "ts_exchange", 0),
            ts_recv=getattr(sig, "ts_recv", 0), action=action, source=source, tier=tier, text=F.html_to_plain(html),
            html=html, live_key=live_key, reason=reason, chats=sorted(chats), held=sorted(held)))
        self.stats.bus_alerts += 1

    def _broadcast(self, html: str, tier: str, now: float, live_key: str | None = None, kind: str = "",
                   asset: str = "*") -> tuple[set[int], set[int]]:
        """Send ``html`` to every chat that admits ``tier`` now; hold a one-line version for the others.

        Returns the chats sent to and the chats holding it. A chat whose preferences exclude
        ``kind``/``asset`` (muted, snoozed, alerts stopped, not subscribed) gets nothing, counted in
        ``stats.muted``."""
        parts = F.split_html(html)
        got, held = set(), set()
        for chat in self.chats:
            if self.allows is not None and not self.allows(chat, kind, asset):
                self.stats.muted += 1
                continue
            if not self.gate.admit(chat, tier, now):
                self.gate.hold(chat, html.split("\n", 1)[0], now)
                self.stats.held_for_digest += 1
                held.add(chat)
                continue
            for i, part in enumerate(parts):
                self._enqueue("telegram", chat, part, live_key=live_key if i == 0 else None)
                self.stats.telegram_messages += 1
            got.add(chat)
        return got, held

    def _edit(self, chats: set[int], key: str, html: str) -> None:
        text = F.split_html(html)[0]  # a live message is one message; renderers keep it well under the limit
        for chat in chats:
            self._enqueue("telegram", chat, text, op="edit", live_key=key)
            self.stats.telegram_edits += 1

    def _apply(self, actions: list[Action], now: float) -> None:
        for act in actions:
            st: CascadeState | None = act.state
            m = act.market
            cascade_tier = tier_for(self.a.tiers, "cascade", st.last.level) if st is not None else ""
            if act.kind == "start":
                html = F.render_cascade_live(st)
                got, held = self._broadcast(html, cascade_tier, now, live_key=st.key, kind="cascade",
                                            asset=st.last.asset)
                st.chats |= got
                self._publish("new", "cascade", cascade_tier, html, st.last, got, held, "cascade started", st.key)
            elif act.kind in ("edit", "end"):
                html = F.render_cascade_live(st) if act.kind == "edit" else F.render_cascade_summary(st)
                if act.kind == "edit" and st.folded:
                    html += "\n➡️ <i>continues in the market-wide report</i>"
                self._edit(st.chats, st.key, html)
                self._publish("update" if act.kind == "edit" else "end", "cascade", cascade_tier, html, st.last,
                              st.chats, set(), f"cascade {act.kind}", st.key)
            elif act.kind == "escalate":
                html = F.render_escalation(st)
                got, held = self._broadcast(html, cascade_tier, now, kind="cascade", asset=st.last.asset)
                self._publish("new", "cascade", cascade_tier, html, st.last, got, held, "level rose")
            elif act.kind == "market_start":
                html, tier = F.render_market_report(m.members.values()), tier_for(self.a.tiers, "market")
                got, held = self._broadcast(html, tier, now, live_key=m.key, kind="cascade")
                m.chats |= got
                self._publish("new", "market", tier, html, None, got, held, "market-wide cascade", m.key)
            elif act.kind in ("market_edit", "market_end"):
                html = F.render_market_report(m.members.values(), active=act.kind == "market_edit")
                self._edit(m.chats, m.key, html)
                self._publish("update" if act.kind == "market_edit" else "end", "market",
                              tier_for(self.a.tiers, "market"), html, None, m.chats, set(), act.kind.replace("_", " "),
                              m.key)
