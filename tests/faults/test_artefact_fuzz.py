"""Fuzzing the artefact loader (hypothesis): truncated, corrupted, oversized and adversarial run directories and
exported files — mutated cards (any field replaced by any JSON value or removed, deep nesting, huge numbers),
flipped or truncated bytes, safetensors headers declaring huge shapes or other dtypes, tensors holding NaN, ints
or the wrong shape behind a matching checksum.  ``symdisc.load`` either returns a symmetry or raises a
SymdiscError (ArtefactError for the file, InputError for what the caller must pass); memory stays bounded.

``SYMDISC_FUZZ_EXAMPLES=N`` sets the number of inputs (CI: 150); the count tried and the crashes found are
printed, and docs/reliability.md records a long run."""

import hashlib
import json
import os
import random
import resource
import shutil
import struct
import tempfile
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.torch import save_file

import symdisc
from symdisc.errors import ArtefactError, SymdiscError

ROOT = Path(__file__).resolve().parents[2]
BASE = ROOT / "zoo" / "catalogue" / "mlp"
EXAMPLES = int(os.environ.get("SYMDISC_FUZZ_EXAMPLES", "150"))
MEMORY_BOUND_MIB = 1024
TRIED = {"inputs": 0, "loaded": 0, "refused": 0}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-10**30, max_value=10**30)
    | st.sampled_from([0, -1, 1, 2**31, 2**63]) | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12)


def paths(obj, prefix=()):
    """Every path into a JSON document (dict keys and list positions)."""
    out = [prefix]
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj[:6]):
            out += paths(v, (*prefix, i))
    return out


def set_path(doc, path, value, delete=False):
    if not path:
        return value
    node = doc
    for key in path[:-1]:
        node = node[key]
    if delete and isinstance(node, dict):
        node.pop(path[-1])
    else:
        node[path[-1]] = value
    return doc


def header_of(data: bytes) -> tuple[dict, bytes]:
    n = struct.unpack("<Q", data[:8])[0]
    return json.loads(data[8:8 + n]), data[8 + n:]


def with_header(header: dict, body: bytes) -> bytes:
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + body


@st.composite
def mutations(draw):
    kind = draw(st.sampled_from(["card-field", "card-delete", "card-bytes", "card-deep", "tensor-bytes",
                                 "tensor-header", "tensor-content"]))
    return kind, draw(st.randoms(use_true_random=False)), draw(json_values), draw(st.sampled_from(["dir", "export"]))


def mutate(directory: Path, kind: str, rnd: random.Random, value) -> None:
    card_path, tensor_path = directory / "card.json", directory / "symmetry.safetensors"
    card = json.loads(card_path.read_text())
    if kind in ("card-field", "card-delete"):
        path = rnd.choice(paths(card)[1:])
        card = set_path(card, path, value, delete=kind == "card-delete")
        card_path.write_text(json.dumps(card))
    elif kind == "card-bytes":
        data = bytearray(card_path.read_bytes())
        if rnd.random() < 0.5:
            data = data[:rnd.randrange(len(data))]
        else:
            for _ in range(rnd.randint(1, 8)):
                data[rnd.randrange(len(data))] = rnd.randrange(256)
        card_path.write_bytes(bytes(data))
    elif kind == "card-deep":
        depth = rnd.choice([100, 5000, 200_000])
        card_path.write_text("[" * depth + "]" * depth if rnd.random() < 0.5 else "9" * rnd.choice([5000, 100_000]))
    elif kind == "tensor-bytes":
        data = bytearray(tensor_path.read_bytes())
        if rnd.random() < 0.5:
            data = data[:rnd.randrange(len(data))]
        else:
            hi = min(len(data), 8 + struct.unpack("<Q", bytes(data[:8]))[0]) if rnd.random() < 0.7 else len(data)
            for _ in range(rnd.randint(1, 8)):
                data[rnd.randrange(hi)] = rnd.randrange(256)
        tensor_path.write_bytes(bytes(data))
    elif kind == "tensor-header":
        header, body = header_of(tensor_path.read_bytes())
        name = rnd.choice([k for k in header if k != "__metadata__"])
        what = rnd.choice(["shape", "dtype", "offsets"])
        if what == "shape":
            header[name]["shape"] = rnd.choice([[10**12, 10**12], [2**62], [0], [-1, 3], [1] * 40])
        elif what == "dtype":
            header[name]["dtype"] = rnd.choice(["I64", "U8", "BOOL", "F8_E4M3", "X99", "F64"])
        else:
            header[name]["data_offsets"] = rnd.choice([[0, 10**15], [5, 2], [0, 0]])
        tensor_path.write_bytes(with_header(header, body))
    else:  # valid safetensors and checksum, content that does not fit
        from safetensors.torch import load_file

        tensors = load_file(str(tensor_path))
        name = rnd.choice(sorted(tensors))
        t = tensors[name]
        tensors[name] = rnd.choice([torch.full_like(t, float("nan")), t.to(torch.int64), t.to(torch.float64),
                                    torch.zeros(t.numel() + 1), torch.zeros(0)])
        save_file(tensors, str(tensor_path))
        card["tensors"]["sha256"] = hashlib.sha256(tensor_path.read_bytes()).hexdigest()
        card_path.write_text(json.dumps(card))


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    out = tmp_path_factory.mktemp("export") / "mlp.safetensors"
    symdisc.export(BASE, out)
    return out


