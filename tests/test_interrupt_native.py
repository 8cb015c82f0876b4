"""Interrupting solves, and the native backend's choice of instruction set.

What users rely on:
  a. the interrupt flag (layerbraid._core.set_interrupt, set from a signal handler) stops a
     Python-callback solve on every rank: that rank raises layerbraid.Interrupted (a
     KeyboardInterrupt), the others RemoteRankError, and a later solve works once it is cleared;
  b. Ctrl-C reaches a long native solve within a fraction of a second (the GIL is released for
     the whole solve): a handler that sets the flag gives Interrupted, the default handler its
     KeyboardInterrupt, the other ranks RemoteRankError, and the next solve of the same
     Propagator gives the uninterrupted result;
  c. LAYERBRAID_NATIVE_ISA forces the AVX2 or the baseline x86-64 build of the element-wise
     passes (layerbraid.native.active_isa() says which runs), both give the same results bit for
     bit, and a value that cannot be honoured is a clear ValueError.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from conftest import MPI_SCRIPTS, clean_env


def last_json(out: str) -> dict:
    return json.loads(out.strip().splitlines()[-1])


# =============================================================================================
# a. The interrupt flag in the Python-callback engine
# =============================================================================================

@pytest.mark.parametrize("nprocs", [1, 2])
def test_flag_stops_a_python_solve_on_every_rank(run_mpi, python_exe: str, nprocs: int) -> None:
    code, out = run_mpi(nprocs, [python_exe, MPI_SCRIPTS / "interrupt_engine.py"], timeout=120)
    assert code == 0, out
    result = last_json(out)
    assert result["nprocs"] == nprocs and result["flag_roundtrip"], out
    signals = {"before": 2, "handler": 10, "waiting": 15}
    hows = {c["how"] for c in result["cases"]}
    assert hows == ({"before", "handler"} if nprocs == 1 else {"before", "handler", "waiting"})
    for case in result["cases"]:
        target, how = case["target"], case["how"]
        for r, got in enumerate(case["outcomes"]):
            if r == target:
                assert got == f"Interrupted: interrupted by signal {signals[how]}", case
            else:
                assert got.startswith("RemoteRankError: stopped because another rank failed: "
                                      f"rank {target}: the "), case
                assert f"Interrupted: interrupted by signal {signals[how]}" in got, case
        assert case["after_ok"], case
    waiting = [c for c in result["cases"] if c["how"] == "waiting"]
    for case in waiting:  # rank 0 was waiting for the slow rank: the engine's poll hook saw it
        assert "the poll callback failed" in case["outcomes"][1], case


# =============================================================================================
# b. Ctrl-C during a long native solve
# =============================================================================================

@pytest.mark.parametrize("nprocs,target", [(1, "first"), (2, "first"), (2, "last")])
def test_sigint_stops_a_native_solve_quickly(run_mpi, python_exe: str, nprocs: int,
                                             target: str) -> None:
    code, out = run_mpi(nprocs, [python_exe, MPI_SCRIPTS / "interrupt_native.py", target],
                        timeout=240)
    assert code == 0, out
    result = last_json(out)
    full, hit = result["full"], 0 if target == "first" else nprocs - 1
    assert result["nprocs"] == nprocs
    assert full > 1.0, f"the uninterrupted computation took only {full:.2f} s: too short to test"
    for phase in result["phases"]:
        outcomes = phase["outcomes"]
        if phase["kind"] == "flag":
            assert outcomes[hit] == "Interrupted: interrupted by signal 2", result
        else:
            assert outcomes[hit].startswith("KeyboardInterrupt"), result
        for r, got in enumerate(outcomes):
            if r != hit:
                assert got.startswith(f"RemoteRankError: Propagation::forward failed: rank {hit}: "
                                      f"the "), result
        # typically tens of milliseconds; generous bounds for a loaded machine
        assert phase["latency"] < min(10.0, 0.5 * full), result
        assert phase["stopped"] < min(10.0, 0.5 * full), result
    assert result["after_equal"], result


def test_flag_stops_a_native_solve_on_another_thread() -> None:
    """A solve on a worker thread (where Python runs no signal handlers) still sees the flag,
    set here by the main thread."""
    import threading
    import time

    from layerbraid import Interrupted, _core, nn
    from layerbraid.propagate import Propagator

    net = nn.ResNet.dense(3, 32, 4, 64, activation="tanh", final_time=2.0)
    params = net.init_params(1, weights="random", scale=1.5)
    rng = np.random.default_rng(0)
    x, labels = rng.standard_normal((512, 3)), rng.integers(0, 4, 512)
    options = {"max_levels": 2, "cfactor": 2, "abs_tol": 0.0, "max_iter": 400}  # ~30 s
    caught: list[BaseException] = []

    def work() -> None:
        try:
            with Propagator(net, options=options, backend="native") as prop:
                prop.loss_and_gradient(params, x, labels)
        except BaseException as e:  # noqa: BLE001
            caught.append(e)

    thread = threading.Thread(target=work)
    try:
        thread.start()
        time.sleep(0.5)
        _core.set_interrupt(3)
        start = time.monotonic()
        thread.join(timeout=60)
        stopped = time.monotonic() - start
    finally:
        _core.set_interrupt(0)
    assert not thread.is_alive()
    assert len(caught) == 1 and isinstance(caught[0], Interrupted), caught
    assert str(caught[0]) == "interrupted by signal 3"
    assert stopped < 10, stopped


# =============================================================================================
# c. LAYERBRAID_NATIVE_ISA
# =============================================================================================

# Loss and gradients of several native solves (every activation, float64 and float32, dense
# and conv, serial and MGRIT), saved to argv[1] with the active instruction set.
_SOLVES = r"""
import sys
import numpy as np
from layerbraid import nn, native
from layerbraid.propagate import LAYER_PARALLEL, Propagator

