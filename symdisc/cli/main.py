"""Entry point: ``symdisc`` with subcommands; bad input ends in one line on stderr and exit code 2."""

from __future__ import annotations

import os
import sys

import typer

from symdisc.cli import zoo_cmd
from symdisc.cli.census_cmd import census_command
from symdisc.cli.discover_cmd import discover_command, export_command, verify_command
from symdisc.cli.teleport_cmd import teleport_command
from symdisc.errors import SymdiscError

app = typer.Typer(
    help="Discover, verify and export parameter-space symmetries of neural networks.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(zoo_cmd.app, name="zoo")
app.command("census")(census_command)
app.command("discover")(discover_command)
app.command("verify")(verify_command)
app.command("export")(export_command)
app.command("teleport")(teleport_command)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; return the exit code (0 ok, 2 bad input, 1 internal error)."""
    command = typer.main.get_command(app)
    try:
        command.main(args=argv, prog_name="symdisc", standalone_mode=False)
    except SymdiscError as e:
        print(f"symdisc: error: {e}", file=sys.stderr)
        return 2
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
