#!/bin/bash
# Modelled mode against real mode on this machine (README.md, "Validation"): calibrate, then
# for 1 and 2 ranks run real mode and modelled mode (with the real run's iteration counts),
# each under mpiexec and under smpirun, and print the four times relative to real/mpiexec.
#   benchmarks/scaling/validate_model.sh OUTDIR [propagate options]
# Needs build/h_drv (plain) and build/smpi_h (LAYERBRAID_SMPI=ON), both with target propagate.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
out=$1; shift
args=("$@")
[ ${#args[@]} -gt 0 ] || args=(--depth 256 --width 32 --batch 256 --levels 4 --cfactor 4)
mkdir -p "$out" /tmp/smpi_tmp && cd "$out"
real=$root/build/h_drv/benchmarks/scaling/propagate
simu=$root/build/smpi_h/benchmarks/scaling/propagate
mpiexec=$root/.venv/bin/mpiexec
smpirun=(smpirun -platform "${PLATFORM:-$root/python/layerbraid/platforms/host.xml}"
         --cfg=smpi/host-speed:1Gf --cfg=smpi/tmpdir:/tmp/smpi_tmp --cfg=smpi/test:0)
quiet() { grep -v '^\[' || true; }
"$real" "${args[@]}" --calibrate costs.json
for n in 1 2; do
  "$mpiexec" -n $n "$real" "${args[@]}" --tol 1e-8 --repeat 5 --json real_$n.json
  read -r itf ita < <(python3 -c "import json; d = json.load(open('real_$n.json')); \
print(d['iterations_forward'], d['iterations_adjoint'])")
  counts=(--iters-forward "$itf" --iters-adjoint "$ita")
  "$mpiexec" -n $n "$real" "${args[@]}" --compute modelled --costs costs.json "${counts[@]}" \
    --repeat 5 --json model_$n.json
  "${smpirun[@]}" -np $n "$simu" "${args[@]}" --tol 1e-8 --repeat 3 --json smpi_real_$n.json 2>&1 | quiet
  "${smpirun[@]}" -np $n "$simu" "${args[@]}" --compute modelled --costs costs.json "${counts[@]}" \
    --repeat 3 --json smpi_model_$n.json 2>&1 | quiet
done
python3 - <<'PY'
import json
for n in (1, 2):
    runs = {k: json.load(open(f"{k}_{n}.json")) for k in ("real", "model", "smpi_real", "smpi_model")}
    same = all(runs[k]["per_rank"]["steps"] == runs["real"]["per_rank"]["steps"] for k in runs)
    base = runs["real"]["time"]
    print(f"ranks={n}: " + "  ".join(f"{k}={v['time']:.4f}s ({v['time'] / base - 1:+.1%})"
                                     for k, v in runs.items())
          + f"  per-rank steps identical: {same}")
PY
