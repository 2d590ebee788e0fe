"""A local Telegram Bot API for tests: real HTTP, Telegram's JSON envelopes, recorded calls, faults.

Start it (a thread-per-request HTTP server on loopback) and point the real
python-telegram-bot client at it::

    from tests.fakes.botapi import FakeBotAPI, Fault

    with FakeBotAPI(token="123:ABC") as api:             # or api.start() ... api.stop()
        bot = telegram.Bot("123:ABC", base_url=api.base_url)   # base_url = "http://127.0.0.1:PORT/bot"
        # config: [alerts.telegram] api_base_url = api.base_url
        ...
        api.sent(chat_id=42)          # messages as the chat sees them now (text after edits)
        api.calls                     # every request: Call(method, params, chat_id, t, status)
        api.wait_for(lambda: len(api.sent()) >= 3, timeout=5)

From a shell: ``python -m tests.fakes.botapi --port 8081 --token 123:ABC`` (prints
the base URL, logs every call as a JSON line, Ctrl-C stops).

Inject user updates (returned by ``getUpdates``, long polling honoured)::

    api.inject_command(chat_id=42, text="/price BTC", user_id=7)           # private chat
    api.inject_command(chat_id=-100123, text="/oi", user_id=7, chat_type="supergroup")
    api.inject_update({...raw update...})                                   # anything else

Inject faults (each consumed by the next matching request; ``times`` repeats it)::

    api.inject(Fault.flood(retry_after=2))                 # 429 + parameters.retry_after, for that chat
    api.inject(Fault.flood(retry_after=2, scope="global")) # 429 for every chat until it expires
    api.inject(Fault.cant_parse())                         # 400 "can't parse entities" (even if the HTML is fine)
    api.inject(Fault.forbidden())                          # 403 bot was blocked by the user
    api.inject(Fault.server_error(502))                    # 5xx
    api.inject(Fault.accept_then_timeout(delay=2.0))       # message stored as sent; reply held back `delay` s
    api.migrate_chat(-100, -1001234)                       # 400 + parameters.migrate_to_chat_id from now on
    api.block_chat(42)                                     # 403 from now on
    api.inject(Fault.flood(1), method="sendMessage", chat_id=42, times=3)

Flood control is enforced like Telegram's: after a 429 the chat (or, for
``scope="global"``, every chat) that sends again before ``retry_after`` has
passed gets another 429; a send from a chat that had already been given a
429 for that flood is counted in :attr:`FakeBotAPI.early_sends`, which a
test asserts is zero. Optional rate limits (``per_chat_per_s``,
``global_per_s``) answer 429 as Telegram's flood control would.

``sendMessage``/``editMessageText`` validate like Telegram: empty text, more
than 4096 characters (UTF-16 units, after entity parsing) and malformed
HTML (unknown or unbalanced tags, a bare ``<`` or ``&``) are 400 errors; an
edit to the same text is "message is not modified".
"""
from __future__ import annotations

import argparse
import email.parser
import email.policy
import json
import os
import re
import threading
import time
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import parse_qsl

# python-telegram-bot >= 22.2 warns on every RetryAfter unless opted in to timedelta periods (the engine
# opts in the same way in engine/alerts/tgclient.py); tests treat warnings as errors.
os.environ.setdefault("PTB_TIMEDELTA", "true")

__all__ = ["FakeBotAPI", "Fault", "Call", "Message", "html_visible_text", "HtmlError", "MAX_TEXT"]

MAX_TEXT = 4096
BOT_USER = {"id": 999000111, "is_bot": True, "first_name": "Undertow", "username": "undertow_test_bot",
            "can_join_groups": True, "can_read_all_group_messages": False, "supports_inline_queries": False}
# Parameters python-telegram-bot sends raw; every other form value is JSON-encoded.
_STRING_PARAMS = {"text", "caption", "parse_mode", "url", "description", "short_description", "name",
                  "language_code", "secret_token", "inline_message_id", "callback_query_id", "action"}
_ALLOWED_TAGS = {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "a", "code", "pre", "span",
                 "tg-spoiler", "tg-emoji", "blockquote"}
