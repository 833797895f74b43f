"""Training a learned symmetry: batched over draws with torch.func, seeded, resumable.

Every step draws S fresh (θ, X, Y) from the training stream SeedSequence([seed, 10, step]) and
minimises the objective (objective.py) with Riemannian Adam (geoopt: the free generators live on
the Stiefel manifold) and cosine-annealed learning rates (Adam's steps have size ≈ lr whatever the
gradient, so without annealing the generators jitter around the optimum at that scale).
Phase 1 (``warmup_frac`` of the steps) trains the generators with the action frozen at its
linear start and the pooled invariance; phase 2 trains both.

Outputs in ``out``: metrics.jsonl (one line per ``log_every`` steps), checkpoint.safetensors (one
atomic file, every ``checkpoint_every`` steps and at the end; checkpoint.json: its counters, to read) and the artefact
(symmetry.safetensors + card.json, see artefact.py).  A non-finite loss stops the run with a
NumericalError and leaves the last good checkpoint in place.
"""

from __future__ import annotations

import json
import math
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import geoopt
import torch

from symdisc.architecture import Architecture, make_generator
from symdisc.checkpoint import RunCheckpoint
from symdisc.devices import resolve_device
from symdisc.discovery.action import ActionNet
from symdisc.discovery.artefact import load_symmetry_tensors, make_card, save, symmetry_tensors
from symdisc.discovery.config import DiscoveryConfig
from symdisc.discovery.generators import Generators
from symdisc.discovery.learned import LearnedSymmetry
from symdisc.discovery.objective import objective
from symdisc.discovery.spectral import MAX_P, OPERATOR_MAX_P, TRAINER_MAXITER, spectral_generators, start_draws
from symdisc.errors import NumericalError, SymdiscError, SymdiscWarning
from symdisc.io import AppendLog, atomic_write, read_log, write_json
from symdisc.progress import LiveBar

TRAIN_STREAM, SPECTRAL_STREAM, INIT_STREAM = 10, 5, 0
CHECKPOINT = "checkpoint.safetensors"
_DTYPES = {"float32": torch.float32, "float64": torch.float64}


def build_symmetry(arch: Architecture, cfg: DiscoveryConfig, data_shape: list[int]) -> LearnedSymmetry:
    """Fresh generators and action for ``arch`` (seeded by cfg.seed)."""
    gen = make_generator(cfg.seed, INIT_STREAM)
    gens = Generators(arch.num_params, cfg.k, cfg.generator_kind, cfg.rank, generator=gen)
    action = ActionNet(arch.num_params, math.prod(data_shape), cfg.action, generator=gen)
    return LearnedSymmetry(arch.layout, gens, action, preserves=cfg.weights.level, data_shape=data_shape, arch=arch)


ObjectiveFn = Callable[..., tuple[torch.Tensor, dict[str, torch.Tensor]]]


