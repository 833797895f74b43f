"""``python -m experiments``: list, run and tabulate the paper reproductions (docs/experiments.md).

    python -m experiments list [--json]
    python -m experiments run NAME [--seeds N | --seed S] [--smoke] [--set KEY=VALUE ...] [--out PATH.json]
                                   [--force] [--json] [--threads T]
    python -m experiments table census_presets|census_detected|discovery|discovery_reach

``run`` calls the runner for seeds 0..N−1 (default: the runner's ``default_seeds``; 1 with ``--smoke``) or
for the one seed S, summarises over the seeds and writes ``{"runner", "config", "seeds", "command",
"seconds", "threads", "torch", "results": [one per seed], "summary"}`` atomically to
``experiments/results/<group>/<name>.json`` (``--smoke``: a new temporary directory), the figure beside
it as PNG.  It never overwrites a result (or an artefact a runner exports) unless ``--force``.  Errors
are one line, ``experiments: error: ...``, with symdisc's exit codes: 2 input, 3 artefact, 4 numerical.

Why ``python -m experiments`` and not a ``symdisc experiment`` subcommand: the studies are not part of
the library.  The installed package (pyproject packages ``symdisc*`` only) must neither import nor
ship them — they pin paper-specific protocols, data substitutes and committed result paths, and pull
in nothing a user of symdisc needs.  ``experiments/`` is not installed by pip, so a library subcommand
would import a package that a wheel install does not have and break there; this entry point lives with
the studies, runs from a checkout's root and uses only symdisc's public modules.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from experiments import registry
from symdisc.errors import InputError, SymdiscError

PROG = "experiments"
OUTPUT_ONLY = ("--force", "--json")  # flags left out of a result's "command": they do not change what is computed


class Parser(argparse.ArgumentParser):
    """argparse with one-line usage errors (exit code 2)."""

    def error(self, message: str):
        raise InputError(f"{message} (see --help)")


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog=f"python -m {PROG}", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True, parser_class=Parser)
    ls = sub.add_parser("list", help="the registered runners")
    ls.add_argument("--json", action="store_true", help="one JSON document: name, doc, result, defaults, smoke")
    run = sub.add_parser("run", help="run a runner over seeds, write its JSON and figure")
    run.add_argument("name")
    seeds = run.add_mutually_exclusive_group()
    seeds.add_argument("--seeds", type=int, default=None, help="run seeds 0..N-1 (default: the runner's)")
    seeds.add_argument("--seed", type=int, default=None, help="run the one seed S")
    run.add_argument("--smoke", action="store_true", help="the runner's seconds-long configuration (CI)")
    run.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                     help="override a config key (VALUE as JSON, else a string); repeatable")
    run.add_argument("--out", type=Path, default=None, help="JSON path (the PNG goes beside it)")
    run.add_argument("--force", action="store_true", help="overwrite an existing result (and exported artefact)")
    run.add_argument("--json", action="store_true", help="print the summary document on stdout")
    run.add_argument("--threads", type=int, default=1, help="torch threads (default 1: the committed runs)")
    table = sub.add_parser("table", help="print a README table from the committed results")
    table.add_argument("name", choices=sorted(TABLES))
    return p


def _census_table() -> str:
    from experiments.census.presets import markdown

    return markdown(_read(registry.RESULTS / "census_presets.json"))


def _detected_table() -> str:
    from experiments.census.detected import markdown

    return markdown(_read(registry.RESULTS / "census_detected.json"))


def _discovery_table() -> str:
    from experiments.discovery.table import markdown

    return markdown()


def _reach_table() -> str:
    from experiments.discovery.table import markdown_reach

    return markdown_reach()


def _rr_symmetry_table() -> str:
    from experiments.ridge.symmetric_rr import markdown

    return markdown(_read(registry.RESULTS / "ridge" / "rr_symmetry.json"))


TABLES = {"census_presets": _census_table, "census_detected": _detected_table, "discovery": _discovery_table,
          "discovery_reach": _reach_table, "rr_symmetry": _rr_symmetry_table}


def _read(path: Path) -> dict:
    from symdisc.errors import ArtefactError

    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise ArtefactError(f"no result file {path}") from None
    except json.JSONDecodeError as e:
        raise ArtefactError(f"{path} is not valid JSON: {e}") from None


def list_command(as_json: bool) -> None:
    rows = []
    for r in registry.all_runners().values():
        path = r.default_path(r.defaults).relative_to(registry.ROOT)
        rows.append({"name": r.name, "doc": r.doc, "group": r.group, "result": str(path),
                     "default_seeds": r.default_seeds, "defaults": r.defaults, "smoke": r.smoke})
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    width = max(len(r["name"]) for r in rows)
    for r in rows:
        print(f"{r['name']:<{width}}  {r['default_seeds']} seed(s)  {r['result']}\n{'':<{width}}  {r['doc']}")


def _seeds(runner: registry.Runner, args) -> list[int]:
    if args.seed is not None:
        return [args.seed]
    n = args.seeds if args.seeds is not None else (1 if args.smoke else runner.default_seeds)
    if n < 1:
        raise InputError(f"--seeds must be ≥ 1, got {n}")
    return list(range(n))


def _out_path(runner: registry.Runner, config: dict, args) -> Path:
    if args.out is not None:
        if args.out.suffix.lower() != ".json":
            raise InputError(f"--out {args.out}: expected a .json file name")
        return args.out
    if args.smoke:
        return Path(tempfile.mkdtemp(prefix=f"{PROG}-smoke-")) / f"{runner.result_stem(config)}.json"
    path = runner.default_path(config)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


@contextmanager
def torch_threads(n: int):
    """torch's intra-op thread count set to ``n`` for the block, restored after it."""
    import torch

    if n < 1:
        raise InputError(f"--threads must be ≥ 1, got {n}")
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def execute(runner: registry.Runner, config: dict, seeds: list[int], threads: int, command: str) -> dict:
    """The result document: every seed's ``run``, ``summarize`` over them, JSON-ready (non-finite → null)."""
    import torch

    from symdisc.io import json_ready
    from symdisc.progress import track

    t0 = time.perf_counter()
    with torch_threads(threads):
        results = [json_ready(runner.run(config, seed)) for seed in track(seeds, f"{runner.name}: seeds")]
    summary = runner.summarize(results, config)
    document = {"runner": runner.name, "config": config, "seeds": seeds, "command": command,
                "seconds": round(time.perf_counter() - t0, 1), "threads": threads, "torch": torch.__version__,
                "results": results, "summary": summary}
    return json_ready(document, runner.digits, nonfinite_to_null=True)


