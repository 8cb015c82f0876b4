"""layerbraid against PyMGRIT on Dahlquist's test problem: time per MGRIT iteration.

u' = lambda u, lambda = -1, u(0) = 1 on [0, 5], backward Euler (PyMGRIT's
``pymgrit.dahlquist.dahlquist.Dahlquist``, method 'BE'), nt = 2^14 + 1 points (and 2^16 + 1
for one case), both libraries in the same process, on 1 and 2 ranks (MPI COMM_WORLD under the
mpich wheel's mpiexec).

Matched settings (the per-iteration comparison):

=====================  ==================================  ===============================
                       PyMGRIT ``Mgrit(...)``              layerbraid ``Solver(...)``
=====================  ==================================  ===============================
levels                 ``simple_setup_problem(level=L)``    ``max_levels=L``
coarsening             ``coarsening=c``                     ``cfactor=c``
relaxation             ``cf_iter=1`` (FCF, its default)     ``nrelax=1`` (FCF)
                       ``cf_iter=0`` (F)                    ``nrelax=0`` (F)
initial guess          ``nested_iteration=False``           ``skip=False``, ``fmg=False``
                       zero, u(0) = 1                       ``init``: zero, u(0) = 1
cycle                  ``cycle_type='V'``                   V-cycle (no FMG)
residual norm          l2 over the fine C-points            ``temporal_norm='l2'``
stopping               ``tol`` (absolute)                   ``abs_tol``
=====================  ==================================  ===============================

PyMGRIT's defaults are ``cf_iter=1``, ``nested_iteration=True`` (the initial guess is the
coarsest-grid solution interpolated to the fine grid, computed during set-up) and ``tol=1e-7``.
Its nearest layerbraid counterpart is ``skip=True`` (the engine's default: the first cycle
skips the down-cycle relaxation, so its first fine-grid values are also a coarse solve
interpolated up); that pair is run too ("defaults" rows), with tol 1e-10.

Timing: each library runs exactly K = 5 iterations (tolerance 0), interleaved round by round
in one process. PyMGRIT is set up once and solved --pm-repeats times (its per-iteration work
does not depend on the values); its time per iteration is the clock between the ends of
consecutive residual computations (a subclass records the time after each), fastest of the
steady iterations 2..K of all solves. layerbraid's is (T(K) - T(1)) / (K - 1) from whole
solves, the fastest of --repeats of each. So set-up, the initial guess and the first cycle
drop out of both. The iteration counts to reach tol = 1e-10 are read off each library's
residual history of the same runs; the final-time values of both are compared with each
other and with the exact backward-Euler value (1 - lambda dt)^-N.

    .venv/bin/python benchmarks/python_driver/vs_pymgrit.py            # 1 and 2 ranks, ~3-4 min
    .venv/bin/python benchmarks/python_driver/vs_pymgrit.py --quick    # ~1 min

The launcher runs itself under ``mpiexec -n 1`` and ``mpiexec -n 2`` (``--worker``), gathers
the results, prints the tables and writes benchmarks/results/vs_pymgrit.json.
Needs PyMGRIT: ``.venv/bin/pip install pymgrit``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

TSTART, TSTOP = 0.0, 5.0
TOL = 1e-10
TARGET_RATIO = 5.0
INSTALL_HINT = ("PyMGRIT is not installed in this environment. Install it with\n"
                "    .venv/bin/pip install pymgrit\n"
                "(pure Python; it brings scipy and matplotlib) and run this script again.")


def import_pymgrit() -> Any:
    """Import PyMGRIT (with the numpy>=2.4 shim it needs), or exit with how to install it."""
    if not hasattr(np, "in1d"):  # removed in NumPy 2.4, still called by pymgrit 1.0.6
        np.in1d = np.isin
    try:
        import pymgrit  # noqa: F401
        from pymgrit.core.mgrit import Mgrit
        from pymgrit.core.simple_setup_problem import simple_setup_problem
        from pymgrit.dahlquist.dahlquist import Dahlquist
    except ImportError:
        print(INSTALL_HINT, file=sys.stderr)
        raise SystemExit(2)
    return Mgrit, simple_setup_problem, Dahlquist


# ----------------------------------------------------------------------------- worker


def worker(args: argparse.Namespace) -> None:
    from mpi4py import MPI

    import layerbraid
    from apps import DahlquistApp, FloatDahlquistApp, dahlquist_exact

    Mgrit, simple_setup_problem, Dahlquist = import_pymgrit()
    import pymgrit

    comm = MPI.COMM_WORLD
    rank = comm.rank

    class TimedMgrit(Mgrit):
        """Mgrit that records the clock after each iteration's residual computation."""

        def solve(self) -> dict:
            self.stamps = [(time.perf_counter(), time.process_time())]
            return super().solve()

        def convergence_criterion(self, iteration: int) -> None:
            super().convergence_criterion(iteration)
            self.stamps.append((time.perf_counter(), time.process_time()))

    class CountingDahlquist(Dahlquist):
        steps = 0

        def step(self, u_start, t_start, t_stop):
            CountingDahlquist.steps += 1
            return super().step(u_start, t_start, t_stop)

    from pymgrit.core.vector import Vector

    class VectorArray1(Vector):
        """A one-element NumPy array state for PyMGRIT: the representation layerbraid.App uses."""

        def __init__(self, value: np.ndarray) -> None:
            super().__init__()
            self.value = value

        def __add__(self, other):
            return VectorArray1(self.value + other.value)

        def __sub__(self, other):
            return VectorArray1(self.value - other.value)

        def __mul__(self, other):
            return VectorArray1(self.value * other)

        def norm(self):
            return np.linalg.norm(self.value)

        def clone(self):
            return VectorArray1(self.value.copy())

        def clone_zero(self):
            return VectorArray1(np.zeros(1))

        def clone_rand(self):
            return VectorArray1(np.random.rand(1))

        def set_values(self, value):
            self.value = value

        def get_values(self):
            return self.value

        def pack(self):
            return self.value

        def unpack(self, value):
            self.value = value

    class ArrayDahlquist(Dahlquist):
        """PyMGRIT's Dahlquist problem (BE) on one-element NumPy arrays."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.vector_template = VectorArray1(np.zeros(1))
            self.vector_t_start = VectorArray1(np.ones(1))

        def step(self, u_start, t_start, t_stop):
            return VectorArray1(u_start.value / (1.0 - self.lambda_value * (t_stop - t_start)))

    def final_from_pymgrit(m: Any) -> float:
        owns_last = m.t[0].size > 0 and m.t[0][-1] == TSTOP
        mine = [float(np.asarray(m.u[0][-1].get_values()).reshape(-1)[0])] if owns_last else []
        found = [v for part in comm.allgather(mine) for v in part]
        return found[0]

    def pymgrit_setup(nt: int, levels: int, cf: int, relax: int, iters: int, nested: bool,
                      tol: float, problem_cls: Any) -> tuple[Any, float]:
        comm.barrier()
        t0 = time.perf_counter()
        problem = simple_setup_problem(problem=problem_cls(t_start=TSTART, t_stop=TSTOP, nt=nt),
                                       level=levels, coarsening=cf)
        m = TimedMgrit(problem=problem, max_iter=iters, tol=tol, nested_iteration=nested,
                       cf_iter=relax, cycle_type="V", logging_lvl=logging.WARNING, t_norm=2)
        return m, time.perf_counter() - t0

    def pymgrit_solve(m: Any, setup: float) -> dict[str, Any]:
        info = m.solve()
        # per_iter[k]: iteration k+1 with its residual; wall and CPU time, the most of any rank
        per_iter = np.max(comm.allgather(np.diff(np.array(m.stamps), axis=0)), axis=0)
        return {"setup_s": setup, "solve_s": float(info["time_solve"]),
                "iterations": int(m.solve_iter),
                "residuals": [float(c) for c in m.conv[1:m.solve_iter + 1]],
                "iteration_s": [float(x) for x in per_iter[:, 0]],
                "iteration_cpu_s": [float(x) for x in per_iter[:, 1]],
                "final_value": final_from_pymgrit(m)}

    def run_pymgrit(nt: int, levels: int, cf: int, relax: int, iters: int, nested: bool,
                    tol: float, problem_cls: Any = Dahlquist) -> dict[str, Any]:
        """One set-up and one solve (for the converged, default-settings runs)."""
        m, setup = pymgrit_setup(nt, levels, cf, relax, iters, nested, tol, problem_cls)
        return pymgrit_solve(m, setup)

    def lb_solve(make_app: Any, nt: int, levels: int, cf: int, relax: int, iters: int,
                 skip: bool, tol: float) -> tuple[tuple[float, float], Any, float | None]:
        app = make_app()
        app.last_index = nt - 1
        comm.barrier()
        t0, c0 = time.perf_counter(), time.process_time()
        solver = layerbraid.Solver(app, TSTART, TSTOP, nt - 1, max_levels=levels, cfactor=cf,
                                   nrelax=relax, skip=skip, fmg=False, abs_tol=tol,
                                   max_iter=iters, temporal_norm="l2", access_level=1,
                                   print_level=0)
        result = solver.drive()
        cpu = time.process_time() - c0
        comm.barrier()
        elapsed = (comm.allreduce(time.perf_counter() - t0, op=MPI.MAX),
                   comm.allreduce(cpu, op=MPI.MAX))
        solver.close()
        finals = [v for part in comm.allgather(app.final) for v in part]
        return elapsed, result, finals[0] if finals else None

    def timed(case: dict[str, Any], nt: int, levels: int, cf: int, relax: int, iters: int,
              problems: dict[str, Any], apps: dict[str, Any]) -> dict[str, dict[str, Any]]:
        """Interleaved: PyMGRIT K-iteration solves (set up once, solved --pm-repeats times) and
        layerbraid 1- and K-iteration solves (--repeats times), round by round, so that a
        change of machine load touches both libraries alike."""
        pms = {key: pymgrit_setup(nt, levels, cf, relax, iters, False, 0.0, cls)
               for key, cls in problems.items()}
        out: dict[str, dict[str, Any]] = {}
        steady: dict[str, list[float]] = {key: [] for key in problems}
        steady_cpu: dict[str, list[float]] = {key: [] for key in problems}
        t1: dict[str, list[tuple[float, float]]] = {key: [] for key in apps}
        tk: dict[str, list[tuple[float, float]]] = {key: [] for key in apps}
        pm_repeats = case.get("pm_repeats") or args.pm_repeats
        repeats = case.get("repeats") or args.repeats
        for rnd in range(max(pm_repeats, repeats)):
            if rnd < pm_repeats:
                for key, (m, setup) in pms.items():
                    run = pymgrit_solve(m, setup)
                    steady[key] += run["iteration_s"][1:]  # without the first iteration
                    steady_cpu[key] += run["iteration_cpu_s"][1:]
                    if rnd == 0:
                        out[key] = run
            if rnd < repeats:
                for key, make in apps.items():
                    t1[key].append(lb_solve(make, nt, levels, cf, relax, 1, False, 0.0)[0])
                    elapsed, result, final = lb_solve(make, nt, levels, cf, relax, iters,
                                                      False, 0.0)
                    tk[key].append(elapsed)
                    out.setdefault(key, {"iterations": result.iterations,
                                         "residuals": list(result.residual_history),
                                         "final_value": final})
        for key in problems:
            out[key]["s_per_iteration"] = float(min(steady[key]))
            out[key]["s_per_iteration_median"] = float(np.median(steady[key]))
            out[key]["steady_iteration_s"] = steady[key]
            out[key]["cpu_s_per_iteration"] = float(min(steady_cpu[key]))
        for key in apps:
            wall1, cpu1 = [t[0] for t in t1[key]], [t[1] for t in t1[key]]
            wallk, cpuk = [t[0] for t in tk[key]], [t[1] for t in tk[key]]
            out[key].update({
                "solve_s": wallk, "solve_1_iteration_s": wall1,
                "solve_cpu_s": cpuk, "solve_1_iteration_cpu_s": cpu1,
                "s_per_iteration": (min(wallk) - min(wall1)) / (iters - 1),
                "s_per_iteration_median":
                    (float(np.median(wallk)) - float(np.median(wall1))) / (iters - 1),
                "cpu_s_per_iteration": (min(cpuk) - min(cpu1)) / (iters - 1)})
        return out

    def with_final(cls: Any) -> Any:
        class Recording(cls):
            """Keeps the final-time value seen by access after the solve."""

            def __init__(self) -> None:
                super().__init__()
                self.final: list[float] = []
                self.last_index = -1

            def access(self, u: Any, status: Any) -> None:
                if status.tindex == self.last_index:
                    self.final = [float(np.asarray(u).reshape(-1)[0])]

        return Recording

    NumpyApp = with_final(DahlquistApp)
    FloatApp = with_final(FloatDahlquistApp)

    def iterations_to(residuals: list[float | None], tol: float) -> int | None:
        for k, r in enumerate(residuals, start=1):
            if r is not None and r < tol:
                return k
        return None

    def steps_per_iteration(levels: int, cf: int, relax: int) -> dict[str, float]:
        """Step calls per iteration per fine point of both libraries (small nt, counted)."""
        nt = 2**10 + 1
        out = {}
        counts = []
        for iters in (1, 3):
            CountingDahlquist.steps = 0
            problem = simple_setup_problem(
                problem=CountingDahlquist(t_start=TSTART, t_stop=TSTOP, nt=nt),
                level=levels, coarsening=cf)
            m = Mgrit(problem=problem, max_iter=iters, tol=0.0, nested_iteration=False,
                      cf_iter=relax, logging_lvl=logging.WARNING)
            before = CountingDahlquist.steps
            m.solve()
            counts.append(comm.allreduce(CountingDahlquist.steps - before))
        out["pymgrit"] = (counts[1] - counts[0]) / 2 / nt
        from apps import Counting
        lb_counts = []
        for iters in (1, 3):
            inner = DahlquistApp()
            inner.bind(TSTART, TSTOP, nt - 1)
            app = Counting(inner)
            with layerbraid.Solver(app, TSTART, TSTOP, nt - 1, max_levels=levels, cfactor=cf,
                                   nrelax=relax, skip=False, abs_tol=0.0, max_iter=iters,
                                   access_level=0, print_level=0) as s:
                s.drive()
            lb_counts.append(comm.allreduce(app.calls["step"]))
        out["layerbraid"] = (lb_counts[1] - lb_counts[0]) / 2 / nt
        return out

    results = []
    counted: set[tuple[int, int, int]] = set()
    t_all = time.perf_counter()
    for case in args.cases:
        nt_exp, levels, cf, relax = case["nt_exp"], case["levels"], case["cf"], case["relax"]
        nt = 2**nt_exp + 1
        iters = args.iters
        label = f"nt=2^{nt_exp}+1 L={levels} cf={cf} {'FCF' if relax else 'F'}"
        tc = time.perf_counter()
        problems = {"pymgrit": Dahlquist}
        if case.get("array_pymgrit"):
            problems["pymgrit_array_states"] = ArrayDahlquist
        got = timed(case, nt, levels, cf, relax, iters, problems,
                    {"layerbraid": NumpyApp, "layerbraid_float_states": FloatApp})
        pm, lb, lbf = got["pymgrit"], got["layerbraid"], got["layerbraid_float_states"]
        exact = dahlquist_exact(TSTART, TSTOP, nt - 1)
        row: dict[str, Any] = {
            "case": label, "nt": nt, "levels": levels, "cfactor": cf,
            "relaxation": "FCF" if relax else "F", "iterations_run": iters,
            "pymgrit": pm, "layerbraid": lb, "layerbraid_float_states": lbf,
            "ratio": pm["s_per_iteration"] / lb["s_per_iteration"],
            "ratio_median": pm["s_per_iteration_median"] / lb["s_per_iteration_median"],
            "ratio_float_states": pm["s_per_iteration"] / lbf["s_per_iteration"],
            "ratio_cpu": pm["cpu_s_per_iteration"] / lb["cpu_s_per_iteration"],
            "ratio_float_states_cpu": pm["cpu_s_per_iteration"] / lbf["cpu_s_per_iteration"],
            "iterations_to_tol": {"tol": TOL,
                                  "pymgrit": iterations_to(pm["residuals"], TOL),
                                  "layerbraid": iterations_to(lb["residuals"], TOL)},
            # layerbraid's r_k is taken after the relaxation of cycle k, before its coarse-grid
            # correction; PyMGRIT's after the whole cycle: layerbraid's r_{k+1} ~ PyMGRIT's r_k
            "residual_agreement_shifted_by_one": _shifted_agreement(pm["residuals"],
                                                                    lb["residuals"]),
            "exact_final_value": exact,
            "final_value_difference": abs(pm["final_value"] - lb["final_value"]),
            "final_value_rel_error": {
                "pymgrit": abs(pm["final_value"] - exact) / exact,
                "layerbraid": abs(lb["final_value"] - exact) / exact,
                "layerbraid_float_states": abs(lbf["final_value"] - exact) / exact},
        }
        if args.count_steps and (levels, cf, relax) not in counted:
            counted.add((levels, cf, relax))
            row["steps_per_iteration_per_point"] = steps_per_iteration(levels, cf, relax)
        if "pymgrit_array_states" in got:
            pma = got["pymgrit_array_states"]
            row["pymgrit_array_states"] = pma
            row["ratio_array_states"] = pma["s_per_iteration"] / lb["s_per_iteration"]
            row["final_value_rel_error"]["pymgrit_array_states"] = (
                abs(pma["final_value"] - exact) / exact)
        if case.get("defaults"):
            # each library's own default initial guess: nested iteration vs skip
            pmd = run_pymgrit(nt, levels, cf, relax, 100, nested=True, tol=TOL)
            (lbd_t, _), lbd, lbd_final = lb_solve(NumpyApp, nt, levels, cf, relax, 100, True,
                                                  TOL)
            row["defaults"] = {
                "tol": TOL,
                "pymgrit": {"nested_iteration": True, "iterations": pmd["iterations"],
                            "residuals": pmd["residuals"], "setup_s": pmd["setup_s"],
                            "solve_s": pmd["solve_s"], "final_value": pmd["final_value"]},
                "layerbraid": {"skip": True, "iterations": lbd.iterations,
                               "residuals": list(lbd.residual_history), "solve_s": lbd_t,
                               "final_value": lbd_final},
            }
        row["case_s"] = time.perf_counter() - tc
        results.append(row)
        if rank == 0:
            print(f"  [{comm.size} rank(s)] {label}: PyMGRIT {pm['s_per_iteration']*1e3:.1f} ms/it,"
                  f" layerbraid {lb['s_per_iteration']*1e3:.2f} ms/it, ratio {row['ratio']:.1f}× "
                  f"({row['case_s']:.0f} s)", file=sys.stderr, flush=True)
    if rank == 0:
        payload = {"ranks": comm.size, "cases": results,
                   "elapsed_s": time.perf_counter() - t_all,
                   "pymgrit_version": (getattr(pymgrit, "__version__", None)
                                       or _dist_version("pymgrit"))}
        print("RESULT " + json.dumps(payload), flush=True)


def _shifted_agreement(pm: list[float], lb: list[float | None]) -> float | None:
    """Largest relative difference between PyMGRIT's r_k and layerbraid's r_{k+1} (k = 1..)
    over the residuals above 1e-13 (below, round-off decides)."""
    pairs = [(a, b) for a, b in zip(pm, lb[1:]) if b is not None and min(a, b) > 1e-13]
    if not pairs:
        return None
    return max(abs(a - b) / max(a, b) for a, b in pairs)


def _dist_version(name: str) -> str | None:
    try:
        from importlib.metadata import version

        return version(name)
    except Exception:  # noqa: BLE001
        return None


# ----------------------------------------------------------------------------- launcher

def _case(nt_exp: int, levels: int, cf: int, relax: int, defaults: bool = False,
          array_pymgrit: bool = False, repeats: int | None = None,
          pm_repeats: int | None = None) -> dict[str, Any]:
    """One comparison: nt = 2^nt_exp + 1 points, levels, cfactor, nrelax (0 F, 1 FCF);
    defaults: also run each library's default initial guess; array_pymgrit: also time PyMGRIT
    on one-element NumPy array states; repeats/pm_repeats: override --repeats/--pm-repeats."""
    return {"nt_exp": nt_exp, "levels": levels, "cf": cf, "relax": relax, "defaults": defaults,
            "array_pymgrit": array_pymgrit, "repeats": repeats, "pm_repeats": pm_repeats}


FULL_CASES = [
    _case(14, 2, 2, 1, defaults=True, array_pymgrit=True),
    _case(14, 2, 2, 0),
    _case(14, 2, 4, 1),
    _case(14, 3, 2, 1, defaults=True),
    _case(14, 3, 2, 0),
    _case(14, 3, 4, 1),
    _case(16, 2, 2, 1, pm_repeats=1),  # PyMGRIT's set-up alone takes about a minute here
]
QUICK_CASES = [
    _case(12, 2, 2, 1, defaults=True, array_pymgrit=True),
    _case(12, 3, 2, 0),
    _case(12, 3, 4, 1),
]


def launch(nranks: int, args: argparse.Namespace, cases: list[Any]) -> dict[str, Any]:
    import layerbraid

    mpiexec = layerbraid.find_mpiexec()
    cmd = [str(mpiexec), "-n", str(nranks), sys.executable, str(Path(__file__).resolve()),
           "--worker", "--cases", json.dumps(cases), "--iters", str(args.iters),
           "--repeats", str(args.repeats), "--pm-repeats", str(args.pm_repeats)]
    if not args.count_steps:
        cmd.append("--no-count-steps")
    env = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=None, text=True,
                            start_new_session=True, env=env)
    try:
        out, _ = proc.communicate(timeout=args.timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise SystemExit(f"vs_pymgrit: {nranks}-rank run exceeded {args.timeout} s")
    if proc.returncode != 0:
        raise SystemExit(f"vs_pymgrit: {' '.join(cmd)} failed with code {proc.returncode}\n{out}")
    for line in out.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    raise SystemExit(f"vs_pymgrit: no RESULT line from the {nranks}-rank run:\n{out}")


def _count(k: int | None, run: int) -> str:
    return str(k) if k is not None else f">{run}"


def summarize(runs: list[dict[str, Any]]) -> str:
    from _common import table

    def ms(x: float) -> str:
        return f"{x * 1e3:.1f}" if x >= 0.01 else f"{x * 1e3:.2f}"

    rows = []
    for run in runs:
        for c in run["cases"]:
            it = c["iterations_to_tol"]
            pma = c.get("pymgrit_array_states")
            rows.append([
                run["ranks"], c["case"],
                ms(c["pymgrit"]["s_per_iteration"]),
                ms(c["layerbraid_float_states"]["s_per_iteration"]),
                f"**{c['ratio_float_states']:.1f}×**",
                f"{c['ratio_float_states_cpu']:.1f}×",
                ms(c["layerbraid"]["s_per_iteration"]),
                f"{c['ratio']:.1f}×",
                f"{c['ratio_cpu']:.1f}×",
                f"{ms(pma['s_per_iteration'])} ({c['ratio_array_states']:.1f}×)" if pma else "–",
                f"{_count(it['pymgrit'], c['iterations_run'])} / "
                f"{_count(it['layerbraid'], c['iterations_run'])}",
                "–" if c["residual_agreement_shifted_by_one"] is None
                else f"{c['residual_agreement_shifted_by_one']:.0e}",
                f"{c['final_value_difference']:.0e}",
            ])
    text = ["Wall time per MGRIT iteration in ms (fastest steady iteration), Dahlquist backward "
            "Euler. Speed-up = PyMGRIT / layerbraid, wall time; beside it the same ratio of CPU "
            "time (process time, the most of any rank), which other jobs on the machine disturb "
            "less.", "",
            table(["ranks", "case", "PyMGRIT (float states)", "layerbraid (float states)",
                   "speed-up", "speed-up, CPU time", "layerbraid App (NumPy)", "speed-up",
                   "speed-up, CPU time",
                   "PyMGRIT (NumPy states) and speed-up of App",
                   f"iterations to {TOL:g} PyMGRIT / layerbraid",
                   "residuals: max rel. diff (shifted by 1)", "abs(u_N diff)"], rows)]
    drows = []
    for run in runs:
        for c in run["cases"]:
            d = c.get("defaults")
            if not d:
                continue
            drows.append([run["ranks"], c["case"],
                          f"{d['pymgrit']['iterations']} ({d['pymgrit']['solve_s']:.2f} s solve"
                          f" + {d['pymgrit']['setup_s']:.2f} s setup)",
                          f"{d['layerbraid']['iterations']} ({d['layerbraid']['solve_s']:.3f} s,"
                          " set-up included)",
                          f"{abs(d['pymgrit']['final_value'] - d['layerbraid']['final_value']):.0e}",
                          ])
    if drows:
        text += ["", "Each library's default initial guess (PyMGRIT nested_iteration=True, "
                     f"layerbraid skip=True, NumPy App), tol {TOL:g}: iterations (time)", "",
                 table(["ranks", "case", "PyMGRIT", "layerbraid", "abs(u_N diff)"], drows)]
    if any("steps_per_iteration_per_point" in c for run in runs for c in run["cases"]):
        srows = [[c["case"].split(" ", 1)[1], c["steps_per_iteration_per_point"]["pymgrit"],
                  c["steps_per_iteration_per_point"]["layerbraid"]]
                 for c in runs[0]["cases"] if "steps_per_iteration_per_point" in c]
        text += ["", "Work per iteration: step calls per iteration per fine point (counted at "
                     "nt = 2^10 + 1)", "",
                 table(["case", "PyMGRIT", "layerbraid"], srows)]
    return "\n".join(text)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="nt = 2^12 + 1, three cases (~1 min)")
    p.add_argument("--ranks", default="1,2", help="rank counts to run (default 1,2)")
    p.add_argument("--iters", type=int, default=None, help="iterations per timed solve (5)")
    p.add_argument("--repeats", type=int, default=None,
                   help="layerbraid solves per timing (2)")
    p.add_argument("--pm-repeats", type=int, default=2,
                   help="PyMGRIT solves per timing, after one set-up (2)")
    p.add_argument("--no-count-steps", dest="count_steps", action="store_false",
                   help="skip counting step calls per iteration")
    p.add_argument("--timeout", type=float, default=900.0, help="seconds per rank count")
    p.add_argument("--output", default="vs_pymgrit.json")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--cases", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.iters = args.iters or 5
    args.repeats = args.repeats or 2
    if args.worker:
        args.cases = json.loads(args.cases)
        worker(args)
        return {}

    import_pymgrit()  # fail early, with the install hint, before launching anything
    from _common import machine_info, write_json

    cases = QUICK_CASES if args.quick else FULL_CASES
    runs = []
    t0 = time.perf_counter()
    for n in (int(v) for v in args.ranks.split(",")):
        print(f"vs_pymgrit: {n} rank(s) ...", file=sys.stderr, flush=True)
        runs.append(launch(n, args, cases))
    elapsed = time.perf_counter() - t0
    text = summarize(runs)
    print(text)
    ratios = [c["ratio_float_states"] for run in runs for c in run["cases"]]
    app_ratios = [c["ratio"] for run in runs for c in run["cases"]]
    cpu_ratios = [c["ratio_float_states_cpu"] for run in runs for c in run["cases"]]
    verdict = "meets" if min(ratios) >= TARGET_RATIO else "misses"
    summary = (f"Same float states: layerbraid is {min(ratios):.1f}× to {max(ratios):.1f}× "
               f"faster per MGRIT iteration than PyMGRIT (median "
               f"{float(np.median(ratios)):.1f}×) — {verdict} the {TARGET_RATIO:g}× target. "
               f"With layerbraid.App's NumPy states against PyMGRIT's float Dahlquist: "
               f"{min(app_ratios):.1f}× to {max(app_ratios):.1f}× (median "
               f"{float(np.median(app_ratios)):.1f}×). Same float states in CPU time: "
               f"{min(cpu_ratios):.1f}× to {max(cpu_ratios):.1f}× (median "
               f"{float(np.median(cpu_ratios)):.1f}×). ({elapsed:.0f} s)")
    print("\n" + summary)
    pm_version = runs[0].get("pymgrit_version")
    payload = {
        "benchmark": "vs_pymgrit",
        "command": "python benchmarks/python_driver/vs_pymgrit.py"
                   + (" --quick" if args.quick else "") + f" --ranks {args.ranks}",
        "machine": machine_info(nranks=max(r["ranks"] for r in runs),
                                extra_versions={"pymgrit": pm_version or "unknown"}),
        "problem": {"equation": "u' = lambda u, u(0) = 1", "lambda": -1.0,
                    "method": "backward Euler", "tstart": TSTART, "tstop": TSTOP},
        "settings": {"iterations_per_timed_solve": args.iters, "layerbraid_repeats": args.repeats,
                     "pymgrit_repeats": args.pm_repeats,
                     "tol": TOL, "pymgrit": "nested_iteration=False, cycle_type='V', t_norm=2, "
                     "cf_iter=nrelax", "layerbraid": "skip=False, fmg=False, temporal_norm='l2'"},
        "target_ratio": TARGET_RATIO,
        "ratio_definition": "PyMGRIT s/iteration over layerbraid s/iteration; headline: both "
                            "on Python float states (PyMGRIT's own Dahlquist)",
        "min_ratio": min(ratios), "max_ratio": max(ratios),
        "median_ratio": float(np.median(ratios)),
        "app_numpy_min_ratio": min(app_ratios), "app_numpy_max_ratio": max(app_ratios),
        "app_numpy_median_ratio": float(np.median(app_ratios)),
        "cpu_min_ratio": min(cpu_ratios), "cpu_max_ratio": max(cpu_ratios),
        "cpu_median_ratio": float(np.median(cpu_ratios)),
        "meets_target": min(ratios) >= TARGET_RATIO,
        "summary": summary,
        "runs": runs,
        "table_markdown": text,
        "elapsed_s": elapsed,
    }
    path = write_json(args.output, payload)
    print(f"wrote {path}")
    return payload


if __name__ == "__main__":
    main()
