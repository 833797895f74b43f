"""The report of a discovery run directory: what was learned, how it verified, and how training went.

Sections: the run (architecture, configuration, verdict); the census beside the learned span (bars: output and
loss null dimensions at the training batch, the known orbit dimension, the verified learned fields, those inside
and outside the known span); per-field classification (class, residuals, shares, novelty) with a residual chart;
the figures the run wrote (generators, exp(h), loss along learned against random curves); training curves
(metrics.jsonl: total loss and the invariance term against the step)."""

from __future__ import annotations

from pathlib import Path

from symdisc.io import read_log
from symdisc.report.html import figure, key_values, png, table

FIELD_COLUMNS = ["index", "class", "verified", "invariance_median", "output_residual_median", "null_share_output",
                 "known_share", "novelty", "data_dependence"]
RUN_FIGURES = (("generators.png", "generators h_k"), ("exp_generators.png", "exp(h_k)"),
               ("curves.png", "loss along the learned curves against random ones (held-out draws)"))


def _bars(card: dict, v: dict) -> bytes:
    import matplotlib.pyplot as plt
    import seaborn as sns

    c = v["counts"]
    labels = ["census: outputs", "census: losses", "known orbit", "learned: verified", "… in known span",
              "… outside it"]
    values = [v["census"]["output_null_dim"], v["census"]["loss_null_dim"], v.get("known_orbit_dim") or 0,
              v["verified"]["count"], c["in_known_span"], c["outside_known_span"]]
    sns.set_theme(style="whitegrid")
    fig, ax = plt.subplots(figsize=(7, 3.2))
    colors = ["#4c72b0", "#4c72b0", "#333333", "#c44e52", "#dd8452", "#8172b3"]
    ax.barh(labels[::-1], [x or 0 for x in values][::-1], color=colors[::-1])
    for i, x in enumerate(values[::-1]):
        ax.text((x or 0) + 0.1, i, str(x), va="center")
    ax.set_xlabel(f"dimension at batch {v['batch_size']} (p = {card['architecture']['num_params']})")
    ax.set_title("census null space and the learned span")
    return png(fig)


def _fields(v: dict) -> bytes:
    import matplotlib.pyplot as plt
    import pandas as pd
    import seaborn as sns

    df = pd.DataFrame([{"field": f["index"], "residual": max(f["invariance_median"], 1e-20), "class": f["class"]}
                       for f in v["fields"]])
    sns.set_theme(style="whitegrid")
    fig, ax = plt.subplots(figsize=(max(4, 0.35 * len(df) + 2), 3))
    sns.barplot(data=df, x="field", y="residual", hue="class", dodge=False, ax=ax)
    ax.set_yscale("log")
    ax.axhline(1e-3, color="k", ls="--", lw=1, label="invariance threshold 1e-3")
    ax.set_ylabel("median invariance residual")
    ax.legend(fontsize=8)
    return png(fig)


def _training(directory: Path) -> bytes | None:
    import matplotlib.pyplot as plt

    path = directory / "metrics.jsonl"
    if not path.is_file():
        return None
    rows = [r for r in read_log(path) if isinstance(r.get("step"), int)]  # lines cut by a killed run skipped
    if not rows:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(9, 3))
    for ax, key in zip(axes, ("loss", "invariance"), strict=True):
        steps = [r["step"] for r in rows if key in r]
        ax.plot(steps, [max(abs(r[key]), 1e-30) for r in rows if key in r])
        ax.set_yscale("log")
        ax.set_xlabel("step")
        ax.set_title(key)
    return png(fig)


def sections(directory: Path, card: dict) -> tuple[str, list[tuple[str, str]]]:
    arch, v = card["architecture"], card.get("verification")
    summary = (card.get("training") or {}).get("summary") or {}
    config = (card.get("training") or {}).get("config") or {}
    run = key_values({"architecture": arch["name"], "parameters p": arch["num_params"],
                      "generators k": card["generators"]["k"], "generator kind": card["generators"]["kind"],
                      "preset": config.get("preset"), "steps": summary.get("steps"), "stopped": summary.get("stopped"),
                      "training seconds": summary.get("seconds"), "seed": card.get("seed"),
                      "verdict": v["verdict"] if v else "not verified (run `symdisc verify` on this directory)"})
    out = [("Run", run)]
    if v:
        out.append(("Census and the learned span", figure(_bars(card, v), "null dimensions at the training batch "
                                                          "beside the verified learned fields")))
        rows = [{c: (f.get(c) if c != "verified" else f["index"] in v["verified"]["indices"]) for c in FIELD_COLUMNS}
                for f in v["fields"]]
        out.append(("Per-field classification", table(rows, FIELD_COLUMNS)
                    + figure(_fields(v), "median invariance residual per field, by class")))
    shown = "".join(figure((directory / name).read_bytes(), caption) for name, caption in RUN_FIGURES
                    if (directory / name).is_file())
    if shown:
        out.append(("Figures of the run", shown))
    curves = _training(directory)
    if curves:
        out.append(("Training curves", figure(curves, "total loss and the invariance term against the step")))
    return f"Discovery: {arch['name']} (k = {card['generators']['k']})", out
