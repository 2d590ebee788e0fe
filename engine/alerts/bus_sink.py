"""The ZeroMQ sink: every alert the router decides to deliver, republished as an ``alert`` signal.

Subscribers get Undertow's alerts after duplicate suppression, cooldowns and
the live-cascade folding, i.e. the messages a human gets, as msgpack maps in
the bus's wire format (docs/BUS.md), on the alert actor's own PUB socket
(``[alerts.bus].endpoint``: the engine's bus is bound by the compute actor).
Each carries its tier and, with Telegram on, which chats got it at once and
which held it for their digest.
"""
from __future__ import annotations

import time

import msgspec

from ..bus import Publisher
from ..signals import Alert

__all__ = ["Alert", "AlertBus", "decode_alert"]

_decoder = msgspec.msgpack.Decoder(Alert)


def decode_alert(payload: bytes) -> Alert:
    """Decode one ``alert`` payload (raises msgspec.DecodeError/ValidationError if it is not one)."""
    return _decoder.decode(payload)


class AlertBus:
    """Publish :class:`Alert` signals on a PUB socket bound at ``endpoint``."""

    def __init__(self, endpoint: str, sndhwm: int = 10000, curve=None):
        self.pub = Publisher(endpoint, "alerts", bind=True, sndhwm=sndhwm, curve=curve)
        self.published = 0

    def publish(self, alert: Alert) -> None:
        msgspec.structs.force_setattr(alert, "ts_computed", alert.ts_computed or time.time_ns())
        self.pub.publish(alert)
        self.published += 1

    def close(self) -> None:
        self.pub.close()
