"""``undertow top``: a live terminal dashboard (rich) over the state table, the actor table and the bus.

:func:`render` builds the screen from a :class:`~engine.bot.market.MarketView`,
an actor-table snapshot and the latest signals, so a test can render a known
state to a string; :func:`run_top` attaches to a running engine and refreshes.
"""
from __future__ import annotations

import time
from collections import deque

from rich.console import Group
from rich.table import Table

from engine.bot import fmt as F
from engine.bot.analytics import asset_funding_pct

__all__ = ["render", "run_top"]


def _venues_table(market, actors: list[dict], now_ns: int, timeout_s: float) -> Table:
    t = Table(title="Venues", expand=True)
    for col in ("venue", "feed", "instruments", "with OI", "lag s", "connected", "liquidations", "saturated",
                "missed ≤"):
        t.add_column(col)
    cov = market.table.coverage()   # compute worker 0 writes each venue's coverage row
    rows = {a["name"]: a for a in actors}
    by_venue: dict[str, list] = {}
    for ins in market.instruments():
        by_venue.setdefault(ins.venue, []).append(ins)
    names = sorted(set(by_venue) | {n.split(":", 1)[1] for n in rows if n.startswith("feed:")})
    for v in names:
        a = rows.get(f"feed:{v}")
        up = a is not None and a["state"] == 2 and a["heartbeat_age_s"] < timeout_s
        ins = by_venue.get(v, [])
        lag = min(((now_ns - i.row["ts"]) / 1e9 for i in ins if i.row["ts"]), default=float("nan"))
        c = cov.get(v)
        if c is None:
            figures = ["n/a"] * 4
        else:
            liqs = (("≥ " if c["capped"] else "") + F.num(c["liquidations"], 0)) if c["liquidations_available"] \
                else "no stream"
            figures = [f"{c['connected_share']:.0%}", liqs,
                       f"{c['saturation_share']:.0%}" if c["capped"] else "-", F.num(c["missed_high"], 0)]
        t.add_row(v, "[green]up[/]" if up else "[red]down[/]", str(len(ins)),
                  str(sum(i.row["oi"] > 0 for i in ins)), F.num(lag, 1), *figures)
    return t


def _assets_table(market, oi_then: dict | None, funding_cfg) -> Table:
    t = Table(title="Assets", expand=True)
    for col in ("asset", "price", "score", "level", "risk", "liq 1m L/S", "liq 1h L/S", "OI", "OI Δ", "funding"):
        t.add_column(col)
    for asset in market.assets():
        row = market.asset_row(asset)
        ins = market.instruments(asset)
        if row is None and not ins:
            continue
        price = row["price"] if row and row["price"] else (ins[0].row["price"] if ins else float("nan"))
        oi = sum(i.row["oi_usd"] for i in ins)
        prev = (oi_then or {}).get(asset)
        funding = asset_funding_pct(funding_cfg, ins)     # venues' rates per common interval, not raw quotes
        level = row["level"] if row else "NONE"
        colour = {"CRITICAL": "red", "WARNING": "yellow", "WATCH": "cyan"}.get(level, "white")
        m, h = (row or {}).get("liq_1m"), (row or {}).get("liq_1h")
        liq = lambda s: f"{F.usd(s['long_usd'], 1)}/{F.usd(s['short_usd'], 1)}" if s else F.NA   # noqa: E731
        risk = (row or {}).get("risk")
        t.add_row(asset, F.price(price), F.num(row["score"]) if row else F.NA, f"[{colour}]{level}[/]",
                  F.num(risk) if F.known(risk) else F.NA, liq(m), liq(h), F.usd(oi, 1) if oi else F.NA,
                  F.pct((oi / prev - 1) * 100) if prev and oi else F.NA,
                  f"{funding:+.4f}%" if F.known(funding) else F.NA)
    return t


def _alerts_table(signals) -> Table:
    t = Table(title="Latest alerts (bus)", expand=True)
    for col in ("time UTC", "topic", "detail"):
        t.add_column(col)
    for s in list(signals)[-10:][::-1]:
        kind = type(s).__name__.lower()
        detail = (f"{getattr(s, 'level', '')} score {getattr(s, 'score', 0):.2f}" if hasattr(s, "score") else
                  f"{getattr(s, 'side', '')} {F.usd(getattr(s, 'notional_usd', float('nan')))} {s.venue}"
                  if hasattr(s, "notional_usd") else getattr(s, "regime", ""))
        ts = (s.ts_published or s.ts_computed or time.time_ns()) / 1e9
        t.add_row(F.hms(ts), f"{kind}.{s.asset}", detail)
    return t


def render(market, actors: list[dict], signals, now_ns: int | None = None, timeout_s: float = 3.0,
           oi_then: dict | None = None, funding_cfg=None) -> Group:
    """The whole screen for one refresh (``funding_cfg``: ``detectors.funding``, the default config's if None)."""
    now_ns = now_ns or time.time_ns()
    if funding_cfg is None:
        from engine.config import Config
        funding_cfg = Config().detectors.funding
    return Group(_venues_table(market, actors, now_ns, timeout_s), _assets_table(market, oi_then, funding_cfg),
                 _alerts_table(signals))


def run_top(cfg, refresh_s: float = 1.0, duration_s: float | None = None) -> int:
    """Attach to the engine of ``cfg`` and redraw until Ctrl-C (or ``duration_s``)."""
    from rich.live import Live

    from engine.actor_table import ActorTable, actor_table_segment
    from engine.bot.market import MarketView
    from engine.bus import Subscriber
    from engine.instruments import Registry, registry_segment
    from engine.state import StateTable

    ns = cfg.engine.namespace
    try:
        registry = Registry.attach(registry_segment(ns))
        table = StateTable.attach(ns)
    except FileNotFoundError:
        print(f"undertow top: no engine running in namespace {ns!r}")
        return 1
    actors = ActorTable.open(actor_table_segment(ns))
    market = MarketView(registry, table)
    from engine.cli import resolve_bus_endpoint
    sub = Subscriber(resolve_bus_endpoint(None, None), [f"{k}." for k in ("cascade", "liquidation", "volatility")])
    signals: deque = deque(maxlen=50)
    oi_hist: deque = deque(maxlen=3600)
    deadline = None if duration_s is None else time.monotonic() + duration_s
    timeout = cfg.supervisor.heartbeat_timeout_ms / 1000
    try:
        fcfg = cfg.detectors.funding
        with Live(render(market, actors.snapshot(), signals, timeout_s=timeout, funding_cfg=fcfg),
                  refresh_per_second=4) as live:
            while deadline is None or time.monotonic() < deadline:
                end = time.monotonic() + refresh_s
                while time.monotonic() < end:
                    msg = sub.recv(timeout_ms=50)
                    if msg is not None:
                        signals.append(msg.signal)
                now = time.monotonic()
                oi_hist.append((now, {a: sum(i.row["oi_usd"] for i in market.instruments(a)) for a in market.assets()}))
                then = next((v for t, v in oi_hist if t >= now - 900), None)
                live.update(render(market, actors.snapshot(), signals, timeout_s=timeout, oi_then=then, funding_cfg=fcfg))
    except KeyboardInterrupt:
        pass
    finally:
        sub.close()
    return 0