_TAG = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9-]*)((?:\s+[^<>]*)?)>")
_ENTITY = re.compile(r"&(lt|gt|amp|quot|#[0-9]{1,7}|#x[0-9a-fA-F]{1,6});")
_ENTITY_CHARS = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}


class HtmlError(ValueError):
    """Telegram would reject this HTML; the message is Telegram's wording after "can't parse entities: "."""


def html_visible_text(text: str) -> str:
    """The text Telegram shows for ``text`` in HTML parse mode; raise :class:`HtmlError` if it is malformed."""
    out: list[str] = []
    stack: list[str] = []
    i = 0
    while i < len(text):
        c = text[i]
        if c == "<":
            m = _TAG.match(text, i)
            if m is None:
                raise HtmlError(f"Unsupported start tag at byte offset {len(text[:i].encode())}")
            closing, name = m.group(1) == "/", m.group(2).lower()
            if name not in _ALLOWED_TAGS:
                raise HtmlError(f'Unsupported start tag "{name}" at byte offset {len(text[:i].encode())}')
            if closing:
                if not stack or stack[-1] != name:
                    raise HtmlError(f'Unmatched end tag at byte offset {len(text[:i].encode())}, expected "</'
                                    f'{stack[-1] if stack else ""}>", found "</{name}>"')
                stack.pop()
            else:
                stack.append(name)
            i = m.end()
        elif c == "&":
            m = _ENTITY.match(text, i)
            if m is None:
                raise HtmlError(f"Can't find end of the entity starting at byte offset {len(text[:i].encode())}")
            ent = m.group(1)
            out.append(_ENTITY_CHARS.get(ent) or chr(int(ent[2:], 16) if ent[1] in "xX" else int(ent[1:])))
            i = m.end()
        elif c == ">":
            raise HtmlError(f"Unexpected end tag at byte offset {len(text[:i].encode())}")
        else:
            out.append(c)
            i += 1
    if stack:
        raise HtmlError(f'Can\'t find end tag corresponding to start tag "{stack[-1]}"')
    return "".join(out)


def utf16_len(s: str) -> int:
    """Length as Telegram counts it (UTF-16 code units)."""
    return len(s.encode("utf-16-le")) // 2


@dataclass
class Fault:
    """A failure the server answers with instead of doing the request. Build with the class methods."""

    status: int
    description: str
    parameters: dict[str, Any] | None = None
    scope: str = "chat"           # "chat" | "global" (flood control)
    accept: bool = False          # do the request (store the message) before failing
    delay_s: float = 0.0          # hold the reply back this long (the client times out first)

    @classmethod
    def flood(cls, retry_after: int = 1, scope: str = "chat") -> "Fault":
        return cls(429, f"Too Many Requests: retry after {retry_after}", {"retry_after": retry_after}, scope)

    @classmethod
    def cant_parse(cls) -> "Fault":
        return cls(400, "Bad Request: can't parse entities: Unsupported start tag \"x\" at byte offset 0")

    @classmethod
    def forbidden(cls) -> "Fault":
        return cls(403, "Forbidden: bot was blocked by the user")

    @classmethod
    def bad_request(cls, description: str = "Bad Request: chat not found") -> "Fault":
        return cls(400, description)

    @classmethod
    def server_error(cls, status: int = 500) -> "Fault":
        return cls(status, "Internal Server Error" if status == 500 else HTTPStatus(status).phrase)

    @classmethod
    def accept_then_timeout(cls, delay: float = 2.0) -> "Fault":
        """The message is stored as sent, but the reply comes ``delay`` s later (after the client gave up)."""
        return cls(200, "", accept=True, delay_s=delay)


@dataclass
class _FaultRule:
    fault: Fault
    method: str | None
    chat_id: int | str | None
    times: int


@dataclass
class Call:
    """One request as received."""

    method: str
    params: dict[str, Any]
    chat_id: int | str | None
    t: float                      # time.monotonic() on arrival
    status: int = 0               # HTTP status answered
    error: str = ""               # description when not ok


@dataclass
class Message:
    """A message the bot sent, as the chat sees it now."""

    chat_id: int | str
    message_id: int
    text: str                     # visible text (after HTML parsing), or the photo caption
    raw: str                      # as sent (with markup)
    parse_mode: str | None
    kind: str = "text"            # text | photo
    edits: list[str] = field(default_factory=list)   # raw texts of every successful edit, in order
    t_sent: float = 0.0


