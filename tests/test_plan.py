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
from layerbraid.plan import (COST_NAMES, SPATIAL_COST_NAMES, ConvShape, CostTable, Settings,
                             load_costs, load_platform, predict, recommend, save_costs,
                             step_counts)

SYNTHETIC = CostTable(host="test", width=32, batch=256, costs={
    "step_forward_fine": 50e-6, "step_forward_coarse": 45e-6, "step_adjoint_fine": 60e-6,
    "step_adjoint_coarse": 40e-6, "clone": 2e-6, "sum": 2e-6, "norm": 1e-6, "init": 1e-6,
    "pack": 1e-6, "unpack": 1e-6})

CONV = ConvShape(16, 32, 32, 3)


def conv_table(spatial: int = 3, shape: ConvShape = CONV, batch: int = 8) -> CostTable:
    """A synthetic conv table where the coarse steps dominate: steps and vector operations
    cost in proportion to the pixels (a quarter per halving), pooling and refining little."""
    costs = {"step_forward_fine": 2e-3, "step_forward_coarse": 1.8e-3,
             "step_adjoint_fine": 3e-3, "step_adjoint_coarse": 2.5e-3, "clone": 50e-6,
             "sum": 40e-6, "norm": 20e-6, "init": 30e-6, "pack": 30e-6, "unpack": 30e-6}
    for s in range(1, spatial + 1):
        for name in SPATIAL_COST_NAMES:
            if name in costs:
                costs[f"{name}_s{s}"] = costs[name] / 4 ** s
        costs[f"coarsen_s{s}"] = 60e-6 / 4 ** (s - 1)
        costs[f"refine_s{s}"] = 50e-6 / 4 ** (s - 1)
    costs["kernel_coarsen"] = 5e-6
    return CostTable(host="test", width=shape.features, batch=batch, costs=costs,
                     network="conv", channels=shape.channels, height=shape.height,
                     image_width=shape.width, kernel=shape.kernel, spatial=spatial)


def native_steps(depth: int, settings: Settings, iterations: int, warm: bool
                 ) -> tuple[dict, dict]:
    """Forward and adjoint solve infos of the native backend on one rank."""
    from mpi4py import MPI

    from layerbraid.native import _module

    m = _module()
    o = m.SolverOptions()
    o.max_levels, o.cfactor, o.nrelax = settings.max_levels, settings.cfactor, settings.nrelax
    o.max_iter, o.abs_tol, o.warm_start = iterations, np.nextafter(0.0, 1.0), warm
    o.profile = True   # the step counts (the engine keeps them only when profiling)
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
    (lambda d: d.update(network="lstm"), "network must be 'dense' or 'conv'"),
    (lambda d: d.pop("network"), "no 'network' field"),
    (lambda d: d.update(network="conv"), "no 'channels', 'height', 'image_width', 'kernel', "
                                         "'spatial' fields"),
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
    assert math.isclose(parts, p.total) and p.total > 0 and p.coarsening == 0
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


# ---- conv networks and spatial coarsening ----

def test_conv_cost_table_round_trip(tmp_path: Path):
    table = conv_table(2)
    f = tmp_path / "conv.json"
    save_costs(table, f)
    data = json.loads(f.read_text())
    assert data["network"] == "conv" and data["spatial"] == 2
    assert (data["channels"], data["height"], data["image_width"], data["kernel"]) == \
        (16, 32, 32, 3)
    assert data["width"] == 16 * 32 * 32 and data["state_size"] == 8 * 16 * 32 * 32
    assert set(data["costs"]) == set(COST_NAMES) | {"kernel_coarsen"} | {
        f"{n}_s{s}" for n in SPATIAL_COST_NAMES for s in (1, 2)}
    back = load_costs(f)
    assert back.to_dict() == table.to_dict() and back.conv == CONV
    assert back.state_size_at(2) == 8 * 16 * 8 * 8
    # the dense table is unchanged by the conv fields
    assert set(SYNTHETIC.to_dict()) == {"host", "width", "batch", "network", "activation",
                                        "state_size", "costs"}
    # a conv table without spatial costs may leave out kernel_coarsen
    d = conv_table(0).to_dict()
    del d["costs"]["kernel_coarsen"]
    assert CostTable.from_dict(d).spatial == 0


