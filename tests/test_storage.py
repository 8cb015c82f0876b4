"""Data-only files: layerbraid.storage, checkpoints, network files and .npz datasets.

A checkpoint can never run code (old pickle checkpoints are refused unread), every broken or
crafted file is refused with an error naming it, writes are atomic, and a stray label cannot
build a huge network.
"""

from __future__ import annotations

import ast
import io
import json
import math
import os
import pickle
import re
import zipfile
from pathlib import Path

import numpy as np
import pytest
from mpi4py import MPI

from conftest import MPI_SCRIPTS
import layerbraid
from layerbraid import data, nn, storage
from layerbraid.storage import StorageError
from layerbraid.train import LBFGS, SGD, Adam
from layerbraid.train.checkpoint import load_checkpoint, save_checkpoint

COMM = MPI.COMM_SELF
PACKAGE = Path(storage.__file__).parent


def names(path: Path) -> str:
    """A pattern that matches a message naming ``path``."""
    return re.escape(repr(os.fspath(path)))


def everything(name: str) -> bool:
    return True


# ---- helpers that build broken and crafted files ----

def npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def lying_npy(shape: tuple[int, ...], dtype: str = "<f8", payload: bytes = b"\0" * 8) -> bytes:
    """An .npy member whose header claims ``shape`` but which holds only ``payload``."""
    header = repr({"descr": dtype, "fortran_order": False, "shape": shape}).encode()
    header += b" " * (-(len(header) + 11) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header + payload


def write_zip(path: Path, members: dict[str, bytes]) -> None:
    with zipfile.ZipFile(path, "w") as zf:
        for name, raw in members.items():
            zf.writestr(name, raw)


def rewrite_member(path: Path, member: str, change) -> None:
    """Replace one member's bytes by ``change(bytes)`` with a valid zip CRC, so that only the
    content hash can tell."""
    with zipfile.ZipFile(path) as zf:
        members = {info.filename: zf.read(info) for info in zf.infolist()}
    members[member] = change(members[member])
    write_zip(path, members)


def flip_byte_of(path: Path, needle: bytes) -> None:
    raw = bytearray(path.read_bytes())
    at = raw.find(needle)
    assert at >= 0 and raw.find(needle, at + 1) < 0, "the bytes to flip are not unique"
    raw[at + len(needle) // 2] ^= 0x10
    path.write_bytes(bytes(raw))


class Evil:
    """Unpickling this creates ``marker``: a stand-in for a payload running a command."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


# ---- the storage module ----

ARRAYS = {
    "f8": np.random.default_rng(0).standard_normal((3, 4)),
    "f4": np.array([1.5, -0.0, np.nan, np.inf], dtype=np.float32),
    "big_endian": np.arange(5, dtype=">f8"),
    "i8": np.arange(-3, 3),
    "u1": np.arange(7, dtype=np.uint8),
    "flags": np.array([True, False]),
    "c16": np.array([1 + 2j, -1j]),
    "text": np.array(["a", "bcd"]),
    "scalar": np.array(2.5),
    "empty": np.zeros((0, 3)),
    "fortran": np.asfortranarray(np.arange(6.0).reshape(2, 3)),
}


def same_array(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal dtype, shape and bytes (NaN payloads included)."""
    return a.dtype == b.dtype and a.shape == b.shape and \
        np.ascontiguousarray(a).tobytes() == np.ascontiguousarray(b).tobytes()


def test_arrays_and_metadata_round_trip_and_read_with_plain_numpy(tmp_path) -> None:
    path = tmp_path / "file.npz"
    meta = {"name": "x", "values": [1, 2.5, None, True], "nested": {"a": []}}
    storage.write_arrays(path, ARRAYS, format="test-format", version=3, meta=meta)
    contents = storage.read_arrays(path, format="test-format", versions=(3,))
    assert (contents.format, contents.version, contents.meta) == ("test-format", 3, meta)
    assert list(contents.arrays) == list(ARRAYS)
    for name, array in ARRAYS.items():
        assert same_array(contents.arrays[name], array), name
        assert contents.arrays[name].flags.writeable
    with np.load(path, allow_pickle=False) as plain:   # an ordinary .npz
        assert set(plain.files) == {storage.HEADER, storage.HASH, *ARRAYS}
        header = json.loads(plain[storage.HEADER].tobytes())
        assert header["format"] == "test-format" and header["meta"] == meta
        assert same_array(plain["f8"], ARRAYS["f8"])


def test_the_same_content_gives_the_same_bytes(tmp_path) -> None:
    storage.write_arrays(tmp_path / "a.npz", ARRAYS, format="f", version=1)
    storage.write_arrays(tmp_path / "b.npz", ARRAYS, format="f", version=1)
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()


def test_every_truncation_is_refused_with_the_file_named(tmp_path) -> None:
    path = tmp_path / "file.npz"
    storage.write_arrays(path, ARRAYS, format="f", version=1)
    whole = path.read_bytes()
    for cut in sorted({0, 1, 3, 30, len(whole) // 3, len(whole) // 2, len(whole) - 100,
                       len(whole) - 22, len(whole) - 1}):
        cropped = tmp_path / f"cut{cut}.npz"
        cropped.write_bytes(whole[:cut])
        with pytest.raises(StorageError, match=names(cropped)):
            storage.read_arrays(cropped, format="f", versions=(1,))


def test_a_flipped_byte_is_refused_by_the_crc_or_the_hash(tmp_path) -> None:
    needle = ARRAYS["f8"].tobytes()
    path = tmp_path / "crc.npz"
    storage.write_arrays(path, ARRAYS, format="f", version=1)
    flip_byte_of(path, needle)
    with pytest.raises(StorageError, match=names(path) + ".*(CRC|corrupt)"):
        storage.read_arrays(path, format="f", versions=(1,))

    def flip(raw: bytes) -> bytes:   # a consistent zip whose content changed
        at = raw.find(needle) + 5
        return raw[:at] + bytes([raw[at] ^ 1]) + raw[at + 1:]

    for member in ("f8.npy", f"{storage.HEADER}.npy"):
        path = tmp_path / f"hash-{member}"
        storage.write_arrays(path, ARRAYS, format="f", version=1, meta={"k": "v" * 40})
        if member.startswith("__"):
            rewrite_member(path, member, lambda raw: raw.replace(b"v" * 40, b"v" * 39 + b"w"))
        else:
            rewrite_member(path, member, flip)
        with pytest.raises(StorageError, match=names(path) + ".*SHA-256"):
            storage.read_arrays(path, format="f", versions=(1,))


def test_other_formats_versions_and_members_are_refused(tmp_path) -> None:
    path = tmp_path / "file.npz"
    storage.write_arrays(path, {"a": np.zeros(2)}, format="mine", version=2)
    with pytest.raises(StorageError, match="holds a 'mine' file, not 'yours'"):
        storage.read_arrays(path, format="yours", versions=(2,))
    with pytest.raises(StorageError, match="mine version 2 is not supported"):
        storage.read_arrays(path, format="mine", versions=(1,))
    with zipfile.ZipFile(path) as zf:
        members = {i.filename: zf.read(i) for i in zf.infolist()}
    for label, changed, match in [
        ("missing", {k: v for k, v in members.items() if k != "a.npy"}, "lacks array"),
        ("extra", {**members, "b.npy": npy_bytes(np.zeros(1))}, "does not list"),
        ("nohash", {k: v for k, v in members.items() if k != "__sha256__.npy"},
         "not a mine file"),
    ]:
        broken = tmp_path / f"{label}.npz"
        write_zip(broken, changed)
        with pytest.raises(StorageError, match=names(broken) + ".*" + match):
            storage.read_arrays(broken, format="mine", versions=(2,))
    plain = tmp_path / "plain.npz"
    np.savez(plain, a=np.zeros(2))
    with pytest.raises(StorageError, match="not a mine file"):
        storage.read_arrays(plain, format="mine", versions=(2,))


def test_crafted_members_are_refused_before_anything_is_allocated(tmp_path) -> None:
    cases = {
        "huge": (lying_npy((10 ** 12,)), r"claims shape \(1000000000000,\)"),
        "short": (lying_npy((3,)), "claims shape"),
        "long": (lying_npy((0,)), "the member holds 8 bytes"),
        "negative": (lying_npy((-1,)), "negative shape|claims"),
        "object": (lying_npy((1,), dtype="|O"), "never objects"),
        "structured": (lying_npy((1,), dtype=[("a", "<f8")]), "dtype"),
        "not-npy": (b"just some bytes", "magic|npy|format"),
    }
    for label, (member, match) in cases.items():
        path = tmp_path / f"{label}.npz"
        write_zip(path, {"a.npy": member})
        with pytest.raises(StorageError, match=names(path) + ".*(" + match + ")"):
            storage.read_npz(path)
    pickled = tmp_path / "pickled.npz"   # what np.savez writes for object arrays: a pickle
    np.savez(pickled, a=np.array([{"k": 1}], dtype=object))
    with pytest.raises(StorageError, match="never objects"):
        storage.read_npz(pickled)


def test_writes_are_atomic_and_leave_no_temporary(tmp_path, monkeypatch) -> None:
    path = tmp_path / "file.npz"
    stale = tmp_path / "file.npz.tmp"
    stale.write_bytes(b"left behind by a crash")
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: synced.append(fd) or real_fsync(fd))
    storage.write_arrays(path, {"a": np.ones(3)}, format="f", version=1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.npz"]
    assert len(synced) == 2   # the file and its directory

    def fail(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(StorageError, match=names(path) + ".*No space left"):
        storage.write_arrays(path, {"a": np.zeros(3)}, format="f", version=1)
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.npz"]
    assert same_array(storage.read_arrays(path, format="f", versions=(1,)).arrays["a"],
                      np.ones(3))   # the old file is intact
    with pytest.raises(StorageError, match=names(tmp_path / "nowhere" / "x.npz")):
        storage.write_arrays(tmp_path / "nowhere" / "x.npz", {}, format="f", version=1)


@pytest.mark.parametrize("arrays,meta,match", [
    ({"__x": np.zeros(1)}, None, "name '__x' is not allowed"),
    ({"a/b": np.zeros(1)}, None, "name 'a/b' is not allowed"),
    ({"a": np.array([None])}, None, "dtype object"),
    ({"a": np.zeros(1)}, {"x": float("nan")}, "not plain JSON"),
    ({"a": np.zeros(1)}, {"x": object()}, "not plain JSON"),
])
def test_what_cannot_be_stored_is_refused_before_writing(tmp_path, arrays, meta, match) -> None:
    with pytest.raises((TypeError, ValueError), match=match):
        storage.write_arrays(tmp_path / "x.npz", arrays, format="f", version=1, meta=meta)
    assert not list(tmp_path.iterdir())


def test_nothing_in_the_file_paths_can_unpickle_or_evaluate() -> None:
    for module in ("storage.py", "train/checkpoint.py", "nn/io.py", "data/files.py",
                   "data/dataset.py"):
        tree = ast.parse((PACKAGE / module).read_text())
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                imported = [a.name for a in node.names] + [getattr(node, "module", "") or ""]
                assert not {"pickle", "marshal", "shelve", "dill"} & set(imported), module
            if isinstance(node, ast.Call):
                assert getattr(node.func, "id", None) not in ("eval", "exec"), module
                for kw in node.keywords:
                    assert not (kw.arg == "allow_pickle" and
                                getattr(kw.value, "value", False) is not False), module


# ---- checkpoints ----

def lbfgs_with_history(comm=COMM) -> LBFGS:
    def quadratic(p):
        x = np.concatenate([p["layers.0.weight"].ravel(), p["classifier.bias"]])
        a = np.arange(1.0, 7.0)
        return float(0.5 * (a * x * x).sum() - x.sum()), {
            "layers.0.weight": (a[:4] * x[:4] - 1).reshape(2, 2),
            "classifier.bias": a[4:] * x[4:] - 1}

    params = {"layers.0.weight": np.full((2, 2), 0.3), "classifier.bias": np.array([-1.0, 2])}
    opt = LBFGS(memory=3, comm=comm)
    for _ in range(4):
        loss, grad = quadratic(params)
        opt.step(params, grad, loss, lambda q: quadratic(q)[0])
    assert len(opt.pairs) >= 2 and opt.previous is not None
    return opt


def assert_identical(a, b, where="state") -> None:
    """Equal values of exactly the same types; arrays bit for bit."""
    assert type(a) is type(b), f"{where}: {type(a).__name__} != {type(b).__name__}"
    if isinstance(a, np.ndarray):
        assert same_array(a, b), where
    elif isinstance(a, dict):
        assert list(a) == list(b), where
        for k in a:
            assert_identical(a[k], b[k], f"{where}[{k!r}]")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_identical(x, y, f"{where}[{i}]")
    elif isinstance(a, float) and math.isnan(a):
        assert math.isnan(b), where
    elif isinstance(a, float):
        assert a == b and math.copysign(1, a) == math.copysign(1, b), where
    else:
        assert a == b, where


def full_state() -> dict:
    rng = np.random.default_rng(1)
    params = {"opening.weight": rng.standard_normal((4, 2)),
              "layers.0.weight": rng.standard_normal((4, 4)),
              "layers.0.bias": np.array([np.nan, np.inf, -np.inf, -0.0]),
              "classifier.weight": rng.standard_normal((3, 4)).astype(np.float32)}
    adam = Adam(comm=COMM)
    adam.m, adam.v, adam.steps = ({k: v * 2 for k, v in params.items()},
                                  {k: v * 3 for k, v in params.items()}, 7)
    sgd = SGD(momentum=0.9, comm=COMM)
    return {
        "config": {"method": "one-shot", "lr": None, "tol": 1e-10, "batch_size": None,
                   "init_scale": 1.0, "betas": (0.9, 0.999), "flag": True},
        "net": {"depth": 3, "final_time": 5.0, "regularization": {"tikhonov": 1e-7}},
        "params": params,
        "optimizer": lbfgs_with_history().state_dict(),
        "adam": adam.state_dict(), "sgd": sgd.state_dict(),
        "warm": {"states.forward.0": rng.standard_normal((5, 4)), "states.adjoint.2": np.ones(3)},
        "epoch": 2, "elapsed": 0.1 + 0.2, "big": 2 ** 70, "negative_zero": -0.0,
        "history": [{"loss": float("nan"), "val_loss": float("inf"), "low": float("-inf"),
                     "forward_residual": None, "iterations": 3}],
        "options": {"nrelax": {-1: 1, 0: 2}, (1, "a"): "tuple key"},
        "$odd": {"$array": "not an array"}, "numpy": [np.float64(0.5), np.int32(-4),
                                                     np.bool_(True)],
        "empty": [[], {}, ()], "text": "ünïcode",
    }


def test_checkpoint_round_trip_is_exact(tmp_path) -> None:
    state = full_state()
    path = tmp_path / "checkpoint.npz"
    save_checkpoint(path, state, COMM)
    loaded = load_checkpoint(path, everything)
    assert_identical(loaded, state)
    # the L-BFGS history resumes onto the same next step
    original, restored = lbfgs_with_history(), LBFGS(memory=3, comm=COMM)
    save_checkpoint(path, {"optimizer": original.state_dict()}, COMM)
    restored.load_state_dict(load_checkpoint(path, everything)["optimizer"])
    direction = {"layers.0.weight": np.ones((2, 2)), "classifier.bias": np.ones(2)}
    a, b = original._direction(direction), restored._direction(direction)
    assert all(same_array(a[k], b[k]) for k in a)
    with np.load(path, allow_pickle=False) as plain:   # members are named after their place
        assert "optimizer.previous.0.layers.0.weight" in plain.files


def test_checkpoint_keeps_only_owned_parameters(tmp_path) -> None:
    path = tmp_path / "checkpoint.npz"
    save_checkpoint(path, full_state(), COMM)
    mine = load_checkpoint(path, lambda name: name.startswith("layers."))
    assert set(mine["params"]) == {"layers.0.weight", "layers.0.bias"}
    assert set(mine["adam"]["m"]) == {"layers.0.weight", "layers.0.bias"}


@pytest.mark.parametrize("protocol", [pickle.HIGHEST_PROTOCOL, 2, 0])
def test_an_old_pickle_checkpoint_is_refused_unread(tmp_path, protocol) -> None:
    marker = tmp_path / "payload-ran"
    path = tmp_path / "checkpoint.pkl"
    with path.open("wb") as f:   # the layout layerbraid < 0.2 wrote, with a payload inside
        pickle.dump({"format": "layerbraid-checkpoint-1", "state": {"epoch": Evil(marker)}},
                    f, protocol=protocol)
    with pytest.raises(StorageError) as refused:
        load_checkpoint(path, everything)
    assert not marker.exists(), "loading the checkpoint ran its payload"
    message = str(refused.value)
    assert repr(str(path)) in message
    if protocol >= 2:
        assert "old pickle checkpoint (layerbraid < 0.2)" in message
        assert "unpickling a file can run arbitrary code" in message
    else:
        assert "not a layerbraid checkpoint" in message
    assert isinstance(refused.value, OSError) and isinstance(refused.value, ValueError)
    pickle.loads(path.read_bytes())   # the control: the file really does run its payload
    assert marker.exists()


def test_a_flipped_byte_in_a_weight_is_refused(tmp_path) -> None:
    state = full_state()
    needle = state["params"]["layers.0.weight"].tobytes()
    path = tmp_path / "checkpoint.npz"
    save_checkpoint(path, state, COMM)
    flip_byte_of(path, needle)
    with pytest.raises(StorageError, match=names(path)):
        load_checkpoint(path, everything)
    save_checkpoint(path, state, COMM)   # the same with a consistent zip: the hash tells

    def flip(raw: bytes) -> bytes:
        at = raw.find(needle) + 9
        return raw[:at] + bytes([raw[at] ^ 0x40]) + raw[at + 1:]

    rewrite_member(path, "params.layers.0.weight.npy", flip)
    with pytest.raises(StorageError, match=names(path) + ".*SHA-256"):
        load_checkpoint(path, everything)


def test_truncated_missing_and_foreign_checkpoints_are_named(tmp_path) -> None:
    path = tmp_path / "checkpoint.npz"
    save_checkpoint(path, full_state(), COMM)
    whole = path.read_bytes()
    for cut in (0, 2, 100, len(whole) // 2, len(whole) - 1):
        path.write_bytes(whole[:cut])
        with pytest.raises(StorageError, match=names(path)):
            load_checkpoint(path, everything)
    with pytest.raises(OSError, match="cannot read checkpoint .*No such file"):
        load_checkpoint(tmp_path / "missing.npz", everything)
    net_file = tmp_path / "network.npz"
    nn.save(net_file, *small_net(), COMM)
    with pytest.raises(StorageError, match="'layerbraid-network' file, not 'layerbraid-chec"):
        load_checkpoint(net_file, everything)


def test_a_save_leaves_no_temporary_and_removes_a_stale_one(tmp_path) -> None:
    (tmp_path / "checkpoint.npz.tmp").write_bytes(b"\x80 stale")
    save_checkpoint(tmp_path / "checkpoint.npz", full_state(), COMM)
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.npz"]
    save_checkpoint(tmp_path / "checkpoint.npz", {"epoch": 3}, COMM)   # replaced in place
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.npz"]
    assert load_checkpoint(tmp_path / "checkpoint.npz", everything) == {"epoch": 3}


def test_a_failed_save_is_an_error_and_leaves_nothing(tmp_path) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the directory should be")
    with pytest.raises(StorageError, match="cannot write checkpoint .*a file is in the way"):
        save_checkpoint(blocker / "checkpoint.npz", {"epoch": 1}, COMM)
    with pytest.raises(TypeError, match=r"cannot write checkpoint .*a set at state\['x'\]"):
        save_checkpoint(tmp_path / "checkpoint.npz", {"x": {1}}, COMM)
    if os.geteuid() != 0:   # root writes into read-only directories anyway
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        with pytest.raises(StorageError, match=names(locked / "checkpoint.npz")):
            save_checkpoint(locked / "checkpoint.npz", {"epoch": 1}, COMM)
    assert sorted(p.name for p in tmp_path.iterdir()) in (["blocker"], ["blocker", "locked"])


def test_a_failed_save_raises_on_every_rank(run_mpi, python_exe, tmp_path) -> None:
    code, text = run_mpi(2, [python_exe, MPI_SCRIPTS / "checkpoint_ranks.py", tmp_path],
                         timeout=120)
    assert code == 0, text
    report = json.loads(text.strip().splitlines()[-1])
    assert report["nprocs"] == 2 and report["exact"] == [True, True]
    assert report["owned"] == [4, 4]   # both ranks' parameters are in the one file
    first, second = report["write_errors"]
    assert first == second and first[0] == "StorageError"
    assert "cannot write checkpoint" in first[1] and "blocker" in first[1]
    assert report["type_errors"][0] == report["type_errors"][1]
    assert report["type_errors"][0][0] == "TypeError"


# ---- network files ----

def small_net():
    net = nn.ResNet.dense(2, 4, 3, 3)
    rng = np.random.default_rng(2)
    return net, {k: rng.standard_normal(s) for k, s in net.parameter_shapes().items()}


def test_a_truncated_or_corrupt_network_file_is_named(tmp_path) -> None:
    net, params = small_net()
    path = tmp_path / "network.npz"
    nn.save(path, net, params, COMM)
    assert [p.name for p in tmp_path.iterdir()] == ["network.npz"]
    whole = path.read_bytes()
    for cut in (10, len(whole) // 2, len(whole) - 5):
        path.write_bytes(whole[:cut])
        with pytest.raises(StorageError, match="cannot read network file " + names(path)):
            nn.load(path)
    path.write_bytes(whole)
    flip_byte_of(path, params["layers.1.weight"].tobytes())
    with pytest.raises(StorageError, match=names(path)):
        nn.load(path)


def test_a_network_file_of_the_previous_layout_still_loads(tmp_path) -> None:
    net, params = small_net()
    path = tmp_path / "old.npz"
    np.savez(path, __config__=np.array(json.dumps(net.config())), **params)
    loaded_net, loaded = nn.load(path)
    assert loaded_net == net and all(np.array_equal(loaded[k], params[k]) for k in params)
    np.savez(path, __config__=np.array([json.dumps(net.config())], dtype=object), **params)
    with pytest.raises(StorageError, match="never objects"):
        nn.load(path)


# ---- datasets ----

def test_a_broken_npz_dataset_is_named(tmp_path) -> None:
    text = tmp_path / "notzip.npz"
    text.write_text("x,y\n1,2\n")
    with pytest.raises(OSError, match=names(text) + ".*not an .npz"):
        data.load_npz(text)
    npy = tmp_path / "array.npz"
    np.save(npy.with_suffix(".npy"), np.zeros(3))
    npy.with_suffix(".npy").rename(npy)
    with pytest.raises(ValueError, match=names(npy) + ".*not an .npz"):
        data.load_npz(npy)
    good = tmp_path / "good.npz"
    np.savez(good, x=np.zeros((20, 2)), y=np.arange(20) % 2)
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(good.read_bytes()[:-30])
    with pytest.raises(StorageError, match=names(truncated)):
        data.load_npz(truncated)
    lying = tmp_path / "lying.npz"
    write_zip(lying, {"x.npy": lying_npy((10 ** 9, 10 ** 3)), "y.npy": npy_bytes(np.zeros(2))})
    with pytest.raises(StorageError, match=names(lying) + r".*array 'x'.*claims shape"):
        data.load_npz(lying)
    objects = tmp_path / "objects.npz"
    np.savez(objects, x=np.zeros((4, 2)), y=np.array([0, 1, 0, "a"], dtype=object))
    with pytest.raises(StorageError, match=names(objects) + ".*array 'y'.*never objects"):
        data.load_npz(objects)


def test_compressed_npz_datasets_still_load(tmp_path) -> None:
    path = tmp_path / "packed.npz"
    np.savez_compressed(path, x=np.ones((30, 2)), y=np.arange(30) % 3,
                        x_val=np.zeros((5, 2)), y_val=np.arange(5) % 3)
    d = data.load_npz(path)
    assert (len(d.y_train), len(d.y_val), d.classes) == (30, 5, 3)


@pytest.mark.parametrize("stray,match", [
    (10 ** 6, r"y holds label 1000000 on 1 of 1000 examples; at most 100000 classes"),
    (10 ** 9, r"y holds label 1000000000 on 1 of 1000 examples"),
    (1e30, r"y holds label 1000000000000000019884624838656 on 1 of"),
    (5000, r"the largest label, 5000, is on 1 of 1000 examples: that makes 5001 classes"),
])
def test_a_stray_huge_label_is_refused(tmp_path, stray, match) -> None:
    x = np.random.default_rng(0).standard_normal((1000, 2))
    y = (np.arange(1000) % 10).astype(type(stray))
    y[123] = stray
    with pytest.raises(ValueError, match=match):
        data.from_arrays(x, y)
    path = tmp_path / "mine.npz"
    np.savez(path, x=x, y=y)
    with pytest.raises(ValueError, match=match):
        data.load_npz(path)


def test_labels_must_be_numbers_and_small_sets_keep_their_classes() -> None:
    with pytest.raises(ValueError, match="y must hold integer class labels, got <U1"):
        data.from_arrays(np.zeros((4, 2)), np.array(list("abab")))
    with pytest.raises(ValueError, match="x must hold real numbers, got complex128"):
        data.from_arrays(np.zeros((4, 2), dtype=complex), np.zeros(4))
    few = data.from_arrays(np.zeros((6, 2)), np.array([0, 7, 1, 2, 7, 3]))
    assert few.classes == 8   # more classes than examples is fine for small class counts


@pytest.mark.skipif(not layerbraid.gpu_available(), reason="needs CuPy and a CUDA device")
def test_cupy_arrays_are_saved_from_and_loaded_to_the_device(tmp_path) -> None:
    import cupy

    state = full_state()
    on_device = {k: cupy.asarray(v) for k, v in state["params"].items()}
    path = tmp_path / "checkpoint.npz"
    save_checkpoint(path, {"params": on_device, "pairs": [(on_device, 0.5)]}, COMM)
    loaded = load_checkpoint(path, everything, cupy)
    for k, v in state["params"].items():
        assert isinstance(loaded["params"][k], cupy.ndarray)
        assert same_array(loaded["params"][k].get(), v)
        assert same_array(loaded["pairs"][0][0][k].get(), v)
    net, params = small_net()
    nn.save(tmp_path / "network.npz", net, {k: cupy.asarray(v) for k, v in params.items()},
            COMM)
    assert all(same_array(nn.load(tmp_path / "network.npz")[1][k], v) for k, v in params.items())
