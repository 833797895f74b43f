"""Fuzzing the lifted-artefact loader (``symdisc lift`` output): cards with any field replaced or removed,
corrupted or deep JSON, padding tensors truncated, NaN, of another dtype or shape behind a matching checksum.
``load_lifted`` rebuilds the lift or raises a SymdiscError; never anything else."""

import hashlib
import json
import os
import random
import resource
import shutil
import tempfile
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.torch import load_file, save_file

from symdisc.cli.main import main
from symdisc.errors import SymdiscError
from symdisc.lifting.artefact import load_lifted
from tests.faults.test_artefact_fuzz import json_values, paths, set_path

EXAMPLES = int(os.environ.get("SYMDISC_FUZZ_EXAMPLES", "150"))
ROOT = Path(__file__).resolve().parents[2]
TRIED = {"inputs": 0, "loaded": 0, "refused": 0}


@pytest.fixture(scope="module")
def bases(tmp_path_factory):
    """A known lift with fixed padding (lift.safetensors) and a learned lift (a copy of its source)."""
    d = tmp_path_factory.mktemp("lifts")
    padded, learned = d / "padded", d / "learned"
    assert main(["lift", "known", "--symmetry", "data-dependent-GL[sigma_inverse](W2,W1)", "--to", "mlp", "--dims",
                 "2,3,3,1", "--act", "leakyrelu", "--layer", "2", "--batch", "1", "--pad-batch", "3", "--draws", "2",
                 "--out", str(padded)]) == 0
    assert main(["lift", str(ROOT / "zoo" / "fig6.3-linear-scalar"), "--to", "mlp", "--dims", "1,3,1", "--act",
                 "linear", "--units", "2", "--draws", "2", "--out", str(learned)]) == 0
    return {"padded": padded, "learned": learned}


def mutate(d: Path, kind: str, rnd: random.Random, value) -> None:
    card_path = d / "card.json"
    card = json.loads(card_path.read_text())
    if kind in ("card-field", "card-delete"):
        card = set_path(card, rnd.choice(paths(card)[1:]), value, delete=kind == "card-delete")
        card_path.write_text(json.dumps(card))
    elif kind == "card-bytes":
        data = bytearray(card_path.read_bytes())
        for _ in range(rnd.randint(1, 6)):
            data[rnd.randrange(len(data))] = rnd.randrange(256)
        card_path.write_bytes(bytes(data[:rnd.randrange(1, len(data) + 1)]))
    elif kind == "card-deep":
        card_path.write_text("{\"a\":" * 100_000 + "1" + "}" * 100_000)
    elif (d / "lift.safetensors").is_file():  # padding: truncated, or valid with content that does not fit
        path = d / "lift.safetensors"
        if kind == "tensor-bytes":
            path.write_bytes(path.read_bytes()[:rnd.randrange(path.stat().st_size)])
            return
        pad = load_file(str(path))["padding"]
        pad = rnd.choice([torch.full_like(pad, float("nan")), pad.to(torch.int64), torch.zeros(5, 7), pad[:0]])
        save_file({"padding": pad} if rnd.random() < 0.8 else {"other": pad}, str(path))
        card["tensors"]["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
        card_path.write_text(json.dumps(card))


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                       HealthCheck.function_scoped_fixture])
@given(st.sampled_from(["card-field", "card-delete", "card-bytes", "card-deep", "tensor-bytes", "tensor-content"]),
       st.randoms(use_true_random=False), json_values, st.sampled_from(["padded", "learned"]))
def test_only_symdisc_errors_escape_load_lifted(bases, kind, rnd, value, base):
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp) / "lift"
        shutil.copytree(bases[base], d)
        mutate(d, kind, rnd, value)
        TRIED["inputs"] += 1
        try:
            load_lifted(d)
            TRIED["loaded"] += 1
        except SymdiscError as e:
            TRIED["refused"] += 1
            assert str(e).strip() and "\n" not in str(e).strip(), repr(str(e))[:300]


def test_report_the_count():
    print(f"\nlifted-artefact fuzzing: {TRIED['inputs']} inputs, {TRIED['loaded']} loaded, {TRIED['refused']} refused "
          "with a SymdiscError, 0 other exceptions; peak RSS "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    assert TRIED["inputs"] > 0
