"""The Hessian of a scalar loss L(θ) as a matrix-free operator (RR's 𝓗; ridge_rider.md §0, §2).

    H v = ∂/∂ε ∇L(θ + ε v)|₀      (forward-over-reverse: one jvp of ``torch.func.grad``)

batched over the columns of V with ``vmap`` (chunks of ``chunk`` columns).  Where an op has no forward-mode
rule the operator falls back to reverse-over-reverse (H v = ∇_θ⟨∇L(θ), v⟩, H symmetric).  With a
``projector`` P (design B: the orbit tangents projected out) the operator is P H P.  ``hvps`` counts
Hessian-vector products (columns), the cost unit of scalable RR and of its benchmark.  ``dense()`` forms
the p×p matrix from p HVPs (exact RR on small problems, the ground truth of the tests).

``compile=True`` runs the forward-over-reverse block through ``torch.compile``, one compiled function per loss
(θ is an argument, so a new point reuses it).  It pays only after many products: on a 2-core CPU at p = 9610 the
compiled HVP is 1.4–1.5× faster but costs ≈ 7 s to compile, ≈ 230–1600 products to break even
(benchmarks/results/compile_trial.json).  Any failure to compile warns once and falls back to eager.
"""

from __future__ import annotations

import warnings
import weakref
from collections.abc import Callable

import numpy as np
import torch
from torch.func import grad, jvp, vjp, vmap

from symdisc.errors import InputError, NumericalError

Loss = Callable[[torch.Tensor], torch.Tensor]
DETERMINISM_RTOL = 1e-10
_COMPILED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # loss → its compiled (θ, V) ↦ H V


def compiled_hvp(loss: Loss) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None:
    """(θ, V) ↦ H(θ) V for V (p, k) through ``torch.compile``, built once per ``loss`` (a new θ reuses it); None
    when compiling this loss failed before."""
    try:
        fn = _COMPILED.get(loss)
    except TypeError:  # a loss that takes no weak reference: compiled afresh for each operator
        fn = None
    if fn is False:
        return None
    if fn is None:
        g = grad(loss)
        fn = torch.compile(lambda theta, V: vmap(lambda v: jvp(g, (theta,), (v,))[1], in_dims=1, out_dims=1)(V))
        _remember(loss, fn)
    return fn


def _remember(loss: Loss, fn) -> None:
    try:
        _COMPILED[loss] = fn
    except TypeError:
        pass


