"""A learned symmetry: generators + action network, exposed through the Symmetry interface.

Unconstrained (``constraint="none"``): a_X(g, θ) is the action network and ξ_h = D_g a_X|_{I,θ}(h).
Null-constrained (``constraint="output-null"``, constraint.py): the field is the network's (ambient) field
projected onto the output null space, ξ_h(θ, X) = Π(θ, X) ξ̃_h(θ, X) — nonlinear in θ and dependent on X
through Π even when ξ̃_h = hθ — and the finite action is its flow, a_X(exp(M), θ) = φ¹_{ξ_M}(θ) (RK4),
a product exp(M_n)···exp(M_1) acting as the flows in turn.  Flows of one field compose exactly
(φ^s ∘ φ^t = φ^{s+t}); for a product of different fields the group law holds as far as h ↦ ξ_h is an
anti-homomorphism, which the bracket term measures.
"""

from __future__ import annotations

import torch
from torch.func import functional_call, jvp, vmap

from symdisc.architecture import Architecture
from symdisc.discovery.action import ActionNet
from symdisc.discovery.constraint import NullConstraint
from symdisc.discovery.generators import Generators
from symdisc.errors import InputError, NumericalError
from symdisc.flow import flow, path
from symdisc.layout import ParamLayout
from symdisc.linalg import expm
from symdisc.symmetry.base import Level, Symmetry


