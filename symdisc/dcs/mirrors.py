"""Mirror extraction (dcs.md §9, design 1): verified reflections R = I − 2P of θ-space from any Symmetry.

A mirror is an orthogonal projection P = O Oᵀ with L((I − 2P)θ, X) = L(θ, X) for all θ and data; it is what
makes DCS and Theorems 1–4 work (footnote 3: constraints come only from reflection surfaces).  Discovery and the
registry give *continuous* generators (F1); this module turns them, or discrete group elements, into mirrors.

Pipeline (the decisions are the numbered paragraphs; docs/decisions.md "DCS mirrors")
---------------------------------------------------------------------------------------
1. **Linearise** (F4).  Continuous symmetry: draw (θ_j, X_j) from the architecture's own samplers (float64),
   evaluate the fields Ξ(θ_j, X_j) by the interface (``tangents``; X only when ``data_dependent``) and fit
   ξ_k(θ) ≈ H_k θ for every generator at once by least squares over ``2p + 8`` draws.  H_k is accepted as
   *linear and data-independent* when (i) the in-sample relative residual, (ii) the residual on held-out
   draws (new θ, new X) and, for a data-dependent symmetry, (iii) the change of the fields at the same θ under
   a second batch X′ are all below ``linear_rtol``.  Otherwise the generator is recorded (``linearisation``
   and ``rejected``, reason "data-dependent …" when (iii) fails, else "non-linear field …") and skipped.
   The ``data_dependent`` flag alone is not a reason: a learned artefact that *reads* X but whose fields do
   not change with it (gl3-linear-3-3-1: ≤ 1e-4) is linear.  Discrete symmetry (``num_generators == 0``):
   the elementary elements are derived from ``identity_element()`` — the transpositions of the identity
   permutation, the single sign flips of the all-plus vector — else up to ``max_elements`` sampled elements;
   R_e is fitted from θ ↦ act(e, θ, X) in the same way and must pass the same three tests; its kind is
   ``permutation`` when R_e is a permutation matrix, else ``discrete`` (sign flips, signed permutations).
2. **Candidates.**  (a) rotation: for each H_k and each canonical antisymmetric element A (item 3) whose
   spectrum is imaginary, R = exp(πH/ω) when every non-zero |ω| is the same (or an integer multiple of the
   smallest: R then reflects the odd multiples); for antisymmetric A this is exactly I − 2P with P = −A²/ω²
   on the non-null part.  (b) rescaling: for each H_k and each canonical diagonal element with a real
   spectrum, R = I − 2P_S with P_S the orthogonal projector onto the span of the eigenvectors of non-zero
   eigenvalue (for a diagonal element: the coordinate mask of its support).  (c) permutation: for two
   minimal diagonal supports S_a, S_b of equal size, the swap Π that exchanges them *along one axis of every
   layout tensor* (hidden unit a ↔ b: rows of W1, columns of W2), proposed when Π maps the diagonal element of
   S_a onto ± that of S_b (Π D_a Πᵀ ≈ ±D_b); R = Π.  (d) products R_i R_j of commuting *accepted* mirrors
   that give a new P, at most ``max_products``, verified like the others.
3. **One answer for known and learned symmetries.**  A learned algebra is an arbitrary basis of an algebra
   that is only *conjugate* to the known one: on the linear 3-3-1 MLP the invariance algebra is gl(3) plus 9
   nilpotent fields (δW1[:, j] = A W2ᵀ, A antisymmetric), and the learned span lies 60–90 % outside gl(3)
   while its fields span the same tangent spaces (cos² 0.99999).  So candidates are not read off the span of
   the H_k but off the *orbit distribution* θ ↦ span{H_k θ}, which is basis- and conjugation-invariant:
   the canonical sub-algebras are 𝒟 = {D diagonal : Dθ ∈ span_k H_k θ ∀θ} and
   𝒜 = {A antisymmetric : Aθ ∈ span_k H_k θ ∀θ}, restricted to the coordinates some field moves.  Each is the
   null space of a stack over many sampled θ of w_θ (I − Π_θ) B(θ)/‖θ‖, where Π_θ projects onto the fields'
   span and B(θ) maps the element's free entries to Dθ (Aθ); draws are weighted by the fields' inverse
   condition number w_θ = σ_r/σ_1, because where a learned basis is ill-conditioned its span is unreliable
   (one direction of error ε/σ_r).  The null space is cut at the largest gap of the singular values below
   ``span_rtol``·σ_max (at least one decade).  Canonical elements: 𝒟 splits into the connected components
   of its projector (minimal supports; per-neuron masks) plus the RREF rows of components of dimension > 1;
   𝒜 gives the rows of its reduced row echelon form (E_ab − E_ba of every hidden space).  Flips and swaps
   built from supports are exact by construction; every other candidate (rotations, raw-generator and
   discrete-element candidates) is **snapped**: R is symmetrised, its eigenvalues rounded to ±1 (P =
   projector on the −1 eigenvectors), and P is rounded to a coordinate mask, or R to a signed permutation,
   when each entry is within ``snap_tol`` of it; a snapped candidate has ``exact=True`` and is verified at
   ``tol`` like a known one (``snap_distance`` records how far snapping moved P).
   A candidate that does not snap is verified at ``tol`` if the symmetry is exact, else at ``approx_tol``
   (default 10× the artefact card's held-out invariance p90, 1e-3 without a card), and keeps ``exact=False``.
   Learned and known GL(3) of the 3-3-1 linear MLP thus give identical flip masks and identical rotation
   projections (tests/test_dcs_mirrors.py).
4. **Verify.**  R = Rᵀ and R² = I (1e-8); max over ``draws`` (θ, X, Y) from the architecture's samplers of
   |L(Rθ, X) − L(θ, X)|/(1 + |L(θ, X)|) below the tolerance; Corollary 1: at θ′ = (I − P)θ,
   ‖P∇L(θ′)‖/‖∇L(θ′)‖ below the same tolerance (max over draws).  Accepted mirrors are deduplicated by P
   (1e-8); a P proposed twice keeps its first kind and lists every source.

Dense p × p matrices are used throughout (p ≤ ``MAX_DENSE_PARAMS``); the antisymmetric search has
a(a − 1)/2 unknowns for a moved coordinates and is skipped (noted in ``subalgebras``) above ``max_active``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch.func import grad, vmap

from symdisc.architecture import Architecture, make_generator
from symdisc.errors import InputError
from symdisc.linalg import expm, lstsq
from symdisc.symmetry.base import Symmetry

KINDS = ("rotation", "rescaling", "permutation", "discrete", "product")
MAX_DENSE_PARAMS = 4096
INVOLUTION_ATOL = 1e-8  # R = Rᵀ and R² = I
SAME_P_ATOL = 1e-8  # two mirrors are the same when their projections agree to this
FIELD_RANK_RTOL = 1e-8  # rank of the fields at one θ in the span tests
NILPOTENT_RTOL = 1e-4  # spectral radius ≤ this·‖H‖_F: nilpotent (a Jordan block of size s has computed λ ~ ε^{1/s})
# random streams of make_generator(seed, ·)
_FIT, _HELD, _XALT, _SPAN, _VERIFY, _ELEMENTS = range(6)


# ----------------------------------------------------------------------------------------------------------------
# results


@dataclass
class Mirror:
    """A verified reflection R = I − 2P of θ-space, P = O Oᵀ (O: p × r, orthonormal columns, float64).

    ``kind``: rotation | rescaling | permutation | discrete | product (see the module docstring, item 2);
    ``source``: the symmetry and generator(s) / element(s) that proposed it; ``blocks``: layout tensors it
    touches; ``max_loss_change``: max |L(Rθ) − L(θ)|/(1 + |L|) over the draws; ``corollary1``: max
    ‖P∇L‖/‖∇L‖ at θ with Pθ = 0; ``exact``: snapped to an exact structure (coordinate mask, signed permutation).
    """

    O: torch.Tensor  # noqa: E741 - the paper's name
    kind: str
    source: str
    blocks: list[str]
    max_loss_change: float
    corollary1: float
    exact: bool
    snap_distance: float = 0.0  # max |P − P_proposed| moved by snapping (0 for candidates built exact)

    @property
    def rank(self) -> int:
        return int(self.O.shape[1])

    @property
    def num_params(self) -> int:
        return int(self.O.shape[0])

    def projection(self) -> torch.Tensor:
        """P = O Oᵀ (dense p × p: small p and tests only)."""
        return self.O @ self.O.T

    def reflection(self) -> torch.Tensor:
        """R = I − 2P (dense)."""
        return torch.eye(self.num_params, dtype=self.O.dtype) - 2 * self.projection()

    def mask(self) -> torch.Tensor | None:
        """The bool (p,) mask when P is a coordinate mask (diagonal 0/1), else None.  A projection whose diagonal
        is 0/1 is diagonal (Σ_j P_ij² = P_ii), so the row norms of O decide."""
        d = (self.O**2).sum(1)
        if ((d - d.round()).abs() > 1e-10).any():
            return None
        return d.round().bool()

    @property
    def structure(self) -> str:
        """mask | swap (R a permutation matrix) | signed-permutation | general."""
        if self.mask() is not None:
            return "mask"
        R = self.reflection()
        Rr = R.round()
        if (R - Rr).abs().max() > 1e-10 or not _is_signed_permutation(Rr):
            return "general"
        return "swap" if bool((Rr >= 0).all()) else "signed-permutation"

    def to_dict(self) -> dict:
        m = self.mask()
        small = self.O.numel() <= 4096
        return {"kind": self.kind, "source": self.source, "blocks": list(self.blocks), "rank": self.rank,
                "structure": self.structure, "max_loss_change": self.max_loss_change,
                "corollary1": self.corollary1, "exact": self.exact, "snap_distance": self.snap_distance,
                "mask": None if m is None else torch.nonzero(m).flatten().tolist(),
                "O": self.O.tolist() if small and m is None else None}


@dataclass
class MirrorReport:
    """What ``extract_mirrors`` found: accepted mirrors, rejected candidates and skipped generators (each a dict
    with a ``reason``), the per-generator/element linearisation, and the canonical sub-algebras' cuts."""

    accepted: list[Mirror]
    rejected: list[dict]
    linearisation: list[dict]
    symmetry: str = ""
    subalgebras: dict = field(default_factory=dict)
    settings: dict = field(default_factory=dict)

    def of_kind(self, kind: str) -> list[Mirror]:
        return [m for m in self.accepted if m.kind == kind]

    def to_dict(self) -> dict:
        return {"symmetry": self.symmetry, "accepted": [m.to_dict() for m in self.accepted],
                "rejected": [dict(r) for r in self.rejected], "linearisation": [dict(r) for r in self.linearisation],
                "subalgebras": self.subalgebras, "settings": self.settings}


