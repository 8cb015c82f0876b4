"""An adjoint callback raises on one rank: every rank must stop with one clear exception.

    mpiexec -n N python tests/mpi/adjoint_failure.py <method> <failing rank> <result dir>

The scalar adjoint app of examples/python/scalar_adjoint.py (with a postprocessed objective, so
that every adjoint callback runs) raises BoomError("boom in <method>") from <method> on rank
<failing rank> once the solve is under way (iteration >= 1 where the method sees a status, the
second call otherwise). Every rank writes ``<result dir>/rank<r>.txt`` (the exception type,
the first line of its message), prints ``failure rank=<r> type=<type>`` and re-raises, as
tests/mpi/solver_failure.py does for step.
"""

from __future__ import annotations

import sys
from pathlib import Path

from mpi4py import MPI
from solver_apps import BoomError

import layerbraid

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples" / "python"))
from scalar_adjoint import ScalarAdjoint  # noqa: E402

METHODS = ("objective", "objective_diff", "step_diff", "reset_gradient",
           "postprocess_objective", "postprocess_objective_diff", "gradient")


class FailingAdjoint(ScalarAdjoint):
    def __init__(self, method: str, fail_rank: int) -> None:
        super().__init__(-1.0)
        self.method = method if MPI.COMM_WORLD.rank == fail_rank else None
        self.calls = 0

    def _maybe_fail(self, method: str, status=None) -> None:
        if method != self.method:
            return
        self.calls += 1
        if status is not None:
            armed = status.iteration >= 1
        else:  # gradient() runs once, after the solve
            armed = self.calls >= 2 or method == "gradient"
        if armed:
            raise BoomError(f"boom in {method}")

    def objective(self, u, status):
        self._maybe_fail("objective", status)
        return super().objective(u, status)

    def objective_diff(self, u, u_bar, f_bar, status):
        self._maybe_fail("objective_diff", status)
        return super().objective_diff(u, u_bar, f_bar, status)

    def step_diff(self, ustop, u, ustop_bar, u_bar, status):
        self._maybe_fail("step_diff", status)
        return super().step_diff(ustop, u, ustop_bar, u_bar, status)

    def reset_gradient(self):
        self._maybe_fail("reset_gradient")
        super().reset_gradient()

    def postprocess_objective(self, total: float) -> float:
        self._maybe_fail("postprocess_objective")
        return total

    def postprocess_objective_diff(self, total: float) -> float:
        self._maybe_fail("postprocess_objective_diff")
        return 1.0

    def gradient(self):
        self._maybe_fail("gradient")
        return super().gradient()


def main() -> None:
    method, fail_rank, out = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
    assert method in METHODS, method
    comm = MPI.COMM_WORLD
    solver = layerbraid.Solver(FailingAdjoint(method, fail_rank), 0.0, 25.0, 50, max_levels=2,
                               abs_tol=1e-12, abs_tol_adjoint=1e-12, max_iter=30,
                               print_level=0, adjoint=True)
    try:
        solver.drive()
    except BaseException as e:
        first = str(e).splitlines()[0] if str(e) else ""
        report(out, comm.rank, type(e).__name__, first)
        raise
    report(out, comm.rank, "None", "drive() returned")


def report(out: Path, rank: int, kind: str, message: str) -> None:
    result = out / f"rank{rank}.txt"
    tmp = result.with_suffix(".tmp")
    tmp.write_text(f"{kind}\n{message}\n")
    tmp.rename(result)
    print(f"failure rank={rank} type={kind}", flush=True)


if __name__ == "__main__":
    main()
