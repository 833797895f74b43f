"""DCS constraints on one flat block θ ∈ ℝ^n: latents z ↦ θ = T(z), penalty α‖z_pen‖² (dcs.md §6).

Each constraint adds an artificial mirror symmetry to the loss by reparameterisation, so that plain
gradient descent on L(T(z)) + α‖z_pen‖² drives the constrained part of θ to exactly zero when α is large
enough (Theorem 1).  Minimising the penalty over the latents that give one θ leaves the *induced*
regulariser R(θ) = min_{T(z)=θ} ‖z_pen‖², so DCS solves min_θ L(θ) + α R(θ) (dcs.md D4, D6):

=============  ============================================  ===========================  =========================
constraint     T(z)                                          latents (penalised*)          R(θ)
=============  ============================================  ===========================  =========================
``Sparse(m)``  θ_M = w ⊙ u,  θ_{∖M} = v                      w*, u* on M; v off M          2‖θ_M‖₁   (lasso, λ = 2α)
``Basis(O)``   (I − OOᵀ)v + O (a ⊙ b)                        a*, b* ∈ ℝ^r; v ∈ ℝ^n         2‖Oᵀθ‖₁
``Group(g)``   θ_{G_j} = s_j w_{G_j},  θ_{∖G} = v            s* ∈ ℝ^J, w* on G; v          2 Σ_j ‖θ_{G_j}‖₂
``LowRank``    Θ = A Bᵀ (θ = vec Θ, Θ ∈ ℝ^{m×k})             A* ∈ ℝ^{m×r}, B* ∈ ℝ^{k×r}    2‖Θ‖_*  (nuclear norm)
=============  ============================================  ===========================  =========================

``Sparse`` with the full mask is spred (P = I, T = w ⊙ u).  ``Sparse`` stores w, u only on M and v only off M:
eq. 7's w, u off M and v on M never reach T (their gradient is the penalty's, or zero), so dropping them
changes neither T nor the optimum — it saves their memory.  ``Basis(O, form="paper")`` keeps eq. 7 literally,
T = (I − P)v + (Pw) ⊙ (Pu), which is not onto when P is not a coordinate mask (dcs.md D3: for
P = nnᵀ, n = (1, −1)/√2, nᵀT ≡ 0); it exists to show that defect (docs/decisions.md).

``init(θ)`` is a right inverse, T(init(θ)) = θ.  ``spread = 0`` gives the balanced one (‖z_pen‖² = R(θ), the
minimum): w = sign(θ)√|θ|, u = √|θ| (and the analogues below).  For the scalar pairs of ``Sparse`` and ``Basis``
that start lies on the line w = ±u, the fixed set of DCS's *own* swap mirror (w, u) ↦ (±u, ±w): gradient methods
(GD, SGD, Adam, L-BFGS) stay on it, so θ_i can never change sign (measured: 0 of 17 024 digits weights; the lasso
path ends at the saddle θ_i = 0 where the lasso needs a sign change — docs/dcs.md).  ``spread = σ > 0`` moves each
pair along the rescaling orbit, (w e^c, u e^{−c}) with c ~ N(0, σ²): T is unchanged, the swap symmetry broken,
signs free; the penalty starts at E cosh(2c) = e^{2σ²} times R(θ).  Gates and factors (``Group``, ``LowRank``)
have no such lock (the direction of θ_G lives in w; signs in the singular vectors) and ignore ``spread``.
A coordinate that is exactly 0 at init starts at the absorbing state w = u = 0 and stays there under noise-free
gradient descent (dcs.md P10), as the paper's mirror says it must.
``mirror(z)`` is the reflection (w, u, v) ↦ (Rw, Ru, v) that leaves T and the penalty unchanged (D1, P11);
``pairs`` lists the (scale, counter-scale) latents of the rescaling symmetry z ↦ (e^c w, e^{−c} u) that the
optimizer uses to rebalance (P16).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

import torch

from symdisc.errors import InputError

Latents = dict[str, torch.Tensor]


def _signed_root(x: torch.Tensor, generator: torch.Generator | None = None,
                 spread: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """(sign(x)√|x| e^c, √|x| e^{−c}): factors of x = w u; c = 0 (balanced: w² + u² = 2|x|, the minimum) or
    c ~ N(0, spread²) from ``generator`` (off the swap-fixed lines w = ±u)."""
    root = x.abs().sqrt()
    w, u = torch.sign(x) * root, root
    if spread > 0:
        c = spread * torch.randn(x.shape, generator=generator, dtype=torch.float64).to(x)
        w, u = w * torch.exp(c), u * torch.exp(-c)
    return w, u


class Constraint(ABC):
    """A DCS reparameterisation of a block of ``n`` numbers (see the module docstring)."""

    kind: str = "constraint"
    n: int

    @abstractmethod
    def latent_shapes(self) -> dict[str, tuple[int, ...]]:
        """The latents' names and shapes, in the order ``transform`` takes them."""

    @abstractmethod
    def penalised(self) -> tuple[str, ...]:
        """The latents the penalty α‖·‖² acts on."""

    @abstractmethod
    def transform(self, z: Latents) -> torch.Tensor:
        """θ = T(z), shape (n,)."""

    @abstractmethod
    def init(self, theta: torch.Tensor, generator: torch.Generator | None = None, spread: float = 0.0) -> Latents:
        """A right inverse, T(init(θ)) = θ: balanced (``spread`` 0: the smallest penalty, R(θ)) or spread along
        the pairs' rescaling (module docstring)."""

    @abstractmethod
    def induced(self, theta: torch.Tensor) -> torch.Tensor:
        """R(θ) = min_{T(z)=θ} ‖z_pen‖², the regulariser DCS is equivalent to (× α)."""

    @abstractmethod
    def constrained(self, theta: torch.Tensor) -> torch.Tensor:
        """The quantities the constraint drives to zero: θ_M, Oᵀθ, the group norms ‖θ_{G_j}‖, the singular values."""

    @abstractmethod
    def pairs(self) -> list[tuple[str, str, str]]:
        """(scaled, counter-scaled, axis rule) of the rescaling symmetry: ``"same"`` (w_i, u_i) share an index;
        ``"group"``: s_j scales the entries of group j of w; ``"column"``: column j of A and of B."""

    @abstractmethod
    def snap(self, theta: torch.Tensor, tol: float) -> torch.Tensor:
        """θ with every constrained quantity below ``tol`` set exactly to zero (for export)."""

    def penalty(self, z: Latents) -> torch.Tensor:
        """‖z_pen‖² (the penalty without α)."""
        return sum(z[name].pow(2).sum() for name in self.penalised())

    def mirror(self, z: Latents) -> Latents:
        """The DCS mirror: every penalised latent negated (for LowRank: A ↦ −A, B ↦ −B), the rest kept."""
        return {k: (-t if k in self.penalised() else t) for k, t in z.items()}

    def check_theta(self, theta: torch.Tensor) -> None:
        if theta.dim() != 1 or theta.shape[0] != self.n:
            raise InputError(f"{self.kind} constraint on {self.n} numbers: got a tensor of shape {tuple(theta.shape)}")

    def describe(self) -> dict:
        return {"kind": self.kind, "n": self.n}


