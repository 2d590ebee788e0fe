"""The local Bot API (tests/fakes/botapi.py) against the real python-telegram-bot client over HTTP."""
from __future__ import annotations

import asyncio
import time

import pytest
import telegram
from telegram.error import BadRequest, ChatMigrated, Forbidden, InvalidToken, NetworkError, RetryAfter, TimedOut
from telegram.request import HTTPXRequest

from tests.fakes.botapi import MAX_TEXT, Fault, FakeBotAPI, HtmlError, html_visible_text

pytestmark = pytest.mark.unit
TOKEN = "4242:fake-SECRET"


@pytest.fixture
def api():
    with FakeBotAPI(token=TOKEN) as a:
        yield a


def run_bot(api, coro_fn, read_timeout: float = 5.0, token: str = TOKEN):
    async def main():
        bot = telegram.Bot(token, base_url=api.base_url,
                           request=HTTPXRequest(read_timeout=read_timeout, connect_timeout=2.0),
                           get_updates_request=HTTPXRequest(read_timeout=read_timeout + 5))
        async with bot:
            return await coro_fn(bot)
    return asyncio.run(main())


def test_get_me_send_edit_and_recorded_calls(api):
    async def go(bot):
        me = await bot.get_me()
        m = await bot.send_message(42, "<b>BTC</b> &lt;cascade&gt;", parse_mode="HTML")
        e = await bot.edit_message_text("<b>BTC</b> bigger", chat_id=42, message_id=m.message_id, parse_mode="HTML")
        return me, m, e
    me, m, e = run_bot(api, go)
    assert me.username == "undertow_test_bot" and me.is_bot
    assert m.text == "BTC <cascade>" and m.chat.id == 42
    assert e.message_id == m.message_id and e.text == "BTC bigger"
    [msg] = api.sent(42)
    assert msg.text == "BTC bigger" and msg.edits == ["<b>BTC</b> bigger"]
    # `async with bot` initialises with getMe too
    assert [c.method for c in api.calls] == ["getMe", "getMe", "sendMessage", "editMessageText"]
    assert api.calls[2].params == {"chat_id": 42, "text": "<b>BTC</b> &lt;cascade&gt;", "parse_mode": "HTML"}


def test_validation_errors_match_telegram(api):
    async def go(bot):
        errors = []
        for text, mode in (("<b>open", "HTML"), ("a < b", "HTML"), ("x" * (MAX_TEXT + 1), None), ("", None)):
            try:
                await bot.send_message(1, text, parse_mode=mode)
            except BadRequest as exc:
                errors.append(exc.message)
        m = await bot.send_message(1, "same")
        try:
            await bot.edit_message_text("same", chat_id=1, message_id=m.message_id)
        except BadRequest as exc:
            errors.append(exc.message)
        return errors
    errors = run_bot(api, go)
    assert errors[0].startswith("Can't parse entities") and errors[1].startswith("Can't parse entities")
    assert errors[2] == "Message is too long" and errors[3] == "Message text is empty"
    assert errors[4].startswith("Message is not modified")
    assert len(api.sent(1)) == 1


def test_flood_fault_gives_retry_after_and_counts_early_sends(api):
    api.inject(Fault.flood(retry_after=1), chat_id=7)

    async def go(bot):
        with pytest.raises(RetryAfter) as info:
            await bot.send_message(7, "one")
        with pytest.raises(RetryAfter):
            await bot.send_message(7, "too early")
        other = await bot.send_message(8, "another chat is not paused")
        await asyncio.sleep(1.05)
        ok = await bot.send_message(7, "after the pause")
        return info.value, other, ok
    exc, other, ok = run_bot(api, go)
    assert "Retry in" in str(exc)
    assert api.early_sends == 1
    assert [m.text for m in api.sent()] == ["another chat is not paused", "after the pause"]


def test_global_flood_pauses_every_chat(api):
    api.inject(Fault.flood(retry_after=1, scope="global"))

    async def go(bot):
        for chat in (1, 2):   # chat 2 was never told: its 429 is not an early send
            with pytest.raises(RetryAfter):
                await bot.send_message(chat, "x")
        assert api.early_sends == 0
        with pytest.raises(RetryAfter):
            await bot.send_message(2, "x again")
    run_bot(api, go)
    assert api.early_sends == 1 and api.sent() == []


