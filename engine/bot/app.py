"""python-telegram-bot wiring: who may ask, the command menu, and sending the handlers' replies.

:class:`BotService` is the transport-free core (allow-lists + dispatch);
:func:`build_application` wraps it in a PTB ``Application`` that long-polls
the Bot API at ``api_base_url`` (Telegram's, or a local one in tests).

Access: a chat must be in ``chat_ids`` (an empty list admits nobody);
commands that change state also need the sender in ``admin_user_ids``;
group chats get read-only market commands only when ``group_commands`` is
on. Everyone else gets no answer and one log line with the ids only (never
the text they sent).
"""
from __future__ import annotations

import asyncio
import datetime as dt
import logging
import re
from dataclasses import dataclass
from typing import Callable

from .commands import GENERIC_ERROR, UNAUTHORIZED, BotContext, Reply, changes_state, dispatch, menu, parse

__all__ = ["Access", "BotService", "bot_token", "build_application", "silence_token_logs", "start_bot", "stop_bot"]

log = logging.getLogger("undertow.bot")
GROUP_TYPES = ("group", "supergroup")
TOKEN_CREDENTIAL, TOKEN_ENV = "telegram_bot_token", "TELEGRAM_BOT_TOKEN"


def bot_token(env: dict | None = None) -> str | None:
    """The bot token: systemd's ``telegram_bot_token`` credential, else ``$TELEGRAM_BOT_TOKEN``; None if neither."""
    from engine.security import read_secret
    return (read_secret(TOKEN_CREDENTIAL, TOKEN_ENV, env) or "").strip() or None


@dataclass(frozen=True)
class Access:
    chat_ids: frozenset[int]
    admin_user_ids: frozenset[int]
    group_commands: bool = False

    def decide(self, chat_id: int, chat_type: str, user_id: int | None, state_changing: bool) -> str:
        """"answer", "refuse" (an allowed chat, a non-admin changing state) or "ignore"."""
        if chat_id not in self.chat_ids:
            return "ignore"
        if chat_type in GROUP_TYPES and not self.group_commands and not state_changing:
            return "ignore"
        if state_changing and user_id not in self.admin_user_ids:
            return "refuse"
        return "answer"


class BotService:
    """Access check + dispatch for one incoming command; returns the reply or None (no answer)."""

    def __init__(self, access: Access, context: Callable[[int], BotContext], username: str = ""):
        self.access = access
        self.context = context
        self.username = username
        self.ignored = self.refused = self.answered = self.errors = 0

    def answer(self, chat_id: int, chat_type: str, user_id: int | None, text: str) -> Reply | None:
        parsed = parse(text or "", self.username)
        if parsed is None:
            return None
        name, args = parsed
        verdict = self.access.decide(chat_id, chat_type, user_id, changes_state(name, args))
        if verdict == "ignore":
            self.ignored += 1
            log.warning("ignored a command from chat %s user %s (not allowed)", chat_id, user_id)
            return None
        if verdict == "refuse":
            self.refused += 1
            log.warning("refused a state-changing command from chat %s user %s (not an admin)", chat_id, user_id)
            return Reply(UNAUTHORIZED, parse_mode="")
        try:
            reply = dispatch(self.context(chat_id), name, args)
        except Exception:
            self.errors += 1
            log.exception("command /%s failed", name)
            return Reply(GENERIC_ERROR, parse_mode="")
        self.answered += 1
        return reply


class _RedactToken(logging.Filter):
    def __init__(self, token: str):
        super().__init__()
        self._re = re.compile(re.escape(token)) if token else None

    def filter(self, record: logging.LogRecord) -> bool:
        if self._re is not None:
            msg = record.getMessage()
            if self._re.search(msg):
                record.msg, record.args = self._re.sub("<token>", msg), ()
        return True


def silence_token_logs(token: str) -> None:
    """httpx logs request URLs, which carry the bot token: keep it quiet and redact the token anywhere."""
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)
    flt = _RedactToken(token)
    for h in logging.getLogger().handlers:
        h.addFilter(flt)
    for name in ("telegram", "httpx", "undertow"):
        logging.getLogger(name).addFilter(flt)