@pytest.mark.parametrize("change,message", [
    (lambda d: d.pop("image_width"), "no 'image_width' field"),
    (lambda d: d["costs"].pop("coarsen_s2"), "costs lacks coarsen_s2"),
    (lambda d: [d["costs"].pop(k) for k in ("refine_s1", "sum_s2")],
     "costs lacks refine_s1, sum_s2"),
    (lambda d: d["costs"].pop("kernel_coarsen"), "costs lacks kernel_coarsen"),
    (lambda d: d["costs"].update(step_forward_coarse_s3=1e-6), "unknown entries"),
    (lambda d: d["costs"].update(clone_s1=1e9), "costs.clone_s1 must be a time"),
    (lambda d: d["costs"].update(refine_s2=-1e-6), "costs.refine_s2 must be a time"),
    (lambda d: d["costs"].update(coarsen_s1=True), "costs.coarsen_s1 must be a time"),
    (lambda d: d.update(spatial=4), "spatial 4: 32x32 images halve 3 time"),
    (lambda d: d.update(spatial=-1), "spatial must be a non-negative integer"),
    (lambda d: d.update(spatial=1.5), "spatial must be a non-negative integer"),
    (lambda d: d.update(kernel=4), "kernel must be odd"),
    (lambda d: d.update(channels=0), "channels must be a positive integer"),
    (lambda d: d.update(width=100, state_size=800), "width 100 is not channels \\* height"),
    (lambda d: d.update(height=6, width=16 * 6 * 32, state_size=8 * 16 * 6 * 32),
     "spatial 2: 6x32 images halve 1 time"),
])
def test_bad_conv_cost_tables(tmp_path: Path, change, message):
    d = conv_table(2).to_dict()
    change(d)
    f = tmp_path / "bad.json"
    f.write_text(json.dumps(d))
    with pytest.raises(ValueError, match=message):
        load_costs(f)


def test_conv_cost_table_non_finite():
    d = conv_table(1).to_dict()
    d["costs"]["clone_s1"] = float("inf")
    with pytest.raises(ValueError, match="costs.clone_s1 must be a time"):
        CostTable.from_dict(d)
    d = conv_table(1).to_dict()
    d["height"] = float("nan")
    with pytest.raises(ValueError, match="height must be a positive integer"):
        CostTable.from_dict(d)


def test_conv_shape_halvings():
    assert ConvShape(3, 32, 32).max_spatial == 3
    assert ConvShape(3, 28, 28).max_spatial == 2       # 28 -> 14 -> 7
    assert ConvShape(3, 32, 6).max_spatial == 1
    assert ConvShape(3, 7, 32).max_spatial == 0
    assert ConvShape(3, 32, 32).image(2) == (8, 8)


@pytest.mark.parametrize("states", [False, True])
def test_spatial_predictions_shrink_when_coarse_steps_dominate(states):
    """With coarse steps costing a quarter per halving, each more halving saves time (with
    full-size or low-resolution states), and the layer-serial time does not change."""
    cluster = load_platform("cluster")
    table = conv_table(3)
    totals, coarse = [], []
    for S in range(4):
        p = predict(1024, 64, Settings(4, 4, "FCF", spatial=S, spatial_states=states), (5, 5),
                    table, cluster)
        totals.append(p.total)
        coarse.append(p.coarsest)
        parts = p.relaxation + p.coarsest + p.communication + p.norm + p.coarsening
        assert math.isclose(parts, p.total)
        assert (p.coarsening > 0) == (S > 0)
        assert p.serial == predict(1024, 64, Settings(4, 4, "FCF"), (5, 5), table,
                                   cluster).serial
    assert totals == sorted(totals, reverse=True) and totals[3] < totals[0]
    assert coarse == sorted(coarse, reverse=True)
    # S beyond the coarsest level changes nothing (level l computes at min(l, S))
    p3 = predict(1024, 64, Settings(3, 4, "FCF", spatial=2, spatial_states=states), (5, 5),
                 table, cluster)
    p3b = predict(1024, 64, Settings(3, 4, "FCF", spatial=3, spatial_states=states), (5, 5),
                  table, cluster)
    assert math.isclose(p3.coarsest, p3b.coarsest)
    # a dense table has no spatial costs
    with pytest.raises(ValueError, match="dense network"):
        predict(1024, 64, Settings(4, 4, spatial=1), (5, 5), SYNTHETIC, cluster)
    with pytest.raises(ValueError, match="this one has 1"):
        predict(1024, 64, Settings(4, 4, spatial=2), (5, 5), conv_table(1), cluster)


