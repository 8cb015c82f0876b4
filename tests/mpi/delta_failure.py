"""A Delta correction callback raises on one rank: every rank must stop with one clear exception.

    mpiexec -n N python tests/mpi/delta_failure.py <method> <failing rank> <result dir>

The Lorenz app of examples/python/lorenz.py with Delta correction of rank 3 raises
BoomError("boom in <method>") from <method> (init_basis or inner_prod) on rank <failing rank>
once the solve is under way (from the method's second call on). Every rank writes
``<result dir>/rank<r>.txt`` (the exception type, the first line of its message) and re-raises,
as tests/mpi/adjoint_failure.py does for the adjoint's callbacks.
"""

from __future__ import annotations

import sys
from pathlib import Path

from adjoint_failure import report
from mpi4py import MPI
from solver_apps import BoomError

import layerbraid

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples" / "python"))
from lorenz import Lorenz  # noqa: E402

METHODS = ("init_basis", "inner_prod")


class FailingLorenz(Lorenz):
    def __init__(self, method: str, fail_rank: int) -> None:
        super().__init__([1.0, 1.0, 1.0], 64)
        self.method = method if MPI.COMM_WORLD.rank == fail_rank else None
        self.calls = 0

    def _maybe_fail(self, method: str) -> None:
        if method == self.method:
            self.calls += 1
            if self.calls >= 2:
                raise BoomError(f"boom in {method}")

    def init_basis(self, t, index):
        self._maybe_fail("init_basis")
        return super().init_basis(t, index)

    def inner_prod(self, u, v):
        self._maybe_fail("inner_prod")
        return super().inner_prod(u, v)


def main() -> None:
    method, fail_rank, out = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
    assert method in METHODS, method
    comm = MPI.COMM_WORLD
    solver = layerbraid.Solver(FailingLorenz(method, fail_rank), 0.0, 0.64, 64, max_levels=2,
                               cfactor=4, abs_tol=1e-300, max_iter=10, skip=False,
                               print_level=0, delta_rank=3, lyapunov=True)
    try:
        solver.drive()
    except BaseException as e:
        first = str(e).splitlines()[0] if str(e) else ""
        report(out, comm.rank, type(e).__name__, first)
        raise
    report(out, comm.rank, "None", "drive() returned")


if __name__ == "__main__":
    main()
