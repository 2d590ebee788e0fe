"""python-telegram-bot set-up shared by the alert sink and the bot: token handling, log redaction, errors.

* The token comes only from ``TELEGRAM_BOT_TOKEN`` (:func:`token_from_env`).
* httpx logs every request URL, and Telegram URLs contain the token:
  :func:`install_token_redaction` silences httpx/httpcore below WARNING and
  rewrites any log record (message, arguments, traceback) that contains the
  token, whichever logger or handler it goes to.
* :func:`classify` maps a PTB exception to what the outbox does next.
"""
from __future__ import annotations

import datetime as dt
import logging
import os
import traceback
from dataclasses import dataclass

# PTB >= 22.2 warns on every RetryAfter unless opted in to timedelta periods (the future default).
os.environ.setdefault("PTB_TIMEDELTA", "true")

from telegram.error import (BadRequest, ChatMigrated, Forbidden, InvalidToken, NetworkError,  # noqa: E402
                            RetryAfter, TelegramError, TimedOut)

__all__ = ["TOKEN_ENV", "token_from_env", "install_token_redaction", "redact", "Outcome", "classify", "make_bot"]

TOKEN_ENV = "TELEGRAM_BOT_TOKEN"
REDACTED = "<redacted-token>"
_tokens: set[str] = set()
_installed = False


def token_from_env(env: dict | None = None) -> str | None:
    """The bot token: systemd's ``telegram_bot_token`` credential, else ``TELEGRAM_BOT_TOKEN`` (None if neither).

    Same source as the bot actor's (:func:`engine.bot.app.bot_token`), so under the systemd unit the
    alert actor sees the token the bot sees.
    """
    from engine.security import read_secret
    tok = (read_secret("telegram_bot_token", TOKEN_ENV, env if env is not None else os.environ) or "").strip()
    return tok or None


def redact(text: str) -> str:
    for tok in _tokens:
        if tok in text:
            text = text.replace(tok, REDACTED)
    return text


def install_token_redaction(token: str) -> None:
    """Keep ``token`` out of every log line from now on (idempotent)."""
    global _installed
    if token:
        _tokens.add(token)
        # the numeric bot id alone is public; the secret half is what must never leak
        if ":" in token:
            _tokens.add(token.split(":", 1)[1])
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)
    if _installed:
        return
    _installed = True
    factory = logging.getLogRecordFactory()

    def redacting_factory(*args, **kwargs):
        record = factory(*args, **kwargs)
        try:
            msg = record.getMessage()
        except Exception:  # a malformed format string: leave it to the handler to report
            return record
        clean = redact(msg)
        if clean != msg:
            record.msg, record.args = clean, ()
        if record.exc_info and record.exc_info[1] is not None:
            text = "".join(traceback.format_exception(*record.exc_info))
            if redact(text) != text:
                record.exc_text, record.exc_info = redact(text).rstrip("\n"), None
        return record

    logging.setLogRecordFactory(redacting_factory)


@dataclass
class Outcome:
    """What a send attempt came to, and what to do next."""

    status: str                    # ok | retry | unknown | flood | migrated | bad_markup | gone | permanent
    error: str = ""
    retry_after: float = 0.0
    message_id: int | None = None
    new_target: str | None = None


def _seconds(v) -> float:
    return v.total_seconds() if isinstance(v, dt.timedelta) else float(v)


def classify(exc: BaseException) -> Outcome:
    """Map an exception from a Bot call to an :class:`Outcome`."""
    err = redact(f"{type(exc).__name__}: {exc}")
    if isinstance(exc, RetryAfter):
        return Outcome("flood", err, retry_after=_seconds(exc.retry_after))
    if isinstance(exc, ChatMigrated):
        return Outcome("migrated", err, new_target=str(exc.new_chat_id))
    if isinstance(exc, TimedOut):           # the request may have been processed: a resend may duplicate
        return Outcome("unknown", err)
    if isinstance(exc, InvalidToken):       # nothing can be sent until the token is fixed; keep the rows
        return Outcome("retry", err)
    if isinstance(exc, Forbidden):
        return Outcome("permanent", err)
    if isinstance(exc, BadRequest):
        low = exc.message.lower()
        if "not modified" in low:
            return Outcome("ok", err)
        if "parse entities" in low:
            return Outcome("bad_markup", err)
        if "message to edit not found" in low:
            return Outcome("gone", err)
        return Outcome("permanent", err)
    if isinstance(exc, NetworkError):       # connection errors and 5xx (PTB maps those to NetworkError)
        return Outcome("retry", err)
    if isinstance(exc, TelegramError):
        return Outcome("permanent", err)
    return Outcome("retry", err)


def make_bot(token: str, base_url: str, connect_timeout: float = 5.0, read_timeout: float = 10.0,
             pool_size: int = 16):
    """A ``telegram.Bot`` aimed at ``base_url`` (Telegram's, or a local Bot API), with the token redacted in logs."""
    from telegram import Bot
    from telegram.request import HTTPXRequest
    install_token_redaction(token)
    req = HTTPXRequest(connection_pool_size=pool_size, connect_timeout=connect_timeout, read_timeout=read_timeout,
                       write_timeout=read_timeout, pool_timeout=read_timeout)
    return Bot(token, base_url=base_url, request=req)
