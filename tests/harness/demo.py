"""End-to-end demo tests: a config for `undertow demo`, and the demo run beside `undertow tail --json` on its bus."""
from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from tests.harness.cli import CLI, ROOT, cli_env
from tests.harness.toml import toml_table


def write_demo_config(tmp_path: Path, namespace: str, sections: str = "",
                      heartbeat_interval_s: float | None = 0.5) -> Path:
    """``tmp_path/demo.toml``: the engine in ``namespace`` with its run directory and bus in ``tmp_path``, no health
    port, then ``sections``; ``heartbeat_interval_s`` None leaves the bus heartbeat at its default."""
    bus = {"endpoint": f"ipc://{tmp_path}/bus.sock"}
    if heartbeat_interval_s is not None:
        bus["heartbeat_interval_s"] = heartbeat_interval_s
    cfg = tmp_path / "demo.toml"
    cfg.write_text("\n".join([toml_table("engine", namespace=namespace, run_dir=str(tmp_path), ring_capacity=16384),
                              toml_table("supervisor", health_port=0), toml_table("bus", **bus), sections]))
    return cfg


def demo_argv(cfg: Path, duration_s: float, *extra: str) -> list[str]:
    """The `undertow demo` command line for ``cfg``, stopping after ``duration_s``."""
    return [*CLI, "demo", "--config", str(cfg), "--duration", f"{duration_s:g}", *extra]


@dataclass
class DemoRun:
    """A finished demo: its exit status and output, and the signals `undertow tail --json` printed."""
    returncode: int
    out: str
    err: str
    tail_err: str
    signals: list[dict]

    def kinds(self) -> set[str]:
        return {x["kind"] for x in self.signals}


def run_demo_with_tail(cfg: Path, duration_s: float, tail_duration_s: float, *demo_args: str,
                       enough: Callable[[list], bool] | None = None) -> DemoRun:
    """Run the demo for ``duration_s`` and `undertow tail --json` for ``tail_duration_s`` beside it (tail finds the
    bus through the run directory of the same config); Ctrl-C the demo early once ``enough(signals)`` holds. The tail
    is stopped when the demo has finished."""
    env = cli_env()
    demo = subprocess.Popen(demo_argv(cfg, duration_s, *demo_args), cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    tail_err_path = cfg.parent / "tail.err"
    with open(tail_err_path, "w") as tail_err:
        tail = subprocess.Popen([*CLI, "tail", "--json", "--config", str(cfg), "--duration", f"{tail_duration_s:g}"],
                                cwd=ROOT, stdout=subprocess.PIPE, stderr=tail_err, text=True, env=env)
    signals: list[dict] = []

    def read() -> None:
        for line in tail.stdout:
            if line.strip():
                signals.append(json.loads(line))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + duration_s + 60
        while demo.poll() is None and time.monotonic() < deadline:
            if enough is not None and enough(list(signals)):
                demo.send_signal(signal.SIGINT)     # Ctrl-C: the supervisor stops and the demo stops its simulator
                break
            time.sleep(0.5)
        out, err = demo.communicate(timeout=60)
    finally:
        for p in (tail, demo):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                p.wait(20)
        reader.join(10)
        tail.stdout.close()
    return DemoRun(demo.returncode, out, err, tail_err_path.read_text(), signals)
