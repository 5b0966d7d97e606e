"""The import graph of the tuigen package, read from the source (no imports executed).

Every `import` and `from ... import` counts, at module level or inside a function, since a
function-level import is still a dependency: it only moves the cost to the first call.
"""
from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = "tuigen"
ROOT = Path(__file__).resolve().parents[1] / PACKAGE


def module_files() -> dict[str, Path]:
    """{dotted module name: file} for every .py file of the package."""
    out = {}
    for path in sorted(ROOT.rglob("*.py")):
        if "migrations" in path.parts:  # Alembic's scripts are loaded by path, not imported
            continue
        rel = path.relative_to(ROOT.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _resolve(module: str, is_package: bool, level: int, target: str | None) -> str:
    base = module.split(".") if is_package else module.split(".")[:-1]
    if level > 1:
        base = base[:len(base) - (level - 1)]
    return ".".join(base + ([target] if target else []))


def imports_of(module: str, path: Path, known: set[str]) -> set[str]:
    """The modules `module` imports: tuigen modules by full name, others by top-level name."""
    tree = ast.parse(path.read_text(), str(path))
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.add(alias.name if alias.name.startswith(PACKAGE + ".") or alias.name == PACKAGE
                          else alias.name.split(".")[0])
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                src = _resolve(module, is_package, node.level, node.module)
            else:
                src = node.module or ""
            if not (src == PACKAGE or src.startswith(PACKAGE + ".")):
                found.add(src.split(".")[0])
                continue
            for alias in node.names:  # `from pkg import submodule` depends on the submodule
                sub = f"{src}.{alias.name}"
                found.add(sub if sub in known else src)
    found.discard(module)
    return found


def graph() -> dict[str, set[str]]:
    files = module_files()
    known = set(files)
    return {m: imports_of(m, p, known) for m, p in files.items()}


def reach(g: dict[str, set[str]], start: str) -> set[str]:
    """Everything `start` depends on, directly or through other tuigen modules."""
    seen, todo = set(), [start]
    while todo:
        for dep in g.get(todo.pop(), ()):
            if dep not in seen:
                seen.add(dep)
                todo.append(dep)
    return seen


def cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in g.get(v, ()):
            if w not in g:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                out.append(sorted(group))

    for v in sorted(g):
        if v not in index:
            visit(v)
    return out
