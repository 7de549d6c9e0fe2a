"""The house rules of ``src/lhcml`` (ARCHITECTURE.md, "Import direction"), read from the
modules' own import statements with ``ast`` (every import counts: module level, inside
functions and under ``TYPE_CHECKING``, because each is a dependency someone will one day
hoist to the top):

- no import circle between modules;
- packages import only packages of lower layers (:data:`LAYERS`);
- no source file over 800 lines.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

#: Top-level packages of ``lhcml``, highest layer first. A package may import its own
#: modules and any package of a *lower* layer, never one of its own layer or above.
#: ``lhcml`` is the root ``__init__`` (the public ``Event`` and ``__version__``).
LAYERS: tuple[frozenset[str], ...] = (
    frozenset({"cli"}),
    frozenset({"explain"}),
    frozenset({"reco", "fitting", "anomaly"}),
    frozenset({"gnn"}),
    frozenset({"seeding", "jets"}),
    frozenset({"simulation", "metrics"}),
    frozenset({"io", "lhcml", "portable"}),
    frozenset({"data", "_device"}),
    frozenset({"errors", "_pool"}),
)
MAX_LINES = 800


def modules(root: Path, package: str = "lhcml") -> dict[str, Path]:
    """``{"lhcml.gnn.features": path, "lhcml.gnn": path/__init__.py, ...}``."""
    out = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def imports(name: str, path: Path, known: dict[str, Path]) -> Iterator[tuple[str, int]]:
    """``(imported module, line)`` for every import of a module of ``known`` in ``path``.

    ``from a.b import c`` is an import of ``a.b.c`` when that is a module, else of ``a.b``.
    """
    root = name.split(".")[0]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]

    def nearest(target: str) -> str | None:
        while target and target not in known:
            target = target.rpartition(".")[0]
        return target or None

    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == root and (t := nearest(alias.name)):
                    yield t, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            if module.split(".")[0] != root:
                continue
            for alias in node.names:
                full = f"{module}.{alias.name}"
                t = full if full in known else nearest(module)
                if t:
                    yield t, node.lineno


def import_graph(root: Path, package: str = "lhcml") -> dict[str, dict[str, int]]:
    """``{module: {imported module: first line}}`` inside ``package``."""
    known = modules(root, package)
    graph: dict[str, dict[str, int]] = {}
    for name, path in known.items():
        deps: dict[str, int] = {}
        for target, line in imports(name, path, known):
            if target != name:
                deps.setdefault(target, line)
        graph[name] = deps
    return graph


def circles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start, deps in graph.items():
        if start in index:
            continue
        work = [(start, iter(deps))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(graph.get(child, {}))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def describe(component: list[str], graph: dict[str, dict[str, int]]) -> str:
    """The circle's imports, each with the line that makes it."""
    edges = [
        f"  {a} -> {b}  (line {graph[a][b]})"
        for a in component
        for b in sorted(graph[a])
        if b in component
    ]
    return "import circle between " + ", ".join(component) + ":\n" + "\n".join(edges)


def layer(module: str) -> tuple[str, int]:
    parts = module.split(".")
    top = parts[1] if len(parts) > 1 else "lhcml"
    for i, members in enumerate(LAYERS):
        if top in members:
            return top, i
    raise AssertionError(f"package lhcml.{top} is in no layer of tests/test_architecture.py")


# ---------------------------------------------------------------- the rules on lhcml


@pytest.fixture(scope="module")
def graph() -> dict[str, dict[str, int]]:
    return import_graph(SRC)


def test_no_import_circle(graph: dict[str, dict[str, int]]) -> None:
    found = circles(graph)
    assert not found, "\n".join(describe(c, graph) for c in found)


def test_packages_import_only_lower_layers(graph: dict[str, dict[str, int]]) -> None:
    wrong = []
    for module, deps in graph.items():
        top, rank = layer(module)
        for dep, line in deps.items():
            dep_top, dep_rank = layer(dep)
            if dep_top != top and dep_rank <= rank:
                wrong.append(f"{module} (line {line}) imports {dep}: lhcml.{dep_top} is not below")
    assert not wrong, "\n".join(wrong)


def test_every_package_has_a_layer(graph: dict[str, dict[str, int]]) -> None:
    tops = {layer(m)[0] for m in graph}
    assert tops == set().union(*LAYERS)


def test_no_source_file_over_800_lines() -> None:
    long = {
        str(p.relative_to(SRC)): n
        for p in SRC.rglob("*.py")
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert not long, f"files over {MAX_LINES} lines: {long}"


# ---------------------------------------------------------------- the checker itself


def _package(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


def test_the_checker_finds_circles_of_every_import_form(tmp_path: Path) -> None:
    root = _package(
        tmp_path,
        {
            "lhcml/__init__.py": "",
            "lhcml/a/__init__.py": "",
            # a -> b at module level, b -> c inside a function, c -> a as a relative import
            "lhcml/a/x.py": "from lhcml.a.y import f\n",
            "lhcml/a/y.py": "def f():\n    import lhcml.a.z\n",
            "lhcml/a/z.py": "from . import x\n",
            "lhcml/a/w.py": "from lhcml.a import x\n",
            "lhcml/b.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
            "    from lhcml.a.w import q\n",
        },
    )
    g = import_graph(root)
    assert g["lhcml.a.x"] == {"lhcml.a.y": 1}
    assert g["lhcml.a.y"] == {"lhcml.a.z": 2}
    assert g["lhcml.a.z"] == {"lhcml.a.x": 1}
    assert g["lhcml.b"] == {"lhcml.a.w": 3}
    assert circles(g) == [["lhcml.a.x", "lhcml.a.y", "lhcml.a.z"]]
    assert "lhcml.a.z -> lhcml.a.x" in describe(circles(g)[0], g)


def test_the_checker_passes_a_one_way_package(tmp_path: Path) -> None:
    root = _package(
        tmp_path,
        {
            "lhcml/__init__.py": "from lhcml.a import x\n",
            "lhcml/a/__init__.py": "from lhcml.a.x import f\n",
            "lhcml/a/x.py": "import numpy\nfrom lhcml.a.y import g\n\ndef f():\n    return g\n",
            "lhcml/a/y.py": "def g():\n    pass\n",
        },
    )
    assert circles(import_graph(root)) == []
