"""Tiny transformer of dissertation §6.5.5 (fig. 6.7).

    Attn(X) = softmax(Q Kᵀ/√d) V (W_O),   Q = X W_Q,  K = X W_K,  V = X W_V
    f_θ(X)  = FFN(X + Attn(X)),           FFN(Z) = (Z W_1 + b_1) W_2   (linear, no activation)

X ∈ ℝ^{B×T×d}; defaults B = 8, T = 2, d = 2, d_ff = 4, one head.  The text's matrices give
p = 28 but it states p = 32 (and writes Z W_2 W_1, shape-inconsistent).  ``variant``:
"plain" (default, p = 28: exactly the listed matrices), "wo" (+ output projection W_O, p = 32),
"ffn-bias" (+ b_1, p = 32).  See docs/decisions.md.
"""

from __future__ import annotations

import math

import torch

from symdisc.architecture import Architecture
from symdisc.errors import InputError
from symdisc.layout import ParamLayout
from symdisc.losses import resolve_loss
from symdisc.symmetry.base import Symmetry
from symdisc.symmetry.hidden import Attachment, FiniteGroupSymmetry, HiddenSpace, MatrixGroupSymmetry
from symdisc.zoo.init import fan_in_sampler, gaussian_data

VARIANTS = ("plain", "wo", "ffn-bias")


def _layout(d: int, d_ff: int, variant: str) -> ParamLayout:
    pairs = [("W_Q", (d, d)), ("W_K", (d, d)), ("W_V", (d, d))]
    if variant == "wo":
        pairs.append(("W_O", (d, d)))
    pairs.append(("W_1", (d, d_ff)))
    if variant == "ffn-bias":
        pairs.append(("b_1", (d_ff,)))
    pairs.append(("W_2", (d_ff, d)))
    return ParamLayout.from_pairs(pairs)


def transformer_symmetries(layout: ParamLayout, d: int, d_ff: int) -> list[Symmetry]:
    """GL(d_k) on (W_Q, W_K), GL(d_v) on (W_V, W_O) if present, GL(d_ff) on the linear FFN."""
    qk = HiddenSpace(layout, d, [Attachment("W_Q", 1, "consumes"), Attachment("W_K", 1, "produces")])
    ffn_atts = [Attachment("W_1", 1, "produces"), Attachment("W_2", 0, "consumes")]
    if "b_1" in layout.names:
        ffn_atts.append(Attachment("b_1", 0, "produces"))
    ffn = HiddenSpace(layout, d_ff, ffn_atts)
    out: list[Symmetry] = [
        MatrixGroupSymmetry(qk, "gl", "attention-GL(d_k)", source="Ex. 1.2.11"),
        MatrixGroupSymmetry(ffn, "gl", "ffn-GL(d_ff)", source="Ex. 1.2.2 (linear FFN)"),
    ]
    if "W_O" in layout.names:
        vo = HiddenSpace(layout, d, [Attachment("W_V", 1, "consumes"), Attachment("W_O", 0, "produces")])
        out.append(MatrixGroupSymmetry(vo, "gl", "value-output-GL(d_v)", source="Ex. 1.2.12"))
    out.append(FiniteGroupSymmetry(ffn, "permutation", "permute(ffn)", source="Ex. 1.2.9"))
    return out


def build_tiny_transformer(
    name: str = "tiny-transformer",
    variant: str = "plain",
    seq_len: int = 2,
    d_model: int = 2,
    d_ff: int = 4,
    loss: str = "mse",
    batch: int = 8,
) -> Architecture:
    """One-head attention block with a linear FFN and residual (dissertation §6.5.5, fig. 6.7)."""
    if variant not in VARIANTS:
        raise InputError(f"unknown tiny-transformer variant {variant!r}; choose one of {', '.join(VARIANTS)}")
    if min(seq_len, d_model, d_ff) < 1:
        raise InputError("seq_len, d_model and d_ff must be ≥ 1")
    loss_name, loss_fn = resolve_loss(loss)
    if loss_name != "mse":
        raise InputError("tiny-transformer regresses a B×T×d target: use the mse loss")
    layout = _layout(d_model, d_ff, variant)
    scale = 1.0 / math.sqrt(d_model)

    def forward(p: dict[str, torch.Tensor], X: torch.Tensor) -> torch.Tensor:
        Q, K, V = X @ p["W_Q"], X @ p["W_K"], X @ p["W_V"]
        A = torch.softmax(Q @ K.transpose(-1, -2) * scale, dim=-1) @ V
        if "W_O" in p:
            A = A @ p["W_O"]
        H = (X + A) @ p["W_1"]
        if "b_1" in p:
            H = H + p["b_1"]
        return H @ p["W_2"]

    return Architecture(
        name=name,
        layout=layout,
        forward_named=forward,
        loss=loss_fn,
        loss_name=loss_name,
        param_sampler=fan_in_sampler(layout, {n: 0 for n in layout.names}),
        data_sampler=gaussian_data((seq_len, d_model), (seq_len, d_model)),
        source=(build_tiny_transformer.__doc__ or "").strip(),
        spec={"preset": name, "variant": variant, "seq_len": seq_len, "d_model": d_model, "d_ff": d_ff},
        default_batch_size=batch,
        symmetry_factory=lambda arch: transformer_symmetries(layout, d_model, d_ff),
    )
