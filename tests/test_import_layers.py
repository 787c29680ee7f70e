"""radflow's packages import one way: no cycle between its subpackages and top-level modules.

Every import statement is read from the source (module level, inside functions and under ``TYPE_CHECKING`` alike: a
deferred import is still a dependency), each module is mapped to its unit (the package that holds it, or the
top-level module itself), and the unit graph must be acyclic. A package importing its own subpackage counts too, so
``imaging`` -> ``imaging.filters`` -> ``imaging`` is a cycle.
"""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "workflow" / "radflow"


def _module_name(path: Path) -> str:
    parts = ("radflow",) + path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _unit(module: str, packages: set[str]) -> str:
    """The package a module belongs to (a package's ``__init__`` belongs to the package itself)."""
    return module if module in packages or module == "radflow" else module.rsplit(".", 1)[0] if \
        module.rsplit(".", 1)[0] != "radflow" else module


def _imports(path: Path, module: str, is_package: bool) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("radflow"))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.startswith("radflow"):
                found.add(target)
                found.update(f"{target}.{alias.name}" for alias in node.names)
    return found


def unit_graph() -> dict[str, set[str]]:
    files = {_module_name(p): p for p in ROOT.rglob("*.py")}
    packages = {_module_name(p) for p in ROOT.rglob("__init__.py")}
    graph: dict[str, set[str]] = {}
    for module, path in files.items():
        source = _unit(module, packages)
        for target in _imports(path, module, path.name == "__init__.py"):
            while target not in files and "." in target:  # "from pkg import name": name is not a module
                target = target.rsplit(".", 1)[0]
            if target in files and target != "radflow":
                dest = _unit(target, packages)
                if dest != source:
                    graph.setdefault(source, set()).add(dest)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a closed path, or None (iterative depth-first search)."""
    state: dict[str, int] = {}
    for start in sorted(graph):
        if state.get(start):
            continue
        stack = [(start, iter(sorted(graph.get(start, ()))))]
        path = [start]
        state[start] = 1
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                state[node] = 2
                stack.pop()
                path.pop()
            elif state.get(child) == 1:
                return path[path.index(child):] + [child]
            elif not state.get(child):
                state[child] = 1
                path.append(child)
                stack.append((child, iter(sorted(graph.get(child, ())))))
    return None


def test_no_cycle_between_radflow_packages():
    cycle = find_cycle(unit_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_cycle_finder_finds_a_planted_cycle():
    graph = unit_graph()
    graph.setdefault("radflow.settings", set()).add("radflow.cli")  # cli imports settings: now a cycle
    cycle = find_cycle(graph)
    assert cycle is not None and cycle[0] == cycle[-1]


def test_graph_sees_deferred_imports():
    # cli imports every stage inside its command functions; the graph must see them
    assert "radflow.pipeline" in unit_graph()["radflow.cli"]


DOMAIN = ("radflow.dicom", "radflow.imaging", "radflow.imaging.filters", "radflow.features", "radflow.stability",
          "radflow.modelling", "radflow.settings", "radflow.ibsi")
IO_AND_EXPORT = ("radflow.cli", "radflow.pipeline", "radflow.provenance", "radflow.store", "radflow.extraction")


def _reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for child in graph.get(todo.pop(), ()):
            if child not in seen:
                seen.add(child)
                todo.append(child)
    return seen


def test_domain_packages_do_not_reach_the_io_and_export_layers():
    """The IBSI/statistics/modelling code is usable without the pipeline: it never imports, directly or through
    another module, the rules' I/O (pipeline, cli, extraction), the database (store) or the RDF export."""
    graph = unit_graph()
    for package in DOMAIN:
        assert not _reachable(graph, package) & set(IO_AND_EXPORT), package
