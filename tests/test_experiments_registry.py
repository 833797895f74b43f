"""The runner registry's contract (experiments.registry): every runner is complete, its smoke config runs and
gives a JSON-ready result and a figure, and results of a seed do not depend on the other seeds.  (That the
library never imports the studies: tests/test_package_structure.py.)"""

import json
import re

import pytest

from experiments import registry
from experiments.cli import execute, main
from symdisc.errors import InputError

RUNNERS = registry.all_runners()


def test_every_runner_is_complete():
    expected = {"booth", "ellipse", "rosenbrock", "e3_regression", "e4_sweep", "e7_runtime", "e10_momentum",
                "e11_adagrad", "e12_digits", "e5_digits", "e12_lr_check", "e5_lr_check", "e6_schedules",
                "e8_correlation", "e9_generalization", "e13_meta", "census_presets", "discovery_rescale-relu-3-3-1"}
    assert expected <= set(RUNNERS)
    for name, r in RUNNERS.items():
        assert r.name == name and r.doc and callable(r.run) and callable(r.figure) and callable(r.summarize)
        assert isinstance(r.defaults, dict) and r.defaults and isinstance(r.smoke, dict)
        assert set(r.smoke) <= set(r.defaults), name  # smoke only overrides declared keys
        assert r.outputs(r.configure(smoke=True), 0) == []  # a smoke run writes nothing into the repository
        assert r.default_seeds >= 1
        assert json.loads(json.dumps(r.defaults)) == r.defaults  # configs are JSON (written with the result)
        path = r.default_path(r.defaults)
        assert path.suffix == ".json" and registry.RESULTS in path.parents


# The discovery runners are one function over cases (experiments/discovery/reproductions.py): three cases cover its
# paths (the scalar metrics, the layer coupling of batch-1 cases, the plain path); the others are checked below
# without training, which keeps the suite's time in bounds.
DISCOVERY_SMOKE = {"discovery_fig6.3-linear-scalar", "discovery_fig6.4-sigmoid-2layer", "discovery_rescale-relu-3-3-1"}
SMOKE = sorted(n for n in RUNNERS if not n.startswith("discovery_") or n in DISCOVERY_SMOKE)


def test_every_discovery_case_builds_its_architecture():
    from experiments.discovery.cases import CASES

    assert {f"discovery_{n}" for n in CASES} == {n for n in RUNNERS if n.startswith("discovery_")} >= DISCOVERY_SMOKE
    for name, case in CASES.items():
        arch = case.arch()
        assert 1 <= RUNNERS[f"discovery_{name}"].configure(smoke=True)["k"] <= arch.num_params


@pytest.mark.parametrize("name", SMOKE)
def test_smoke_config_runs(name, tmp_path):
    """run → a JSON-ready result (strict JSON: non-finite values as null), summarize, figure(s) written."""
    r = RUNNERS[name]
    document = execute(r, r.configure(smoke=True), [0], threads=1, command="smoke")
    assert document["runner"] == name and len(document["results"]) == 1
    json.dumps(document, allow_nan=False)
    r.figure(document, tmp_path / f"{name}.png")
    pngs = list(tmp_path.glob("*.png"))
    assert pngs and all(p.stat().st_size > 1000 for p in pngs)


def test_seed_results_do_not_depend_on_the_other_seeds(tmp_path, capsys):
    """Seed 1 alone gives the result seed 1 gives in a --seeds 2 run (timings aside)."""
    common = ["run", "e3_regression", "--smoke", "--set", 'arms={"known-symdisc": {}}']
    assert main([*common, "--seeds", "2", "--out", str(tmp_path / "two.json")]) == 0
    assert main([*common, "--seed", "1", "--out", str(tmp_path / "one.json")]) == 0
    two, one = (json.loads((tmp_path / f).read_text()) for f in ("two.json", "one.json"))
    untimed = lambda d: json.loads(re.sub(r'"seconds[a-z_]*": [-0-9.e]+', '"seconds": 0', json.dumps(d)))
    assert two["seeds"] == [0, 1] and one["seeds"] == [1]
    assert untimed(two["results"][1]) == untimed(one["results"][0])
    assert untimed(two["results"][0]) != untimed(one["results"][0])


def test_config_overrides_are_checked():
    booth = RUNNERS["booth"]
    assert booth.configure(sets=["lr=1", "optimizer=adam"])["lr"] == 1.0
    with pytest.raises(InputError, match="booth takes KEY=VALUE"):
        booth.configure(sets=["nope=1"])
    with pytest.raises(InputError, match="expected a value of type int"):
        booth.configure(sets=["steps=ten"])
    assert RUNNERS["e3_regression"].configure(smoke=True)["steps"] == 60

