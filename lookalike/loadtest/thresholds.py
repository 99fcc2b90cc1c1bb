"""Pass/fail gates for a load test: what a release pipeline blocks on."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Thresholds:
    max_fail_ratio: float = 0.01
    max_p95_ms: float = 1000.0
    min_rps: float = 0.0


def violations(limits: Thresholds, fail_ratio: float, p95_ms: float, rps: float, requests: int) -> list[str]:
    """Each broken threshold as a sentence; empty when the run passes."""
    broken = []
    if requests == 0:
        broken.append("no request was made")
    if fail_ratio > limits.max_fail_ratio:
        broken.append(f"failure ratio {fail_ratio:.2%} > {limits.max_fail_ratio:.2%}")
    if p95_ms > limits.max_p95_ms:
        broken.append(f"p95 latency {p95_ms:.0f} ms > {limits.max_p95_ms:.0f} ms")
    if rps < limits.min_rps:
        broken.append(f"throughput {rps:.2f} req/s < {limits.min_rps:.2f} req/s")
    return broken
