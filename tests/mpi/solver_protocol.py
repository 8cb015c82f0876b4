"""The App protocol across ranks: tuple states, an AppProtocol-only app, one-level exactness.

    mpiexec -n N python tests/mpi/solver_protocol.py

1. CoupledPair: states are (u, v) tuples of arrays of different shapes, so every message is
   packed and unpacked as two arrays; the converged MGRIT solution must match the sequential
   loop (to 1e-10) at every time point.
2. ProtocolDecay: written against AppProtocol alone (its own clone/sum/norm/pack/unpack, step
   and sum returning new states); it must converge to its exact discrete solution.
3. ResNetLike with max_levels=1: the engine steps sequentially across the ranks; the states
   must equal the Python loop bit for bit.

Each rank gathers the time points it accessed to rank 0, which prints one line of JSON:
``protocol {"pair_err": .., "pair_points": .., "pair_iters": .., "proto_err": ..,
"proto_points": .., "proto_isinstance": .., "seq_equal": .., "seq_points": .., "ranks": ..}``.
"""

from __future__ import annotations

import json

import numpy as np
from mpi4py import MPI
from solver_apps import CoupledPair, ProtocolDecay, ResNetLike

import layerbraid


def merged(comm: MPI.Comm, solution: dict) -> dict:
    pieces = comm.gather(solution, root=0)
    out: dict = {}
    if comm.rank == 0:
        for piece in pieces:
            for k, v in piece.items():
                assert k not in out, f"time point {k} accessed twice"
                out[k] = v
    return out


def main() -> None:
    comm = MPI.COMM_WORLD
    report: dict = {"ranks": comm.size}

    # 1. tuple states
    ntime, tstop = 32, 4.0
    pair = CoupledPair()
    with layerbraid.Solver(pair, 0.0, tstop, ntime, max_levels=3, abs_tol=1e-13,
                           print_level=0) as solver:
        result = solver.drive()
    got = merged(comm, pair.solution)
    if comm.rank == 0:
        want = pair.sequential(tstop / ntime)
        report["pair_points"] = len(got)
        report["pair_iters"] = result.iterations
        report["pair_err"] = max(
            float(max(np.abs(got[i][0] - want[i][0]).max(), np.abs(got[i][1] - want[i][1]).max()))
            for i in got)

    # 2. an AppProtocol app that is not an App
    proto = ProtocolDecay(tstart=0.0)
    with layerbraid.Solver(proto, 0.0, 8.0, 16, max_levels=3, abs_tol=1e-14,
                           print_level=0) as solver:
        solver.drive()
    got = merged(comm, proto.solution)
    if comm.rank == 0:
        report["proto_isinstance"] = isinstance(proto, layerbraid.AppProtocol) and not \
            isinstance(proto, layerbraid.App)
        report["proto_points"] = len(got)
        # backward Euler with dt = 1/2: u_i = u_0 / 1.5^i
        report["proto_err"] = max(abs(got[i][k] - [1.0, 2.0][k] / 1.5**i)
                                  for i in got for k in range(2))

    # 3. one level: sequential stepping across the ranks, bit for bit
    ntime, tstop = 32, 2.0  # powers of two: every time point and step size is exact
    net = ResNetLike()
    with layerbraid.Solver(net, 0.0, tstop, ntime, max_levels=1, print_level=0) as solver:
        solver.drive()
    got = merged(comm, net.solution)
    if comm.rank == 0:
        want = net.sequential(tstop / ntime)
        report["seq_points"] = len(got)
        report["seq_equal"] = all(np.array_equal(got[i], want[i]) for i in got)
        print("protocol " + json.dumps(report), flush=True)


if __name__ == "__main__":
    main()
