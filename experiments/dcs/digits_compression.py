"""A digits MLP compressed by DCS, against magnitude pruning of a weight-decay baseline (dcs.md §6, E5 in small;
issue 13 item 4): ``dcs_digits``.

Substitute setup (E5 trains a ResNet18 on CIFAR-10; these are not its numbers): scikit-learn's 8×8 digits, the
fixed split of ``symdisc.data.digits()`` (1,348 train / 449 test, standardised), MLP 64-128-64-10 with ReLU and
biases, cross-entropy, Adam (lr ``lr``, β = (0.9, 0.999)), mini-batches of ``batch``, ``epochs`` epochs, cosine
decay of the lr to 0, float32.  ReLU rather than tanh: tanh is odd, so each hidden neuron has a native sign-flip
mirror (negate its in-row, bias and out-column; dcs.md §4.1, F3) and weight decay alone already favours dead
neurons; ReLU's rescaling holds only for ρ > 0 and gives no mirror, so every exact zero below comes from DCS
(and ReLU is the usual activation of pruning baselines).  Biases are never penalised.

Arms, every one from the same θ₀ and the same order of mini-batches within a seed (the seed draws both):

* ``baseline``  plain weights, L2 ``weight_decay`` on the weights (torch.optim.Adam's coupled decay);
* ``sparse``    DCS ``sparse`` (spred, θ = w ⊙ u: the lasso 2α‖θ‖₁) on the three weight matrices, α ∈ ``sparse_alphas``,
                from the library's default start (pairs spread along their rescaling orbit: signs free);
* ``balanced``  the same from the balanced start w = sign(θ)√|θ|, u = √|θ| (``init="balanced"``): it lies on the
                lines w = ±u, which the swap (w, u) ↦ (±u, ±w) leaves invariant and Adam (coordinate-wise,
                identical updates for w and u there) never leaves — so no weight ever changes its sign (this arm
                found the lock; the library's default start was changed after it).  ``sign_flips`` counts the
                weights whose final sign is opposite to their initial one, in every arm;
* ``group``     DCS ``group`` (one gate per output row: the group lasso 2α Σ‖row‖₂, i.e. neuron sparsity) on the
                three weight matrices, α ∈ ``group_alphas``.

DCS runs through ``DCSOptimizer`` around Adam (the penalty's gradient is added by the optimizer; the loss is the
plain cross-entropy); no rebalancing.  For each DCS model: its test accuracy, ``dcs.materialize(1e-6)`` (the
paper's B.4 threshold) — the plain deep copy whose constrained quantities below 1e-6 are exactly 0 — its test
accuracy, the difference, how many test predictions are identical and the largest logit difference; the
fraction of weight entries that are exactly 0 in the materialized model (biases excluded), dead rows per layer.

Magnitude pruning of the baseline at the same sparsity: for a ``sparse`` model, global magnitude pruning of the
three weight matrices to the same number of zero weights; for a ``group`` model, structured pruning of the same
number of rows in each layer, smallest L2 norm first.  Each pruned model is evaluated as is (``prune``: no
extra training, the budget DCS had) and after ``finetune_epochs`` epochs of Adam with the mask held fixed
(``prune+ft``: extra training DCS does not get).  Both are reported; the headline comparison is the first.
``prune_curve``: the baseline's accuracy under global magnitude pruning (no fine-tune) at ``curve_fractions``.
"""

from __future__ import annotations

import copy
import math
import statistics
import time
from pathlib import Path

import torch
from torch import nn

from experiments.registry import Runner
from symdisc import make_generator
from symdisc.data import Split, digits
from symdisc.dcs import DCS, DCSOptimizer
from symdisc.plotting import plt, save_figure, sns

TOL = 1e-6  # the paper's sparsity threshold (B.4): materialize snaps the constrained quantities below it to 0


def mlp(dims: list[int], activation: str, seed: int) -> nn.Sequential:
    """Linear/activation layers with torch's default init ranges (U(±1/√fan_in) for weights and biases), drawn
    from the seed's stream 0."""
    act = {"relu": nn.ReLU, "tanh": nn.Tanh}[activation]
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(dims[:-1], dims[1:], strict=True)):
        layers += [nn.Linear(a, b)] + ([act()] if i < len(dims) - 2 else [])
    model = nn.Sequential(*layers)
    g = make_generator(seed, 0)
    with torch.no_grad():
        for m in linears(model):
            bound = 1 / math.sqrt(m.in_features)
            m.weight.uniform_(-bound, bound, generator=g)
            m.bias.uniform_(-bound, bound, generator=g)
    return model