# ----------------------------------------------------------------------------------------------------------------
# small linear-algebra helpers


def _is_signed_permutation(R: torch.Tensor) -> bool:
    """Entries in {−1, 0, 1}, exactly one non-zero per row and per column."""
    if not bool(((R == 0) | (R.abs() == 1)).all()):
        return False
    nz = R != 0
    return bool((nz.sum(0) == 1).all() and (nz.sum(1) == 1).all())


def _basis(P: torch.Tensor) -> torch.Tensor:
    """O with P = O Oᵀ: coordinate vectors for a mask, (e_i − s e_j)/√2 per swapped pair of a signed
    permutation R = I − 2P, else the eigenvectors of eigenvalue ≈ 1."""
    p = P.shape[0]
    eye = torch.eye(p, dtype=P.dtype)
    off = P - torch.diag(P.diagonal())
    if off.abs().max() == 0 and bool(((P.diagonal() == 0) | (P.diagonal() == 1)).all()):
        return eye[:, P.diagonal() == 1]
    R = eye - 2 * P
    if _is_signed_permutation(R):
        cols = []
        for i in range(p):
            j = int(torch.nonzero(R[i]).flatten()[0])
            if j == i and R[i, i] < 0:
                cols.append(eye[:, i])
            elif j > i:
                cols.append((eye[:, i] - R[i, j] * eye[:, j]) / math.sqrt(2.0))
        return torch.stack(cols, 1) if cols else P.new_zeros(p, 0)
    evals, V = torch.linalg.eigh((P + P.T) / 2)
    return V[:, evals > 0.5]


