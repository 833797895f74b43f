"""The ``symdisc`` command line (typer)."""
