"""common.Heads: parsers route a push by its head (the bytes before its data) once, then find it by those bytes."""
from __future__ import annotations

import pytest

from engine.venues import Outcome, bitget
from engine.venues.common import Heads

pytestmark = pytest.mark.unit

HEAD = b'{"action":"update","arg":{"instType":"mc","channel":"trade","instId":"UNIUSDT"},"data":'
TRADE = HEAD + b'[["1649290078916","9.977","1","sell"]]}'


def test_a_top_level_head_is_kept_under_its_bytes():
    heads = Heads()
    heads.learn(TRADE, "route")
    assert heads == {HEAD: "route"}
    assert heads.get(TRADE[:TRADE.find(91)]) == "route"


@pytest.mark.parametrize("frame", [
    b'{"arg":{"channel":"trades","data":[1],"instId":"X"},"data":[]}',      # "data": nested inside arg
    b'{"action":"update","arg":{"instId":"A[1]"},"data":[]}',               # a "[" before the data
    b'{"action":"update","data":{"x":[1]}}',                                 # data is not the array
    b'{"action":"up"date","data":[]}',                                       # not a plain JSON prefix
])
def test_heads_that_are_not_a_whole_top_level_prefix_are_not_kept(frame):
    heads = Heads()
    heads.learn(frame, "route")
    assert heads == {}


def test_heads_are_bounded():
    heads = Heads(limit=2)
    for symbol in (b"A", b"B", b"C"):
        heads.learn(TRADE.replace(b"UNIUSDT", symbol), symbol)
    assert list(heads.values()) == [b"C"]


def test_bitget_streams_of_several_symbols_keep_their_own_ids_and_names():
    ids = {"UNIUSDT": 1, "DASHUSDT": 2}
    parser = bitget.Parser(ids.get)
    dash = TRADE.replace(b"UNIUSDT", b"DASHUSDT")
    out: list = []
    results = [parser.parse(f, 5, out) for f in (TRADE, dash, TRADE, dash)]
    assert results == [(Outcome.EMITTED, "trade.UNIUSDT"), (Outcome.EMITTED, "trade.DASHUSDT")] * 2
    assert [r[4] for r in out] == [1, 2, 1, 2]


def test_bitget_learned_head_then_broken_or_unregistered_frames():
    ids: dict[str, int] = {}
    parser = bitget.Parser(ids.get)
    out: list = []
    assert parser.parse(TRADE, 5, out) == (Outcome.IGNORED, "trade.UNIUSDT")
    assert parser.parse(TRADE[:-3], 5, out)[0] is Outcome.MALFORMED
    # bounds are checked by the decoder, before the id: a bad value is MALFORMED even for an unregistered symbol
    assert parser.parse(TRADE.replace(b'"9.977"', b'"-1"'), 5, out) == (Outcome.MALFORMED, "trade.UNIUSDT")
    ids["UNIUSDT"] = 7                  # registered later: the cached head still asks for the id
    assert parser.parse(TRADE, 5, out) == (Outcome.EMITTED, "trade.UNIUSDT") and out[0][4] == 7
    snapshot = TRADE.replace(b'"update"', b'"snapshot"')
    assert parser.parse(snapshot, 5, out) == (Outcome.PARSED, "trade.UNIUSDT") and len(out) == 1
