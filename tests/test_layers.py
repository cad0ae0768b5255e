"""The library's layers (docs/ARCHITECTURE.md): no import cycle, no import of the command line, no
reading of the repository's ``bundle/`` folder by path."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "monai_bac"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every ``monai_bac`` module ``path`` imports, at the top or inside a function."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = _module_name(path) if path.name == "__init__.py" else _module_name(path).rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("monai_bac")}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            if base.startswith("monai_bac"):
                found.add(base)
                found |= {f"{base}.{a.name}" for a in node.names}
    return found


def _graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {name: {m for m in _imports(path) if m in modules and m != name} for name, path in modules.items()}


def _library() -> dict[str, set[str]]:
    """The import graph of the library proper: the command line (its own top layer) left out."""
    return {m: deps for m, deps in _graph().items() if not m.startswith(("monai_bac.cli", "monai_bac.commands"))}


def test_the_graph_is_read():
    graph = _graph()
    assert "monai_bac.runtime" in graph["monai_bac.bundle_inference"]
    assert "monai_bac.model_files" in graph["monai_bac.export"]


def test_no_import_cycle_inside_the_library():
    graph = _library()
    state: dict[str, int] = {}
    cycles = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for dep in sorted(graph.get(node, ())):
            if dep.startswith(node + "."):
                continue  # a package importing its own submodules is not a cycle
            if state.get(dep) == 1:
                cycles.append(stack[stack.index(dep):] + [dep] if dep in stack else [node, dep])
            elif dep in graph and state.get(dep) is None:
                visit(dep, stack + [dep])
        state[node] = 2

    for module in sorted(graph):
        if state.get(module) is None:
            visit(module, [module])
    # submodule -> its own package __init__ -> submodule is how packages re-export; the rest are cycles
    real = [c for c in cycles if not any(b.startswith(a + ".") or a.startswith(b + ".") for a, b in zip(c, c[1:]))]
    assert not real, "import cycles: " + "; ".join(" -> ".join(c) for c in real)


def test_the_library_never_imports_the_command_line():
    offenders = {m: sorted(d for d in deps if d.startswith(("monai_bac.cli", "monai_bac.commands")))
                 for m, deps in _library().items()}
    assert not {m: d for m, d in offenders.items() if d}


def test_nothing_reads_the_repository_bundle_by_path():
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        text = path.read_text()
        if "parents[1] / \"bundle\"" in text or "parents[1] / 'bundle'" in text or "bundle_root()" in text:
            offenders.append(str(path.relative_to(PACKAGE.parent)))
    assert not offenders
