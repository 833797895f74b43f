"""Trace an architecture to an ATen graph (``torch.export``, non-strict) for known-symmetry detection.

Any ``nn.Module`` (through ``from_module``) and any functional zoo preset (wrapped as a module that holds
θ's named tensors) is exported once on a small float64 batch.  The graph's parameter inputs are mapped to
the architecture's layout names; a tied weight (one tensor under several names) maps to the name the
layout keeps.  A forward that cannot be exported (data-dependent control flow, unsupported Python) raises
:class:`Untraceable` with the exporter's reason in one line.
"""

from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass

import torch
from torch import nn

from symdisc.architecture import Architecture, make_generator
from symdisc.errors import SymdiscError

TRACE_BATCH = 2


class Untraceable(SymdiscError):
    """The forward could not be traced to a graph; detection makes no claim."""


@dataclass
class Traced:
    """An exported graph, the map from its placeholder names to layout names (trainable θ only) and X."""

    graph: torch.fx.Graph
    params: dict[str, str]  # placeholder node name → layout name
    frozen: set[str]  # placeholder names of parameters and buffers outside θ
    user_input: str  # placeholder name of X


class _Functional(nn.Module):
    """θ's named tensors as parameters around a functional forward (zoo presets)."""

    def __init__(self, arch: Architecture, theta: torch.Tensor):
        super().__init__()
        self.arch = arch
        self.keys = {n: f"p{i}" for i, n in enumerate(arch.layout.names)}
        self.params = nn.ParameterDict({k: nn.Parameter(t.clone()) for n, t in arch.layout.unflatten(theta).items()
                                        for k in [self.keys[n]]})

    def forward(self, X):
        return self.arch.forward_named({n: self.params[k] for n, k in self.keys.items()}, X)


def _one_line(e: Exception) -> str:
    text = " ".join(str(e).split())
    return f"{type(e).__name__}: {text[:300]}{'…' if len(text) > 300 else ''}"


def trace(arch: Architecture, module: nn.Module | None = None) -> Traced:
    """Export ``module`` (or ``arch``'s functional forward) on a float64 batch of TRACE_BATCH samples."""
    arch64 = arch.to(dtype=torch.float64, device="cpu")
    X, _ = arch64.sample_data(TRACE_BATCH, make_generator(0, 2))
    if module is None:
        theta = arch64.sample_params(make_generator(0, 3))
        wrapped = _Functional(arch64, theta)
        names = {f"params.{k}": n for n, k in wrapped.keys.items()}
    else:
        wrapped = copy.deepcopy(module).to(torch.float64)
        names = {}
        by_id = {}
        for n, p in wrapped.named_parameters(remove_duplicate=False):
            by_id.setdefault(id(p), n)
            names[n] = by_id[id(p)]
        names = {n: canon for n, canon in names.items() if canon in arch.layout.names}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ep = torch.export.export(wrapped, (X,), strict=False)
    except Exception as e:  # noqa: BLE001 - the exporter's many error types all mean "not traceable"
        raise Untraceable(f"{arch.name}: the forward could not be traced ({_one_line(e)})") from e
    sig = ep.graph_signature
    to_param = dict(getattr(sig, "inputs_to_parameters", {}))
    to_buffer = dict(getattr(sig, "inputs_to_buffers", {}))
    to_const = dict(getattr(sig, "inputs_to_lifted_tensor_constants", {}))
    params, frozen = {}, set(to_buffer) | set(to_const)
    for node_name, fqn in to_param.items():
        if fqn in names:
            params[node_name] = names[fqn]
        else:
            frozen.add(node_name)
    users = [s for s in sig.user_inputs]
    if len(users) != 1:
        raise Untraceable(f"{arch.name}: the traced forward takes {len(users)} inputs, detection needs one (X)")
    return Traced(ep.graph, params, frozen, users[0])
