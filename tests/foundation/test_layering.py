"""The layering of docs/architecture.md, read from the source: a change that breaks it fails here.

- Apps meet only through each other's ``services`` and ``selectors`` (and the app's package itself).
- ``inferencemgmt`` (the project and its cross-cutting parts) imports no domain app, ``urls.py`` aside.
- No import cycle among the product's modules, counting every import that runs (at module level or
  inside a function: an import moved into a function to dodge a cycle is still a cycle); only imports
  under ``TYPE_CHECKING``, which never run, are left out.

The SDK chokepoints (only ``kube.py`` imports ``kubernetes``, only ``objectstore.py`` imports boto3) are
ruff's banned-api rule in pyproject.toml.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
PROJECT = "inferencemgmt"
#: A directory of the checkout is a domain app when Django's AppConfig lives in it.
APPS = sorted(path.parent.name for path in ROOT.glob("*/apps.py") if path.parent.name != PROJECT)
PUBLIC_ROOMS = {"services", "selectors"}
#: The project's URL configuration includes every app's urls: that is its job.
PROJECT_MAY_IMPORT_APPS = {f"{PROJECT}.urls"}


@dataclass(frozen=True)
class Import:
    module: str  # the importing module, dotted
    target: str  # the imported module or module.name, dotted
    line: int
    runs: bool  # False only under TYPE_CHECKING


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _product_files() -> Iterator[Path]:
    for package in [PROJECT, *APPS]:
        for path in sorted((ROOT / package).rglob("*.py")):
            relative = path.relative_to(ROOT).parts
            if "tests" in relative or "migrations" in relative:
                continue
            yield path


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports_of(path: Path) -> Iterator[Import]:
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]

    def visit(nodes: list[ast.stmt], runs: bool) -> Iterator[Import]:
        for node in nodes:
            if isinstance(node, ast.Import):
                for alias in node.names:
                    yield Import(module, alias.name, node.lineno, runs)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                for alias in node.names:
                    yield Import(module, f"{base}.{alias.name}", node.lineno, runs)
            elif isinstance(node, ast.If) and _is_type_checking(node):
                yield from visit(node.body, False)
                yield from visit(node.orelse, runs)
            elif isinstance(
                node,
                ast.FunctionDef
                | ast.AsyncFunctionDef
                | ast.ClassDef
                | ast.If
                | ast.For
                | ast.While
                | ast.Try
                | ast.With,
            ):
                for field in ("body", "orelse", "finalbody", "handlers"):
                    for child in getattr(node, field, []):
                        body = child.body if isinstance(child, ast.ExceptHandler) else [child]
                        yield from visit(body, runs)

    yield from visit(ast.parse(path.read_text(), filename=str(path)).body, True)


def _all_imports() -> list[Import]:
    return [item for path in _product_files() for item in _imports_of(path)]


def _crosses_into_internals(item: Import) -> bool:
    """True when a module of one app reaches into another app beyond its public rooms."""
    source_app = item.module.split(".")[0]
    parts = item.target.split(".")
    target_app = parts[0]
    if target_app not in APPS or target_app == source_app:
        return False
    if len(parts) == 1:
        return False  # `import endpoints`: the package itself
    room = parts[1]
    # `from endpoints import services` arrives as `endpoints.services`; `from endpoints.services
    # import x` as `endpoints.services.x`: both are the public room.
    return room not in PUBLIC_ROOMS


def test_apps_meet_only_through_services_and_selectors() -> None:
    crossings = [
        f"{item.module}:{item.line} imports {item.target}" for item in _all_imports() if _crosses_into_internals(item)
    ]
    assert crossings == [], "an app imports another app's internals:\n" + "\n".join(crossings)


def test_the_project_imports_no_domain_app() -> None:
    reaching = [
        f"{item.module}:{item.line} imports {item.target}"
        for item in _all_imports()
        if item.module.split(".")[0] == PROJECT
        and item.module not in PROJECT_MAY_IMPORT_APPS
        and item.target.split(".")[0] in APPS
    ]
    assert reaching == [], "inferencemgmt reaches into a domain app:\n" + "\n".join(reaching)


def _import_graph() -> dict[str, set[str]]:
    modules = {_module_name(path) for path in _product_files()}
    graph: dict[str, set[str]] = {module: set() for module in modules}
    for item in _all_imports():
        if not item.runs:
            continue
        # `from a.b import c` is module a.b.c when that is a module, else the name c of module a.b.
        target = item.target if item.target in modules else item.target.rpartition(".")[0]
        if target in modules and target != item.module:
            graph[item.module].add(target)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
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


def test_no_import_cycle_among_the_products_modules() -> None:
    assert _cycles(_import_graph()) == []


def test_the_checks_see_what_they_look_for() -> None:
    """The rules above are not vacuous: the apps are found, imports are read, and a cycle is seen."""
    assert {"tenants", "endpoints", "models_store", "servings"} <= set(APPS)
    graph = _import_graph()
    assert "models_store.jobs" in graph["models_store.tasks"]
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _crosses_into_internals(Import("tenants.views", "endpoints.views.endpoint_rows_of", 1, True))
    assert not _crosses_into_internals(Import("tenants.views", "endpoints.selectors", 1, True))
    assert not _crosses_into_internals(Import("endpoints.views", "endpoints.spec.X", 1, True))
