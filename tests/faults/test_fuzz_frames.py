"""Fault 6: fuzzed frames through all six venue parsers -> zero crashes, every frame counted, no bad record.

The corpus is what the simulator really sends for each venue (its synthetic
market rendered through the venue's protocol module, cascades included);
each fuzzed frame is one of those, mutated by a seeded choice of: truncation,
garbled bytes, invalid UTF-8, a huge frame, a value of the wrong type, an
unknown event name, empty / random bytes.
"""
from __future__ import annotations

import functools
import inspect
import json
import math
import time
from collections import Counter

import pytest

from engine import venues
from engine.simulator.runner import render_session
from engine.venues import Outcome

from .harness import figure, replay_hint, rng

SIM_SYMBOLS = ["BTCUSDT", "ETHUSDT"]
WRONG_VALUES = [None, True, "x", "", "NaN", "-1", "1e999", -1, 0, 1e308, [], {}, [[]], {"a": 1}, "\u0000"]
MUTATIONS = ("truncate", "garble", "non_utf8", "huge", "wrong_type", "unknown_event", "empty", "random_bytes")


def corpus(name: str, steps: int = 300) -> tuple[list[bytes], list[str]]:
    """Frames the simulator sends for venue ``name`` (every stream of its plan) and the native symbols."""
    _, symbols, rendered = render_session(name, steps, SIM_SYMBOLS, clock_ms=lambda: time.time_ns() // 1_000_000)
    return [raw for _, raw in rendered], symbols


def _json_paths(obj, path=()):
    """Every (path) to a value inside decoded JSON."""
    yield path
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _json_paths(v, path + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj[:4]):
            yield from _json_paths(v, path + (i,))


def _set(obj, path, value):
    if not path:
        return value
    cur = obj
    for p in path[:-1]:
        cur = cur[p]
    cur[path[-1]] = value
    return obj


def mutate(raw: bytes, how: str, r) -> bytes:
    """One seeded mutation of a valid frame."""
    if how == "truncate":
        return raw[:r.randrange(len(raw))]
    if how == "garble":
        b = bytearray(raw)
        for _ in range(r.randint(1, 8)):
            b[r.randrange(len(b))] = r.randrange(256)
        return bytes(b)
    if how == "non_utf8":
        i = r.randrange(len(raw))
        return raw[:i] + r.choice([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80"]) + raw[i:]
    if how == "huge":
        i = r.randrange(1, len(raw))
        return raw[:i] + b" " * r.choice([1 << 16, 1 << 20]) + raw[i:] if r.random() < 0.5 else raw * 200
    if how in ("wrong_type", "unknown_event"):
        try:
            obj = json.loads(raw)
        except ValueError:
            return raw
        paths = list(_json_paths(obj))
        if how == "unknown_event":
            keys = [p for p in paths if p and isinstance(p[-1], str) and p[-1] in
                    ("e", "topic", "channel", "event", "op", "action", "type", "arg", "instType", "stream")]
            path = r.choice(keys or paths[1:] or [()])
            value = r.choice(["fooEvent", "", "kline_1m", 12, None])
        else:
            path = r.choice(paths[1:] or [()])
            value = r.choice(WRONG_VALUES)
        return json.dumps(_set(obj, path, value)).encode()
    if how == "empty":
        return r.choice([b"", b" ", b"{}", b"[]", b"null", b"0", b'""'])
    return bytes(r.randrange(256) for _ in range(r.randint(1, 64)))


def _record_is_sane(rec: tuple) -> bool:
    """Finite numbers; quantities and notionals never negative."""
    nums = rec[7:]
    return all(isinstance(x, (int, float)) and math.isfinite(x) for x in nums) and rec[8] >= 0.0


def fuzz(name: str, n: int) -> dict:
    r = rng(f"fuzz/{name}")
    frames, symbols = corpus(name)
    ids = {s: i for i, s in enumerate(symbols)}
    vm = venues.load(name)
    kw = {"contract_sizes": {s: 1.0 for s in symbols}} if "contract_sizes" in inspect.signature(vm.Parser).parameters else {}
    parser = vm.Parser(ids.get, **kw)
    outcomes: Counter = Counter()
    by_mutation: Counter = Counter()
    crashes: list[str] = []
    insane: list[str] = []
    out: list = []
    t0 = time.perf_counter()
    for i in range(n):
        how = MUTATIONS[i % len(MUTATIONS)]
        bad = mutate(r.choice(frames), how, r)
        try:
            outcome, _ = parser.parse(bad, 1_700_000_000_000_000_000, out)
        except Exception as exc:   # noqa: BLE001 - any exception out of a parser is the failure under test
            crashes.append(f"{how}: {type(exc).__name__}: {exc} <- {bad[:120]!r}")
            out.clear()
            continue
        outcomes[Outcome(outcome).name] += 1
        by_mutation[how] += 1
        insane += [f"{how}: {rec} <- {bad[:160]!r}" for rec in out if not _record_is_sane(rec)]
        out.clear()
    return {"frames": n, "crashes": crashes, "insane": insane, "outcomes": dict(outcomes),
            "counted": sum(outcomes.values()), "seconds": time.perf_counter() - t0, "by_mutation": dict(by_mutation)}


@functools.lru_cache(maxsize=None)
def fuzz_once(name: str, n: int) -> dict:
    """:func:`fuzz`, run once per venue and count (two tests read the same run)."""
    return fuzz(name, n)


def _check(name: str, n: int) -> None:
    res = fuzz_once(name, n)
    hint = replay_hint(f"test_fuzzed_frames/{name}")
    assert res["crashes"] == [], f"{len(res['crashes'])} crashes, first: {res['crashes'][:3]} ({hint})"
    assert res["counted"] == n, hint
    assert res["outcomes"].get("MALFORMED", 0) > n // 4, (res["outcomes"], hint)   # the fuzz did bite
    figure("fuzzed_frames", f"fuzz/{name}", venue=name, frames=n, crashes=0, outcomes=res["outcomes"],
           insane_records=len(res["insane"]), frames_per_s=round(n / res["seconds"]))


def _check_records(name: str, n: int) -> None:
    res = fuzz_once(name, n)
    assert res["insane"] == [], (f"{len(res['insane'])} records with bad numbers, first: {res['insane'][:2]} "
                                 f"({replay_hint('test_fuzzed_frames/' + name)})")


# Found by this fuzz: a huge but finite number (1e308) in a price or size field passed the parsers'
# checks and price*qty overflowed to inf in the record's notional; every parser now bounds its inputs.
DEFAULT_N = 10_000 // len(venues.VENUES) + 1
HEAVY_N = 1_000_000 // len(venues.VENUES) + 1
RECORD_PARAMS = list(venues.VENUES)


@pytest.mark.fault
@pytest.mark.parametrize("name", list(venues.VENUES))
def test_fuzzed_frames_never_crash_a_parser(name):
    _check(name, DEFAULT_N)


@pytest.mark.fault
@pytest.mark.parametrize("name", RECORD_PARAMS)
def test_fuzzed_frames_never_yield_a_non_finite_record(name):
    _check_records(name, DEFAULT_N)


@pytest.mark.fault_heavy
@pytest.mark.parametrize("name", list(venues.VENUES))
def test_fuzzed_frames_never_crash_a_parser_heavy(name):
    _check(name, HEAVY_N)
