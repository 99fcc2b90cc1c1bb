"""The step-load proof of an autoscaling signal: per step, throughput, latency and each signal;
where the knee is; whether a threshold is crossed at or before it and falls back when load drops.

`lookalike loadtest --shape steps` records every request (time, latency, failed) and scrapes the
servers' /metrics while it runs (loadtest/locustfile.py); this module turns that into steps.

The knee: the first rising step whose throughput grew by less than half as much as its users did
(relatively: 40 % more users, under 20 % more throughput) while its p95 latency rose: added users
mostly wait. A closed-loop load (users that send again as soon as they are answered) never shows
a flat line on a batching server, it bends; this finds the bend.
A step's signal is the mean of its scrapes in its second half (the first half still holds the
previous step's load inside the signal's window).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

EFFICIENCY = 0.5  # throughput's relative gain below this share of the users' relative gain ...


@dataclass
class Step:
    users: int
    start: float
    end: float
    requests: int = 0
    failures: int = 0
    rps: float = 0.0
    p50_ms: float = 0.0
    p95_ms: float = 0.0
    signals: dict[str, float] = field(default_factory=dict)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def steps(users: list[tuple[float, int]], requests: list[tuple[float, float, bool]],
          scrapes: list[tuple[float, dict[str, float]]], end: float) -> list[Step]:  # fmt: skip
    """`users`: (time, user count) at each change; `requests`: (time, ms, failed); `scrapes`:
    (time, {gauge: value}); `end`: when the test stopped."""
    bounds = [(t, n) for i, (t, n) in enumerate(users) if i == 0 or n != users[i - 1][1]]
    result = []
    for i, (start, count) in enumerate(bounds):
        stop = bounds[i + 1][0] if i + 1 < len(bounds) else end
        step = Step(count, start, stop)
        inside = [(ms, failed) for t, ms, failed in requests if start <= t < stop]
        step.requests, step.failures = len(inside), sum(failed for _, failed in inside)
        ok = [ms for ms, failed in inside if not failed]
        step.rps = len(ok) / max(stop - start, 1e-9)
        step.p50_ms, step.p95_ms = percentile(ok, 0.50), percentile(ok, 0.95)
        late = [values for t, values in scrapes if (start + stop) / 2 <= t < stop]
        for name in sorted({name for values in late for name in values}):
            seen = [values[name] for values in late if name in values]
            step.signals[name] = sum(seen) / len(seen)
        result.append(step)
    return result


def knee(found: list[Step]) -> int | None:
    """Index of the knee among the rising steps (None: load never reached it)."""
    for i in range(1, len(found)):
        before, now = found[i - 1], found[i]
        if now.users <= before.users:
            break  # the falling part
        users_gain = now.users / before.users - 1
        rps_gain = now.rps / before.rps - 1 if before.rps else float("inf")
        if rps_gain < EFFICIENCY * users_gain and now.p95_ms > before.p95_ms:  # ... while p95 rose
            return i
    return None


def verdict(found: list[Step], signal: str, threshold: float) -> dict:
    """Whether `signal` crosses `threshold` at or before the knee, and is below it again at the end."""
    at_knee = knee(found)
    peak = max(range(len(found)), key=lambda i: found[i].users) if found else 0
    crossed = next((i for i in range(peak + 1) if found[i].signals.get(signal, 0.0) >= threshold), None)
    fell_back = bool(found) and found[-1].signals.get(signal, float("inf")) < threshold
    return {"signal": signal, "threshold": threshold, "knee_step": at_knee, "crossed_step": crossed,
            "crossed_at_or_before_knee": crossed is not None and (at_knee is None or crossed <= at_knee),
            "fell_back": fell_back}  # fmt: skip


def table(found: list[Step], signals: list[str]) -> str:
    heads = [f"{'step':>4} {'users':>5} {'req/s':>6} {'p50 ms':>7} {'p95 ms':>7} {'fails':>5}"]
    heads += [f"{name.removeprefix('lookalike_'):>26}" for name in signals]
    lines = [" ".join(heads)]
    at_knee = knee(found)
    for i, step in enumerate(found):
        row = [f"{i:>4} {step.users:>5} {step.rps:>6.1f} {step.p50_ms:>7.0f} {step.p95_ms:>7.0f} {step.failures:>5}"]
        row += [f"{step.signals.get(name, float('nan')):>26.3f}" for name in signals]
        lines.append(" ".join(row) + ("   <- knee" if i == at_knee else ""))
    return "\n".join(lines)


def report(found: list[Step], verdicts: list[dict]) -> dict:
    return {"steps": [asdict(step) for step in found], "knee_step": knee(found), "verdicts": verdicts}
