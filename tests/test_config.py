"""Config: strict decoding, path-qualified errors, the shipped file, check-config."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import msgspec
import pytest

from engine.config import Config, ConfigError, dump_json, load, loads

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[1]


def test_empty_file_gives_defaults():
    assert loads("") == Config()


def test_shipped_config_is_the_defaults_with_live_endpoints():
    cfg = load(ROOT / "config.toml")
    b = cfg.venues.binance
    assert b.ws_urls == {"public": "wss://fstream.binance.com/public", "market": "wss://fstream.binance.com/market"}
    assert b.rest_url == "https://fapi.binance.com"
    plain = msgspec.structs.replace(cfg, venues=msgspec.structs.replace(
        cfg.venues, binance=msgspec.structs.replace(b, ws_urls={}, rest_url="")))
    assert plain == Config(), "config.toml should document the defaults, not change them"


@pytest.mark.parametrize("text, path", [
    ("[engine]\nring_capacity = 1000\n", "$.engine.ring_capacity"),
    ("[engine]\nring_capacity = \"big\"\n", "$.engine.ring_capacity"),
    ("[engine]\ncompute_workerz = 2\n", "$.engine"),
    ("[venues.binance]\nsymbols = [1]\n", "$.venues.binance.symbols[0]"),
    ("[venues.binance]\nsymbols = []\n", "$.venues.binance.symbols"),
    ("[venues.kraken]\nenabled = true\n", "$.venues"),
    ("[detectors.cascade]\nlevels = [5.0, 3.0, 7.0]\n", "$.detectors.cascade.levels"),
    ("[engine]\nidle = \"nap\"\n", "$.engine.idle"),
    ("[engine]\ndetector_cadence_ms = -1.0\n", "$.engine.detector_cadence_ms"),
    ("[engine]\ndetector_queue_records = 0\n", "$.engine.detector_queue_records"),
    ("[engine]\nrealtime_priority = 99\n", "$.engine.realtime_priority"),
    ("[engine]\nrealtime_priority = 5\nidle = \"spin\"\n", "$.engine.realtime_priority"),
    ("[bus]\nendpoint = \"udp://x\"\n", "$.bus.endpoint"),
    ("[detectors.liquidations]\nsingle_usd = { BTC = 1.0 }\n", "$.detectors.liquidations.single_usd"),
])
def test_bad_config_names_the_key(text, path):
    with pytest.raises(ConfigError) as exc:
        loads(text, "x.toml")
    assert path in str(exc.value) and "x.toml" in str(exc.value)


def test_invalid_toml_is_reported():
    with pytest.raises(ConfigError, match="not valid TOML"):
        loads("[engine\n")


def test_config_is_frozen():
    with pytest.raises(AttributeError):
        Config().engine.namespace = "x"  # type: ignore[misc]


def test_every_detector_has_an_enable_flag():
    d = Config().detectors
    for name in type(d).__struct_fields__:
        assert hasattr(getattr(d, name), "enabled"), name


def test_effective_config_round_trips_through_json(tmp_path):
    cfg = loads("[engine]\ncompute_workers = 3\n")
    assert load(dump_json(cfg, tmp_path / "eff.json")) == cfg


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config"):
        load(tmp_path / "absent.toml")


def test_check_config_cli_rejects_with_path_and_exit_code(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[supervisor]\nhealth_port = 70000\n")
    r = subprocess.run([sys.executable, "-m", "engine.cli", "check-config", str(bad)], capture_output=True, text=True,
                       cwd=ROOT)
    assert r.returncode == 2
    assert "$.supervisor.health_port" in r.stderr
    ok = subprocess.run([sys.executable, "-m", "engine.cli", "check-config", str(ROOT / "config.toml")],
                        capture_output=True, text=True, cwd=ROOT)
    assert ok.returncode == 0 and '"ring_capacity": 65536' in ok.stdout
