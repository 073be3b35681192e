"""The package's layout is a rule, not a habit: each part imports only from the parts before it
(ingest ← index ← serving ← store ← answer ← generate; feedback and accounts beside index), the shared
modules import no part, ``rag`` never imports ``api``, ``api`` imports only ``rag.qa``, ``rag.types``,
``rag.config``, the store's interface (``rag.store``) and who may do what (``rag.accounts``), which
store the settings name is asked in one place only, and no two modules import each other, directly or
round a longer circle (function-level imports count)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RAG = ROOT / "rag"
API = ROOT / "api"

# Rank of each part of the package: a module may import from parts of its own rank or lower.
SHARED = {"rag.types", "rag.config", "rag.hashing", "rag.text", "rag.linear"}
PARTS = {"ingest": 1, "index": 2, "feedback": 2, "accounts": 2, "serving": 3, "store": 4, "answer": 5,
         "generate": 6}
TOP = 7  # qa, cli, evaluation and train wire the parts together and may import any of them
# What the web app may import of rag: the service, the answer object's types, the settings, the store's
# interface (the package's face, not a store of its own), and accounts (who may do what).
API_MAY_IMPORT = {"rag.qa", "rag.types", "rag.config", "rag.store", "rag.accounts"}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def rank(module: str) -> int:
    if module in SHARED:
        return 0
    parts = module.split(".")
    if len(parts) > 1 and parts[1] in PARTS:
        return PARTS[parts[1]]
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


MODULES = {module_name(p): p for p in sorted([*RAG.rglob("*.py"), *API.rglob("*.py")])}
RAG_MODULES = sorted(m for m in MODULES if m.split(".")[0] == "rag")
API_MODULES = sorted(m for m in MODULES if m.split(".")[0] == "api")
GRAPH = {name: {i for i in imports_of(path) if i in MODULES and i != name} for name, path in MODULES.items()}


def test_the_parts_are_subpackages() -> None:
    for part in PARTS:
        assert f"rag.{part}" in MODULES, f"rag/{part}/__init__.py is missing"
    flat = [name for name in RAG_MODULES if name.count(".") == 1 and rank(name) == TOP]
    top = ["rag.cli", "rag.evaluation", "rag.qa", "rag.train"]
    assert sorted(flat) == top, "a module at the top belongs in a part"


@pytest.mark.parametrize("module", RAG_MODULES)
def test_no_module_imports_a_later_part(module: str) -> None:
    if module == "rag":  # the package's lazy re-exports name the public API of every part
        return
    later = sorted(i for i in GRAPH[module] if rank(i) > rank(module))
    assert not later, f"{module} (rank {rank(module)}) imports later parts: {later}"
    assert not {i for i in imports_of(MODULES[module]) if i.split(".")[0] == "api"}, f"{module} imports api"


@pytest.mark.parametrize("module", API_MODULES)
def test_the_web_app_imports_only_the_service_types_settings_and_store_interface(module: str) -> None:
    of_rag = {i for i in imports_of(MODULES[module]) if i.split(".")[0] == "rag"}
    # `from rag.store import X` also names rag.store.X, which is no module of ours unless it is one.
    modules = {i for i in of_rag if i in MODULES or i.rsplit(".", 1)[0] not in API_MAY_IMPORT}
    assert modules <= API_MAY_IMPORT, f"{module} imports {sorted(modules - API_MAY_IMPORT)}"


def test_accounts_live_in_a_room_of_their_own() -> None:
    """Users, sessions, tokens, collections and grants: rag/accounts/ (the PostgreSQL store keeps its tables
    in rag/store/postgres/accounts.py); the web app reaches them through rag.accounts' face only."""
    names = {p.stem for p in (RAG / "accounts").glob("*.py")}
    assert names == {"__init__", "model", "records", "sqlite", "service"}
    for module in API_MODULES:
        deep = {i for i in imports_of(MODULES[module]) if i.startswith("rag.accounts.") and i in MODULES}
        assert not deep, f"{module} imports {sorted(deep)}: use rag.accounts"


def test_the_index_holds_only_the_index() -> None:
    """Stores, serving and feedback live in rooms of their own: nothing of them is in rag/index/."""
    names = {p.stem for p in (RAG / "index").glob("*.py")}
    assert names == {"__init__", "embedders", "vectors", "lexical", "vector_cache", "search_index", "stages",
                     "fingerprint", "publish", "build"}
    assert not (RAG / "index" / "migrations").exists()


def test_only_the_factory_asks_which_store_it_has() -> None:
    """`settings.database` decides the store in rag.store.open_store, and nowhere else; and the stages are
    a value (rag.index.stages.Stages), never a list cut by position."""
    asked = []
    for name, path in MODULES.items():
        text = path.read_text()
        for line_no, line in enumerate(text.splitlines(), 1):
            if re.search(r"settings\.database\b(?!_url)", line) and name != "rag.store":
                asked.append(f"{path.relative_to(ROOT)}:{line_no}")
            if re.search(r"stage_names\(|stages?\w*(\([^)]*\))?\s*\[\d*:\d*\]", line):
                asked.append(f"{path.relative_to(ROOT)}:{line_no} (a positional stage slice)")
    assert not asked, asked


def test_no_import_circle() -> None:
    # Depth-first search for a back edge; the lazy exports of rag/__init__.py are not imports of a part.
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
