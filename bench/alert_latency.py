"""Alert latency: signal on the bus -> alert router -> SQLite outbox -> delivery worker -> python-telegram-bot
-> HTTP -> the local Bot API (tests/fakes/botapi.py) accepting sendMessage.

Publishes ``--n`` whale liquidations (distinct assets, so none is suppressed)
on a ZeroMQ bus, ``--interval`` seconds apart, to ``--chats`` chats; a
subscriber in this process routes them exactly as the alert actor does. For
each message it measures ``fake Bot API received sendMessage - signal
published`` (one clock: both ends are in this process) and prints p50/p99/max
in ms, then one JSON line::

    {"p50_ms":..,"p99_ms":..,"max_ms":..,"count":..,"chats":..}

    python bench/alert_latency.py --n 300 --interval 0.02
"""
from __future__ import annotations

import argparse
import io
import json
import sys
import tempfile
import threading
import time
from pathlib import Path

import msgspec
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.alerts.delivery import Delivery, DeliverySettings  # noqa: E402
from engine.alerts.outbox import Outbox  # noqa: E402
from engine.alerts.router import AlertRouter  # noqa: E402
from engine.alerts.sinks import TelegramSender  # noqa: E402
from engine.bus import Publisher, Subscriber  # noqa: E402
from engine.config import Config  # noqa: E402
from engine.signals import Liquidation  # noqa: E402
from tests.fakes.botapi import FakeBotAPI  # noqa: E402

TOKEN = "1000:bench-token"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--interval", type=float, default=0.02, help="seconds between signals")
    ap.add_argument("--chats", type=int, default=1)
    args = ap.parse_args(argv)

    tmp = Path(tempfile.mkdtemp(prefix="alert-bench-"))
    endpoint = f"ipc://{tmp}/bus.sock"
    published: dict[str, float] = {}
    with FakeBotAPI(token=TOKEN) as api:
        ob = Outbox(tmp / "outbox.sqlite3")
        settings = DeliverySettings(per_chat_per_s=1000, group_per_min=1e6, global_per_s=1e6)
        delivery = Delivery(ob.path, {"telegram": TelegramSender(TOKEN, api.base_url)}, settings).start()
        cfg = msgspec.structs.replace(Config().alerts, max_per_hour=0)   # no budget: every alert is sent
        router = AlertRouter(cfg, ob, list(range(1, args.chats + 1)), console_out=io.StringIO(),
                             on_enqueue=delivery.wake)
        pub = Publisher(endpoint, "bench")
        sub = Subscriber(endpoint, ["liquidation."])
        stop = threading.Event()

        def route():
            while not stop.is_set():
                msg = sub.recv(timeout_ms=50)
                if msg is not None:
                    router.handle(msg.signal)

        t = threading.Thread(target=route, daemon=True)
        t.start()
        time.sleep(0.3)   # the subscription settles
        # warm-up: the client's first request also does getMe
        router.handle(Liquidation(asset="WARM", side="long", price=1.0, qty=1.0, notional_usd=1e6, size_class="whale"))
        api.wait_for(lambda: len(api.sent()) >= args.chats, 10)
        for i in range(args.n):
            asset = f"A{i}"
            published[f"A{i}USDT"] = time.monotonic()
            pub.publish(Liquidation(asset=asset, symbol=f"{asset}USDT", side="long", price=100.0, qty=1e4,
                                    notional_usd=1e6, size_class="whale", ts_exchange=time.time_ns()))
            time.sleep(args.interval)
        done = api.wait_for(lambda: len(api.sent()) >= (args.n + 1) * args.chats, 30)
        stop.set()
        t.join(2)
        delivery.stop()
        lat = []
        for m in api.sent():
            sym = m.text.split(" ", 2)[1]
            if sym in published:
                lat.append((m.t_sent - published[sym]) * 1e3)
        pub.close()
        sub.close()
        ob.close()
    a = np.array(lat)
    res = {"p50_ms": round(float(np.percentile(a, 50)), 2), "p99_ms": round(float(np.percentile(a, 99)), 2),
           "max_ms": round(float(a.max()), 2), "count": len(lat), "chats": args.chats, "complete": bool(done)}
    print(f"signal -> sendMessage at the Bot API: p50 {res['p50_ms']} ms, p99 {res['p99_ms']} ms, "
          f"max {res['max_ms']} ms over {len(lat)} messages", file=sys.stderr)
    print(json.dumps(res))
    return 0 if done else 1


if __name__ == "__main__":
    raise SystemExit(main())
