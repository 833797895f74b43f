"""Symmetry interface and the known (analytic) symmetries."""

from symdisc.symmetry.base import Symmetry, TangentMap, orbit_dimension, stacked_tangents
from symdisc.symmetry.data_dependent import DataDependentGL
from symdisc.symmetry.hidden import Attachment, FiniteGroupSymmetry, HiddenSpace, MatrixGroupSymmetry
from symdisc.symmetry.known import (
    batchnorm_scale,
    continuous_symmetries,
    known_symmetries,
    linear_pair_gl,
    lora_gl,
)
from symdisc.symmetry.product import ProductSymmetry, hidden_layers_gl
from symdisc.symmetry.translation import HiddenBiasShift, TranslationSymmetry, bias_translation, softmax_translation

__all__ = [
    "TangentMap",
    "Attachment", "DataDependentGL", "FiniteGroupSymmetry", "HiddenBiasShift", "HiddenSpace", "MatrixGroupSymmetry",
    "ProductSymmetry", "Symmetry", "TranslationSymmetry", "batchnorm_scale", "bias_translation",
    "continuous_symmetries", "hidden_layers_gl", "known_symmetries", "linear_pair_gl", "lora_gl", "orbit_dimension",
    "softmax_translation", "stacked_tangents",
]