def _as_mask(mask, n: int | None, what: str) -> torch.Tensor:
    m = torch.as_tensor(mask)
    if m.dim() != 1:
        raise InputError(f"{what}: the mask must be a vector, got shape {tuple(m.shape)}")
    if m.dtype != torch.bool:
        if not bool(((m == 0) | (m == 1)).all()):
            raise InputError(f"{what}: the mask must be boolean (or 0/1)")
        m = m.bool()
    if n is not None and m.shape[0] != n:
        raise InputError(f"{what}: the mask has {m.shape[0]} entries, the block {n}")
    return m


class Sparse(Constraint):
    """Coordinate mask P = diag(m): θ_M = w ⊙ u (lasso on M with λ = 2α); m = None masks all (spred)."""

    kind = "sparse"

    def __init__(self, n: int, mask: torch.Tensor | Sequence[bool] | None = None):
        self.n = int(n)
        self.mask = torch.ones(self.n, dtype=torch.bool) if mask is None else _as_mask(mask, self.n, "Sparse")
        self.m = int(self.mask.sum())
        if self.m == 0:
            raise InputError("Sparse: the mask selects no coordinate")

    def latent_shapes(self):
        return {"w": (self.m,), "u": (self.m,), "v": (self.n - self.m,)}

    def penalised(self):
        return ("w", "u")

    def pairs(self):
        return [("w", "u", "same")]

    def _scatter(self, on: torch.Tensor, off: torch.Tensor) -> torch.Tensor:
        mask = self.mask.to(on.device)
        out = on.new_zeros(self.n)
        return out.masked_scatter(mask, on).masked_scatter(~mask, off)

    def transform(self, z):
        if self.m == self.n:  # spred: no scatter
            return z["w"] * z["u"]
        return self._scatter(z["w"] * z["u"], z["v"])

    def init(self, theta, generator=None, spread=0.0):
        self.check_theta(theta)
        mask = self.mask.to(theta.device)
        w, u = _signed_root(theta[mask], generator, spread)
        return {"w": w, "u": u, "v": theta[~mask].clone()}

    def induced(self, theta):
        return 2 * self.constrained(theta).abs().sum()

    def constrained(self, theta):
        return theta[self.mask.to(theta.device)]

    def snap(self, theta, tol):
        return torch.where(self.mask.to(theta.device) & (theta.abs() < tol), torch.zeros_like(theta), theta)

    def describe(self):
        return {**super().describe(), "masked": self.m}


