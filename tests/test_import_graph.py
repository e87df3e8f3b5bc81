"""The import graph of neurofm, read from the source: the packages form no cycle, and the low
layers import nothing from the layers above them (docs/design.md, "Package layering").

Every ``import`` of one of neurofm's own modules counts, function-local ones included, so a
function-local import cannot hide a cycle. Not counted: imports under ``if TYPE_CHECKING:``
(annotations only), imports inside a module-level ``__getattr__`` (PEP 562 lazy re-exports such
as ``neurofm.from_pretrained``, and deprecated names), and the deprecation shims in :data:`SHIMS`.
"""

from __future__ import annotations

import ast
import itertools
import textwrap
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]

#: Modules whose whole job is to warn and re-export names that moved (removed in neurofm 0.3).
SHIMS = frozenset({
    "neurofm.datasets.registry",   # -> neurofm.datasets.load
    "neurofm.models.pretrained",   # neurofm.models.from_pretrained -> neurofm.from_pretrained
    "neurofm.tokenizer.pipeline",  # -> neurofm.train.tokenizer_jobs
    "neurofm.tokenizer.train",     # -> neurofm.train.tokenizer_loop
})

_ABOVE_DATA = {"models", "tokenizer", "train", "eval", "hub", "commands", "demo"}
#: Package -> the packages it must not import (its layers above).
FORBIDDEN = {
    "sensors": _ABOVE_DATA,
    "data": _ABOVE_DATA,
    "tokenizer": {"train", "corpus", "eval", "commands"},
}


@dataclass(frozen=True)
class Import:
    """``importer`` (a module) imports ``imported`` (a module or package) at ``path:line``."""

    importer: str
    imported: str
    path: str
    line: int

    def __str__(self) -> str:
        return f"{self.path}:{self.line} ({self.importer} -> {self.imported})"


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def read_imports(root: Path, package: str, shims=frozenset()) -> list[Import]:
    """Every import of ``package``'s own modules in its source under ``root`` (see module doc)."""
    imports = []
    for path in sorted((root / package).rglob("*.py")):
        importer = module_name(path, root)
        if importer in shims:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in _counted_nodes(tree.body, module_level=True):
            for imported in _targets(node, importer, path.name == "__init__.py", root):
                if imported.split(".")[0] == package:
                    imports.append(Import(importer, imported, str(path.relative_to(root)),
                                          node.lineno))
    return imports


def _counted_nodes(body, *, module_level: bool):
    """Import nodes in ``body`` and below, skipping TYPE_CHECKING blocks and module __getattr__."""
    for node in body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            yield from _counted_nodes(node.orelse, module_level=False)
        elif (module_level and isinstance(node, ast.FunctionDef)
              and node.name == "__getattr__"):
            continue
        else:
            for field in ("body", "orelse", "finalbody", "handlers"):
                yield from _counted_nodes(getattr(node, field, []), module_level=False)
            for case in getattr(node, "cases", []):
                yield from _counted_nodes(case.body, module_level=False)


def _is_type_checking(test) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _targets(node, importer: str, is_package: bool, root: Path) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:
        here = importer.split(".") if is_package else importer.split(".")[:-1]
        here = here[:len(here) - node.level + 1]
        base = ".".join(here + ([node.module] if node.module else []))
    # ``from package import name``: the submodule when ``name`` is one, else the package.
    return [f"{base}.{alias.name}" if _is_module(f"{base}.{alias.name}", root) else base
            for alias in node.names]


def _is_module(name: str, root: Path) -> bool:
    path = root.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def node_of(module: str) -> str:
    """The graph node of ``module``: its first level below the root package (``neurofm.models``
    for ``neurofm.models.base``; ``neurofm.worker`` for the module ``neurofm/worker.py``)."""
    return ".".join(module.split(".")[:2])


def package_graph(imports) -> dict[str, dict[str, list[Import]]]:
    """``{node: {imported node: [the imports that make the edge]}}``, without self-edges."""
    graph: dict[str, dict[str, list[Import]]] = defaultdict(lambda: defaultdict(list))
    for imp in imports:
        a, b = node_of(imp.importer), node_of(imp.imported)
        if a != b:
            graph[a][b].append(imp)
    return graph


def find_cycle(graph) -> list[str] | None:
    """One cycle of ``graph`` as ``[a, b, ..., a]``, or None when it is acyclic."""
    state: dict[str, str] = {}
    stack: list[str] = []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, {})):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = "done"
        return None

    for start in sorted(graph):
        if start not in state:
            found = visit(start)
            if found:
                return found
    return None


