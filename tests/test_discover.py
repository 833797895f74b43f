"""End-to-end discovery: training, held-out verification, artefacts, resume, failures."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from symdisc import SymdiscError, make_generator, verify, zoo
from symdisc.cli.main import main
from symdisc.discovery import artefact
from symdisc.discovery.api import discover
from symdisc.discovery.config import preset_config
from symdisc.discovery.trainer import Trainer


@pytest.fixture(scope="module")
def scalar_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("scalar")
    report = discover(zoo.get("linear-scalar"), out, k=1, steps=120, verify_draws=8, make_figures=True)
    return out, report


def test_linear_scalar_learns_the_rescaling(scalar_run):
    """B6: the learned field is parallel to (w1, −w2) on held-out θ, |cos| ≥ 0.99."""
    out, report = scalar_run
    sym = artefact.load(out, fields="all")
    arch = zoo.get("linear-scalar").to(dtype=torch.float64)
    theta, X, _ = arch.sample_draws(32, 1, make_generator(9, 9))
    cos = []
    for th, x in zip(theta, X, strict=True):
        xi = sym.tangents(th, x)[:, 0]
        target = torch.stack([th[0], -th[1]])
        cos.append((xi @ target).abs() / (xi.norm() * target.norm()))
    assert torch.stack(cos).median() >= 0.99
    v = report["verification"]
    # A 120-step CI run: the residual varies with the float32 rounding of training (1e-4 to 1e-2 over seeds at
    # 200 steps); the committed 600-step reproduction reaches 1.6e-5 (README).
    assert v["invariance"]["median"] <= 1e-2
    assert v["curves"]["orbit"]["ratio"] <= 0.1 and v["curves"]["flow"]["ratio"] <= 0.1
    field = v["fields"][0]  # in the null space of the outputs and in the known (rescaling) span, to 1 %
    assert field["null_share_output"] >= 0.99 and field["known_share"] >= 0.99
    assert {Path(f).name for f in report["figures"]} == {"generators.png", "exp_generators.png", "curves.png"}
    card = json.loads((out / "card.json").read_text())
    assert card["verification"]["verdict"] == v["verdict"] and card["architecture"]["name"] == "linear-scalar"


def test_loaded_in_fresh_process_acts_the_same(scalar_run, tmp_path):
    out, _ = scalar_run
    script = textwrap.dedent(f"""
        import torch, json
        from symdisc import zoo, make_generator
        from symdisc.discovery.artefact import load
        sym = load({str(out)!r}, fields="all")
        arch = zoo.get("linear-scalar").to(dtype=torch.float64)
        theta, X, Y = (t[0] for t in arch.sample_draws(1, 1, make_generator(4)))
        moved = sym.act(torch.tensor([0.3], dtype=torch.float64), theta.float(), X.float()).double()
        drift = float(arch.batch_loss(moved, X, Y) - arch.batch_loss(theta, X, Y))
        print(json.dumps({{"moved": moved.tolist(), "drift": drift}}))
    """)
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    there = json.loads(res.stdout)
    sym = artefact.load(out, fields="all")
    arch = zoo.get("linear-scalar").to(dtype=torch.float64)
    theta, X, Y = (t[0] for t in arch.sample_draws(1, 1, make_generator(4)))
    here = sym.act(torch.tensor([0.3], dtype=torch.float64), theta.float(), X.float()).double()
    assert torch.allclose(torch.tensor(there["moved"], dtype=torch.float64), here)
    drift_here = float((arch.batch_loss(here, X, Y) - arch.batch_loss(theta, X, Y)).detach())
    assert abs(there["drift"] - drift_here) <= 1e-12  # the same invariance as before saving
    assert abs(drift_here) < 1e-2 * arch.batch_loss(theta, X, Y).item()


def test_export_and_reload(scalar_run, tmp_path):
    out, _ = scalar_run
    target = artefact.export(out, tmp_path / "sym.safetensors")
    a, b = artefact.load(out, fields="all"), artefact.load(target, fields="all")
    assert torch.equal(a.generators(), b.generators())
    assert verify(target, draws=2)["num_generators"] == 1


def _copy_run(src: Path, dst: Path) -> Path:
    dst.mkdir()
    for name in ("card.json", "symmetry.safetensors"):
        (dst / name).write_bytes((src / name).read_bytes())
    return dst


def test_corrupted_and_mismatched_artefacts(scalar_run, tmp_path):
    out, _ = scalar_run
    bad = _copy_run(out, tmp_path / "truncated")
    data = (bad / "symmetry.safetensors").read_bytes()
    (bad / "symmetry.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(SymdiscError, match="truncated or corrupted|does not match"):
        artefact.load(bad)
    card = _copy_run(out, tmp_path / "card")
    (card / "card.json").write_text((card / "card.json").read_text()[:50])
    with pytest.raises(SymdiscError, match="corrupted"):
        artefact.load(card)
    with pytest.raises(SymdiscError, match="architecture mismatch"):
        artefact.load(out, arch=zoo.get("mlp", dims="2,2,1"))
    with pytest.raises(SymdiscError, match="no artefact"):
        artefact.load(tmp_path / "nothing")
    newer = _copy_run(out, tmp_path / "schema")
    doc = json.loads((newer / "card.json").read_text())
    doc["schema_version"] = 99
    (newer / "card.json").write_text(json.dumps(doc))
    with pytest.raises(SymdiscError, match="schema version"):
        artefact.load(newer)


def test_resume_equals_uninterrupted(tmp_path):
    arch = zoo.get("mlp", act="relu", dims="3,3,1")
    cfg = preset_config("unconstrained", "mlp", k=2, steps=12, draws=4, checkpoint_every=4, batch=16)
    straight = Trainer(arch, cfg)
    straight.fit(tmp_path / "a", progress=False)
    first = Trainer(arch, cfg)
    (tmp_path / "b").mkdir()
    for step in range(1, 9):  # stop after a checkpoint at step 8, as if killed
        first.train_step()
        if step == 4:
            first.save_checkpoint(tmp_path / "b")
            readable = (tmp_path / "b" / "checkpoint.json").read_bytes()
    first.save_checkpoint(tmp_path / "b")
    (tmp_path / "b" / "checkpoint.json").write_bytes(readable)  # killed between the checkpoint and its readable copy
    resumed = Trainer(arch, cfg)
    resumed.fit(tmp_path / "b", resume=True, progress=False)
    assert resumed.step == 12
    assert torch.allclose(resumed.symmetry.gens.matrices(), straight.symmetry.gens.matrices(), atol=1e-6)


def test_nan_loss_stops_and_keeps_last_checkpoint(tmp_path, monkeypatch):
    arch = zoo.get("mlp", act="tanh", dims="3,3,1")
    cfg = preset_config("unconstrained", "mlp", k=1, steps=20, draws=4, checkpoint_every=3, batch=8)
    trainer = Trainer(arch, cfg)
    real = trainer.train_step

    def poisoned():
        if trainer.step == 7:
            with torch.no_grad():
                trainer.symmetry.action.head.bias.fill_(float("nan"))
        return real()

    monkeypatch.setattr(trainer, "train_step", poisoned)
    with pytest.raises(SymdiscError, match="non-finite training loss at step 7.*last good checkpoint"):
        trainer.fit(tmp_path, progress=False)
    meta = json.loads((tmp_path / "checkpoint.json").read_text())
    assert meta["step"] == 6 and not (tmp_path / "card.json").exists()


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_discover_verify_export(capsys, tmp_path):
    out = tmp_path / "run"
    code, stdout, _ = run(capsys, "discover", "mlp", "--act", "relu", "--dims", "3,3,1", "-k", "2", "--steps", "20",
                          "--draws", "8", "--verify-draws", "2", "--no-figures", "--out", str(out), "--json")
    assert code == 0
    doc = json.loads(stdout)
    assert doc["training"]["steps"] == 20 and doc["verification"]["num_generators"] == 2
    code, stdout, _ = run(capsys, "verify", str(out), "--draws", "2", "--json")
    assert code == 0 and "verdict" in json.loads(stdout)
    code, stdout, _ = run(capsys, "export", str(out), "--to", str(tmp_path / "e.safetensors"), "--json")
    assert code == 0 and json.loads(stdout)["num_generators"] == 2
    code, _, err = run(capsys, "discover", "mlp", "--out", str(out), "--steps", "1")
    assert code == 2 and "already holds" in err


@pytest.mark.parametrize("argv,fragment", [
    (["-k", "0"], "must be ≥ 1"),
    (["-k", "13"], "exceeds the number of parameters"),
    (["--preset", "fast"], "unknown preset"),
    (["--kind", "dense"], "unknown generator kind"),
    (["--level", "hessian"], "--level"),
    (["--device", "cuda"], "CUDA"),
])
def test_cli_discover_bad_input(capsys, tmp_path, argv, fragment):
    code, out, err = run(capsys, "discover", "mlp", "--dims", "3,3,1", "--steps", "1", "--out", str(tmp_path / "x"),
                         *argv)
    assert code == 2 and fragment in err and err.count("\n") == 1
    assert not (tmp_path / "x" / "card.json").exists()


USER_MODULE = textwrap.dedent("""
    import torch
    from torch import nn
    import symdisc

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.fc2 = nn.Linear(2, 3, bias=False), nn.Linear(3, 1, bias=False)
        def forward(self, x):
            return self.fc2(torch.relu(self.fc1(x)))

    def sample(b, g):
        return torch.randn(b, 2, generator=g), torch.randn(b, 1, generator=g)

    def make():
        return symdisc.zoo.from_module(Net(), sample, "mse", default_batch_size=16)
