"""Python values written as TOML, for the configs tests hand to the engine."""
from __future__ import annotations

import json
from pathlib import Path


def toml_value(value) -> str:
    """``value`` (str, Path, bool, int, float, list or dict: an inline table) as a TOML value."""
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + " }"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, Path)):
        return json.dumps(str(value))
    if isinstance(value, (int, float)):
        return repr(value)
    raise TypeError(f"no TOML form for {type(value).__name__}: {value!r}")


def toml_table(name: str, **keys) -> str:
    """A ``[name]`` table with ``keys`` in the order given."""
    return "".join([f"[{name}]\n", *(f"{k} = {toml_value(v)}\n" for k, v in keys.items())])
