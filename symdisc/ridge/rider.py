"""Ridge Rider's search (ridge_rider.md §1.4 Alg. 1, §2.2 Alg. 2), symmetry-aware through the Symmetry interface.

    rr = RidgeRider(loss, theta_mis, RRConfig(), symmetry=None)   # loss: flat θ → scalar, deterministic
    result = rr.run()                                             # or RidgeRider.for_module(model, criterion, batch)
    result.solutions                                              # leaves: (fingerprint Ψ, θ, loss)

Archive ← GetRidges(θ_MIS); while the archive has ridges and budget is left: ChooseFromArchive, ride it
(θ ← θ − α e; UpdateRidge; until EndRide), then add the ridges at the ride's end as its children.  With a
``directory`` the archive, counters and random state are saved after every ``checkpoint_every`` rides
(atomically), and ``RidgeRider.resume`` continues a search from them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from symdisc.errors import ArtefactError, InputError, NumericalError
from symdisc.optim.resumable import Resumable
from symdisc.progress import LiveBar
from symdisc.ridge.archive import Archive, Node
from symdisc.ridge.config import RRConfig
from symdisc.ridge.eigen import (
    DENSE_MAX,
    Eigenpairs,
    descent_sign,
    gradient_update,
    max_overlap,
    most_negative,
    warm_start,
)
from symdisc.ridge.hessian import HessianOperator
from symdisc.ridge.symmetric import certify_clusters, check_symmetry, orbit_distance, orbit_projector
from symdisc.symmetry.base import Symmetry

Loss = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class Ridge:
    """A ridge offered by GetRidges: branch index, sign, unit direction e, eigenvalue λ, its cluster (design A)."""

    index: int
    sign: int
    e: torch.Tensor
    lam: float
    cluster: dict | None = None


@dataclass
class RRResult:
    """A finished (or budget-stopped) search."""

    archive: Archive
    mis: torch.Tensor
    iterations: int
    hvps: int
    seconds: float
    stopped: str

    @property
    def solutions(self) -> list[Node]:
        return self.archive.solutions()

    def summary(self) -> dict:
        ends = self.archive.ends()
        return {"rides": sum(n.status != "pending" for n in self.archive.nodes), "pending": len(self.archive),
                "solutions": len(self.solutions), "merged": sum(n.status == "merged" for n in self.archive.nodes),
                "ends": len(ends), "iterations": self.iterations, "hvps": self.hvps,
                "seconds": round(self.seconds, 3), "stopped": self.stopped,
                "best_loss": min((n.loss_end for n in ends), default=None)}


class RidgeRider(Resumable):
    """The RR search on a deterministic loss over a flat θ (see the module docstring)."""

    def __init__(self, loss: Loss, theta: torch.Tensor, config: RRConfig | None = None, *,
                 symmetry: Symmetry | None = None, X: torch.Tensor | None = None,
                 generator: torch.Generator | None = None, directory: str | Path | None = None,
                 progress: bool = False):
        self.config = config = (config or RRConfig()).validate()
        if theta.dim() != 1 or not theta.is_floating_point():
            raise InputError(f"θ must be a flat floating-point vector, got shape {tuple(theta.shape)}")
        if symmetry is not None:
            check_symmetry(symmetry, theta.shape[0])
            if symmetry.data_dependent and X is None:
                raise InputError(f"{symmetry.name} is data-dependent: pass the batch X the loss uses")
        self.loss, self.symmetry, self.X = loss, symmetry, X
        self.mis = theta.detach().clone()
        self.directory = Path(directory) if directory is not None else None
        self.progress = progress
        self.init_resumable(generator)
        self.archive = Archive(config.search)
        self.hvps = 0
        self.seconds = 0.0
        self._started = False
        value = float(loss(self.mis))
        if value != value or abs(value) == float("inf"):
            raise NumericalError("the loss is not finite at the start point")
        start = HessianOperator(loss, self.mis)  # checks on their own random vectors: the search's draws unchanged
        start.check_deterministic(torch.Generator().manual_seed(0))
        start.check_smooth(torch.Generator().manual_seed(1))

    # ---- construction from an nn.Module ----------------------------------------------------------------
    @classmethod
    def for_module(cls, model: torch.nn.Module, criterion: Callable, batch: tuple, config: RRConfig | None = None,
                   **kwargs) -> RidgeRider:
        """RR on ``criterion(model(x), y)`` for a fixed batch (x, y), over the model's parameters in
        ``named_parameters`` order (``rr.layout`` maps θ back: ``rr.assign(node)`` writes a solution)."""
        from torch.func import functional_call

        from symdisc.layout import ParamLayout

        if model.training:
            model.eval()  # RR needs a deterministic loss: dropout off, batch-norm running statistics
        layout = ParamLayout.of_module(model)
        x, y = batch
        loss = lambda th: criterion(functional_call(model, layout.unflatten(th), (x,)), y)
        theta = layout.flatten(dict(model.named_parameters())).detach()
        rr = cls(loss, theta, config, **kwargs)
        rr.model, rr.layout = model, layout
        return rr

    def assign(self, node: Node) -> None:
        """Write a node's end point into the module given to ``for_module``."""
        model = getattr(self, "model", None)
        if model is None:
            raise InputError("assign() needs a RidgeRider built with for_module")
        params = dict(model.named_parameters())
        theta = node.theta_end if node.theta_end is not None else node.theta_start
        with torch.no_grad():
            for name, value in self.layout.unflatten(theta).items():
                params[name].copy_(value)

    # ---- the pieces of Alg. 1 --------------------------------------------------------------------------
    def hessian(self, theta: torch.Tensor) -> HessianOperator:
        """H(θ), with design B's projector when a symmetry is given, ``project`` is on and θ is critical."""
        op = HessianOperator(self.loss, theta, compile=self.config.compile_hvp)
        if self.symmetry is not None and self.config.project and \
                (self.config.project_everywhere or float(op.gradient().norm()) <= self.config.grad_tol):
            raw = HessianOperator(self.loss, theta, compile=self.config.compile_hvp)
            op.projector = orbit_projector(self.symmetry, self.loss, theta, self.X, raw.matvec,
                                           gate_tol=self.config.gate_tol)
            self.hvps += raw.hvps
        return op

    def spectrum(self, op: HessianOperator, k: int, warm: torch.Tensor | None = None) -> Eigenpairs:
        c = self.config
        return most_negative(op, min(k, op.p), c.eigensolver, warm, c.eig_tol, c.eig_maxiter, generator=self.generator)

    def _track_k(self, p: int) -> int:
        """Eigenpairs to compute: all of them with the dense solver (they come at no extra cost, and tracking and
        design A's clusters use them), else the ridges plus a margin of 4 (ARPACK needs k < p − 1)."""
        dense = self.config.eigensolver == "dense" or (self.config.eigensolver == "auto" and p <= DENSE_MAX)
        return p if dense else max(1, min(p - 2, self.config.n_ridges + 4))

    def get_ridges(self, theta: torch.Tensor) -> list[Ridge]:
        """GetRidges(θ): the n_ridges most negative eigenpairs below −neg_tol·‖H‖ (design A: one representative per
        certified cluster, indexed by cluster), with both signs at a saddle, else the descent sign."""
        c = self.config
        op = self.hessian(theta)
        pairs = self.spectrum(op, self._track_k(op.p))
        self.hvps += op.hvps
        neg = [j for j in range(pairs.values.shape[0]) if float(pairs.values[j]) < -c.neg_tol * pairs.norm]
        if op.projector is not None and op.projector.Q.shape[1]:  # P H P's own zeros on span Ξ are not ridges
            Q = op.projector.Q
            neg = [j for j in neg if float((Q.T @ pairs.vectors[:, j]).norm()) < 0.5]
        g = op.gradient()
        both = c.signs == "both" or (c.signs == "saddle" and float(g.norm()) <= c.grad_tol)
        offers: list[tuple[torch.Tensor, float, dict | None, bool]] = []
        if self.symmetry is not None and c.adapt and neg:
            vals, vecs = pairs.values[neg], pairs.vectors[:, neg]
            for cl in certify_clusters(self.symmetry, theta, vals, vecs, pairs.norm, self.X, c.cluster_rtol,
                                       c.certify_tol):
                lam = float(vals[cl.members].mean())
                offers += [(o.vector, lam, {**cl.record(), "kind": o.kind}, o.one_sign) for o in cl.offers]
        else:
            offers = [(pairs.vectors[:, j], float(pairs.values[j]), None, False) for j in neg]
        ridges = []
        for index, (e, lam, cluster, one_sign) in enumerate(offers[: c.n_ridges]):
            e = descent_sign(e / e.norm(), g)
            signs = (1, -1) if both and not one_sign else (1,)
            ridges += [Ridge(index, s, s * e, lam, cluster) for s in signs]
        return ridges

    def _exact_step(self, theta, e, alpha, loss_now):
        """UpdateRidge (exact): the largest α ≤ 2·α_last with overlap ≥ δ_break and a lower loss, halving."""
        c = self.config
        a, reason = min(c.alpha, 2 * alpha), "overlap"
        while a >= c.alpha_min:
            th = theta - a * e
            self.steps_done += 1
            loss_new = float(self.loss(th))
            if c.require_decrease and not loss_new < loss_now - c.min_decrease * max(1.0, abs(loss_now)):
                reason, a = "no_decrease", a / 2
                continue
            op = self.hessian(th)
            pairs = self.spectrum(op, self._track_k(op.p), warm=e)
            self.hvps += op.hvps
            j, ov = max_overlap(pairs.vectors, e)
            if abs(ov) >= c.delta_break:
                new_e = pairs.vectors[:, j] * (1.0 if ov > 0 else -1.0)
                return th, new_e, float(pairs.values[j]), pairs.norm, a, loss_new, None
            reason, a = "overlap", a / 2
        return None, None, None, None, alpha, loss_now, reason

    def ride(self, node: Node, budget_left: int) -> None:
        """Ride ``node`` until EndRide; sets its end point, reason and steps."""
        c = self.config
        theta, e, lam = node.theta_start.clone(), node.e_start.clone(), node.lam_start
        loss_now, alpha, reason, steps, norm = node.loss_start, c.alpha, "max_steps", 0, abs(lam) or 1.0
        start_iter = self.steps_done
        He_old = None
        while steps < c.max_ride_steps:
            if self.steps_done - start_iter >= budget_left:
                reason = "budget"
                break
            if c.update == "exact":
                th, new_e, new_lam, new_norm, alpha, loss_new, fail = self._exact_step(theta, e, alpha, loss_now)
                if fail is not None:
                    reason = fail
                    break
                norm = new_norm
            else:
                th = theta - c.alpha * e
                self.steps_done += 1
                loss_new = float(self.loss(th))
                if c.require_decrease and not loss_new < loss_now - c.min_decrease * max(1.0, abs(loss_now)):
                    reason = "no_decrease"
                    break
                op = self.hessian(th)
                He_new = op.matvec(e)
                if c.update == "fixed":
                    new_e, new_lam = e, float(e @ He_new)
                else:
                    if He_old is None:
                        He_old = self.hessian(theta).matvec(e)
                        self.hvps += 1
                    new_lam = warm_start(lam, e, He_new, He_old)
                    rayleigh = float(e @ He_new) / float(e @ e)
                    if new_lam >= 0 <= rayleigh:  # the ridge's curvature is gone: end here (the eigen-loss needs λ < 0)
                        theta, loss_now, lam, steps = th, loss_new, rayleigh, steps + 1
                        reason = "curvature"
                        self.hvps += op.hvps
                        break
                    new_lam = new_lam if new_lam < 0 else rayleigh  # an overshooting estimate: restart from eᵀHe
                    new_e, new_lam = gradient_update(op, e, new_lam, c.inner_steps, c.lr_e, c.lr_lambda)
                    new_e = new_e if float(new_e @ e) >= 0 else -new_e
                He_old = op.matvec(new_e) if c.update == "gradient" else None
                self.hvps += op.hvps
            # EndRide reads the curvature along the new ridge, eᵀHe (exact, and free in the gradient update, whose
            # own λ estimate diverges as λ → 0 through its 1/λ³ terms); the estimate carries Alg. 2's state
            curvature = float(new_e @ He_old) if c.update == "gradient" else new_lam
            theta, e, lam, loss_now, steps = th, new_e, new_lam, loss_new, steps + 1
            if curvature >= -c.neg_tol * norm:
                lam = curvature
                reason = "curvature"
                break
        node.theta_end, node.loss_end, node.lam_end = theta, loss_now, lam
        node.steps, node.end_reason = steps, reason

    def _finish(self, theta: torch.Tensor) -> torch.Tensor:
        """``finish_steps`` of plain gradient descent (a leaf polished to its local minimum)."""
        x = theta.clone().requires_grad_()
        opt = torch.optim.SGD([x], lr=self.config.finish_lr)
        for _ in range(self.config.finish_steps):
            opt.zero_grad()
            self.loss(x).backward()
            opt.step()
        return x.detach()

    def _merge(self, node: Node) -> bool:
        """Design C: merge ``node`` into a finished ride whose end point lies on its orbit (d_G ≤ merge_tol)."""
        c = self.config
        for other in self.archive.ends():
            if other.id == node.id or other.theta_end is None:
                continue
            if abs(other.loss_end - node.loss_end) > c.merge_tol * max(1.0, abs(other.loss_end)):
                continue
            d = orbit_distance(self.symmetry, node.theta_end, other.theta_end, self.X, generator=self.generator)
            if d <= c.merge_tol:
                node.status, node.merged_into, node.orbit_distance = "merged", other.id, d
                return True
        return False

    def _offer(self, parent: Node | None, theta: torch.Tensor) -> int:
        """Add the ridges at θ as children of ``parent`` (roots when None); the number added."""
        depth = 0 if parent is None else len(parent.fingerprint)
        if depth >= self.config.max_depth and parent is not None:
            return 0
        ridges = self.get_ridges(theta)
        loss = float(self.loss(theta))
        prefix = [] if parent is None else parent.fingerprint
        for r in ridges:
            self.archive.add(None if parent is None else parent.id, prefix + [r.index], r.sign, theta, r.e, r.lam,
                             loss, r.cluster)
        return len(ridges)

    # ---- the search ----------------------------------------------------------------------------------
    def run(self, budget: int | None = None) -> RRResult:
        """Run (or continue) the search until the archive is empty, ``budget`` iterations are spent, or
        ``max_rides`` rides are done."""
        c = self.config
        budget = c.budget if budget is None else budget
        t0 = time.perf_counter() - self.seconds
        if not self._started:
            self._offer(None, self.mis)
            self._started = True
            self.events.append({"event": "roots", "ridges": len(self.archive)})
            self.checkpoint()
        stopped = "archive_empty"
        rides = sum(n.status != "pending" for n in self.archive.nodes)
        bar_at = min(self.steps_done, budget)
        with LiveBar(budget, "riding ridges", enabled=self.progress, completed=min(self.steps_done, budget)) as bar:
            while len(self.archive):
                if self.steps_done >= budget:
                    stopped = "budget"
                    break
                if rides >= c.max_rides:
                    stopped = "max_rides"
                    break
                node = self.archive.choose(self.generator)
                self.ride(node, budget - self.steps_done)
                if c.finish_steps:
                    node.theta_end = self._finish(node.theta_end)
                    node.loss_end = float(self.loss(node.theta_end))
                node.status = "done"
                rides += 1
                if self.symmetry is not None and c.merge and self._merge(node):
                    pass
                elif node.end_reason != "budget" and not (node.steps == 0 and
                                                          torch.equal(node.theta_end, node.theta_start)):
                    node.leaf = self._offer(node, node.theta_end) == 0  # a ride that never moved does not branch
                self.seconds = time.perf_counter() - t0
                if rides % c.checkpoint_every == 0:
                    self.checkpoint()
                bar.advance(f"rides {rides}, pending {len(self.archive)}", self.steps_done - bar_at)
                bar_at = self.steps_done
        self.seconds = time.perf_counter() - t0
        self.checkpoint()
        return RRResult(self.archive, self.mis, self.steps_done, self.hvps, self.seconds, stopped)

    # ---- persistence -----------------------------------------------------------------------------------
    def checkpoint(self) -> None:
        if self.directory is None:
            return
        state = self.resumable_state()
        gen = state.pop("generator")
        extra = {**state, "config": self.config.to_dict(), "hvps": self.hvps, "seconds": self.seconds,
                 "started": self._started, "symmetry": None if self.symmetry is None else self.symmetry.name}
        self.archive.save(self.directory, extra, {"mis": self.mis, "generator": gen})

    @classmethod
    def resume(cls, directory: str | Path, loss: Loss, *, symmetry: Symmetry | None = None,
               X: torch.Tensor | None = None, progress: bool = False) -> RidgeRider:
        """A search continued from ``directory``'s checkpoint (the same loss, and symmetry if one was used)."""
        archive, extra, tensors = Archive.load(directory)
        if "mis" not in tensors or "generator" not in tensors:
            raise ArtefactError(f"{directory}: the RR checkpoint lacks its start point or random state")
        if (extra.get("symmetry") is None) != (symmetry is None):
            raise InputError(f"{directory} was searched with symmetry {extra.get('symmetry')!r}; resume it with the "
                             "same symmetry")
        rr = cls(loss, tensors["mis"], RRConfig.from_dict(extra["config"]), symmetry=symmetry, X=X,
                 directory=directory, progress=progress)
        rr.archive = archive
        rr.load_resumable({"steps_done": extra["steps_done"], "events": extra["events"],
                           "generator": tensors["generator"]})
        rr.hvps, rr.seconds, rr._started = int(extra["hvps"]), float(extra["seconds"]), bool(extra["started"])
        return rr
