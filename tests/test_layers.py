"""The layers of verb/ stay layered: every import and cimport flows downward, and none closes a
cycle.

    core (0)  <-  server (1)  <-  app, client, cluster (2)  <-  verb, cli, demo, testing, ... (3)

A module may import modules of its own layer or of the layers below it. Every import counts:
module-level, inside functions, `cimport`, and what an `include`d .pxi file imports (it counts
for the .pyx that includes it). The parent package a submodule import runs first (importing
verb.core._frame runs verb/__init__.py) is not an edge: Python does that for any import.
The sources are read from the checkout (this file's repository), not from the installed wheel.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "verb"

LAYERS = {"core": 0, "server": 1, "app": 2, "client": 2, "cluster": 2, "asgi": 2}
TOP = 3  # verb/__init__.py and the modules beside it: entry points and re-exports

_CYTHON_IMPORT = re.compile(
    r"^[ \t]*(?:from\s+([\w.]+)\s+c?import\s+(\([^)]*\)|[^\n#]*)|c?import\s+([\w.]+))", re.M)
_INCLUDE = re.compile(r'^\s*include\s+"([^"]+)"', re.M)


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer_of(module: str) -> int:
    parts = module.split(".")
    return LAYERS.get(parts[1], TOP) if len(parts) > 1 and parts[1] in LAYERS else TOP


def _resolve(imported: str, names: list[str], modules: set[str]) -> set[str]:
    """The verb modules that `from imported import names` (or `import imported`) reaches."""
    found = set()
    for name in names:
        if f"{imported}.{name}" in modules:
            found.add(f"{imported}.{name}")
            continue
        if imported in modules:
            found.add(imported)
    if not names and imported in modules:
        found.add(imported)
    return found


def _python_imports(source: str, module: str, is_package: bool) -> list[tuple[str, list[str]]]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.extend((alias.name, []) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".")
                anchor = anchor if is_package else anchor[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            found.append((base, [alias.name for alias in node.names]))
    return found


def _cython_imports(source: str) -> list[tuple[str, list[str]]]:
    found = []
    for match in _CYTHON_IMPORT.finditer(source):
        if match.group(1):
            names = [n.strip().split(" as ")[0].strip()
                     for n in match.group(2).strip("()").split(",")]
            found.append((match.group(1), [n for n in names if n]))
        else:
            found.append((match.group(3), []))
    return found


def import_graph(root: Path = PACKAGE) -> dict[str, set[str]]:
    """module -> the verb modules it imports or cimports, for every module under `root`."""
    sources: dict[str, list[Path]] = {}
    for path in root.rglob("*"):
        if path.suffix in (".py", ".pyx", ".pxd"):
            sources.setdefault(module_name(path, root), []).append(path)
    modules = set(sources)
    graph: dict[str, set[str]] = {}
    for module, paths in sources.items():
        edges: set[str] = set()
        for path in paths:
            text = path.read_text()
            if path.suffix == ".py":
                pairs = _python_imports(text, module, path.name == "__init__.py")
            else:
                for include in _INCLUDE.findall(text):
                    text += "\n" + (path.parent / include).read_text()
                pairs = _cython_imports(text)
            for imported, names in pairs:
                if imported == root.name or imported.startswith(root.name + "."):
                    edges |= _resolve(imported, names, modules)
        edges.discard(module)
        graph[module] = edges
    return graph


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    return sorted(f"{module} (layer {layer_of(module)}) imports {target} (layer "
                  f"{layer_of(target)})"
                  for module, targets in graph.items() for target in targets
                  if layer_of(target) > layer_of(module))


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
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

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_graph_sees_every_layer_and_its_edges():
    graph = import_graph()
    assert {layer_of(m) for m in graph} == {0, 1, 2, TOP}
    # A few edges the parser must find: a cimport, an import through an included .pxi, a
    # relative-free function-level import, a Python import.
    assert "verb.core._deflate" in graph["verb.core._frame"]
    assert "verb.core.handshake" in graph["verb.server._server"]
    assert "verb.server.options" in graph["verb.cluster.pubsub"]
    assert "verb.server._transport" in graph["verb.client._client"]


def test_no_import_goes_up_a_layer():
    assert upward_imports(import_graph()) == []


def test_no_import_cycle():
    assert cycles(import_graph()) == []


def test_the_core_never_imports_asyncio():
    for path in (PACKAGE / "core").iterdir():
        if path.suffix in (".py", ".pyx", ".pxd"):
            assert not re.search(r"^\s*(import asyncio|from asyncio)", path.read_text(), re.M), path


@pytest.fixture
def bad_tree(tmp_path):
    """A small verb/ with an upward import (core -> app), a function-level import that closes
    a cycle (server <-> server), and a cimport through an included .pxi."""
    root = tmp_path / "verb"
    for folder in ("core", "server", "app"):
        (root / folder).mkdir(parents=True)
        (root / folder / "__init__.py").write_text("")
    (root / "__init__.py").write_text("")
    (root / "core" / "low.py").write_text("def f():\n    from verb.app import high\n")
    (root / "app" / "high.py").write_text("from verb.core import low\n")
    (root / "server" / "a.py").write_text("from verb.server.b import x\n")
    (root / "server" / "b.py").write_text("def x():\n    from . import a\n")
    (root / "server" / "_c.pyx").write_text('include "part.pxi"\n')
    (root / "server" / "part.pxi").write_text("from verb.app.high cimport thing\n")
    return root


def test_the_checks_catch_an_upward_import_and_a_cycle(bad_tree):
    graph = import_graph(bad_tree)
    assert upward_imports(graph) == [
        "verb.core.low (layer 0) imports verb.app.high (layer 2)",
        "verb.server._c (layer 1) imports verb.app.high (layer 2)",
    ]
    assert cycles(graph) == [["verb.app.high", "verb.core.low"], ["verb.server.a", "verb.server.b"]]
