"""The step-load proof's arithmetic (lookalike.loadtest.knee, recorder.gauges): steps cut from the
user count, the knee, the threshold verdict. Fast tier, synthetic timelines."""

from __future__ import annotations

import pytest

from lookalike.loadtest import knee
from lookalike.loadtest.recorder import gauges


def timeline(per_step: list[tuple[int, float, float, float]], seconds: float = 10.0):
    """(users, req/s, latency ms, signal) per step -> the recorder's users, requests and scrapes."""
    users, requests, scrapes = [], [], []
    for i, (count, rps, latency, signal) in enumerate(per_step):
        start = i * seconds
        users.append((start, count))
        requests += [(start + j / rps, latency, False) for j in range(int(rps * seconds))]
        scrapes += [(start + t + 0.5, {"lookalike_model_queue_ratio": signal if t >= seconds / 2 else -1.0})
                    for t in range(int(seconds))]  # fmt: skip
    return users, requests, scrapes, len(per_step) * seconds


def test_the_knee_is_where_throughput_stops_growing_and_latency_climbs():
    found = knee.steps(*timeline([(2, 10, 100, 0.05), (4, 19, 110, 0.2), (6, 27, 130, 0.45), (8, 28, 250, 1.3),
                                  (10, 28, 400, 2.5), (6, 27, 140, 0.4), (2, 10, 100, 0.05)]))  # fmt: skip
    assert [step.users for step in found] == [2, 4, 6, 8, 10, 6, 2]
    assert found[1].rps == pytest.approx(19) and found[3].p95_ms == 250
    assert found[3].signals["lookalike_model_queue_ratio"] == pytest.approx(1.3)  # second half only
    assert knee.knee(found) == 3
    judged = knee.verdict(found, "lookalike_model_queue_ratio", 0.5)
    assert judged["crossed_step"] == 3 and judged["crossed_at_or_before_knee"] and judged["fell_back"]
    late = knee.verdict(found, "lookalike_model_queue_ratio", 2.0)  # crosses only after the knee
    assert late["crossed_step"] == 4 and not late["crossed_at_or_before_knee"]
    stuck = knee.verdict(found, "lookalike_model_queue_ratio", 0.01)
    assert not stuck["fell_back"]
    assert "<- knee" in knee.table(found, ["lookalike_model_queue_ratio"]).splitlines()[4]


def test_no_knee_when_throughput_keeps_growing():
    found = knee.steps(*timeline([(2, 10, 100, 0.0), (4, 20, 100, 0.0), (6, 30, 105, 0.1)]))
    assert knee.knee(found) is None


def test_a_bend_is_a_knee_too():
    """The model server alone, measured: throughput keeps creeping up as batches grow."""
    found = knee.steps(*timeline([(5, 26.6, 143, 1.8), (10, 47.7, 194, 5.1), (14, 57.3, 265, 8.6),
                                  (19, 63.6, 344, 12.6), (24, 68.7, 401, 17.3)]))  # fmt: skip
    assert knee.knee(found) == 3  # +36 % users, +11 % throughput


def test_gauges_reads_unlabelled_lookalike_samples():
    page = ("# HELP lookalike_model_queue_ratio x\nlookalike_model_queue_ratio 0.75\n"
            'lookalike_api_requests{route="/search"} 3\nts_inference_requests_total 9\n'
            "lookalike_api_draining 0\n")  # fmt: skip
    assert gauges(page) == {"lookalike_model_queue_ratio": 0.75, "lookalike_api_draining": 0.0}