def linears(model: nn.Module) -> list[nn.Linear]:
    return [m for m in model if isinstance(m, nn.Linear)]


def weight_names(model: nn.Module) -> list[str]:
    return [f"{i}.weight" for i, m in enumerate(model) if isinstance(m, nn.Linear)]


def weights(model: nn.Module) -> list[torch.Tensor]:
    return [m.weight.detach() for m in linears(model)]


@torch.no_grad()
def evaluate(model: nn.Module, split: Split) -> dict:
    logits = model(split.X_test)
    pred = logits.argmax(1)
    train = (model(split.X_train).argmax(1) == split.y_train).double().mean()
    return {"test_acc": float((pred == split.y_test).double().mean()), "train_acc": float(train),
            "logits": logits, "pred": pred}


def zero_stats(model: nn.Module) -> dict:
    ws = weights(model)
    total = sum(w.numel() for w in ws)
    return {"zero_fraction": sum(int((w == 0).sum()) for w in ws) / total,
            "zero_per_layer": [int((w == 0).sum()) for w in ws],
            "dead_rows": [int((w == 0).all(1).sum()) for w in ws],
            "below_tol_fraction": sum(int((w.abs() < TOL).sum()) for w in ws) / total}


def train(model: nn.Module, split: Split, config: dict, seed: int, epochs: int, dcs: DCS | None = None,
          masks: list[torch.Tensor] | None = None, stream: int = 1) -> dict:
    """Adam with a cosine lr over ``epochs``: the baseline (weight decay on the weights), a DCS model
    (``DCSOptimizer``, no decay) or a pruned model (``masks`` held fixed)."""
    if dcs is None:
        wd = [p for n, p in model.named_parameters() if n.endswith("weight")]
        rest = [p for n, p in model.named_parameters() if not n.endswith("weight")]
        opt = inner = torch.optim.Adam([{"params": wd, "weight_decay": config["weight_decay"]},
                                        {"params": rest, "weight_decay": 0.0}], lr=config["lr"])
    else:
        inner = torch.optim.Adam(model.parameters(), lr=config["lr"])
        opt = DCSOptimizer(inner, dcs)
    steps = epochs * math.ceil(split.X_train.shape[0] / config["batch"])
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(inner, max(steps, 1))
    g = make_generator(seed, stream)
    t = time.perf_counter()
    loss = float("nan")
    for _ in range(epochs):
        for X, y in split.batches(config["batch"], g):
            opt.zero_grad()
            out = nn.functional.cross_entropy(model(X), y)
            out.backward()
            opt.step()
            sched.step()
            if masks is not None:
                with torch.no_grad():
                    for m, mask in zip(linears(model), masks, strict=True):
                        m.weight.mul_(mask)
            loss = float(out.detach())
    return {"seconds": time.perf_counter() - t, "last_batch_loss": loss}


def magnitude_masks(model: nn.Module, zeros: int) -> list[torch.Tensor]:
    """Global magnitude pruning: keep-masks zeroing the ``zeros`` smallest |w| over all weight matrices."""
    ws = weights(model)
    flat = torch.cat([w.abs().reshape(-1) for w in ws])
    keep = torch.ones_like(flat)
    keep[torch.argsort(flat, stable=True)[:zeros]] = 0
    return [k.reshape(w.shape) for k, w in zip(keep.split([w.numel() for w in ws]), ws, strict=True)]


def row_masks(model: nn.Module, rows: list[int]) -> list[torch.Tensor]:
    """Structured pruning: in each layer the ``rows[l]`` rows of smallest L2 norm zeroed."""
    out = []
    for w, k in zip(weights(model), rows, strict=True):
        keep = torch.ones_like(w)
        keep[torch.argsort(w.norm(dim=1), stable=True)[:k]] = 0
        out.append(keep)
    return out


def pruned(model: nn.Module, masks: list[torch.Tensor]) -> nn.Module:
    out = copy.deepcopy(model)
    with torch.no_grad():
        for m, mask in zip(linears(out), masks, strict=True):
            m.weight.mul_(mask)
    return out


