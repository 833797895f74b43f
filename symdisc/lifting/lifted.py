"""A symmetry of a block lifted to the network around it (dissertation Prop. 6.4.1, Cor. 6.4.2–6.4.3, Prop. 6.4.4).

With θ = (θ_1, θ_2), θ_2 = θ[index] the block's parameters and s = h(θ_1, X) the block's input,

    a′_X(g, θ) = (θ_1, a_s(g, θ_2)),   s = pad(H_{i−1}(θ_1, X)),

where a is the source's action (known or learned, through the Symmetry interface), H_{i−1} the target's own
forward of the layers below the block and ``pad`` appends d − d′ dummy points (Prop. 6.4.4; identity when
d = d′).  Since s and θ_1 do not depend on g, the fields are the source's, embedded: ξ′ = E ξ(θ_2, s).
The identity and associativity of a′ follow from a's, for a fixed pad; L(a′(g, θ), X) = L(θ, X) whenever L
depends on θ_2 only through the block's output, which ``place`` checks structurally and ``check_lift``
numerically.
"""

from __future__ import annotations

import numpy as np
import torch

from symdisc.architecture import Architecture, make_generator
from symdisc.errors import InputError
from symdisc.lifting.chain import Chain, chain_of
from symdisc.lifting.placement import Block, Placement, condition, place
from symdisc.symmetry.base import Symmetry, TangentMap

PAD_STREAM = 31  # fixed dummy points: make_generator(pad_seed, PAD_STREAM)


class LiftError(InputError):
    """A lifting condition fails: the source's symmetry is not one of the target network."""


class LiftedSymmetry(Symmetry):
    """a′_X(g, θ) = θ with θ[index] ↦ a_s(g, θ[index]) (module docstring); same group, generators and elements as
    the source.  ``conditions`` lists the lifting conditions checked at construction (``ok`` each)."""

    def __init__(self, source: Symmetry, source_chain: Chain, target: Chain, placement: Placement, block: Block,
                 padding: torch.Tensor | None, conditions: tuple[dict, ...]):
        super().__init__(target.arch.layout)
        self.source, self.source_chain, self.target, self.placement = source, source_chain, target, placement
        self.block, self.padding, self.conditions = block, padding, conditions
        self.num_generators = source.num_generators
        self.data_dependent = source.data_dependent
        self.preserves = "output"  # Prop. 6.4.1 carries the block's output over, nothing else
        self.arch = target.arch
        self.real_batch = placement.batch
        self.data_shape = None if self.real_batch is None else [self.real_batch, target.dims[0]]
        kinds = block.kinds + (("smaller batch",) if self.pad_count else ())
        self.kinds = kinds or ("same",)
        i, k = block.layers
        where = f"layers {i}..{k}" + (f" units {list(block.units)}" if block.kinds[:1] == ("wider",) else "")
        self.name = f"lift[{','.join(self.kinds)}]({source.name} → {target.arch.name} {where})"

    @property
    def pad_count(self) -> int:
        d, d_real = self.placement.pad_to, self.real_batch
        return 0 if d is None or d_real is None else d - d_real

    @property
    def valid(self) -> bool:
        """Every structural condition holds (the numerical check is ``check_lift``)."""
        return all(c["ok"] for c in self.conditions)

    def generators(self, dtype=torch.float64, device="cpu"):
        return self.source.generators(dtype, device)

    def identity_element(self):
        return self.source.identity_element()

    def sample_element(self, generator, scale=1.0):
        return self.source.sample_element(generator, scale)

    def _check(self, theta, X):
        super()._check(theta, X)
        if self.data_dependent and self.real_batch is not None and X.shape[0] != self.real_batch:
            raise InputError(f"{self.name} takes batches of {self.real_batch} samples, got {X.shape[0]}")

    def _index(self, theta: torch.Tensor) -> torch.Tensor:
        return self.block.index.to(theta.device)

    def block_data(self, theta: torch.Tensor, X: torch.Tensor | None) -> torch.Tensor | None:
        """s = pad(H_{i−1}(θ, X)): the source's data (None for a data-free source)."""
        if not self.data_dependent:
            return None
        H = self.target.lower(theta, X.to(theta) if X.is_floating_point() else X, self.block.layers[0] - 1)
        if not self.pad_count:
            return H
        if self.placement.padding == "random":  # numpy, so torch.func transforms see a constant
            pad = torch.from_numpy(np.random.default_rng().standard_normal((self.pad_count, *H.shape[1:])))
        else:
            pad = self.padding
        return torch.cat([H, pad.to(H)])

    def _split(self, theta, X):
        self._check(theta, X)
        return theta[self._index(theta)], self.block_data(theta, X)

    def act(self, coeffs, theta, X=None):
        block, s = self._split(theta, X)
        return theta.index_copy(0, self._index(theta), self.source.act(coeffs, block, s))

    def tangents(self, theta, X=None):
        block, s = self._split(theta, X)
        xi = self.source.tangents(block, s)
        return theta.new_zeros(theta.shape[0], xi.shape[1]).index_copy(0, self._index(theta), xi)

    def field(self, coeffs, theta, X=None):
        return self.linearize(theta, X).field(coeffs)

    def pullback(self, v, theta, X=None):
        return self.linearize(theta, X).pullback(v)

    def linearize(self, theta, X=None) -> TangentMap:
        """The source's map on the block: ξ scattered into θ's index, v gathered from it."""
        block, s = self._split(theta, X)
        index, inner = self._index(theta), self.source.linearize(block, s)
        return TangentMap(lambda c: torch.zeros_like(theta).index_copy(0, index, inner.field(c)),
                          lambda v: inner.pullback(v.to(theta)[index]))

    def orbit(self, coeffs, theta, ts, X=None):
        block, s = self._split(theta, X)
        curve = self.source.orbit(coeffs, block, ts, s)
        return theta.expand(len(ts), -1).index_copy(1, self._index(theta), curve)

    def exactness(self, theta, X=None) -> dict:
        block, s = self._split(theta, X)
        report = dict(self.source.exactness(block, s))
        broken = [c["detail"] for c in self.conditions if not c["ok"]]
        if broken:
            report["exact"] = False
        if self.pad_count and self.placement.padding == "random":
            report["group_axioms"] = False
        report["condition"] = (f"lifted ({', '.join(self.kinds)}): " + ("; ".join(broken) if broken else
                               "every lifting condition holds") + f"; source: {report.get('condition', '')}")
        return report

    def to(self, dtype=None, device=None) -> LiftedSymmetry:
        """Move a learned source's weights and the padding (in place), as ``LearnedSymmetry.to``."""
        if callable(getattr(self.source, "to", None)):
            self.source.to(dtype=dtype, device=device)
        if self.padding is not None:
            self.padding = self.padding.to(dtype=dtype, device=device)
        return self

    def describe(self) -> dict:
        src = self.source.describe()
        return {**super().describe(), "group": src.get("group"), "kinds": list(self.kinds),
                "placement": self.placement.to_dict(), "layers": list(self.block.layers),
                "units": None if self.block.units is None else list(self.block.units),
                "conditions": list(self.conditions), "source": src, "target": self.target.arch.name}


