"""Running `undertow` commands from tests: the repository root and the command line and environment they use."""
from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "engine.cli"]


def cli_env(**extra: str) -> dict:
    """This process's environment, unbuffered (output arrives line by line), plus ``extra``."""
    return {**os.environ, "PYTHONUNBUFFERED": "1", **extra}
