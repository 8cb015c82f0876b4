"""layerbraid plan: the engine-work model against the engine's own step counts, cost tables,
platform files, the recommendation and the command line. No assertion depends on how fast this
machine is: predictions are checked with a fixed, synthetic cost table."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from conftest import MPI_SCRIPTS, RunMPI
from layerbraid import plan
from layerbraid.plan import (COST_NAMES, CostTable, Settings, load_costs, load_platform,
                             predict, recommend, save_costs, step_counts)

SYNTHETIC = CostTable(host="test", width=32, batch=256, costs={
    "step_forward_fine": 50e-6, "step_forward_coarse": 45e-6, "step_adjoint_fine": 60e-6,
    "step_adjoint_coarse": 40e-6, "clone": 2e-6, "sum": 2e-6, "norm": 1e-6, "init": 1e-6,
    "pack": 1e-6, "unpack": 1e-6})


def native_steps(depth: int, settings: Settings, iterations: int, warm: bool
                 ) -> tuple[dict, dict]:
    """Forward and adjoint solve infos of the native backend on one rank."""
    from mpi4py import MPI

    from layerbraid.native import _module

    m = _module()
    o = m.SolverOptions()
    o.max_levels, o.cfactor, o.nrelax = settings.max_levels, settings.cfactor, settings.nrelax
    o.max_iter, o.abs_tol, o.warm_start = iterations, np.nextafter(0.0, 1.0), warm
    W, B = 3, 2
    prop = m.Propagation64("dense", [W], "tanh", depth, 1.0, B, MPI.COMM_SELF.py2f(), o, o,
                           [W, W])
    rng = np.random.default_rng(0)
    w = [rng.normal(size=(W, W)) / np.sqrt(W) for _ in range(depth)]
    b = [rng.normal(size=W) / np.sqrt(W) for _ in range(depth)]
    for _ in range(2 if warm else 1):
        fwd = prop.forward(w, b, np.ones(B * W))
        adj = prop.adjoint(np.array(prop.final_state()))
    return fwd, adj


@pytest.mark.parametrize("depth,levels,cf,relax,iters,warm", [
    (64, 3, 4, "FCF", 3, False), (64, 2, 2, "F", 4, False), (100, 4, 2, "FCF", 2, False),
    (47, 3, 3, "F", 3, True), (33, 5, 2, "FCF", 2, False), (40, 1, 2, "FCF", 1, False),
    (200, 3, 8, "F", 2, True)])
def test_step_counts_match_engine_one_rank(depth, levels, cf, relax, iters, warm):
    s = Settings(levels, cf, relax)
    fwd, adj = native_steps(depth, s, iters, warm)
    for info, adjoint in ((fwd, False), (adj, True)):
        steps, coarsest = step_counts(depth, 1, s, info["iterations"], skip_first=not warm,
                                      adjoint=adjoint)
        assert (int(steps[0]), int(coarsest[0])) == (info["steps"], info["steps_coarsest"])


@pytest.mark.parametrize("ranks", [3])
def test_step_counts_match_engine_per_rank(run_mpi: RunMPI, ranks: int):
    """Under mpiexec: every rank's forward and adjoint (reverted ranks) counts."""
    rc, out = run_mpi(ranks, [__import__("sys").executable, MPI_SCRIPTS / "plan_steps.py"],
                      timeout=60)
    assert rc == 0, out
    rows = json.loads(out.strip().splitlines()[-1])
    assert rows
    for r in rows:
        s = Settings(r["levels"], r["cfactor"], "FCF" if r["nrelax"] else "F")
        assert len(plan.level_sizes(r["depth"], s)) == r["nlevels"]
        for k, name in enumerate(("forward", "adjoint")):
            steps, coarsest = step_counts(r["depth"], ranks, s, r["iterations"][k],
                                          skip_first=not r["warm"], adjoint=name == "adjoint")
            model = [[int(a), int(c)] for a, c in zip(steps, coarsest)]
            assert model == r[name], (r, name)


def test_level_sizes_follow_min_coarse():
    assert plan.level_sizes(4096, Settings(30, 2)) == [4096 >> k for k in range(12)]
    assert plan.level_sizes(64, Settings(3, 4)) == [64, 16, 4]
    assert plan.level_sizes(64, Settings(30, 4, min_coarse=5)) == [64, 16]


