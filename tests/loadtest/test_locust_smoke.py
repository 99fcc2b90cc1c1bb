"""CI smoke test: a short headless Locust run against the real local stack (TorchServe + API + index)."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

from lookalike.loadtest.runner import locust_command, run_headless
from tests.conftest import LITE

REPO = Path(__file__).resolve().parents[2]


def locust(search_api, server, tmp_path, *args: str) -> tuple[subprocess.CompletedProcess, dict]:
    prefix = tmp_path / "run"
    cmd = [str(Path(sys.executable).with_name("locust")), "-f", str(REPO / "loadtest" / "locustfile.py"),
           "--headless", "-H", search_api.url, "--ts-host", server.inference_url, "--ts-model", LITE,
           "--csv", str(prefix), "--html", str(tmp_path / "report.html"), "--only-summary", *args]  # fmt: skip
    result = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=180)
    with open(f"{prefix}_stats.csv", newline="") as handle:
        stats = {row["Name"]: row for row in csv.DictReader(handle)}
    return result, stats


def test_a_short_run_has_no_failures_and_meets_the_thresholds(search_api, server, tmp_path):
    result, stats = locust(search_api, server, tmp_path, "--shape", "ramp", "-u", "4", "-t", "15s",
                           "--max-fail-ratio", "0", "--max-p95-ms", "5000")  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "thresholds met" in result.stderr
    for name in ("POST /search", "GET /similar/[id]", "POST /predictions/[model]"):
        assert int(stats[name]["Request Count"]) > 0, name
        assert int(stats[name]["Failure Count"]) == 0, name
    assert (tmp_path / "report.html").stat().st_size > 10_000


def test_broken_thresholds_fail_the_run_and_say_why(search_api, server, tmp_path):
    result, stats = locust(search_api, server, tmp_path, "SearchUser", "--shape", "soak", "-u", "1", "-t", "4s",
                           "--min-rps", "10000")  # fmt: skip
    assert result.returncode == 1
    assert "THRESHOLDS BROKEN" in result.stderr and "< 10000.00 req/s" in result.stderr
    assert int(stats["Aggregated"]["Failure Count"]) == 0


def test_wrong_answers_are_counted_as_failures_with_their_reason(search_api, server, tmp_path):
    """EmbedUser pointed at a model that does not exist: every request fails, with TorchServe's reason."""
    result, stats = locust(search_api, server, tmp_path, "EmbedUser", "--shape", "soak", "-u", "1", "-t", "8s",
                           "--ts-model", "no-such-model")  # fmt: skip
    assert result.returncode == 1
    assert (
        int(stats["POST /predictions/[model]"]["Failure Count"])
        == int(stats["POST /predictions/[model]"]["Request Count"])
        > 0
    )
    assert "HTTP 404" in result.stderr or "HTTP 404" in (tmp_path / "run_failures.csv").read_text()


def test_distributed_mode_with_two_worker_processes(search_api, server, tmp_path):
    """`lookalike loadtest --workers 2`: a master and two workers on this machine, one report."""
    cmd = locust_command(search_api.url, server.inference_url, LITE)
    code = run_headless(cmd, ["--shape", "ramp", "-u", "4", "-t", "12s", "--max-fail-ratio", "0"],
                        tmp_path / "dist", tmp_path / "dist.html", workers=2)  # fmt: skip
    assert code == 0
    with open(tmp_path / "dist_stats.csv", newline="") as handle:
        stats = {row["Name"]: row for row in csv.DictReader(handle)}
    assert int(stats["POST /search"]["Request Count"]) > 0 and int(stats["Aggregated"]["Failure Count"]) == 0