FLOOD_RETRIES = 3   # a reply is tried this often when Telegram answers 429 (each time after its retry_after)


async def _flood_retried(send):
    """Await ``send()``; on a 429 wait Telegram's ``retry_after`` and try again (up to FLOOD_RETRIES times)."""
    from telegram.error import RetryAfter
    for attempt in range(1, FLOOD_RETRIES + 1):
        try:
            return await send()
        except RetryAfter as exc:
            if attempt == FLOOD_RETRIES:
                raise
            wait = exc.retry_after
            wait = wait.total_seconds() if isinstance(wait, dt.timedelta) else float(wait)
            log.warning("flood control on a reply: retrying in %.1f s (attempt %d)", wait, attempt + 1)
            await asyncio.sleep(wait)


def _plain(text: str) -> str:
    import html
    return html.unescape(re.sub(r"</?(b|i|code|pre)>", "", text))


def build_application(token: str, api_base_url: str, service: BotService, notice_chats: list[int] = (),
                      notice: str = ""):
    """A PTB Application answering commands through ``service``; registers the menu at start."""
    from telegram import BotCommand, Update
    from telegram.constants import ParseMode
    from telegram.error import BadRequest
    from telegram.ext import Application, ContextTypes, MessageHandler, filters

    silence_token_logs(token)

    async def post_init(app: Application) -> None:
        me = await app.bot.get_me()
        service.username = me.username or ""
        await app.bot.set_my_commands([BotCommand(n, d[:256]) for n, d in menu()])
        for chat in notice_chats:
            if notice:
                try:
                    await app.bot.send_message(chat, notice, parse_mode=ParseMode.HTML)
                except Exception:   # one unreachable chat must not stop the bot
                    log.warning("start-up notice to chat %s failed", chat)

    async def on_command(update: Update, _: ContextTypes.DEFAULT_TYPE) -> None:
        msg, chat = update.effective_message, update.effective_chat
        if msg is None or chat is None:
            return
        user = update.effective_user
        reply = service.answer(chat.id, chat.type, user.id if user else None, msg.text or "")
        if reply is None:
            return
        try:
            if reply.photo is not None:   # a 429 here used to end in the generic error reply instead
                await _flood_retried(lambda: msg.reply_photo(reply.photo, caption=reply.text,
                                                             parse_mode=reply.parse_mode or None))
                return
            await _flood_retried(lambda: msg.reply_text(reply.text, parse_mode=reply.parse_mode or None,
                                                        disable_web_page_preview=True))
        except BadRequest as exc:   # markup rejected: send the same content as plain text
            log.warning("HTML reply rejected (%s); sending plain text", exc)
            await msg.reply_text(_plain(reply.text))

    async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        log.error("bot handler error: %s", type(context.error).__name__)
        if isinstance(update, Update) and update.effective_message is not None:
            try:
                await update.effective_message.reply_text(GENERIC_ERROR)
            except Exception:
                pass

    base = api_base_url.rstrip("/")
    app = (Application.builder().token(token).base_url(base if base.endswith("/bot") else base + "/bot")
           .base_file_url(base.replace("/bot", "/file/bot") if base.endswith("/bot") else base + "/file/bot")
           .post_init(post_init).build())
    app.add_handler(MessageHandler(filters.COMMAND, on_command))
    app.add_error_handler(on_error)
    return app


async def start_bot(app) -> None:
    """Initialize, register the menu and send the start-up notice (post_init), then long-poll; drops updates
    sent while the bot was down, as the existing bot did."""
    await app.initialize()
    if app.post_init is not None:
        await app.post_init(app)
    await app.start()
    await app.updater.start_polling(poll_interval=0.0, timeout=10, drop_pending_updates=True)


async def stop_bot(app) -> None:
    if app.updater is not None and app.updater.running:
        await app.updater.stop()
    if app.running:
        await app.stop()
    await app.shutdown()
