"""Install the C/C++ library with plain CMake and use it from downstream CMake projects.

One install (module-scoped) serves every test here:
- ``find_package(layerbraid)`` + ``layerbraid::braid`` gives a C consumer the engine, its headers
  and the MPI it was built against, and the program runs under the wheel's mpiexec;
- tests/install_consumer/api_calls.c, one call to every function of the XBraid C interface (but
  the adjoint and Delta families), compiles as strict C99 with -Werror against the installed
  headers and links against the installed engine (a failed link names the missing functions);
- a C++ program written against XBraid's wrapper braid.hpp (installed beside braid.h) builds
  and solves the scalar ODE of examples/c/scalar_ode.c with the same iterations and residuals
  on 1 and 2 ranks;
- ``layerbraid::resnet`` gives examples/cpp what it needs to build, and train_peaks trains
  layer-parallel under the wheel's mpiexec to the same losses on 1 and 2 ranks;
- a package whose recorded BLAS is gone is reported as not found, with the reason.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(shutil.which("cmake") is None, reason="needs cmake on PATH")

GENERATOR = ["-G", "Ninja"] if shutil.which("ninja") else []
JOBS = str(os.cpu_count() or 2)


def _cmake(*args: str | os.PathLike[str], cwd: Path, ok: bool = True) -> str:
    proc = subprocess.run(
        ["cmake", *map(str, args)],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=600,
    )
    if ok:
        assert proc.returncode == 0, f"cmake {' '.join(map(str, args))} failed:\n{proc.stdout}"
    else:
        assert proc.returncode != 0, f"cmake {' '.join(map(str, args))} succeeded:\n{proc.stdout}"
    return proc.stdout


@pytest.fixture(scope="module")
def prefix(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The library built with examples and tests off (as a packager would) and installed."""
    root = tmp_path_factory.mktemp("install")
    build, prefix = root / "build", root / "prefix"
    _cmake(
        "-S", REPO, "-B", build, *GENERATOR,
        f"-DPython_EXECUTABLE={sys.executable}",
        f"-DCMAKE_INSTALL_PREFIX={prefix}",
        "-DLAYERBRAID_BUILD_EXAMPLES=OFF",
        "-DLAYERBRAID_BUILD_TESTS=OFF",
        cwd=root,
    )
    _cmake("--build", build, "-j", JOBS, cwd=root)
    _cmake("--install", build, cwd=root)
    return prefix


def _build_against(prefix: Path, source: Path, build: Path) -> None:
    _cmake("-S", source, "-B", build, *GENERATOR, f"-DCMAKE_PREFIX_PATH={prefix}", cwd=build.parent)
    _cmake("--build", build, "-j", JOBS, cwd=build.parent)


