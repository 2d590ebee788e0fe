"""The actor base class and its lifecycle contract.

An actor is one OS process with one entry point (``undertow actor NAME``), so
it can run under the supervisor or as its own systemd unit. Startup is the
recovery path: a restarted actor re-attaches to the shared memory by name and
resumes.

=================  ==================  ===========  =======================================
hook               runs on             may block    if it raises
=================  ==================  ===========  =======================================
``setup()``        main thread, once   yes (I/O)    process exits 1; the supervisor restarts it
``warm_up()``      main thread, once   yes (CPU)    process exits 1; the supervisor restarts it
``run()``          main thread         its loop     process exits 1; the supervisor restarts it
``teardown()``     main thread, once   briefly      logged; exit code unchanged
=================  ==================  ===========  =======================================

Start-up (``setup()`` then ``warm_up()``, e.g. compiling numba kernels on a cold
cache) may take minutes on a loaded machine: a start-up beat thread beats meanwhile,
and the supervisor bounds it by ``supervisor.startup_timeout_ms`` instead. The thread
stops before the row turns RUNNING; from then on only ``run()`` beats, so a hung loop
is still caught within ``supervisor.heartbeat_timeout_ms``.

``run()`` must call :meth:`Actor.beat` at least three times per
``supervisor.heartbeat_timeout_ms`` and return soon after :attr:`Actor.stopping`
becomes true (SIGTERM or SIGINT). Create ZeroMQ sockets in ``setup()`` (before
:meth:`Actor.pin`), never after pinning.

Test hooks (environment, for the supervisor's start-up tests): ``UNDERTOW_TEST_SLOW_WARMUP_S``
adds that many seconds to ``warm_up()``; ``UNDERTOW_TEST_HANG_AFTER_READY=1`` makes the main
thread stop beating once RUNNING, as a hung event loop would.
"""
from __future__ import annotations

import gc
import logging
import os
import signal
import sys
import threading
import time

from engine import osutil
from engine.actor_table import RUNNING, STOPPED, ActorTable, actor_table_segment
from engine.config import Config

__all__ = ["Actor", "main"]

log = logging.getLogger("undertow.actor")


class Actor:
    """Base class: subclasses implement ``setup``, ``run`` and ``teardown``."""

    #: actor kind, e.g. "feed"; the process name is ``<kind>:<id>``
    kind = "actor"

    def __init__(self, cfg: Config, name: str):
        self.cfg = cfg
        self.name = name
        self.stopping = False
        self.log = logging.getLogger(f"undertow.{name}")
        self._table: ActorTable | None = None
        self.row = None
        self._last_beat = 0.0
        self.beat_interval_s = max(0.05, cfg.supervisor.heartbeat_timeout_ms / 1000.0 / 6)

    # -- hooks -----------------------------------------------------------
    def setup(self) -> None:
        """Attach shared memory and create sockets."""

    def run(self) -> None:
        """Main loop; return when ``self.stopping``."""
        raise NotImplementedError

    def warm_up(self) -> None:
        """Compile or load what ``run()`` would otherwise compile on its first records (start-up beats go on)."""

    def teardown(self) -> None:
        """Release resources."""

    # -- helpers ---------------------------------------------------------
    def beat(self, force: bool = False) -> None:
        """Heartbeat (cheap: writes shared memory at most every ``beat_interval_s``)."""
        now = time.monotonic()
        if force or now - self._last_beat >= self.beat_interval_s:
            self._last_beat = now
            if self.row is not None:
                self.row.beat()

    def counters(self, values: dict[str, float]) -> None:
        """Publish counters to the actor table (read by /metrics and ``undertow status``)."""
        if self.row is not None:
            self.row.update(values)

    def pin(self, cores: list[int]) -> list[int]:
        """Pin this process to ``cores`` (after sockets exist); return the cores used."""
        used = osutil.pin_to_cores(cores) if cores else osutil.available_cores()
        self.log.info("running on cores %s", used)
        return used

    def request_stop(self, *_: object) -> None:
        self.stopping = True

    # -- entry -----------------------------------------------------------
    def start(self) -> int:
        """Run the whole lifecycle in this process; return the exit code."""
        signal.signal(signal.SIGTERM, self.request_stop)
        signal.signal(signal.SIGINT, self.request_stop)
        osutil.die_with_supervisor()   # supervised: never outlive the supervisor
        osutil.set_timer_slack(self.cfg.engine.timer_slack_ns)
        self._table = ActorTable.open(actor_table_segment(self.cfg.engine.namespace))
        self.row = self._table.row(self.name, pid=os.getpid())
        code = 0
        try:
            with _StartupBeats(self.row, self.beat_interval_s):
                self.setup()
                self.warm_up()
                _test_slow_warm_up(self)
            # Everything set-up allocated (imports, numba dispatchers, tables) lives as long as the process:
            # out of the collector's reach, a full collection no longer walks it (a pause of ~100 ms in compute).
            gc.freeze()
            self.row.set_state(RUNNING)
            self.beat(force=True)
            _test_hang_after_ready(self)
            self.run()
        except KeyboardInterrupt:
            pass
        except Exception:
            self.log.exception("actor %s failed", self.name)
            code = 1
        finally:
            try:
                self.teardown()
            except Exception:
                self.log.exception("teardown of %s failed", self.name)
            if self.row is not None:
                self.row.set_state(STOPPED)
        return code


class _StartupBeats:
    """Beat from a thread while the main thread sets up; stopped (joined) on exit, before RUNNING."""

    def __init__(self, row, interval_s: float):
        self._row = row
        self._interval_s = interval_s
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="startup-beats", daemon=True)

    def _beat(self) -> None:
        while not self._done.wait(self._interval_s):
            self._row.beat()

    def __enter__(self) -> "_StartupBeats":
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._done.set()
        self._thread.join()


def _test_slow_warm_up(actor: Actor) -> None:
    end = time.monotonic() + float(os.environ.get("UNDERTOW_TEST_SLOW_WARMUP_S", "0") or 0)
    while time.monotonic() < end and not actor.stopping:
        time.sleep(0.05)


def _test_hang_after_ready(actor: Actor) -> None:
    if os.environ.get("UNDERTOW_TEST_HANG_AFTER_READY") == "1":
        while not actor.stopping:   # alive, threads and all, but the event loop never beats again
            time.sleep(0.05)


def main(actor: Actor) -> None:
    """Run ``actor`` and exit with its code."""
    sys.exit(actor.start())
