"""Five L-BFGS steps of layer-serial and of one-shot training on small Peaks; rank 0 prints
the losses as JSON (tests/test_train.py compares 1 and 2 ranks)."""

from __future__ import annotations

import json

from mpi4py import MPI

from layerbraid import data, nn
from layerbraid.train import TrainConfig, Trainer

dataset = data.peaks(300, 50)
net = nn.ResNet.dense(2, 6, 5, 12, activation="smoothrelu",
                      regularization=nn.Regularization(1e-7, 1e-7, 1e-5))
losses = {}
for method in ("serial", "one-shot"):
    trainer = Trainer(net, dataset, TrainConfig(method=method, epochs=5, min_coarse=2),
                      progress=False)
    losses[method] = [r.loss for r in trainer.fit()]
if MPI.COMM_WORLD.Get_rank() == 0:
    print(json.dumps(losses))
