"""The alert actor: subscribe to the bus, suppress duplicates, deliver to sinks (console for now)."""
from __future__ import annotations

import sys
import time

from engine.alerting import Dedup, format_console
from engine.bus import Subscriber

from .base import Actor

__all__ = ["AlertsActor"]


class AlertsActor(Actor):
    """Print alerts to the console (the Telegram sink arrives with the alerts issue)."""

    kind = "alerts"

    def __init__(self, cfg, out=None):
        super().__init__(cfg, "alerts")
        self.out = out or sys.stdout
        self.sub: Subscriber | None = None
        a = cfg.alerts
        self.dedup = Dedup(a.cooldown_s, kinds=a.kinds)
        self.received = 0

    def setup(self) -> None:
        self.sub = Subscriber(self.cfg.bus.endpoint, [f"{k}." for k in self.cfg.alerts.kinds])

    def run(self) -> None:
        last_counters = 0.0
        while not self.stopping:
            msg = self.sub.recv(timeout_ms=100)
            self.beat()
            if msg is not None:
                self.received += 1
                decision = self.dedup.decide(msg.signal)
                if decision.send and self.cfg.alerts.console.enabled:
                    print(format_console(msg.signal, decision), file=self.out, flush=True)
            now = time.monotonic()
            if now - last_counters >= 1.0:
                last_counters = now
                self.counters({"signals_received": self.received, "alerts_sent": self.dedup.sent,
                               "alerts_suppressed": self.dedup.suppressed, "bus_gaps": self.sub.gaps,
                               "bus_malformed": self.sub.malformed})

    def teardown(self) -> None:
        if self.sub is not None:
            self.sub.close()
