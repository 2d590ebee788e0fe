"""Hypothesis helpers the venue parser fuzz tests share."""
from __future__ import annotations

from hypothesis import strategies as st


def damaged(draw, raw: bytes, intact_weight: int = 2) -> bytes:
    """``raw`` intact, cut short at a random point, or with 1-4 random bytes inserted somewhere.

    ``draw`` is the hypothesis draw of a composite strategy; intact frames weigh ``intact_weight``
    against one each for the two kinds of damage.
    """
    cut = draw(st.sampled_from(["none"] * intact_weight + ["truncate", "garbage"]))
    if cut == "truncate":
        return raw[: draw(st.integers(0, len(raw)))]
    if cut == "garbage":
        i = draw(st.integers(0, len(raw)))
        return raw[:i] + draw(st.binary(min_size=1, max_size=4)) + raw[i:]
    return raw
