"""Solver(adjoint=True) on N ranks against the same solve on one rank (run on every rank).

    mpiexec -n N python tests/mpi/adjoint_ranks.py

The scalar adjoint app of examples/python/scalar_adjoint.py, with a gradient that is a tuple
(a NumPy array and a float), solved on COMM_WORLD and, on every rank alone, on COMM_SELF.
Each rank checks its results against the one-rank solve and prints nothing on success; rank 0
then prints one JSON line: the number of ranks and, for each rank, whether it held dJ/du_0.
A mismatch raises (non-zero exit).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from mpi4py import MPI

import layerbraid

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples" / "python"))
from scalar_adjoint import ScalarAdjoint  # noqa: E402


class TupleGradient(ScalarAdjoint):
    def gradient(self):
        return (np.array([self.grad, 2.0 * self.grad]), self.grad)


def solve(comm: MPI.Comm) -> layerbraid.SolveResult:
    options = dict(max_levels=3, cfactor=2, abs_tol=1e-10, abs_tol_adjoint=1e-10,
                   print_level=0, adjoint=True)
    with layerbraid.Solver(TupleGradient(-1.0), 0.0, 25.0, 50, comm, **options) as solver:
        return solver.drive()


def main() -> None:
    comm = MPI.COMM_WORLD
    many, one = solve(comm), solve(MPI.COMM_SELF)
    # the engine's reductions make the iteration, the objective and the adjoint residuals
    # bit-identical to one rank
    assert many.iterations == one.iterations, (many.iterations, one.iterations)
    assert many.objective == one.objective, (many.objective, one.objective)
    assert many.rnorms_adjoint == one.rnorms_adjoint, (many.rnorms_adjoint, one.rnorms_adjoint)
    assert many.residual_history == one.residual_history
    # the gradient: each rank's share summed over the ranks, so equal to round-off
    array, value = many.gradient
    assert isinstance(array, np.ndarray) and array.shape == (2,) and isinstance(value, float)
    assert np.allclose(array, one.gradient[0], rtol=1e-13, atol=0.0), (array, one.gradient)
    assert abs(value - one.gradient[1]) <= 1e-13 * abs(one.gradient[1])
    # ... and the same bits on every rank
    everyone = comm.allgather((array.tobytes(), value))
    assert all(g == everyone[0] for g in everyone), everyone
    # dJ/du_0 only on the owner of point 0, equal to the one-rank value
    owner = many.initial_adjoint is not None
    if owner:
        assert np.array_equal(many.initial_adjoint, one.initial_adjoint)
    owners = comm.gather(owner)
    if comm.rank == 0:
        print(json.dumps({"nprocs": comm.size, "owners": owners}), flush=True)


if __name__ == "__main__":
    main()
