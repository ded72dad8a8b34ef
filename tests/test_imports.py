"""The package's import structure: no cycles, layers that do not reach up, and light entry points.

The graph is read from the source with ``ast``, not by importing: an edge A -> B for each
``import B`` / ``from B import name`` in A (``from B import m`` is an edge to B.m where that is a
module). Imports inside ``if TYPE_CHECKING:`` never run and are left out. Importing B.m also runs
B's ``__init__``; that implicit edge is left out too, or every package that imports its own
submodules would count as a cycle.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

#: Lower layers: they know nothing of training. Not even inside a function may they import it.
BELOW_TRAIN = ("gankit.report", "gankit.metrics", "gankit.models", "gankit.losses", "gankit.data",
               "gankit.config")


@cache
def modules() -> dict[str, Path]:
    """Every module of the package, by dotted name (a package by its own name)."""
    found = {}
    for path in sorted((SRC / "gankit").rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(body: list[ast.stmt], in_functions: bool) -> Iterator[ast.Import | ast.ImportFrom]:
    """The import statements that run when the module is imported (with ``in_functions``, also
    those inside functions), outside ``if TYPE_CHECKING:`` blocks."""
    for node in body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.If):
            if not _is_type_checking(node.test):
                yield from _imports(node.body, in_functions)
            yield from _imports(node.orelse, in_functions)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            if in_functions:
                yield from _imports(node.body, in_functions)
        else:  # class bodies, try, with, for, while, match: they run at import time
            for field in ("body", "orelse", "finalbody", "handlers", "cases"):
                for child in getattr(node, field, None) or ():
                    if isinstance(child, ast.ExceptHandler | ast.match_case):
                        yield from _imports(child.body, in_functions)
                    elif isinstance(child, ast.stmt):
                        yield from _imports([child], in_functions)


def _targets(module: str, node: ast.Import | ast.ImportFrom) -> Iterator[str]:
    """The gankit modules an import statement in ``module`` loads."""
    known = modules()
    if isinstance(node, ast.Import):
        for alias in node.names:
            if alias.name in known:
                yield alias.name
        return
    if node.level:  # relative: from the module's package, up level - 1 more
        package = module if known[module].name == "__init__.py" else module.rpartition(".")[0]
        for _ in range(node.level - 1):
            package = package.rpartition(".")[0]
        base = f"{package}.{node.module}" if node.module else package
    else:
        base = node.module or ""
    for alias in node.names:
        if f"{base}.{alias.name}" in known:
            yield f"{base}.{alias.name}"
        elif base in known:
            yield base


@cache
def graph(in_functions: bool = False) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for name, path in modules().items():
        tree = ast.parse(path.read_text(), str(path))
        out[name] = {t for node in _imports(tree.body, in_functions) for t in _targets(name, node)}
    return out


def find_cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """One cycle through each strongly connected component that has one (Tarjan 1972)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.add(w)
                if w == v:
                    break
            if len(comp) > 1 or v in edges.get(v, ()):
                components.append(comp)

    for v in sorted(edges):
        if v not in index:
            visit(v)
    cycles = []
    for comp in components:  # the shortest way back to the start, inside the component
        start = min(comp)
        paths = {start: [start]}
        frontier = [start]
        cycle = None
        while frontier and cycle is None:
            nxt = []
            for v in frontier:
                for w in sorted(edges.get(v, set()) & comp):
                    if w == start:
                        cycle = paths[v] + [start]
                        break
                    if w not in paths:
                        paths[w] = paths[v] + [w]
                        nxt.append(w)
                if cycle:
                    break
            frontier = nxt
        cycles.append(cycle or [start, start])
    return cycles


def test_the_cycle_finder_finds_cycles() -> None:
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]
    assert find_cycles({"a": {"a"}}) == [["a", "a"]]


def test_the_graph_resolves_modules_and_names() -> None:
    g = graph()
    assert "gankit.errors" in g["gankit.checkpoint"]  # from gankit.errors import GankitError
    assert "gankit.rundir" in g["gankit.checkpoint"]
    assert "gankit.report.plots" in g["gankit.report.parts"]  # from gankit.report import plots
    assert not any(t.startswith("gankit.") for t in g["gankit.rundir"] - {"gankit.errors", "gankit.fsutil"})


def test_no_import_cycles() -> None:
    cycles = find_cycles(graph())
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


@pytest.mark.parametrize("layer", BELOW_TRAIN)
def test_lower_layers_never_import_training(layer: str) -> None:
    g = graph(in_functions=True)
    bad = sorted(f"{m} imports {t}" for m, targets in g.items() if m == layer or m.startswith(layer + ".")
                 for t in targets if t == "gankit.train" or t.startswith("gankit.train."))
    assert not bad, "; ".join(bad)


def test_the_config_schema_imports_only_the_errors() -> None:
    if "gankit.config.schema" not in modules():
        pytest.skip("gankit.config.schema does not exist (yet)")
    assert graph(in_functions=True)["gankit.config.schema"] <= {"gankit.errors"}


@pytest.mark.parametrize("module", ["gankit.rundir", "gankit.verdict"])
def test_light_modules_are_stdlib_only(module: str) -> None:
    """Reading a run directory and judging D's outputs need no torch (imported in functions only
    where a run asks for it: the config's registries, TensorBoard)."""
    tree = ast.parse(modules()[module].read_text())
    top = {node.module or "" for node in _imports(tree.body, False) if isinstance(node, ast.ImportFrom)}
    top |= {a.name for node in _imports(tree.body, False) if isinstance(node, ast.Import) for a in node.names}
    outside = {m.split(".")[0] for m in top} - {"gankit"} - set(sys.stdlib_module_names) - {"__future__"}
    assert not outside, outside
    assert {m for m in top if m.startswith("gankit")} <= {"gankit.errors", "gankit.fsutil"}


def _python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)


def test_import_gankit_loads_no_torch() -> None:
    r = _python("import gankit, sys; "
                "assert 'torch' not in sys.modules, sorted(m for m in sys.modules if m.startswith('torch'))[:5]; "
                "print(gankit.__version__)")
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("module", ["gankit.report", "gankit.metrics", "gankit.rundir", "gankit.verdict"])
def test_importing_a_lower_layer_loads_no_training(module: str) -> None:
    r = _python(f"import {module}, sys; "
                "bad = [m for m in sys.modules if m.startswith('gankit.train')]; assert not bad, bad")
    assert r.returncode == 0, r.stderr


def test_reading_a_run_loads_no_torch() -> None:
    r = _python("import gankit.rundir, gankit.verdict, sys; assert 'torch' not in sys.modules")
    assert r.returncode == 0, r.stderr


def test_public_names_resolve_lazily_and_train_is_the_package() -> None:
    import types

    import gankit

    assert set(gankit.__all__) == set(gankit._PUBLIC) | {"__version__"}
    assert set(gankit._PUBLIC) <= set(dir(gankit))
    assert "train" not in gankit._PUBLIC
    for name in gankit._PUBLIC:
        assert getattr(gankit, name) is not None, name
    assert gankit.Config.__module__.startswith("gankit.config")
    assert callable(gankit.fit) and callable(gankit.sample)
    import gankit.train

    assert isinstance(gankit.train, types.ModuleType)  # the package, not a function shadowing it
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        gankit.nope  # noqa: B018
