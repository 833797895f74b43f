"""Tensors on disk without pickle: safetensors files written atomically, read with validation."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from symdisc.errors import ArtefactError
from symdisc.io import atomic_write


def save_tensors(path: str | os.PathLike, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None):
    clean = {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}  # no shared storage
    return atomic_write(path, lambda tmp: save_file(clean, tmp, metadata=metadata))


def load_tensors(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Load a safetensors file; a missing, truncated or corrupted file raises ArtefactError."""
    path = Path(path)
    if not path.is_file():
        raise ArtefactError(f"missing tensor file {path}")
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise ArtefactError(f"{path} is not a valid safetensors file (truncated or corrupted): {e}") from None
    for name, t in tensors.items():
        if t.is_floating_point() and not torch.isfinite(t).all():
            raise ArtefactError(f"{path}: tensor {name!r} holds NaN or inf")
    return tensors


def tensors_digest(tensors: dict[str, torch.Tensor]) -> str:
    """sha256 over every tensor's name, dtype, shape and bytes, in name order: a checksum that survives the file's
    layout (an exported file carries it in its metadata)."""
    import hashlib

    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().to("cpu").contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).contiguous().view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


DTYPES = {"F16": torch.float16, "BF16": torch.bfloat16, "F32": torch.float32, "F64": torch.float64,
          "I8": torch.int8, "I16": torch.int16, "I32": torch.int32, "I64": torch.int64, "U8": torch.uint8,
          "BOOL": torch.bool}


def read_header(path: str | os.PathLike) -> tuple[dict[str, tuple[tuple[int, ...], torch.dtype | None]], dict]:
    """({name: (shape, dtype)}, metadata) from a safetensors file's header, without loading any tensor; a
    missing, truncated or corrupted file raises ArtefactError (dtype None: one torch has no type for)."""
    path = Path(path)
    if not path.is_file():
        raise ArtefactError(f"missing tensor file {path}")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = dict(f.metadata() or {})
            header = {}
            for name in f.keys():
                sl = f.get_slice(name)
                header[name] = (tuple(sl.get_shape()), DTYPES.get(sl.get_dtype()))
    except Exception as e:  # noqa: BLE001 - any failure to parse the header is a corrupted file
        raise ArtefactError(f"{path} is not a valid safetensors file (truncated or corrupted): "
                            f"{' '.join(str(e).split())[:200]}") from None
    return header, meta


def flatten_state(prefix: str, state: dict) -> tuple[dict[str, torch.Tensor], dict]:
    """Split a nested state (e.g. an optimizer's) into tensors and a JSON-able skeleton."""
    tensors: dict[str, torch.Tensor] = {}

    def walk(obj, key):
        if isinstance(obj, torch.Tensor):
            tensors[key] = obj
            return {"__tensor__": key}
        if isinstance(obj, dict):
            return {"__dict__": [[str(k), type(k).__name__, walk(v, f"{key}.{k}")] for k, v in obj.items()]}
        if isinstance(obj, (list, tuple)):
            return [walk(v, f"{key}.{i}") for i, v in enumerate(obj)]
        return obj

    return tensors, walk(state, prefix)


def unflatten_state(skeleton, tensors: dict[str, torch.Tensor]):
    """Inverse of :func:`flatten_state`."""
    if isinstance(skeleton, dict) and "__tensor__" in skeleton:
        return tensors[skeleton["__tensor__"]]
    if isinstance(skeleton, dict) and "__dict__" in skeleton:
        return {(int(k) if t == "int" else k): unflatten_state(v, tensors) for k, t, v in skeleton["__dict__"]}
    if isinstance(skeleton, list):
        return [unflatten_state(v, tensors) for v in skeleton]
    return skeleton
