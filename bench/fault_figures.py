"""Run the fault-injection tests and print the figure each one measured.

    python bench/fault_figures.py              # the default `fault` subset (~2 minutes)
    python bench/fault_figures.py --heavy      # the fault_heavy counts (1,000 disconnects, 10^6 frames,
                                               # 150 actor kills, 80 Telegram faults, 40+ book faults a
                                               # venue, ...: about an hour)
    python bench/fault_figures.py --seed 11    # another seed (every test replays exactly from it)

Each test appends its figure as a JSON line to ``$UNDERTOW_FAULT_FIGURES``
(tests/faults/harness.py); this script points that at a temporary file,
runs pytest, then prints one line per figure.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SKIP = {"figure", "test", "seed"}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--heavy", action="store_true", help="run the fault_heavy variants instead")
    ap.add_argument("--seed", type=int, help="UNDERTOW_FAULT_SEED (default 7)")
    ap.add_argument("-k", help="pytest -k expression")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "figures.jsonl"
        env = {**os.environ, "UNDERTOW_FAULT_FIGURES": str(out)}
        if args.seed is not None:
            env["UNDERTOW_FAULT_SEED"] = str(args.seed)
        cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/faults",
               "-m", "fault_heavy" if args.heavy else "fault"]
        if args.k:
            cmd += ["-k", args.k]
        rc = subprocess.run(cmd, cwd=ROOT, env=env).returncode
        figures = [json.loads(line) for line in out.read_text().splitlines()] if out.exists() else []
    print(f"\n{len(figures)} figures (seed {figures[0]['seed'] if figures else '-'}):")
    for f in figures:
        values = ", ".join(f"{k}={v}" for k, v in sorted(f.items()) if k not in SKIP)
        print(f"  {f['figure']:<32} {f['test']:<28} {values}")
    return rc


if __name__ == "__main__":
    sys.exit(main())