def lift(source: Symmetry, source_arch: Architecture | Chain | None, target: Architecture | Chain,
         placement: Placement | None = None, *, strict: bool = True,
         padding: torch.Tensor | None = None) -> LiftedSymmetry:
    """The symmetry ``source`` of ``source_arch`` (None: the one a learned symmetry carries) lifted into ``target``
    at ``placement``.  ``strict``: raise LiftError when a structural lifting condition fails (else build it anyway,
    with the failure in ``conditions``, for ``check_lift`` to measure).  ``padding``: the fixed dummy points to
    use (a saved lift's), else drawn from the source's data distribution."""
    placement = placement or Placement()
    source_arch = source_arch if source_arch is not None else getattr(source, "arch", None)
    if source_arch is None:
        raise InputError(f"pass the architecture {source.name} belongs to (source_arch)")
    src, tgt = chain_of(source_arch), chain_of(target)
    if source.layout != src.arch.layout:
        raise InputError(f"{source.name} acts on {source.layout.num_params} parameters, not on "
                         f"{src.arch.name} (p = {src.arch.num_params})")
    block = place(src, tgt, placement)
    placement, conditions, padding = _batch(source, src, tgt, placement, padding)
    conditions = block.conditions + conditions
    lifted = LiftedSymmetry(source, src, tgt, placement, block, padding, conditions)
    broken = [c["detail"] for c in conditions if not c["ok"]]
    if strict and broken:
        raise LiftError(f"{source.name} does not lift into {tgt.arch.name}: {'; '.join(broken)}")
    return lifted


def _batch(source: Symmetry, src: Chain, tgt: Chain, placement: Placement, padding):
    """Resolve d′ (``batch``) and d (``pad_to``), the padding points and the batch conditions (Prop. 6.4.4)."""
    fixed = source.data_shape[0] if source.data_shape else None
    if not source.data_dependent:
        if placement.batch is not None or placement.pad_to is not None:
            note = "the source is data-free: it acts at every batch size, no padding needed"
            placement = Placement(placement.layer, placement.units, None, None, placement.padding, placement.pad_seed)
            return placement, (condition("batch", True, note, "Prop. 6.4.4"),), None
        return placement, (), None
    if fixed is not None and placement.pad_to not in (None, fixed):
        raise InputError(f"{source.name} takes batches of {fixed} (its training batch): pad_to must be {fixed}")
    d = placement.pad_to or fixed or placement.batch
    d_real = placement.batch or d
    if d is not None and d_real > d:
        raise InputError(f"a symmetry for batches of {d} gives none for the larger batch {d_real} (the converse of "
                         "Prop. 6.4.4 fails, App. A.3.4)")
    placement = Placement(placement.layer, placement.units, d_real, d, placement.padding, placement.pad_seed)
    if d is None or d_real == d:
        return placement, (), None
    if padding is None and placement.padding == "fixed":
        arch64 = src.arch.to(dtype=torch.float64, device="cpu")
        padding = arch64.sample_data(d - d_real, make_generator(placement.pad_seed, PAD_STREAM))[0]
    if padding is not None and tuple(padding.shape) != (d - d_real, src.dims[0]):
        raise InputError(f"padding points have shape {tuple(padding.shape)}, expected ({d - d_real}, {src.dims[0]})")
    conditions = (
        condition("fixed padding", placement.padding == "fixed",
                  f"{d - d_real} dummy point{'s' * (d - d_real > 1)} appended to the {d_real} real one"
                  f"{'s' * (d_real > 1)}, "
                  + ("fixed (drawn once)" if placement.padding == "fixed" else
                     "drawn afresh at every call: a′ is not a function of (g, θ, X), identity and associativity "
                     "break"), "Prop. 6.4.4"),
        condition("sample-wise target", tgt.arch.samplewise,
                  "each sample's output depends on that sample alone" if tgt.arch.samplewise else
                  f"{tgt.arch.name} couples the samples of a batch ({tgt.arch.coupling}): the dummy points change "
                  "the real ones' outputs", "Prop. 6.4.4"),
    )
    return placement, conditions, padding
