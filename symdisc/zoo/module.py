"""Any ``torch.nn.Module`` as an architecture, through ``torch.func.functional_call``.

    f(θ, X) = functional_call(module, unflatten(θ) ∪ buffers, (X,))

The module is never mutated (a private copy is kept); its buffers and frozen parameters are cast
to θ's dtype and device at every call.
Batch-norm layers are patched to use batch statistics only (``replace_all_batch_norm_modules_``)
and mark the architecture as not sample-wise (outputs then couple samples); any other coupling of the
samples in a batch is detected (``from_module``), and dropout left in training mode is switched off.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable
from dataclasses import replace

import torch
from torch import nn
from torch.func import functional_call, replace_all_batch_norm_modules_

from symdisc.architecture import Architecture, ParamSampler, make_generator
from symdisc.detect import detect
from symdisc.errors import InputError, SymdiscError, SymdiscWarning
from symdisc.layout import ParamLayout
from symdisc.losses import PerSampleLoss, resolve_loss
from symdisc.zoo.init import fan_in_sampler

SampleBatch = Callable[[int, torch.Generator], tuple[torch.Tensor, torch.Tensor]]
DROPOUT = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout, nn.FeatureAlphaDropout)
COUPLING_RTOL = 1e-9  # float64: batched and per-sample matmuls agree to ~1e-15
PROBE_BATCH = 4  # samples in the randomness and coupling probes


def module_theta(module: nn.Module, layout: ParamLayout) -> torch.Tensor:
    """The module's current parameters as a flat θ (layout order)."""
    named = dict(module.named_parameters())
    return layout.flatten({n: named[n].detach() for n in layout.names})


def from_module(
    module: nn.Module,
    sample_batch: SampleBatch,
    loss: str | PerSampleLoss = "mse",
    *,
    name: str | None = None,
    param_sampler: ParamSampler | None = None,
    symmetries: Callable[[Architecture], list] | None = None,
    default_batch_size: int = 64,
    samplewise: bool | None = None,
) -> Architecture:
    """Wrap ``module`` (trainable parameters = θ) with a data sampler and a per-sample loss.

    ``sample_batch(B, generator) -> (X, Y)``; ``loss`` is "mse", "cross_entropy" or a callable
    (outputs, Y) -> (B,).  ``symmetries(arch)`` may return the module's known symmetries.
    The module is checked once on a sample batch; a forward that fails raises SymdiscError.

    Two properties a census depends on are checked rather than assumed.  *Randomness*: dropout layers
    left in training mode are switched off (a SymdiscWarning says so); a forward that is still random
    raises InputError.  *Batch coupling* (``samplewise=None``): the outputs of a batch of 4 are compared
    with those of its samples one at a time (float64); if they differ — batch statistics, with or without
    ``nn.BatchNorm`` — Jacobians are taken of the batched forward (``samplewise=False``).  The decision and
    its reason are ``arch.coupling``; ``samplewise=True/False`` overrides it.

    Known symmetries: ``symmetries(arch)`` if given, else detected by tracing the module (``symdisc.detect``:
    GL / rescalings / attention heads / norm shifts …, each verified in float64) on first use.
    """
    if not isinstance(module, nn.Module):
        raise InputError(f"from_module needs a torch.nn.Module, got {type(module).__name__}")
    loss_name, loss_fn = resolve_loss(loss)
    layout = ParamLayout.of_module(module)
    if not layout.names:
        raise InputError(f"{type(module).__name__} has no trainable parameters")
    has_bn = any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in module.modules())
    base = copy.deepcopy(module)
    dropouts = [n or type(m).__name__ for n, m in base.named_modules() if isinstance(m, DROPOUT) and m.training]
    if dropouts:
        for m in base.modules():
            if isinstance(m, DROPOUT):
                m.eval()
        warnings.warn(f"{name or type(module).__name__}: dropout in training mode ({', '.join(dropouts)}) makes the "
                      "forward random; symdisc analyses the module with dropout off (call module.eval() first to "
                      "silence this)", SymdiscWarning, stacklevel=2)
    frozen = {n: p.detach() for n, p in base.named_parameters() if not p.requires_grad}
    if has_bn:
        replace_all_batch_norm_modules_(base)
    def forward(params: dict[str, torch.Tensor], X: torch.Tensor) -> torch.Tensor:
        # every tensor the module holds is passed in, cast to θ's dtype/device: no module copy per
        # dtype (``Module.to`` cannot run inside a torch.func transform)
        ref = next(iter(params.values()))
        state = {**{n: b.to(ref) if b.is_floating_point() else b.to(ref.device) for n, b in base.named_buffers()},
                 **{n: t.to(ref) for n, t in frozen.items()}, **params}
        return functional_call(base, state, (X,))

    def data_sampler(batch, gen, dtype, device):
        X, Y = sample_batch(batch, gen)
        cast = lambda t: t.to(device=device, dtype=dtype) if t.is_floating_point() else t.to(device)
        return cast(X), cast(Y)

    arch = Architecture(
        name=name or type(module).__name__,
        layout=layout,
        forward_named=forward,
        loss=loss_fn,
        loss_name=loss_name,
        param_sampler=param_sampler or fan_in_sampler(layout),
        data_sampler=data_sampler,
        source=f"user module {type(module).__module__}.{type(module).__qualname__}",
        spec={"module": type(module).__qualname__},
        default_batch_size=default_batch_size,
        samplewise=samplewise if samplewise is not None else not has_bn,
        coupling="given" if samplewise is not None else "batch norm: batch statistics" if has_bn else "",
        dtype=next(module.parameters()).dtype,
        symmetry_factory=symmetries if symmetries is not None else _detected(base),
    )
    theta = module_theta(module, layout).to(arch.dtype)
    _smoke_check(arch, theta)
    # float64 probes (the forward casts every module tensor to θ's dtype), as the census will run it
    theta64 = theta.to(torch.float64)
    X, _ = arch.to(dtype=torch.float64).sample_data(PROBE_BATCH, make_generator(0, 1))
    batched = _deterministic_forward(arch, theta64, X)
    if samplewise is None and not has_bn:
        coupled, why = _batch_coupling(arch, theta64, X, batched)
        arch = replace(arch, samplewise=not coupled, coupling=why)
    return arch


