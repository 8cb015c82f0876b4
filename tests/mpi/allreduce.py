"""MPI smoke test: every rank contributes rank+1; rank 0 prints one line.

Output (rank 0 only): ``allreduce size=<n> sum=<n(n+1)/2> ranks=<0,1,...>``
"""

import layerbraid  # noqa: F401  (the import guard must pass under mpiexec too)
from mpi4py import MPI

comm = MPI.COMM_WORLD
total = comm.allreduce(comm.rank + 1, op=MPI.SUM)
ranks = comm.gather(comm.rank, root=0)
if comm.rank == 0:
    print(f"allreduce size={comm.size} sum={total} ranks={','.join(map(str, ranks))}", flush=True)
