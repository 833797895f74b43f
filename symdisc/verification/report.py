"""The verification report: medians over the held-out draws, each field's class, and a plain verdict.

Every report has the same keys; a metric the symmetry cannot supply (or that was skipped) is null and
``unavailable`` says why.  ``found`` is true when at least one field is invariant on held-out data.
"""

from __future__ import annotations

import math
import statistics

import torch

from symdisc.discovery.learned import LearnedSymmetry
from symdisc.verification.config import HELD_OUT_STREAM, INDEPENDENT, INVARIANT


def _med(xs) -> float | None:
    xs = [float(x) for x in xs]
    return float(statistics.median(xs)) if xs else None


def _exactness(flags: list, conditions: list[str]) -> dict:
    """Whether the action was exact at every held-out draw (None: unknown), with the first draw's reason."""
    exact = None if None in flags else all(flags)
    return {"exact": exact, "exact_draws": sum(f is True for f in flags), "condition": conditions[0]}


def _curves(curve: dict) -> dict:
    out = {}
    for kind, (own, rand) in curve.items():
        ml, mr = _med(own), _med(rand)
        out[kind] = {"learned_median": ml, "random_median": mr, "ratio": ml / mr if ml is not None and mr else None}
    return out


def _fields(rows: dict, k: int, skipped: bool = False) -> list[dict]:
    inv, inv_out = torch.stack(rows["inv"]), torch.stack(rows["inv_out"])  # (draws, B, k), (draws, k)
    null_out, null_loss = torch.stack(rows["null_out"]), torch.stack(rows["null_loss"])
    known_share = torch.stack(rows["known_share"])
    fields = []
    for i in range(k):
        r_loss, r_out = inv[:, :, i].median().item(), inv_out[:, i].median().item()
        cls = "functional" if r_out <= INVARIANT else ("loss-only" if r_loss <= INVARIANT else "not invariant")
        fields.append({
            "index": i, "invariance_median": r_loss, "output_residual_median": r_out, "class": cls,
            "null_share_output": null_out[:, i].median().item(), "null_share_loss": null_loss[:, i].median().item(),
            "known_share": known_share[:, i].median().item(),
            "novelty": math.sqrt(max(0.0, 1.0 - known_share[:, i].median().item())),
            "data_dependence": torch.stack(rows["ddep"])[:, i].median().item() if rows["ddep"] else
            (None if skipped else 0.0),
        })
    return fields


def _select(fields: list[dict], xis: list[torch.Tensor], prior: tuple[int, ...] = ()) -> dict:
    """Mark the verified fields (invariant, then greedily independent: ``prior`` first, then the most invariant
    first); see run.py."""
    order = sorted((f["index"] for f in fields if f["class"] != "not invariant"),
                   key=lambda i: (i not in prior, fields[i]["invariance_median"]))
    kept: list[int] = []
    for f in fields:
        f["independence"], f["verified"] = None, False
    for i in order:
        if kept:
            dist = [(x[:, i] - (Q := torch.linalg.qr(x[:, kept])[0]) @ (Q.T @ x[:, i])).norm().item() for x in xis]
            fields[i]["independence"] = float(statistics.median(dist))
        else:
            fields[i]["independence"] = 1.0
        if fields[i]["independence"] >= INDEPENDENT:
            kept.append(i)
            fields[i]["verified"] = True
    k = len(fields)
    return {"indices": sorted(kept), "count": len(kept), "of": k,
            "summary": f"{len(kept)} of {k} fields verified" + ("; kept" if 0 < len(kept) < k else ""),
            "rule": f"invariant (median residual ≤ {INVARIANT}) and independent (median distance from the span "
                    f"of the fields kept before ≥ {INDEPENDENT})"}


