"""Running unattended: the systemd unit, install.sh --dry-run, and sd_notify from a real `undertow run`."""
from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from engine.config import loads

from .conftest import wait_until
from .test_supervisor import Engine, write_config

ROOT = Path(__file__).resolve().parents[1]
UNIT = ROOT / "scripts" / "undertow.service"
INSTALL = ROOT / "scripts" / "install.sh"


def unit_settings() -> dict[str, list[str]]:
    """``Key=value`` lines of the unit (a key may repeat, e.g. SystemCallFilter)."""
    out: dict[str, list[str]] = {}
    for line in UNIT.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            out.setdefault(key, []).append(value)
    return out


@pytest.mark.unit
def test_unit_is_a_hardened_notify_service_with_a_watchdog():
    s = {k: v[-1] for k, v in unit_settings().items()}
    assert s["Type"] == "notify" and s["NotifyAccess"] == "main"
    assert s["Restart"] == "on-failure"
    assert 10 <= int(s["WatchdogSec"]) <= 120
    assert s["User"] == "undertow" and s["Group"] == "undertow"
    assert s["LoadCredential"].startswith("telegram_bot_token:")
    assert "TELEGRAM_BOT_TOKEN" not in UNIT.read_text().replace("# ", "")  # never an Environment= secret
    assert s["RuntimeDirectory"] == "undertow" and s["RuntimeDirectoryMode"] == "0700"
    for key, want in {"ProtectSystem": "strict", "NoNewPrivileges": "yes", "PrivateTmp": "yes",
                      "ProtectHome": "yes", "RestrictSUIDSGID": "yes", "CapabilityBoundingSet": "",
                      "UMask": "0077"}.items():
        assert s[key] == want, key
    assert set(s["RestrictAddressFamilies"].split()) == {"AF_UNIX", "AF_INET", "AF_INET6"}
    assert "/dev/shm" in s["ReadWritePaths"].split()   # the rings
    assert "--config /etc/undertow/config.toml" in s["ExecStart"] and " run " in s["ExecStart"]


@pytest.mark.unit
def test_unit_passes_systemd_analyze_verify():
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed")
    r = subprocess.run(["systemd-analyze", "verify", str(UNIT)], capture_output=True, text=True, timeout=60)
    # the only acceptable complaint on a build host: the installed binary is not there
    problems = [ln for ln in (r.stdout + r.stderr).splitlines()
                if ln.strip() and "is not executable" not in ln and "No such file" not in ln]
    assert problems == []


@pytest.mark.unit
def test_installed_config_points_run_dir_at_the_runtime_directory():
    text = (ROOT / "config.toml").read_text()
    # the same rewrite install.sh does with sed
    new, n = re.subn(r"(?m)^run_dir = .*$", 'run_dir = "/run/undertow"     # systemd RuntimeDirectory', text)
    assert n == 1
    assert loads(new).engine.run_dir == "/run/undertow"


def _dry_run(tmp_path: Path, *extra: str) -> str:
    r = subprocess.run(["bash", str(INSTALL), "--dry-run", "--prefix", str(tmp_path / "opt"), "--etc",
                        str(tmp_path / "etc"), "--unit-dir", str(tmp_path / "units"), "--user", "undertow-test-nouser",
                        *extra], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout


@pytest.mark.unit
def test_install_dry_run_prints_every_step_and_changes_nothing(tmp_path):
    out = _dry_run(tmp_path)
    steps = [ln[2:] for ln in out.splitlines() if ln.startswith("+ ")]
    assert steps[0].startswith("useradd --system") and steps[0].endswith("undertow-test-nouser")
    assert any(s.startswith(f"install -d -m 0755 -o root -g root {tmp_path}/opt") for s in steps)
    assert any(s.endswith(f"{tmp_path}/opt/.venv") and " -m venv " in s for s in steps)
    assert any(s.startswith("install -m 0640") and s.endswith(f"{tmp_path}/etc/config.toml") for s in steps)
    assert any(s.startswith("install -m 0644") and s.endswith(f"{tmp_path}/units/undertow.service") for s in steps)
    assert steps[-3:] == ["systemctl daemon-reload", "systemctl enable undertow.service",
                          "systemctl restart undertow.service"]
    assert not (tmp_path / "opt").exists() and not (tmp_path / "etc").exists() and not (tmp_path / "units").exists()
    assert "--no-start" not in out and "systemctl restart" not in _dry_run(tmp_path, "--no-start")


@pytest.mark.unit
def test_install_dry_run_is_idempotent_over_an_existing_install(tmp_path):
    (tmp_path / "opt" / ".venv" / "bin").mkdir(parents=True)
    py = tmp_path / "opt" / ".venv" / "bin" / "python"
    py.write_text("#!/bin/sh\n")
    py.chmod(0o755)
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "config.toml").write_text("# edited by the operator\n")
    (tmp_path / "etc" / "telegram_bot_token").write_text("x")
    out = _dry_run(tmp_path)
    assert f"= venv {tmp_path}/opt/.venv exists" in out
    assert f"= {tmp_path}/etc/config.toml kept" in out
    assert " -m venv " not in out and "config.toml " + str(tmp_path / "etc") not in out
    assert f"+ chmod 0600 {tmp_path}/etc/telegram_bot_token" in out
    assert (tmp_path / "etc" / "config.toml").read_text() == "# edited by the operator\n"


