"""``layerbraid plan``: recommend MGRIT settings for a layer-parallel run and predict its time.

A cost model of one training step (a forward and an adjoint solve) on P ranks of a platform:

- **Costs** (:class:`CostTable`): seconds per engine callback (layer step forward/adjoint on
  the finest and on coarse levels, and the vector operations clone, sum, norm, init, pack,
  unpack on a state of ``batch * width`` doubles), measured on this machine by
  :func:`calibrate` (dense) or :func:`calibrate_conv` (convolutional) or read from a JSON file
  (the same layout as ``benchmarks/scaling/propagate --calibrate FILE`` writes). A conv table
  also has the costs at each halved image resolution s = 1..S (``<name>_s<s>``: coarse steps,
  vector operations, the 2x2 pooling ``coarsen_s<s>`` from s - 1 to s and the copy back
  ``refine_s<s>``) and ``kernel_coarsen`` (one Galerkin coarse kernel).
- **Platform** (:class:`Platform`): a SimGrid platform file (``platforms/host.xml``,
  ``cluster.xml``, ``gpu.xml`` shipped with the package, or a path) read as data: core speed
  relative to the calibrating machine, cores per host, link and loopback latency/bandwidth,
  fat-tree leaves.
- **Work** (:func:`rank_levels`, :func:`step_counts`): what extern/braid does on each rank,
  derived from its algorithm (grid.c, drive.c, relax.c, transfer.c): points blocked over the
  ranks, levels coarsened by cfactor while the coarse grid keeps min_coarse intervals, a
  V-cycle of relaxation, restriction with the FAS coarse step, the sequential coarsest-grid
  solve, interpolation (F-relaxation plus correction), the skipped first down-cycle, the final
  access sweep. The step counts equal the engine's own (``steps`` in the native solve infos).
- **Time** (:func:`predict`): a critical-path estimate, one function per term: for every
  sweep the slowest rank's work plus one neighbour message; the coarsest solve as a chain
  across the ranks holding coarse points; the residual norm and the final success vote as
  binomial-tree reductions (2 log2 P message latencies).

Spatial coarsening (conv networks, ``Settings.spatial`` = S, the native backend's
``SolverOptions.spatial_coarsen``): time level l steps on images halved s = min(l, S) times;
the step counts do not change. Two kinds (``Settings.spatial_states``, as the library):

- full-size states (the default): vectors, vector operations and messages stay full size; a
  coarse step at s > 0 costs the step at resolution s plus moving the state there and back
  (s poolings, a copy, a subtraction at s, s refinements).
- low-resolution states: vector operations and messages on level l cost what they cost at
  resolution s, and the engine adds its user coarsen (restriction: the restricted value and
  the FAS right-hand side at each C-point; the skipped first cycle: the initial guess at every
  coarse point of every level) and refine (interpolation: the correction at every coarse
  point) calls; from level l to l + 1 coarsen is a 2x2 pooling when l < S and a copy
  otherwise. Such solves need many more iterations (the coarse grid cannot correct fine
  detail), which the measured iteration counts show.

Either way, before the solves every rank coarsens its layers' kernels (S per layer) and, for
the adjoint, the layers' sigma'(z) at each s (:func:`spatial_setup`). Messages of
low-resolution states carry a 16-byte header (the state's resolution), others are the bare
state.

:func:`recommend` searches levels, cfactor, relaxation (one-shot cycles, and for conv networks
spatial coarsening) and says plainly when layer-serial training is faster.
"""

from __future__ import annotations

from .cli import add_arguments, run
from .costs import (COST_NAMES, SPATIAL_COST_NAMES, ConvShape, CostTable, calibrate,
                    calibrate_conv, load_costs, save_costs)
from .model import (Prediction, RankLevel, Settings, level_sizes, predict, rank_levels,
                    serial_time, spatial_setup, step_counts)
from .platforms import PLATFORMS, Platform, load_platform
from .search import Plan, format_plan, measure_iterations, recommend

# Importable from here as before the split into modules, though not in __all__: the constants,
# the model's terms, the search's candidates, and the internals tests/test_plan.py uses.
from .costs import CONV_MESSAGE_HEADER, MAX_SPATIAL, _NativeNet  # noqa: F401
from .model import (RELAXATIONS, Breakdown, _Ctx, coarse_rhs, coarsest_solve,  # noqa: F401
                    final_time, inject_initial_guess, interpolation, message_times,
                    neighbour_message, reduction, relaxation_sweep, restriction_sweep,
                    skip_cycle_time, solve_time, sweep_path, sweep_work, vcycle_time)
from .platforms import PLATFORM_DIR  # noqa: F401
from .search import candidate_settings  # noqa: F401

__all__ = [
    "COST_NAMES", "SPATIAL_COST_NAMES", "CostTable", "ConvShape", "calibrate", "calibrate_conv",
    "load_costs", "save_costs",
    "Platform", "load_platform", "PLATFORMS",
    "Settings", "RankLevel", "rank_levels", "level_sizes", "step_counts",
    "Prediction", "predict", "serial_time", "spatial_setup", "measure_iterations",
    "Plan", "recommend", "format_plan", "add_arguments", "run",
]
