"""Asset profiles and the dynamic thresholds derived from them.

A profile describes an asset as the engine sees it now: 24 h USD volume
(venue REST tickers at start, then the traded USD the kernel counts), realized
volatility, typical and high-quantile trade and liquidation sizes (from the
kernel's sample rings), open interest, a liquidity tier, the trading session
and the session / volatility multipliers. :func:`derive` turns it into every
threshold the detectors use; where the asset's own history is too short the
configured fallback (the existing bot's numbers) is used and the profile's
``fallbacks`` list says which and why (also logged once per asset and reason).

Single-liquidation threshold::

    single = max(floor, liquidation_quantile of the asset's own liquidation sizes
                        * session multiplier * volatility multiplier)     (>= min_liquidations samples)
             else detectors.liquidations.single_usd[asset]               (fallback, as configured)

and large / whale / institutional are ``large_multiple`` / ``whale_multiple``
/ ``institutional_multiple`` times ``single``. The session is the UTC weekend
(Saturday, Sunday) or else Asian / European / US by hour; the volatility
multiplier is ``realized vol / vol_reference`` clipped to its bounds.

:class:`ProfileService` keeps the profiles of one compute worker, refreshes
them on a schedule (each carries its review time) and writes a JSON snapshot
into ``engine.run_dir`` that ``undertow thresholds`` reads.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from pathlib import Path
from typing import Any, Callable

import msgspec
import numpy as np

__all__ = ["SESSIONS", "AssetProfile", "Thresholds", "session_at", "tier_of", "build_profile", "derive",
           "size_class", "ProfileService", "snapshot_path", "snapshot_paths", "read_snapshots", "fetch_rest_volumes",
           "thresholds_report"]

log = logging.getLogger("undertow.profiles")

SESSIONS = ("asian", "european", "us", "weekend")
TIERS = ("small", "mid", "large", "major")
STREAM_ADV_MIN_S = 600.0     # traded USD must cover this long before it replaces the REST 24 h volume
NS = 1_000_000_000


class AssetProfile(msgspec.Struct, kw_only=True):
    """What the engine knows about one asset now (USD unless named otherwise)."""

    asset: str
    adv_usd: float = 0.0              # 24 h traded USD (0: unknown)
    adv_source: str = "none"          # rest | stream | none
    realized_vol: float = 0.0         # annualised, the longest volatility window
    trade_usd_p50: float = 0.0
    trade_usd_high: float = 0.0       # whale_trade_quantile of its trades
    trade_samples: int = 0
    liq_usd_p50: float = 0.0
    liq_usd_high: float = 0.0         # liquidation_quantile of its liquidations
    liq_samples: int = 0
    oi_usd: float = 0.0
    tier: str = "unknown"             # small | mid | large | major by 24 h volume
    session: str = "european"
    session_multiplier: float = 1.0
    vol_multiplier: float = 1.0
    computed_ns: int = 0
    review_ns: int = 0                # next scheduled refresh
    fallbacks: list[str] = []         # what fell back to configuration, and why


class Thresholds(msgspec.Struct, kw_only=True):
    """Every threshold derived from a profile."""

    single_usd: float
    single_source: str                # profile | config
    large_usd: float
    whale_usd: float
    institutional_usd: float
    whale_trade_usd: float
    whale_trade_source: str
    cascade_min_count: int
    cascade_window_s: float
    cascade_levels: list[float]
    oi_change_pct: float
    oi_window_s: float
    oi_min_usd: float
    oi_min_venues: int
    volume_spike_pct: dict[str, float]


def _keyed(table: dict[str, float], asset: str) -> float:
    return float(table.get(asset, table["*"]))


def session_at(ts_ns: int, starts_utc: list[int]) -> str:
    """Trading session at ``ts_ns``: "weekend" on a UTC Saturday or Sunday, else by the hour of day."""
    t = dt.datetime.fromtimestamp(ts_ns / NS, dt.timezone.utc)
    if t.weekday() >= 5:
        return "weekend"
    eu, us, asia = starts_utc
    if eu <= t.hour < us:
        return "european"
    if us <= t.hour < asia:
        return "us"
    return "asian"


def tier_of(adv_usd: float, bounds: list[float]) -> str:
    """Liquidity tier of a 24 h USD volume ("unknown" when there is none)."""
    if adv_usd <= 0:
        return "unknown"
    return TIERS[sum(adv_usd >= b for b in bounds)]


def _quantile(x: np.ndarray, q: float) -> float:
    x = x[np.isfinite(x) & (x > 0)]
    return float(np.quantile(x, q)) if len(x) else 0.0


def build_profile(asset: str, cfg, now_ns: int, *, adv_usd: float = 0.0, adv_source: str = "none",
                  realized_vol: float = 0.0, trade_sizes: np.ndarray | None = None,
                  liq_sizes: np.ndarray | None = None, oi_usd: float = 0.0) -> AssetProfile:
    """Profile of ``asset`` from what is known (anything missing is left at its neutral value)."""
    pc = cfg.profiles
    trades = np.zeros(0) if trade_sizes is None else np.asarray(trade_sizes, dtype=np.float64)
    liqs = np.zeros(0) if liq_sizes is None else np.asarray(liq_sizes, dtype=np.float64)
    session = session_at(now_ns, pc.session_starts_utc)
    lo, hi = pc.vol_multiplier_bounds
    vol_mult = min(max(realized_vol / pc.vol_reference, lo), hi) if realized_vol > 0 else 1.0
    fallbacks = []
    if adv_usd <= 0:
        fallbacks.append("24 h volume unknown (no REST tickers, too little stream): tier unknown")
    if realized_vol <= 0:
        fallbacks.append("realized volatility unknown: volatility multiplier 1")
    return AssetProfile(
        asset=asset, adv_usd=float(adv_usd), adv_source=adv_source if adv_usd > 0 else "none",
        realized_vol=float(realized_vol), trade_usd_p50=_quantile(trades, 0.5),
        trade_usd_high=_quantile(trades, pc.whale_trade_quantile), trade_samples=len(trades),
        liq_usd_p50=_quantile(liqs, 0.5), liq_usd_high=_quantile(liqs, pc.liquidation_quantile),
        liq_samples=len(liqs), oi_usd=float(oi_usd), tier=tier_of(adv_usd, pc.tier_bounds_usd),
        session=session, session_multiplier=float(pc.session_multipliers[session]), vol_multiplier=float(vol_mult),
        computed_ns=now_ns, review_ns=now_ns + int(pc.refresh_interval_s * NS), fallbacks=fallbacks)


def derive(profile: AssetProfile, cfg) -> Thresholds:
    """Every threshold of ``profile``'s asset; notes each configured fallback in ``profile.fallbacks``."""
    pc, det = cfg.profiles, cfg.detectors
    liq = det.liquidations
    a = profile.asset
    if profile.liq_samples >= pc.min_liquidations and profile.liq_usd_high > 0:
        single, source = max(_keyed(pc.single_floor_usd, a),
                             profile.liq_usd_high * profile.session_multiplier * profile.vol_multiplier), "profile"
    else:
        single, source = _keyed(liq.single_usd, a), "config"
        profile.fallbacks.append(f"single liquidation: {profile.liq_samples} < {pc.min_liquidations} "
                                 f"liquidations seen, configured ${single:,.0f}")
    if profile.trade_samples >= pc.min_trades and profile.trade_usd_high > 0:
        whale_trade, wt_source = profile.trade_usd_high, "profile"
    else:
        whale_trade, wt_source = single * liq.whale_multiple, "config"
        profile.fallbacks.append(f"whale trade: {profile.trade_samples} < {pc.min_trades} trades seen, "
                                 f"whale_multiple x single")
    return Thresholds(
        single_usd=single, single_source=source, large_usd=single * liq.large_multiple,
        whale_usd=single * liq.whale_multiple, institutional_usd=single * liq.institutional_multiple,
        whale_trade_usd=whale_trade, whale_trade_source=wt_source,
        cascade_min_count=det.cascade.min_count, cascade_window_s=det.cascade.window_s,
        cascade_levels=list(det.cascade.levels), oi_change_pct=_keyed(pc.oi_change_pct, a),
        oi_window_s=pc.oi_window_s, oi_min_usd=pc.oi_min_usd, oi_min_venues=pc.oi_min_venues,
        volume_spike_pct=dict(pc.volume_spike_pct))