def test_cost_table_round_trip(tmp_path: Path):
    f = tmp_path / "costs.json"
    save_costs(SYNTHETIC, f)
    data = json.loads(f.read_text())
    assert data["state_size"] == 32 * 256 and set(data["costs"]) == set(COST_NAMES)
    back = load_costs(f)
    assert back.to_dict() == SYNTHETIC.to_dict()


@pytest.mark.parametrize("change,message", [
    (lambda d: d.pop("costs"), "no 'costs' field"),
    (lambda d: d["costs"].pop("sum"), "costs lacks sum"),
    (lambda d: d["costs"].update(sum=-1.0), "costs.sum must be a time"),
    (lambda d: d["costs"].update(norm="fast"), "costs.norm must be a time"),
    (lambda d: d["costs"].update(extra=1.0), "unknown entries"),
    (lambda d: d.update(state_size=100), "state_size 100 is not width \\* batch"),
    (lambda d: d.update(width=0), "width must be a positive integer"),
    (lambda d: d.update(network="conv"), "network must be 'dense'"),
    (lambda d: d.update(surprise=1), "unknown field"),
])
def test_bad_cost_tables(tmp_path: Path, change, message):
    d = SYNTHETIC.to_dict()
    change(d)
    f = tmp_path / "bad.json"
    f.write_text(json.dumps(d))
    with pytest.raises(ValueError, match=message):
        load_costs(f)


def test_cost_table_not_json(tmp_path: Path):
    f = tmp_path / "bad.json"
    f.write_text('{"host": "x", "width": NaN}')
    with pytest.raises(ValueError, match="NaN is not a number"):
        load_costs(f)
    f.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_costs(f)
    with pytest.raises(ValueError, match="cannot be read"):
        load_costs(tmp_path / "missing.json")


def test_calibrate_small():
    t = plan.calibrate(4, 3, depth=16, repeats=2)
    assert t.width == 4 and t.batch == 3 and t.state_size == 12
    assert all(t[k] > 0 for k in COST_NAMES)
    assert CostTable.from_dict(json.loads(json.dumps(t.to_dict()))).to_dict() == t.to_dict()


def test_shipped_platforms():
    host, cluster, gpu = (load_platform(n) for n in ("host", "cluster", "gpu"))
    assert (host.hosts, host.cores_per_host, host.speed) == (16, 1, 1.0)
    assert math.isclose(host.link_latency, 1.75e-6) and math.isclose(host.link_bandwidth, 2e9)
    assert (cluster.hosts, cluster.cores_per_host, cluster.hosts_per_leaf) == (64, 32, 8)
    assert math.isclose(cluster.link_latency, 0.5e-6)
    assert math.isclose(cluster.link_bandwidth, 12.5e9)
    assert math.isclose(cluster.loopback_latency, 0.4e-6)
    assert math.isclose(cluster.loopback_bandwidth, 12e9)
    assert (gpu.hosts, gpu.cores_per_host, gpu.speed) == (16, 4, 10.0)
    # ranks fill hosts in order; 2 links inside a leaf, 4 through a spine
    assert cluster.hops(0, 31) == 0 and cluster.hops(31, 32) == 2
    assert cluster.hops(0, 8 * 32) == 4
    assert math.isclose(cluster.message_time(31, 32, 0), 1e-6)
    assert math.isclose(cluster.message_time(0, 256, 0), 2e-6)


GOOD = """<?xml version='1.0'?>
<!DOCTYPE platform SYSTEM "https://simgrid.org/simgrid.dtd">
<platform version="4.1"><zone id="w" routing="Full">
<cluster id="c" prefix="n-" suffix="" radical="0-3" speed="2Gf" core="2" bw="1GBps" lat="1us"
 loopback_bw="4GBps" loopback_lat="100ns"/></zone></platform>
"""


