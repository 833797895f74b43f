"""Paper reproductions on top of symdisc: every experiment of docs/teleport*.md, docs/discovery.md and
docs/census.md as a registered runner (``experiments.registry``), run by one entry point,
``python -m experiments`` (``experiments.cli``), from the repository root.

This package is not part of the installed library (pyproject packages ``symdisc*`` only) and nothing
under ``symdisc/`` imports it.  Results are committed under ``experiments/results/``.
"""
