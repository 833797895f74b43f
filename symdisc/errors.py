"""The one exception type symdisc raises for bad input; the CLI prints it as a single line."""


class SymdiscError(ValueError):
    """Bad input or an unsatisfiable request, with a message fit for a one-line report."""