def size_class(usd: float, th: Thresholds) -> str:
    """retail / large / whale / institutional of one liquidation against the asset's thresholds."""
    if usd >= th.institutional_usd:
        return "institutional"
    if usd >= th.whale_usd:
        return "whale"
    if usd >= th.large_usd:
        return "large"
    return "retail"


class ProfileService:
    """Profiles and thresholds of the assets one compute worker owns, refreshed on a schedule.

    ``runner`` is the worker's :class:`engine.kernels.BatchRunner` (sample rings, rows);
    ``clock`` returns wall time in ns (tests pass their own).
    """

    def __init__(self, cfg, runner, worker: int = 0, clock: Callable[[], int] = time.time_ns):
        self.cfg = cfg
        self.runner = runner
        self.worker = worker
        self.clock = clock
        self.profiles: dict[str, AssetProfile] = {}
        self.thresholds: dict[str, Thresholds] = {}
        self.rest_adv: dict[str, float] = {}
        self._adv_start: dict[int, tuple[int, float]] = {}   # asset id -> (ns, traded USD) when first seen
        self._logged: set[tuple[str, str]] = set()
        self.next_refresh_ns = 0

    def bootstrap(self, volumes: dict[str, float]) -> None:
        """24 h USD volume per asset (summed across venues) from the venues' REST tickers."""
        self.rest_adv.update({a: float(v) for a, v in volumes.items() if v > 0})
        self.next_refresh_ns = 0

    def due(self) -> bool:
        """Whether the scheduled refresh time has come."""
        return self.clock() >= self.next_refresh_ns

    def refresh(self, extra: Callable[[str], dict[str, Any]] | None = None) -> list[str]:
        """Recompute the profile and thresholds of every owned asset; install the thresholds in the kernel.

        Return the assets refreshed.
        """
        from .kernels import columns as C   # the kernel package imports numba: not needed by the CLI path
        r, now = self.runner, self.clock()
        nvol = len(r.vol.windows)
        done = []
        for a in np.flatnonzero(r.owned).tolist():
            name = r.asset_names[a]
            row = r.asset_rows[a]
            adv, src = self._adv(a, name, now)
            rv = float(row[C.RV + nvol - 1]) if row[C.RV_OBS] >= 10 else 0.0
            prof = build_profile(name, self.cfg, now, adv_usd=adv, adv_source=src, realized_vol=rv,
                                 trade_sizes=r.samples.recent(a, 0), liq_sizes=r.samples.recent(a, 1),
                                 oi_usd=float(row[C.OI_USD]))
            th = derive(prof, self.cfg)
            for note in prof.fallbacks:
                key = (name, note.split(":")[0])
                if key not in self._logged:
                    self._logged.add(key)
                    log.info("profile %s: %s", name, note)
            self.profiles[name], self.thresholds[name] = prof, th
            r.set_thresholds(a, th.single_usd, th.whale_usd)
            done.append(name)
        self.next_refresh_ns = now + int(self.cfg.profiles.refresh_interval_s * NS)
        return done

    def _adv(self, a: int, name: str, now: int) -> tuple[float, str]:
        traded = float(self.runner.samples.usd[a])
        start = self._adv_start.setdefault(a, (now, traded))
        span_s = (now - start[0]) / NS
        if span_s >= STREAM_ADV_MIN_S and traded > start[1]:
            return (traded - start[1]) * 86400.0 / span_s, "stream"
        if name in self.rest_adv:
            return self.rest_adv[name], "rest"
        return 0.0, "none"

    def get(self, asset: str) -> Thresholds | None:
        """Thresholds in force for ``asset`` (None before its first refresh)."""
        return self.thresholds.get(asset)

    def snapshot(self, path: Path, detectors: list | None = None) -> Path:
        """Write every profile, its thresholds and the plug-in detectors' thresholds as JSON (atomically)."""
        out = {"written_ns": self.clock(), "worker": self.worker, "assets": {}}
        for name, prof in self.profiles.items():
            det = {}
            for d in detectors or []:
                try:
                    det[d.name] = d.thresholds(name)
                except Exception:  # one detector's bug must not cost the snapshot
                    log.exception("%s.thresholds(%s) failed", d.name, name)
            out["assets"][name] = {"profile": prof, "thresholds": self.thresholds[name],
                                   "detectors": {k: v for k, v in det.items() if v}}
        path = Path(path)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(msgspec.json.encode(out))
        tmp.replace(path)
        return path


