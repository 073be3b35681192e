"""The package's layout is a rule, not a habit: each stage imports only from the stages before it
(ingest ← index ← answer ← generate), the shared modules import no stage, ``rag`` never imports ``api``,
and no two modules import each other, directly or round a longer circle (function-level imports count)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

RAG = Path(__file__).resolve().parent.parent / "rag"

# Rank of each part of the package: a module may import from parts of its own rank or lower.
SHARED = {"rag.types", "rag.config", "rag.hashing", "rag.text", "rag.linear"}
STAGES = {"ingest": 1, "index": 2, "answer": 3, "generate": 4}
TOP = 5  # qa, cli, evaluation and train wire the stages together and may import any of them


def module_name(path: Path) -> str:
    parts = path.relative_to(RAG.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def rank(module: str) -> int:
    if module in SHARED:
        return 0
    parts = module.split(".")
    if len(parts) > 1 and parts[1] in STAGES:
        return STAGES[parts[1]]
    return TOP


def imports_of(path: Path) -> set[str]:
    """Every module of ``rag`` or ``api`` that ``path`` imports, at any depth of the file."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            # `from rag.ingest import store` imports the module rag.ingest.store
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in found if name.split(".")[0] in ("rag", "api")}


MODULES = {module_name(p): p for p in sorted(RAG.rglob("*.py"))}
GRAPH = {name: {i for i in imports_of(path) if i in MODULES and i != name} for name, path in MODULES.items()}


def test_the_stages_are_subpackages() -> None:
    for stage in STAGES:
        assert f"rag.{stage}" in MODULES, f"rag/{stage}/__init__.py is missing"
    flat = [name for name in MODULES if name.count(".") == 1 and rank(name) == TOP]
    top = ["rag.cli", "rag.evaluation", "rag.qa", "rag.train"]
    assert sorted(flat) == top, "a module at the top belongs in a stage"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_module_imports_a_later_stage(module: str) -> None:
    if module == "rag":  # the package's lazy re-exports name the public API of every stage
        return
    later = sorted(i for i in GRAPH[module] if rank(i) > rank(module))
    assert not later, f"{module} (rank {rank(module)}) imports later stages: {later}"
    assert not {i for i in imports_of(MODULES[module]) if i.split(".")[0] == "api"}, f"{module} imports api"


def test_no_import_circle() -> None:
    # Depth-first search for a back edge; the lazy exports of rag/__init__.py are not imports of a stage.
    graph = {name: deps - {"rag"} for name, deps in GRAPH.items() if name != "rag"}
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == 1:
                cycle = [*path[path.index(dep) :], dep]
                pytest.fail("import circle: " + " → ".join(cycle))
            if dep not in state:
                visit(dep)
        path.pop()
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name)
