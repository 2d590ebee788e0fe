"""/zones and /chart end to end: the real python-telegram-bot client uploads the PNG to the local Bot API.

The fake server parses the multipart upload, so the test sees the bytes that
arrived, their content type and the caption; a 429 on sendPhoto is waited out
(retry_after) and the same photo goes again.
"""
from __future__ import annotations

import asyncio

import msgspec
import pytest

from engine.bot.app import Access, BotService, build_application, start_bot, stop_bot
from engine.config import Config
from engine.history import HistoryWriter, InstrumentInfo
from engine.record import Venue
from tests.fakes.botapi import FakeBotAPI, Fault
from tests.test_bot_known_market import KnownMarket
from tests.test_replay import market as recorded_market

pytestmark = pytest.mark.process
TOKEN = "31337:photo-SECRET-token"
CHAT = 42
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def recorded(namespace, tmp_path):
    """A known market whose bot context has the recorder on, over a recorded BTC/ETH history."""
    root = tmp_path / "history"
    w = HistoryWriter(str(root))
    w.set_instruments([InstrumentInfo(0, Venue.BINANCE, "BTCUSDT", "BTC"),
                       InstrumentInfo(1, Venue.BINANCE, "ETHUSDT", "ETH")])
    w.add_records("binance", recorded_market({"BTC": 0, "ETH": 1}))
    w.flush()
    base = Config()
    cfg = msgspec.structs.replace(base, recorder=msgspec.structs.replace(base.recorder, enabled=True, root=str(root)))
    m = KnownMarket(namespace, tmp_path)
    yield lambda chat_id: m.context(chat_id, cfg=cfg)
    m.close()


def _run(api: FakeBotAPI, context, script) -> None:
    async def main():
        app = build_application(TOKEN, api.base_url, BotService(Access(frozenset({CHAT}), frozenset()), context))
        await start_bot(app)
        try:
            await asyncio.get_running_loop().run_in_executor(None, script)
        finally:
            await stop_bot(app)
    asyncio.run(main())


def _uploads(api: FakeBotAPI) -> list:
    return [c for c in api.calls_to("sendPhoto", CHAT) if c.status == 200]


def test_zones_and_chart_upload_pngs_with_their_captions(recorded):
    with FakeBotAPI(token=TOKEN) as api:
        def script():
            api.inject_command(CHAT, "/zones BTC 4h")
            assert api.wait_for(lambda: len(api.sent(CHAT, kind="photo")) == 1, 30), [c.error for c in api.calls]
            api.inject_command(CHAT, "/chart ETH 4h")
            assert api.wait_for(lambda: len(api.sent(CHAT, kind="photo")) == 2, 30), [c.error for c in api.calls]
        _run(api, recorded, script)
        zones, chart = _uploads(api)
        photos = api.sent(CHAT, kind="photo")
    for call, words, asset in ((zones, "liquidation zones", "BTC"), (chart, "CVD", "ETH")):
        up = call.params["photo"]
        assert isinstance(up, dict) and up["data"].startswith(PNG) and up["size"] == len(up["data"]) > 1000
        assert call.params["parse_mode"] == "HTML" and call.params["caption"].startswith(f"<b>{asset}</b>, last 4 h")
    assert "Modelled liquidation zones" in photos[0].text and photos[0].text.startswith("BTC, last 4 h")
    assert "CVD (real taker flow) and liquidations" in photos[1].text and photos[1].text.startswith("ETH, last 4 h")
    assert zones.params["photo"]["data"] != chart.params["photo"]["data"]


def test_a_429_on_send_photo_is_waited_out_and_retried(recorded):
    with FakeBotAPI(token=TOKEN) as api:
        api.inject(Fault.flood(retry_after=1), method="sendPhoto", chat_id=CHAT)

        def script():
            api.inject_command(CHAT, "/zones BTC 4h")
            assert api.wait_for(lambda: api.sent(CHAT, kind="photo"), 30), [(c.method, c.error) for c in api.calls]
        _run(api, recorded, script)
        calls = api.calls_to("sendPhoto", CHAT)
        texts = api.sent(CHAT, kind="text")
    assert [c.status for c in calls] == [429, 200]
    assert calls[1].t - calls[0].t >= 1.0, "resent before retry_after"
    assert api.early_sends == 0
    assert calls[0].params["photo"]["data"] == calls[1].params["photo"]["data"]   # the same image, uploaded again
    assert texts == [], [m.text for m in texts]     # no error reply instead of the photo
