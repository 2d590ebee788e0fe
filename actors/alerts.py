"""The alert actor: subscribe to the bus and deliver alerts to the console, Telegram, a webhook and ZeroMQ.

The routing rules live in :mod:`engine.alerts.router`; Telegram and webhook
alerts go through the durable outbox (:mod:`engine.alerts.outbox`) and are
sent by the delivery worker thread (:mod:`engine.alerts.delivery`), so a
killed actor delivers what it had pending when it comes back. The policy
state (budgets, digest queue, cooldowns), the live cascade messages' state
and Telegram flood pauses live in the same file (:mod:`engine.alerts.memory`,
:mod:`engine.alerts.live_memory`, :mod:`engine.alerts.pauses`), so a restarted
actor edits the live message of a cascade still running and waits out a
``retry_after`` it was given before it was killed. The ZeroMQ sink
(:mod:`engine.alerts.bus_sink`) republishes each alert decided as an
``alert`` signal.

Each loop iteration waits for one signal, then drains what the bus already
holds behind it (non-blocking receives, at most :data:`BURST_MAX` signals or
:data:`BURST_S` seconds) and routes the burst in one transaction
(:meth:`engine.alerts.router.AlertRouter.handle_burst`): a cascade of
thousands of liquidations a second costs one commit per burst, not one per
liquidation, and a SIGKILL loses at most the burst being routed, before any
of it was sent anywhere. An exception while routing rolls its burst back and
ends the actor (the supervisor restarts it from the committed state), as a
kill would.
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from engine.alerts.bus_sink import AlertBus
from engine.alerts.delivery import Delivery, DeliverySettings
from engine.alerts.outbox import Outbox, outbox_path
from engine.alerts.router import AlertRouter
from engine.alerts.sinks import TelegramSender, WebhookSender
from engine.alerts.tgclient import token_from_env
from engine.bot.prefs import PrefsView, prefs_path
from engine.bus import Subscriber
from engine.security import curve_server_for
from engine.supervisor import bus_endpoint_file, enabled_venues

from .base import Actor

__all__ = ["AlertsActor", "BURST_MAX", "BURST_S", "bus_endpoint", "drain", "state_dir"]

BURST_MAX = 256      # signals routed in one transaction, at most
BURST_S = 0.005      # time spent draining the bus for one burst, at most


def bus_endpoint(cfg) -> str:
    """Where to subscribe: ``$UNDERTOW_BUS``, else the running daemon's bus file, else ``[bus].endpoint``."""
    if os.environ.get("UNDERTOW_BUS"):
        return os.environ["UNDERTOW_BUS"]
    f = bus_endpoint_file(cfg.engine.run_dir)
    try:
        return json.loads(f.read_text())["endpoint"]
    except (OSError, ValueError, KeyError):
        return cfg.bus.endpoint


def drain(sub: Subscriber, first, max_n: int = BURST_MAX, budget_s: float = BURST_S) -> list:
    """``first`` and the signals ``sub`` already holds behind it: up to ``max_n`` in all, receiving for at
    most ``budget_s`` (never waiting for one to arrive)."""
    sigs = [first]
    deadline = time.monotonic() + budget_s
    while len(sigs) < max_n and time.monotonic() < deadline:
        msg = sub.recv(timeout_ms=0)
        if msg is None:
            break
        sigs.append(msg.signal)
    return sigs


def state_dir(cfg) -> Path:
    return Path(cfg.alerts.state_dir or Path(cfg.engine.run_dir) / "state")


class AlertsActor(Actor):
    """Route bus signals to the sinks; see the module docstring."""

    kind = "alerts"

    def __init__(self, cfg, out=None, env: dict | None = None):
        super().__init__(cfg, "alerts")
        self.out = out or sys.stdout
        self.env = os.environ if env is None else env
        self.sub: Subscriber | None = None
        self.outbox: Outbox | None = None
        self.delivery: Delivery | None = None
        self.router: AlertRouter | None = None
        self.bus_sink: AlertBus | None = None

    def setup(self) -> None:
        a = self.cfg.alerts
        topics = {f"{k}." for k in a.kinds}
        senders = {}
        token = token_from_env(self.env)
        tg = a.telegram
        chats: list[int] = []
        if tg.enabled and token:
            if tg.chat_ids:
                senders["telegram"] = TelegramSender(token, tg.api_base_url, tg.connect_timeout_s, tg.read_timeout_s)
                chats = list(tg.chat_ids)
                topics |= {"cascade.", "liquidation."}   # live cascade messages count every liquidation
            else:
                self.log.warning("TELEGRAM_BOT_TOKEN is set but [alerts.telegram].chat_ids is empty: no chat is allowed")
        if a.webhook.enabled:
            senders["webhook"] = WebhookSender(a.webhook.timeout_s)
        if a.bus.enabled:
            self.bus_sink = AlertBus(a.bus.endpoint, a.bus.sndhwm, curve=curve_server_for(self.cfg.bus))
        if senders or self.bus_sink is not None:   # the outbox file also keeps the policy state (cooldowns)
            self.outbox = Outbox(outbox_path(state_dir(self.cfg)))
        if senders:
            self.delivery = Delivery(self.outbox.path, senders, DeliverySettings(
                tg.per_chat_per_s, tg.group_per_min, tg.global_per_s, a.retry_initial_s, a.retry_max_s,
                a.max_age_s)).start()
        allows = PrefsView(prefs_path(state_dir(self.cfg)), self.cfg.bot.auto_start) if chats else None
        self.router = AlertRouter(a, self.outbox, chats, a.webhook.url if a.webhook.enabled else None,
                                  console_out=self.out,
                                  on_enqueue=self.delivery.wake if self.delivery else None, allows=allows,
                                  on_alert=self.bus_sink.publish if self.bus_sink else None)
        self.sub = Subscriber(bus_endpoint(self.cfg), sorted(topics))
        if chats and tg.startup_notice:
            self.router.startup_notice(enabled_venues(self.cfg), tg.startup_notice_min_gap_s)

    def run(self) -> None:
        last_counters = 0.0
        while not self.stopping:
            msg = self.sub.recv(timeout_ms=100)
            self.beat()
            if msg is not None:
                self.router.handle_burst(drain(self.sub, msg.signal))
            self.router.tick()
            now = time.monotonic()
            if now - last_counters >= 1.0:
                last_counters = now
                self.counters(self._counters())

    def _counters(self) -> dict[str, float]:
        r = self.router.stats
        c = {"signals_received": r.received, "signal_bursts": r.bursts, "signal_burst_max": r.burst_max,
             "alerts_sent": self.router.dedup.sent,
             "alerts_suppressed": self.router.dedup.suppressed, "bus_gaps": self.sub.gaps,
             "bus_malformed": self.sub.malformed, "telegram_enqueued": r.telegram_messages,
             "telegram_edits_enqueued": r.telegram_edits, "held_for_digest": r.held_for_digest,
             "webhook_enqueued": r.webhook_posts, "bus_alerts_published": r.bus_alerts,
             "live_cascades_resumed": self.router.cascades_resumed}
        if self.router.live is not None:
            c["live_state_unreadable"] = self.router.live.unreadable
        if self.delivery is not None:
            c.update(self.delivery.stats.as_counters())
            c.update({f"outbox_{k}": v for k, v in self.outbox.counts().items()})
        return c

    def teardown(self) -> None:
        if self.delivery is not None:
            self.delivery.stop()
        if self.bus_sink is not None:
            self.bus_sink.close()
        if self.outbox is not None:
            self.outbox.close()
        if self.sub is not None:
            self.sub.close()