class HessianOperator:
    """v ↦ H(θ) v (or P H(θ) P v) for ``loss`` at ``theta``; ``matvec`` takes (p,) or (p, k)."""

    def __init__(self, loss: Loss, theta: torch.Tensor, projector: Callable[[torch.Tensor], torch.Tensor] | None = None,
                 chunk: int = 64, compile: bool = False):
        if theta.dim() != 1:
            raise InputError(f"θ must be a flat vector, got shape {tuple(theta.shape)}")
        self.loss, self.theta, self.projector, self.chunk = loss, theta.detach(), projector, max(1, int(chunk))
        self._grad_fn = grad(loss)
        self._reverse = False
        self._compiled = compiled_hvp(loss) if compile else None
        self._gradient: torch.Tensor | None = None
        self.hvps = 0

    @property
    def p(self) -> int:
        return self.theta.shape[0]

    @property
    def dtype(self) -> torch.dtype:
        return self.theta.dtype

    @property
    def device(self) -> torch.device:
        return self.theta.device

    def value(self) -> float:
        return float(self.loss(self.theta))

    def gradient(self) -> torch.Tensor:
        """∇L(θ) (cached)."""
        if self._gradient is None:
            self._gradient = self._grad_fn(self.theta).detach()
            if not torch.isfinite(self._gradient).all():
                raise NumericalError("the loss's gradient is not finite at this θ; the loss is not smooth here")
        return self._gradient

    def _hvp_forward(self, v: torch.Tensor) -> torch.Tensor:
        return jvp(self._grad_fn, (self.theta,), (v,))[1]

    def _hvp_reverse(self, v: torch.Tensor) -> torch.Tensor:
        return vjp(self._grad_fn, self.theta)[1](v)[0]

    def _try_compiled(self, block: torch.Tensor) -> torch.Tensor | None:
        """H·block through the compiled function, or None (and eager from now on) when it cannot be compiled."""
        try:
            return self._compiled(self.theta, block)
        except Exception as e:  # noqa: BLE001 - dynamo/inductor raise many types; every one means "use eager"
            if "randomness" in str(e).lower():
                raise InputError("the loss draws random numbers (dropout, a fresh batch) on every call: RR "
                                 "needs a deterministic loss — fix the batch and call model.eval()") from None
            warnings.warn(f"torch.compile of the Hessian-vector product failed ({type(e).__name__}: "
                          f"{' '.join(str(e).split())[:200]}); using eager products", RuntimeWarning, stacklevel=4)
            _remember(self.loss, False)
            self._compiled = None
            return None

    def _raw(self, V: torch.Tensor) -> torch.Tensor:
        """H V for V (p, k), chunked over columns."""
        outs = []
        for start in range(0, V.shape[1], self.chunk):
            block = V[:, start:start + self.chunk]
            if self._compiled is not None and not self._reverse:
                out = self._try_compiled(block)
                if out is not None:
                    outs.append(out)
                    continue
            try:
                if not self._reverse:
                    try:
                        outs.append(vmap(self._hvp_forward, in_dims=1, out_dims=1)(block))
                        continue
                    except (NotImplementedError, RuntimeError) as e:
                        if "randomness" in str(e).lower():
                            raise
                        self._reverse = True  # an op without a (working) forward-mode rule: reverse-over-reverse
                outs.append(vmap(self._hvp_reverse, in_dims=1, out_dims=1)(block))
            except RuntimeError as e:
                if "randomness" in str(e).lower():
                    raise InputError("the loss draws random numbers (dropout, a fresh batch) on every call: RR "
                                     "needs a deterministic loss — fix the batch and call model.eval()") from None
                raise
        return torch.cat(outs, dim=1)

    def matvec(self, V: torch.Tensor) -> torch.Tensor:
        """H V (or P H P V) for V of shape (p,) or (p, k)."""
        vector = V.dim() == 1
        V = V.reshape(self.p, -1).to(self.theta)
        if self.projector is not None:
            V = self.projector(V)
        out = self._raw(V)
        if self.projector is not None:
            out = self.projector(out)
        self.hvps += V.shape[1]
        if not torch.isfinite(out).all():
            raise NumericalError("a Hessian-vector product is not finite: the loss is not twice differentiable "
                                 "at this θ (a kink, e.g. ReLU at 0, or an overflow)")
        return out[:, 0] if vector else out

    __matmul__ = matvec

    def dense(self) -> torch.Tensor:
        """The p×p matrix (p HVPs), symmetrised."""
        H = self.matvec(torch.eye(self.p, dtype=self.dtype, device=self.device))
        return (H + H.T) / 2

    def scipy(self):
        """A ``scipy.sparse.linalg.LinearOperator`` (float64 numpy, CPU) of this operator."""
        from scipy.sparse.linalg import LinearOperator

        def mv(x):
            V = torch.from_numpy(np.asarray(x, dtype=np.float64).reshape(self.p, -1)).to(self.theta)
            return self.matvec(V).cpu().numpy()

        return LinearOperator((self.p, self.p), matvec=mv, matmat=mv, rmatvec=mv, dtype=np.float64)

    def check_smooth(self, generator: torch.Generator | None = None, rtol: float = 1e-3) -> float:
        """Central differences of the gradient against one HVP at θ, ‖(∇L(θ+δv) − ∇L(θ−δv))/2δ − Hv‖ relative;
        InputError above ``rtol`` (a kink at θ: ReLU pre-activations at 0, |·|, a max — H is not defined there)."""
        v = torch.randn(self.p, generator=generator, dtype=torch.float64).to(self.theta)
        v = v / v.norm()
        delta = 1e-5 * max(1.0, float(self.theta.norm()))
        fd = (self._grad_fn(self.theta + delta * v) - self._grad_fn(self.theta - delta * v)) / (2 * delta)
        Hv = self.matvec(v)
        scale = max(float(fd.norm()), float(Hv.norm()), 1e-8 * (1.0 + float(self.gradient().norm())))
        gap = float((fd - Hv).norm()) / scale
        if gap > rtol:
            raise InputError(f"the loss is not twice differentiable at this θ (finite-difference gradient and Hessian "
                             f"product differ by {gap:.1e} relative): start near, not at, the kink (e.g. θ ~ N(0, ε)) "
                             "or use a smooth activation")
        return gap

    def check_deterministic(self, generator: torch.Generator | None = None, rtol: float = DETERMINISM_RTOL) -> float:
        """Apply the operator twice to the same random vector; raise InputError if the results differ (the loss
        draws a new batch or dropout mask per call, so no eigensolver can converge).  Returns the relative gap."""
        v = torch.randn(self.p, generator=generator, dtype=torch.float64).to(self.theta)
        a, b = self.matvec(v), self.matvec(v)
        gap = float((a - b).norm() / max(float(a.norm()), 1e-300))
        if gap > rtol:
            raise InputError(f"the Hessian operator is not deterministic (two products of the same vector differ "
                             f"by {gap:.1e} relative): fix the batch (and eval() dropout) inside the loss for RR")
        return gap