@pytest.mark.unit
def test_install_rejects_unknown_arguments(tmp_path):
    r = subprocess.run(["bash", str(INSTALL), "--dry-run", "--bogus"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "unknown argument --bogus" in r.stderr


class FakeSystemd:
    """A NOTIFY_SOCKET that records every datagram with its arrival time."""

    def __init__(self, path: Path):
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.setblocking(False)
        self.got: list[tuple[float, bytes]] = []

    def drain(self) -> list[tuple[float, bytes]]:
        try:
            while True:
                self.got.append((time.monotonic(), self.sock.recv(4096)))
        except BlockingIOError:
            pass
        return self.got

    def count(self, prefix: bytes, since: float = 0.0) -> int:
        return sum(1 for t, m in self.drain() if t >= since and m.startswith(prefix))

    def close(self) -> None:
        self.sock.close()


@pytest.mark.process
def test_daemon_notifies_ready_status_and_watchdog_and_pings_stop_while_its_loop_hangs(tmp_path, namespace):
    systemd = FakeSystemd(tmp_path / "notify.sock")
    run_dir = tmp_path / "run"
    cfg = write_config(tmp_path, namespace)
    cfg.write_text(cfg.read_text().replace(f'run_dir = "{tmp_path}"', f'run_dir = "{run_dir}"')
                   .replace(f"ipc://{tmp_path}/bus.sock", f"ipc://{run_dir}/bus.sock"))
    eng = Engine(cfg, namespace, env={"NOTIFY_SOCKET": systemd.path, "WATCHDOG_USEC": "400000"})
    try:
        wait_until(lambda: systemd.count(b"READY=1"), timeout=60, message="READY=1")
        ready = next(m for _, m in systemd.got if m.startswith(b"READY=1"))
        assert ready == b"READY=1\nSTATUS=3/3 actors up, 0 restarts"
        # the runtime directory and what the daemon writes there are the service user's alone
        assert run_dir.stat().st_mode & 0o777 == 0o700
        assert (run_dir / "bus.json").stat().st_mode & 0o077 == 0
        wait_until(lambda: systemd.count(b"STATUS=") >= 1, timeout=8, message="a periodic STATUS= line")
        t0 = time.monotonic()
        wait_until(lambda: systemd.count(b"WATCHDOG=1", t0) >= 5, timeout=5, message="watchdog pings")
        rate = systemd.count(b"WATCHDOG=1", t0) / (time.monotonic() - t0)
        assert 2.0 <= rate <= 8.0   # WATCHDOG_USEC/2 = 0.2 s between pings

        os.kill(eng.proc.pid, signal.SIGSTOP)     # the supervisor's main loop hangs
        time.sleep(0.3)                            # anything sent just before the stop arrives
        hung_from = time.monotonic()
        time.sleep(1.5)                            # > 3 watchdog intervals: systemd would act
        assert systemd.count(b"WATCHDOG=1", hung_from) == 0
        os.kill(eng.proc.pid, signal.SIGCONT)
        resumed = time.monotonic()
        wait_until(lambda: systemd.count(b"WATCHDOG=1", resumed) >= 2, timeout=5, message="pings resume")
        eng.stop()
        assert eng.proc.returncode == 0
        assert systemd.count(b"STOPPING=1") == 1
    finally:
        if eng.proc.poll() is None:
            os.kill(eng.proc.pid, signal.SIGCONT)
        eng.stop()
        systemd.close()
