"""Progress: a bar on a terminal, a plain line every few seconds elsewhere (fast)."""

from __future__ import annotations

import io

from lookalike.progress import Progress, duration


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_off_a_terminal_it_writes_plain_lines_with_rate_and_eta_not_a_bar():
    out = io.StringIO()
    with Progress("ingest", total=100, stream=out, every=0.0) as shown:
        for _ in range(3):
            shown.update(1, indexed=1, failed=0)
    lines = out.getvalue().splitlines()
    assert len(lines) == 4 and "\r" not in out.getvalue()  # one per update (every=0) and one at the end
    assert lines[0].startswith("ingest: 1/100 (1 %), ") and " img/s, ETA " in lines[0]
    assert lines[-1].startswith("ingest: 3/100 (3 %)") and lines[-1].endswith("indexed 1, failed 0")


def test_off_a_terminal_it_stays_quiet_between_its_intervals():
    out = io.StringIO()
    with Progress("dedup", total=1000, stream=out, every=3600) as shown:
        for _ in range(1000):
            shown.update(1)
    assert out.getvalue().splitlines() == [out.getvalue().splitlines()[-1]]  # only the closing line
    assert "1000/1000 (100 %)" in out.getvalue() and "ETA" not in out.getvalue()


def test_on_a_terminal_it_draws_a_bar_and_disabled_it_says_nothing():
    terminal, quiet = Terminal(), io.StringIO()
    with Progress("ingest", total=10, stream=terminal) as shown:
        shown.update(10)
    assert "\r" in terminal.getvalue() and "10/10" in terminal.getvalue()
    with Progress("ingest", total=10, stream=quiet, enabled=False, every=0.0) as shown:
        shown.update(10)
    assert quiet.getvalue() == ""


def test_durations_read_as_people_write_them():
    assert [duration(s) for s in (12.4, 213, 7500)] == ["12s", "3m33s", "2h05m"]