class LearnedSymmetry(Symmetry):
    """a_X(exp(Σ c_k h_k), θ) with learned h_k (``generators``) and learned a (``action``).

    ``act`` also accepts a (n, k) matrix of coefficient rows: the product exp(M_n)···exp(M_1).
    """

    def __init__(self, layout: ParamLayout, generators: Generators, action: ActionNet, preserves: Level = "loss",
                 name: str = "learned", data_shape: list[int] | None = None, arch: Architecture | None = None):
        super().__init__(layout)
        self.data_shape = data_shape  # shape of the batch X the action takes (B, …)
        self.gens, self.action = generators, action
        self.num_generators = generators.k
        self.constraint = None
        if action.cfg.constraint == "output-null":
            if arch is None:
                raise InputError("a null-constrained learned action needs its architecture (arch=)")
            self.constraint = NullConstraint(arch)
        self.data_dependent = action.cfg.use_data or self.constraint is not None
        self.preserves, self.name = preserves, name
        self.indices = list(range(generators.k))  # which of the artefact's fields these are

    def subset(self, indices: list[int]) -> LearnedSymmetry:
        """The symmetry restricted to the generators ``indices`` (the same action network, shared)."""
        sub = LearnedSymmetry(self.layout, self.gens.subset(indices), self.action, self.preserves, self.name,
                              self.data_shape, getattr(self.constraint, "arch", None))
        sub.indices = [self.indices[i] for i in indices]
        for attr in ("card", "arch"):
            if hasattr(self, attr):
                setattr(sub, attr, getattr(self, attr))
        return sub

    def generators(self, dtype=torch.float64, device="cpu") -> torch.Tensor:
        """The learned h_k as (k, p, p) matrices."""
        return self.gens.matrices().detach().to(dtype=dtype, device=device)

    def _xflat(self, X, theta):
        return None if X is None or not self.action.data_dim else X.reshape(-1).to(theta)

    def _run_action(self, enc, lin, theta, xflat):
        """The action net in θ's dtype/device: a float32 artefact used in float64 runs on cast copies of its
        weights (functional_call), never by converting the module in place, which is unsafe inside torch.func
        transforms (teleport differentiates through ``act``)."""
        p = next(self.action.parameters())
        if (p.dtype, p.device) == (theta.dtype, theta.device):
            return self.action(enc, lin, theta, xflat)
        cast = {n: t.to(theta) for n, t in self.action.named_parameters()}
        return functional_call(self.action, cast, (enc, lin, theta, xflat))

    def encode(self, rows: torch.Tensor, theta: torch.Tensor, bound: float | None = None
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """(encoding, gθ − θ) of g = exp(M_n)···exp(M_1), rows (n, k); ``bound`` ≥ ‖row‖₂ for every row
        (optional) lets the orbit encoding use a Taylor series (Generators.exp_apply)."""
        G = self.gens
        if self.action.cfg.encoding == "matrix":
            g = torch.eye(self.layout.num_params, dtype=theta.dtype, device=theta.device)
            for c in rows:
                g = G.exp_matrix(c.to(theta)) @ g
            return self.encode_element(g, theta)
        moved = theta
        for c in rows:
            moved = G.exp_apply(c, moved, bound)
        disp = moved - theta
        return disp, disp

    def encode_element(self, g: torch.Tensor, theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(encoding, gθ − θ) of a p×p group element g: vec(g − I) (matrix encoding) or gθ − θ (orbit)."""
        lin = g @ theta - theta
        if self.action.cfg.encoding != "matrix":
            return lin, lin
        return (g - torch.eye(g.shape[0], dtype=g.dtype, device=g.device)).reshape(-1), lin

    def to(self, dtype: torch.dtype | None = None, device=None) -> LearnedSymmetry:
        """Move generators and action (in place) to ``dtype`` / ``device``."""
        for m in (self.gens, self.action):
            m.to(dtype=dtype, device=device)
        return self

    def _check(self, theta, X):
        super()._check(theta, X)
        if self.action.data_dim and X.numel() != self.action.data_dim:
            raise InputError(f"{self.name}: the learned action takes a data batch of {self.action.data_dim} "
                               f"numbers, got X of shape {tuple(X.shape)} (use the training batch size)")

    def act(self, coeffs, theta, X=None, bound: float | None = None):
        """a_X(g, θ); ``bound`` ≥ ‖row‖₂ of every coefficient row is an optional hint (a cheaper exp)."""
        self._check(theta, X)
        rows = coeffs.reshape(-1, self.num_generators) if coeffs.dim() < 2 else coeffs
        if self.constraint is not None:  # the flows of ξ_{M_1}, …, ξ_{M_n} in turn, on θ's output level set
            retract = self._retraction(theta, X)
            try:
                for c in rows.to(theta):
                    theta = flow(lambda th, c=c: self.field(c, th, X), theta, 1.0, self.action.cfg.flow_steps,
                                 retract)
            except torch.linalg.LinAlgError:  # the flow left the finite range: the field's Jacobian is not finite
                raise NumericalError(f"{self.name}: the flow of the learned field left the finite range — the group "
                                     "element is too large for this symmetry (use smaller coefficients; teleport: a "
                                     "smaller group learning rate or step cap)") from None
            return theta
        enc, lin = self.encode(rows.to(theta), theta, bound)
        return self._run_action(enc, lin, theta, self._xflat(X, theta))

    def orbit(self, coeffs, theta, ts, X=None):
        """γ(t) = a_X(exp(t h), θ) at each t in ``ts``; constrained: one RK4 trajectory of ξ_h each way from θ."""
        if self.constraint is None:
            return super().orbit(coeffs, theta, ts, X)
        self._check(theta, X)
        c = coeffs.to(theta)
        return path(lambda th: self.field(c, th, X), theta, ts.to(theta), self.action.cfg.flow_steps,
                    self._retraction(theta, X))

    def act_algebra(self, M: torch.Tensor, theta: torch.Tensor, X: torch.Tensor | None = None) -> torch.Tensor:
        """a_X(exp(M), θ) for any M ∈ gl(p) (a p×p matrix), also outside the span of the learned generators."""
        self._check(theta, X)
        M = M.to(theta)
        if self.constraint is not None:
            return flow(lambda th: self.algebra_field(M @ th, M.reshape(-1), th, X), theta, 1.0,
                        self.action.cfg.flow_steps, self._retraction(theta, X))
        enc, lin = self.encode_element(expm(M), theta)
        return self._run_action(enc, lin, theta, self._xflat(X, theta))

    def _retraction(self, theta: torch.Tensor, X):
        """θ' ↦ θ' returned to θ's output level set {f(·, X) = f(θ, X)} (``retract_steps`` Gauss–Newton steps),
        or None (plain flow)."""
        steps = self.action.cfg.retract_steps
        if not steps:
            return None
        target = self.constraint.outputs(theta, X)
        return lambda y: self.constraint.retract(y, X, target, steps)

    def exactness(self, theta, X=None) -> dict:
        """Invariance unknown (approximate); ``identity``: a(I, θ) = θ holds by construction only with the hard
        identity (the free and residual actions learn it) or for a flow (constrained)."""
        if self.constraint is not None:
            return {"exact": None, "identity": True,
                    "condition": "null-constrained learned action: every field keeps the outputs on X to first "
                                 f"order (residual ≤ √ε/2, ε = max({self.constraint.rtol:.0e}², 8·N·ε_mach)); the "
                                 "finite action is an RK4 "
                                 f"flow ({self.action.cfg.flow_steps} steps"
                                 + (f", each returned to the output level set by {self.action.cfg.retract_steps} "
                                    "Gauss–Newton steps)" if self.action.cfg.retract_steps else
                                    "), exact up to its integration error")}
        return {"exact": None, "identity": self.action.cfg.identity == "hard",
                "condition": "learned action: invariance holds only approximately (its card records the held-out "
                             "residual)"}

    def field(self, coeffs, theta, X=None):
        """ξ_h(θ) for h = Σ c_k h_k, straight from the encoding's derivative (no matrix_exp to differentiate)."""
        self._check(theta, X)
        c = coeffs.to(theta)
        M_vec = None
        if self.action.cfg.encoding == "matrix":
            M_vec = torch.einsum("k,kab->ab", c, self.gens.matrices().to(theta)).reshape(-1)
        return self.algebra_field(self.gens.apply(c, theta), M_vec, theta, X)

    @property
    def constrained(self) -> bool:
        return self.constraint is not None

    def project(self, theta, X, V):
        """Π(θ, X) V: the constraint's projection (identity when unconstrained)."""
        return V if self.constraint is None else self.constraint.project(theta, X, V)

    def tangents(self, theta, X=None, extra: tuple | None = None, project: bool = True):
        """Ξ(θ) ∈ ℝ^{p×k}: the k fields, as one vmapped jvp over the directions (h_k θ, vec h_k).

        ``extra`` = (Mθ, vec M or None): also ξ_M for one more algebra element, in the same vmap;
        returns (Ξ, ξ_M) then.  ``project=False``: the ambient fields ξ̃ before the constraint."""
        self._check(theta, X)
        eye = torch.eye(self.num_generators, dtype=theta.dtype, device=theta.device)
        M_apply = vmap(lambda e: self.gens.apply(e, theta))(eye)  # (k, p)
        M_vec = None
        if self.action.cfg.encoding == "matrix":
            M_vec = self.gens.matrices().to(theta).reshape(self.num_generators, -1)
        if extra is not None:
            M_apply = torch.cat([M_apply, extra[0][None]])
            M_vec = None if M_vec is None else torch.cat([M_vec, extra[1][None]])
        fields = vmap(lambda m, v: self._ambient_field(m, v, theta, X), in_dims=(0, None if M_vec is None else 0),
                      out_dims=1)(M_apply, M_vec)
        if project:
            fields = self.project(theta, X, fields)
        return fields if extra is None else (fields[:, :-1], fields[:, -1])

    def algebra_field(self, M_apply, M_vec, theta, X=None) -> torch.Tensor:
        """ξ_M(θ) for an algebra element given by Mθ (``M_apply``) and, in matrix mode, vec(M)."""
        return self.project(theta, X, self._ambient_field(M_apply, M_vec, theta, X))

    def _ambient_field(self, M_apply, M_vec, theta, X=None) -> torch.Tensor:
        """ξ̃_M(θ) = D_g a_X|_{I,θ}(M) of the action network (before any constraint)."""
        enc0 = torch.zeros(self.action.enc_dim, dtype=theta.dtype, device=theta.device)
        enc_dot = M_vec if self.action.cfg.encoding == "matrix" else M_apply
        xflat = self._xflat(X, theta)
        return jvp(lambda e, lin: self._run_action(e, lin, theta, xflat), (enc0, torch.zeros_like(theta)),
                   (enc_dot, M_apply))[1]
