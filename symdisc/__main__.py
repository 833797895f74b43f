"""``python -m symdisc``: the same command line as ``symdisc``."""

from symdisc.cli.main import run

if __name__ == "__main__":
    run()