def test_spatial_zero_conv_matches_the_dense_model():
    """Without spatial coarsening, and with full-size states, a conv table goes through the
    dense terms: the same prediction as a dense table of the same costs (spatial_setup
    aside)."""
    cluster = load_platform("cluster")
    table = conv_table(3)
    dense = CostTable(host="x", width=table.width, batch=table.batch,
                      costs={k: table[k] for k in COST_NAMES})
    a = predict(1024, 64, Settings(4, 4, "F"), (5, 5), table, cluster)
    b = predict(1024, 64, Settings(4, 4, "F"), (5, 5), dense, cluster)
    assert a.to_dict() == b.to_dict()
    # full-size states: the same messages and vector operations, only the steps differ
    c = predict(1024, 64, Settings(4, 4, "F", spatial=1), (5, 5), table, cluster)
    assert c.norm == b.norm and c.coarsening > 0


def test_message_bytes_per_level():
    table = conv_table(2)
    state = [8 * 16 * (32 >> s) * (32 >> s) for s in range(3)]
    assert [table.message_bytes_at(s) for s in range(3)] == [8 * n for n in state]
    assert [table.message_bytes_at(s, header=True) for s in range(3)] == \
        [16 + 8 * n for n in state]
    assert SYNTHETIC.message_bytes == SYNTHETIC.message_bytes_at(0) == 8 * 32 * 256
    cluster = load_platform("cluster")
    for spatial in (0, 1, 2):
        # low-resolution states: level l's messages at resolution min(l, S), with the header
        ctx = plan._Ctx(table, cluster, False, spatial, True)
        assert [ctx.message_bytes(l) for l in range(5)] == \
            [16 + 8 * state[min(l, spatial)] for l in range(5)]
        # full-size states: every message is the bare full-size state
        ctx = plan._Ctx(table, cluster, False, spatial, False)
        assert [ctx.message_bytes(l) for l in range(5)] == [8 * state[0]] * 5


def test_costs_per_level():
    table = conv_table(2)
    host = load_platform("host")
    # low-resolution states: coarsen pools while level < S, then copies (clone); vector
    # operations at the level's resolution; the engine's coarsen/refine calls
    ctx = plan._Ctx(table, host, False, 2, True)
    assert ctx.coarsen(0) == table["coarsen_s1"] and ctx.coarsen(1) == table["coarsen_s2"]
    assert ctx.coarsen(2) == ctx.coarsen(5) == table["clone_s2"]
    assert ctx.refine(1) == table["refine_s1"] and ctx.refine(3) == table["clone_s2"]
    assert ctx.op("sum", 1) == table["sum_s1"] and ctx.op("clone", 4) == table["clone_s2"]
    assert ctx.step(0) == table["step_forward_fine"]
    assert ctx.step(1) == table["step_forward_coarse_s1"]
    assert ctx.step(4) == table["step_forward_coarse_s2"]
    assert plan._Ctx(table, host, True, 2, True).step(2) == table["step_adjoint_coarse_s2"]
    # full-size states: full-size vector operations, no engine coarsen/refine calls, and a
    # coarse step moves the state to resolution s and back
    ctx = plan._Ctx(table, host, False, 2, False)
    assert ctx.coarsen(0) == table["sum"] and ctx.refine(1) == 0
    assert ctx.op("sum", 1) == table["sum"]
    assert math.isclose(ctx.step(1), table["step_forward_coarse_s1"] + table["coarsen_s1"]
                        + table["refine_s1"] + table["pack_s1"] + table["sum_s1"])
    assert math.isclose(ctx.step(3), table["step_forward_coarse_s2"] + table["coarsen_s1"]
                        + table["refine_s1"] + table["coarsen_s2"] + table["refine_s2"]
                        + table["pack_s2"] + table["sum_s2"])
    assert plan._Ctx(table, host, False, 0).refine(1) == 0
    assert plan._Ctx(table, host, False, 0).step(1) == table["step_forward_coarse"]
    # the skipped cycle's coarsened initial guess: only with low-resolution states
    lv = plan.rank_levels(64, 2, Settings(3, 4))
    assert plan.inject_initial_guess(plan._Ctx(table, host, False, 2, False), lv) == 0
    assert plan.inject_initial_guess(plan._Ctx(table, host, False, 2, True), lv) > 0
    with pytest.raises(ValueError, match="spatial_states with F-relaxation"):
        Settings(3, 4, "F", spatial=1, spatial_states=True)


