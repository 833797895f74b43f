"""Entry point: ``symdisc`` with subcommands.  Every error a user can cause ends in one line on stderr
and an exit code that says which kind (docs/cli.md): 2 bad input or configuration, 3 bad or corrupted
artefact / file, 4 numerical failure (divergence, non-finite values), 5 a sweep or benchmark run with failed
tasks or cases (the other results kept), 1 internal error, 130 aborted."""

from __future__ import annotations

import os
import sys
import warnings

import typer

from symdisc.cli import zoo_cmd
from symdisc.cli.bench_cmd import bench_command
from symdisc.cli.census_cmd import census_command
from symdisc.cli.dcs_cmd import dcs_command
from symdisc.cli.discover_cmd import discover_command, export_command, verify_command
from symdisc.cli.known_cmd import known_command
from symdisc.cli.lift_cmd import lift_command
from symdisc.cli.report_cmd import report_command
from symdisc.cli.rr_cmd import rr_command
from symdisc.cli.sweep_cmd import sweep_command
from symdisc.cli.teleport_cmd import teleport_command
from symdisc.errors import ArtefactError, NumericalError, PartialFailure, SymdiscError, SymdiscWarning

app = typer.Typer(
    help="Discover, verify and export parameter-space symmetries of neural networks.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(zoo_cmd.app, name="zoo")
app.command("census")(census_command)
app.command("known")(known_command)
app.command("discover")(discover_command)
app.command("verify")(verify_command)
app.command("export")(export_command)
app.command("teleport")(teleport_command)
app.command("lift")(lift_command)
app.command("rr")(rr_command)
app.command("dcs")(dcs_command)
app.command("sweep")(sweep_command)
app.command("bench")(bench_command)
app.command("report")(report_command)


EXIT_CODES = {ArtefactError: 3, NumericalError: 4, PartialFailure: 5}  # InputError, any other SymdiscError: 2


def exit_code(error: SymdiscError) -> int:
    """The CLI's exit code for a library error: 2 input, 3 artefact, 4 numerical."""
    return next((code for cls, code in EXIT_CODES.items() if isinstance(error, cls)), 2)


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """symdisc's warnings as one ``symdisc: warning:`` line on stderr (others as Python prints them)."""
    if issubclass(category, SymdiscWarning):
        print(f"symdisc: warning: {message}", file=sys.stderr)
    else:
        print(warnings.formatwarning(message, category, filename, lineno, line), end="", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; return the exit code (0 ok, 2 input, 3 artefact, 4 numerical, 1 internal error)."""
    command = typer.main.get_command(app)
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _one_line_warning
            command.main(args=argv, prog_name="symdisc", standalone_mode=False)
    except SymdiscError as e:
        print(f"symdisc: error: {e}", file=sys.stderr)
        return exit_code(e)
    except typer.Exit as e:
        return e.exit_code
    except typer.Abort:
        print("symdisc: aborted", file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001 - last resort: one line, traceback on request
        if hasattr(e, "format_message") and hasattr(e, "exit_code"):  # the CLI parser's usage errors
            message = e.format_message()
            if message:  # an empty message means the help text was already shown (no arguments)
                print(f"symdisc: error: {message} (see --help)", file=sys.stderr)
            return 2
        if os.environ.get("SYMDISC_DEBUG"):
            raise
        print(f"symdisc: internal error: {type(e).__name__}: {e} (set SYMDISC_DEBUG=1 for a traceback)",
              file=sys.stderr)
        return 1
    return 0


def run() -> None:
    sys.exit(main())


if __name__ == "__main__":
    run()