class Basis(Constraint):
    """General P = O Oᵀ (O ∈ ℝ^{n×r} orthonormal): T = (I − P)v + O(a ⊙ b), R(θ) = 2‖Oᵀθ‖₁ (basis-aware DCS).

    ``form="paper"``: eq. 7 as written, T = (I − P)v + (Pw) ⊙ (Pu) with w, u, v ∈ ℝ^n (not onto unless P is a
    coordinate mask; ``init`` is then not a right inverse: it keeps (I − P)θ only)."""

    kind = "basis"

    def __init__(self, basis: torch.Tensor, form: str = "aware", atol: float = 1e-8):
        basis = torch.as_tensor(basis)
        if basis.dim() != 2 or basis.shape[1] == 0 or basis.shape[1] > basis.shape[0]:
            raise InputError(f"Basis: O must be n×r with 1 ≤ r ≤ n, got shape {tuple(basis.shape)}")
        gram_err = float((basis.T @ basis - torch.eye(basis.shape[1], dtype=basis.dtype)).abs().max())
        if gram_err > atol:
            raise InputError(f"Basis: O's columns are not orthonormal (max |OᵀO − I| = {gram_err:.1e})")
        if form not in ("aware", "paper"):
            raise InputError(f"Basis: unknown form {form!r}; choose aware or paper")
        self.O, self.form, self.n, self.r = basis, form, basis.shape[0], basis.shape[1]

    @classmethod
    def from_projection(cls, P: torch.Tensor, form: str = "aware", atol: float = 1e-8) -> Constraint:
        """The constraint of an orthogonal projection P (Pᵀ = P = P²): ``Sparse`` when P is a 0/1 diagonal."""
        return constraint_from_projection(P, form, atol)

    def latent_shapes(self):
        if self.form == "paper":
            return {"w": (self.n,), "u": (self.n,), "v": (self.n,)}
        return {"a": (self.r,), "b": (self.r,), "v": (self.n,)}

    def penalised(self):
        return ("w", "u") if self.form == "paper" else ("a", "b")

    def pairs(self):
        return [(*self.penalised(), "same")]

    def _O(self, like: torch.Tensor) -> torch.Tensor:
        return self.O.to(dtype=like.dtype, device=like.device)

    def _project(self, x: torch.Tensor) -> torch.Tensor:
        basis = self._O(x)
        return basis @ (basis.T @ x)

    def transform(self, z):
        v = z["v"]
        if self.form == "paper":
            return v - self._project(v) + self._project(z["w"]) * self._project(z["u"])
        return v - self._project(v) + self._O(v) @ (z["a"] * z["b"])

    def init(self, theta, generator=None, spread=0.0):
        self.check_theta(theta)
        if self.form == "paper":
            zero = torch.zeros_like(theta)
            return {"w": zero, "u": zero.clone(), "v": theta.clone()}
        a, b = _signed_root(self._O(theta).T @ theta, generator, spread)
        return {"a": a, "b": b, "v": theta.clone()}

    def induced(self, theta):
        return 2 * self.constrained(theta).abs().sum()

    def constrained(self, theta):
        return self._O(theta).T @ theta

    def snap(self, theta, tol):
        c = self.constrained(theta)
        return theta - self._O(theta) @ torch.where(c.abs() < tol, c, torch.zeros_like(c))

    def describe(self):
        return {**super().describe(), "rank": self.r, "form": self.form}