@pytest.mark.parametrize("text,message", [
    (GOOD.replace('lat="1us"', 'lat="fast"'), "lat='fast' is not a positive time"),
    (GOOD.replace('speed="2Gf"', 'speed="-2Gf"'), "speed="),
    (GOOD.replace('core="2"', 'core="0"'), "core='0' is not a positive integer"),
    (GOOD.replace("<platform", "<notplatform").replace("</platform>", "</notplatform>"),
     "not <platform>"),
    (GOOD.replace('<!DOCTYPE platform SYSTEM "https://simgrid.org/simgrid.dtd">',
                  '<!DOCTYPE platform [<!ENTITY a "aaaa">]>'), "entities"),
    (GOOD.replace('<!DOCTYPE platform SYSTEM "https://simgrid.org/simgrid.dtd">',
                  '<!DOCTYPE platform SYSTEM "file:///etc/passwd">'), "standard DOCTYPE"),
    (GOOD.replace("</zone>", "<cluster id='d'/></zone>"), "exactly one <cluster>"),
    (GOOD.replace('radical="0-3"', 'radical="3-0"'), "radical"),
    (GOOD[:-20], "not well-formed"),
])
def test_malformed_platform(tmp_path: Path, text: str, message: str):
    f = tmp_path / "p.xml"
    f.write_text(text)
    with pytest.raises(ValueError, match=message):
        load_platform(f)


def test_platform_file(tmp_path: Path):
    f = tmp_path / "p.xml"
    f.write_text(GOOD)
    p = load_platform(f)
    assert (p.hosts, p.cores_per_host, p.speed, p.ranks) == (4, 2, 2.0, 8)
    assert math.isclose(p.loopback_latency, 1e-7) and p.hops(1, 2) == 2
    with pytest.raises(ValueError, match="cannot read"):
        load_platform(tmp_path / "none.xml")


def test_prediction_structure():
    cluster = load_platform("cluster")
    p = predict(4096, 256, Settings(4, 8, "F"), (5, 5), SYNTHETIC, cluster)
    parts = p.relaxation + p.coarsest + p.communication + p.norm
    assert math.isclose(parts, p.total) and p.total > 0
    assert math.isclose(p.serial, 4096 * 110e-6 + 2 * 3e-6)
    # more ranks: less time; a faster platform: less time; more iterations: more time
    assert predict(4096, 512, Settings(4, 8, "F"), (5, 5), SYNTHETIC, cluster).total < p.total
    assert predict(4096, 256, Settings(4, 8, "F"), (6, 5), SYNTHETIC, cluster).total > p.total
    assert predict(4096, 64, Settings(4, 8, "F"), (5, 5), SYNTHETIC,
                   load_platform("gpu")).total < predict(4096, 64, Settings(4, 8, "F"), (5, 5),
                                                         SYNTHETIC, cluster).total
    with pytest.raises(ValueError, match="do not fit"):
        predict(4096, 4096, Settings(4, 8), (5, 5), SYNTHETIC, cluster)


def test_serial_recommended_on_one_rank():
    pl = recommend(1024, 32, 256, 1, load_platform("cluster"), SYNTHETIC, iterations=(5, 5))
    assert pl.verdict.startswith("layer-serial is faster here: one rank")
    assert pl.to_dict()["layer_serial_faster"] is True


def test_parallel_recommended_on_many_ranks():
    pl = recommend(4096, 32, 256, 256, load_platform("cluster"), SYNTHETIC, iterations=(5, 5))
    assert pl.verdict.startswith("layer-parallel:") and pl.best.speedup > 1
    assert [p.total for p in pl.candidates] == sorted(p.total for p in pl.candidates)
    one = recommend(4096, 32, 256, 256, load_platform("cluster"), SYNTHETIC, mode="one-shot")
    assert set(one.by_cycles) == {1, 2, 3} and one.best.iterations == (2, 2)


def test_cli_json(tmp_path: Path, capsys):
    from layerbraid.cli import main

    f = tmp_path / "costs.json"
    save_costs(SYNTHETIC, f)
    rc = main(["plan", "--depth", "4096", "--width", "32", "--batch", "256", "--ranks", "256",
               "--platform", "cluster", "--costs", str(f), "--iterations", "5,5", "--json"])
    out = capsys.readouterr().out
    assert rc == 0
    d = json.loads(out)
    assert d["ranks"] == 256 and d["recommendations"]
    best = d["recommendations"][0]
    assert {"relaxation", "coarsest", "communication", "norm", "total", "speedup",
            "settings"} <= set(best)
    rc = main(["plan", "--depth", "64", "--width", "32", "--batch", "256", "--ranks", "2",
               "--costs", str(f), "--iterations", "5"])
    assert rc == 2
    assert "--iterations '5'" in capsys.readouterr().err
