"""``symdisc sweep`` / ``symdisc.sweep``: tasks from a grid, both backends give identical tables, failures kept
apart, retries, an interrupted sweep completes only its missing tasks, bad sweep files are one-line errors."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from symdisc.cli.main import main
from symdisc.errors import InputError
from symdisc.sweep import SweepConfig, run_sweep
from symdisc.sweep import backends as sweep_backends

ROOT = Path(__file__).resolve().parents[1]
REGISTRY = "tests.sweep_registry"


@pytest.fixture(autouse=True)
def _repo_root(monkeypatch):
    monkeypatch.chdir(ROOT)  # the registry module is found from the working directory (as from a checkout)


def write(tmp_path, name="sweep.json", **data) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps({"registry": REGISTRY, "out": "out", **data}))
    return path


def table(path) -> str:
    return Path(path).read_text()


def census_sweep(tmp_path, out):
    return write(tmp_path, f"{out}.json", runners=["census"], seeds=[0, 1, 2], out=out,
                 grid={"arch": ["mlp", "tanh-3layer", "tiny-transformer"]})


def test_three_architectures_by_three_seeds_on_both_backends_give_identical_tables(tmp_path):
    pytest.importorskip("ray")
    local = run_sweep(SweepConfig.load(census_sweep(tmp_path, "local")), "local", workers=2)
    ray_report = run_sweep(SweepConfig.load(census_sweep(tmp_path, "ray")), "ray")  # starts and stops a Ray instance
    for r in (local, ray_report):
        assert r["tasks"] == r["ran"] == r["done"] == 9 and not r["failed"]
    assert table(local["table_csv"]) == table(ray_report["table_csv"])
    assert table(local["table_json"]) == table(ray_report["table_json"])
    rows = json.loads(table(local["table_json"]))
    assert {(r["param.arch"], r["seed"]) for r in rows} == {(a, s) for a in ("mlp", "tanh-3layer", "tiny-transformer")
                                                            for s in (0, 1, 2)}
    assert all("seconds" not in k for k in rows[0]) and "result.output_null_dim" in rows[0]
    assert "result.seconds" in table(local["timing_csv"]).splitlines()[0]
    import torch

    import symdisc
    from symdisc import zoo

    direct = symdisc.census(zoo.get("tiny-transformer").to(dtype=torch.float64), batch_sizes=[4], points=1, seed=2)
    got = next(r for r in rows if r["param.arch"] == "tiny-transformer" and r["seed"] == 2)
    assert got["result.output_null_dim"] == direct.rows[0].output_null_dim
    import ray
    assert not ray.is_initialized()  # the backend shut the instance it started down


def test_a_failing_task_is_reported_and_costs_no_other_result(tmp_path, capsys):
    path = write(tmp_path, runners=["flaky"], seeds=[0, 1, 2])
    code = main(["sweep", str(path), "--json"])
    out, err = capsys.readouterr()
    report = json.loads(out)
    assert code == 5 and "1 of 3 tasks failed" in err and err.count("\n") == 1
    assert report["done"] == 2 and [f["error"] for f in report["failed"]] == ["ValueError: seed 1 is broken"]
    rows = {r["seed"]: r for r in json.loads(table(report["table_json"]))}
    assert rows[0]["result.value"] == 0 and rows[2]["result.value"] == 4 and rows[1]["status"] == "failed"
    code = main(["sweep", str(path), "--json"])  # a re-run retries only the failed task
    again = json.loads(capsys.readouterr()[0])
    assert code == 5 and again["skipped"] == 2 and again["ran"] == 1


def test_retries_rerun_a_failed_task(tmp_path):
    marker = tmp_path / "marker"
    path = write(tmp_path, runners=["flaky"], seeds=[0], retries=1, set={"marker": str(marker)})
    report = run_sweep(SweepConfig.load(path))
    assert report["done"] == 1 and report["attempts"] == 2 and not report["failed"]


def test_an_interrupted_sweep_completes_only_the_missing_tasks(tmp_path):
    path = write(tmp_path, runners=["slow"], seeds=list(range(8)), set={"sleep": 0.4})
    tasks = tmp_path / "out" / "tasks"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "symdisc", "sweep", str(path), "--json"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline and len(list(tasks.glob("[!.]*.json")) if tasks.exists() else []) < 2:
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    finished = len(list(tasks.glob("[!.]*.json")))  # not a temporary file of a write the kill cut short
    assert 2 <= finished < 8
    report = run_sweep(SweepConfig.load(path))
    assert report["skipped"] == finished and report["ran"] == 8 - finished and report["done"] == 8
    assert not list(tasks.glob(".*"))  # no half-written file left by the kill


def test_a_rerun_redoes_unreadable_results_and_removes_partial_writes(tmp_path, capsys):
    """What a crash can leave: a result file cut short (power loss before the data reached the disk) is run again
    instead of failing every re-run; the temporary files of writes a SIGKILL interrupted are removed."""
    path = write(tmp_path, runners=["flaky"], seeds=[0, 2, 3])
    first = run_sweep(SweepConfig.load(path))
    tasks = tmp_path / "out" / "tasks"
    cut, empty, kept = (tasks / f"{r['task']}.json" for r in json.loads(table(first["table_json"])))
    good, kept_mtime = cut.read_text(), kept.stat().st_mtime_ns
    cut.write_text(good[: len(good) // 2])
    empty.write_text("")
    partial = [tasks / f".{cut.name}.k1ll3d00.json", tmp_path / "out" / ".table.csv.k1ll3d00.csv"]
    for p in partial:
        p.write_text("{")
    other = tasks / ".notes"  # not a file of the sweep: left alone
    other.write_text("mine")
    assert main(["sweep", str(path), "--json"]) == 0
    report = json.loads(capsys.readouterr()[0])
    assert (report["skipped"], report["ran"], report["done"]) == (1, 2, 3)
    assert cut.read_text() != good[: len(good) // 2] and json.loads(cut.read_text())["result"] == {"value": 0}
    assert json.loads(empty.read_text())["result"] == {"value": 4} and kept.stat().st_mtime_ns == kept_mtime
    assert table(report["table_csv"]) == table(first["table_csv"])
    assert not any(p.exists() for p in partial) and other.read_text() == "mine"


def test_a_directory_holding_another_sweep_is_refused(tmp_path):
    run_sweep(SweepConfig.load(write(tmp_path, runners=["flaky"], seeds=[0])))
    with pytest.raises(InputError, match="holds another sweep"):
        run_sweep(SweepConfig.load(write(tmp_path, "other.json", runners=["flaky"], seeds=[0, 2])))


@pytest.mark.parametrize("data, message", [
    ({"runners": []}, "needs 'runners'"),
    ({"runners": ["flaky"], "seeds": [-1]}, "'seeds' must be"),
    ({"runners": ["flaky"], "grid": {"scale": []}}, "non-empty lists"),
    ({"runners": ["flaky"], "colour": 1}, "unknown sweep key"),
    ({"runners": ["nope"]}, "unknown runner 'nope'"),
    ({"runners": ["flaky"], "set": {"nope": 1}}, "no config key nope"),
    ({"runners": ["flaky"], "registry": "no.such.module"}, "cannot import the runner registry"),
    ({"runners": ["flaky"], "threads": 0}, "'threads' must be ≥ 1"),
    ({"runners": ["flaky"], "resources": {"tpus": 1}}, "'resources' takes cpus and gpus"),
])
def test_bad_sweep_files_are_one_line_errors(tmp_path, capsys, data, message):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"registry": REGISTRY, **data}))
    code = main(["sweep", str(path)])
    err = capsys.readouterr()[1]
    assert code == 2 and message in err and err.count("\n") == 1


def test_bad_files_and_options(tmp_path, capsys):
    (tmp_path / "broken.toml").write_text("runners = [")
    good = str(write(tmp_path, runners=["flaky"]))
    for argv, message in [(["sweep", str(tmp_path / "missing.json")], "no sweep file"),
                          (["sweep", str(tmp_path / "broken.toml")], "not valid TOML"),
                          (["sweep", good, "--backend", "slurm"], "unknown backend"),
                          (["sweep", good, "--address", "x:1"], "applies to the ray"),
                          (["sweep", good, "--workers", "0"], "--workers must be")]:
        code = main(argv)
        err = capsys.readouterr()[1]
        assert code == 2 and message in err, (argv, err)


class FakeRay:
    """Two alive nodes; the second cannot see the results directory."""

    def __init__(self):
        self.calls = []

    def nodes(self):
        return [{"Alive": True, "NodeID": "a" * 56, "NodeManagerAddress": "10.0.0.1"},
                {"Alive": True, "NodeID": "b" * 56, "NodeManagerAddress": "10.0.0.2"}]

    def remote(self, **kwargs):
        fake = self

        def wrap(fn):
            class Remote:
                def options(self, scheduling_strategy):
                    node = scheduling_strategy.node_id

                    class Call:
                        def remote(self, path):
                            fake.calls.append(node)
                            return fn(path) if node == "a" * 56 else False

                    return Call()

            return Remote()

        return wrap

    def get(self, value):
        return value


def test_multi_node_sweeps_need_shared_storage(tmp_path):
    pytest.importorskip("ray")
    fake = FakeRay()
    with pytest.raises(InputError, match="not visible from node.*10.0.0.2.*shared storage"):
        sweep_backends._check_shared_storage(fake, tmp_path)
    assert len(fake.calls) == 2 and not list(tmp_path.iterdir())  # the marker is removed


def test_device_sets_the_runners_device_option(tmp_path, capsys):
    report = run_sweep(SweepConfig.load(write(tmp_path, runners=["placed"], seeds=[0])), device="cpu")
    assert json.loads(table(report["table_json"]))[0]["result.device"] == "cpu"
    code = main(["sweep", str(write(tmp_path, "flaky.json", runners=["flaky"], out="other")), "--device", "cpu"])
    assert code == 2 and "flaky has no device option" in capsys.readouterr()[1]
    code = main(["sweep", str(write(tmp_path, "tpu.json", runners=["placed"], out="tpu")), "--device", "tpu"])
    assert code == 2
