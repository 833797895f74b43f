"""Any ``torch.nn.Module`` as an architecture, through ``torch.func.functional_call``.

    f(θ, X) = functional_call(module, unflatten(θ) ∪ buffers, (X,))

The module is never mutated (a private copy is kept); its buffers and frozen parameters are cast
to θ's dtype and device at every call.
Batch-norm layers are patched to use batch statistics only (``replace_all_batch_norm_modules_``)
and mark the architecture as not sample-wise (outputs then couple samples).
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
from torch import nn
from torch.func import functional_call, replace_all_batch_norm_modules_

from symdisc.architecture import Architecture, ParamSampler, make_generator
from symdisc.errors import InputError, SymdiscError
from symdisc.layout import ParamLayout
from symdisc.losses import PerSampleLoss, resolve_loss
from symdisc.zoo.init import fan_in_sampler

SampleBatch = Callable[[int, torch.Generator], tuple[torch.Tensor, torch.Tensor]]


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
    """
    if not isinstance(module, nn.Module):
        raise InputError(f"from_module needs a torch.nn.Module, got {type(module).__name__}")
    loss_name, loss_fn = resolve_loss(loss)
    layout = ParamLayout.of_module(module)
    if not layout.names:
        raise InputError(f"{type(module).__name__} has no trainable parameters")
    has_bn = any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in module.modules())
    base = copy.deepcopy(module)
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
        samplewise=(not has_bn) if samplewise is None else samplewise,
        dtype=next(module.parameters()).dtype,
        symmetry_factory=symmetries,
    )
    _smoke_check(arch, module_theta(module, layout).to(arch.dtype))
    return arch


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
        raise InputError(f"{arch.name}: loss is not finite on a sample batch")
