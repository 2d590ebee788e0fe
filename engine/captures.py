"""Readers for recorded exchange captures (cryptofeed raw text, hftbacktest gzip).

Every reader yields :class:`CaptureFrame` in file order:

* ``direction`` is ``"recv"`` (frame from the exchange), ``"sent"`` (client
  frame), ``"rest"`` (REST response body) or ``"open"`` (connection opened);
* ``ts_ns`` is the recorder's local clock in ns since the epoch;
* ``url`` is the socket or REST URL where the format records one;
* ``payload`` is the frame's bytes exactly as recorded (empty for ``"open"``).

Formats:

* ``cryptofeed``: ``<ws-url> <-> <ts>``, ``<ws-url> <- <ts>: <json>``,
  ``<ts>: <json>``, ``<rest-url> -> <ts>: <json>``; ``ts`` float seconds.
  The recorder's ``configuration: <json>`` line is metadata and is skipped.
* ``hftbacktest``: ``<local ts> <raw JSON>``; ns in ``*.gz``, µs in ``*.dat.gz``.
  A REST depth snapshot the recorder put into the stream is returned as ``"rest"``.
* ``jsonl``: one raw JSON frame per line and no local clock (Bybit's historical
  order-book dumps); ``ts_ns`` is 0.
"""
from __future__ import annotations

import gzip
import os
from pathlib import Path
from typing import IO, Iterator, NamedTuple

__all__ = ["CaptureFrame", "iter_capture", "detect_format", "CaptureFormatError"]


class CaptureFrame(NamedTuple):
    ts_ns: int
    direction: str
    url: str | None
    payload: bytes


class CaptureFormatError(ValueError):
    """A capture file is of no known format, or a line does not parse."""


def _open(path: Path) -> IO[bytes]:
    with open(path, "rb") as f:
        gz = f.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rb") if gz else open(path, "rb")


def _first_line(path: Path) -> bytes:
    with _open(path) as f:
        for line in f:
            if line.strip():
                return line
    return b""


def detect_format(path: str | os.PathLike) -> str:
    """Return ``"cryptofeed"``, ``"hftbacktest"`` or ``"jsonl"`` for the capture at ``path``."""
    p = Path(path)
    line = _first_line(p)
    head, _, rest = line.partition(b" ")
    if head.isdigit() and rest.lstrip().startswith((b"{", b"[")):
        return "hftbacktest"
    if line.lstrip().startswith(b"{"):
        return "jsonl"
    if b"://" in head or head.rstrip(b":").replace(b".", b"", 1).isdigit():
        return "cryptofeed"
    raise CaptureFormatError(f"{p}: unknown capture format (first line {line[:60]!r})")


def _seconds_to_ns(text: bytes) -> int:
    whole, _, frac = text.partition(b".")
    frac = (frac + b"000000000")[:9]
    return int(whole) * 1_000_000_000 + int(frac)


def _iter_cryptofeed(path: Path) -> Iterator[CaptureFrame]:
    with _open(path) as f:
        for n, raw in enumerate(f, 1):
            line = raw.rstrip(b"\r\n")
            if not line or line.startswith(b"configuration: "):  # recorder metadata, not a frame
                continue
            try:
                if line[:1].isdigit():  # "<ts>: <json>"
                    ts, _, body = line.partition(b": ")
                    yield CaptureFrame(_seconds_to_ns(ts), "recv", None, body)
                    continue
                url, _, rest = line.partition(b" ")
                arrow, _, rest = rest.partition(b" ")
                if arrow == b"<->":
                    yield CaptureFrame(_seconds_to_ns(rest.strip()), "open", url.decode(), b"")
                    continue
                ts, _, body = rest.partition(b": ")
                direction = {b"<-": "sent", b"->": "rest"}[arrow]
                yield CaptureFrame(_seconds_to_ns(ts), direction, url.decode(), body)
            except (ValueError, KeyError, UnicodeDecodeError):
                raise CaptureFormatError(f"{path}:{n}: not a cryptofeed capture line: {line[:80]!r}") from None


def _iter_hftbacktest(path: Path) -> Iterator[CaptureFrame]:
    scale = 1_000 if path.name.endswith(".dat.gz") or path.name.endswith(".dat") else 1
    with _open(path) as f:
        for n, raw in enumerate(f, 1):
            line = raw.rstrip(b"\r\n")
            if not line:
                continue
            ts, _, body = line.partition(b" ")
            if not ts.isdigit():
                raise CaptureFormatError(f"{path}:{n}: not an hftbacktest capture line: {line[:80]!r}")
            # the recorder splices the REST depth snapshot it fetched into the stream
            direction = "rest" if body.startswith(b'{"lastUpdateId"') else "recv"
            yield CaptureFrame(int(ts) * scale, direction, None, body)


def _iter_jsonl(path: Path) -> Iterator[CaptureFrame]:
    with _open(path) as f:
        for raw in f:
            line = raw.strip()
            if line:
                yield CaptureFrame(0, "recv", None, line)


_READERS = {"cryptofeed": _iter_cryptofeed, "hftbacktest": _iter_hftbacktest, "jsonl": _iter_jsonl}


def iter_capture(path: str | os.PathLike) -> Iterator[CaptureFrame]:
    """Yield the frames of the capture at ``path`` (gzip is read transparently)."""
    p = Path(path)
    return _READERS[detect_format(p)](p)
