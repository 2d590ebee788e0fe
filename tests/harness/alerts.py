"""Alert-actor tests: a config beside the test's bus, and `undertow actor alerts` in its own process."""
from __future__ import annotations

import signal
import subprocess
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from tests.harness.cli import CLI, ROOT, cli_env
from tests.harness.toml import toml_table


def write_alert_config(tmp_path: Path, namespace: str, sections: str) -> tuple[Path, str]:
    """``tmp_path/a.toml``: the engine in ``namespace``, the bus at ``tmp_path/bus.sock``, then ``sections``.
    Return the file and the bus endpoint (the test binds its publisher there)."""
    endpoint = f"ipc://{tmp_path}/bus.sock"
    cfg = tmp_path / "a.toml"
    cfg.write_text("\n".join([toml_table("engine", namespace=namespace, run_dir=str(tmp_path)),
                              toml_table("bus", endpoint=endpoint), sections]))
    return cfg, endpoint


def start_alert_actor(cfg: Path, token: str | None = None, log_level: str | None = None,
                      **popen_kw) -> subprocess.Popen:
    """`undertow actor alerts --config cfg` with TELEGRAM_BOT_TOKEN set to ``token`` (when given) and the
    ``--log-level`` given; ``popen_kw`` say where its output goes."""
    env = cli_env(**({"TELEGRAM_BOT_TOKEN": token} if token is not None else {}))
    level = ["--log-level", log_level] if log_level else []
    return subprocess.Popen([*CLI, *level, "actor", "alerts", "--config", str(cfg)], cwd=ROOT, env=env, **popen_kw)


@contextmanager
def running_alert_actor(cfg: Path, token: str | None = None, log_level: str | None = None,
                        stop: signal.Signals = signal.SIGTERM, wait_s: float = 20.0,
                        **popen_kw) -> Iterator[subprocess.Popen]:
    """``start_alert_actor`` for a ``with`` block; leaving it sends ``stop`` (SIGKILL for a crash) and waits up to
    ``wait_s`` for the process to end."""
    proc = start_alert_actor(cfg, token, log_level, **popen_kw)
    try:
        yield proc
    finally:
        proc.send_signal(stop)
        proc.wait(wait_s)