def prune_arm(baseline: nn.Module, masks: list[torch.Tensor], split: Split, config: dict, seed: int) -> dict:
    """The baseline pruned by ``masks``: evaluated as is and after a fine-tune with the masks fixed."""
    model = pruned(baseline, masks)
    before = evaluate(model, split)
    row = {"zero_fraction": zero_stats(model)["zero_fraction"], "test_acc": before["test_acc"]}
    if config["finetune_epochs"] > 0:
        ft = train(model, split, config, seed, config["finetune_epochs"], masks=masks, stream=2)
        row |= {"ft_test_acc": evaluate(model, split)["test_acc"],
                "ft_zero_fraction": zero_stats(model)["zero_fraction"], "ft_seconds": ft["seconds"]}
    return row


ARMS = {"sparse": "sparse", "balanced": "sparse", "group": "group"}  # arm → DCS constraint


def dcs_arm(arm: str, alpha: float, baseline: nn.Module, split: Split, config: dict, seed: int) -> dict:
    kind = ARMS[arm]
    model = mlp(config["dims"], config["activation"], seed)
    start = [w.clone() for w in weights(model)]
    dcs = DCS(model, dict.fromkeys(weight_names(model), kind), alpha,
              init="balanced" if arm == "balanced" else "spread", seed=seed)
    fit = train(model, split, config, seed, config["epochs"], dcs=dcs)
    live = evaluate(model, split)
    mat = dcs.materialize(TOL)
    plain = evaluate(mat.model, split)
    stats = zero_stats(mat.model)
    flips = sum(int((w * w0 < 0).sum()) for w, w0 in zip(weights(mat.model), start, strict=True))
    row = {"arm": arm, "kind": kind, "alpha": alpha, "sign_flips": flips, "test_acc": live["test_acc"],
           "train_acc": live["train_acc"],
           "materialized_test_acc": plain["test_acc"], "acc_difference": plain["test_acc"] - live["test_acc"],
           "identical_predictions": int((plain["pred"] == live["pred"]).sum()), "test_size": len(split.y_test),
           "max_logit_difference": float((plain["logits"] - live["logits"]).abs().max()),
           "plain_module": not any("parametrizations" in n for n, _ in mat.model.named_parameters()),
           **stats, "report_zero_fraction": {k: r["zero_fraction"] for k, r in mat.report.items()}, **fit}
    if kind == "sparse":
        masks = magnitude_masks(baseline, sum(stats["zero_per_layer"]))
    else:
        masks = row_masks(baseline, stats["dead_rows"])
    row["prune"] = prune_arm(baseline, masks, split, config, seed)
    return row


def curve(baseline: nn.Module, split: Split, fractions: list[float]) -> list[dict]:
    total = sum(w.numel() for w in weights(baseline))
    return [{"fraction": f, "test_acc": evaluate(pruned(baseline, magnitude_masks(baseline, round(f * total))),
                                                 split)["test_acc"]} for f in fractions]


def run(config: dict, seed: int) -> dict:
    split = digits()
    baseline = mlp(config["dims"], config["activation"], seed)
    start = [w.clone() for w in weights(baseline)]
    fit = train(baseline, split, config, seed, config["epochs"])
    ev = evaluate(baseline, split)
    flips = sum(int((w * w0 < 0).sum()) for w, w0 in zip(weights(baseline), start, strict=True))
    out = {"seed": seed, "baseline": {"test_acc": ev["test_acc"], "train_acc": ev["train_acc"], "sign_flips": flips,
                                      **zero_stats(baseline), **fit},
           "prune_curve": curve(baseline, split, config["curve_fractions"])}
    for arm in ARMS:
        out[arm] = [dcs_arm(arm, alpha, baseline, split, config, seed) for alpha in config[f"{arm}_alphas"]]
    return out


def _ms(xs: list[float]) -> dict:
    return {"mean": statistics.fmean(xs), "std": statistics.stdev(xs) if len(xs) > 1 else 0.0}


def summarize(results: list[dict], config: dict) -> dict:
    """Mean ± std over seeds per arm; worst |acc difference| and fewest identical predictions of the
    materialized models."""
    out: dict = {"seeds": len(results), "baseline": {k: _ms([r["baseline"][k] for r in results])
                                                     for k in ("test_acc", "zero_fraction", "seconds")}}
    for kind in ARMS:
        arms = []
        for i, alpha in enumerate(config[f"{kind}_alphas"]):
            rows = [r[kind][i] for r in results]
            arm = {"alpha": alpha, **{k: _ms([x[k] for x in rows]) for k in
                                      ("test_acc", "materialized_test_acc", "zero_fraction", "seconds")},
                   "max_abs_acc_difference": max(abs(x["acc_difference"]) for x in rows),
                   "min_identical_predictions": min(x["identical_predictions"] for x in rows),
                   "dead_rows": [x["dead_rows"] for x in rows], "sign_flips": [x["sign_flips"] for x in rows],
                   "prune_test_acc": _ms([x["prune"]["test_acc"] for x in rows]),
                   "prune_zero_fraction": _ms([x["prune"]["zero_fraction"] for x in rows])}
            if "ft_test_acc" in rows[0]["prune"]:
                arm["prune_ft_test_acc"] = _ms([x["prune"]["ft_test_acc"] for x in rows])
            arms.append(arm)
        out[kind] = arms
    out["test_size"] = results[0]["sparse"][0]["test_size"] if results[0]["sparse"] else None
    return out


