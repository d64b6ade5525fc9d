"""No import cycle in the package: each module imports alone, and the import graph is acyclic.

A cycle works until someone imports the modules in another order (or moves an import out of
the function it was hidden in); so the graph is built from every import in ``src/socialsearch``,
module-level or inside a function, and must have no cycle. Imports under ``if TYPE_CHECKING:``
are left out: they never run.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import socialsearch

SRC = Path(socialsearch.__file__).parent
PACKAGE = "socialsearch"


def _module_name(path: Path) -> str:
    parts = [PACKAGE, *path.relative_to(SRC).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(SRC.rglob("*.py"))}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement of ``tree`` except those under ``if TYPE_CHECKING:``."""
    found: list[ast.Import | ast.ImportFrom] = []
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node):
            stack.extend(node.orelse)
            continue
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append(node)
        stack.extend(ast.iter_child_nodes(node))
    return found


def _targets(name: str, path: Path, node: ast.Import | ast.ImportFrom) -> set[str]:
    """The package's modules an import statement of module ``name`` loads."""
    if isinstance(node, ast.Import):
        return {a.name for a in node.names if a.name in MODULES}
    if node.level:
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for _ in range(node.level - 1):
            package = package.rpartition(".")[0]
        base = f"{package}.{node.module}" if node.module else package
    else:
        base = node.module or ""
    # ``from X import a``: the submodule X.a when there is one, else a name from X itself.
    submodules = {f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in MODULES}
    from_base = any(f"{base}.{a.name}" not in MODULES for a in node.names)
    return submodules | ({base} if from_base and base in MODULES else set())


def import_graph() -> dict[str, set[str]]:
    """module → the package's modules it imports (anywhere in its code)."""
    graph: dict[str, set[str]] = {}
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        edges: set[str] = set()
        for node in _imports(tree):
            edges |= _targets(name, path, node)
        edges.discard(name)
        graph[name] = edges
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a path that ends where it starts, or ``None``."""
    state: dict[str, int] = {}  # 1: on the path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt):], nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state:
            found = visit(start)
            if found:
                return found
    return None


def test_the_package_import_graph_has_no_cycle() -> None:
    graph = import_graph()
    assert "socialsearch.ledger.chain" in graph and "socialsearch.ledger.integrity" in graph
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_cycle_finder_finds_the_cycle_the_ledger_had() -> None:
    # audit -> _integrity -> _ledger_schema -> audit, one edge inside a function: the shape of the old cycle.
    graph = {"audit": {"errors"}, "_integrity": {"_ledger_schema", "audit"}, "_ledger_schema": {"audit"},
             "errors": set()}
    assert find_cycle(graph) is None
    graph["audit"].add("_integrity")
    assert find_cycle(graph) == ["_integrity", "_ledger_schema", "audit", "_integrity"]
    source = "def verify():\n    from ._integrity import verify_tables\n"
    [node] = _imports(ast.parse(source))
    MODULES.setdefault("socialsearch._integrity", SRC / "_integrity.py")
    try:
        assert _targets("socialsearch.audit", SRC / "audit.py", node) == {"socialsearch._integrity"}
    finally:
        del MODULES["socialsearch._integrity"]


def _import_alone(module: str) -> tuple[str, int, str]:
    proc = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True, text=True, timeout=120,
                          check=False)
    return module, proc.returncode, proc.stderr[-2000:]


@pytest.mark.parametrize("prefix", ["socialsearch.ledger", "socialsearch"])
def test_every_module_imports_alone_in_a_fresh_interpreter(prefix: str) -> None:
    if prefix == "socialsearch":
        modules = [m for m in MODULES if not m.startswith("socialsearch.ledger") and m != "socialsearch.__main__"]
    else:
        modules = [m for m in MODULES if m.startswith(prefix)]
    with ThreadPoolExecutor(max_workers=2) as pool:
        failed = [(m, err) for m, code, err in pool.map(_import_alone, modules) if code != 0]
    assert failed == []
