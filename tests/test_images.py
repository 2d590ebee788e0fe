"""PNG charts (engine/images.py) and `undertow heatmap` over a recorded history."""
from __future__ import annotations

import io
import tempfile

import numpy as np
import pytest

from engine.config import ZonesConfig
from engine.history import HistoryWriter, InstrumentInfo
from engine.record import Venue
from tests.test_replay import market

pytestmark = pytest.mark.unit

PNG = b"\x89PNG\r\n\x1a\n"


def png_size(data: bytes) -> tuple[int, int]:
    from matplotlib import image
    img = image.imread(io.BytesIO(data), format="png")
    return img.shape[1], img.shape[0]


@pytest.fixture(scope="module")
def history():
    root = tempfile.mkdtemp(prefix="ut-hist-")
    w = HistoryWriter(root)
    w.set_instruments([InstrumentInfo(0, Venue.BINANCE, "BTCUSDT", "BTC"), InstrumentInfo(1, Venue.BINANCE, "ETHUSDT", "ETH")])
    w.add_records("binance", market({"BTC": 0, "ETH": 1}))
    w.flush()
    return root


def test_heatmap_from_history_draws_the_modelled_zones(history):
    from engine.images import heatmap_from_history, zone_frames
    from engine.history import History
    png = heatmap_from_history(history, "BTC", ZonesConfig(), 3600 * 10**9)
    assert png.startswith(PNG) and png_size(png) == (1100, 605)
    recs = History(history).records(instruments={0})
    frames = zone_frames(recs, [("binance", "BTC", 0)], 0, ZonesConfig(), n_frames=20)
    assert frames.usd.shape == (20, ZonesConfig().bins)
    assert frames.usd[-1].sum() > 0          # OI rose: positions were modelled
    assert len(frames.prices) == len(recs[np.isin(recs["kind"], (1, 4))])


def test_cvd_chart_and_cli(history, tmp_path):
    from engine.cli import main
    out = tmp_path / "btc.png"
    assert main(["heatmap", "BTC", "--out", str(out), "--history", history, "--span", "2h", "--chart", "cvd"]) == 0
    assert out.read_bytes().startswith(PNG)
    assert main(["heatmap", "DOGE", "--out", str(out), "--history", history]) == 2   # no such asset: clear error


def test_empty_input_still_renders():
    from engine.images import ZoneFrames, render_cvd_liquidations, render_heatmap
    from engine.record import empty_records
    assert render_heatmap("BTC", ZoneFrames([], [], np.zeros((0, 4)), [], [])).startswith(PNG)
    assert render_cvd_liquidations("BTC", empty_records(0)).startswith(PNG)