def _band(ax, x: list[dict], y: list[dict], **kw) -> None:
    ax.errorbar([a["mean"] for a in x], [a["mean"] for a in y], xerr=[a["std"] for a in x],
                yerr=[a["std"] for a in y], capsize=3, **kw)


def _unstructured(ax, document: dict, zoom: tuple | None) -> None:
    """Test accuracy against the fraction of exactly-zero weights (DCS sparse, balanced, magnitude pruning);
    ``zoom`` = (x0, x1, y0, y1) limits with points below y0 drawn on the bottom edge as ▼ with their value."""
    res, s, cfg = document["results"], document["summary"], document["config"]
    fr = cfg["curve_fractions"]
    accs = [_ms([r["prune_curve"][i]["test_acc"] for r in res])["mean"] for i in range(len(fr))]
    ax.plot(fr, accs, "-", color="grey", lw=1.2, label="baseline, global magnitude pruning (curve, no fine-tune)")
    series = [("sparse", "zero_fraction", "test_acc", "o-", "C0", "DCS sparse (= its materialized model)"),
              ("balanced", "zero_fraction", "test_acc", "D-", "C1", "DCS sparse, balanced start (signs locked)"),
              ("sparse", "prune_zero_fraction", "prune_test_acc", "s--", "C3",
               "magnitude pruning of the baseline at DCS sparse's fraction"),
              ("sparse", "prune_zero_fraction", "prune_ft_test_acc", "^:", "C2",
               f"… + {cfg['finetune_epochs']}-epoch fine-tune (mask fixed)")]
    for arm, xk, yk, fmt, color, label in series:
        arms = [a for a in s.get(arm, []) if yk in a]
        if not arms:
            continue
        _band(ax, [a[xk] for a in arms], [a[yk] for a in arms], fmt=fmt, color=color, ms=6, label=label)
        for a in arms:
            x, y = a[xk]["mean"], a[yk]["mean"]
            if zoom and not zoom[0] <= x <= zoom[1]:
                continue
            if zoom and y < zoom[2]:
                ax.plot(x, zoom[2], "v", color=color, ms=9, clip_on=False)
                ax.annotate(f"{y:.2f}", (x, zoom[2]), textcoords="offset points", xytext=(6, 4), fontsize=8,
                            color=color)
            elif zoom and yk == "test_acc":
                ax.annotate(f"α={a['alpha']:g}", (x, y), textcoords="offset points", fontsize=8, color=color,
                            xytext=(-12, 9) if arm == "sparse" else (-12, -14))
    base = s["baseline"]["test_acc"]["mean"]
    ax.axhline(base, color="k", ls="--", lw=1, label=f"dense baseline {base:.3f}")
    ax.set_xlabel(f"fraction of weights exactly 0 (|w| < {TOL:g} snapped)")
    ax.set_ylabel("test accuracy")
    if zoom:
        ax.set_xlim(zoom[0], zoom[1])
        ax.set_ylim(zoom[2], zoom[3])