def test_spatial_setup_per_rank():
    """Before the solves: S coarse kernels per layer, and for the adjoint the pooled
    sigma'(z) at each resolution too, for the rank with the most layers."""
    table = conv_table(2)
    host = load_platform("host")
    lv0 = plan.rank_levels(100, 4, Settings(3, 4))[0]
    fwd = plan.spatial_setup(plan._Ctx(table, host, False, 2), lv0)
    adj = plan.spatial_setup(plan._Ctx(table, host, True, 2), lv0)
    assert adj == plan.spatial_setup(plan._Ctx(table, host, True, 2, True), lv0)
    layers = int(lv0.stepped.max())      # 26 points on rank 0 (25 layers), 25 on the others
    assert layers == 25
    assert math.isclose(fwd, layers * 2 * table["kernel_coarsen"])
    assert math.isclose(adj, fwd + layers * (table["coarsen_s1"] + table["coarsen_s2"]))
    assert plan.spatial_setup(plan._Ctx(table, host, False, 0), lv0) == 0


def test_candidates_search_spatial():
    cands = plan.candidate_settings(256, max_spatial=3)
    assert {s.spatial for s in cands} == {0, 1, 2, 3}
    assert all(s.spatial <= s.max_levels - 1 and not s.spatial_states for s in cands)
    states = plan.candidate_settings(256, max_spatial=2, spatial_states=True)
    assert all(s.spatial_states == (s.spatial > 0) for s in states)
    assert all(s.relax == "FCF" for s in states if s.spatial)
    assert {s.spatial for s in plan.candidate_settings(256)} == {0}
    pl = recommend(1024, CONV, 8, 64, load_platform("cluster"), conv_table(3),
                   iterations=(5, 5))
    assert pl.best.settings.spatial > 0 and pl.max_spatial == 3
    text = plan.format_plan(pl)
    S = pl.best.settings.spatial
    assert f"spatial coarsening: images halved on levels {'1' if S == 1 else f'1..{S}'}" in text
    # the cost table limits the search
    pl = recommend(1024, CONV, 8, 64, load_platform("cluster"), conv_table(1),
                   iterations=(5, 5))
    assert pl.max_spatial == 1 and max(p.settings.spatial for p in pl.candidates) == 1
    assert any("spatial coarsening searched up to 1" in n for n in pl.notes)
    with pytest.raises(ValueError, match="the cost table is for conv 16x32x32 k3"):
        recommend(1024, ConvShape(8, 32, 32, 3), 8, 64, load_platform("cluster"),
                  conv_table(3), iterations=(5, 5))
    with pytest.raises(ValueError, match="the cost table is for conv"):
        recommend(1024, CONV.features, 8, 64, load_platform("cluster"), conv_table(3),
                  iterations=(5, 5))