@pytest.fixture(scope="module")
def consumer(prefix: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tests/install_consumer configured against the install; each test builds its targets
    (api_calls may fail to link while the engine lacks a function, and must not stop the
    others)."""
    build = tmp_path_factory.mktemp("consumer") / "build"
    _cmake("-S", REPO / "tests" / "install_consumer", "-B", build, *GENERATOR,
           f"-DCMAKE_PREFIX_PATH={prefix}", cwd=build.parent)
    return build


def _build_target(build: Path, target: str, ok: bool = True) -> str:
    return _cmake("--build", build, "-j", JOBS, "--target", target, cwd=build.parent, ok=ok)


def test_install_layout(prefix: Path) -> None:
    assert (prefix / "include" / "layerbraid" / "braid" / "braid.h").is_file()
    # XBraid's C++ wrapper sits beside the C headers, as in XBraid's braid/ directory
    assert (prefix / "include" / "layerbraid" / "braid" / "braid.hpp").is_file()
    assert (prefix / "include" / "layerbraid" / "braid" / "braid_status.hpp").is_file()
    for header in ("resnet.hpp", "resnet_app.hpp", "resnet_model.hpp"):
        assert (prefix / "include" / "layerbraid" / header).is_file(), header
    config = list(prefix.glob("lib*/cmake/layerbraid/layerbraidConfig.cmake"))
    assert len(config) == 1, list(prefix.rglob("*"))
    assert list(prefix.glob("lib*/liblayerbraid_resnet.a")), list(prefix.rglob("*"))


def test_find_package_consumer(consumer: Path, run_mpi, mpiexec: Path) -> None:
    _build_target(consumer, "consumer")

    # the package records the launcher of the MPI it was built against: the wheel's
    assert Path((consumer / "mpiexec.txt").read_text()).resolve() == Path(mpiexec).resolve()

    rc, out = run_mpi(1, [consumer / "consumer"], timeout=60)
    assert rc == 0, out
    assert "consumer: OK" in out, out


# api_calls.c calls each function of upstream XBraid's braid.h, braid_status.h and
# braid_test.h once, with no exceptions. braid.h: 56 (braid_UGetLast included), 10 of the
# adjoint, 3 of Delta correction; braid_status.h generic: 38, 4 of Delta correction; typed: 64,
# 8 ObjectiveStatus getters, 6 of Delta correction; braid_test.h: 8, 2 of Delta correction,
# braid_Warmup.
API_CALLS = REPO / "tests" / "install_consumer" / "api_calls.c"
N_API_FUNCTIONS = (56 + 10 + 3) + (38 + 4) + (64 + 8 + 6) + (8 + 2 + 1)


def _api_functions() -> list[str]:
    code = re.sub(r"/\*.*?\*/", "", API_CALLS.read_text(), flags=re.S)
    return re.findall(r"\b(braid_[A-Za-z_]+)\s*\(", code)


def test_c_interface_compiles_and_links(consumer: Path) -> None:
    calls = _api_functions()
    names = set(calls)
    assert len(names) == N_API_FUNCTIONS, sorted(names)
    assert sorted(n for n in names if calls.count(n) != 1) == []
    for name in ("braid_UGetLast", "braid_SetTimerFile", "braid_ResetTimer", "braid_PrintTimers",
                 "braid_SetInnerProd", "braid_SyncStatusGetProc", "braid_StatusGetCFactor"):
        assert name in names, name

    # every declaration, as strict C99 with -Werror: undeclared or differently typed -> error
    _build_target(consumer, "api_calls_compile")

    # every definition: a failed link names the functions the engine lacks
    link = subprocess.run(["cmake", "--build", consumer, "-j", JOBS, "--target", "api_calls"],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=600)
    if link.returncode != 0:
        undefined = re.findall(r"undefined reference to [`'\"]?(braid_\w+)", link.stdout)
        missing = sorted(names & set(undefined))
        pytest.fail(f"api_calls does not link: the installed engine lacks {len(missing)} "
                    f"function(s) of the interface: {', '.join(missing)}\n{link.stdout}",
                    pytrace=False)
    proc = subprocess.run([consumer / "api_calls"], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=60)
    assert proc.returncode == 0 and "api_calls: linked" in proc.stdout, proc.stdout


CXX_LINE = re.compile(r"^cxx_consumer: iterations (\d+) nlevels (\d+) rnorms ((?:\S+ )+)"
                      r"max_error (\S+) points (\d+)$", re.M)


def test_cxx_wrapper_consumer(consumer: Path, run_mpi) -> None:
    _build_target(consumer, "cxx_consumer")
    results = {}
    for np in (1, 2):
        rc, out = run_mpi(np, [consumer / "cxx_consumer"], timeout=60)
        assert rc == 0, out
        assert "cxx_consumer: OK" in out, out
        line = CXX_LINE.search(out)
        assert line is not None, out
        niter, nlevels, rnorms, max_error, points = line.groups()
        # as examples/c/scalar_ode.c prints: r_0 not available (skip), r_1 = 2.845538e-02,
        # r_2 = 8.621939e-04, r_3 = 0, iterations = 4; the history ends with the final residual
        assert (int(niter), int(nlevels)) == (4, 2), out
        assert rnorms.split()[:4] == ["-1.000000e+00", "2.845538e-02", "8.621939e-04",
                                      "0.000000e+00"], out
        assert rnorms.split()[-1] == "0.000000e+00", out
        assert float(max_error) <= 1e-12 and int(points) == 11, out
        results[np] = line.group(0)
    # the printed history does not depend on the number of ranks
    assert results[1] == results[2]


ADJ_LINE = re.compile(r"^cxx_adjoint: iterations (\d+) objective (\S+) gradient (\S+) "
                      r"r_adj (\S+)$", re.M)


def test_cxx_wrapper_adjoint(consumer: Path, run_mpi) -> None:
    """braid.hpp's XBraid_Adjoint part (BraidApp::ObjectiveT, ObjectiveT_diff, Step_diff,
    ResetGradient, BraidObjectiveStatus, BraidCore::InitAdjoint ...) gives upstream's scalar
    reference run of issue 15, on 1 and 2 ranks."""
    _build_target(consumer, "cxx_adjoint")
    for np in (1, 2):
        rc, out = run_mpi(np, [consumer / "cxx_adjoint"], timeout=60)
        assert rc == 0, out
        assert "cxx_adjoint: OK" in out, out
        for row in ("  Braid:   0  5.399995e-01  2.521756e-02  6.27080551e-02",
                    "  Braid:   1  2.446737e-02  2.604047e-02  3.60435144e-02",
                    "  Braid:   5  8.359592e-08  4.482596e-07  3.60000000e-02"):
            assert row in out.splitlines(), out
        line = ADJ_LINE.search(out)
        assert line is not None, out
        assert line.groups() == ("6", "3.59999999999874e-02", "1.92000799963229e-02",
                                 "4.482596e-07"), out


EPOCH = re.compile(r"^epoch +(\d+): loss=(\S+) train_accuracy=(\S+) val_accuracy=(\S+)", re.M)
FINAL = re.compile(r"^final: loss=(\S+) train_accuracy=(\S+) val_accuracy=(\S+) time=", re.M)


def test_cpp_example_trains_peaks_layer_parallel(prefix: Path, tmp_path: Path, run_mpi,
                                                  mpiexec: Path) -> None:
    build = tmp_path / "examples-cpp"
    _build_against(prefix, REPO / "examples" / "cpp", build)
    assert Path((build / "mpiexec.txt").read_text()).resolve() == Path(mpiexec).resolve()

    # 16 layers over 2 MGRIT levels, 5 epochs: about a second per run
    args = [build / "train_peaks", "--layers", "16", "--epochs", "5"]
    histories = {}
    for np in (1, 2):
        rc, out = run_mpi(np, args, timeout=120, env={"OPENBLAS_NUM_THREADS": "1"})
        assert rc == 0, out
        epochs = EPOCH.findall(out)
        final = FINAL.search(out)
        assert [int(e[0]) for e in epochs] == [1, 2, 3, 4, 5], out
        assert final is not None, out
        loss, train_acc, val_acc = map(float, final.groups())
        # about half the square is one class: 85 % means the bands were learnt
        assert val_acc >= 0.85 and train_acc >= 0.85, out
        assert float(epochs[-1][1]) < float(epochs[0][1]), out
        assert loss == float(epochs[-1][1]), out
        histories[np] = [e[1:] for e in epochs]
    # the printed losses and accuracies (12 significant digits) do not depend on the ranks
    assert histories[1] == histories[2]

    rc, out = run_mpi(1, [build / "train_peaks", "--layers", "0"], timeout=60)
    assert rc == 2, out
    assert "--layers=0" in out and "[1," in out, out


def test_missing_blas_wheel_is_reported(prefix: Path, tmp_path: Path) -> None:
    # A copy of the install whose recorded BLAS library no longer exists.
    moved = tmp_path / "prefix"
    shutil.copytree(prefix, moved, symlinks=True)
    config = next(moved.glob("lib*/cmake/layerbraid/layerbraidConfig.cmake"))
    text = config.read_text()
    recorded = re.search(r'set\(layerbraid_BLAS_LIBRARY "([^"]+)"\)', text)
    assert recorded is not None, text
    gone = tmp_path / "gone" / Path(recorded.group(1)).name
    config.write_text(text.replace(recorded.group(1), str(gone)))

    out = _cmake("-S", REPO / "examples" / "cpp", "-B", tmp_path / "build", *GENERATOR,
                 f"-DCMAKE_PREFIX_PATH={moved}", cwd=tmp_path, ok=False)
    assert "scipy-openblas32" in out and "which is gone" in out, out
