"""Load shapes by name, as pure functions of time: users wanted at second `t` of a `duration`-second test.

ramp   0 -> peak linearly over the whole test
steps  peak/5, 2*peak/5, ... peak, then back down to 3*peak/5 and peak/5: seven equal steps (the
       autoscaling signal's proof: up to the knee, then does the signal fall back? lookalike.loadtest.knee)
spike  peak/5 for 40 %, peak for 20 %, back to peak/5 for the rest
soak   peak, constant, for the whole test
"""

from __future__ import annotations

import math

SHAPES = ("ramp", "steps", "spike", "soak")
STEPS = (1, 2, 3, 4, 5, 3, 1)  # fifths of peak, one step each


def users_at(shape: str, t: float, peak: int, duration: float) -> int | None:
    """Users wanted at time `t`, or None when the test is over."""
    if t >= duration:
        return None
    peak = max(1, peak)
    low = max(1, peak // 5)
    if shape == "ramp":
        return max(1, math.ceil(peak * (t + 1) / duration))
    if shape == "steps":
        step = min(len(STEPS) - 1, int(len(STEPS) * t / duration))
        return max(1, round(peak * STEPS[step] / 5))
    if shape == "spike":
        return peak if 0.4 * duration <= t < 0.6 * duration else low
    if shape == "soak":
        return peak
    raise ValueError(f"unknown shape {shape!r}; choose one of {', '.join(SHAPES)}")