def run_command(args, argv: list[str]) -> dict:
    """Run the seeds, summarise, write the document and the figure; return the document without the results."""
    from symdisc.io import check_writable, write_json

    runner = registry.get(args.name)
    config = runner.configure(args.smoke, args.set)
    seeds = _seeds(runner, args)
    out = _out_path(runner, config, args)
    png = out.with_suffix(".png")
    existing = [p for p in [out, png, *(f for s in seeds for f in runner.outputs(config, s))] if p.exists()]
    if existing and not args.force:
        hint = " (or --out another path)" if existing[0] in (out, png) else ""
        raise InputError(f"{existing[0]} exists; pass --force to overwrite it{hint}")
    check_writable(out)
    command = shlex.join(["python", "-m", PROG, *(a for a in argv if a not in OUTPUT_ONLY)])
    document = execute(runner, config, seeds, args.threads, command)
    write_json(out, document)
    runner.figure(document, png)
    return {**{k: v for k, v in document.items() if k != "results"}, "json": str(out), "figure": str(png)}


def main(argv: list[str] | None = None) -> int:
    """Run the entry point; return the exit code (0 ok, 2 input, 3 artefact, 4 numerical, 130 aborted); any
    other exception is a bug in a runner and keeps its traceback."""
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        args = build_parser().parse_args(argv)
        if args.command == "list":
            list_command(args.json)
        elif args.command == "table":
            print(TABLES[args.name]())
        else:
            summary = run_command(args, argv)
            print(json.dumps(summary, indent=2) if args.json else
                  f"wrote {summary['json']} and its figure in {summary['seconds']:.0f} s")
    except SymdiscError as e:
        from symdisc.cli.main import exit_code  # symdisc's codes: 2 input, 3 artefact, 4 numerical

        print(f"{PROG}: error: {e}", file=sys.stderr)
        return exit_code(e)
    except KeyboardInterrupt:
        print(f"{PROG}: aborted", file=sys.stderr)
        return 130
    except SystemExit as e:  # --help
        return e.code if isinstance(e.code, int) else 0
    return 0
