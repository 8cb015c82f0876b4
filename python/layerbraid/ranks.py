"""Ranks that agree on failures, so that no rank waits forever.

An error on one rank (a file rank 0 cannot write, a bad value one rank checks, a callback
exception) must end every rank with one message. Solves already do that for their callbacks
(the engine's failure notices: :class:`layerbraid.RemoteRankError`); everything else reaches
an *exchange*: every rank reports how its last piece of work went (``ok``, ``error``,
``remote`` for a failure another rank reported first, or ``interrupt``), and all ranks act on
the same list of reports.

Exchanges run on a private duplicate of the communicator, as non-blocking all-gathers. A rank
whose report is ``ok`` waits as long as it takes: the others are either coming or failing. A
rank with a failure waits at most :data:`GRACE_SECONDS`; if the others do not come (they wait
for this rank in some other collective, so they never will), it prints its error, naming its
rank, and ends the whole job with ``MPI_Abort``. Either way every rank ends within seconds,
and the message is printed once: by rank 0 when the ranks agreed, by the failing rank when
they could not.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator, Sequence

from mpi4py import MPI

from . import _core

__all__ = ["CollectiveError", "CollectiveInterrupt", "Report", "GRACE_SECONDS", "PROGRAM",
           "control_comm", "report_of", "exchange", "verdict", "together", "describe",
           "signal_name", "fail_alone"]

#: How long a failing rank waits for the others before it ends the job alone.
GRACE_SECONDS = 5.0
#: The prefix of the one error line (the CLI sets its command name).
PROGRAM = "layerbraid"
#: Print tracebacks with the error lines (the CLI's --debug).
DEBUG = False

_SLOT = 512  # bytes per rank in an exchange
# Errors whose message says what went wrong without the exception's name.
_SELF_EXPLAINING = (ValueError, TypeError, OSError, FloatingPointError, MemoryError,
                    RuntimeError)


class CollectiveError(RuntimeError):
    """An error that one or more ranks hit, raised on every rank with the same message after
    an exchange (so every rank is past it, and none is left waiting)."""


class CollectiveInterrupt(KeyboardInterrupt):
    """A SIGINT/SIGTERM that the ranks agreed on, raised on every rank."""

    def __init__(self, signum: int, message: str = "") -> None:
        super().__init__(message or f"interrupted by {signal_name(signum)}")
        self.signum = signum


@dataclass(frozen=True)
class Report:
    """One rank's account of its last piece of work: ``kind`` is ok, error, remote (a failure
    another rank reported first) or interrupt (a signal arrived), ``done`` whether the work
    finished, and ``flag`` one more bit every rank needs to agree on (the trainer: rank 0's
    "checkpoint now")."""

    kind: str = "ok"
    text: str = ""
    signum: int = 0
    flag: bool = False
    done: bool = True


def signal_name(signum: int) -> str:
    import signal

    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def describe(error: BaseException) -> str:
    """The one-line cause of ``error``: its message, with the exception's type where the
    message alone would not say what went wrong."""
    text = str(error).strip()
    if text and isinstance(error, _SELF_EXPLAINING):
        return text
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def report_of(error: BaseException | None, signum: int = 0, flag: bool = False) -> Report:
    """The report for a piece of work that ended with ``error`` (None: it succeeded)."""
    if error is None:
        return Report("interrupt" if signum else "ok", signum=signum, flag=flag)
    if isinstance(error, KeyboardInterrupt):
        code = getattr(error, "signum", 0) or signum or _core.interrupt_requested() or 2
        return Report("interrupt", signum=code, flag=flag, done=False)
    if DEBUG:
        traceback.print_exception(error, file=sys.stderr)
    kind = "remote" if isinstance(error, _core.RemoteRankError) else "error"
    return Report(kind, describe(error), signum, flag, done=False)


_control: dict[int, MPI.Comm] = {}


def control_comm(comm: MPI.Comm) -> MPI.Comm:
    """The private duplicate of ``comm`` that exchanges use (collective the first time)."""
    key = MPI.Comm.py2f(comm)
    known = _control.get(key)
    if known is not None:
        # A freed communicator's handle can come back for a new one with other ranks.
        mine, theirs = known.Get_group(), comm.Get_group()
        if MPI.Group.Compare(mine, theirs) != MPI.IDENT:
            known = None
        mine.Free()
        theirs.Free()
    if known is None:
        _control[key] = known = comm.Dup()
    return known


def _encode(report: Report) -> bytes:
    text = report.text
    while True:
        raw = json.dumps({"k": report.kind, "t": text, "s": report.signum,
                          "f": report.flag, "d": report.done}).encode()
        if len(raw) <= _SLOT:
            return raw.ljust(_SLOT, b" ")
        text = text[:max(0, len(text) - (len(raw) - _SLOT) - 8)] + "..."


def _decode(raw: bytes) -> Report:
    data = json.loads(raw.decode(errors="replace"))
    return Report(data["k"], data["t"], int(data["s"]), bool(data["f"]), bool(data["d"]))


def exchange(comm: MPI.Comm, report: Report) -> list[Report]:
    """Collective: every rank's report, in rank order. A rank reporting a failure waits at
    most :data:`GRACE_SECONDS` for the others and otherwise ends the job (:func:`fail_alone`)."""
    ctl = control_comm(comm)
    send = bytearray(_encode(report))
    recv = bytearray(_SLOT * ctl.Get_size())
    request = ctl.Iallgather([send, MPI.BYTE], [recv, MPI.BYTE])
    if report.kind == "ok":
        request.Wait()
    else:
        deadline = time.monotonic() + GRACE_SECONDS
        while not request.Test():
            if time.monotonic() > deadline:
                fail_alone(report, comm.Get_rank())
            time.sleep(0.002)
    return [_decode(bytes(recv[i * _SLOT:(i + 1) * _SLOT])) for i in range(ctl.Get_size())]


def verdict(reports: Sequence[Report]) -> None:
    """Raise what the reports agree on: CollectiveError for an error (the lowest rank's),
    else CollectiveInterrupt for a signal (a solve it stopped fails remotely on the other
    ranks), else CollectiveError for a remote failure alone."""
    failures = [(r, rep) for r, rep in enumerate(reports) if rep.kind == "error"]
    signums = [rep.signum for rep in reports if rep.kind == "interrupt"]
    if not failures and signums:
        raise CollectiveInterrupt(signums[0])
    failures = failures or [(r, rep) for r, rep in enumerate(reports) if rep.kind == "remote"]
    if failures:
        rank, first = failures[0]
        same_everywhere = len(failures) == len(reports) and \
            all(rep.text == first.text for _, rep in failures)
        raise CollectiveError(first.text if same_everywhere or len(reports) == 1
                              else f"rank {rank}: {first.text}")


@contextmanager
def together(comm: MPI.Comm) -> Iterator[None]:
    """Run a piece of work on every rank (rank-local I/O, set-up) and agree on how it went:
    an error on any rank is raised on every rank as :class:`CollectiveError`."""
    error: BaseException | None = None
    try:
        yield
    except (Exception, KeyboardInterrupt) as e:
        error = e
    verdict(exchange(comm, report_of(error)))


def fail_alone(report: Report, rank: int) -> None:
    """The other ranks cannot be reached: print this rank's error and end the job."""
    if report.kind == "interrupt":
        line = f"{PROGRAM}: interrupted by {signal_name(report.signum)} (rank {rank})"
        code = 128 + report.signum
    else:
        line = f"{PROGRAM}: error: rank {rank}: {report.text}"
        code = 2
    print(line, file=sys.stderr, flush=True)
    sys.stdout.flush()
    # MPI_Abort prints its own banner; the line above already says it all.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    MPI.COMM_WORLD.Abort(code)
