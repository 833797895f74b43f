"""The house rules that code can check: no import cycle in the library, the library never imports the studies,
and the version is written in one place."""

import ast
import importlib
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import symdisc

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "symdisc"


def modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def import_graph(mods: dict[str, Path]) -> dict[str, set[str]]:
    """Edges module → imported module, for every import statement (module level or inside a function: a lazy
    import only hides a cycle).  ``from a import b`` points at a.b when that is a module, else at a."""
    graph = {m: set() for m in mods}
    for name, path in mods.items():
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(path.read_text())):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")
                    base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base for a in node.names]
            graph[name] |= {t for t in targets if t in mods and t != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, found, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_no_import_cycle():
    assert cycles(import_graph(modules())) == []


def test_cycle_detector_finds_a_planted_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_library_never_imports_the_experiments():
    offenders = []
    for name, path in modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else []
            offenders += [f"{name} imports {n}" for n in names if n.split(".")[0] in ("experiments", "benchmarks")]
    assert offenders == []


def test_every_library_module_imports():
    for info in pkgutil.walk_packages(symdisc.__path__, "symdisc."):
        importlib.import_module(info.name)


def test_version_lives_in_one_place():
    hits = [p for p in PACKAGE.rglob("*.py") if re.search(r"__version__\s*=", p.read_text())]
    assert [p.name for p in hits] == ["_version.py"]
    assert 'dynamic = ["version"]' in (ROOT / "pyproject.toml").read_text()
    from importlib.metadata import version

    assert version("symdisc") == symdisc.__version__


def test_python_dash_m_symdisc():
    done = subprocess.run([sys.executable, "-m", "symdisc", "--help"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "census" in done.stdout and "teleport" in done.stdout
