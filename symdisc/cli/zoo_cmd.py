"""``symdisc zoo list|show|build``: the architectures symdisc knows, their known symmetries, and the catalogue."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from symdisc import zoo
from symdisc.cli.common import ACT, BIAS, DEVICE, DIMS, JSON, LOSS, SKIP, VARIANT, emit_json, load_architecture

app = typer.Typer(help="List and inspect the architecture zoo.", no_args_is_help=True)


@app.command("list")
def list_(json_out: bool = JSON) -> None:
    """List the registered architectures.

    JSON: {"architectures": [{"name", "summary", "source", "options", "defaults"}]}
    """
    items = [
        {"name": p.name, "summary": p.summary, "source": p.source, "options": p.options(),
         "defaults": {k: list(v) if isinstance(v, tuple) else v for k, v in p.defaults.items()}}
        for p in map(zoo.preset, zoo.names())
    ]
    if json_out:
        emit_json({"architectures": items})
        return
    table = Table("name", "summary", "source")
    for it in items:
        table.add_row(it["name"], it["summary"], it["source"])
    Console().print(table)


@app.command("show")
def show(
    name: str = typer.Argument(..., help="zoo preset, or FILE.py:FUNC"),
    act: str = ACT, dims: str = DIMS, bias: bool = BIAS, loss: str = LOSS, skip: bool = SKIP,
    variant: str = VARIANT, json_out: bool = JSON,
) -> None:
    """Show an architecture's parameter layout and its known symmetries.

    JSON: {"architecture", "spec", "num_params", "layout": [{"name", "shape", "offset", "numel"}],
    "layout_hash", "loss", "default_batch_size", "samplewise", "coupling", "source",
    "known_symmetries": [{"name", "num_generators", "discrete", "data_dependent", "preserves", "group", …}]}
    """
    arch = load_architecture(name, act=act, dims=dims, bias=bias, loss=loss, skip=skip, variant=variant)
    info = {**arch.describe(), "known_symmetries": [s.describe() for s in arch.known_symmetries()]}
    if json_out:
        emit_json(info)
        return
    con = Console()
    con.print(f"[bold]{info['architecture']}[/] p = {info['num_params']}  loss = {info['loss']}  "
              f"default batch = {info['default_batch_size']}  layout hash {info['layout_hash']}")
    con.print(info["source"])
    lt = Table("parameter", "shape", "offset")
    for e in info["layout"]:
        lt.add_row(e["name"], "×".join(map(str, e["shape"])), str(e["offset"]))
    con.print(lt)
    st = Table("known symmetry", "k", "kind", "preserves", "acts on")
    for s in info["known_symmetries"]:
        kind = "discrete" if s["discrete"] else ("data-dependent" if s["data_dependent"] else "continuous")
        st.add_row(s["name"], str(s["num_generators"]), kind, s["preserves"], ", ".join(s.get("acts_on", [])))
    con.print(st)


@app.command("build")
def build(
    out: Path = typer.Option(Path("zoo/catalogue"), "--out", help="catalogue directory (one subdirectory per "
                                                                  "architecture, README.md the index)"),
    names: str = typer.Option(None, "--names", help="comma-separated presets to (re)build (default: all)"),
    steps: int = typer.Option(300, "--steps", help="discovery training steps per architecture"),
    verify_draws: int = typer.Option(8, "--verify-draws", help="held-out draws of each learned symmetry's "
                                                               "verification"),
    force: bool = typer.Option(False, "--force", help="rebuild entries that exist (default: keep them)"),
    device: str = DEVICE,
    json_out: bool = JSON,
) -> None:
    """Build the zoo catalogue: for every registered architecture its census, its known symmetries (verified),
    the symmetries discovery learns on it (artefact, held-out verification, figures), a Markdown card, and the
    index (symdisc/catalogue.py).  An existing entry is kept unless --force; each is built aside and moved into
    place whole.

    JSON: {"out", "built" (names built now), "kept" (names left as they were), "entries" (every name in the
    index)}
    """
    from symdisc.catalogue import build as build_catalogue
    from symdisc.devices import resolve_device

    con = Console(stderr=True)
    dev = str(resolve_device(device))
    chosen = [n.strip() for n in names.split(",") if n.strip()] if names else None
    report = build_catalogue(out, chosen, steps=steps, verify_draws=verify_draws, force=force, device=dev,
                             progress=None if json_out else lambda name, what: con.print(f"{what} {name} …"))
    if json_out:
        emit_json(report)
        return
    Console().print(f"built {len(report['built'])}, kept {len(report['kept'])} → {report['out']}/README.md")
