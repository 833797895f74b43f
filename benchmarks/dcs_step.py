#!/usr/bin/env python
"""What DCS costs per training step: step time and peak memory of a DCS-wrapped model vs the plain model, as
ratios measured side by side in one run (not a test).  The paper (B.4, ResNet-18, GPU) reports 2× memory at
batch 1 and < 10 % more at batch 128; the issue's target is ≤ 1.2× step time at batch 128.

Models (float32): ``cnn`` — a ResNet-style CNN on 3×32×32 (conv 3→32→64→128 with batch-norm and ReLU, stride-2
stages, global pooling, linear 128→10; ≈ 0.3 M parameters); ``mlp`` — 784-1024-1024-10 (≈ 1.9 M).  Variants:
``plain`` (SGD, momentum 0.9, weight decay 5e-4) and ``dcs`` (every parameter reparameterised as w ⊙ u — spred,
the paper's B.4 — through ``symdisc.dcs.DCS``; ``DCSOptimizer`` adds the penalty α‖z‖² with α = 5e-4 / 2, the
plain run's weight-decay gradient 5e-4·z on the latents).  Each (model, variant, batch) runs in a fresh process.

Memory, two ways: ``accounted_mib`` = parameters + gradients + optimizer buffers (unique storages) + the tensors
autograd saves for backward in one step (``saved_tensors_hooks``) — the terms the paper's 2× / < 10 % are about,
exact on any device; and the measured peak: growth of peak RSS over the state after imports and data (CPU; includes
allocator and library overheads) or ``torch.cuda.max_memory_allocated`` (CUDA). ``memory_ratio`` is the accounted
one.

    python benchmarks/dcs_step.py [--models cnn,mlp] [--batches 1,128] [--steps 30] [--threads 1] [--device cpu]
                                  [--out benchmarks/results/dcs_step.json]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks.record import cpu_model, header, peak_rss_mib, timed  # noqa: E402
from symdisc.io import write_json  # noqa: E402

WEIGHT_DECAY = 5e-4


def build(model: str):
    from torch import nn

    if model == "mlp":
        return nn.Sequential(nn.Flatten(), nn.Linear(784, 1024), nn.ReLU(), nn.Linear(1024, 1024), nn.ReLU(),
                             nn.Linear(1024, 10)), (1, 28, 28)

    def stage(c_in, c_out, stride):
        return [nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(),
                nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]

    layers = [*stage(3, 32, 1), *stage(32, 64, 2), *stage(64, 128, 2), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
              nn.Linear(128, 10)]
    return nn.Sequential(*layers), (3, 32, 32)


def storage_bytes(tensors) -> int:
    """Bytes of the distinct storages among ``tensors``."""
    seen = {}
    for t in tensors:
        if t is not None and t.numel():
            seen[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
    return sum(seen.values())


def accounted(net, opt, step) -> tuple[float, float]:
    """(state MiB: parameters, gradients, optimizer buffers; saved-for-backward MiB of one step)."""
    import torch

    saved = []

    def pack(t):
        saved.append(t)
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        step()
    params = list(net.parameters())
    buffers = [v for st in opt.state.values() for v in st.values() if isinstance(v, torch.Tensor)]
    state = storage_bytes(params + [p.grad for p in params] + buffers)
    return state / 2**20, storage_bytes(saved) / 2**20


def measure(task: dict) -> dict:
    """One (model, variant, batch) in this fresh process: median step seconds and peak memory growth."""
    import torch

    from symdisc.dcs import DCS, DCSOptimizer

    torch.set_num_threads(task["threads"])
    device = torch.device(task["device"])
    torch.manual_seed(0)
    net, shape = build(task["model"])
    x = torch.randn(task["batch"], *shape)
    y = torch.randint(0, 10, (task["batch"],))
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        base = peak_rss_mib()
    net = net.to(device)
    x, y = x.to(device), y.to(device)
    if task["variant"] == "dcs":
        dcs = DCS(net, {n: "sparse" for n, _ in list(net.named_parameters())}, alpha=WEIGHT_DECAY / 2)
        opt = DCSOptimizer(torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9), dcs)
    else:
        opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, weight_decay=WEIGHT_DECAY)
    criterion = torch.nn.CrossEntropyLoss()

    def step():
        opt.zero_grad()
        criterion(net(x), y).backward()
        opt.step()

    times = []
    for i in range(task["steps"] + 3):
        t = time.perf_counter()
        step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        if i >= 3:  # warm-up
            times.append(time.perf_counter() - t)
    state_mib, saved_mib = accounted(net, opt, step)
    if device.type == "cuda":
        peak = (torch.cuda.max_memory_allocated() - base) / 2**20
    else:
        peak = peak_rss_mib() - base
    return {**task, "step_seconds": statistics.median(times), "peak_mib": round(peak, 1),
            "state_mib": round(state_mib, 2), "saved_mib": round(saved_mib, 2),
            "accounted_mib": round(state_mib + saved_mib, 2),
            "parameters": sum(p.numel() for p in net.parameters())}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default="cnn,mlp")
    ap.add_argument("--batches", default="1,128")
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", default="benchmarks/results/dcs_step.json")
    args = ap.parse_args(argv)
    rows = []
    for model in args.models.split(","):
        for batch in (int(b) for b in args.batches.split(",")):
            pair = {}
            for variant in ("plain", "dcs"):
                task = {"model": model, "variant": variant, "batch": batch, "steps": args.steps,
                        "threads": args.threads, "device": args.device}
                pair[variant] = timed(measure, task, f"{model} {variant} batch {batch}")
            rows.append({"model": model, "batch": batch, "plain": pair["plain"], "dcs": pair["dcs"],
                         "time_ratio": round(pair["dcs"]["step_seconds"] / pair["plain"]["step_seconds"], 3),
                         "memory_ratio": round(pair["dcs"]["accounted_mib"] / pair["plain"]["accounted_mib"], 3),
                         "peak_ratio": round(pair["dcs"]["peak_mib"] / max(pair["plain"]["peak_mib"], 1e-9), 3)})
    doc = {"benchmark": "dcs_step", **header(args.threads), "cpu": cpu_model(), "device": args.device, "rows": rows}
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    write_json(args.out, doc)
    print("| model | batch | step ms plain / DCS | time ratio | accounted MiB plain / DCS | memory ratio | "
          "peak MiB plain / DCS |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        p, d = r["plain"], r["dcs"]
        print(f"| {r['model']} | {r['batch']} | {p['step_seconds'] * 1e3:.1f} / {d['step_seconds'] * 1e3:.1f} | "
              f"{r['time_ratio']:.2f} | {p['accounted_mib']:.1f} / {d['accounted_mib']:.1f} | "
              f"{r['memory_ratio']:.2f} | "
              f"{p['peak_mib']:.0f} / {d['peak_mib']:.0f} |")
    return doc


if __name__ == "__main__":
    main()
