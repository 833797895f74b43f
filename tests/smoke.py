"""Running a registered experiment runner's smoke config the way ``python -m experiments run --smoke`` does."""

import json

from experiments import registry
from experiments.cli import execute


def smoke(name: str, tmp_path, group: str) -> dict:
    """The runner ``name`` (of results group ``group``) on its smoke config, seed 0, one thread: the document
    (strict JSON, no NaN) after its figure was drawn to ``tmp_path``."""
    r = registry.all_runners()[name]
    assert r.group == group and set(r.smoke) <= set(r.defaults)
    document = execute(r, r.configure(smoke=True), [0], threads=1, command="smoke")
    json.dumps(document, allow_nan=False)
    r.figure(document, tmp_path / f"{name}.png")
    assert (tmp_path / f"{name}.png").stat().st_size > 1000
    return document
