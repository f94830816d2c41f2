"""The layout is the architecture: the import graph of `codeact` has no cycles and no upward arrow.

`LAYERS` is the one place where the order is written, bottom to top; a module may import from its
own layer or below. Every import counts, also those inside functions (a lazy import is still a
dependency). Code that runs inside the sandbox (`sandbox/guest/`) imports only the standard
library and its siblings, because it starts in a bare interpreter inside the sandbox.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "codeact"

LAYERS: list[tuple[str, ...]] = [
    ("codeact.errors", "codeact._optional", "codeact._version", "codeact._children", "codeact._loading"),
    ("codeact.models",),
    ("codeact.tools",),
    ("codeact.sandbox",),
    ("codeact.runs",),
    ("codeact.agent", "codeact.events"),
    ("codeact.batch.pool", "codeact.batch.results"),  # the engine bench runs on: no tasks, no agents
    ("codeact.bench",),
    ("codeact.batch", "codeact.export"),
    ("codeact.mcp_server",),  # runs agents for MCP hosts; the CLI serves it
    ("codeact.server",),  # the agent server and its page (`codeact serve`)
    ("codeact.cli", "codeact.__main__"),
    ("codeact",),  # the root package re-exports the public names
]
GUEST = "codeact.sandbox.guest"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _is_package(name: str) -> bool:
    return MODULES[name].name == "__init__.py"


def _imports(name: str) -> set[str]:
    """The codeact modules `name` imports, resolved to modules (not to the names they hold)."""
    path = MODULES[name]
    package = name if _is_package(name) else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            targets = [f"{module}.{alias.name}" if f"{module}.{alias.name}" in MODULES else module
                       for alias in node.names]
        else:
            continue
        found.update(t for t in targets if t in MODULES and t != name)
    return found


GRAPH = {name: _imports(name) for name in MODULES}


def _layer(name: str) -> int:
    best, best_len = None, -1
    for index, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if (name == prefix or name.startswith(prefix + ".")) and len(prefix) > best_len:
                best, best_len = index, len(prefix)
    if best is None:
        raise AssertionError(f"{name} is in no layer: add it to LAYERS in {__file__}")
    return best


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
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


def test_every_module_has_a_layer() -> None:
    for name in MODULES:
        _layer(name)


def test_no_import_cycles_between_modules() -> None:
    # A package's __init__ re-exports its modules; the cycles that matter are between modules.
    modules_only = {
        name: {d for d in deps if not _is_package(d)} for name, deps in GRAPH.items() if not _is_package(name)
    }
    assert _cycles(modules_only) == []


def test_no_upward_imports() -> None:
    upward = sorted(
        f"{name} -> {dep}" for name, deps in GRAPH.items() for dep in deps if _layer(dep) > _layer(name)
    )
    assert upward == []


@pytest.mark.skipif(GUEST not in MODULES, reason="no sandbox/guest package in this tree")
def test_guest_code_imports_only_the_standard_library_and_its_siblings() -> None:
    for name, path in MODULES.items():
        if not (name == GUEST or name.startswith(GUEST + ".")):
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                roots = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                roots = [node.module or ""]
            else:
                continue  # relative imports stay among siblings
            for module in roots:
                top = module.split(".")[0]
                ok = top in sys.stdlib_module_names or module == GUEST or module.startswith(GUEST + ".")
                assert ok, f"{name} imports {module}: guest code may use only the standard library"