def figure(document: dict, path: Path) -> None:
    """(a) test accuracy against the fraction of exactly-zero weights: DCS sparse (balanced and unbalanced start),
    magnitude pruning of the baseline at the same fractions (as is / fine-tuned), the baseline's pruning curve;
    (b) the same, zoomed; (c) DCS group against structured row pruning, x = fraction of hidden neurons with a
    zero in-row; (d) materialized vs DCS model: largest logit difference and identical predictions per arm."""
    res, s, cfg = document["results"], document["summary"], document["config"]
    sns.set_theme(style="whitegrid")
    fig, axes = plt.subplots(2, 2, figsize=(15, 11))
    title = f"MLP {'-'.join(map(str, cfg['dims']))} on digits, {len(res)} seed(s), mean ± std"
    _unstructured(axes[0, 0], document, None)
    axes[0, 0].set_title(f"(a) unstructured sparsity: {title}", fontsize=10)
    axes[0, 0].legend(fontsize=8, loc="lower left")
    _unstructured(axes[0, 1], document, (0.05, 0.98, 0.9, 0.99))
    axes[0, 1].set_title("(b) zoom (▼: below the axis, value written)", fontsize=10)
    ax = axes[1, 0]
    hidden = sum(cfg["dims"][1:-1])
    if s["group"]:
        arms = s["group"]
        dead = [_ms([sum(d[:-1]) / hidden for d in a["dead_rows"]]) for a in arms]
        _band(ax, dead, [a["test_acc"] for a in arms], fmt="o-", color="C0", ms=7, label="DCS group")
        for i, (a, d) in enumerate(zip(arms, dead, strict=True)):
            ax.annotate(f"α={a['alpha']:g}: {a['zero_fraction']['mean']:.0%} of weights 0",
                        (d["mean"], a["test_acc"]["mean"]), textcoords="offset points",
                        xytext=(8, -14 if i % 2 else 8), fontsize=8, color="C0")
        _band(ax, dead, [a["prune_test_acc"] for a in arms], fmt="s--", color="C3", ms=6,
              label="row-norm pruning of the baseline, same rows per layer")
        if "prune_ft_test_acc" in arms[0]:
            _band(ax, dead, [a["prune_ft_test_acc"] for a in arms], fmt="^:", color="C2", ms=6,
                  label=f"… + {cfg['finetune_epochs']}-epoch fine-tune")
    ax.axhline(s["baseline"]["test_acc"]["mean"], color="k", ls="--", lw=1, label="dense baseline")
    ax.set_xlabel(f"fraction of the {hidden} hidden neurons with an all-zero input row")
    ax.set_ylabel("test accuracy")
    ax.set_title("(c) structured (neuron) sparsity: DCS group", fontsize=10)
    ax.legend(fontsize=8, loc="lower left")
    ax = axes[1, 1]
    labels, diffs, same = [], [], []
    for arm in ARMS:
        for i, alpha in enumerate(cfg[f"{arm}_alphas"]):
            rows = [r[arm][i] for r in res]
            labels.append(f"{arm} α={alpha:g}")
            diffs.append(max(max(x["max_logit_difference"] for x in rows), 1e-9))
            same.append(f"{min(x['identical_predictions'] for x in rows)}/{rows[0]['test_size']}, "
                        f"Δacc {max(abs(x['acc_difference']) for x in rows):g}")
    ax.barh(range(len(labels)), diffs, color="C0")
    for i, text in enumerate(same):
        ax.text(diffs[i] * 1.3, i, text, va="center", fontsize=8)
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlim(min(diffs) / 3, max(diffs) * 1e3)
    ax.set_xlabel("max |logit difference| on the test set, worst seed (0 drawn at 1e-9)")
    ax.set_title(f"(d) materialize({TOL:g}) vs the DCS model, worst seed:\nidentical test predictions, Δ accuracy",
                 fontsize=10)
    fig.tight_layout()
    save_figure(fig, path)


DEFAULTS = {"dims": [64, 128, 64, 10], "activation": "relu", "lr": 1e-3, "batch": 64, "epochs": 150,
            "weight_decay": 1e-4, "sparse_alphas": [1e-4, 3e-4, 1e-3, 2e-3, 4e-3],
            "balanced_alphas": [1e-4, 3e-4, 1e-3, 2e-3, 4e-3],
            "group_alphas": [1e-3, 3e-3, 1e-2],
            "finetune_epochs": 15,
            "curve_fractions": [0.0, 0.2, 0.4, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.93, 0.95, 0.97, 0.98, 0.99]}
SMOKE = {"dims": [64, 32, 16, 10], "lr": 1e-2, "epochs": 8, "sparse_alphas": [1e-4, 3e-3],
         "balanced_alphas": [1e-3], "group_alphas": [1e-2], "finetune_epochs": 1, "curve_fractions": [0.0, 0.5, 0.9]}
RUNNERS = [Runner("dcs_digits", "digits MLP 64-128-64-10 compressed by DCS (sparse, group) vs magnitude pruning "
                  "of a weight-decay baseline; materialized accuracy = DCS accuracy", run, figure, DEFAULTS, SMOKE,
                  summarize, default_seeds=3, group="dcs", digits=6)]
