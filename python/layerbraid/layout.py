"""Which rank holds which layers, states and parameters during layer-parallel propagation.

The forward solve runs over the N + 1 points u_0 .. u_N, blocked over the ranks by the engine
(asked of it: :func:`layerbraid._core.block_owner`). The adjoint solve runs over the same points
in reverse order with ``reverted_ranks``; the engine then gives each rank the mirror image of its
forward block, so lambda_n lives on the rank holding u_n: the last rank holds lambda_N and rank 0
holds lambda_0, next to the classifier and the opening layer.

Every step works with data of its target point only:
- the forward step to point p applies layer p - 1, on the rank owning point p;
- the adjoint step to point n applies layer n's transpose at u_n, on the rank that owns point n
  in the adjoint's distribution.

Layer n's parameters live on the forward owner of point n + 1 (:meth:`LayerLayout.layer_owner`);
the few layers at block boundaries that the adjoint or the smoothness regulariser needs
elsewhere are sent there before a solve (:func:`route`), and their gradients sent back.
"""

from __future__ import annotations

from typing import Any, Hashable, Mapping

from mpi4py import MPI

from . import _core

__all__ = ["LayerLayout", "route"]


class LayerLayout:
    """The distribution of a depth-N network's layers over the ranks of ``comm``."""

    def __init__(self, depth: int, comm: MPI.Comm | None = None) -> None:
        self.comm = MPI.COMM_WORLD if comm is None else comm
        self.depth = int(depth)
        self.size = self.comm.Get_size()
        self.rank = self.comm.Get_rank()
        self.owned_layers = range(*self._owned_span())
        self.adjoint_layers = range(*self._adjoint_span())

    def forward_owner(self, point: int) -> int:
        """The rank holding u_point in the forward solve."""
        return _core.block_owner(self.depth + 1, self.size, point)

    def adjoint_owner(self, point: int) -> int:
        """The rank holding lambda_point in the adjoint solve (time index N - point): by the
        engine's mirror layout of reverted ranks, the rank holding u_point."""
        return self.forward_owner(point)

    def layer_owner(self, n: int) -> int:
        """The rank holding layer n's parameters (it applies the layer in the forward solve)."""
        return self.forward_owner(n + 1)

    def _owned_span(self) -> tuple[int, int]:
        layers = [n for n in range(self.depth) if self.layer_owner(n) == self.rank]
        return (layers[0], layers[-1] + 1) if layers else (0, 0)

    def _adjoint_span(self) -> tuple[int, int]:
        layers = [n for n in range(self.depth) if self.adjoint_owner(n) == self.rank]
        return (layers[0], layers[-1] + 1) if layers else (0, 0)

    @property
    def has_opening(self) -> bool:
        """Rank 0 holds u_0 and lambda_0, so it owns the opening layer."""
        return self.rank == 0

    @property
    def has_classifier(self) -> bool:
        """The last rank holds u_N and lambda_N, so it owns the classifier."""
        return self.rank == self.size - 1

    def owns(self, name: str) -> bool:
        """Whether this rank holds the parameter ``name`` (see :mod:`layerbraid.nn.network`)."""
        part = name.split(".")
        if part[0] == "opening":
            return self.has_opening
        if part[0] == "classifier":
            return self.has_classifier
        return int(part[1]) in self.owned_layers

    def __repr__(self) -> str:
        return (f"LayerLayout(depth={self.depth}, rank={self.rank}/{self.size}, "
                f"owned_layers={self.owned_layers}, adjoint_layers={self.adjoint_layers})")


def route(comm: MPI.Comm, outgoing: Mapping[int, Mapping[Hashable, Any]]) -> dict[Hashable, Any]:
    """Send ``outgoing[rank]`` (a mapping of items) to each rank; return what arrived here.

    Collective over ``comm``; items are pickled (arrays at block boundaries only, so a few
    states per rank), in one all-to-all.
    """
    if comm.Get_size() == 1:
        return dict(outgoing.get(0, {}))
    bundles = comm.alltoall([dict(outgoing.get(r, {})) for r in range(comm.Get_size())])
    received: dict[Hashable, Any] = {}
    for bundle in bundles:
        received.update(bundle)
    return received