def _chat(chat_id: int | str, chat_type: str | None = None) -> dict[str, Any]:
    if chat_type is None:
        chat_type = "private" if isinstance(chat_id, int) and chat_id > 0 else "supergroup"
    chat: dict[str, Any] = {"id": chat_id, "type": chat_type}
    if chat_type == "private":
        chat["first_name"] = "Tester"
    else:
        chat["title"] = f"chat {chat_id}"
    return chat


def _decode_params(handler: BaseHTTPRequestHandler, body: bytes) -> dict[str, Any]:
    ctype = handler.headers.get("Content-Type", "")
    if ctype.startswith("application/json"):
        return json.loads(body or b"{}")
    if ctype.startswith("multipart/form-data"):
        msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + body)
        pairs = []
        for part in msg.iter_parts():
            name = part.get_param("name", header="content-disposition")
            payload = part.get_payload(decode=True) or b""
            if part.get_filename():   # an uploaded file: its bytes kept for the test to inspect
                pairs.append((name, {"filename": part.get_filename(), "size": len(payload),
                                     "content_type": part.get_content_type(), "data": payload}))
            else:
                pairs.append((name, payload.decode()))
    else:
        pairs = parse_qsl(body.decode(), keep_blank_values=True)
    out: dict[str, Any] = {}
    for k, v in pairs:
        if isinstance(v, str) and k not in _STRING_PARAMS:
            try:
                v = json.loads(v)
            except ValueError:
                pass
        out[k] = v
    return out


