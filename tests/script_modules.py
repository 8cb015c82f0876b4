"""Loading the test scripts (tests/mpi/*.py, examples) as modules, for the apps and cases the
pytest files share with the scripts they launch under mpiexec."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

MPI_SCRIPTS = Path(__file__).resolve().parent / "mpi"


def load_module(name: str, path: Path) -> ModuleType:
    """The module at path, imported once under name (later calls return the same module)."""
    if name in sys.modules:
        return sys.modules[name]
    if str(path.parent) not in sys.path:  # the scripts import their neighbours
        sys.path.append(str(path.parent))
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
