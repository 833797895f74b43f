"""Every command that computes takes --device: a bad or absent device is a one-line error before any work, and on a
CUDA machine known, verify and lift give the CPU's answers (the checks run in float64 on the device)."""

import json

import pytest
import torch
import typer

from symdisc.cli.main import app, main
from symdisc.detect import detect_known
from symdisc.lifting import Placement, chain_of, lift
from symdisc.lifting.check import check_lift
from symdisc.verification import verify
from symdisc.zoo import get

NO_TENSOR_WORK = {"export", "report", "zoo list", "zoo show"}  # copy files; read JSON and plot; read the registry
CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")

KNOWN = ["known", "mlp", "--act", "relu", "--dims", "3,4,2", "--detect", "--json"]
VERIFY = ["verify", "mlp", "--act", "relu", "--dims", "3,3,1", "--symmetry", "known", "--batch", "3", "--draws", "2",
          "--no-curves", "--json"]
LIFT = ["lift", "known", "--symmetry", "GL(h1)", "--to", "mlp", "--dims", "2,3,3,1", "--act", "linear", "--layer", "2",
        "--draws", "2", "--json"]


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_every_computing_command_takes_device():
    group = typer.main.get_command(app)
    commands = {f"{name} {sub}": c for name, cmd in group.commands.items() if hasattr(cmd, "commands")
                for sub, c in cmd.commands.items()}
    commands |= {name: cmd for name, cmd in group.commands.items() if not hasattr(cmd, "commands")}
    missing = [name for name, cmd in commands.items()
               if name not in NO_TENSOR_WORK and "device" not in {p.name for p in cmd.params}]
    assert missing == [] and "zoo build" in commands


@pytest.mark.parametrize("device,fragment", [
    ("tpu", "device"),
    pytest.param("cuda", "no CUDA device", marks=pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU")),
])
@pytest.mark.parametrize("argv", [KNOWN, VERIFY, LIFT], ids=["known", "verify", "lift"])
def test_a_device_that_cannot_be_used_is_one_line(capsys, tmp_path, argv, device, fragment):
    out = ["--out", str(tmp_path / "x")] if argv[0] == "lift" else []
    code, stdout, err = run(capsys, *argv, *out, "--device", device)
    assert code == 2 and stdout == "" and err.count("\n") == 1 and fragment in err
    assert not (tmp_path / "x").exists()


def _lift_and_check(device):
    target = get("mlp", dims=(2, 3, 3, 1), act="linear")
    chain = chain_of(target)
    block = get("mlp", dims=(chain.dims[1], 3, chain.dims[3]), act="linear")
    sym = next(s for s in block.known_symmetries() if s.name == "GL(h1)")
    return check_lift(lift(sym, block, target, Placement(2), strict=False), draws=2, device=device)


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=CUDA)])
def test_library_checks_run_on_the_device(device):
    """detect_known, verify and check_lift on ``device`` agree with the CPU defaults."""
    arch = get("mlp", dims=(3, 4, 2), act="relu")
    cpu, dev = detect_known(arch), detect_known(arch, device=device)
    assert dev.orbit_dim == cpu.orbit_dim > 0 and [e.name for e in dev.entries] == [e.name for e in cpu.entries]
    sym = next(s for s in arch.known_symmetries() if s.name == "rescale(h1)")
    a = verify(sym, arch=arch, draws=2, batch=3, curves=False)
    b = verify(sym, arch=arch, draws=2, batch=3, curves=False, device=device)
    assert b["verified"]["count"] == a["verified"]["count"] == sym.num_generators
    assert b["invariance"]["median"] <= 1e-12
    lc, ld = _lift_and_check("cpu"), _lift_and_check(device)
    assert ld["valid"] and lc["valid"] and ld["output_change"]["max"] <= 1e-10


@CUDA
def test_cli_known_verify_lift_on_cuda(capsys, tmp_path):
    code, out, err = run(capsys, *KNOWN, "--device", "cuda")
    assert code == 0, err
    _, out_cpu, _ = run(capsys, *KNOWN)
    assert json.loads(out)["orbit_dim"] == json.loads(out_cpu)["orbit_dim"]
    code, out, err = run(capsys, *VERIFY, "--device", "cuda")
    assert code == 0, err
    assert all(r["found"] for r in json.loads(out)["symmetries"])
    code, out, err = run(capsys, *LIFT, "--out", str(tmp_path / "lifted"), "--device", "cuda")
    assert code == 0, err
    assert json.loads(out)["valid"]
