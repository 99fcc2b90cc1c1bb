"""Load shapes and pass/fail gates, as pure functions."""

from __future__ import annotations

import pytest

from lookalike.loadtest.shapes import SHAPES, users_at
from lookalike.loadtest.thresholds import Thresholds, violations


def test_every_shape_stays_within_peak_and_ends_on_time():
    for shape in SHAPES:
        counts = [users_at(shape, t, 10, 60) for t in range(60)]
        assert all(1 <= count <= 10 for count in counts), shape
        assert users_at(shape, 60, 10, 60) is None


def test_shapes_have_their_form():
    ramp = [users_at("ramp", t, 10, 60) for t in range(60)]
    assert ramp == sorted(ramp) and ramp[0] == 1 and ramp[-1] == 10
    steps = [users_at("steps", t, 10, 70) for t in range(70)]
    assert steps[:50] == sorted(steps[:50]) and sorted(set(steps[:50])) == [2, 4, 6, 8, 10]
    assert steps[50:60] == [6] * 10 and steps[60:] == [2] * 10  # then down again
    spike = [users_at("spike", t, 10, 50) for t in range(50)]
    assert spike[:20] == [2] * 20 and spike[20:30] == [10] * 10 and spike[30:] == [2] * 20
    assert {users_at("soak", t, 7, 30) for t in range(30)} == {7}
    with pytest.raises(ValueError, match="unknown shape"):
        users_at("sine", 0, 1, 10)


def test_thresholds_name_what_broke():
    limits = Thresholds(max_fail_ratio=0.01, max_p95_ms=1000, min_rps=5)
    assert violations(limits, 0.0, 900, 6.0, 100) == []
    broken = violations(limits, 0.05, 1500, 2.0, 100)
    assert len(broken) == 3
    assert (
        "failure ratio 5.00% > 1.00%" in broken[0] and "p95 latency 1500 ms" in broken[1] and "2.00 req/s" in broken[2]
    )
    assert violations(limits, 0.0, 0.0, 10.0, 0) == ["no request was made"]
