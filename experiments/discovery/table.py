"""The README's discovery table from the case results experiments/results/discovery/<case>.json."""

from __future__ import annotations

import json

from experiments.discovery.cases import CASES
from experiments.registry import RESULTS, seed_results


def _preset(d: dict) -> str:
    """The preset's name today: results recorded before issue 10 call the unconstrained preset "default"."""
    return "unconstrained" if d["preset"] == "default" else d["preset"]


def _fmt(x, spec=".1e"):
    return "–" if x is None else format(x, spec)


def markdown() -> str:
    """One row per committed case (file-name order): batch, k, steps, invariance, curve ratios, cos², counts."""
    lines = ["| case | B | k | steps | invariance (median) | curve ratio orbit / flow | mean cos² vs known span "
             "| fields: functional / loss-only / not invariant; in known span | verdict |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name in sorted(CASES, key=lambda n: f"{n}.json"):  # the order of the files in the directory
        path = RESULTS / "discovery" / f"{name}.json"
        if not path.is_file():
            continue
        d = seed_results(json.loads(path.read_text()))[0]
        c, r = d["counts"], d["curve_ratio"]
        lines.append(f"| `{d['case']}` ({_preset(d)}) | {d['batch_size']} | {d['k']} | {d['steps']} | "
                     f"{_fmt(d['invariance_median'])} | {_fmt(r['orbit'])} / {_fmt(r['flow'])} | "
                     f"{_fmt(d['principal_angles_mean_cos2']['known'], '.3f')} | "
                     f"{c['functional']} / {c['loss-only']} / {c['not invariant']}; {c['in_known_span']} | "
                     f"{d['verdict'].split(':')[0]} |")
    return "\n".join(lines)


def markdown_reach() -> str:
    """Issue 10's table: every case run with a k against its census — verified fields, invariance, the span
    against the census output null space, the share in the known span and the group law (bracket)."""
    lines = ["| case | preset | B | k | census (outputs) | verified | invariance (median) | curve ratio orbit "
             "| mean cos² vs census null | min null share (outputs) | mean known share | bracket residual |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for name in sorted(CASES):
        path = RESULTS / "discovery" / f"{name}.json"
        if not path.is_file():
            continue
        d = seed_results(json.loads(path.read_text()))[0]
        v = d["verification"]
        ver = v.get("verified")
        known = [f["known_share"] for f in v["fields"]]
        known_txt = "– (none known)" if not v.get("known_orbit_dim") else _fmt(sum(known) / len(known), ".3f")
        lines.append(f"| `{d['case']}` | {_preset(d)}{' (block ' + str(d['block']) + ')' if d.get('block') else ''} "
                     f"| {d['batch_size']} | {d['k']} | {v['census']['output_null_dim']} | "
                     f"{'–' if ver is None else ver['summary']} | {_fmt(d['invariance_median'])} | "
                     f"{_fmt(d['curve_ratio']['orbit'])} | "
                     f"{_fmt(d['principal_angles_mean_cos2']['output_null'], '.3f')} | "
                     f"{_fmt(d['null_share_output_min'], '.3f')} | {known_txt} | "
                     f"{_fmt(v['bracket_residual_median'], '.2g')} |")
    return "\n".join(lines)