out = {"isa": np.array(native.active_isa())}
rng = np.random.default_rng(0)
nets = [(f"dense-{a}-{d}", nn.ResNet.dense(3, 12, 4, 24, activation=a, final_time=2.0, dtype=d))
        for a in ("tanh", "relu", "smoothrelu") for d in ("float64", "float32")]
nets.append(("conv-tanh", nn.ResNet.conv(2, (5, 6), 4, 3, 8, activation="tanh")))
for name, net in nets:
    params = net.init_params(1, weights="random", scale=2.0)
    x = rng.standard_normal((33, *net.opening.input_shape()))
    labels = rng.integers(0, net.classifier.classes, 33)
    for mode, options in (("serial", None), ("mgrit", {**LAYER_PARALLEL, "max_iter": 5})):
        with Propagator(net, options=options, backend="native") as prop:
            ev = prop.loss_and_gradient(params, x, labels)
        out[f"{name}/{mode}/loss"] = np.array(ev.loss)
        for k, v in ev.gradient.items():
            out[f"{name}/{mode}/{k}"] = v
np.savez(sys.argv[1], **out)
"""


def _run_solves(python_exe: str, isa: str | None, path: Path) -> subprocess.CompletedProcess:
    env = clean_env({"LAYERBRAID_NATIVE_ISA": isa} if isa is not None else None)
    if isa is None:
        env.pop("LAYERBRAID_NATIVE_ISA", None)
    return subprocess.run([python_exe, "-c", _SOLVES, str(path)], env=env, capture_output=True,
                          text=True, timeout=300, check=False)


def _cpu_has_avx2() -> bool:
    try:
        with open("/proc/cpuinfo") as f:
            return any(line.startswith("flags") and " avx2" in line for line in f)
    except OSError:
        return False


def test_baseline_and_avx2_paths_agree_bit_for_bit(python_exe: str, tmp_path: Path) -> None:
    """Both builds perform the same IEEE operations on every element (no fused multiply-add),
    so whole solves agree exactly, not merely to round-off."""
    results = {}
    for isa in (None, "baseline", "avx2"):
        path = tmp_path / f"{isa}.npz"
        run = _run_solves(python_exe, isa, path)
        if isa == "avx2" and not _cpu_has_avx2():
            assert run.returncode != 0 and "LAYERBRAID_NATIVE_ISA=avx2" in run.stderr, run.stderr
            assert "does not support AVX2" in run.stderr or "no AVX2 path" in run.stderr
            pytest.skip("this CPU has no AVX2: only the baseline path can run")
        assert run.returncode == 0, run.stderr
        with np.load(path) as data:
            results[isa] = dict(data)
    assert str(results["baseline"].pop("isa")) == "baseline"
    assert str(results["avx2"].pop("isa")) == "avx2"
    assert str(results[None].pop("isa")) == ("avx2" if _cpu_has_avx2() else "baseline")
    base, avx2 = results["baseline"], results["avx2"]
    assert sorted(base) == sorted(avx2) and len(base) > 50
    differ = [k for k in base if not np.array_equal(base[k], avx2[k])]
    assert not differ, f"baseline and AVX2 results differ in {differ}"
    for k, v in results[None].items():  # the default is one of the two
        assert np.array_equal(v, avx2[k])


@pytest.mark.parametrize("value", ["sse9", "AVX512"])
def test_an_unknown_isa_is_a_clear_error(python_exe: str, value: str) -> None:
    code = (
        "import numpy as np\n"
        "from layerbraid import nn, native\n"
        "from layerbraid.propagate import Propagator\n"
        "for attempt in ('active_isa', 'active_isa again', 'solve'):\n"
        "    try:\n"
        "        if attempt == 'solve':\n"
        "            net = nn.ResNet.dense(3, 4, 2, 4)\n"
        "            Propagator(net, backend='native').loss_and_gradient(\n"
        "                net.init_params(0), np.zeros((2, 3)), np.zeros(2, dtype=int))\n"
        "        else:\n"
        "            native.active_isa()\n"
        "        print(attempt, 'no error')\n"
        "    except ValueError as e:\n"
        "        print(attempt, 'ValueError:', e)\n"
    )
    run = subprocess.run([python_exe, "-c", code], env=clean_env({"LAYERBRAID_NATIVE_ISA": value}),
                         capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.strip().splitlines()
    assert len(lines) == 3, run.stdout
    for line in lines:
        assert "ValueError: " in line and f"LAYERBRAID_NATIVE_ISA='{value}'" in line, line
        assert "auto" in line and "avx2" in line and "baseline" in line, line