def _detected(module: nn.Module) -> Callable[[Architecture], list]:
    """The known symmetries of a user module: detected by tracing on first use (symdisc.detect), then cached.
    An untraceable forward gives none, with one SymdiscWarning saying why."""
    cache: dict[str, list] = {}

    def factory(arch: Architecture) -> list:
        if "symmetries" not in cache:
            found = detect(arch, module)
            if not found.traced:
                warnings.warn(found.message, SymdiscWarning, stacklevel=3)
            cache["symmetries"] = found.symmetries
        return list(cache["symmetries"])

    factory.detect_module = module  # symdisc.detect.detect_known re-runs detection with its full report
    return factory


def _deterministic_forward(arch: Architecture, theta64: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
    """f(θ, X), checked: two forwards of the same batch under different global RNG states must agree (functorch's
    vmap refuses random ops; a random census would be meaningless)."""
    state = torch.random.get_rng_state()
    try:
        torch.manual_seed(1)
        a = arch.forward(theta64, X)
        torch.manual_seed(2)
        b = arch.forward(theta64, X)
    except Exception as e:  # noqa: BLE001 - user code
        raise InputError(f"{arch.name}: the module does not run in float64 ({type(e).__name__}: {e}); the census and "
                         "verification need it (avoid hard-coded .float() casts inside forward)") from e
    finally:
        torch.random.set_rng_state(state)
    if not torch.equal(a, b):
        raise InputError(f"{arch.name}: the forward is random (two calls on the same batch differ); make it "
                         "deterministic, e.g. module.eval() or no sampling inside forward, before from_module")
    return a


def _batch_coupling(arch: Architecture, theta64: torch.Tensor, X: torch.Tensor,
                    batched: torch.Tensor) -> tuple[bool, str]:
    """(coupled, reason): whether the batch's outputs ``batched`` differ from its samples' outputs one at a time."""
    try:
        single = torch.cat([arch.forward(theta64, X[i:i + 1]) for i in range(X.shape[0])])
    except Exception as e:  # noqa: BLE001 - user code that needs a batch (e.g. statistics over it)
        return True, f"detected: the forward fails on one sample ({type(e).__name__}), so samples are coupled"
    diff = float((batched - single).abs().max() / batched.abs().max().clamp_min(1e-300))
    if diff > COUPLING_RTOL:
        return True, f"detected: a batch's outputs differ from per-sample outputs (max rel. {diff:.1e})"
    return False, f"none detected (batch vs per-sample outputs agree to {diff:.0e} in float64)"


def _smoke_check(arch: Architecture, theta: torch.Tensor) -> None:
    """Run forward and loss once on a batch of 2; any failure becomes one clear SymdiscError."""
    gen = make_generator(0)
    try:
        X, Y = arch.sample_data(2, gen)
    except SymdiscError:
        raise
    except Exception as e:  # noqa: BLE001 - user code
        raise InputError(f"{arch.name}: sample_batch failed: {type(e).__name__}: {e}") from e
    try:
        losses = arch.per_sample_loss(theta, X, Y)
    except Exception as e:  # noqa: BLE001 - user code
        raise InputError(f"{arch.name}: module forward/loss failed on a sample batch: {type(e).__name__}: {e}") from e
    if losses.shape != (2,):
        raise InputError(f"{arch.name}: per-sample loss has shape {tuple(losses.shape)}, expected (batch,)")
    if not torch.isfinite(losses).all():
        bad = [n for n, t in arch.layout.unflatten(theta).items() if not torch.isfinite(t).all()]
        raise InputError(f"{arch.name}: loss is not finite on a sample batch"
                         + (f" (NaN or inf in the parameters {', '.join(bad[:3])}): fix the module's weights"
                            if bad else " (an overflow in the forward or the loss): check the inputs and the scale "
                                        "of the weights"))
