"""`layerbraid train` under failure: one error line printed once, no rank left hanging, a
checkpoint on SIGINT/SIGTERM, an existing run never silently replaced, and a resumed run
whose log holds every epoch once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import clean_env
from layerbraid import cli

QUICK = ["--dataset", "peaks", "--layers", "8", "--no-progress", "--no-plots"]


def train_args(*extra: object) -> list[str]:
    return ["-m", "layerbraid.cli", "train", *QUICK, *map(str, extra)]


def epochs_logged(out: Path) -> list[int]:
    path = out / "metrics.jsonl"
    if not path.exists():
        return []
    return [json.loads(line)["epoch"] for line in path.read_text().splitlines() if line]


def start(mpiexec: Path, nprocs: int, args: list[str]) -> subprocess.Popen[str]:
    import sys

    return subprocess.Popen([str(mpiexec), "-n", str(nprocs), sys.executable, *args],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=clean_env(), start_new_session=True)


def finish(proc: subprocess.Popen[str], timeout: float) -> tuple[int, str, float]:
    begin = time.monotonic()
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        pytest.fail(f"still running after {timeout} s; killed\n{out}")
    return proc.returncode, out, time.monotonic() - begin


def wait_for_epochs(proc: subprocess.Popen[str], out: Path, count: int,
                    timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while len(epochs_logged(out)) < count:
        if proc.poll() is not None:
            pytest.fail(f"ended early with {proc.returncode}: {proc.communicate()[0]}")
        if time.monotonic() > deadline:
            os.killpg(proc.pid, signal.SIGKILL)
            pytest.fail(f"no {count} epochs within {timeout} s")
        time.sleep(0.05)


def error_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if "error:" in line]


# ---- errors on one rank end every rank, with one line ----

@pytest.mark.parametrize("target", ["file", "proc"])
def test_an_out_that_cannot_be_a_directory_ends_every_rank(mpiexec, tmp_path, target) -> None:
    """Rank 0 alone creates --out; before, rank 0 printed 'File exists' and waited in MPI
    shutdown while rank 1 spun forever."""
    if target == "file":
        out = tmp_path / "a-file"
        out.write_text("not a directory")
    else:
        out = Path(f"/proc/{os.getpid()}/layerbraid-run")  # no directory can be made there
    code, text, seconds = finish(start(mpiexec, 2, train_args("--out", out)), timeout=240)
    assert code != 0 and seconds < 30, text
    assert len(error_lines(text)) == 1, text
    assert "Traceback" not in text, text
    assert str(out) in error_lines(text)[0]


def test_rank_0_losing_its_output_directory_mid_run_ends_every_rank(mpiexec, tmp_path) -> None:
    """Rank 0's metrics log fails in the middle of training (its directory vanished); every
    rank stops within seconds and the message names rank 0 and the cause."""
    out = tmp_path / "run"
    proc = start(mpiexec, 2, train_args("--out", out, "--epochs", 100000,
                                        "--checkpoint-every", 0, "--checkpoint-minutes", 0))
    wait_for_epochs(proc, out, 2)
    out.rename(tmp_path / "moved")
    out.write_text("the directory is gone")
    code, text, seconds = finish(proc, timeout=240)
    assert code == 2 and seconds < 30, text
    lines = error_lines(text)
    assert len(lines) == 1 and lines[0].startswith("layerbraid train: error: rank 0: "), text
    assert "metrics.jsonl" in lines[0] and "Traceback" not in text, text


@pytest.mark.parametrize("args, expected", [
    (["--layers", "eight"], "argument --layers: invalid int value: 'eight'"),
    (["--method", "nope"], "'iterations'"),
    (["--dataset", "npz", "--data", "{notzip}"], "not an .npz (zip) file"),
])
def test_an_error_raised_on_every_rank_is_printed_once(run_mpi, python_exe, tmp_path, args,
                                                       expected) -> None:
    notzip = tmp_path / "data.npz"
    notzip.write_text("plain text")
    argv = [a.format(notzip=notzip) for a in args]
    code, text = run_mpi(2, [python_exe, *train_args(*argv)], timeout=240)
    assert code == 2, text
    lines = error_lines(text)
    assert len(lines) == 1 and expected in lines[0], text
    assert "Traceback" not in text and "usage:" not in text, text


def test_debug_prints_the_traceback(run_mpi, python_exe) -> None:
    code, text = run_mpi(1, [python_exe, *train_args("--dataset", "npz", "--data", "/nonexistent",
                                                     "--debug")], timeout=240)
    assert code == 2 and "Traceback" in text and len(error_lines(text)) == 1, text


# ---- nothing lost ----

@pytest.mark.parametrize("nprocs, sig, native", [(2, signal.SIGINT, False),
                                                 (2, signal.SIGTERM, True),
                                                 (1, signal.SIGINT, True)])
def test_a_signal_checkpoints_and_the_run_resumes(mpiexec, tmp_path, nprocs, sig,
                                                  native) -> None:
    """SIGINT/SIGTERM to mpiexec (which passes it to every rank, as Ctrl-C in a terminal
    does): one line saying where the checkpoint is and how to continue, exit code 128 +
    signal, no traceback; the checkpoint resumes and the log then holds every epoch once."""
    out = tmp_path / "run"
    extra = ["--native"] if native else []
    proc = start(mpiexec, nprocs, train_args("--out", out, "--epochs", 100000,
                                             "--checkpoint-every", 0, "--checkpoint-minutes",
                                             0, *extra))
    wait_for_epochs(proc, out, 3)
    proc.send_signal(sig)
    code, text, seconds = finish(proc, timeout=240)
    assert code == 128 + sig and seconds < 30, text
    assert "Traceback" not in text and not error_lines(text), text
    name = signal.Signals(sig).name
    line = next(l for l in text.splitlines() if "interrupted" in l)
    assert line.startswith(f"layerbraid train: interrupted by {name} after epoch "), text
    epoch = int(line.split("after epoch ")[1].split(";")[0])
    checkpoint = out / "checkpoint.npz"
    assert f"checkpoint saved to {checkpoint}" in line
    assert f"--resume {checkpoint}" in text
    assert epoch >= 3 and epochs_logged(out)[:epoch] == list(range(1, epoch + 1))

    code, text, _ = finish(start(mpiexec, 1, train_args("--out", out, "--resume", checkpoint,
                                                        "--epochs", epoch + 2, *extra)),
                           timeout=240)
    assert code == 0, text
    assert epochs_logged(out) == list(range(1, epoch + 3))


def test_a_resumed_run_logs_each_epoch_once(run_mpi, python_exe, tmp_path) -> None:
    """A crash after the last checkpoint leaves later epochs in the log; resuming from the
    checkpoint cuts the log back to its epoch first."""
    out = tmp_path / "run"
    code, text = run_mpi(1, [python_exe, *train_args("--out", out, "--epochs", 3)], timeout=240)
    assert code == 0, text
    saved = tmp_path / "epoch3.npz"
    (out / "checkpoint.npz").rename(saved)
    code, text = run_mpi(1, [python_exe, *train_args("--out", out, "--resume", saved,
                                                     "--epochs", 5)], timeout=240)
    assert code == 0 and epochs_logged(out) == [1, 2, 3, 4, 5], text
    # as if that run had crashed after epoch 5 with its last checkpoint at epoch 3
    code, text = run_mpi(1, [python_exe, *train_args("--out", out, "--resume", saved,
                                                     "--epochs", 4)], timeout=240)
    assert code == 0 and epochs_logged(out) == [1, 2, 3, 4], text


def test_checkpoints_are_written_during_the_run_by_default(run_mpi, python_exe,
                                                           tmp_path) -> None:
    from layerbraid.storage import read_arrays

    out = tmp_path / "run"
    code, text = run_mpi(1, [python_exe, *train_args("--out", out, "--epochs", 12)],
                         timeout=240)
    assert code == 0, text
    assert cli.DEFAULTS["checkpoint_every"] == 10 and cli.DEFAULTS["checkpoint_minutes"] == 5
    assert not list(out.glob("*.tmp"))
    contents = read_arrays(out / "checkpoint.npz", format="layerbraid-checkpoint",
                           versions=(2,), what="checkpoint")
    assert contents.meta["state"]["epoch"] == 12
    assert np.isfinite(contents.arrays["params.classifier.weight"]).all()


def test_an_existing_run_is_not_replaced_without_force(run_mpi, python_exe, tmp_path) -> None:
    out = tmp_path / "run"
    code, text = run_mpi(1, [python_exe, *train_args("--out", out, "--epochs", 2)], timeout=240)
    assert code == 0, text
    before = (out / "metrics.jsonl").read_text()
    code, text = run_mpi(1, [python_exe, *train_args("--out", out, "--epochs", 1)], timeout=240)
    assert code == 2 and "already holds a run" in text and "--force" in text, text
    assert (out / "metrics.jsonl").read_text() == before
    code, text = run_mpi(1, [python_exe, *train_args("--out", out, "--epochs", 1, "--force")],
                         timeout=240)
    assert code == 0 and epochs_logged(out) == [1], text


def test_a_run_without_out_says_nothing_was_saved(run_mpi, python_exe) -> None:
    code, text = run_mpi(1, [python_exe, *train_args("--epochs", 1)], timeout=240)
    assert code == 0 and "nothing was saved (no --out)" in text, text


# ---- config files are checked like the command line ----

@pytest.mark.parametrize("line, expected", [
    ('native = "false"', "argument --native (in {path}): expected true or false, not 'false'"),
    ('layers = "eight"', "argument --layers (in {path}): invalid int value: 'eight'"),
    ('lr = true', "argument --lr (in {path}): invalid float value: True"),
    ('method = "nope"', "argument --method (in {path}): invalid choice: 'nope' (choose from"),
    ('layers = [', "not valid TOML"),
])
def test_config_values_are_type_checked(tmp_path, capsys, line, expected) -> None:
    path = tmp_path / "run.toml"
    path.write_text(line + "\n")
    assert cli.main(["train", "--config", str(path), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and expected.format(path=path) in err[0], err


def test_every_choice_is_listed(capsys) -> None:
    assert cli.main(["train", "--method", "nope"]) == 2
    err = capsys.readouterr().err
    for method in ("serial", "parallel", "one-shot", "predict-correct", "iterations"):
        assert repr(method) in err
