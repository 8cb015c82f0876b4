"""Data-only files: arrays plus JSON metadata in one ``.npz``-compatible zip, written atomically
and checked on load. Nothing here can run code from a file: no pickle, ``allow_pickle=False``
throughout, object dtypes refused, and every ``.npy`` header's claimed size checked against the
member's stored size before anything is allocated.

The layout (container version 1), readable with ``np.load(path, allow_pickle=False)``:

- ``__layerbraid__.npy``: uint8, the UTF-8 JSON header ``{"container": 1, "format": <name>,
  "version": <int>, "meta": <JSON value>, "arrays": [{"name", "dtype", "shape"}, ...]}``;
- ``__sha256__.npy``: uint8, the 64 ASCII hex digits of the content hash (below);
- ``<name>.npy`` for every array listed in the header, C order, in the listed order.

The content hash is SHA-256 over length-prefixed chunks (8-byte little-endian length, then the
bytes): the header's bytes, then for each listed array its name (UTF-8), its ``dtype.str``, its
shape as JSON (``[2, 3]``) and its C-order bytes. A flipped byte anywhere is refused. The hash
detects corruption, not tampering: a crafted file can carry a matching hash, which is why
reading never depends on it for safety.

Writing goes to ``<path>.tmp`` in the same directory (a stale one from a crash is removed
first), is flushed and fsynced, renamed over ``path`` and the directory fsynced; on any failure
the temporary is removed. Every problem reading a file is a :class:`StorageError`, which is both
an ``OSError`` and a ``ValueError``, and its message names the file and what is wrong.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Collection, Iterable, Mapping

import numpy as np
from numpy.lib import format as npy

__all__ = ["StorageError", "Contents", "NpzReader", "write_arrays", "read_arrays", "read_npz",
           "HEADER", "HASH", "CONTAINER_VERSION", "MAX_ARRAY_BYTES", "MAX_HEADER_BYTES"]

#: Member names (without ``.npy``) of the JSON header and of the content hash.
HEADER, HASH = "__layerbraid__", "__sha256__"
CONTAINER_VERSION = 1
#: The largest array (bytes) a reader accepts unless told otherwise (16 GiB).
MAX_ARRAY_BYTES = 1 << 34
#: The largest JSON header a reader accepts (64 MiB).
MAX_HEADER_BYTES = 1 << 26
#: dtype kinds stored and read: bool, ints, floats, complex, bytes and unicode strings.
_KINDS = "biufcSU"
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,199}")
_DATE = (1980, 1, 1, 0, 0, 0)   # a fixed member time: the same content gives the same bytes
# What reading a broken zip or .npy member can raise.
_READ_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, TypeError,
                SyntaxError, KeyError, NotImplementedError, RuntimeError, RecursionError,
                OverflowError, MemoryError)


class StorageError(OSError, ValueError):
    """A file that cannot be read or written as asked (missing, truncated, corrupt, of another
    format, or holding something not allowed); the message names the file."""


@dataclass(frozen=True)
class Contents:
    """What :func:`read_arrays` found: the format and its version, the JSON metadata and the
    arrays by name (in the order written)."""

    format: str
    version: int
    meta: Any
    arrays: dict[str, np.ndarray]


def _describe(path: str | os.PathLike[str]) -> str:
    return repr(os.fspath(path))


def _reason(e: BaseException) -> str:
    if isinstance(e, OSError) and e.strerror:
        return e.strerror
    if isinstance(e, MemoryError):
        return "too large to load (out of memory)"
    return str(e) or type(e).__name__


# ---- writing ----

def _check_array(name: str, value: Any) -> np.ndarray:
    if not isinstance(name, str) or not _NAME.fullmatch(name) or name.startswith("__"):
        raise ValueError(f"array name {name!r} is not allowed: use letters, digits, '_', '.', "
                         "'-' (up to 200, not starting with '__' or '.')")
    array = np.asarray(value)
    if array.dtype.kind not in _KINDS or array.dtype.fields is not None:
        raise TypeError(f"array {name!r} has dtype {array.dtype}, which is not stored; use "
                        "bool, integer, float, complex or string arrays")
    return array if array.flags.c_contiguous else array.copy(order="C")  # keeps 0-d arrays


def _chunk(h: Any, data: bytes | np.ndarray) -> None:
    size = data.nbytes if isinstance(data, np.ndarray) else len(data)
    h.update(size.to_bytes(8, "little"))
    h.update(data)


def _hash_array(h: Any, name: str, array: np.ndarray) -> None:
    _chunk(h, name.encode())
    _chunk(h, array.dtype.str.encode())
    _chunk(h, json.dumps(list(array.shape)).encode())
    flat = array.reshape(-1) if array.flags.c_contiguous else array.ravel(order="C")
    _chunk(h, flat.view(np.uint8) if flat.dtype.itemsize else b"")


def _write_member(zf: zipfile.ZipFile, name: str, array: np.ndarray) -> None:
    info = zipfile.ZipInfo(name + ".npy", date_time=_DATE)
    info.compress_type = zipfile.ZIP_STORED
    info.external_attr = 0o644 << 16
    with zf.open(info, "w", force_zip64=True) as member:
        npy.write_array(member, array, allow_pickle=False)


def _fsync_directory(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return  # platforms that cannot open directories (Windows) have nothing to sync
    try:
        os.fsync(fd)
    except OSError as e:
        if e.errno not in (getattr(os, "EINVAL", None), getattr(os, "ENOTSUP", None)):
            raise
    finally:
        os.close(fd)


def write_arrays(path: str | os.PathLike[str], arrays: Mapping[str, Any], *, format: str,
                 version: int, meta: Any = None, what: str = "file") -> None:
    """Write ``arrays`` (host arrays by name) and the JSON-able ``meta`` to ``path`` atomically.

    Raises ``TypeError``/``ValueError`` for a name, dtype or ``meta`` that cannot be stored
    (before touching the disk) and :class:`StorageError` when writing fails.
    """
    try:
        checked = {name: _check_array(name, value) for name, value in arrays.items()}
        header = {"container": CONTAINER_VERSION, "format": str(format),
                  "version": int(version), "meta": meta,
                  "arrays": [{"name": n, "dtype": a.dtype.str, "shape": list(a.shape)}
                             for n, a in checked.items()]}
        try:
            header_bytes = json.dumps(header, allow_nan=False, ensure_ascii=False).encode()
        except (TypeError, ValueError, RecursionError) as e:
            raise TypeError(f"the metadata is not plain JSON ({e})") from e
    except (TypeError, ValueError) as e:
        raise type(e)(f"cannot write {what} {_describe(path)}: {e}") from e
    h = hashlib.sha256()
    _chunk(h, header_bytes)
    for name, array in checked.items():
        _hash_array(h, name, array)
    digest = h.hexdigest().encode()

    target = Path(path)
    tmp = target.with_name(target.name + ".tmp")
    try:
        tmp.unlink(missing_ok=True)   # a stale temporary from an earlier crash
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0),
                     0o666)
        try:
            with os.fdopen(fd, "wb") as f:
                with zipfile.ZipFile(f, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
                    _write_member(zf, HEADER, np.frombuffer(header_bytes, dtype=np.uint8))
                    _write_member(zf, HASH, np.frombuffer(digest, dtype=np.uint8))
                    for name, array in checked.items():
                        _write_member(zf, name, array)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, target)
        except BaseException:
            try:
                tmp.unlink(missing_ok=True)
            except OSError:
                pass
            raise
        _fsync_directory(target.parent)
    except OSError as e:
        raise StorageError(f"cannot write {what} {_describe(path)}: {_reason(e)}") from e


# ---- reading ----

class NpzReader:
    """A zip of ``.npy`` members opened for safe reading (a context manager).

    ``names`` are the array names (members ending ``.npy``, without it); :meth:`read` reads one
    after checking its header; :meth:`read_verified` reads a file of :func:`write_arrays` and
    checks its format, version, members and hash.
    """

    def __init__(self, path: str | os.PathLike[str], *, what: str = "file",
                 max_bytes: int = MAX_ARRAY_BYTES) -> None:
        self.path, self.what, self.max_bytes = path, what, max_bytes
        self._file: IO[bytes] | None = None
        self._zip: zipfile.ZipFile | None = None
        try:
            self._file = open(path, "rb")
            self._size = os.fstat(self._file.fileno()).st_size
            head = self._file.read(4)
            self._file.seek(0)
            if head[:1] == b"\x80":
                raise self.error("it is a pickle, not an .npz (zip) file; pickles are never "
                                 "loaded because unpickling can run code")
            if head[:2] != b"PK":
                raise self.error("not an .npz (zip) file" if head else "the file is empty")
            self._zip = zipfile.ZipFile(self._file)
            infos = self._zip.infolist()
        except StorageError:
            self.close()
            raise
        except _READ_ERRORS as e:
            self.close()
            if isinstance(e, zipfile.BadZipFile):
                raise self.error(f"it is truncated or corrupt, not a whole zip archive ({e})") \
                    from e
            raise self.error(_reason(e)) from e
        self._infos: dict[str, zipfile.ZipInfo] = {}
        for info in infos:
            if info.filename in self._infos:
                self.close()
                raise self.error(f"member {info.filename!r} appears twice")
            self._infos[info.filename] = info
        self.names = frozenset(n[:-4] for n in self._infos if n.endswith(".npy"))

    def error(self, problem: str) -> StorageError:
        """The exception for ``problem`` with this file."""
        return StorageError(f"cannot read {self.what} {_describe(self.path)}: {problem}")

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()
            self._zip = None
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> "NpzReader":
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def read(self, name: str, *, max_bytes: int | None = None) -> np.ndarray:
        """The array ``name``, after checking that its ``.npy`` header is sane: a dtype of
        :data:`_KINDS`, and a shape whose size matches the member's stored size."""
        assert self._zip is not None, "the reader is closed"
        limit = self.max_bytes if max_bytes is None else max_bytes
        info = self._infos.get(name + ".npy")
        if info is None:
            raise self.error(f"it lacks array {name!r}")
        where = f"array {name!r}"
        if info.flag_bits & 0x1:
            raise self.error(f"{where} is encrypted")
        if info.compress_type == zipfile.ZIP_STORED and info.compress_size != info.file_size:
            raise self.error(f"{where}: the zip directory gives it {info.compress_size} stored "
                             f"and {info.file_size} unpacked bytes")
        if info.header_offset + info.compress_size > self._size:
            raise self.error(f"{where} runs past the end of the file (truncated)")
        try:
            with self._zip.open(info) as member:
                try:
                    major, _ = npy.read_magic(member)
                except ValueError as e:
                    raise self.error(f"{where} is not an .npy array ({e})") from e
                if major == 1:
                    shape, fortran, dtype = npy.read_array_header_1_0(member)
                elif major == 2:
                    shape, fortran, dtype = npy.read_array_header_2_0(member)
                else:
                    raise self.error(f"{where} has .npy format version {major}, not 1 or 2")
                if dtype.hasobject or dtype.kind not in _KINDS or dtype.fields is not None:
                    raise self.error(f"{where} has dtype {dtype}; only bool, integer, float, "
                                     "complex and string arrays are read (never objects)")
                if any(n < 0 for n in shape):
                    raise self.error(f"{where} claims the negative shape {shape}")
                nbytes = math.prod(shape) * dtype.itemsize
                stored = info.file_size - member.tell()
                if nbytes != stored:
                    raise self.error(f"{where}: its header claims shape {shape} of {dtype} "
                                     f"({nbytes} bytes), the member holds {stored} bytes")
                if nbytes > limit:
                    raise self.error(f"{where} of shape {shape} ({nbytes} bytes) exceeds the "
                                     f"limit of {limit} bytes")
                if info.compress_type == zipfile.ZIP_DEFLATED and \
                        info.file_size > 1100 * info.compress_size + 4096:
                    raise self.error(f"{where}: {info.compress_size} compressed bytes cannot "
                                     f"unpack to the {info.file_size} its directory claims")
                flat = np.empty(math.prod(shape), dtype=dtype)
                view = memoryview(flat.view(np.uint8) if dtype.itemsize else bytearray())
                done = 0
                while done < nbytes:
                    got = member.readinto(view[done:])
                    if not got:
                        raise self.error(f"{where} ends after {done} of {nbytes} bytes "
                                         "(truncated)")
                    done += got
                if member.read(1):
                    raise self.error(f"{where} holds more bytes than its header claims")
        except StorageError:
            raise
        except zipfile.BadZipFile as e:
            raise self.error(f"{where} is corrupt ({e})") from e
        except _READ_ERRORS as e:
            raise self.error(f"{where}: {_reason(e)}") from e
        if fortran:
            return flat.reshape(shape[::-1]).T
        return flat.reshape(shape)

    def read_verified(self, format: str, versions: Collection[int]) -> Contents:
        """The contents of a file written by :func:`write_arrays` with ``format`` and one of
        ``versions``; refuses other formats and versions, missing or extra members and any
        difference from the content hash."""
        if HEADER not in self.names or HASH not in self.names:
            raise self.error(f"it is not a {format} file (no {HEADER} and {HASH} members)")
        raw = self.read(HEADER, max_bytes=MAX_HEADER_BYTES)
        if raw.dtype != np.uint8 or raw.ndim != 1:
            raise self.error(f"its {HEADER} member is not a uint8 vector")
        header_bytes = raw.tobytes()
        try:
            header = json.loads(header_bytes.decode(), parse_constant=_no_constant)
        except (ValueError, RecursionError) as e:
            raise self.error(f"its header is not valid JSON ({_reason(e)})") from e
        if not isinstance(header, dict) or not {"container", "format", "version", "arrays",
                                                "meta"} <= set(header):
            raise self.error("its header lacks container, format, version, arrays or meta")
        if header["container"] != CONTAINER_VERSION:
            raise self.error(f"container version {header['container']!r} is not supported "
                             f"(this layerbraid reads {CONTAINER_VERSION})")
        if header["format"] != format:
            raise self.error(f"it holds a {header['format']!r} file, not {format!r}")
        if header["version"] not in versions or isinstance(header["version"], bool):
            raise self.error(f"{format} version {header['version']!r} is not supported (this "
                             f"layerbraid reads version {', '.join(map(str, versions))})")
        listed = header["arrays"]
        if not isinstance(listed, list) or not all(
                isinstance(e, dict) and isinstance(e.get("name"), str) and
                isinstance(e.get("dtype"), str) and isinstance(e.get("shape"), list)
                for e in listed):
            raise self.error("its header's array list is malformed")
        names = [e["name"] for e in listed]
        if len(set(names)) != len(names) or HEADER in names or HASH in names:
            raise self.error("its header lists an array twice")
        missing = [n for n in names if n not in self.names]
        if missing:
            raise self.error(f"it lacks array(s) {missing[:4]} that its header lists")
        extra = sorted(set(self._infos) - {n + ".npy" for n in [HEADER, HASH, *names]})
        if extra:
            raise self.error(f"it holds member(s) {extra[:4]} that its header does not list")
        digest = self.read(HASH, max_bytes=64)
        h = hashlib.sha256()
        _chunk(h, header_bytes)
        arrays: dict[str, np.ndarray] = {}
        for entry in listed:
            name = entry["name"]
            array = self.read(name)
            if array.dtype.str != entry["dtype"] or list(array.shape) != entry["shape"]:
                raise self.error(f"array {name!r} is {array.dtype.str} {array.shape}, its "
                                 f"header says {entry['dtype']} {tuple(entry['shape'])}")
            _hash_array(h, name, array)
            arrays[name] = array
        if digest.dtype != np.uint8 or digest.tobytes() != h.hexdigest().encode():
            raise self.error("its content does not match its SHA-256 (the file is corrupt)")
        return Contents(format, header["version"], header["meta"], arrays)


def _no_constant(token: str) -> Any:
    raise ValueError(f"{token} is not JSON")


def read_arrays(path: str | os.PathLike[str], *, format: str, versions: Collection[int],
                what: str = "file", max_bytes: int = MAX_ARRAY_BYTES) -> Contents:
    """The contents of a file written by :func:`write_arrays`, verified (see
    :meth:`NpzReader.read_verified`); :class:`StorageError` for any problem."""
    with NpzReader(path, what=what, max_bytes=max_bytes) as reader:
        return reader.read_verified(format, versions)


def read_npz(path: str | os.PathLike[str], names: Iterable[str] | None = None, *,
             what: str = "file", max_bytes: int = MAX_ARRAY_BYTES) -> dict[str, np.ndarray]:
    """Arrays of any ``.npz`` file (``names``, or all), each checked as :meth:`NpzReader.read`
    checks it; a name the file lacks is a :class:`StorageError`."""
    with NpzReader(path, what=what, max_bytes=max_bytes) as reader:
        return {name: reader.read(name) for name in (sorted(reader.names) if names is None
                                                     else names)}
