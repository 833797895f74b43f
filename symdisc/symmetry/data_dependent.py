"""The two data-dependent GL_h actions used by teleportation (teleport.md §1.4.3).

MLP layers Z_j = W_j H_{j−1} + b_j 1ᵀ, H_j = σ(Z_j) in column convention (samples are columns;
θ stores W_j as (h_j, h_{j−1})).  For g ∈ GL_{h_j}, g = exp(Σ c_ab E_ab):

* ``pinv`` (action 2, D eq. 4.16):  W_j ↦ g W_j, b_j ↦ g b_j, W_{j+1} ↦ W_{j+1} σ(Z_j) σ(g Z_j)^+.
  Keeps the batch outputs exactly iff σ(g Z_j) has full column rank, i.e. batch ≤ h_j.
* ``sigma_inverse`` (action 1, D eq. 4.13):  W_j ↦ (σ^{-1}(g σ(Z_j)) − b_j 1ᵀ) H_{j−1}^+,
  W_{j+1} ↦ W_{j+1} g^{-1}.  Needs σ bijective on ℝ (linear, LeakyReLU); keeps the outputs iff
  H_{j−1} has full column rank (batch ≤ h_{j−1}); satisfies the group axioms only when H_{j−1}
  is square and invertible (batch = h_{j−1}).

Both preserve the outputs on the batch X they were built with, not on other inputs.

As printed, neither is the identity at g = I when the batch is smaller than the width: e.g.
action 2 gives W_{j+1} ↦ W_{j+1} P with P = σ(Z)σ(Z)^+ a projection.  Then a(I, θ) ≠ θ and the
fields D_g a|_{I,θ} are tangents at another point, not orthogonal to ∇L(θ).  With
``complement=True`` (default) the part of the weight outside the batch's span is kept:

* pinv:           W_{j+1} ↦ W_{j+1} σ(Z)σ(gZ)^+ + W_{j+1}(I − σ(gZ)σ(gZ)^+)
* sigma_inverse:  W_j ↦ (σ^{-1}(gσ(Z)) − b 1ᵀ) H^+ + W_j (I − H H^+)

which keeps the same outputs on X and satisfies a(I, θ) = θ; the σ-inverse form is then a group
action whenever H_{j−1} has full column rank.  ``complement=False`` is the papers' literal form
(docs/decisions.md).

Conditioning (issue 16).  Both forms go through a pseudo-inverse (of σ(gZ), of σ(Z) for the pinv fields, of H
for the σ-inverse form), and "keeps the outputs" holds in exact arithmetic only: the rounding of that matrix comes
back multiplied by its condition number κ (of the part ``torch.linalg.pinv`` inverts).  Near-duplicate samples,
inputs of tiny scale, saturated activations or a group element that nearly collapses σ(gZ) make κ huge, and the
action then changes the loss (measured: 1e-5 to 4e1 relative at κ ≈ 1e13).  So every pseudo-inverse is checked
from its singular values: κ > ``pinv_condition_limit`` (ε^(−1/2)) raises ``NumericalError`` with what to change (a
smaller group element, or a better batch when σ(Z) itself is ill-conditioned); a teleport refuses such a step (θ
and the optimizer state unchanged), and fails the teleport when the fields at θ are affected (``linearize``).  A
singular value below the pseudo-inverse's own cut, max(h, B)·ε·σ_max, is an exact rank deficiency, not amplified
rounding, and is not an error: exact duplicate samples (the action stays exact), or σ(gZ) losing rank as a ReLU
column dies or tanh saturates under g (then inexact, as ``exactness`` at the moved point reports, and the loss
guard corrects or refuses the step).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal

import torch
from torch.func import jvp, vjp

from symdisc.errors import InputError, NumericalError
from symdisc.layout import ParamLayout
from symdisc.linalg import expm, numerical_rank
from symdisc.symmetry.base import Symmetry, TangentMap
from symdisc.symmetry.hidden import algebra_basis

Form = Literal["pinv", "sigma_inverse"]

PINV_PRECISION_LOST = 0.5
"""The share of the working precision's digits a pseudo-inverse may cost: κ ≤ ε^(−PINV_PRECISION_LOST).  The action
reproduces the next layer's input on the batch through the pseudo-inverse, so its relative error is about ε·κ;
the limit keeps at least half the digits (error ≤ √ε: 1.5e-8 in float64, below the loss guard's default 1e-6, and
3.5e-4 in float32).  κ beyond ε^(−1/2) is the customary boundary of numerical rank deficiency (past it a least-
squares problem squared in the normal equations has no digit left).  Not tuned to data: generic batches no wider
than the layer measure κ ≈ 10–1e2 at group elements up to ‖c‖ ≈ 20 (zoo MLPs, float64; a square batch after
large steps up to 1e5), the faults κ ≈ 1e10–1e14."""


def pinv_condition_limit(dtype: torch.dtype) -> float:
    """The largest condition number a data-dependent action's pseudo-inverse may have in ``dtype`` (6.7e7 in
    float64, 2.9e3 in float32; ``PINV_PRECISION_LOST``)."""
    return torch.finfo(dtype).eps ** -PINV_PRECISION_LOST


def pinv_conditioning(A: torch.Tensor) -> tuple[float, int]:
    """(κ, rank) of the part of A that ``torch.linalg.pinv`` inverts: singular values above its default cut
    max(m, n)·ε·σ_max; κ = inf for a non-finite A, 1 for A = 0."""
    A = A.detach()
    if not torch.isfinite(A).all():
        return math.inf, 0
    s = torch.linalg.svdvals(A)
    s_max = float(s[0]) if s.numel() else 0.0
    if not s_max > 0:
        return 1.0, 0
    kept = s[s > max(A.shape) * torch.finfo(A.dtype).eps * s_max]
    return s_max / float(kept[-1]), int(kept.numel())


class DataDependentGL(Symmetry):
    """GL_{h_j} acting on (W_j, b_j, W_{j+1}) through the batch X (``form`` selects the action)."""

    data_dependent = True

    def __init__(
        self,
        layout: ParamLayout,
        layer_input: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
        w_in: str,
        w_out: str,
        sigma: Callable[[torch.Tensor], torch.Tensor],
        b_in: str | None = None,
        sigma_inv: Callable[[torch.Tensor], torch.Tensor] | None = None,
        form: Form = "pinv",
        complement: bool = True,
        sigma_prime: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ):
        super().__init__(layout)
        if form == "sigma_inverse" and sigma_inv is None:
            raise InputError("the σ-inverse action needs an activation that is a bijection of ℝ")
        if form not in ("pinv", "sigma_inverse"):
            raise InputError(f"unknown data-dependent action form {form!r}")
        self.layer_input, self.w_in, self.w_out, self.b_in = layer_input, w_in, w_out, b_in
        self.sigma, self.sigma_inv, self.form, self.complement = sigma, sigma_inv, form, complement
        self.sigma_prime = sigma_prime  # σ' in closed form, optional (else a jvp of σ)
        self.hidden = layout.shape(w_in)[0]
        self.num_generators = self.hidden**2
        self.name = f"data-dependent-GL[{form}{'' if complement else ',literal'}]({w_out},{w_in})"

    def generators(self, dtype=torch.float64, device="cpu"):
        return algebra_basis("gl", self.hidden, dtype, device)

    def _pre_activation(self, params, H):
        Z = params[self.w_in] @ H
        return Z if self.b_in is None else Z + params[self.b_in][:, None]

    closed_form_field = True  # field()/pullback() in closed form (False: through expm; benchmarks compare both)

    def act(self, coeffs, theta, X=None):
        return self._act(coeffs, theta, X, first_order=False)

    def field(self, coeffs, theta, X=None):
        """ξ_h(θ) = d/dt a_X(exp(th), θ)|₀.  The action depends on c only through g and g⁻¹, and d/dt exp(tM)|₀ =
        d/dt (I + tM)|₀ = M, so the jvp runs through g = I + M, g⁻¹ = I − M: the same field without the jvp of
        ``expm`` (41 % of a teleport's time on E3, benchmarks/README.md).  The complemented pinv action has an
        explicit field (``linearize``) and needs no jvp at all."""
        if not self.closed_form_field:
            return super().field(coeffs, theta, X)
        if self._explicit:
            return self.linearize(theta, X).field(coeffs)
        self._check(theta, X)
        zero = torch.zeros_like(coeffs)
        return jvp(lambda c: self._act(c, theta, X, first_order=True), (zero,), (coeffs,))[1]

    def pullback(self, v, theta, X=None):
        """Ξ(θ)ᵀ v: explicit for the complemented pinv action (``linearize``), else one vjp through g = I + M at 0."""
        if not self.closed_form_field:
            return super().pullback(v, theta, X)
        if self._explicit:
            return self.linearize(theta, X).pullback(v)
        self._check(theta, X)
        _, back = vjp(lambda c: self._act(c, theta, X, first_order=True), theta.new_zeros(self.num_generators))
        return back(v.to(theta))[0]

    @property
    def _explicit(self) -> bool:
        return self.closed_form_field and self.form == "pinv" and self.complement

    def linearize(self, theta, X=None) -> TangentMap:
        """The complemented pinv action in closed form.  With S = σ(Z), S_t = σ((I + tM)Z), the action
        W' = W S S_t⁺ + W(I − S_t S_t⁺) has dW'/dt|₀ = W S Ṗ − W(Ṡ S⁺ + S Ṗ) = −W Ṡ S⁺ (Ṗ = dS_t⁺/dt cancels),
        Ṡ = σ'(Z) ⊙ (MZ); d(gW_in)/dt = M W_in, d(g b)/dt = M b.  The adjoint, ∂/∂M ⟨v, ξ_M⟩, is
        V_in W_inᵀ + V_b bᵀ − (σ'(Z) ⊙ W_outᵀ V_out S⁺ᵀ) Zᵀ, flattened row-major like the gl basis E_ab.
        Z, σ'(Z) and S⁺ are computed once for both."""
        if not self._explicit:
            return super().linearize(theta, X)
        self._check(theta, X)
        params = self.layout.unflatten(theta)
        Z = self._pre_activation(params, self.layer_input(theta, X).transpose(0, 1))
        if self.sigma_prime is not None:
            S, dS = self.sigma(Z), self.sigma_prime(Z)
        else:
            S, dS = jvp(self.sigma, (Z,), (torch.ones_like(Z),))  # σ pointwise: the tangent 1 gives σ'(Z)
        S_pinv = self._pinv(S, "σ(Z)", "the fields through its pseudo-inverse would amplify rounding")
        W_in, W_out = params[self.w_in], params[self.w_out]
        b = params[self.b_in] if self.b_in is not None else None

        def field(coeffs):
            M = coeffs.to(theta).reshape(self.hidden, self.hidden)
            out = {n: torch.zeros_like(t) for n, t in params.items()}
            out[self.w_in] = M @ W_in
            if b is not None:
                out[self.b_in] = M @ b
            out[self.w_out] = -W_out @ (dS * (M @ Z)) @ S_pinv
            return self.layout.flatten(out)

        def pullback(v):
            V = self.layout.unflatten(v.to(theta))
            G = V[self.w_in] @ W_in.T - (dS * (W_out.T @ V[self.w_out] @ S_pinv.T)) @ Z.T
            return (G if b is None else G + torch.outer(V[self.b_in], b)).reshape(-1)

        return TangentMap(field, pullback)

    def _act(self, coeffs, theta, X, first_order: bool):
        self._check(theta, X)
        coeffs = coeffs.to(dtype=theta.dtype, device=theta.device)
        M = coeffs.reshape(self.hidden, self.hidden)  # Σ_ab c_ab E_ab: the gl basis is row-major E_ab
        eye = torch.eye(self.hidden, dtype=M.dtype, device=M.device)
        g = eye + M if first_order else expm(M)
        params = dict(self.layout.unflatten(theta))
        H = self.layer_input(theta, X).transpose(0, 1)  # (h_{j-1}, B)
        Z = self._pre_activation(params, H)
        if self.form == "pinv":
            params[self.w_in] = g @ params[self.w_in]
            if self.b_in is not None:
                params[self.b_in] = g @ params[self.b_in]
            S_g, S = self.sigma(g @ Z), self.sigma(Z)
            S_g_pinv = self._pinv(S_g, "σ(gZ)", "its pseudo-inverse would amplify rounding", before=S)
            W = params[self.w_out]
            params[self.w_out] = W @ S @ S_g_pinv + (W - W @ S_g @ S_g_pinv if self.complement else 0)
        else:
            target = self.sigma_inv(g @ self.sigma(Z))
            if self.b_in is not None:
                target = target - params[self.b_in][:, None]
            H_pinv = self._pinv(H, "the layer input H", "its pseudo-inverse would amplify rounding", "layer input")
            W = params[self.w_in]
            params[self.w_in] = target @ H_pinv + (W - W @ H @ H_pinv if self.complement else 0)
            params[self.w_out] = params[self.w_out] @ (eye - M if first_order else expm(-M))
        return self.layout.flatten(params)

    def _pinv(self, A, what: str, harm: str, layer: str = "layer", before: torch.Tensor | None = None):
        """``torch.linalg.pinv(A)``, checked (``_check_conditioning``); its SVD failing on a non-finite A is reported
        the same way."""
        try:
            A_pinv = torch.linalg.pinv(A)
        except torch.linalg.LinAlgError:
            A_pinv = torch.full_like(A.detach().T, math.nan)  # the check reports A as not finite
        self._check_conditioning(A, A_pinv, what, harm, layer, before)
        return A_pinv

    def _check_conditioning(self, A, A_pinv, what: str, harm: str, layer: str = "layer",
                            before: torch.Tensor | None = None) -> None:
        """Raise ``NumericalError`` when the pseudo-inverse ``A_pinv`` of A (``what`` on the batch) cannot be trusted:
        κ above ``pinv_condition_limit`` or A not finite.  First the bound κ ≤ ‖A‖_F‖A⁺‖_F ≤ rank·κ from what is at
        hand (two norms: the usual case ends here); only past the limit the singular values decide.  With ``before``
        = σ(Z) (A = σ(gZ)) the message says whether the batch (σ(Z) itself ill-conditioned) or g is to change."""
        limit = pinv_condition_limit(A.dtype)
        try:
            bound = float(torch.linalg.matrix_norm(A.detach()) * torch.linalg.matrix_norm(A_pinv.detach()))
        except RuntimeError:  # under vmap (Symmetry.orbit) one element's values cannot steer Python: unchecked
            return
        if bound <= limit:
            return
        cond, rank = pinv_conditioning(A)
        if cond <= limit:
            return
        batch, width = A.shape[1], A.shape[0]
        step = "use a smaller group element (a smaller teleport step or step cap)"
        if not math.isfinite(cond):
            raise NumericalError(f"{self.name}: {what} on the batch is not finite" + (
                f" (the group element overflows); {step}" if before is not None else
                "; check the parameters and the batch for NaN or inf"))
        data = (f"use a batch of distinct samples (no near-duplicates) of ordinary scale, no wider than the {layer} "
                f"({width})" + ("" if A.dtype == torch.float64 else ", or float64"))
        if before is not None and pinv_conditioning(before)[0] <= limit:
            data = step  # σ(Z) is fine: g made it ill-conditioned
        raise NumericalError(f"{self.name}: {what} on the batch has condition number {cond:.1e} > {limit:.1e} "
                             f"({str(A.dtype).removeprefix('torch.')}, rank {rank} of {min(batch, width)}): {harm} "
                             f"and the action would not keep the loss; {data}")

    def exactness(self, theta: torch.Tensor, X: torch.Tensor) -> dict:
        """Whether the action keeps the outputs on X exactly (``exact``), is the identity at g = I
        (``identity``) and satisfies the group axioms (``group_axioms``), with the reason."""
        batch = X.shape[0]
        H = self.layer_input(theta, X).transpose(0, 1)
        if self.form == "pinv":
            S = self.sigma(self._pre_activation(self.layout.unflatten(theta), H))
            rank, width, what = numerical_rank(S), self.hidden, "σ(Z)"
            square = rank == batch == width
            identity, axioms = (rank == batch) and (self.complement or square), square
        else:
            rank, width, what = numerical_rank(H), H.shape[0], "the layer input"
            square = rank == batch == width
            identity = axioms = (rank == batch) and (self.complement or square)
        return {
            "exact": rank == batch,
            "identity": identity,
            "group_axioms": axioms,
            "condition": f"{what} has rank {rank} for batch {batch} (exact iff batch ≤ width {width} at full rank)",
        }

    def describe(self) -> dict:
        return {**super().describe(), "group": "gl", "hidden_dim": self.hidden, "form": self.form,
                "complement": self.complement,
                "acts_on": sorted({self.w_in, self.w_out} | ({self.b_in} if self.b_in else set())),
                "source": "teleport.md §1.4.3 (D eq. 4.13 / 4.16)"}
