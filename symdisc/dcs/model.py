"""DCS on an ``nn.Module`` or a flat θ, through ``torch.nn.utils.parametrize``.

    dcs = DCS(model, {"fc1.weight": "sparse", "fc2.weight": "lowrank"}, alpha=1e-3)   # in place
    opt = torch.optim.Adam(model.parameters(), 1e-3)        # any optimizer: the latents are parameters
    loss = criterion(model(x), y) + dcs.penalty()           # α Σ ‖z_pen‖²   (or DCSOptimizer adds it)
    plain = dcs.materialize().model                          # an ordinary module with the constrained θ

Why ``parametrize``: the module keeps its own code and forward; ``model.weight`` *is* T(z), computed from
the latents ``parametrizations.weight.original0, original1, …`` that ``model.parameters()`` now yields, so any
``torch.optim`` optimizer, scheduler, ``state_dict`` and ``functional_call`` work unchanged, and removing the
parametrization (``materialize``) leaves a plain module.  A flat θ is a one-parameter module (``DCS.flat``).

A constraint given by name is built for the tensor's shape: ``sparse`` (every entry, spred), ``group`` (one
gate per output row: neuron sparsity), ``lowrank`` (the tensor read as out × in: conv kernels as
out × (in·k·k)).  The penalty's α is the handle's ``alpha`` (a number ≥ 0, changed by ``set_alpha`` or an
α schedule in ``DCSOptimizer``).
"""

from __future__ import annotations

import copy
import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn.utils import parametrize

from symdisc.architecture import make_generator
from symdisc.dcs.constraints import Constraint, Group, LowRank, Sparse
from symdisc.errors import InputError

CONSTRAINTS = ("sparse", "group", "lowrank")
INITS = ("spread", "balanced")
SPREAD = 0.5  # σ of the default start's log-imbalance c ~ N(0, σ²) (constraints.py: signs free; penalty × e^{2σ²})
ZERO_TOL = 1e-6  # |θ| below this counts as zero (the paper's sparsity threshold, B.4)


def check_alpha(alpha: float) -> float:
    alpha = float(alpha)
    if not math.isfinite(alpha) or alpha < 0:
        raise InputError(f"α must be a finite number ≥ 0, got {alpha}")
    return alpha


def constraint_for(kind: str | Constraint, shape: tuple[int, ...], name: str = "the tensor") -> Constraint:
    """A constraint object for a tensor of ``shape`` (a name from ``CONSTRAINTS`` or a Constraint to check)."""
    n = math.prod(shape)
    if isinstance(kind, Constraint):
        if kind.n != n:
            raise InputError(f"{name} has {n} entries (shape {list(shape)}), its {kind.kind} constraint acts on "
                             f"{kind.n}")
        return kind
    if kind == "sparse":
        return Sparse(n)
    if kind in ("group", "lowrank"):
        if len(shape) < 2:
            raise InputError(f"{name} has shape {list(shape)}: a {kind} constraint needs a matrix (out, in, …)")
        rows, cols = shape[0], n // shape[0]
        return Group.rows(rows, cols) if kind == "group" else LowRank(rows, cols)
    raise InputError(f"unknown constraint {kind!r}; choose {', '.join(CONSTRAINTS)} or pass a Constraint")


class DCSParametrization(nn.Module):
    """weight = T(z).reshape(shape); ``right_inverse`` is the constraint's ``init`` (spread from ``generator``)."""

    def __init__(self, constraint: Constraint, shape: tuple[int, ...], spread: float = 0.0,
                 generator: torch.Generator | None = None):
        super().__init__()
        self.constraint, self.shape = constraint, tuple(shape)
        self.names = tuple(constraint.latent_shapes())
        self.spread, self.generator = spread, generator

    def forward(self, *latents: torch.Tensor) -> torch.Tensor:
        return self.constraint.transform(dict(zip(self.names, latents, strict=True))).reshape(self.shape)

    def right_inverse(self, weight: torch.Tensor) -> tuple[torch.Tensor, ...]:
        z = self.constraint.init(weight.detach().reshape(-1), self.generator, self.spread)
        return tuple(z[k].contiguous() for k in self.names)


@dataclass
class Block:
    """One constrained tensor: where it lives and its latents (original0, … in ``names`` order)."""

    name: str
    module: nn.Module
    attr: str
    constraint: Constraint

    def latents(self) -> dict[str, torch.Tensor]:
        plist = self.module.parametrizations[self.attr]  # several originals are stored as original0, original1, …
        return {k: getattr(plist, f"original{i}") for i, k in enumerate(plist[0].names)}

    def latent_names(self, prefix: str) -> dict[str, str]:
        """latent name → the module-level parameter name (``fc1.parametrizations.weight.original0``)."""
        stem = f"{prefix}parametrizations.{self.attr}"
        names = self.module.parametrizations[self.attr][0].names
        return {k: f"{stem}.original{i}" for i, k in enumerate(names)}


