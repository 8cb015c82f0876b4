"""layerbraid.ranks: an error on one rank ends every rank with one message, never a hang."""

from __future__ import annotations

import time

import pytest

from conftest import MPI_SCRIPTS
from layerbraid import ranks


def test_a_rank_local_error_is_raised_on_every_rank(run_mpi, python_exe) -> None:
    code, out = run_mpi(3, [python_exe, MPI_SCRIPTS / "ranks_failure.py", "together"],
                        timeout=240)
    assert code == 0, out
    line = next(l for l in out.splitlines() if l.startswith("RESULT"))
    texts = line.split(" ", 1)[1].split("|")
    assert texts == ["rank 1: cannot write /nowhere/metrics.jsonl"] * 3


def test_the_same_error_everywhere_is_printed_without_a_rank(run_mpi, python_exe) -> None:
    code, out = run_mpi(2, [python_exe, MPI_SCRIPTS / "ranks_failure.py", "everywhere"],
                        timeout=240)
    assert code == 0, out
    assert "RESULT bad --layers" in out


def test_a_stranded_failing_rank_ends_the_job_alone(run_mpi, python_exe) -> None:
    """Rank 0 waits in a barrier for rank 1, which failed: rank 1 gives up after the grace
    period, prints one line naming itself and aborts the job (no MPI banner, exit code 2)."""
    start = time.monotonic()
    code, out = run_mpi(2, [python_exe, MPI_SCRIPTS / "ranks_failure.py", "stranded"],
                        timeout=240)
    assert code == 2, out
    assert time.monotonic() - start < 120  # the grace period is 2 s; the rest is start-up
    assert out.count("layerbraid: error: rank 1: rank-local trouble") == 1, out
    assert "UNREACHABLE" not in out and "Abort(" not in out, out


def test_verdict_prefers_a_real_error_to_remote_failures_and_interrupts() -> None:
    reports = [ranks.Report("remote", "stopped because another rank failed"),
               ranks.Report("error", "step: NaN", done=False),
               ranks.Report("interrupt", signum=2, done=False)]
    with pytest.raises(ranks.CollectiveError, match="^rank 1: step: NaN$"):
        ranks.verdict(reports)
    # a signal that stopped a solve: the other ranks' remote failures are its echo
    with pytest.raises(ranks.CollectiveInterrupt) as stop:
        ranks.verdict([ranks.Report("interrupt", signum=15, done=False),
                       ranks.Report("remote", "rank 0: interrupted", done=False)])
    assert stop.value.signum == 15
    ranks.verdict([ranks.Report(), ranks.Report(flag=True)])  # all well: nothing raised


def test_a_long_message_fits_an_exchange_slot() -> None:
    report = ranks.Report("error", "x" * 5000 + " é")
    decoded = ranks._decode(ranks._encode(report))
    assert decoded.kind == "error" and decoded.text.startswith("xxx")
    assert decoded.text.endswith("...") and len(ranks._encode(report)) == ranks._SLOT