def test_the_base_artefact_loads(exported):
    assert symdisc.load(BASE).num_generators == symdisc.load(exported).num_generators == 3


def test_a_flipped_tensor_byte_is_caught_by_the_checksum(exported, tmp_path):
    """A bit flip in the data that keeps every value finite passes every other check: the checksum catches it, in
    a run directory (its card's sha256) and in an exported file (the digest in its metadata)."""
    f = tmp_path / "x.safetensors"
    data = bytearray(exported.read_bytes())
    data[-3] ^= 0x01  # the lowest mantissa bits of a float32: a finite value
    f.write_bytes(bytes(data))
    with pytest.raises(ArtefactError, match="checksum"):
        symdisc.load(f)
    d = tmp_path / "dir"
    shutil.copytree(BASE, d)
    data = bytearray((d / "symmetry.safetensors").read_bytes())
    data[-3] ^= 0x01
    (d / "symmetry.safetensors").write_bytes(bytes(data))
    with pytest.raises(ArtefactError, match="does not match its card"):
        symdisc.load(d)


@pytest.mark.parametrize("name", ["../../etc/passwd", "/etc/passwd", "sub/symmetry.safetensors", ".."])
def test_the_tensor_file_must_lie_inside_the_artefact(tmp_path, name):
    d = tmp_path / "dir"
    shutil.copytree(BASE, d)
    card = json.loads((d / "card.json").read_text())
    card["tensors"]["file"] = name
    (d / "card.json").write_text(json.dumps(card))
    with pytest.raises(ArtefactError, match="file name inside the artefact"):
        symdisc.load(d)


def test_a_newer_schema_is_refused_with_a_clear_message(tmp_path):
    d = tmp_path / "dir"
    shutil.copytree(BASE, d)
    card = json.loads((d / "card.json").read_text())
    card["schema_version"] = 99
    (d / "card.json").write_text(json.dumps(card))
    with pytest.raises(ArtefactError, match="newer symdisc: upgrade"):
        symdisc.load(d)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                       HealthCheck.function_scoped_fixture])
@given(mutations())
def test_only_symdisc_errors_escape_the_loader(exported, mutation):
    kind, rnd, value, target = mutation
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp) / "art"
        shutil.copytree(BASE, d)
        if target == "export":  # the exported file as the tensor file, its card beside it: mutate, then re-pack
            h, _ = header_of(exported.read_bytes())
            (d / "card.json").write_text(h["__metadata__"]["symdisc_card"])
            shutil.copy(exported, d / "symmetry.safetensors")
        mutate(d, kind, rnd, value)
        src = d
        if target == "export":
            src = d / "symmetry.safetensors"
            try:
                h, body = header_of(src.read_bytes())
            except (ValueError, UnicodeDecodeError, struct.error):
                h = None  # bytes mutated beyond parsing: loaded as they are
            if isinstance(h, dict):
                meta = h.setdefault("__metadata__", {}) if isinstance(h.get("__metadata__", {}), dict) else {}
                meta["symdisc_card"] = (d / "card.json").read_bytes().decode("utf-8", "replace")
                src.write_bytes(with_header(h, body))
            (d / "card.json").unlink()
        TRIED["inputs"] += 1
        try:
            symdisc.load(src, fields="all")
            TRIED["loaded"] += 1
        except SymdiscError as e:
            TRIED["refused"] += 1
            assert str(e).strip() and "\n" not in str(e).strip(), repr(str(e))[:300]
    used = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    assert used < MEMORY_BOUND_MIB + BASELINE_MIB, f"peak memory {used:.0f} MiB"


BASELINE_MIB = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def test_report_the_count():
    """Printed with -s; the docs' table records a long run (SYMDISC_FUZZ_EXAMPLES=5000)."""
    print(f"\nartefact fuzzing: {TRIED['inputs']} inputs, {TRIED['loaded']} loaded, {TRIED['refused']} refused with a "
          "SymdiscError, 0 other exceptions; peak RSS "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    assert TRIED["inputs"] > 0
