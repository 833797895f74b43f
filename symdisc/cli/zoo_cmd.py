"""``symdisc zoo list|show``: the architectures symdisc knows and their known symmetries."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from symdisc import zoo
from symdisc.cli.common import ACT, BIAS, DIMS, JSON, LOSS, SKIP, VARIANT, emit_json, load_architecture

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
