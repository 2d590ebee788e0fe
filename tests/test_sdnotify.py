"""sd_notify against a fake NOTIFY_SOCKET."""
from __future__ import annotations

import socket

import pytest

from engine.sdnotify import Notifier

pytestmark = pytest.mark.unit


@pytest.fixture
def fake_systemd(tmp_path):
    path = str(tmp_path / "notify.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    s.settimeout(2)
    yield path, s
    s.close()


def test_messages_reach_the_socket(fake_systemd):
    path, s = fake_systemd
    n = Notifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "2000000"})
    assert n.enabled and n.watchdog_interval_s == 1.0
    n.ready("3/3 actors up")
    assert s.recv(256) == b"READY=1\nSTATUS=3/3 actors up"
    n.watchdog()
    assert s.recv(256) == b"WATCHDOG=1"
    n.stopping()
    assert s.recv(256) == b"STOPPING=1"
    n.close()


def test_abstract_namespace_socket():
    name = "undertow-test-%d" % id(object())
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind("\0" + name)
    s.settimeout(2)
    n = Notifier({"NOTIFY_SOCKET": "@" + name})
    n.status("hello")
    assert s.recv(64) == b"STATUS=hello"
    n.close()
    s.close()


def test_disabled_without_socket_and_watchdog_for_other_pid():
    n = Notifier({"WATCHDOG_USEC": "100", "WATCHDOG_PID": "1"})
    assert not n.enabled and not n.ready() and n.watchdog_interval_s is None
