"""The real python-telegram-bot client against the local Bot API: menu, answers, allow-lists, no token in logs."""
from __future__ import annotations

import asyncio
import logging

import pytest

from engine.bot.app import Access, BotService, build_application, start_bot, stop_bot
from engine.bot.commands import UNAUTHORIZED
from tests.fakes.botapi import FakeBotAPI
from tests.test_bot_known_market import KnownMarket

TOKEN = "987654:SECRET-token-value"
ALLOWED, ADMIN, GROUP = 42, 7, -100555


@pytest.fixture
def market(namespace, tmp_path):
    m = KnownMarket(namespace, tmp_path)
    yield m
    m.close()


def _access(group_commands: bool = False) -> Access:
    return Access(frozenset({ALLOWED, GROUP}), frozenset({ADMIN}), group_commands)


def test_access_policy():
    a = _access()
    assert a.decide(ALLOWED, "private", 1, False) == "answer"
    assert a.decide(ALLOWED, "private", 1, True) == "refuse"
    assert a.decide(ALLOWED, "private", ADMIN, True) == "answer"
    assert a.decide(99, "private", ADMIN, False) == "ignore"
    assert a.decide(GROUP, "supergroup", 1, False) == "ignore"
    assert _access(True).decide(GROUP, "supergroup", 1, False) == "answer"
    assert Access(frozenset(), frozenset({ADMIN})).decide(ALLOWED, "private", ADMIN, False) == "ignore"


def test_service_answers_refuses_and_ignores(market):
    svc = BotService(_access(), market.context)
    assert "VOLUME ANALYSIS" in svc.answer(ALLOWED, "private", 1, "/volume BTC").text
    assert svc.answer(99, "private", 1, "/price BTC") is None
    assert svc.answer(ALLOWED, "private", 1, "/mute BTC 1h").text == UNAUTHORIZED
    assert "muted" in svc.answer(ALLOWED, "private", ADMIN, "/mute BTC 1h").text
    assert svc.answer(ALLOWED, "private", 1, "hello") is None
    assert (svc.answered, svc.refused, svc.ignored) == (2, 1, 1)


async def _run_bot(api: FakeBotAPI, market: KnownMarket, script) -> None:
    svc = BotService(_access(), market.context)
    app = build_application(TOKEN, api.base_url, svc, notice_chats=[ALLOWED], notice="Undertow started")
    await start_bot(app)
    try:
        await asyncio.get_running_loop().run_in_executor(None, script)
    finally:
        await stop_bot(app)


@pytest.mark.process
def test_real_client_against_local_bot_api(market, caplog):
    caplog.set_level(logging.DEBUG)
    with FakeBotAPI(token=TOKEN) as api:
        def script():
            assert api.wait_for(lambda: api.sent(chat_id=ALLOWED), timeout=10), "no start-up notice"
            api.inject_command(chat_id=ALLOWED, text="/price BTC", user_id=1)
            api.inject_command(chat_id=99, text="/price BTC", user_id=5)         # unknown chat
            api.inject_command(chat_id=ALLOWED, text="/snooze 1h", user_id=1)    # not an admin
            api.inject_command(chat_id=ALLOWED, text="/oi", user_id=ADMIN)
            assert api.wait_for(lambda: len(api.sent(chat_id=ALLOWED)) >= 4, timeout=10)
        asyncio.run(_run_bot(api, market, script))
        texts = [m.text for m in api.sent(chat_id=ALLOWED)]
        assert texts[0] == "Undertow started"
        assert any("PERPETUALS" in t and "$50,000.00" in t for t in texts)
        assert UNAUTHORIZED in texts
        assert any("OPEN INTEREST ANALYSIS - BTC" in t for t in texts)
        assert api.sent(chat_id=99) == []
        names = [c["command"] for c in api.commands.get("default", [])] or \
            [c["command"] for call in api.calls_to("setMyCommands") for c in call.params["commands"]]
        assert "price" in names and "why" in names
    assert TOKEN not in caplog.text
    assert "ignored a command from chat 99 user 5" in caplog.text
