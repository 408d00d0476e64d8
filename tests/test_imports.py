"""builder/'s imports stay a tree: no module-level cycles, and no function-local builder imports without a reason.

A cycle among module-level imports works or breaks depending on which module
is imported first; a function-local import hides one. builder.providers loads
its modules by name (importlib), so those names count as its imports here.
"""
from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

from builder import paths
from builder.docker import base_image

ROOT = Path(__file__).resolve().parent.parent
BUILDER = ROOT / "builder"


def _modules() -> dict[str, Path]:
    mods = {}
    for p in BUILDER.rglob("*.py"):
        name = ".".join(p.relative_to(ROOT).with_suffix("").parts)
        mods[name.removesuffix(".__init__")] = p
    return mods


def _top_level_imports(tree: ast.Module, mods: dict[str, Path]) -> set[str]:
    deps: set[str] = set()

    def visit(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                continue  # annotations only: never run
            if isinstance(node, (ast.If, ast.Try)):
                visit(node.body)
                visit(node.orelse)
                for handler in getattr(node, "handlers", []):
                    visit(handler.body)
            elif isinstance(node, ast.Import):
                deps.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module:
                subs = [f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in mods]
                deps.update(subs)
                if len(subs) < len(node.names):
                    deps.add(node.module)

    visit(tree.body)
    return deps


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    graph = {}
    for name, path in mods.items():
        deps = _top_level_imports(ast.parse(path.read_text()), mods)
        # A package's __init__ runs before its submodules: an edge to an ancestor is no cycle.
        graph[name] = {d for d in deps if d in mods and d != name and not name.startswith(d + ".")}
    listed = re.search(r"MODULES[^=]*=\s*\(([^)]*)\)", mods["builder.providers"].read_text())
    graph["builder.providers"] |= {f"builder.providers.{n}" for n in re.findall(r'"(\w+)"', listed.group(1))}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:   # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_module_level_import_cycles():
    graph = _graph()
    assert "builder.providers.qemu" in graph["builder.providers"]   # the importlib edges are seen
    assert _cycles(graph) == []


def test_cycle_check_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_function_local_builder_imports_say_why():
    unexplained = []
    for name, path in _modules().items():
        lines = path.read_text().splitlines()
        for node in ast.walk(ast.parse("\n".join(lines))):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for inner in ast.walk(node):
                mod = (inner.module if isinstance(inner, ast.ImportFrom) else
                       inner.names[0].name if isinstance(inner, ast.Import) else None)
                if mod and mod.startswith("builder") and "#" not in lines[inner.lineno - 1]:
                    unexplained.append(f"{path.relative_to(ROOT)}:{inner.lineno}")
    assert unexplained == []


def test_the_cli_imports_in_a_fresh_interpreter():
    proc = subprocess.run([sys.executable, "-c", "import builder.cli, builder.spec, builder.providers"],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr


def test_only_the_paths_module_derives_paths_from_its_own_location():
    """builder/paths.py owns every path: a module that used `Path(__file__)` broke when it moved (the
    cgroup2 init script of the docker base was looked for under builder/docker/data/ after the restructure)."""
    derived = [f"{path.relative_to(ROOT)}:{n}" for path in sorted(BUILDER.rglob("*.py")) if path.name != "paths.py"
               for n, line in enumerate(path.read_text().splitlines(), 1) if "__file__" in line]
    assert derived == []
    assert paths.DATA.is_dir() and base_image.CGROUP2_INIT_SCRIPT.is_file()
