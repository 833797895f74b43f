"""Print the README's discovery table from experiments/results/discovery/*.json.

    python experiments/discovery_table.py
"""

import json
from pathlib import Path

RESULTS = Path(__file__).parent / "results" / "discovery"


def fmt(x, spec=".1e"):
    return "–" if x is None else format(x, spec)


def main() -> None:
    print("| case | B | k | steps | invariance (median) | curve ratio orbit / flow | mean cos² vs known span "
          "| fields: functional / loss-only / not invariant; in known span | verdict |")
    print("|---|---|---|---|---|---|---|---|---|")
    for path in sorted(RESULTS.glob("*.json")):
        d = json.loads(path.read_text())
        c, r = d["counts"], d["curve_ratio"]
        print(f"| `{d['case']}` ({d['preset']}) | {d['batch_size']} | {d['k']} | {d['steps']} | "
              f"{fmt(d['invariance_median'])} | {fmt(r['orbit'])} / {fmt(r['flow'])} | "
              f"{fmt(d['principal_angles_mean_cos2']['known'], '.3f')} | "
              f"{c['functional']} / {c['loss-only']} / {c['not invariant']}; {c['in_known_span']} | "
              f"{d['verdict'].split(':')[0]} |")


if __name__ == "__main__":
    main()
