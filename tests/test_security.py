"""Security: only msgspec between processes (no Python-object serialization), private ipc directory, CurveZMQ beyond loopback, no leaked secrets."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import zmq

from engine.bus import Publisher, Subscriber
from engine.config import ConfigError, loads
from engine.security import (CurveClient, CurveServer, SecurityError, endpoint_is_local, ensure_private_dir,
                             generate_certificate, ipc_dir, read_secret)
from engine.signals import Heartbeat

ROOT = Path(__file__).resolve().parents[1]
SOURCE_DIRS = ("engine", "actors", "scripts", "bench")

# Anything that would move Python objects between processes by serializing them as objects. The
# module and method names are assembled so that this file does not itself match a grep for them.
_PK, _PYOBJ = "pick" + "le", "_py" + "obj"
_OBJECT_SERIALIZATION = re.compile(rf"\b(c?{_PK}|dill|cloud{_PK}|marshal\.loads|send{_PYOBJ}|recv{_PYOBJ}|shelve)\b"
                     r"|multiprocessing\.(Queue|SimpleQueue|JoinableQueue|Pipe|Manager|Pool|connection)"
                     r"|from multiprocessing import (?!shared_memory|resource_tracker)"
                     r"|from multiprocessing\.(?!shared_memory|resource_tracker)")


def serialization_uses(text: str) -> list[str]:
    """Lines of ``text`` that serialize Python objects or use multiprocessing queues/pipes (comments included)."""
    return [line.strip() for line in text.splitlines() if _OBJECT_SERIALIZATION.search(line)]


@pytest.mark.unit
def test_the_serialization_scanner_finds_what_it_must():
    planted = (f"import {_PK}\nfrom multiprocessing import Queue\nq = multiprocessing.Pipe()\n"
               f"sock.send{_PYOBJ}(x)\nfrom multiprocessing.connection import Listener\n")
    assert len(serialization_uses(planted)) == 5
    assert serialization_uses("from multiprocessing import resource_tracker, shared_memory\n") == []


@pytest.mark.unit
def test_no_object_serialization_or_multiprocessing_queue_anywhere_in_the_source_tree():
    me = Path(__file__).resolve()
    files = [p for d in SOURCE_DIRS for p in (ROOT / d).rglob("*.py")] + list((ROOT / "scripts").glob("*"))
    assert len(files) > 40
    found = {}
    for p in files:
        if p.resolve() == me or not p.is_file():
            continue
        hits = serialization_uses(p.read_text(errors="replace"))
        if hits:
            found[str(p.relative_to(ROOT))] = hits
    assert found == {}


@pytest.mark.unit
@pytest.mark.parametrize("endpoint,local", [
    ("ipc:///run/undertow/bus.sock", True), ("tcp://127.0.0.1:7300", True), ("tcp://127.8.0.1:7300", True),
    ("tcp://localhost:7300", True), ("tcp://[::1]:7300", True), ("tcp://0.0.0.0:7300", False),
    ("tcp://*:7300", False), ("tcp://10.1.2.3:7300", False), ("tcp://eth0:7300", False),
    ("tcp://[::]:7300", False), ("inproc://x", False)])
def test_endpoint_is_local(endpoint, local):
    assert endpoint_is_local(endpoint) is local


@pytest.mark.unit
def test_ipc_dir():
    assert ipc_dir("ipc:///run/undertow/bus.sock") == Path("/run/undertow")
    assert ipc_dir("tcp://127.0.0.1:1") is None


@pytest.mark.unit
def test_non_loopback_bus_needs_a_curve_key_named_in_the_error(tmp_path):
    with pytest.raises(ConfigError, match=r"\$\.bus\.curve_secret_key"):
        loads('[bus]\nendpoint = "tcp://0.0.0.0:7300"\n')
    with pytest.raises(ConfigError, match=r"\$\.bus\.curve_secret_key.*|no such file"):
        loads(f'[bus]\nendpoint = "tcp://0.0.0.0:7300"\ncurve_secret_key = "{tmp_path}/missing.key_secret"\n')
    _, secret = generate_certificate(tmp_path / "keys", "server")
    cfg = loads(f'[bus]\nendpoint = "tcp://0.0.0.0:7300"\ncurve_secret_key = "{secret}"\n')
    assert cfg.bus.curve_secret_key == str(secret)
    with pytest.raises(ConfigError, match=r"\$\.bus\.curve_clients_dir"):
        loads(f'[bus]\ncurve_secret_key = "{secret}"\ncurve_clients_dir = "{tmp_path}/nope"\n')
    assert loads('[bus]\nendpoint = "tcp://127.0.0.1:7300"\n').bus.curve_secret_key == ""


@pytest.mark.unit
def test_private_dir_is_created_tightened_and_foreign_ones_refused(tmp_path):
    d = ensure_private_dir(tmp_path / "run" / "undertow")
    assert d.stat().st_mode & 0o777 == 0o700
    loose = tmp_path / "loose"
    loose.mkdir(mode=0o755)
    os.chmod(loose, 0o777)
    ensure_private_dir(loose)
    assert loose.stat().st_mode & 0o777 == 0o700
    link = tmp_path / "link"
    link.symlink_to(loose)
    with pytest.raises(SecurityError, match="not a directory"):
        ensure_private_dir(link)
    if os.geteuid() == 0:
        foreign = tmp_path / "foreign"
        foreign.mkdir()
        os.chown(foreign, 65534, 65534)
        with pytest.raises(SecurityError, match="belongs to uid 65534"):
            ensure_private_dir(foreign)


@pytest.mark.unit
def test_generated_secret_key_is_private(tmp_path):
    public, secret = generate_certificate(tmp_path / "k", "server")
    assert secret.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "k").stat().st_mode & 0o777 == 0o700
    with pytest.raises(SecurityError, match="holds no secret key"):
        CurveServer.from_files(str(public))


@pytest.mark.unit
def test_read_secret_prefers_the_systemd_credential(tmp_path):
    (tmp_path / "telegram_bot_token").write_text("from-credential\n")
    env = {"CREDENTIALS_DIRECTORY": str(tmp_path), "TELEGRAM_BOT_TOKEN": "from-env"}
    assert read_secret("telegram_bot_token", "TELEGRAM_BOT_TOKEN", env) == "from-credential"
    assert read_secret("other", "TELEGRAM_BOT_TOKEN", env) == "from-env"
    assert read_secret("other", "NOPE", env) is None


# -- CurveZMQ over the wire -------------------------------------------------------------------------------

def _free_port() -> int:
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _received(pub: Publisher, sub: Subscriber, seconds: float) -> int:
    """Publish heartbeats for ``seconds`` and count what ``sub`` gets."""
    got = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        pub.heartbeat()
        while sub.recv(timeout_ms=20) is not None:
            got += 1
    return got


def _handshake_failures(monitor: zmq.Socket) -> int:
    from zmq.utils.monitor import recv_monitor_message
    failed = 0
    while monitor.poll(0):
        ev = recv_monitor_message(monitor)["event"]
        failed += ev in (zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL, zmq.EVENT_HANDSHAKE_FAILED_AUTH,
                         zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL)
    return failed


@pytest.mark.process
def test_curve_bus_on_all_interfaces_refuses_clients_without_the_key(tmp_path):
    _, server_secret = generate_certificate(tmp_path / "server", "server")
    server_public = tmp_path / "server" / "server.key"
    _, client_secret = generate_certificate(tmp_path / "client", "client")
    port = _free_port()
    ctx = zmq.Context()
    pub = Publisher(f"tcp://0.0.0.0:{port}", "sec", context=ctx, curve=CurveServer.from_files(str(server_secret)))
    mon = pub.sock.get_monitor_socket()
    plain = Subscriber(f"tcp://127.0.0.1:{port}", context=ctx)
    keyed = Subscriber(f"tcp://127.0.0.1:{port}", context=ctx,
                       curve=CurveClient.from_files(str(client_secret), str(server_public)))
    try:
        assert _received(pub, keyed, 1.0) > 0
        assert _received(pub, plain, 0.5) == 0
        assert _handshake_failures(mon) >= 1
    finally:
        for s in (plain, keyed):
            s.close()
        pub.sock.disable_monitor()
        mon.close()
        pub.close()
        ctx.term()


@pytest.mark.process
def test_curve_allow_list_refuses_a_keyed_client_not_on_it(tmp_path):
    _, server_secret = generate_certificate(tmp_path / "server", "server")
    server_public = str(tmp_path / "server" / "server.key")
    allowed = tmp_path / "allowed"
    _, good_secret = generate_certificate(allowed, "good")
    _, bad_secret = generate_certificate(tmp_path / "other", "stranger")
    os.rename(good_secret, tmp_path / "good.key_secret")   # the allow-list directory holds public halves only
    port = _free_port()
    ctx = zmq.Context()
    pub = Publisher(f"tcp://127.0.0.1:{port}", "sec", context=ctx,
                    curve=CurveServer.from_files(str(server_secret), str(allowed)))
    good = Subscriber(f"tcp://127.0.0.1:{port}", context=ctx,
                      curve=CurveClient.from_files(str(tmp_path / "good.key_secret"), server_public))
    stranger = Subscriber(f"tcp://127.0.0.1:{port}", context=ctx,
                          curve=CurveClient.from_files(str(bad_secret), server_public))
    try:
        assert _received(pub, good, 1.0) > 0
        assert _received(pub, stranger, 0.5) == 0
    finally:
        good.close()
        stranger.close()
        pub.close()
        ctx.term()


# -- no secret in any output ------------------------------------------------------------------------------

PLANTED = "7355608:AAH-planted-Secret-token_Do-Not-Log-9f3c1e"


@pytest.mark.process
def test_planted_token_never_appears_in_daemon_output(tmp_path, namespace):
    """Run the demo (simulator + supervisor + every actor) at DEBUG with the token planted, plus a bad config."""
    cfg = tmp_path / "demo.toml"
    cfg.write_text(f"""
