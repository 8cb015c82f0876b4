"""Six predict/correct gradient-descent iterations on a 16-layer toy with 4 blocks; rank 0
prints the losses and the final weights (every entry, gathered by name) as JSON."""

from __future__ import annotations

import json

from mpi4py import MPI

from layerbraid import data, nn
from layerbraid.methods.predict_correct import PredictCorrect

comm = MPI.COMM_WORLD
ds = data.spirals(200, 50)
net = nn.ResNet.dense(2, 4, 2, 16, activation="tanh", final_time=4.0, opening="expand_zero",
                      regularization=nn.Regularization(1e-4, 1e-4, 1e-3))
pc = PredictCorrect(net, comm, blocks=4)
params = pc.init_params(0)
losses = []
for _ in range(6):
    ev = pc.loss_and_gradient(params, ds.x_train, ds.y_train)
    losses.append(ev.loss)
    for k in params:
        params[k] -= 0.5 * ev.gradient[k]
weights = {k: v.ravel().tolist() for part in comm.gather(params) or [] for k, v in part.items()}
if comm.Get_rank() == 0:
    print(json.dumps({"losses": losses, "weights": dict(sorted(weights.items()))}))
