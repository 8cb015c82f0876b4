"""Nested training on however many ranks this runs on; rank 0 prints JSON with the losses of
layer-serial and one-shot nested runs (4 then 8 layers, 3 L-BFGS steps each) and the largest
difference between the distributed interpolation and the whole network's
(tests/test_nested.py compares 1 and 2 ranks)."""

from __future__ import annotations

import json

import numpy as np
from mpi4py import MPI

from layerbraid import Propagator, data, nn
from layerbraid.methods.nested import interpolate_distributed, interpolate_params, train_nested
from layerbraid.train import TrainConfig

comm = MPI.COMM_WORLD

# the distributed interpolation against the whole network's, gathered by name on rank 0
coarse, fine = nn.ResNet.dense(2, 4, 3, 6), nn.ResNet.dense(2, 4, 3, 18)
local = interpolate_distributed(Propagator(coarse, comm).init_params(5), coarse, fine, "linear",
                                comm)
gathered: dict[str, np.ndarray] = {}
for part in comm.gather(local, root=0) or []:
    gathered.update(part)
error = None
if comm.Get_rank() == 0:
    want = interpolate_params(coarse.init_params(5), coarse, fine, "linear")
    assert gathered.keys() == want.keys(), sorted(set(want) ^ set(gathered))
    error = max(float(np.abs(gathered[k] - want[k]).max()) for k in want)

dataset = data.peaks(300, 50)
net = nn.ResNet.dense(2, 6, 5, 8, activation="smoothrelu",
                      regularization=nn.Regularization(1e-7, 1e-7, 1e-5))
losses = {}
for method in ("serial", "one-shot"):
    result = train_nested(net, dataset, TrainConfig(method=method, min_coarse=2), comm,
                          levels=2, epochs=(3, 3))
    losses[method] = [r.loss for r in result.history]
if comm.Get_rank() == 0:
    print(json.dumps({"interpolation_error": error, **losses}))