def snapshot_paths(cfg) -> list[Path]:
    """The snapshot files compute workers write (one per worker) in ``engine.run_dir``."""
    name = Path(cfg.profiles.snapshot_name)
    return sorted(Path(cfg.engine.run_dir).glob(f"{name.stem}.*{name.suffix}"))


def snapshot_path(cfg, worker: int) -> Path:
    """Where compute worker ``worker`` writes its snapshot."""
    name = Path(cfg.profiles.snapshot_name)
    return Path(cfg.engine.run_dir) / f"{name.stem}.{worker}{name.suffix}"


def read_snapshots(cfg) -> dict[str, dict]:
    """asset -> {"profile", "thresholds", "detectors", "written_ns", "path"} from every readable snapshot."""
    out: dict[str, dict] = {}
    for p in snapshot_paths(cfg):
        try:
            data = msgspec.json.decode(p.read_bytes())
        except (OSError, msgspec.DecodeError) as exc:
            log.warning("profile snapshot %s unreadable: %s", p, exc)
            continue
        for asset, entry in data.get("assets", {}).items():
            out[asset] = {**entry, "written_ns": data.get("written_ns", 0), "path": str(p)}
    return out


def fetch_rest_volumes(cfg, registry, timeout_s: float = 10.0) -> dict[str, float]:
    """24 h USD volume per asset, summed over the instruments the registry holds, from every enabled venue's
    REST tickers. Venues without tickers or whose request fails are skipped with a log line."""
    from .config import VenuesConfig
    from .record import venue_id
    from .rest import RestPoller, WeightBudget
    import importlib

    async def one(name: str) -> dict[str, float]:
        v = getattr(cfg.venues, name)
        module = importlib.import_module(f"engine.venues.{name}")
        if getattr(module, "TICKERS_REQUEST", None) is None:
            return {}
        poller = RestPoller(module, v.rest_url or module.DEFAULT_REST_URL, WeightBudget(v.rest_weight_per_minute),
                            timeout_s=timeout_s)
        try:
            return await poller.tickers() or {}
        finally:
            await poller.aclose()

    async def all_venues() -> dict[str, dict[str, float]]:
        names = [n for n in VenuesConfig.__struct_fields__ if getattr(cfg.venues, n).enabled]
        got = await asyncio.gather(*(one(n) for n in names), return_exceptions=True)
        out = {}
        for n, g in zip(names, got):
            if isinstance(g, BaseException):
                log.warning("profile bootstrap: %s tickers failed: %s", n, g)
            else:
                out[n] = g
        return out

    volumes: dict[str, float] = {}
    for venue, tickers in asyncio.run(all_venues()).items():
        vid = venue_id(venue)
        for symbol, usd in tickers.items():
            iid = registry.lookup(vid, symbol)
            if iid is not None:
                asset = registry.asset_name(registry.get(iid).asset_id)
                volumes[asset] = volumes.get(asset, 0.0) + usd
    return volumes


def thresholds_report(cfg, asset: str, engine_running: bool, now_ns: int | None = None) -> dict:
    """What ``undertow thresholds ASSET`` prints: the profile, every threshold and where they came from.

    From the running engine's snapshot when there is one for ``asset``; otherwise computed from
    the configuration alone (no history: every own-distribution threshold is its fallback).
    """
    asset = asset.upper()
    now_ns = time.time_ns() if now_ns is None else now_ns
    snap = read_snapshots(cfg).get(asset) if engine_running else None
    if snap is not None:
        age = (now_ns - int(snap["written_ns"])) / NS
        return {"asset": asset, "source": f"running engine (snapshot {snap['path']}, {age:.0f} s old)",
                "profile": snap["profile"], "thresholds": snap["thresholds"], "detectors": snap.get("detectors", {})}
    prof = build_profile(asset, cfg, now_ns)
    th = derive(prof, cfg)
    why = "no engine running" if not engine_running else f"the running engine has no profile of {asset} yet"
    return {"asset": asset, "source": f"configuration ({why}): fallbacks only",
            "profile": msgspec.to_builtins(prof), "thresholds": msgspec.to_builtins(th), "detectors": {}}
