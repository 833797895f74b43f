"""NAIVE REFERENCE (benchmark baseline only; not part of symdisc, not a test).

The discovery objective of ``symdisc.discovery.objective.objective`` written the way a paper
script would write it: Python ``for`` loops over the draws and over the samples inside a draw,
per-sample gradients with ``torch.autograd.grad``, one ``torch.autograd.functional.jvp``
(double-backward trick) per generator field, and no ``torch.func`` (no vmap, no forward-mode
duals).  Within one sample or one draw it uses ordinary tensor operations (J_i @ Ξ over the
k generators, the k×k Gram matrix): the baseline is naive in its loops, not deliberately slow.
``benchmarks/discovery_speed.py`` checks once that it agrees with symdisc's objective term by term
(float64) and then times training steps of both.

It is an independent re-implementation of the same mathematics (it shares only the *parameter
tensors* of symdisc's ``LearnedSymmetry`` so that both optimise the same model):

* generators h_k: free — the columns of the Stiefel matrix H reshaped to p×p; low rank — h_k = U_k V_kᵀ /
  ‖U_k V_kᵀ‖_F, used only through matrix-vector products h_k v = U_k (V_kᵀ v) / ‖U_k V_kᵀ‖_F (a p×p matrix
  never exists: at p ≈ 10⁴ it could not);
* group elements g = exp(M_n)···exp(M_1), M_i = Σ_k c_ik h_k: free — p×p matrices from
  ``torch.linalg.matrix_exp``; low rank — only their action gθ, each exp(M_i) v by its Taylor series
  Σ_j M_iʲ v / j! of matrix-vector products (M v = Σ_k c_ik h_k v, one generator at a time), summed in a
  Python loop until a term no longer changes the sum;
* the action a_X(g, θ) = θ + s·(gθ − θ) + N(enc, θ, vec X) − N(0, θ, vec X) (``identity="hard"``;
  "residual" and "free" as in symdisc's ActionNet), N the action MLP evaluated layer by layer
  from the shared ``nn.Linear`` weights, enc = gθ − θ ("orbit") or vec(g − I) ("matrix");
* fields ξ_M(θ) = D_g a_X|_{I,θ}(M):
  - ``fields="direct"`` (default): the derivative of a with respect to its group-element inputs
    (enc, lin) at (0, 0) in the direction (enc_M, Mθ) — the same identity symdisc uses, so the
    timing compares loops + double-backward against batching, not two different formulas;
  - ``fields="exp"``: d/dt a_X(exp(tM), θ) at t = 0, differentiating through ``matrix_exp`` (what
    a script following the paper literally would do; slower; free generators only);
* low-rank generators are covered with the orbit encoding and ``fields="direct"`` only (the matrix
  encoding vec(g − I) and ``matrix_exp`` need p×p matrices); the bracket field's direction is
  [h_a, h_b]θ = h_a(h_b θ) − h_b(h_a θ) and ξ_{h_a+h_b}'s is h_a θ + h_b θ;
* the terms of draw_terms/objective: pooled (or per-draw) scale-free invariance
  E[(Ĵ_i·ξ_k)²]/E[‖ξ_k‖²] averaged over k and entered as log(1e-10 + inv) − log(1e-10), identity,
  assoc (ξ_{h_a+h_b} computed as its own field), reg_id, independence (log-barrier on the
  eigenvalues of the Gram matrix of the normalised fields), composition, bracket (D_θξ_b·ξ_a −
  D_θξ_a·ξ_b by nested jvps), orth (loop over pairs; low rank: ⟨U_iV_iᵀ, U_jV_jᵀ⟩_F = Σ (U_iᵀU_j) ∘ (V_iᵀV_j)),
  sparse (Σ|H|; low rank: Σ|U| + Σ|V|, as symdisc defines it).

Per-sample gradients ∇_θ ℓ_i are taken with ``create_graph=False`` by default: J depends on the
sampled θ and data only, not on any trained parameter, so nothing ever differentiates through it;
``create_graph_J=True`` keeps their graph (as a script that writes create_graph=True everywhere
would), which only adds work to the backward pass (into the sampled θ).

Two exact shortcuts of symdisc's objective are mirrored, so that the ratio measures batching and not
skipped work: with ``identity="hard"`` the identity and assoc terms are 0 by construction; while the
action is frozen at its linear start (the warm-up) composition and bracket vanish identically.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.autograd.functional import jvp

# The same constants as symdisc.discovery.objective (written out: this file does not import them).
EPS = 1e-12
INDEPENDENCE_FLOOR = 1e-6
LOG_FLOOR = 1e-10
TERMS = ("invariance", "identity", "assoc", "reg_id", "orth", "sparse", "independence", "composition", "bracket")


def draw_extras(k: int, S: int, w, gen: torch.Generator, like: torch.Tensor):
    """c1, c2 (S, k) and the generator pair, consuming ``gen`` exactly as symdisc's objective does."""
    scale = w.composition_t / max(k, 1) ** 0.5
    c1 = scale * torch.randn(S, k, generator=gen, dtype=torch.float64).to(like)
    c2 = scale * torch.randn(S, k, generator=gen, dtype=torch.float64).to(like)
    pair = tuple(torch.randperm(k, generator=gen)[:2].tolist()) if k >= 2 else (0, 0)
    return c1, c2, pair