def test_cli_json_conv(tmp_path: Path, capsys):
    from layerbraid.cli import main

    f = tmp_path / "conv.json"
    save_costs(conv_table(3), f)
    base = ["plan", "--depth", "1024", "--network", "conv", "--channels", "16", "--image",
            "32x32", "--kernel", "3", "--batch", "8", "--ranks", "64", "--platform", "cluster",
            "--costs", str(f), "--iterations", "5,5"]
    assert main(base + ["--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["network"] == "conv" and d["conv"] == {"channels": 16, "height": 32, "width": 32,
                                                    "kernel": 3}
    assert d["width"] == 16 * 32 * 32 and d["max_spatial"] == 3
    best = d["recommendations"][0]
    assert d["spatial_coarsen"] == best["settings"]["spatial"] > 0
    assert d["spatial_levels"] == list(range(1, best["settings"]["spatial"] + 1))
    assert "coarsening" in best and d["costs"]["spatial"] == 3
    assert best["settings"]["spatial_states"] is False and d["spatial_states"] is False
    assert main(base + ["--json", "--spatial-states"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["spatial_states"] is True and d["recommendations"][0]["settings"]["relax"] == "FCF"
    # --spatial caps the search; 0: none
    assert main(base + ["--json", "--spatial", "0"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["spatial_coarsen"] == 0 and d["max_spatial"] == 0
    assert all(r["settings"]["spatial"] == 0 for r in d["recommendations"])
    assert main(base + ["--spatial", "1"]) == 0
    out = capsys.readouterr().out
    assert "conv tanh ResNet" in out and "spatial coarsening: images halved on levels 1 " in out
    for extra, message in ((["--width", "32"], "--width is for --network dense"),
                           (["--image", "32"], "--image '32'"),
                           (["--spatial", "4"], "--spatial must be in 0..3")):
        args = [a for a in base if a not in ("--image", "32x32")] + \
            (["--image", "32x32"] if extra[0] != "--image" else []) + extra
        assert main(args) == 2
        assert message in capsys.readouterr().err
    # a dense network with conv options, and the conv table for a dense plan
    assert main(["plan", "--depth", "64", "--width", "32", "--batch", "8", "--ranks", "2",
                 "--channels", "4", "--costs", str(f), "--iterations", "5,5"]) == 2
    assert "--channels: for --network conv" in capsys.readouterr().err
    assert main(["plan", "--depth", "64", "--width", "32", "--batch", "8", "--ranks", "2",
                 "--spatial-states", "--costs", str(f), "--iterations", "5,5"]) == 2
    assert "--spatial-states: for --network conv" in capsys.readouterr().err
    assert main(["plan", "--depth", "64", "--width", "32", "--batch", "8", "--ranks", "2",
                 "--costs", str(f), "--iterations", "5,5"]) == 2
    assert "the cost table is for conv" in capsys.readouterr().err


def test_calibrate_conv_small():
    shape = ConvShape(2, 8, 4, 3)           # 8x4 halves twice
    t = plan.calibrate_conv(shape, 2, depth=8, repeats=2)
    assert t.network == "conv" and t.conv == shape and t.spatial == 2
    assert t.width == 2 * 8 * 4 and t.state_size_at(1) == 2 * 2 * 4 * 2
    assert all(t[k] > 0 for k in t.names())
    assert CostTable.from_dict(json.loads(json.dumps(t.to_dict()))).to_dict() == t.to_dict()
    with pytest.raises(ValueError, match="halve 0..2 times"):
        plan.calibrate_conv(shape, 2, spatial=3)


def _has_spatial_coarsening() -> bool:
    from layerbraid.native import _module

    return hasattr(_module().SolverOptions(), "spatial_coarsen")


def test_measure_iterations_conv():
    shape = ConvShape(2, 8, 8, 3)
    spatial = (0, 1, 2) if _has_spatial_coarsening() else (0,)
    for s in spatial:
        fwd, adj = plan.measure_iterations(16, shape, 2, Settings(3, 2, "FCF", spatial=s), 1e-9,
                                           max_iter=50)
        assert 1 <= fwd < 50 and 1 <= adj < 50, (s, fwd, adj)
    if _has_spatial_coarsening():
        # low-resolution states converge too (slowly: the fine detail only by relaxation)
        s = Settings(3, 2, "FCF", spatial=1, spatial_states=True)
        fwd, adj = plan.measure_iterations(16, shape, 2, s, 1e-9, max_iter=100)
        assert 1 <= fwd <= 100 and 1 <= adj <= 100


@pytest.mark.skipif(not _has_spatial_coarsening(),
                    reason="the native backend has no SolverOptions.spatial_coarsen")
@pytest.mark.parametrize("spatial,states", [(1, False), (2, False), (2, True)])
def test_step_counts_unchanged_by_spatial_coarsening(spatial, states):
    """The engine's step counts of a conv solve with spatial coarsening are the model's."""
    from layerbraid.native import _module

    m = _module()
    s = Settings(3, 2, "FCF", spatial=spatial, spatial_states=states)
    o = m.SolverOptions()
    o.max_levels, o.cfactor, o.nrelax, o.spatial_coarsen = 3, 2, 1, spatial
    o.spatial_states = states
    o.max_iter, o.abs_tol, o.profile = 3, np.nextafter(0.0, 1.0), True
    depth, shape = 24, ConvShape(2, 8, 8, 3)
    net = plan._NativeNet(depth, shape, 2, o, o)
    fwd, adj = net.solve()
    for info, adjoint in ((fwd, False), (adj, True)):
        steps, coarsest = step_counts(depth, 1, s, info["iterations"], adjoint=adjoint)
        assert (int(steps[0]), int(coarsest[0])) == (info["steps"], info["steps_coarsest"])