def _snap(R: torch.Tensor, snap_tol: float) -> tuple[torch.Tensor | None, bool, str | None, float]:
    """(P, exact, None, distance moved) for a proposed involution R, or (None, False, why not, nan).  See the
    module docstring (item 3): symmetrise, round the eigenvalues to ±1, then round to a coordinate mask or a signed
    permutation; the distance is max |P − (I − R)/2|."""
    asym = float((R - R.T).abs().max())
    if asym > snap_tol:
        return None, False, f"not symmetric (max |R − Rᵀ| = {asym:.3g})", math.nan
    Rs = (R + R.T) / 2
    evals, V = torch.linalg.eigh(Rs)
    dev = float((evals.abs() - 1).abs().max())
    if dev > snap_tol:
        return None, False, f"not an involution (an eigenvalue of R is {dev:.3g} from ±1)", math.nan
    neg = V[:, evals < 0]
    P0 = (torch.eye(R.shape[0], dtype=R.dtype) - R) / 2
    if neg.shape[1] == 0:
        return None, False, "the identity (no reflected direction)", math.nan
    P = neg @ neg.T
    d = P.diagonal()
    if float((P - torch.diag(d)).abs().max()) < snap_tol and float((d - d.round()).abs().max()) < snap_tol:
        Ps = torch.diag(d.round())
        return Ps, True, None, float((Ps - P0).abs().max())
    Rr = Rs.round()
    if float((Rs - Rr).abs().max()) < snap_tol and _is_signed_permutation(Rr):
        Ps = (torch.eye(R.shape[0], dtype=R.dtype) - Rr) / 2
        return Ps, True, None, float((Ps - P0).abs().max())
    return P, False, None, float((P - P0).abs().max())


def _null_cut(sig: torch.Tensor, span_rtol: float, min_gap: float = 1.0) -> tuple[int, dict]:
    """Null dimension of a spectrum (descending σ): the cut at the largest gap of log10 σ among those whose lower
    side is below span_rtol·σ_max, if at least ``min_gap`` decades; 0 otherwise."""
    m = sig.numel()
    if m == 0:
        return 0, {"dim": 0}
    smax = float(sig[0])
    if smax == 0.0:
        return m, {"dim": m, "note": "every element passes (the fields span every moved coordinate)"}
    logs = torch.log10(sig.clamp_min(smax * 1e-13))
    best, gap = None, 0.0
    for i in range(m - 1):
        if float(sig[i + 1]) < span_rtol * smax and float(logs[i] - logs[i + 1]) > gap:
            best, gap = i, float(logs[i] - logs[i + 1])
    if best is None or gap < min_gap:
        return 0, {"dim": 0, "sigma_min_rel": float(sig[-1]) / smax}
    return m - best - 1, {"dim": m - best - 1, "gap_decades": round(gap, 3),
                          "sigma_kept_min_rel": float(sig[best]) / smax,
                          "sigma_null_max_rel": float(sig[best + 1]) / smax}


def _rref(B: torch.Tensor, tol: float) -> torch.Tensor:
    """Reduced row echelon form of the rows of B (pivots below tol·max|B| count as zero); zero rows dropped."""
    B = B.clone()
    n, m = B.shape
    scale = float(B.abs().max()) if B.numel() else 0.0
    row = 0
    for col in range(m):
        if row == n:
            break
        piv = int(B[row:, col].abs().argmax()) + row
        if float(B[piv, col].abs()) <= tol * scale:
            continue
        B[[row, piv]] = B[[piv, row]]
        B[row] = B[row] / B[row, col]
        others = torch.arange(n) != row
        B[others] -= B[others, col : col + 1] * B[row]
        row += 1
    return B[:row]


# ----------------------------------------------------------------------------------------------------------------
# step 1: linearisation


def _fit(theta: torch.Tensor, F: torch.Tensor) -> torch.Tensor:
    """Least-squares H (k, p, p) with F[j, :, k] ≈ H_k θ_j; theta (J, p), F (J, p, k)."""
    J, p, k = F.shape
    sol = lstsq(theta, F.reshape(J, p * k))  # (p_in, p_out·k)
    return sol.reshape(p, p, k).permute(2, 1, 0).contiguous()


