"""Number and time formatting for bot replies (HTML parse mode)."""
from __future__ import annotations

import html
import math
from datetime import datetime, timedelta, timezone

__all__ = ["NA", "esc", "b", "usd", "num", "pct", "signed", "footer", "hms", "known", "countdown", "span"]

NA = "n/a"
SGT = timezone(timedelta(hours=8))


def known(x) -> bool:
    return x is not None and isinstance(x, (int, float)) and math.isfinite(x)


def esc(text) -> str:
    return html.escape(str(text), quote=False)


def b(text) -> str:
    return f"<b>{text}</b>"


def usd(x, digits: int = 2) -> str:
    """$1.23B / $4.56M / $7.89K / $123.45, sign before the $ ('-$817.00', not '$-817.00')."""
    if not known(x):
        return NA
    sign = "-" if x < 0 else ""
    a = abs(x)
    for div, suf in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if a >= div:
            return f"{sign}${a / div:,.{digits}f}{suf}"
    return f"{sign}${a:,.{digits}f}"


def num(x, digits: int = 2) -> str:
    return f"{x:,.{digits}f}" if known(x) else NA


def signed(x, digits: int = 2) -> str:
    return f"{x:+,.{digits}f}" if known(x) else NA


def pct(x, digits: int = 2) -> str:
    return f"{x:+.{digits}f}%" if known(x) else NA


def price(x) -> str:
    if not known(x):
        return NA
    digits = 2 if abs(x) >= 100 else 4 if abs(x) >= 1 else 6
    return f"${x:,.{digits}f}"


def hms(ts_s: float, tz=timezone.utc) -> str:
    return datetime.fromtimestamp(ts_s, tz).strftime("%H:%M:%S")


def footer(now_s: float) -> str:
    """'🕐 HH:MM:SS UTC / HH:MM:SS SGT' from real time zones (the date rolls correctly)."""
    return f"🕐 {hms(now_s)} UTC / {hms(now_s, SGT)} SGT"


def countdown(seconds: float) -> str:
    if not known(seconds) or seconds < 0:
        return NA
    h, rem = divmod(int(seconds), 3600)
    return f"{h}h {rem // 60}m"


def span(minutes: float) -> str:
    """'40s', '45m', '2.5m', '6h', '4d 0h' (at most three significant digits below a day)."""
    if minutes < 1:
        return f"{minutes * 60:.0f}s"
    if minutes < 60:
        return f"{minutes:.3g}m"
    if minutes < 1440:
        return f"{minutes / 60:.3g}h"
    d, rem = divmod(int(minutes), 1440)
    return f"{d}d {rem // 60}h"