class FakeBotAPI:
    """The server; see the module docstring for use."""

    def __init__(self, token: str = "123456:TEST-token", host: str = "127.0.0.1", port: int = 0,
                 per_chat_per_s: float | None = None, global_per_s: float | None = None):
        self.token = token
        self.per_chat_per_s = per_chat_per_s
        self.global_per_s = global_per_s
        self._lock = threading.Condition()
        self.calls: list[Call] = []
        self.messages: dict[tuple, Message] = {}
        self.updates: list[dict] = []
        self.commands: dict[str, list] = {}
        self.webhook_deleted = 0
        self.early_sends = 0          # sends that arrived before an advertised retry_after had passed
        self.unauthorized = 0         # requests with a wrong token
        self._faults: list[_FaultRule] = []
        self.fault_hits: list[tuple[str, Any, Fault]] = []   # (method, chat_id, fault) of every fault answered
        self._blocked: set = set()
        self._migrated: dict = {}
        self._flood_until: dict = {}  # chat id (or None for global) -> monotonic deadline
        self._flood_told: dict = {}   # same keys -> chats that have received a 429 for that flood
        self._rate_window: dict = {}  # chat id (or None) -> recent send times
        self._next_message_id = 1
        self._next_update_id = 1
        self._server = ThreadingHTTPServer((host, port), self._handler_class())
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------
    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        """What to give ``telegram.Bot(token, base_url=...)`` (and ``[alerts.telegram].api_base_url``)."""
        return f"http://127.0.0.1:{self.port}/bot"

    def start(self) -> "FakeBotAPI":
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="fake-bot-api", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        with self._lock:
            self._lock.notify_all()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> "FakeBotAPI":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- test controls -----------------------------------------------------
    def inject(self, fault: Fault, method: str | None = "sendMessage", chat_id: int | str | None = None,
               times: int = 1) -> None:
        """Answer the next ``times`` matching requests (``method``/``chat_id`` None = any) with ``fault``."""
        with self._lock:
            self._faults.append(_FaultRule(fault, method, chat_id, times))

    def block_chat(self, chat_id: int | str) -> None:
        """Every later request to ``chat_id`` gets 403 (the user blocked the bot)."""
        with self._lock:
            self._blocked.add(chat_id)

    def migrate_chat(self, old: int, new: int) -> None:
        """The group ``old`` became supergroup ``new``: requests to ``old`` get 400 with migrate_to_chat_id."""
        with self._lock:
            self._migrated[old] = new

    def inject_update(self, update: dict) -> int:
        """Queue a raw update (``update_id`` assigned if missing); return its id."""
        with self._lock:
            update = dict(update)
            update.setdefault("update_id", self._next_update_id)
            self._next_update_id = max(self._next_update_id, update["update_id"]) + 1
            self.updates.append(update)
            self._lock.notify_all()
            return update["update_id"]

    def inject_command(self, chat_id: int, text: str, user_id: int | None = None,
                       chat_type: str | None = None) -> int:
        """Queue a user's message ``text`` (a ``/command args`` gets its bot_command entity)."""
        user_id = user_id if user_id is not None else (chat_id if chat_id > 0 else 1)
        msg: dict[str, Any] = {"message_id": self._new_message_id(), "date": int(time.time()),
                               "chat": _chat(chat_id, chat_type),
                               "from": {"id": user_id, "is_bot": False, "first_name": "User"}, "text": text}
        if text.startswith("/"):
            msg["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]
        return self.inject_update({"message": msg})

    # -- inspection --------------------------------------------------------
    def sent(self, chat_id: int | str | None = None, kind: str | None = None) -> list[Message]:
        """Messages the bot sent (to ``chat_id``), oldest first."""
        with self._lock:
            return [m for m in sorted(self.messages.values(), key=lambda m: m.message_id)
                    if (chat_id is None or m.chat_id == chat_id) and (kind is None or m.kind == kind)]

    def calls_to(self, method: str, chat_id: int | str | None = None) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.method == method and (chat_id is None or c.chat_id == chat_id)]

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
        """Poll ``predicate`` until true or ``timeout``; return its last value."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(0.01)
        return bool(predicate())

    # -- request handling --------------------------------------------------
    def _new_message_id(self) -> int:
        with self._lock:
            mid = self._next_message_id
            self._next_message_id += 1
            return mid

    def _handler_class(self):
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True   # headers and body are separate writes: no 40 ms delayed-ACK stalls

            def log_message(self, *args) -> None:  # quiet: the calls are recorded instead
                pass

            def handle(self) -> None:
                try:
                    super().handle()
                except (ConnectionError, TimeoutError):
                    pass  # a client killed or gone mid-request (the SIGKILL tests)

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                status, payload, delay = api._dispatch(self.path, self, body)
                if delay:
                    time.sleep(delay)
                data = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (the accept-then-timeout fault)

            do_GET = do_POST = _serve

        return Handler

    def _dispatch(self, path: str, handler, body: bytes) -> tuple[int, dict, float]:
        m = re.match(r"^/bot([^/]+)/([A-Za-z]+)$", path.split("?")[0])
        if m is None:
            return 404, {"ok": False, "error_code": 404, "description": "Not Found"}, 0.0
        if m.group(1) != self.token:
            with self._lock:
                self.unauthorized += 1
            return 401, {"ok": False, "error_code": 401, "description": "Unauthorized"}, 0.0
        method = m.group(2)
        try:
            params = _decode_params(handler, body)
        except ValueError as exc:
            return 400, {"ok": False, "error_code": 400, "description": f"Bad Request: {exc}"}, 0.0
        chat_id = params.get("chat_id")
        call = Call(method, params, chat_id, time.monotonic())
        with self._lock:
            self.calls.append(call)
        status, payload, delay = self._answer(method, params, chat_id)
        call.status = status
        call.error = "" if payload.get("ok") else payload.get("description", "")
        return status, payload, delay

    def _error(self, status: int, description: str, parameters: dict | None = None) -> tuple[int, dict, float]:
        payload: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
        if parameters:
            payload["parameters"] = parameters
        return status, payload, 0.0

    def _take_fault(self, method: str, chat_id) -> Fault | None:
        for rule in self._faults:
            if (rule.method in (None, method)) and (rule.chat_id is None or rule.chat_id == chat_id):
                rule.times -= 1
                if rule.times <= 0:
                    self._faults.remove(rule)
                self.fault_hits.append((method, chat_id, rule.fault))
                return rule.fault
        return None

    def _flood_check(self, chat_id, now: float) -> tuple[int, dict, float] | None:
        """Telegram-like flood control: an early send after a 429, or over the configured rates."""
        for key in (None, chat_id):
            until = self._flood_until.get(key)
            if until is not None and now < until:
                told = self._flood_told.setdefault(key, set())
                if chat_id in told:  # a chat can only wait for a 429 it has been given
                    self.early_sends += 1
                told.add(chat_id)
                left = max(1, int(until - now + 0.999))
                return self._error(429, f"Too Many Requests: retry after {left}", {"retry_after": left})
        for key, limit in ((chat_id, self.per_chat_per_s), (None, self.global_per_s)):
            if not limit:
                continue
            recent = [t for t in self._rate_window.get(key, []) if now - t < 1.0]
            if len(recent) >= limit:
                self._flood_until[key] = now + 1.0
                self._flood_told[key] = {chat_id}
                return self._error(429, "Too Many Requests: retry after 1", {"retry_after": 1})
            recent.append(now)
            self._rate_window[key] = recent
        return None

    def _answer(self, method: str, p: dict, chat_id) -> tuple[int, dict, float]:
        fault = None
        with self._lock:
            now = time.monotonic()
            sends = method.startswith(("send", "edit"))
            if chat_id is not None:
                if chat_id in self._migrated:
                    return self._error(400, "Bad Request: group chat was upgraded to a supergroup chat",
                                       {"migrate_to_chat_id": self._migrated[chat_id]})
                if chat_id in self._blocked:
                    return self._error(403, "Forbidden: bot was blocked by the user")
            fault = self._take_fault(method, chat_id)
            if fault is not None and fault.status == 429:
                key = None if fault.scope == "global" else chat_id
                self._flood_until[key] = now + fault.parameters["retry_after"]
                self._flood_told[key] = {chat_id}
                return self._error(429, fault.description, fault.parameters)
            if fault is None and sends:
                flooded = self._flood_check(chat_id, now)
                if flooded is not None:
                    return flooded
            if fault is not None and not fault.accept:
                return self._error(fault.status, fault.description, fault.parameters)
        handler = getattr(self, f"_m_{method}", None)
        if handler is None:
            return self._error(404, "Not Found")
        status, payload, _ = handler(p, chat_id)
        return status, payload, (fault.delay_s if fault is not None else 0.0)

    def _ok(self, result: Any) -> tuple[int, dict, float]:
        return 200, {"ok": True, "result": result}, 0.0

    # -- methods -----------------------------------------------------------
    def _m_getMe(self, p, chat_id):
        return self._ok(BOT_USER)

    def _m_deleteWebhook(self, p, chat_id):
        with self._lock:
            self.webhook_deleted += 1
        return self._ok(True)

    def _m_getWebhookInfo(self, p, chat_id):
        return self._ok({"url": "", "has_custom_certificate": False, "pending_update_count": len(self.updates)})

    def _m_setMyCommands(self, p, chat_id):
        commands = p.get("commands")
        if not isinstance(commands, list) or not all(isinstance(c, dict) and c.get("command") for c in commands):
            return self._error(400, "Bad Request: commands must be a non-empty array of BotCommand")
        with self._lock:
            self.commands[json.dumps(p.get("scope") or {"type": "default"}, sort_keys=True)] = commands
        return self._ok(True)

    def _m_getMyCommands(self, p, chat_id):
        with self._lock:
            return self._ok(self.commands.get(json.dumps(p.get("scope") or {"type": "default"}, sort_keys=True), []))

    def _m_getUpdates(self, p, chat_id):
        offset = int(p.get("offset") or 0)
        limit = int(p.get("limit") or 100)
        deadline = time.monotonic() + float(p.get("timeout") or 0)
        with self._lock:
            if offset:  # confirms (forgets) every update before offset, as Telegram does
                self.updates = [u for u in self.updates if u["update_id"] >= offset]
            while not self.updates and time.monotonic() < deadline:
                self._lock.wait(min(0.1, max(0.0, deadline - time.monotonic())))
            return self._ok(self.updates[:limit])

    def _checked_text(self, text: Any, parse_mode: Any) -> tuple[str | None, tuple | None]:
        if not isinstance(text, str) or not text.strip():
            return None, self._error(400, "Bad Request: message text is empty")
        visible = text
        if isinstance(parse_mode, str) and parse_mode.upper() == "HTML":
            try:
                visible = html_visible_text(text)
            except HtmlError as exc:
                return None, self._error(400, f"Bad Request: can't parse entities: {exc}")
        if not visible.strip():
            return None, self._error(400, "Bad Request: message text is empty")
        if utf16_len(visible) > MAX_TEXT:
            return None, self._error(400, "Bad Request: message is too long")
        return visible, None

    def _message_json(self, m: Message, edited: bool = False) -> dict:
        d: dict[str, Any] = {"message_id": m.message_id, "date": int(time.time()), "chat": _chat(m.chat_id),
                             "from": BOT_USER}
        if m.kind == "photo":
            d["photo"] = [{"file_id": f"photo{m.message_id}", "file_unique_id": f"u{m.message_id}",
                           "width": 800, "height": 600}]
            if m.text:
                d["caption"] = m.text
        else:
            d["text"] = m.text
        if edited:
            d["edit_date"] = int(time.time())
        return d

    def _m_sendMessage(self, p, chat_id):
        if chat_id is None:
            return self._error(400, "Bad Request: chat_id is empty")
        visible, err = self._checked_text(p.get("text"), p.get("parse_mode"))
        if err:
            return err
        m = Message(chat_id, self._new_message_id(), visible, p["text"], p.get("parse_mode"), t_sent=time.monotonic())
        with self._lock:
            self.messages[(chat_id, m.message_id)] = m
        return self._ok(self._message_json(m))

    def _m_sendPhoto(self, p, chat_id):
        if chat_id is None:
            return self._error(400, "Bad Request: chat_id is empty")
        if not p.get("photo"):
            return self._error(400, "Bad Request: there is no photo in the request")
        caption = p.get("caption") or ""
        visible = caption
        if caption:
            visible, err = self._checked_text(caption, p.get("parse_mode"))
            if err:
                return err
        m = Message(chat_id, self._new_message_id(), visible, caption, p.get("parse_mode"), kind="photo",
                    t_sent=time.monotonic())
        with self._lock:
            self.messages[(chat_id, m.message_id)] = m
        return self._ok(self._message_json(m))

    def _m_editMessageText(self, p, chat_id):
        with self._lock:
            m = self.messages.get((chat_id, p.get("message_id")))
        if m is None or m.kind != "text":
            return self._error(400, "Bad Request: message to edit not found")
        visible, err = self._checked_text(p.get("text"), p.get("parse_mode"))
        if err:
            return err
        if p["text"] == (m.edits[-1] if m.edits else m.raw):
            return self._error(400, "Bad Request: message is not modified: specified new message content and "
                                    "reply markup are exactly the same as a current content and reply markup "
                                    "of the message")
        with self._lock:
            m.text, m.parse_mode = visible, p.get("parse_mode")
            m.edits.append(p["text"])
        return self._ok(self._message_json(m, edited=True))

    def _m_deleteMessage(self, p, chat_id):
        with self._lock:
            found = self.messages.pop((chat_id, p.get("message_id")), None)
        return self._ok(True) if found else self._error(400, "Bad Request: message to delete not found")

    def _m_sendChatAction(self, p, chat_id):
        return self._ok(True)

    def _m_answerCallbackQuery(self, p, chat_id):
        return self._ok(True)

    def _m_getChat(self, p, chat_id):
        return self._ok({**_chat(chat_id), "accent_color_id": 0, "max_reaction_count": 11})

    def _m_close(self, p, chat_id):
        return self._ok(True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Local Telegram Bot API for trying Undertow without Telegram")
    ap.add_argument("--port", type=int, default=8081)
    ap.add_argument("--token", default="123456:TEST-token")
    args = ap.parse_args(argv)
    api = FakeBotAPI(token=args.token, port=args.port).start()
    print(f"fake Bot API on {api.base_url} (token {args.token!r}); Ctrl-C stops", flush=True)
    seen = 0
    try:
        while True:
            time.sleep(0.2)
            with api._lock:
                new = api.calls[seen:]
                seen = len(api.calls)
            for c in new:
                print(json.dumps({"method": c.method, "chat_id": c.chat_id, "status": c.status,
                                  "text": c.params.get("text"), "error": c.error or None}), flush=True)
    except KeyboardInterrupt:
        pass
    finally:
        api.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
