"""Bot-actor tests: the config a bot actor runs on (engine sized for tests, the venues it watches, the local Bot API)."""
from __future__ import annotations

from pathlib import Path

from engine.config import VenuesConfig
from tests.harness.toml import toml_table


def bot_config(namespace: str, run: str | Path, api_url: str, venues: dict[str, dict],
               telegram: dict | None = None, bot: dict | None = None) -> str:
    """TOML for a bot actor in ``namespace`` (``run``: run directory and bus), the venues in ``venues`` (name ->
    their keys) on and every other venue off, ``[alerts.telegram]`` at ``api_url`` with ``telegram``'s keys, and
    ``[bot]`` polling every 20 ms with ``bot``'s keys."""
    parts = [toml_table("engine", namespace=namespace, run_dir=str(run), ring_capacity=4096, max_instruments=64,
                        max_assets=16),
             toml_table("bus", endpoint=f"ipc://{run}/bus.sock")]
    parts += [toml_table(f"venues.{v}", **venues.get(v, {"enabled": False})) for v in VenuesConfig.__struct_fields__]
    parts += [toml_table("alerts", state_dir=f"{run}/state"),
              toml_table("alerts.telegram", api_base_url=api_url, **(telegram or {})),
              toml_table("bot", poll_interval_ms=20.0, **(bot or {}))]
    return "".join(parts)