[engine]
namespace = "{namespace}"
run_dir = "{tmp_path}/run"
ring_capacity = 4096
[supervisor]
health_port = 0
[bus]
endpoint = "ipc://{tmp_path}/run/bus.sock"
[simulator]
venues = ["binance"]
rate = 400.0
first_cascade_after_s = 2.0
""")
    env = {**os.environ, "TELEGRAM_BOT_TOKEN": PLANTED, "UNDERTOW_SECRET_PROBE": PLANTED, "PYTHONUNBUFFERED": "1"}
    demo = subprocess.Popen([sys.executable, "-m", "engine.cli", "--log-level", "DEBUG", "demo", "--config",
                             str(cfg), "--duration", "8"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        out, err = demo.communicate(timeout=90)
    finally:
        if demo.poll() is None:
            demo.send_signal(signal.SIGTERM)
            demo.wait(20)
    bad = tmp_path / "bad.toml"
    bad.write_text('[bus]\nendpoint = "tcp://0.0.0.0:1"\n[alerts]\ntelegram_token = "' + PLANTED + '"\n')
    check = subprocess.run([sys.executable, "-m", "engine.cli", "check-config", str(bad)], cwd=ROOT, env=env,
                           capture_output=True, text=True, timeout=60)
    assert check.returncode != 0
    captured = out + err + check.stdout + check.stderr
    assert len(out + err) > 200, "the demo printed almost nothing: the grep below would prove little"
    secret_bits = [PLANTED, PLANTED.split(":")[1]]
    leaks = [line for line in captured.splitlines() if any(b in line for b in secret_bits)]
    assert leaks == []
    run_files = list((tmp_path / "run").rglob("*")) if (tmp_path / "run").exists() else []
    assert not any(PLANTED in f.read_text(errors="replace") for f in run_files if f.is_file())
