"""Rank-local failures under layerbraid.ranks, for tests/test_ranks.py.

    ranks_failure.py together   rank 1 fails inside a `together` block: every rank raises the
                                same CollectiveError; rank 0 prints it
    ranks_failure.py stranded   rank 1 fails while rank 0 waits in a barrier it will never
                                leave: rank 1 must end the job alone (MPI_Abort) and say so
    ranks_failure.py everywhere every rank fails the same way: one message, no rank named
"""

from __future__ import annotations

import sys
import time

from mpi4py import MPI

from layerbraid import ranks

comm = MPI.COMM_WORLD
rank = comm.Get_rank()
ranks.control_comm(comm)
case = sys.argv[1]
ranks.GRACE_SECONDS = 2.0

if case == "together":
    try:
        with ranks.together(comm):
            if rank == 1:
                raise OSError("cannot write /nowhere/metrics.jsonl")
    except ranks.CollectiveError as e:
        text = comm.gather(str(e), root=0)
        if rank == 0:
            print("RESULT", "|".join(text), flush=True)
elif case == "stranded":
    if rank == 1:
        try:
            raise ValueError("rank-local trouble")
        except ValueError as e:
            ranks.exchange(comm, ranks.report_of(e))
    else:
        comm.Barrier()  # rank 1 never comes: without ranks, a hang
    print("UNREACHABLE", rank, flush=True)
elif case == "everywhere":
    try:
        with ranks.together(comm):
            time.sleep(0.1 * rank)
            raise ValueError("bad --layers")
    except ranks.CollectiveError as e:
        if rank == 0:
            print("RESULT", e, flush=True)
