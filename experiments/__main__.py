"""``python -m experiments``: the entry point of the reproductions (``experiments.cli``, whose docstring
says why this is not a ``symdisc`` subcommand: the installed library neither imports nor ships them)."""

from experiments.cli import main

raise SystemExit(main())