def _rel(res: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """Per-generator ‖res‖/‖ref‖ over draws and coordinates (inf where the field is 0 but the residual is not)."""
    num, den = res.norm(dim=(0, 1)), ref.norm(dim=(0, 1))
    return torch.where(den > 0, num / den.clamp_min(1e-300), torch.where(num > 0, math.inf, 0.0))


def _svd(M: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Thin ``torch.linalg.svd`` (batched), falling back to the eigendecomposition of MᵀM = V S² Vᵀ where
    LAPACK's divide-and-conquer SVD fails to converge (it did, intermittently, on near-degenerate fields)."""
    try:
        return torch.linalg.svd(M, full_matrices=False)
    except torch.linalg.LinAlgError:
        evals, V = torch.linalg.eigh(M.mT @ M)
        evals, V = evals.flip(-1), V.flip(-1)
        s = evals.clamp_min(0).sqrt()
        U = (M @ V) / torch.where(s > 0, s, torch.ones_like(s)).unsqueeze(-2)
        return U, s, V.mT


def _spectrum_class(H: torch.Tensor, snap_tol: float) -> tuple[str, torch.Tensor | None]:
    try:
        lam = torch.linalg.eigvals(H)
    except torch.linalg.LinAlgError:  # no spectrum, no candidate (LAPACK's eig did not converge)
        return "unknown", None
    scale = float(lam.abs().max())
    if scale <= NILPOTENT_RTOL * float(H.norm()):
        return "nilpotent", lam
    if float(lam.real.abs().max()) <= snap_tol * scale:
        return "imaginary", lam
    if float(lam.imag.abs().max()) <= snap_tol * scale:
        return "real", lam
    return "complex", lam


@dataclass
class _Draws:
    theta: torch.Tensor  # (J, p)
    X: torch.Tensor  # (J, B, …)


def _fields(sym: Symmetry, theta: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
    """(J, p, k) fields; X only for a data-dependent symmetry."""
    return torch.stack([sym.tangents(t, x if sym.data_dependent else None).detach()
                        for t, x in zip(theta, X, strict=True)])


def _element_images(sym: Symmetry, e: torch.Tensor, theta: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
    """(J, p, 1): act(e, θ_j, X_j) as a one-column 'field' so the same fit and tests apply."""
    return torch.stack([sym.act(e, t, x if sym.data_dependent else None).detach()
                        for t, x in zip(theta, X, strict=True)])[:, :, None]


def _linear_tests(fn, fit: _Draws, held: _Draws, Xalt: torch.Tensor, data_dependent: bool,
                  linear_rtol: float) -> tuple[torch.Tensor, list[dict]]:
    """Fit H from ``fn(θ, X)`` (J, p, k) and run tests (i)–(iii) of the module docstring."""
    F = fn(fit.theta, fit.X)
    H = _fit(fit.theta, F)
    res_in = _rel(F - torch.einsum("kab,jb->jak", H, fit.theta), F)
    Fh = fn(held.theta, held.X)
    res_out = _rel(Fh - torch.einsum("kab,jb->jak", H, held.theta), Fh)
    var = _rel(fn(held.theta, Xalt) - Fh, Fh) if data_dependent else None
    out = []
    for k in range(F.shape[2]):
        rec = {"residual": float(res_in[k]), "held_out_residual": float(res_out[k]),
               "data_variation": None if var is None else float(var[k])}
        if float(F[:, :, k].abs().max()) == 0.0:
            rec.update(linear=False, reason="zero field (moves nothing)")
        elif var is not None and not float(var[k]) < linear_rtol:
            rec.update(linear=False, reason=f"data-dependent: the field changes by {float(var[k]):.3g} (relative) "
                                            f"under another batch at the same θ (F4)")
        elif not max(float(res_in[k]), float(res_out[k])) < linear_rtol:
            rec.update(linear=False, reason=f"non-linear field: relative residual of ξ ≈ Hθ is "
                                            f"{max(float(res_in[k]), float(res_out[k])):.3g} ≥ {linear_rtol:g}")
        else:
            rec.update(linear=True, reason=None)
        out.append(rec)
    return H, out


def _elements(sym: Symmetry, max_elements: int, seed: int) -> list[torch.Tensor]:
    """Elementary discrete elements (module docstring, item 1)."""
    e = sym.identity_element()
    if e is not None and e.dim() == 1:
        n = e.numel()
        if torch.equal(e.long(), torch.arange(n)):
            out = []
            for i in range(n):
                for j in range(i + 1, n):
                    t = e.clone()
                    t[i], t[j] = e[j], e[i]
                    out.append(t)
            return out[:max_elements]
        if bool((e == 1).all()):
            out = []
            for i in range(n):
                t = e.clone()
                t[i] = -1
                out.append(t)
            return out[:max_elements]
    gen = make_generator(seed, _ELEMENTS)
    return [sym.sample_element(gen) for _ in range(max_elements)]


# ----------------------------------------------------------------------------------------------------------------
# step 3: canonical sub-algebras from the orbit distribution


def _span_gram(H: torch.Tensor, thetas: torch.Tensor, build, m: int, chunk: int = 32) -> torch.Tensor:
    """Σ_θ Mθᵀ Mθ with Mθ = w_θ (I − Π_θ) B(θ)/‖θ‖ (module docstring, item 3); H (k, a, a), thetas (n, a)."""
    G = thetas.new_zeros(m, m)
    a = thetas.shape[1]
    eye = torch.eye(a, dtype=thetas.dtype)
    for start in range(0, thetas.shape[0], chunk):
        th = thetas[start : start + chunk]
        V = torch.einsum("kab,nb->nak", H, th)
        U, s, _ = _svd(V)
        keep = s > FIELD_RANK_RTOL * s[:, :1].clamp_min(1e-300)
        r = keep.sum(1)
        w = torch.where(r > 0, s.gather(1, (r - 1).clamp_min(0)[:, None])[:, 0] / s[:, 0].clamp_min(1e-300),
                        torch.ones_like(s[:, 0]))
        Uk = U * keep[:, None, :]
        Q = eye - Uk @ Uk.transpose(1, 2)
        M = (w / th.norm(dim=1).clamp_min(1e-300))[:, None, None] * (Q @ build(th))
        G += torch.einsum("nri,nrj->ij", M, M)
    return G


def _diag_build(th: torch.Tensor) -> torch.Tensor:
    return torch.diag_embed(th)


def _antisym_build(iu: torch.Tensor):
    def build(th: torch.Tensor) -> torch.Tensor:
        n, a = th.shape
        m = iu.shape[1]
        B = th.new_zeros(n, a, m)
        cols = torch.arange(m)
        B[:, iu[0], cols] = th[:, iu[1]]
        B[:, iu[1], cols] = -th[:, iu[0]]
        return B

    return build


def _null_space(G: torch.Tensor, span_rtol: float) -> tuple[torch.Tensor, dict]:
    evals, V = torch.linalg.eigh(G)  # ascending
    sig = evals.flip(0).clamp_min(0).sqrt()
    dim, info = _null_cut(sig, span_rtol)
    return V[:, :dim], info


def _components(N: torch.Tensor, snap_tol: float) -> list[list[int]]:
    """Connected components of the coordinates coupled by the projector N Nᵀ (entries > snap_tol·max diagonal)."""
    Pi = N @ N.T
    d = Pi.diagonal()
    if N.shape[1] == 0 or float(d.max()) <= 0:
        return []
    thr = snap_tol * float(d.max())
    adj = Pi.abs() > thr
    live = [i for i in range(Pi.shape[0]) if float(d[i]) > thr]
    seen, comps = set(), []
    for i in live:
        if i in seen:
            continue
        stack, comp = [i], []
        seen.add(i)
        while stack:
            u = stack.pop()
            comp.append(u)
            for v in torch.nonzero(adj[u]).flatten().tolist():
                if v not in seen and v in live:
                    seen.add(v)
                    stack.append(v)
        comps.append(sorted(comp))
    return sorted(comps)


def _layout_swap(layout, Sa: list[int], Sb: list[int]) -> list[int] | None:
    """A permutation π of range(p) exchanging the coordinate sets Sa and Sb along one axis of every tensor they
    meet (e.g. hidden unit a ↔ b), or None."""
    perm = list(range(layout.num_params))
    a_set, b_set = set(Sa), set(Sb)
    for name, shape in zip(layout.names, layout.shapes, strict=True):
        sl = layout.slice(name)
        ia = [i for i in Sa if sl.start <= i < sl.stop]
        ib = [i for i in Sb if sl.start <= i < sl.stop]
        if len(ia) != len(ib):
            return None
        if not ia:
            continue
        strides = [math.prod(shape[k + 1 :]) for k in range(len(shape))]
        unravel = lambda i, st=strides, sh=shape, o=sl.start: tuple(((i - o) // s) % n for s, n in zip(st, sh,
                                                                                                       strict=True))
        ma, mb = [unravel(i) for i in ia], [unravel(i) for i in ib]
        found = False
        for ax in range(len(shape)):
            ua, ub = {t[ax] for t in ma}, {t[ax] for t in mb}
            if len(ua) != 1 or len(ub) != 1 or ua == ub:
                continue
            u, v = ua.pop(), ub.pop()
            target = {t[:ax] + (v,) + t[ax + 1 :] for t in ma}
            if target != set(mb):
                continue
            for t in ma:
                i = sl.start + sum(x * s for x, s in zip(t, strides, strict=True))
                j = i + (v - u) * strides[ax]
                if i not in a_set or j not in b_set:
                    return None
                perm[i], perm[j] = j, i
            found = True
            break
        if not found:
            return None
    return perm


# ----------------------------------------------------------------------------------------------------------------
# step 4: verification


class _Verifier:
    """Loss change and Corollary 1 over fixed draws (θ, X, Y) of the architecture (vmapped, loop fallback)."""

    def __init__(self, arch: Architecture, draws: int, batch: int, gen: torch.Generator):
        self.arch = arch
        self.theta, self.X, self.Y = arch.sample_draws(draws, batch, gen)
        self._vmap = True
        try:
            self.L0 = self._loss(self.theta)
        except (RuntimeError, NotImplementedError, ValueError):  # a forward vmap cannot batch: plain loop
            self._vmap = False
            self.L0 = self._loss(self.theta)

    def _loss(self, theta: torch.Tensor) -> torch.Tensor:
        if self._vmap:
            return vmap(self.arch.batch_loss)(theta, self.X, self.Y)
        return torch.stack([self.arch.batch_loss(t, x, y) for t, x, y in zip(theta, self.X, self.Y, strict=True)])

    def _grad(self, theta: torch.Tensor) -> torch.Tensor:
        g = grad(self.arch.batch_loss)
        if self._vmap:
            return vmap(g)(theta, self.X, self.Y)
        return torch.stack([g(t, x, y) for t, x, y in zip(theta, self.X, self.Y, strict=True)])

    def __call__(self, P: torch.Tensor) -> tuple[float, float]:
        R = torch.eye(P.shape[0], dtype=P.dtype) - 2 * P
        moved = self._loss(self.theta @ R.T)
        change = ((moved - self.L0).abs() / (1 + self.L0.abs())).max()
        g = self._grad(self.theta - self.theta @ P.T)
        gn = g.norm(dim=1)
        ratio = torch.where(gn > 0, (g @ P.T).norm(dim=1) / gn.clamp_min(1e-300), torch.zeros_like(gn))
        change, cor = float(change), float(ratio.max())
        return (math.inf if not math.isfinite(change) else change), (math.inf if not math.isfinite(cor) else cor)


# ----------------------------------------------------------------------------------------------------------------
# the pipeline


@dataclass
class _Candidate:
    kind: str
    source: str
    R: torch.Tensor | None = None  # a proposed involution, to be snapped
    P: torch.Tensor | None = None  # or an exactly structured projection
    exact: bool = False


def _blocks(layout, P: torch.Tensor) -> list[str]:
    d = P.diagonal()
    return [n for n in layout.names if float(d[layout.slice(n)].abs().max()) > 1e-12]


def _approx_tolerance(symmetry: Symmetry, tol: float) -> float:
    inv = ((getattr(symmetry, "card", None) or {}).get("verification") or {}).get("invariance") or {}
    p90 = inv.get("p90")
    return max(tol, 10 * float(p90)) if p90 else max(tol, 1e-3)


def check_compatible(symmetry: Symmetry, arch: Architecture) -> None:
    """InputError (one line) unless ``symmetry`` is a Symmetry on ``arch``'s layout and p ≤ MAX_DENSE_PARAMS."""
    if not isinstance(symmetry, Symmetry):
        raise InputError(f"expected a Symmetry, got {type(symmetry).__name__}")
    if symmetry.layout != arch.layout:
        raise InputError(f"symmetry {symmetry.name!r} acts on another parameter layout "
                         f"(p = {symmetry.layout.num_params}) than {arch.name} (p = {arch.num_params})")
    if arch.num_params > MAX_DENSE_PARAMS:
        raise InputError(f"mirror extraction uses dense p×p matrices: p = {arch.num_params} exceeds "
                         f"{MAX_DENSE_PARAMS}")


def extract_mirrors(symmetry: Symmetry, arch: Architecture, *, draws: int = 64, batch_size: int | None = None,
                    seed: int = 0, tol: float = 1e-8, linear_rtol: float = 1e-3, lin_draws: int | None = None,
                    snap_tol: float = 0.1, span_rtol: float = 3e-2, approx_tol: float | None = None,
                    max_elements: int = 64, max_products: int = 8, max_active: int = 48) -> MirrorReport:
    """Verified mirrors R = I − 2P of ``arch``'s loss proposed by ``symmetry`` (module docstring, items 1–4).

    ``draws`` (θ, X, Y) verify each candidate; ``batch_size`` defaults to the symmetry's fixed batch (learned
    artefacts) or the architecture's; ``lin_draws`` (default 2p + 8) fit the linearisation; ``snap_tol`` is the
    rounding tolerance of snapping and of spectral classification; ``span_rtol`` bounds the null singular values
    of the canonical sub-algebra search; ``approx_tol`` verifies non-snapped candidates of approximate
    symmetries; ``max_products`` bounds step (d); ``max_active`` bounds the antisymmetric search."""
    check_compatible(symmetry, arch)
    for name, v in (("draws", draws), ("max_elements", max_elements)):
        if int(v) < 1:
            raise InputError(f"{name} must be ≥ 1, got {v}")
    if not (tol > 0 and linear_rtol > 0 and 0 < snap_tol < 0.5 and 0 < span_rtol < 1):
        raise InputError("tol and linear_rtol must be > 0, snap_tol in (0, 0.5), span_rtol in (0, 1)")
    arch64 = arch.to(dtype=torch.float64)
    p = arch64.num_params
    B = int(batch_size or (symmetry.data_shape[0] if symmetry.data_shape else arch64.default_batch_size))
    J = int(lin_draws or 2 * p + 8)
    if J < p + 1:
        raise InputError(f"lin_draws must exceed p = {p} to test linearity, got {J}")
    fit = _Draws(*arch64.sample_draws(J, B, make_generator(seed, _FIT))[:2])
    held = _Draws(*arch64.sample_draws(max(8, p // 2), B, make_generator(seed, _HELD))[:2])
    Xalt = arch64.sample_draws(held.theta.shape[0], B, make_generator(seed, _XALT))[1]
    verifier = _Verifier(arch64, draws, B, make_generator(seed, _VERIFY))
    exact_sym = symmetry.exactness(fit.theta[0], fit.X[0] if symmetry.data_dependent else None).get("exact")
    loose = tol if exact_sym else (approx_tol if approx_tol is not None else _approx_tolerance(symmetry, tol))
    report = MirrorReport([], [], [], symmetry=symmetry.name,
                          settings={"draws": draws, "batch_size": B, "lin_draws": J, "seed": seed, "tol": tol,
                                    "linear_rtol": linear_rtol, "snap_tol": snap_tol, "span_rtol": span_rtol,
                                    "approx_tol": loose, "max_products": max_products})
    candidates: list[_Candidate] = []
    name = symmetry.name

    if symmetry.discrete:
        for e in _elements(symmetry, max_elements, seed):
            fn = lambda th, X, e=e: _element_images(symmetry, e, th, X)
            R, (rec,) = _linear_tests(fn, fit, held, Xalt, symmetry.data_dependent, linear_rtol)
            label = f"{name}: element {e.tolist()}"
            report.linearisation.append({"symmetry": name, "element": e.tolist(), **rec})
            if not rec["linear"]:
                report.rejected.append({"kind": "element", "source": label, "reason": rec["reason"]})
                continue
            R = R[0]
            Rr = R.round()
            perm = float((R - Rr).abs().max()) < snap_tol and _is_signed_permutation(Rr) and bool((Rr >= 0).all())
            candidates.append(_Candidate("permutation" if perm else "discrete", label, R=R))
    else:
        H, recs = _linear_tests(lambda th, X: _fields(symmetry, th, X), fit, held, Xalt, symmetry.data_dependent,
                                linear_rtol)
        linear = []
        for k, rec in enumerate(recs):
            spec = _spectrum_class(H[k], snap_tol)[0] if rec["linear"] else None
            report.linearisation.append({"symmetry": name, "generator": k, **rec, "spectrum": spec})
            if not rec["linear"]:
                report.rejected.append({"kind": "generator", "source": f"{name}: generator {k}",
                                        "reason": rec["reason"]})
            else:
                linear.append(k)
        if linear:
            Hl = H[linear]
            for k, Hk in zip(linear, Hl, strict=True):
                candidates += _raw_candidates(Hk, f"{name}: generator {k}", snap_tol)
            candidates += _canonical_candidates(Hl, arch64, name, J, seed, snap_tol, span_rtol, max_active,
                                                report.subalgebras)

    for c in candidates:
        _settle(c, report, verifier, arch64.layout, tol, loose, snap_tol)
    _products(report, verifier, arch64.layout, tol, max_products)
    return report


def _raw_candidates(H: torch.Tensor, label: str, snap_tol: float) -> list[_Candidate]:
    """(a) and (b) straight from one linearised generator."""
    cls, lam = _spectrum_class(H, snap_tol)
    p = H.shape[0]
    if cls == "imaginary":
        R = _rotation(H, lam, snap_tol)
        return [] if R is None else [_Candidate("rotation", label + " (exp πH/ω)", R=R)]
    if cls == "real":
        try:
            evals, V = torch.linalg.eig(H)
        except torch.linalg.LinAlgError:
            return []
        Vr = V.real
        if float(torch.linalg.cond(Vr)) > 1 / snap_tol**2:
            return []  # not diagonalisable (a Jordan block): no support
        live = evals.real.abs() > snap_tol * float(evals.abs().max())
        Q, _ = torch.linalg.qr(Vr[:, live])
        return [_Candidate("rescaling", label + " (support flip)", R=torch.eye(p, dtype=H.dtype) - 2 * Q @ Q.T)]
    return []


def _rotation(H: torch.Tensor, lam: torch.Tensor, snap_tol: float) -> torch.Tensor | None:
    """exp(πH/ω), ω the smallest non-zero frequency, when every frequency is an integer multiple of ω (module
    docstring, item 2a); None otherwise."""
    om = lam.imag.abs()
    om = om[om > snap_tol * float(om.max())]
    if om.numel() == 0:
        return None
    w = float(om.min())
    ratios = om / w
    if float((ratios - ratios.round()).abs().max()) > snap_tol:
        return None
    if bool(torch.allclose(H, -H.T, atol=1e-12 * float(H.abs().max()), rtol=0)):
        # antisymmetric: exp(πH/ω) = I − 2·(projector onto the odd-multiple frequencies), computed from H²
        evals, V = torch.linalg.eigh(-(H @ H) / w**2)
        k = evals.clamp_min(0).sqrt().round()
        odd = (k % 2 == 1) & (evals > snap_tol)
        Vo = V[:, odd]
        return torch.eye(H.shape[0], dtype=H.dtype) - 2 * Vo @ Vo.T
    return expm(math.pi * H / w)


def _canonical_candidates(H: torch.Tensor, arch: Architecture, name: str, J: int, seed: int, snap_tol: float,
                          span_rtol: float, max_active: int, notes: dict) -> list[_Candidate]:
    """𝒟 and 𝒜 of the orbit distribution, their canonical elements, and the swaps between supports (2c)."""
    p = H.shape[1]
    row_mass = H.abs().amax(dim=(0, 2))
    active = torch.nonzero(row_mass > 1e-9 * float(row_mass.max())).flatten()
    a = active.numel()
    Ha = H[:, active][:, :, active]
    out: list[_Candidate] = []
    # rank of the fields (typical), to size the number of θ draws: each gives a − r equations
    V = torch.einsum("kab,nb->nak", Ha, arch.sample_draws(8, 1, make_generator(seed, _SPAN, 1))[0][:, active])
    r = int(torch.linalg.matrix_rank(V, rtol=FIELD_RANK_RTOL).max())
    notes["active_coordinates"] = a
    notes["field_rank"] = r

    def draws_for(m: int) -> torch.Tensor:
        n = min(4096, max(2 * J, math.ceil(2 * m / max(1, a - r)) + 8))
        return arch.sample_draws(n, 1, make_generator(seed, _SPAN, m))[0][:, active]

    # 𝒟: diagonal elements
    Nd, info = _null_space(_span_gram(Ha, draws_for(a), _diag_build, a), span_rtol)
    comps = _components(Nd, snap_tol)
    info["components"] = len(comps)
    if comps:  # how far the proposal was from block structure: largest coupling across components / largest diagonal
        Pi = Nd @ Nd.T
        label = torch.full((a,), -1)
        for n_c, comp in enumerate(comps):
            label[comp] = n_c
        cross = label[:, None] != label[None, :]
        info["cross_coupling_rel"] = float(Pi.abs()[cross].max()) / float(Pi.diagonal().max()) if cross.any() else 0.0
    notes["diagonal"] = info
    eye = torch.eye(p, dtype=H.dtype)
    lift = lambda idx: active[torch.as_tensor(idx, dtype=torch.long)]
    supports: list[tuple[list[int], torch.Tensor | None]] = []
    for comp in comps:
        sub = Nd[comp]
        U, s, _ = _svd(sub)
        dim = int((s > snap_tol * float(s[0])).sum())
        d = U[:, 0] * (1 if float(U[0, 0]) >= 0 else -1)
        full = lift(comp).tolist()
        supports.append((full, d if dim == 1 else None))
        label = f"{name}: diagonal element on {len(full)} coordinates"
        P = torch.zeros(p, p, dtype=H.dtype)
        P[full, full] = 1.0
        out.append(_Candidate("rescaling", label + " (support flip)", P=P, exact=True))
        if dim > 1:  # several independent diagonal elements share the component: their RREF supports as well
            for row in _rref(U[:, :dim].T, snap_tol):
                idx = [comp[i] for i in torch.nonzero(row.abs() > snap_tol * float(row.abs().max())).flatten()]
                Pi = torch.zeros(p, p, dtype=H.dtype)
                sel = lift(idx).tolist()
                Pi[sel, sel] = 1.0
                out.append(_Candidate("rescaling", f"{name}: diagonal element on {len(sel)} coordinates "
                                                   "(support flip)", P=Pi, exact=True))
    # (c) swaps between equal minimal supports
    for i in range(len(supports)):
        for j in range(i + 1, len(supports)):
            (Sa, da), (Sb, db) = supports[i], supports[j]
            if len(Sa) != len(Sb):
                continue
            perm = _layout_swap(arch.layout, Sa, Sb)
            if perm is None:
                continue
            if da is not None and db is not None:
                pos = {c: k for k, c in enumerate(Sb)}
                mapped = torch.stack([db[pos[perm[c]]] for c in Sa])
                if min(float((mapped - da).abs().max()), float((mapped + da).abs().max())) > snap_tol:
                    continue
            Pi = eye[perm]
            out.append(_Candidate("permutation", f"{name}: swap of diagonal supports #{i} ↔ #{j}",
                                  P=(eye - Pi) / 2, exact=True))
    # 𝒜: antisymmetric elements
    if a < 2:
        return out
    if a > max_active:
        notes["antisymmetric"] = {"skipped": f"{a} moved coordinates > max_active = {max_active}"}
        return out
    iu = torch.triu_indices(a, a, offset=1)
    m = iu.shape[1]
    Na, info = _null_space(_span_gram(Ha, draws_for(m), _antisym_build(iu), m), span_rtol)
    notes["antisymmetric"] = info
    if Na.shape[1] == 0:
        return out
    rows = _rref(Na.T, snap_tol)
    info["elements"] = rows.shape[0]
    if rows.shape[0] > max_active:  # bounded: an algebra this large is better handled block by block
        info["truncated_to"] = max_active
        rows = rows[:max_active]
    for n_el, row in enumerate(rows):
        A = torch.zeros(a, a, dtype=H.dtype)
        A[iu[0], iu[1]] = row
        A[iu[1], iu[0]] = -row
        Af = torch.zeros(p, p, dtype=H.dtype)
        Af[active[:, None], active[None, :]] = A
        mu = torch.linalg.eigvalsh(-(Af @ Af)).clamp_min(0).sqrt()  # antisymmetric: spectrum ±iμ (eigvalsh is robust)
        R = _rotation(Af, torch.complex(torch.zeros_like(mu), mu), snap_tol)
        if R is not None:
            out.append(_Candidate("rotation", f"{name}: antisymmetric element #{n_el} (exp πA/ω)", R=R))
    return out


def _settle(c: _Candidate, report: MirrorReport, verifier: _Verifier, layout, tol: float, loose: float,
            snap_tol: float) -> None:
    """Snap, deduplicate, verify and file one candidate."""
    if c.P is None:
        P, exact, why, moved = _snap(c.R, snap_tol)
        if P is None:
            report.rejected.append({"kind": c.kind, "source": c.source, "reason": why})
            return
    else:
        P, exact, moved = c.P, c.exact, 0.0
    for m in report.accepted:
        if float((m.projection() - P).abs().max()) < SAME_P_ATOL:
            if c.source not in m.source:
                m.source += f"; {c.source}"
            return
    for r in report.rejected:
        if "_P" in r and float((r["_P"] - P).abs().max()) < SAME_P_ATOL:
            r["source"] += f"; {c.source}"
            return
    R = torch.eye(P.shape[0], dtype=P.dtype) - 2 * P
    bound = tol if exact else loose
    d = P.diagonal()
    is_mask = float((P - torch.diag(d)).abs().max()) == 0.0 and bool(((d == 0) | (d == 1)).all())
    entry = {"kind": c.kind, "source": c.source, "blocks": _blocks(layout, P), "rank": round(float(P.trace())),
             "exact": exact, "snap_distance": moved,
             "mask": torch.nonzero(d).flatten().tolist() if is_mask else None}
    eye = torch.eye(P.shape[0], dtype=P.dtype)
    if float((R - R.T).abs().max()) > INVOLUTION_ATOL or float((R @ R - eye).abs().max()) > INVOLUTION_ATOL:
        report.rejected.append({**entry, "reason": "not a symmetric involution after snapping"})
        return
    change, cor = verifier(P)
    entry.update(max_loss_change=change, corollary1=cor, tolerance=bound)
    if change < bound and cor < bound:
        report.accepted.append(Mirror(_basis(P), c.kind, c.source, entry["blocks"], change, cor, exact, moved))
    else:
        what = "loss changes" if not change < bound else "Corollary 1 fails"
        report.rejected.append({**entry, "_P": P,
                                "reason": f"{what}: max |ΔL|/(1+|L|) = {change:.3g}, ‖P∇L‖/‖∇L‖ = {cor:.3g} "
                                          f"(tolerance {bound:.3g})"})


def _products(report: MirrorReport, verifier: _Verifier, layout, tol: float, max_products: int) -> None:
    """(d): products of commuting accepted mirrors with a new P (at most ``max_products``), verified."""
    base = list(report.accepted)
    added = 0
    for i in range(len(base)):
        for j in range(i + 1, len(base)):
            if added >= max_products:
                break
            Pi, Pj = base[i].projection(), base[j].projection()
            if float((Pi @ Pj - Pj @ Pi).abs().max()) > 1e-10:
                continue
            P = Pi + Pj - 2 * Pi @ Pj
            if float(P.abs().max()) < SAME_P_ATOL or any(float((m.projection() - P).abs().max()) < SAME_P_ATOL
                                                         for m in report.accepted):
                continue
            d = P.diagonal()
            if float((P - torch.diag(d)).abs().max()) < 1e-12:  # keep masks exactly 0/1
                P = torch.diag(d.round())
            added += 1
            c = _Candidate("product", f"product of ({base[i].source}) and ({base[j].source})", P=P,
                           exact=base[i].exact and base[j].exact)
            _settle(c, report, verifier, layout, tol, tol, 0.1)
    for r in report.rejected:
        r.pop("_P", None)


def extract_all(arch: Architecture, symmetries: list[Symmetry] | None = None, **options) -> list[MirrorReport]:
    """``extract_mirrors`` for each symmetry (default: the architecture's known ones)."""
    syms = arch.known_symmetries() if symmetries is None else list(symmetries)
    return [extract_mirrors(s, arch, **options) for s in syms]


def accepted_mirrors(reports: list[MirrorReport]) -> list[Mirror]:
    """The accepted mirrors of several reports, deduplicated by P (first kind kept, sources joined)."""
    out: list[Mirror] = []
    for rep in reports:
        for m in rep.accepted:
            P = m.projection()
            same = next((o for o in out if float((o.projection() - P).abs().max()) < SAME_P_ATOL), None)
            if same is None:
                out.append(Mirror(m.O, m.kind, m.source, list(m.blocks), m.max_loss_change, m.corollary1, m.exact,
                                  m.snap_distance))
            elif m.source not in same.source:
                same.source += f"; {m.source}"
    return out
