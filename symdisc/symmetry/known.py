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


def batchnorm_scale(layout: ParamLayout, weight: str, bias: str | None = None) -> MatrixGroupSymmetry:
    """Positive rescaling of the rows of W (and b) before a batch-norm with ε = 0 (Ex. 1.2.7)."""
    h = layout.shape(weight)[0]
    atts = [Attachment(weight, 0, "produces")] + ([Attachment(bias, 0, "produces")] if bias else [])
    # No consumer: the batch-norm itself absorbs g.  The consumer law is then never used.
    return MatrixGroupSymmetry(HiddenSpace(layout, h, atts), "diag", f"batchnorm-scale({weight})",
                               source="Ex. 1.2.7 (exact only with ε = 0)")
