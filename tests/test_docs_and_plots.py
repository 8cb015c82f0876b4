"""What a newcomer meets first: the README's Propagator snippet, the C++ example's build
commands, ``make demo``'s set-up, a bad backend's message, and the plots of a run."""

from __future__ import annotations

import math
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


# ---- plots ----

def _records(n: int = 40, *, zeros_from: int | None = 30, sparse_validation: bool = False):
    from layerbraid.train.metrics import EpochRecord

    records = []
    for e in range(1, n + 1):
        residual = 1e-3 * math.exp(-e / 5)
        if zeros_from is not None and e >= zeros_from:
            residual = 0.0                      # an exactly converged solve
        validated = not sparse_validation or e % 10 == 0
        records.append(EpochRecord(
            epoch=e, loss=1.0 / e, train_accuracy=min(0.95, e / n),
            val_loss=1.1 / e if validated else math.nan,
            val_accuracy=min(0.9, e / n) if validated else math.nan,
            gradient_norm=1.0, step_size=1.0,
            forward_iterations=2, adjoint_iterations=2,     # identical lines
            forward_residual=residual, adjoint_residual=residual,
            loss_evaluations=1, time=0.1, elapsed=0.1 * e))
    return records


@pytest.fixture
def saved_figures(monkeypatch: pytest.MonkeyPatch):
    """The figures plot_run saves, by file name (they stay inspectable after plt.close)."""
    pytest.importorskip("matplotlib")
    from matplotlib.figure import Figure

    figures = {}
    save = Figure.savefig

    def capture(self, fname, *args, **kwargs):
        figures[Path(fname).name] = self
        return save(self, fname, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", capture)
    return figures


def _line(ax, label: str):
    return next(line for line in ax.get_lines() if line.get_label() == label)


def test_plot_run_shows_zero_residuals_and_identical_forward_adjoint(tmp_path, saved_figures):
    from layerbraid.train import plot_run

    files = plot_run(_records(), tmp_path, "test")
    assert [f.name for f in files] == ["curves.png", "mgrit.png"]
    for f in files:
        assert f.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and f.stat().st_size > 1000

    ax_it, ax_res = saved_figures["mgrit.png"].axes
    fwd, adj = _line(ax_it, "forward"), _line(ax_it, "adjoint")
    assert list(fwd.get_ydata()) == list(adj.get_ydata())      # same values ...
    assert fwd.get_linestyle() != adj.get_linestyle()          # ... drawn differently
    assert fwd.get_marker() != adj.get_marker()

    # every epoch is on the residual axis, the zeros at a floor below every positive value
    bottom, top = ax_res.get_ylim()
    positive_min = 1e-3 * math.exp(-29 / 5)
    for name in ("forward", "adjoint"):
        y = list(_line(ax_res, name).get_ydata())
        assert len(y) == 40
        floor = y[-1]
        assert 0 < floor < positive_min and y[29:] == [floor] * 11
        assert bottom < floor < top
    legend = [t.get_text() for t in ax_res.get_legend().get_texts()]
    assert any("exactly 0" in t for t in legend), legend


def test_plot_run_all_residuals_zero(tmp_path, saved_figures):
    from layerbraid.train import plot_run

    plot_run(_records(zeros_from=1), tmp_path)
    _, ax_res = saved_figures["mgrit.png"].axes
    bottom, top = ax_res.get_ylim()
    y = _line(ax_res, "forward").get_ydata()
    assert all(bottom < v < top for v in y)


def test_plot_run_sparse_validation_is_drawn(tmp_path, saved_figures):
    from layerbraid.train import plot_run

    plot_run(_records(sparse_validation=True, zeros_from=None), tmp_path)
    for ax in saved_figures["curves.png"].axes:
        val = _line(ax, "validation")
        assert list(val.get_xdata()) == [10, 20, 30, 40]       # the evaluated epochs only
        assert val.get_marker() not in (None, "None", "", " ")  # isolated points stay visible


# ---- Propagator ----

def test_bad_backend_lists_every_backend() -> None:
    from layerbraid import Propagator, nn
    from layerbraid.backends import BACKENDS

    net = nn.ResNet.dense(in_features=2, width=4, classes=2, depth=4)
    with pytest.raises(ValueError, match="backend='torch' is not supported") as info:
        Propagator(net, backend="torch")
    for name in (*BACKENDS, "native"):
        assert repr(name) in str(info.value)


def _readme_propagator_snippet() -> str:
    text = (REPO / "README.md").read_text()
    blocks = [b for b in re.findall(r"```python\n(.*?)```", text, re.S) if "Propagator(" in b]
    assert len(blocks) == 1, "expected one README python block that builds a Propagator"
    return blocks[0]


def test_readme_propagator_snippet_runs_the_same_on_1_and_2_ranks(tmp_path, run_mpi) -> None:
    snippet = _readme_propagator_snippet()
    assert "np.random.rand" not in snippet and "default_rng(" in snippet  # seeded: same batch
    script = tmp_path / "snippet.py"
    script.write_text(snippet)
    one = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         timeout=300)
    assert one.returncode == 0, one.stderr
    rc, two = run_mpi(2, [sys.executable, script], timeout=120)
    assert rc == 0, two
    assert one.stdout.strip() and two.strip() == one.stdout.strip()


# ---- build instructions ----

def test_cpp_example_readme_gives_cmake_absolute_paths() -> None:
    """CMake resolves a relative -DPython_EXECUTABLE badly (it then finds another Python)."""
    text = (REPO / "examples" / "cpp" / "README.md").read_text()
    commands = "\n".join(re.findall(r"```sh\n(.*?)```", text, re.S))
    defines = re.findall(r"-D(\w+)=(\S+)", commands)
    assert defines
    for name, value in defines:
        if name.endswith(("_EXECUTABLE", "_PATH", "_PREFIX", "_DIR")):
            assert value.strip('"').startswith("$PWD/"), f"-D{name}={value} is relative"


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_demo_installs_the_package_without_the_test_extra() -> None:
    """``make demo`` installs what it trains with, not torch and the rest of ``.[test]``."""
    dry = subprocess.run(["make", "-n", "-B", "demo"], cwd=REPO, capture_output=True,
                         text=True, timeout=60)
    assert dry.returncode == 0, dry.stderr
    assert re.search(r"pip install -q -e \.\s*$", dry.stdout, re.M), dry.stdout
    assert ".[test]" not in dry.stdout
    venv = subprocess.run(["make", "-n", "-B", "venv"], cwd=REPO, capture_output=True,
                          text=True, timeout=60)
    assert venv.returncode == 0 and '-e ".[test]"' in venv.stdout, venv.stdout