def test_permanent_errors_and_migration(api):
    api.inject(Fault.forbidden(), chat_id=5)
    api.inject(Fault.cant_parse(), chat_id=6)
    api.inject(Fault.server_error(502), chat_id=9)
    api.migrate_chat(-100, -1001000)

    async def go(bot):
        out = []
        for chat, exc_type in ((5, Forbidden), (6, BadRequest), (9, NetworkError), (-100, ChatMigrated)):
            with pytest.raises(exc_type) as info:
                await bot.send_message(chat, "hello <b>x</b>", parse_mode="HTML")
            out.append(info.value)
        out.append(await bot.send_message(-1001000, "in the supergroup"))
        return out
    forbidden, cant_parse, bad_gateway, migrated, moved = run_bot(api, go)
    assert "blocked" in forbidden.message
    assert "parse entities" in cant_parse.message.lower()
    assert migrated.new_chat_id == -1001000 and moved.chat.type == "supergroup"
    assert [m.chat_id for m in api.sent()] == [-1001000]


def test_accept_then_timeout_stores_the_message(api):
    api.inject(Fault.accept_then_timeout(delay=1.0))

    async def go(bot):
        with pytest.raises(TimedOut):
            await bot.send_message(3, "did it arrive?")
    run_bot(api, go, read_timeout=0.3)
    assert [m.text for m in api.sent(3)] == ["did it arrive?"]


def test_injected_updates_long_polling_and_commands(api):
    async def go(bot):
        assert await bot.delete_webhook()
        await bot.set_my_commands([("price", "price of a symbol"), ("oi", "open interest")])
        cmds = await bot.get_my_commands()
        t0 = time.monotonic()
        empty = await bot.get_updates(timeout=0.3)
        waited = time.monotonic() - t0
        api.inject_command(42, "/price BTC", user_id=7)
        api.inject_command(-100555, "/oi ETH", user_id=8)
        ups = await bot.get_updates(timeout=2)
        again = await bot.get_updates(offset=ups[-1].update_id + 1, timeout=0)
        return cmds, empty, waited, ups, again
    cmds, empty, waited, ups, again = run_bot(api, go)
    assert [c.command for c in cmds] == ["price", "oi"]
    assert empty == () and waited >= 0.25
    assert [(u.effective_chat.id, u.effective_user.id, u.message.text) for u in ups] == \
        [(42, 7, "/price BTC"), (-100555, 8, "/oi ETH")]
    assert ups[0].message.entities[0].type == "bot_command" and ups[1].effective_chat.type == "supergroup"
    assert again == () and api.webhook_deleted == 1


def test_send_photo_multipart_and_wrong_token(api):
    async def go(bot):
        return await bot.send_photo(11, photo=b"\x89PNG fake bytes", caption="<i>chart</i>", parse_mode="HTML")
    m = run_bot(api, go)
    assert m.caption == "chart" and m.photo
    [sent] = api.sent(11, kind="photo")
    assert api.calls_to("sendPhoto")[0].params["photo"]["size"] == len(b"\x89PNG fake bytes")

    with pytest.raises(InvalidToken):
        run_bot(api, lambda bot: bot.get_me(), token="1:wrong")
    assert api.unauthorized == 1


def test_rate_limit_emulation():
    with FakeBotAPI(token=TOKEN, per_chat_per_s=2) as api:
        async def go(bot):
            await bot.send_message(1, "a")
            await bot.send_message(1, "b")
            with pytest.raises(RetryAfter):
                await bot.send_message(1, "c")
        run_bot(api, go)
        assert len(api.sent(1)) == 2


@pytest.mark.parametrize("text,visible", [("a &amp; b", "a & b"), ("<a href=\"x\">l</a>", "l"),
                                          ("&#65;&#x42;", "AB"), ("<pre><code>x</code></pre>", "x")])
def test_html_visible_text(text, visible):
    assert html_visible_text(text) == visible


@pytest.mark.parametrize("text", ["<b>", "</b>", "<b><i>x</b></i>", "<script>x</script>", "a & b", "1 > 0"])
def test_html_rejected(text):
    with pytest.raises(HtmlError):
        html_visible_text(text)