def summarise(sym, arch, batch, cfg, rows, comp, curve, missing: dict[str, str]) -> dict:
    k = sym.num_generators
    inv, inv_out = torch.stack(rows["inv"]), torch.stack(rows["inv_out"])
    skipped = sym.data_dependent and "data_dependence_median" in missing  # structure=False, or token inputs
    fields = _fields(rows, k, skipped)
    verified = _select(fields, rows["xi"], cfg.prior)

    def mean_cos2(key):
        cs = [c.mean().item() for c in rows[key] if c.numel()]
        return _med(cs) if cs else None

    counts = {c: sum(f["class"] == c for f in fields) for c in ("functional", "loss-only", "not invariant")}
    in_known = sum(f["known_share"] >= 0.99 for f in fields)
    report = {
        "batch_size": batch, "draws": cfg.draws, "seed": cfg.seed, "held_out_stream": HELD_OUT_STREAM,
        "num_generators": k, "num_params": arch.num_params,
        "symmetry": sym.describe(),
        "exactness": _exactness(rows["exact"], rows["condition"]),
        "invariance": {"median": inv.median().item(), "p90": inv.flatten().quantile(0.9).item(),
                       "output_median": inv_out.median().item()},
        "curves": _curves(curve),
        "identity_error_median": _med(rows["ident"]),
        "composition_error_median": {str(t): _med(v) for t, v in comp.items()},
        "bracket_residual_median": _med(rows["bracket"]),
        "closure_residual_median": _med(rows["closure"]),
        "data_dependence_median": None if skipped else _med([f["data_dependence"] for f in fields]),
        "census": {"output_null_dim": int(statistics.median_low(rows["null_dims_out"])),
                   "loss_null_dim": int(statistics.median_low(rows["null_dims_loss"]))},
        "known_orbit_dim": int(statistics.median_low([int((c > 1e-12).sum()) for c in rows["cos2_known"]]))
        if any(c.numel() for c in rows["cos2_known"]) else 0,
        "principal_angles_mean_cos2": {"output_null": mean_cos2("cos2_null_out"),
                                       "loss_null": mean_cos2("cos2_null_loss"), "known": mean_cos2("cos2_known")},
        "fields": fields,
        "verified": verified,
        "counts": {**counts, "in_known_span": in_known, "outside_known_span": k - in_known},
        "unavailable": missing,
    }
    learned = isinstance(sym, LearnedSymmetry)
    report["found"], report["verdict"] = _verdict(report, "learned fields" if learned else f"fields of {sym.name}",
                                                  "this training" if learned else "this action")
    return report


def _verdict(r: dict, fields: str, source: str) -> tuple[bool, str]:
    """(found, one sentence): found when some field is invariant where the census leaves room for one."""
    c, k, B = r["counts"], r["num_generators"], r["batch_size"]
    if r["census"]["loss_null_dim"] == 0 and r["census"]["output_null_dim"] == 0:
        return False, (f"no symmetry found: at batch size {B} the census null dimension is 0 (outputs and "
                       f"per-sample losses), so no continuous symmetry exists there; the {k} {fields} are not "
                       f"symmetries (median invariance residual {r['invariance']['median']:.2g})")
    invariant = c["functional"] + c["loss-only"]
    if invariant == 0:
        return False, (f"no symmetry found: none of the {k} {fields} is invariant on held-out data at batch size "
                       f"{B} (median residual {r['invariance']['median']:.2g} > {INVARIANT}), although the census "
                       f"shows {r['census']['loss_null_dim']} loss-level null directions there: symmetries exist "
                       f"that {source} did not reach")
    return True, (f"{invariant} of {k} {fields} are invariant on held-out data at batch size {B}: "
                  f"{c['functional']} functional (keep the outputs), {c['loss-only']} loss-only; "
                  f"{c['in_known_span']} lie in the known symmetries' span, {c['outside_known_span']} outside it "
                  f"(census null dimension: outputs {r['census']['output_null_dim']}, losses "
                  f"{r['census']['loss_null_dim']}); {r['verified']['summary']} (invariant and independent)")
