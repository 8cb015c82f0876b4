"""Deliberate deadlock: rank 0 waits in a Barrier that the other ranks never join.

Used to check that the test helper's timeout kills the whole process group. The extra
command-line argument is a marker the test looks for among live processes afterwards.
"""

import sys
import time

from mpi4py import MPI

comm = MPI.COMM_WORLD
print(f"deadlock rank={comm.rank} marker={sys.argv[1:]}", flush=True)
if comm.rank == 0:
    comm.Barrier()
else:
    while True:
        time.sleep(1)