""")


def test_user_module_discovered_saved_loaded_in_fresh_process(tmp_path):
    """A module the zoo has never seen: discover, save, load in a fresh process; same invariance."""
    (tmp_path / "usermod.py").write_text(USER_MODULE)
    sys.path.insert(0, str(tmp_path))
    try:
        import usermod
    finally:
        sys.path.pop(0)
    arch = usermod.make()
    report = discover(arch, tmp_path / "run", k=2, steps=60, verify_draws=4, make_figures=False)
    before = report["verification"]["invariance"]["median"]
    assert before <= 1e-3  # ReLU rescalings of the 3 hidden units
    with pytest.raises(SymdiscError, match="user module"):
        artefact.load(tmp_path / "run")
    script = textwrap.dedent(f"""
        import sys, json
        sys.path.insert(0, {str(tmp_path)!r})
        import usermod
        from symdisc import verify
        print(json.dumps(verify({str(tmp_path / 'run')!r}, arch=usermod.make(), draws=4)))
    """)
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    after = json.loads(res.stdout)["invariance"]["median"]
    assert after == pytest.approx(before, rel=1e-9, abs=1e-15)


def test_lowrank_generators_train_and_round_trip(tmp_path):
    """The structured option: rank-1 generators, never a p×p matrix in training; saved and reloaded."""
    arch = zoo.get("mlp", act="relu", dims="3,3,1")
    report = discover(arch, tmp_path, k=2, steps=40, generator_kind="lowrank", rank=1, draws=8, verify_draws=2,
                      make_figures=False)
    assert report["config"]["generator_kind"] == "lowrank" and report["config"]["spectral_init"]
    sym = artefact.load(tmp_path, fields="all")
    s = torch.linalg.svdvals(sym.generators()[0])  # rank 1 up to the float32 training precision
    assert sym.gens.kind == "lowrank" and s[1] < 1e-6 * s[0]


def test_cli_refuses_to_overwrite_a_run(tmp_path, capsys):
    import symdisc

    (tmp_path / "card.json").write_text("{}")
    assert main(["discover", "linear-scalar", "--out", str(tmp_path), "--steps", "2"]) == 2
    err = capsys.readouterr().err
    assert "already holds a discovery run: use --resume" in err and err.count("\n") == 1
    with pytest.raises(symdisc.InputError, match=r"resume=True"):  # the library names no flag
        symdisc.discover(symdisc.zoo.get("linear-scalar"), tmp_path, steps=2)
