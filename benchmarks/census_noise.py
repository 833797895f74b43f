#!/usr/bin/env python
"""Where the rounding noise of exactly-null singular values lies (not a test): the basis of the gap cut's floor.

For each case (zoo presets at a batch that reaches their data-independent null space, three census points),
the output Jacobian's σ are cut at the largest gap (``symdisc.linalg.gap_cut``) and the largest σ below the
cut — the noise of the null directions — is reported in units of ε·σ_max, beside √max(N, p) (the floor
factor the gap cut uses) and max(N, p) (MATLAB's / numpy's rank tolerance factor).

    python benchmarks/census_noise.py [--out benchmarks/results/census_noise.json]
"""

from __future__ import annotations

import argparse
import datetime
import math
import os
import platform
import shlex
import sys

CASES = [("mlp", dict(dims="32,64,10", act="relu", bias=True), 288),
         ("mlp", dict(dims="16,32,8", act="relu", bias=True), 128),
         ("mlp", dict(dims="8,16,16,4", act="leakyrelu"), 128),
         ("mlp", dict(dims="3,4,2", act="linear", bias=True), 256),
         ("mlp", dict(dims="20,40,40,10", act="linear"), 512),
         ("layernorm-mlp", dict(dims="16,8,4"), 64),
         ("layernorm-mlp", dict(dims="32,32,16"), 128),
         ("layernorm-linear", dict(dims="16,16"), 64),
         ("tiny-transformer", {}, 8)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="benchmarks/results/census_noise.json")
    args = ap.parse_args(argv)
    import torch

    from symdisc import zoo
    from symdisc.architecture import make_generator
    from symdisc.io import check_writable, write_json
    from symdisc.jacobians import output_jacobian
    from symdisc.linalg import gap_cut

    check_writable(args.out)
    torch.set_num_threads(1)
    eps = torch.finfo(torch.float64).eps
    rows = []
    for name, kw, B in CASES:
        arch = zoo.get(name, **kw).to(dtype=torch.float64)
        p = arch.num_params
        for j in range(3):  # the census's points (seed 0)
            theta = arch.sample_params(make_generator(0, 0, j))
            X, _ = arch.sample_data(B, make_generator(0, 1, j, B))
            J = output_jacobian(arch, theta, X)
            s = torch.linalg.svdvals(J.T if J.shape[0] < J.shape[1] else J)
            c = gap_cut(s, p, J.shape[0])
            if c.rank >= len(s):
                continue
            rows.append({"case": f"{name} {kw}", "N": J.shape[0], "p": p, "point": j, "null_dim": p - c.rank,
                         "log10_sigma_r_over_max": round(math.log10(float(s[c.rank - 1] / s[0])), 2),
                         "noise_over_eps_sigma_max": round(float(s[c.rank] / s[0]) / eps, 2),
                         "sqrt_max_N_p": round(math.sqrt(max(J.shape)), 1), "max_N_p": max(J.shape)})
            print(rows[-1], flush=True)
    noise = [r["noise_over_eps_sigma_max"] for r in rows]
    margin = [r["sqrt_max_N_p"] / r["noise_over_eps_sigma_max"] for r in rows]
    write_json(args.out, {
        "benchmark": "census_noise",
        "command": " ".join(shlex.quote(a) for a in ["python", os.path.relpath(sys.argv[0]) if sys.argv[0] else
                                                      "census_noise.py", *(sys.argv[1:] if argv is None else argv)]),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "torch_version": torch.__version__, "python_version": platform.python_version(), "threads": 1,
        "rows": rows, "noise_over_eps_sigma_max_range": [min(noise), max(noise)],
        "floor_margin_sqrt_max_over_noise_range": [round(min(margin), 1), round(max(margin), 1)],
    })
    print(f"wrote {args.out}; noise / (ε σ_max) in [{min(noise)}, {max(noise)}]")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