@dataclass
class Materialized:
    """The constrained θ as plain tensors (constrained quantities below ``tol`` set exactly to 0) and a plain
    deep copy of the module holding them; ``report`` per block (see ``DCS.report``)."""

    theta: dict[str, torch.Tensor]
    model: nn.Module
    report: dict[str, dict] = field(default_factory=dict)


class DCS:
    """DCS constraints registered on ``model`` (in place); ``penalty()`` = α Σ ‖z_pen‖².

    ``init``: ``"spread"`` (default) starts every scalar pair at (w e^c, u e^{−c}), c ~ N(0, ``spread``²) drawn
    from ``make_generator(seed, block index)`` — the same function, signs free to change; ``"balanced"`` starts at
    the minimum penalty, where the scalar pairs' signs are locked for good (constraints.py)."""

    def __init__(self, model: nn.Module, constraints: Mapping[str, str | Constraint], alpha: float = 0.0,
                 init: str = "spread", spread: float = SPREAD, seed: int = 0):
        if not isinstance(model, nn.Module):
            raise InputError(f"DCS wraps an nn.Module, got {type(model).__name__} (use DCS.flat for a flat θ)")
        if not constraints:
            raise InputError("DCS needs at least one constrained tensor")
        if init not in INITS:
            raise InputError(f"unknown init {init!r}; choose {', '.join(INITS)}")
        if not math.isfinite(spread) or spread < 0:
            raise InputError(f"spread must be a finite number ≥ 0, got {spread}")
        self.model, self.alpha = model, check_alpha(alpha)
        self.init, self.spread = init, (spread if init == "spread" else 0.0)
        named = dict(model.named_parameters())
        aliases: dict[int, list[str]] = {}
        for n, t in model.named_parameters(remove_duplicate=False):
            aliases.setdefault(id(t), []).append(n)
        self.blocks: list[Block] = []
        modules = dict(model.named_modules())
        for name, kind in constraints.items():
            module_name, _, attr = name.rpartition(".")
            module = modules.get(module_name)
            if module is not None and parametrize.is_parametrized(module, attr):
                raise InputError(f"{name} is already parametrized (remove that parametrization or DCS first)")
            if name not in named:
                raise InputError(f"the model has no parameter {name!r} (parameters: {', '.join(named) or 'none'})")
            tensor = named[name]
            tied = [n for n in aliases[id(tensor)] if n != name]
            if tied:
                raise InputError(f"{name} is tied to {', '.join(tied)}: a parametrization would untie them "
                                 "(constrain a model whose shared weight is used through one module)")
            constraint = constraint_for(kind, tuple(tensor.shape), name)
            p = DCSParametrization(constraint, tensor.shape, self.spread, make_generator(seed, len(self.blocks)))
            parametrize.register_parametrization(module, attr, p, unsafe=True)
            self.blocks.append(Block(name, module, attr, constraint))

    @classmethod
    def flat(cls, theta: torch.Tensor, constraint: str | Constraint = "sparse", alpha: float = 0.0,
             **init) -> DCS:
        """DCS on a flat θ ∈ ℝ^p: ``dcs.theta_flat()`` is T(z); ``dcs.model.parameters()`` are the latents;
        ``init`` options (``init``, ``spread``, ``seed``) as for ``DCS``."""
        theta = torch.as_tensor(theta)
        if theta.dim() != 1:
            raise InputError(f"DCS.flat takes a flat θ (a vector), got shape {tuple(theta.shape)}")
        holder = nn.Module()
        holder.theta = nn.Parameter(theta.detach().clone())
        return cls(holder, {"theta": constraint}, alpha, **init)

    # ---- the objective ------------------------------------------------------------------------------
    def set_alpha(self, alpha: float) -> None:
        self.alpha = check_alpha(alpha)

    def penalty(self) -> torch.Tensor:
        """α Σ_blocks ‖z_pen‖² (differentiable in the latents)."""
        return self.alpha * self.raw_penalty()

    def raw_penalty(self) -> torch.Tensor:
        """Σ_blocks ‖z_pen‖² (without α)."""
        return sum(b.constraint.penalty(b.latents()) for b in self.blocks)

    def induced(self) -> float:
        """α Σ_blocks R(θ_B): the regulariser DCS is equivalent to at the current θ (≤ ``penalty()``; = if balanced)."""
        with torch.no_grad():
            return self.alpha * float(sum(b.constraint.induced(self._value(b)) for b in self.blocks))

    def theta_flat(self) -> torch.Tensor:
        """T(z) of a ``DCS.flat`` handle (differentiable)."""
        return self.model.theta

    def latent_parameters(self, penalised: bool | None = None) -> dict[str, nn.Parameter]:
        """The latents as module-level names → parameters (all, or only the penalised / unpenalised ones)."""
        prefixes = {id(m): n for n, m in self.model.named_modules()}
        out = {}
        for b in self.blocks:
            prefix = prefixes[id(b.module)]
            names = b.latent_names(f"{prefix}." if prefix else "")
            lat = b.latents()
            for k, full in names.items():
                if penalised is None or (k in b.constraint.penalised()) == penalised:
                    out[full] = lat[k]
        return out

    @staticmethod
    def _value(b: Block) -> torch.Tensor:
        return getattr(b.module, b.attr).detach().reshape(-1)

    # ---- reading the result ---------------------------------------------------------------------------
    def report(self, tol: float = ZERO_TOL) -> dict[str, dict]:
        """Per block: entries, the constrained quantities (count, how many are < ``tol``), the fraction of
        exactly-zero entries after snapping, and R(θ)."""
        out = {}
        with torch.no_grad():
            for b in self.blocks:
                theta = self._value(b)
                c = b.constraint.constrained(theta).abs()
                snapped = b.constraint.snap(theta, tol)
                out[b.name] = {**b.constraint.describe(), "entries": theta.numel(), "constrained": c.numel(),
                               "constrained_zero": int((c < tol).sum()),
                               "zero_fraction": float((snapped == 0).double().mean()),
                               "regulariser": float(b.constraint.induced(theta))}
        return out

    def materialize(self, tol: float = ZERO_TOL, sparse: bool = False) -> Materialized:
        """The constrained θ per block (snapped at ``tol``) and a plain deep copy of the model holding it; the
        handle and its model are left as they were.  ``sparse``: an ``nn.Linear`` weight whose CSR form
        (values + int64 column indices + row pointers) takes fewer bytes than the dense one becomes a sparse CSR
        parameter (``F.linear`` accepts it); every other tensor stays dense."""
        theta = {}
        with torch.no_grad():
            for b in self.blocks:
                value = getattr(b.module, b.attr).detach()
                theta[b.name] = b.constraint.snap(value.reshape(-1), tol).reshape(value.shape).clone()
        plain = copy.deepcopy(self.model)
        for module in plain.modules():  # the copy shares the original's generated Parametrized* class: give it its
            if parametrize.is_parametrized(module):  # own, or removing its parametrizations strips the original's
                cls = module.__class__
                module.__class__ = type(cls.__name__, cls.__bases__, dict(cls.__dict__))
        with torch.enable_grad():  # under no_grad, torch would leave a plain tensor instead of a Parameter
            for b in self.blocks:
                module_name, _, attr = b.name.rpartition(".")
                parametrize.remove_parametrizations(plain.get_submodule(module_name), attr, leave_parametrized=True)
        named = dict(plain.named_parameters())
        with torch.no_grad():
            for name, value in theta.items():
                named[name].copy_(value)
        report = self.report(tol)
        if sparse:
            for name, value in theta.items():
                module_name, _, attr = name.rpartition(".")
                module = plain.get_submodule(module_name)
                nnz = int((value != 0).sum())
                csr_bytes = nnz * (value.element_size() + 8) + (value.shape[0] + 1) * 8 if value.dim() == 2 else None
                pays = (isinstance(module, nn.Linear) and attr == "weight" and csr_bytes is not None
                        and csr_bytes < value.numel() * value.element_size())
                report[name]["stored"] = "sparse_csr" if pays else "dense"
                if pays:
                    with warnings.catch_warnings():  # "sparse CSR support is in beta": F.linear supports it
                        warnings.simplefilter("ignore", UserWarning)
                        csr = value.to_sparse_csr()
                    setattr(module, attr, nn.Parameter(csr, requires_grad=named[name].requires_grad))
        return Materialized(theta, plain, report)

    def remove(self) -> None:
        """Undo DCS in place: every constrained tensor becomes a plain parameter holding T(z)."""
        with torch.enable_grad():
            for b in self.blocks:
                parametrize.remove_parametrizations(b.module, b.attr, leave_parametrized=True)
        self.blocks = []