def describe_cycle(graph, cycle: list[str]) -> str:
    return "\n".join(f"{a} -> {b}: " + "; ".join(str(i) for i in graph[a][b][:3])
                     for a, b in itertools.pairwise(cycle))


def layer_violations(imports, package: str, forbidden: dict[str, set[str]]) -> list[Import]:
    """The imports by a package of ``forbidden`` of a package it must not import."""
    bad = []
    for imp in imports:
        low, high = node_of(imp.importer), node_of(imp.imported)
        rules = {f"{package}.{k}": {f"{package}.{v}" for v in vs} for k, vs in forbidden.items()}
        if high in rules.get(low, ()):
            bad.append(imp)
    return bad


# -- neurofm ----------------------------------------------------------------------------------
NEUROFM_IMPORTS = read_imports(ROOT, "neurofm", SHIMS)


def test_the_packages_of_neurofm_form_no_cycle():
    graph = package_graph(NEUROFM_IMPORTS)
    cycle = find_cycle(graph)
    assert cycle is None, ("neurofm's packages import each other in a circle; move what they "
                           "share into the lower one:\n" + describe_cycle(graph, cycle))


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_low_layers_import_nothing_from_the_layers_above(package):
    bad = [str(i) for i in layer_violations(NEUROFM_IMPORTS, "neurofm",
                                            {package: FORBIDDEN[package]})]
    assert bad == [], f"neurofm.{package} must not import {sorted(FORBIDDEN[package])}: {bad}"


def test_the_reader_sees_neurofm_as_it_is():
    graph = package_graph(NEUROFM_IMPORTS)
    assert "neurofm.sensors" in graph["neurofm.data"]          # a module-level import
    assert "neurofm.corpus" in graph["neurofm.train"]          # data.py opens corpora
    assert "neurofm.hub" not in graph["neurofm"]               # the lazy neurofm.from_pretrained
    assert "neurofm.train" not in graph["neurofm.tokenizer"]   # only through the shims


@pytest.mark.parametrize("shim", sorted(SHIMS))
def test_the_exempt_shims_are_short_deprecated_aliases(shim):
    path = ROOT.joinpath(*shim.split(".")).with_suffix(".py")
    text = path.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 25 and "eprecated" in ast.get_docstring(ast.parse(text))


# -- the checks themselves, on a small package with planted violations -------------------------
def write_package(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))


PLANTED = {
    "pkg/__init__.py": """
        def __getattr__(name):            # lazy re-export: not an edge
            from pkg.high.api import thing
            return thing
        """,
    "pkg/low/__init__.py": "",
    "pkg/low/core.py": """
        from typing import TYPE_CHECKING

        if TYPE_CHECKING:                 # annotations only: not an edge
            from pkg.high.api import thing

        def helper():
            from pkg.high import api      # function-local: an edge all the same
            return api
        """,
    "pkg/low/old.py": "from pkg.high.api import thing  # a shim\n",
    "pkg/high/__init__.py": "",
    "pkg/high/api.py": """
        from ..low import core

        thing = core
        """,
    "pkg/tool.py": "from pkg import low\n",
}


def test_a_function_local_import_that_closes_a_circle_is_found(tmp_path):
    write_package(tmp_path, PLANTED)
    imports = read_imports(tmp_path, "pkg", shims={"pkg.low.old"})
    graph = package_graph(imports)
    cycle = find_cycle(graph)
    assert cycle in (["pkg.high", "pkg.low", "pkg.high"], ["pkg.low", "pkg.high", "pkg.low"])
    assert "pkg/low/core.py:8" in describe_cycle(graph, cycle)
    assert "pkg.low" in graph["pkg.tool"] and "pkg" not in graph   # __getattr__ is no edge
    assert layer_violations(imports, "pkg", {"low": {"high"}}) == [
        Import("pkg.low.core", "pkg.high.api", "pkg/low/core.py", 8)]


def test_type_checking_imports_and_shims_are_no_edges(tmp_path):
    files = dict(PLANTED)
    files["pkg/low/core.py"] = PLANTED["pkg/low/core.py"].replace(
        "from pkg.high import api      # function-local: an edge all the same",
        "api = None")
    write_package(tmp_path, files)
    imports = read_imports(tmp_path, "pkg", shims={"pkg.low.old"})
    assert find_cycle(package_graph(imports)) is None
    assert layer_violations(imports, "pkg", {"low": {"high"}}) == []
    with_shim = read_imports(tmp_path, "pkg")
    assert find_cycle(package_graph(with_shim)) is not None   # unless listed as a shim