class Group(Constraint):
    """Group gates: θ_{G_j} = s_j w_{G_j} (R(θ) = 2 Σ_j ‖θ_{G_j}‖₂, the group lasso; dcs.md D6).

    ``groups``: a vector of n group ids (−1: not constrained), e.g. the rows of a weight matrix for neuron
    sparsity (``Group.rows(out, in)``)."""

    kind = "group"

    def __init__(self, groups: torch.Tensor | Sequence[int]):
        g = torch.as_tensor(groups)
        if g.dim() != 1 or g.is_floating_point():
            raise InputError(f"Group: groups must be a vector of integer ids (−1 = free), got {tuple(g.shape)} "
                             f"{g.dtype}")
        self.n = g.shape[0]
        self.mask = g >= 0
        ids, self.index = torch.unique(g[self.mask], return_inverse=True)
        self.J = ids.numel()
        if self.J == 0:
            raise InputError("Group: no coordinate belongs to a group")
        self.m = int(self.mask.sum())

    @classmethod
    def rows(cls, out_features: int, in_features: int) -> Group:
        """One group per row of an (out, in) weight: neuron (output-unit) sparsity."""
        return cls(torch.arange(out_features).repeat_interleave(in_features))

    def latent_shapes(self):
        return {"s": (self.J,), "w": (self.m,), "v": (self.n - self.m,)}

    def penalised(self):
        return ("s", "w")

    def pairs(self):
        return [("s", "w", "group")]

    def _norms(self, x: torch.Tensor) -> torch.Tensor:
        sq = x.new_zeros(self.J).index_add(0, self.index.to(x.device), x * x)
        return sq.sqrt()

    def transform(self, z):
        mask = self.mask.to(z["w"].device)
        on = z["s"][self.index.to(z["w"].device)] * z["w"]
        return z["w"].new_zeros(self.n).masked_scatter(mask, on).masked_scatter(~mask, z["v"])

    def init(self, theta, generator=None, spread=0.0):
        self.check_theta(theta)
        mask = self.mask.to(theta.device)
        x = theta[mask]
        s = self._norms(x).sqrt()
        safe = torch.where(s > 0, s, torch.ones_like(s))
        w = torch.where(s[self.index] > 0, x / safe[self.index], torch.zeros_like(x))
        return {"s": s, "w": w, "v": theta[~mask].clone()}

    def induced(self, theta):
        return 2 * self.constrained(theta).sum()

    def constrained(self, theta):
        return self._norms(theta[self.mask.to(theta.device)])

    def snap(self, theta, tol):
        mask = self.mask.to(theta.device)
        dead = (self.constrained(theta) < tol)[self.index.to(theta.device)]
        on = torch.where(dead, torch.zeros_like(theta[mask]), theta[mask])
        return theta.masked_scatter(mask, on)

    def describe(self):
        return {**super().describe(), "groups": self.J, "grouped": self.m}


class LowRank(Constraint):
    """Θ = A Bᵀ for a block read as an m×k matrix (R(θ) = 2‖Θ‖_*, Srebro et al. 2004); ``rank`` r ≤ min(m, k)
    caps the factor width (None: min(m, k), which keeps every θ reachable)."""

    kind = "lowrank"

    def __init__(self, rows: int, cols: int, rank: int | None = None):
        full = min(rows, cols)
        r = full if rank is None else int(rank)
        if rows < 1 or cols < 1 or not 1 <= r <= full:
            raise InputError(f"LowRank: need rows, cols ≥ 1 and 1 ≤ rank ≤ {full}, got {rows}×{cols}, rank {rank}")
        self.rows, self.cols, self.r, self.n = rows, cols, r, rows * cols

    def latent_shapes(self):
        return {"A": (self.rows, self.r), "B": (self.cols, self.r)}

    def penalised(self):
        return ("A", "B")

    def pairs(self):
        return [("A", "B", "column")]

    def transform(self, z):
        return (z["A"] @ z["B"].T).reshape(-1)

    def init(self, theta, generator=None, spread=0.0):
        """A = U_r √S_r, B = V_r √S_r from the SVD (the best rank-r approximation when rank < rank Θ)."""
        self.check_theta(theta)
        U, S, Vh = torch.linalg.svd(theta.reshape(self.rows, self.cols), full_matrices=False)
        root = S[: self.r].sqrt()
        return {"A": U[:, : self.r] * root, "B": Vh[: self.r].T * root}

    def induced(self, theta):
        return 2 * self.constrained(theta).sum()

    def constrained(self, theta):
        return torch.linalg.svdvals(theta.reshape(self.rows, self.cols))

    def snap(self, theta, tol):
        U, S, Vh = torch.linalg.svd(theta.reshape(self.rows, self.cols), full_matrices=False)
        return ((U * torch.where(S < tol, torch.zeros_like(S), S)) @ Vh).reshape(-1)

    def describe(self):
        return {**super().describe(), "shape": [self.rows, self.cols], "rank": self.r}


def constraint_from_projection(P: torch.Tensor, form: str = "aware", atol: float = 1e-8) -> Constraint:
    """``Sparse`` for a 0/1 diagonal P, else ``Basis`` with O from eigh(P); P must be an orthogonal projection."""
    P = torch.as_tensor(P, dtype=torch.float64)
    if P.dim() != 2 or P.shape[0] != P.shape[1]:
        raise InputError(f"P must be a square matrix, got shape {tuple(P.shape)}")
    asym = float((P - P.T).abs().max())
    idem = float((P @ P - P).abs().max())
    if asym > atol or idem > atol:
        raise InputError(f"P is not an orthogonal projection (max |P − Pᵀ| = {asym:.1e}, max |P² − P| = {idem:.1e})")
    if float(P.abs().max()) <= atol:
        raise InputError("P = 0 constrains nothing")
    diag = torch.diagonal(P)
    if float((P - torch.diag(diag)).abs().max()) <= atol and bool(((diag - diag.round()).abs() <= atol).all()):
        return Sparse(P.shape[0], diag.round().bool())
    evals, evecs = torch.linalg.eigh(P)
    return Basis(evecs[:, evals > 0.5], form=form, atol=max(atol, 1e-10))
