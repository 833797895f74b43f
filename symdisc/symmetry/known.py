"""Known symmetries of an architecture, and constructors for user modules (LoRA, batch-norm)."""

from __future__ import annotations

from symdisc.architecture import Architecture
from symdisc.layout import ParamLayout
from symdisc.symmetry.base import Level, Symmetry
from symdisc.symmetry.hidden import Attachment, HiddenSpace, MatrixGroupSymmetry


def known_symmetries(arch: Architecture) -> list[Symmetry]:
    """All known symmetries that apply to ``arch`` (continuous, discrete and data-dependent)."""
    return arch.known_symmetries()


def continuous_symmetries(
    arch: Architecture, preserves: Level | None = "output", data_dependent: bool = False
) -> list[Symmetry]:
    """The continuous known symmetries; by default the functional (output-preserving), data-free ones."""
    return [
        s
        for s in known_symmetries(arch)
        if not s.discrete
        and s.data_dependent == data_dependent
        and (preserves is None or s.preserves == preserves)
    ]


def lora_gl(layout: ParamLayout, U: str, V: str) -> MatrixGroupSymmetry:
    """GL_r of a LoRA adapter W + U V (U ∈ ℝ^{n×r}, V ∈ ℝ^{r×m}): (U g^{-1}, g V) (Ex. 1.2.13)."""
    r = layout.shape(U)[1]
    space = HiddenSpace(layout, r, [Attachment(U, 1, "consumes"), Attachment(V, 0, "produces")])
    return MatrixGroupSymmetry(space, "gl", f"LoRA-GL(r={r})", source="Ex. 1.2.13")


def linear_pair_gl(layout: ParamLayout, w_in: str, w_out: str, b_in: str | None = None,
                   algebra: str = "gl") -> MatrixGroupSymmetry:
    """GL_h between two linear layers of a user module, weights in torch's (out, in) layout:
    W_in ↦ g W_in, b_in ↦ g b_in, W_out ↦ W_out g⁻¹ (Ex. 1.2.2).  Any activation between them must
    be equivariant for the group chosen: ``gl`` (none), ``diag`` (ReLU/LeakyReLU), ``so`` (radial)."""
    h = layout.shape(w_in)[0]
    atts = [Attachment(w_in, 0, "produces"), Attachment(w_out, 1, "consumes")]
    atts += [Attachment(b_in, 0, "produces")] if b_in else []
    return MatrixGroupSymmetry(HiddenSpace(layout, h, atts), algebra, f"{algebra.upper()}(h={h})[{w_in}->{w_out}]",
                               source="Ex. 1.2.2")


def batchnorm_scale(layout: ParamLayout, weight: str, bias: str | None = None) -> MatrixGroupSymmetry:
    """Positive rescaling of the rows of W (and b) before a batch-norm with ε = 0 (Ex. 1.2.7)."""
    h = layout.shape(weight)[0]
    atts = [Attachment(weight, 0, "produces")] + ([Attachment(bias, 0, "produces")] if bias else [])
    # No consumer: the batch-norm itself absorbs g.  The consumer law is then never used.
    return MatrixGroupSymmetry(HiddenSpace(layout, h, atts), "diag", f"batchnorm-scale({weight})",
                               source="Ex. 1.2.7 (exact only with ε = 0)")
