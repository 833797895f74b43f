"""The reports of optimizer runs: teleportation (``symdisc teleport --out FILE.json``), Ridge Rider (``symdisc rr
--out DIR``: its archive) and DCS (``symdisc dcs --out DIR``): their curves and tables."""

from __future__ import annotations

from symdisc.report.html import figure, key_values, png, table


def teleport(doc: dict) -> tuple[str, list[tuple[str, str]]]:
    """Both arms' training loss and ‖∇L‖² against the step, the summary, and every teleport event."""
    import matplotlib.pyplot as plt

    plain, tele = doc["plain"], doc["teleport"]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
    for ax, key, name in zip(axes, ("loss", "grad_norm_sq"), ("training loss", "‖∇L‖²"), strict=True):
        for arm, label in ((plain, "without teleports"), (tele, "with teleports")):
            ax.plot(arm["step"], [max(x, 1e-30) if x is not None else float("nan") for x in arm[key]], label=label)
        for e in tele["teleports"]:
            ax.axvline(e["step"], color="crimson", lw=0.8, ls=":")
        ax.set_yscale("log")
        ax.set_xlabel("optimizer step")
        ax.set_title(name)
        ax.legend(fontsize=8)
    events = [{"step": e["step"], "loss before": e["loss_before"], "loss after": e["loss_after"],
               "objective before": e["objective_before"], "objective after": e["objective_after"],
               "accepted": e["steps"].get("accepted"), "corrected": e["steps"].get("corrected"),
               "refused": e["steps"].get("refused"), "exact": e["exactness"].get("exact"), "seconds": e["seconds"]}
              for e in tele["teleports"]]
    sym = doc.get("symmetry") or {}
    return (f"Teleportation: {doc['architecture']['architecture']} along {sym.get('name', '?')}",
            [("Summary", key_values(doc["summary"])),
             ("Training curves", figure(png(fig), "full training set, both arms from the same θ₀ and batches; "
                                                  "dotted lines: teleports")),
             ("Teleport events", table(events)),
             ("Failures", table(tele.get("teleport_failures") or []))])


def ridge(archive: dict, options: dict, name: str) -> tuple[str, list[tuple[str, str]]]:
    """The archive's rides: loss at their start and end, the tree's shape, and each node."""
    import matplotlib.pyplot as plt

    nodes = archive["nodes"]
    done = [n for n in nodes if n.get("loss_end") is not None]
    fig, ax = plt.subplots(figsize=(8, 3.4))
    for n in done:
        ax.plot([0, 1], [n["loss_start"], n["loss_end"]], color="#4c72b0" if n.get("leaf") else "#999", lw=1)
    ax.set_xticks([0, 1], ["ride start", "ride end"])
    ax.set_ylabel("loss")
    ax.set_title(f"{len(done)} rides (blue: leaves)")
    columns = ["id", "parent", "fingerprint", "sign", "lam_start", "loss_start", "loss_end", "steps", "end_reason",
               "leaf", "merged_into"]
    return (f"Ridge Rider: {options.get('target', name)}",
            [("Run", key_values({k: options.get(k) for k in ("target", "symmetry", "seed", "budget")}
                                | {"nodes": len(nodes), "finished rides": len(done)})),
             ("Rides", figure(png(fig), "loss at the start and the end of every ride")),
             ("Archive", table([{c: n.get(c) for c in columns} for n in nodes], columns))])


def dcs(doc: dict) -> tuple[str, list[tuple[str, str]]]:
    """The constraint's result: losses, exact zeros per parameter block, and the plan's decisions."""
    import matplotlib.pyplot as plt

    res = doc["result"]
    blocks = [{"parameter": name, **b} for name, b in res.get("blocks", {}).items()]
    fig, ax = plt.subplots(figsize=(7, max(2.5, 0.35 * len(blocks) + 1)))
    ax.barh([b["parameter"] for b in blocks], [b.get("zero_fraction") or 0 for b in blocks], color="#55a868")
    ax.set_xlim(0, 1)
    ax.set_xlabel("fraction of entries exactly zero after materialize()")
    summary = {k: res.get(k) for k in ("alpha", "steps", "optimizer", "lr", "loss_start", "loss_train", "loss_test",
                                       "materialized_loss_test", "max_output_difference", "zero_fraction", "seconds")}
    return (f"DCS: {doc.get('target')} ({doc.get('constraint')})",
            [("Result", key_values(summary)),
             ("Zeros per parameter", figure(png(fig), "exact zeros in the materialized model, per parameter")),
             ("Blocks", table(blocks))])