class Trainer:
    """Owns the architecture (in the training dtype/device), the learned symmetry and the optimiser.

    ``objective(sym, arch, weights, θ, X, Y, generator, pooled=…) -> (loss, terms)`` is what each step
    minimises (default: symdisc's batched objective, objective.py); a reference implementation (the
    benchmark's per-sample loop) plugs in here and shares everything else."""

    def __init__(self, arch: Architecture, cfg: DiscoveryConfig, objective: ObjectiveFn = objective):
        cfg.validate(arch.num_params)
        self.cfg, self.objective = cfg, objective
        self.device = resolve_device(cfg.device)
        self.arch = arch.to(dtype=_DTYPES[cfg.dtype], device=self.device)
        self.batch = cfg.batch or arch.default_batch_size
        X0, _ = self.arch.sample_data(self.batch, make_generator(cfg.seed, INIT_STREAM, 1))
        self.data_shape = list(X0.shape)
        self.symmetry = build_symmetry(self.arch, cfg, self.data_shape)
        self.spectral: dict = {"used": False, "reason": "off in this preset" if not cfg.spectral_init else
                               "low-rank generators start at random" if cfg.generator_kind != "free" else
                               f"p = {arch.num_params} > {OPERATOR_MAX_P}: random start"}
        if cfg.spectral_init and cfg.generator_kind == "free" and arch.num_params <= OPERATOR_MAX_P:
            self._spectral_init()
        self.symmetry.gens.to(dtype=self.arch.dtype, device=self.device)
        self.symmetry.action.to(dtype=self.arch.dtype, device=self.device)
        self.opt = geoopt.optim.RiemannianAdam([
            {"params": list(self.symmetry.gens.parameters()), "lr": cfg.lr_generators},
            {"params": list(self.symmetry.action.parameters()), "lr": cfg.lr_action},
        ])
        self.step, self.best, self.ema, self.since_best = 0, math.inf, None, 0
        self._frozen: tuple[list[int], dict[str, torch.Tensor], dict[str, torch.Tensor] | None] | None = None

    def freeze(self, columns: list[int], action: bool) -> None:
        """Keep generators ``columns`` (and the action network, with ``action``) at their current values: they
        are restored after every step, and free generators' other columns are re-orthonormalised against them
        (incremental discovery: verified fields stay as verified while the next block trains)."""
        gens = {n: t.detach().clone() for n, t in self.symmetry.gens.named_parameters()}
        act = {n: t.detach().clone() for n, t in self.symmetry.action.named_parameters()} if action else None
        self._frozen = (list(columns), gens, act)
        self._restore_frozen()  # the other free columns become orthonormal to the frozen ones now

    def _restore_frozen(self) -> None:
        if self._frozen is None:
            return
        cols, gens, act = self._frozen
        g, idx = self.symmetry.gens, torch.as_tensor(cols, dtype=torch.long)
        with torch.no_grad():
            if act is not None:
                for n, t in self.symmetry.action.named_parameters():
                    t.copy_(act[n])
            if not cols:
                return
            if g.kind == "free":
                H = g.H.data
                H[:, idx] = gens["H"][:, idx]
                rest = [i for i in range(g.k) if i not in cols]
                if rest:
                    F, R = H[:, idx], H[:, rest]
                    R = R - F @ (F.T @ R)
                    Q, T = torch.linalg.qr(R)
                    H[:, rest] = Q * torch.where(torch.diagonal(T) < 0, -1.0, 1.0).to(Q)
            else:
                g.U.data[idx], g.V.data[idx] = gens["U"][idx], gens["V"][idx]

    def _spectral_init(self) -> None:
        """Generators from the best linear symmetries (spectral.py): the dense p²×p² eigenproblem for p ≤ MAX_P,
        the matrix-free LOBPCG one (TRAINER_MAXITER steps; unconverged Ritz vectors still make a start) above.
        ``self.spectral`` records the method, the draws, the seconds and whether LOBPCG converged."""
        p = self.arch.num_params
        draws, batch = start_draws(p, self.batch)
        method = "dense" if p <= MAX_P else "operator"
        theta, X, Y = self.arch.sample_draws(draws, batch, make_generator(self.cfg.seed, SPECTRAL_STREAM))
        t0 = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", SymdiscWarning)
            H, vals = spectral_generators(self.arch, self.cfg.k, theta, X, Y, self.cfg.weights.level, method=method,
                                          generator=make_generator(self.cfg.seed, SPECTRAL_STREAM, 1),
                                          maxiter=TRAINER_MAXITER)
        unconverged = [str(w.message) for w in caught if issubclass(w.category, SymdiscWarning)]
        self.spectral = {"used": True, "method": method, "draws": draws, "batch": batch,
                         "seconds": round(time.perf_counter() - t0, 2), "converged": not unconverged,
                         "eigenvalues": [float(v) for v in vals[:self.cfg.k]]}
        Q, _ = torch.linalg.qr(H.reshape(self.cfg.k, -1).T)
        with torch.no_grad():
            self.symmetry.gens.H.copy_(Q.to(self.symmetry.gens.H))

    @property
    def warmup_steps(self) -> int:
        return int(self.cfg.warmup_frac * self.cfg.steps)

    def train_step(self) -> dict[str, float]:
        cfg, sym = self.cfg, self.symmetry
        warm = self.step < self.warmup_steps
        decay = 0.5 * (1.0 + math.cos(math.pi * self.step / cfg.steps))  # cosine annealing to 0
        self.opt.param_groups[0]["lr"] = cfg.lr_generators * decay
        self.opt.param_groups[1]["lr"] = 0.0 if warm else cfg.lr_action * decay
        sym.action.requires_grad_(not warm)
        gen = make_generator(cfg.seed, TRAIN_STREAM, self.step)
        theta, X, Y = self.arch.sample_draws(cfg.draws, self.batch, gen)
        loss, terms = self.objective(sym, self.arch, cfg.weights, theta, X, Y, gen, pooled=warm)
        # the one host-device synchronisation of a step: every logged number at once, before anything is updated
        values = dict(zip(["loss", *terms], torch.stack([loss, *terms.values()]).detach().double().tolist(),
                          strict=True))
        if not math.isfinite(values["loss"]):
            raise NumericalError(f"non-finite training loss at step {self.step} "
                                 f"({', '.join(f'{k}={v:.3g}' for k, v in values.items() if k != 'loss')})")
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self._restore_frozen()
        self.step += 1
        return {**values, "phase": "warmup" if warm else "joint"}

    def _plateau(self, loss: float) -> bool:
        if self.step <= self.warmup_steps:
            return False
        self.ema = loss if self.ema is None else 0.9 * self.ema + 0.1 * loss
        if self.ema < self.best - self.cfg.min_delta * abs(self.best if math.isfinite(self.best) else 1.0):
            self.best, self.since_best = self.ema, 0
        else:
            self.since_best += 1
        return self.since_best >= self.cfg.patience

    # ---- checkpoints ----------------------------------------------------------------------------
    def _checkpoint(self, out: Path, resume: bool = False) -> RunCheckpoint:
        return RunCheckpoint(out / CHECKPOINT, self.cfg.checkpoint_every, {"config": self.cfg.to_dict()}, resume)

    def save_checkpoint(self, out: Path) -> None:
        """``checkpoint.safetensors``: the symmetry, the optimizer and the counters in one atomic file
        (``symdisc.checkpoint``); ``checkpoint.json`` beside it is a readable copy of the counters only."""
        progress = {"step": self.step, "best": self.best if math.isfinite(self.best) else None, "ema": self.ema,
                    "since_best": self.since_best}
        self._checkpoint(out).save(progress, {"symmetry": symmetry_tensors(self.symmetry),
                                              "opt": self.opt.state_dict()})
        write_json(out / "checkpoint.json", progress)

    def load_checkpoint(self, out: Path) -> None:
        """The state ``save_checkpoint`` wrote; refused when it was made with another configuration."""
        progress, state = self._checkpoint(out, resume=True).resumed
        load_symmetry_tensors(self.symmetry, state["symmetry"], out / CHECKPOINT)
        self.opt.load_state_dict(state["opt"])
        restore_python_scalars(self.opt, state["opt"])
        self.step, self.ema, self.since_best = progress["step"], progress["ema"], progress["since_best"]
        self.best = math.inf if progress["best"] is None else progress["best"]

    # ---- the loop -------------------------------------------------------------------------------
    def fit(self, out: str | Path, resume: bool = False, progress: bool = True) -> dict:
        """Train to ``cfg.steps`` (or a plateau); return a summary.  Writes into ``out`` (created)."""
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        metrics = out / "metrics.jsonl"
        if resume:
            self.load_checkpoint(out)
            _truncate_metrics(metrics, self.step)
        elif metrics.exists():
            metrics.unlink()
        start, stopped, last = time.perf_counter(), "steps", {}
        try:
            with LiveBar(self.cfg.steps, "discover", progress, completed=self.step) as bar, AppendLog(metrics) as log:
                while self.step < self.cfg.steps:
                    last = self.train_step()
                    if self.step % self.cfg.log_every == 0 or self.step == self.cfg.steps:
                        log.write({"step": self.step, **last})
                    if self.step % self.cfg.checkpoint_every == 0:
                        self.save_checkpoint(out)
                    bar.advance(" ".join(f"{k[:4]}={v:.3g}" for k, v in last.items() if k not in ("phase",)
                                         and (k in ("loss", "invariance") or v)))
                    if self._plateau(last["loss"]):
                        stopped = "plateau"
                        break
        except SymdiscError as e:
            kept = "the last good checkpoint is in " + str(out) if (out / CHECKPOINT).exists() \
                else "no checkpoint was written yet"
            raise type(e)(f"{e}; {kept}") from None
        summary = {"steps": self.step, "stopped": stopped, "seconds": round(time.perf_counter() - start, 3),
                   "final": last, "spectral_init": self.spectral}
        self.write(out, summary)
        return summary

    def write(self, out: Path, summary: dict) -> None:
        """The checkpoint and the artefact (card + tensors) of the current symmetry into ``out``."""
        self.save_checkpoint(out)
        card = make_card(self.symmetry, self.arch, self.data_shape, {"config": self.cfg.to_dict(), "summary": summary})
        save(self.symmetry, out, card)


def restore_python_scalars(opt: torch.optim.Optimizer, state: dict) -> None:
    """Undo torch's load_state_dict turning a saved int ``step`` into a float32 tensor: geoopt's optimizers count
    steps in Python ints, and the bias correction 1 − β^step in float32 differs in its last bits, so a resumed run
    would not repeat the uninterrupted one bitwise."""
    params = [p for group in opt.param_groups for p in group["params"]]
    for pid, saved in state.get("state", {}).items():
        param = params[int(pid)]
        for key, value in saved.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool) and param in opt.state:
                opt.state[param][key] = value


def _truncate_metrics(path: Path, step: int) -> None:
    """The log up to the checkpoint's step (a line cut by the kill dropped), rewritten atomically."""
    if not path.exists():
        return
    keep = [r for r in read_log(path) if isinstance(r.get("step"), int) and r["step"] <= step]
    atomic_write(path, lambda tmp: Path(tmp).write_text("".join(json.dumps(r) + "\n" for r in keep)))