class LoopObjective:
    """The objective with Python loops; ``sym`` supplies the parameter tensors only."""

    def __init__(self, sym, arch, w, fields: str = "direct", create_graph_J: bool = False):
        gens, action = sym.gens, sym.action
        if gens.kind not in ("free", "lowrank"):
            raise NotImplementedError(f"the loop reference covers free and lowrank generators, not {gens.kind!r}")
        if w.level != "loss":
            raise NotImplementedError("the loop reference covers the loss level only")
        if fields not in ("direct", "exp"):
            raise ValueError(f"fields must be direct or exp, got {fields!r}")
        self.lowrank = gens.kind == "lowrank"
        if self.lowrank and action.cfg.encoding != "orbit":
            raise NotImplementedError("the loop reference covers low-rank generators with the orbit encoding only: the "
                                      "matrix encoding vec(g − I) needs p×p group elements")
        if self.lowrank and fields == "exp":
            raise NotImplementedError("fields='exp' differentiates through matrix_exp of p×p matrices (free generators "
                                      "only); use fields='direct' with low-rank generators")
        self.sym, self.arch, self.w, self.fields, self.create_graph_J = sym, arch, w, fields, create_graph_J
        self.k, self.p = gens.k, gens.p
        self.cfg = action.cfg
        self.linears = [m for m in action.body if isinstance(m, nn.Linear)]
        self.head = action.head
        self.frozen_linear = False  # set per call in __call__

    # ---- generators, group elements, action ------------------------------------------------------
    def matrices(self) -> torch.Tensor:
        return self.sym.gens.H.T.reshape(self.k, self.p, self.p)

    def generators(self):
        """Free: the (k, p, p) matrices.  Low rank: k functions v ↦ h_k v = U_k (V_kᵀ v) / ‖U_k V_kᵀ‖_F."""
        if not self.lowrank:
            return self.matrices()
        U, V = self.sym.gens.U, self.sym.gens.V
        h = []
        for j in range(self.k):
            norm = ((U[j].T @ U[j]) * (V[j].T @ V[j])).sum().sqrt()  # ‖U_j V_jᵀ‖_F without the p×p product
            h.append(lambda v, u=U[j], w=V[j], n=norm: u @ (w.T @ v) / n)
        return h

    def _plus(self, ha, hb):
        """h_a + h_b (a matrix, or for low rank the function v ↦ h_a v + h_b v)."""
        return (lambda v: ha(v) + hb(v)) if self.lowrank else ha + hb

    def _bracket(self, ha, hb):
        """[h_a, h_b] = h_a h_b − h_b h_a (for low rank the function v ↦ h_a(h_b v) − h_b(h_a v))."""
        return (lambda v: ha(hb(v)) - hb(ha(v))) if self.lowrank else ha @ hb - hb @ ha

    def _exp_apply(self, c, v, h):
        """exp(M) v for M = Σ_j c_j h_j (low rank), by the Taylor series Σ_n Mⁿ v / n! of matrix-vector products,
        summed until a term is below the dtype's unit roundoff relative to the sum."""
        eps = torch.finfo(v.dtype).eps / 2
        total, term = v, v
        for n in range(1, 1000):
            term = sum(c[j] * h[j](term) for j in range(self.k)) / n
            total = total + term
            if float(term.detach().norm()) <= eps * float(total.detach().norm()):
                return total
        raise RuntimeError("the Taylor series of exp(M) v did not converge in 1000 terms")

    def _mlp(self, enc, theta, xflat):
        z = torch.cat([enc, theta, xflat] if self.cfg.use_data else [enc, theta])
        for lin in self.linears:
            z = z @ lin.weight.T + lin.bias
            z = z * torch.sigmoid(z) if self.cfg.activation == "silu" else torch.tanh(z)
        return z @ self.head.weight.T + self.head.bias

    def _act_enc(self, enc, lin, theta, xflat):
        """a from the encoding and the linear displacement gθ − θ (ActionNet.forward's three modes)."""
        if self.cfg.identity == "free":
            return self._mlp(enc, theta, xflat)
        out = theta + (lin if self.cfg.linear_skip else 0.0) + self._mlp(enc, theta, xflat)
        if self.cfg.identity == "hard":
            out = out - self._mlp(torch.zeros_like(enc), theta, xflat)
        return out

    def _act_group(self, g, theta, xflat):
        """a_X(g, θ) for a p×p group element g."""
        lin = g @ theta - theta
        enc = lin if self.cfg.encoding == "orbit" else (g - torch.eye(self.p, dtype=g.dtype)).reshape(-1)
        return self._act_enc(enc, lin, theta, xflat)

    def act(self, rows, theta, xflat, h):
        """a_X(exp(M_n)···exp(M_1), θ) for coefficient rows (n, k)."""
        if self.lowrank:  # orbit encoding: only gθ is needed, one exp(M_i) at a time
            moved = theta
            for c in rows:
                moved = self._exp_apply(c, moved, h)
            lin = moved - theta
            return self._act_enc(lin, lin, theta, xflat)
        g = torch.eye(self.p, dtype=theta.dtype)
        for c in rows:
            M = sum(c[j] * h[j] for j in range(self.k))
            g = torch.linalg.matrix_exp(M) @ g
        return self._act_group(g, theta, xflat)

    def field(self, M, theta, xflat):
        """ξ_M(θ) = D_g a_X|_{I,θ}(M), one double-backward jvp; M a p×p matrix or (low rank) the function v ↦ Mv."""
        if self.fields == "exp":
            t0 = torch.zeros((), dtype=theta.dtype)
            one = torch.ones((), dtype=theta.dtype)
            return jvp(lambda t: self._act_group(torch.linalg.matrix_exp(t * M), theta, xflat), (t0,), (one,),
                       create_graph=True)[1]
        u = M(theta) if self.lowrank else M @ theta
        enc_dot = u if self.cfg.encoding == "orbit" else M.reshape(-1)
        enc0 = torch.zeros_like(enc_dot)
        return jvp(lambda e, lin: self._act_enc(e, lin, theta, xflat), (enc0, torch.zeros_like(theta)),
                   (enc_dot, u), create_graph=True)[1]

    # ---- one draw ----------------------------------------------------------------------------------
    def draw_terms(self, theta, X, Y, c1, c2, pair, h):
        w, k, arch = self.w, self.k, self.arch
        th = theta.detach().requires_grad_(True)  # a leaf, for D_θ (assoc, bracket)
        xflat = X.reshape(-1)
        xis = [self.field(h[j], th, xflat) for j in range(k)]  # one generator at a time
        Xi = torch.stack(xis, dim=1)  # (p, k)
        norms = Xi.norm(dim=0)
        out = {}

        # invariance: per-sample gradients, one sample at a time
        thJ = theta.detach().requires_grad_(True)
        num = torch.zeros(k, dtype=theta.dtype)
        abs_sum = torch.zeros((), dtype=theta.dtype)
        B = X.shape[0]
        for i in range(B):
            loss_i = arch.loss(arch.forward(thJ, X[i:i + 1]), Y[i:i + 1])[0]
            (J_i,) = torch.autograd.grad(loss_i, thJ, create_graph=self.create_graph_J)
            r = J_i @ Xi  # (k,): J_i·ξ_k
            num = num + r.pow(2) / (J_i.pow(2).sum() + EPS)
            abs_sum = abs_sum + r.abs().sum()
        if w.scale_free:
            out["_num"], out["_den"] = num / B, norms.pow(2)
        else:
            out["invariance"] = abs_sum / (B * k)

        a, b = pair
        if self.cfg.identity == "hard":  # the same exact shortcut as symdisc: a(I, ·) = id by construction
            out["identity"] = out["assoc"] = torch.zeros((), dtype=theta.dtype)
        else:
            zero_row = torch.zeros(1, k, dtype=theta.dtype)
            out["identity"] = (self.act(zero_row, th, xflat, h) - th).norm()
            d_theta = jvp(lambda t: self.act(zero_row, t, xflat, h), (th,), (xis[a],), create_graph=True)[1]
            xi_ab = self.field(self._plus(h[a], h[b]), th, xflat)
            out["assoc"] = (d_theta + xis[b] - xi_ab).norm()

        out["reg_id"] = (w.beta - norms).abs().mean()

        if k >= 2:
            Xn = Xi / (norms + EPS)
            lam = torch.linalg.eigvalsh(Xn.T @ Xn).clamp_min(EPS)
            out["independence"] = torch.nn.functional.softplus(math.log(INDEPENDENCE_FLOOR) - lam.log()).sum()
        else:
            out["independence"] = torch.zeros((), dtype=theta.dtype)

        if w.composition and not self.frozen_linear:
            rhs = self.act(torch.stack([c1, c2]), th, xflat, h)
            lhs = self.act(c2[None], self.act(c1[None], th, xflat, h), xflat, h)
            out["composition"] = (lhs - rhs).pow(2).sum() / ((rhs - th).pow(2).sum() + EPS)
        else:
            out["composition"] = torch.zeros((), dtype=theta.dtype)

        if w.bracket and k >= 2 and not self.frozen_linear:
            d_b = jvp(lambda t: self.field(h[b], t, xflat), (th,), (xis[a],), create_graph=True)[1]
            d_a = jvp(lambda t: self.field(h[a], t, xflat), (th,), (xis[b],), create_graph=True)[1]
            lie = d_b - d_a
            xi_m = self.field(self._bracket(h[a], h[b]), th, xflat)
            scale = norms[a] * norms[b] / th.norm()
            out["bracket"] = (lie + xi_m).norm() / (lie.norm() + xi_m.norm() + scale + EPS)
        else:
            out["bracket"] = torch.zeros((), dtype=theta.dtype)
        return out

    # ---- the objective -------------------------------------------------------------------------------
    def __call__(self, theta, X, Y, c1, c2, pair, pooled: bool = True):
        """(total, terms) for the S draws, with symdisc's definitions and weights."""
        w, k, S = self.w, self.k, theta.shape[0]
        h = self.generators()
        # the same exact shortcut as symdisc: a frozen linear action (the warm-up) has composition = bracket = 0
        head_zero = not (self.head.weight.any() or self.head.bias.any())
        self.frozen_linear = (self.cfg.identity != "free" and self.cfg.linear_skip and head_zero
                              and not any(t.requires_grad for t in self.sym.action.parameters()))
        per_draw = [self.draw_terms(theta[s], X[s], Y[s], c1[s], c2[s], pair, h) for s in range(S)]
        terms = {}
        if w.scale_free:
            nums = torch.stack([d["_num"] for d in per_draw])  # (S, k)
            dens = torch.stack([d["_den"] for d in per_draw])
            ratio = nums.mean(0) / (dens.mean(0) + EPS) if pooled else (nums / (dens + EPS)).mean(0)
            terms["invariance"] = ratio.mean()  # mean over the k generators, as symdisc does
        else:
            terms["invariance"] = sum(d["invariance"] for d in per_draw) / S
        for name in ("identity", "assoc", "reg_id", "independence", "composition", "bracket"):
            terms[name] = sum(d[name] for d in per_draw) / S
        if self.lowrank:
            U, V = self.sym.gens.U, self.sym.gens.V
            inner = lambda i, j: ((U[i].T @ U[j]) * (V[i].T @ V[j])).sum()  # noqa: E731  ⟨U_iV_iᵀ, U_jV_jᵀ⟩_F
            orth = torch.zeros((), dtype=U.dtype)
            for i in range(k):
                for j in range(i + 1, k):
                    orth = orth + (inner(i, j) / (inner(i, i) * inner(j, j)).sqrt()).abs()
            terms["orth"] = orth.to(theta)
            terms["sparse"] = (U.abs().sum() + V.abs().sum()).to(theta)
        else:
            H = self.sym.gens.H
            if k >= 2:
                cols = [H[:, j] for j in range(k)]
                orth = torch.zeros((), dtype=H.dtype)
                for i in range(k):
                    for j in range(i + 1, k):
                        orth = orth + (cols[i] @ cols[j] / (cols[i].norm() * cols[j].norm())).abs()
                terms["orth"] = orth.to(theta)
            else:
                terms["orth"] = torch.zeros((), dtype=theta.dtype)
            terms["sparse"] = H.abs().sum().to(theta)
        total = torch.zeros((), dtype=theta.dtype)
        for name in TERMS:
            value = terms[name]
            if name == "invariance" and w.scale_free and w.log_invariance:
                value = torch.log(LOG_FLOOR + value) - math.log(LOG_FLOOR)
            total = total + getattr(w, name) * value
        return total, terms


def make_loop_trainer(arch, cfg, fields: str = "direct", create_graph_J: bool = False):
    """A symdisc Trainer whose objective is LoopObjective instead of symdisc's objective.

    Everything else — data stream, spectral initialisation, parameters, Riemannian Adam, learning-rate
    schedule, warm-up phase — is symdisc's ``Trainer``, so one step of each does the same work."""
    from symdisc.discovery.trainer import Trainer

    loops = {}

    def loop_objective(sym, arch_, w, theta, X, Y, gen, pooled=True):
        if id(sym) not in loops:
            loops[id(sym)] = LoopObjective(sym, arch_, w, fields=fields, create_graph_J=create_graph_J)
        c1, c2, pair = draw_extras(sym.num_generators, theta.shape[0], w, gen, theta)
        return loops[id(sym)](theta, X, Y, c1, c2, pair, pooled=pooled)

    return Trainer(arch, cfg, objective=loop_objective)
