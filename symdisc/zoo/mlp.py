"""Multi-layer perceptrons  f(θ, x) = W_L σ(… σ(W_1 x + b_1) …) + b_L  (Table 1.1; dissertation ch. 6).

θ stores W_j with shape (d_j, d_{j−1}) (torch convention, column convention of the papers:
W_2 σ(W_1 X)); X has samples as rows.  With ``skip`` every hidden layer whose width equals the
previous one is residual: H_j = H_{j−1} + σ(Z_j).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from symdisc.activations import Activation, get_activation
from symdisc.architecture import Architecture
from symdisc.errors import InputError
from symdisc.layout import ParamLayout
from symdisc.losses import resolve_loss
from symdisc.symmetry.base import Symmetry
from symdisc.symmetry.data_dependent import DataDependentGL
from symdisc.symmetry.hidden import Attachment, FiniteGroupSymmetry, HiddenSpace, MatrixGroupSymmetry
from symdisc.symmetry.translation import HiddenBiasShift, softmax_translation
from symdisc.zoo.init import fan_in_sampler, gaussian_data, uniform_data, uniform_sampler


def parse_dims(dims: str | Sequence[int]) -> tuple[int, ...]:
    """"3,3,1" → (3, 3, 1); at least input and output width, all ≥ 1."""
    if isinstance(dims, str):
        try:
            out = tuple(int(x) for x in dims.replace(" ", "").split(","))
        except ValueError:
            raise InputError(f"malformed layer widths {dims!r}: expected comma-separated integers like 3,3,1") from None
    else:
        out = tuple(int(x) for x in dims)
    if len(out) < 2 or any(d < 1 for d in out):
        raise InputError(f"malformed layer widths {dims!r}: need ≥ 2 positive widths (input,…,output)")
    return out


class MLPStructure:
    """Layer names, residual links and the forward pass of an MLP."""

    def __init__(self, dims: tuple[int, ...], act: Activation, bias: bool, skip: bool):
        self.dims, self.act, self.bias = dims, act, bias
        self.depth = len(dims) - 1
        self.residual = [
            skip and 2 <= j < self.depth and dims[j] == dims[j - 1] for j in range(self.depth + 1)
        ]
        pairs = []
        for j in range(1, self.depth + 1):
            pairs.append((f"W{j}", (dims[j], dims[j - 1])))
            if bias:
                pairs.append((f"b{j}", (dims[j],)))
        self.layout = ParamLayout.from_pairs(pairs)

    def hidden(self, theta: torch.Tensor | dict, X: torch.Tensor, upto: int) -> torch.Tensor:
        """H_upto (rows = samples); H_0 = X; the last layer (upto = L) returns the linear output.
        ``theta`` is flat or a dict of named tensors."""
        p = self.layout.unflatten(theta) if isinstance(theta, torch.Tensor) else theta
        H = X
        for j in range(1, upto + 1):
            Z = H @ p[f"W{j}"].transpose(0, 1)
            if self.bias:
                Z = Z + p[f"b{j}"]
            if j == self.depth:
                return Z
            A = self.act.fn(Z)
            H = H + A if self.residual[j] else A
        return H

    def forward(self, params: dict[str, torch.Tensor], X: torch.Tensor) -> torch.Tensor:
        return self.hidden(params, X, self.depth)

    def streams(self) -> list[list[int]]:
        """Hidden spaces: runs of hidden layers joined by residual links."""
        out: list[list[int]] = []
        for j in range(1, self.depth):
            if self.residual[j] and out:
                out[-1].append(j)
            else:
                out.append([j])
        return out

    def space(self, stream: list[int]) -> HiddenSpace:
        atts = []
        for i, j in enumerate(stream):
            if i > 0:
                atts.append(Attachment(f"W{j}", 1, "consumes"))
            atts.append(Attachment(f"W{j}", 0, "produces"))
            if self.bias:
                atts.append(Attachment(f"b{j}", 0, "produces"))
        atts.append(Attachment(f"W{stream[-1] + 1}", 1, "consumes"))
        return HiddenSpace(self.layout, self.dims[stream[0]], atts)


def mlp_symmetries(s: MLPStructure, loss_name: str) -> list[Symmetry]:
    """Known symmetries of an MLP (Table 1.1, teleport.md §1.4.3)."""
    act, out = s.act, []
    for stream in s.streams():
        space, tag = s.space(stream), ",".join(map(str, stream))
        if act.linear:
            out.append(MatrixGroupSymmetry(space, "gl", f"GL(h{tag})", source="Ex. 1.2.2"))
            if s.bias and len(stream) == 1:
                j = stream[0]
                out.append(HiddenBiasShift(s.layout, f"b{j}", f"b{j + 1}", f"W{j + 1}"))
        elif act.homogeneous_degree is not None:
            out.append(MatrixGroupSymmetry(space, "diag", f"rescale(h{tag})", alpha=act.homogeneous_degree,
                                           source="Ex. 1.2.4"))
        elif act.radial:
            out.append(MatrixGroupSymmetry(space, "so", f"O(h{tag})", source="Ex. 1.2.6"))
        if act.pointwise:
            out.append(FiniteGroupSymmetry(space, "permutation", f"permute(h{tag})", source="Ex. 1.2.9"))
            if act.odd:
                out.append(FiniteGroupSymmetry(space, "sign", f"sign-flip(h{tag})", source="Ex. 1.2.5"))
    if loss_name == "cross_entropy":
        out.append(softmax_translation(s.layout, f"W{s.depth}", f"b{s.depth}" if s.bias else None))
    if act.pointwise and not any(s.residual):
        for j in range(1, s.depth):
            def layer_input(theta, X, j=j):
                return s.hidden(theta, X, j - 1)

            forms = ["pinv"] + (["sigma_inverse"] if act.inverse is not None else [])
            for form in forms:
                out.append(DataDependentGL(s.layout, layer_input, f"W{j}", f"W{j + 1}", act.fn,
                                           b_in=f"b{j}" if s.bias else None, sigma_inv=act.inverse, form=form,
                                           sigma_prime=act.derivative))
    return out


def build_mlp(
    name: str = "mlp",
    dims: str | Sequence[int] = (3, 3, 1),
    act: str = "relu",
    bias: bool = False,
    loss: str = "mse",
    skip: bool = False,
    batch: int = 64,
    data: str = "gaussian",
) -> Architecture:
    """MLP with widths ``dims`` = (d_0, …, d_L), activation ``act``, optional biases and residual skips.
    ``data="uniform"``: θ, X, Y ~ U[0, 1] (the teleportation regression E3) instead of fan-in θ and
    Gaussian X, Y."""
    dims_t, activation = parse_dims(dims), get_activation(act)
    loss_name, loss_fn = resolve_loss(loss)
    if skip and not any(dims_t[j] == dims_t[j - 1] for j in range(2, len(dims_t) - 1)):
        raise InputError(f"skip connections need two consecutive equal hidden widths, got dims {dims_t}")
    s = MLPStructure(dims_t, activation, bias, skip)
    classes = dims_t[-1] if loss_name == "cross_entropy" else None
    if data not in ("gaussian", "uniform"):
        raise InputError(f"unknown data distribution {data!r}; choose gaussian or uniform")
    if data == "uniform" and classes is not None:
        raise InputError("uniform data is for regression (mse) only")
    uniform = data == "uniform"
    return Architecture(
        name=name,
        layout=s.layout,
        forward_named=s.forward,
        loss=loss_fn,
        loss_name=loss_name,
        param_sampler=uniform_sampler(s.layout) if uniform else fan_in_sampler(s.layout),
        data_sampler=uniform_data((dims_t[0],), (dims_t[-1],)) if uniform else
        gaussian_data((dims_t[0],), (dims_t[-1],), num_classes=classes),
        source=(build_mlp.__doc__ or "").strip(),
        spec={"preset": name, "dims": list(dims_t), "act": act, "bias": bias, "loss": loss_name, "skip": skip,
              "data": data},
        default_batch_size=batch,
        symmetry_factory=lambda arch: mlp_symmetries(s, loss_name),
    )
