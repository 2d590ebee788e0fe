"""Senders for outbox rows: one request per call, the result classified as an :class:`Outcome`.

The console sink is not here: it prints straight from the actor (the
demo's look, ``engine.alerting.format_console``) and needs no outbox.
"""
from __future__ import annotations

import logging

import httpx
from telegram import LinkPreviewOptions

from .outbox import Row
from .tgclient import Outcome, classify, make_bot, redact

__all__ = ["TelegramSender", "WebhookSender"]

log = logging.getLogger("undertow.alerts")
_NO_PREVIEW = LinkPreviewOptions(is_disabled=True)


class TelegramSender:
    """sendMessage / editMessageText through python-telegram-bot."""

    def __init__(self, token: str, base_url: str, connect_timeout: float = 5.0, read_timeout: float = 10.0):
        self.bot = make_bot(token, base_url, connect_timeout, read_timeout)
        self._initialised = False

    async def close(self) -> None:
        if self._initialised:
            try:
                await self.bot.shutdown()
            except Exception as exc:  # closing must not mask the real shutdown
                log.warning("closing the Telegram client: %s", redact(str(exc)))

    async def send(self, row: Row, message_id: int | None = None) -> Outcome:
        try:
            if not self._initialised:
                await self.bot.initialize()       # getMe: checks the token once
                self._initialised = True
            kw = dict(chat_id=int(row.target) if row.target.lstrip("-").isdigit() else row.target,
                      text=row.body, parse_mode=row.parse_mode)
            if row.op == "edit":
                msg = await self.bot.edit_message_text(message_id=message_id, **kw)
            else:
                msg = await self.bot.send_message(link_preview_options=_NO_PREVIEW, **kw)
        except Exception as exc:  # every failure is classified; the row decides what happens next
            return classify(exc)
        return Outcome("ok", message_id=getattr(msg, "message_id", message_id))


class WebhookSender:
    """HTTP POST of the signal as JSON (``row.body``); 2xx is success, 429 honours Retry-After."""

    def __init__(self, timeout_s: float = 5.0, headers: dict[str, str] | None = None):
        self.client = httpx.AsyncClient(timeout=timeout_s, headers={"Content-Type": "application/json",
                                                                    **(headers or {})})

    async def close(self) -> None:
        await self.client.aclose()

    async def send(self, row: Row, message_id: int | None = None) -> Outcome:
        try:
            r = await self.client.post(row.target, content=row.body.encode())
        except httpx.TimeoutException as exc:
            return Outcome("unknown", f"{type(exc).__name__}: {exc}")
        except httpx.HTTPError as exc:
            return Outcome("retry", f"{type(exc).__name__}: {exc}")
        if 200 <= r.status_code < 300:
            return Outcome("ok")
        err = f"HTTP {r.status_code}: {r.text[:200]}"
        if r.status_code == 429:
            try:
                wait = float(r.headers.get("Retry-After", "1"))
            except ValueError:
                wait = 1.0
            return Outcome("flood", err, retry_after=wait)
        if r.status_code >= 500 or r.status_code == 408:
            return Outcome("retry", err)
        return Outcome("permanent", err)
