"""MGRIT over training iterations on this many ranks: the XOR network (gradient descent) and a
small ResNet (SGD, mini-batches keyed by step).

Usage: mpiexec -n P python iterations_ranks.py OUT.npz
Rank 0 writes each run's gathered trajectory, residual history and work counts to OUT.npz and
prints a JSON line with the iterations, the work and the largest difference from the serial
loop; tests/test_iterations.py compares the files of different rank counts.
"""

from __future__ import annotations

import json
import sys

import numpy as np
from mpi4py import MPI

from layerbraid import data, nn
from layerbraid.methods.iterations import MGRITOverIterations, ResNetProblem, XorNetwork

comm = MPI.COMM_WORLD
xor = XorNetwork()
resnet = ResNetProblem(nn.ResNet.dense(2, 4, 5, 4, activation="tanh"), data.peaks(200, 50),
                       batch_size=32, seed=1)
runs = {"xor": MGRITOverIterations(xor, xor.initial_weights(), 256, 0.5, comm),
        "resnet": MGRITOverIterations(resnet, resnet.initial_weights(), 64, 0.25, comm)}

arrays: dict[str, np.ndarray] = {}
summary: dict[str, object] = {"nprocs": comm.Get_size()}
for name, run in runs.items():
    result = run.solve()
    points: dict[int, np.ndarray] = {}
    for part in comm.gather(result.trajectory, root=0) or []:
        points.update(part)
    if comm.Get_rank() == 0:
        trajectory = np.array([points[i] for i in range(run.steps + 1)])
        serial = np.array(run.serial())
        arrays[f"{name}/trajectory"] = trajectory
        arrays[f"{name}/final"] = result.final_weights
        arrays[f"{name}/residuals"] = np.array([np.nan if r is None else r
                                                for r in result.residual_history])
        arrays[f"{name}/work"] = np.array(result.work)
        summary[name] = {"iterations": result.iterations, "converged": result.converged,
                         "work": list(result.work),
                         "error": float(np.abs(trajectory - serial).max()),
                         "final_is_last": bool(np.array_equal(result.final_weights,
                                                              trajectory[-1]))}
if comm.Get_rank() == 0:
    np.savez(sys.argv[1], **arrays)
    print(json.dumps(summary))
