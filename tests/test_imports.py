"""Imports point one way: no cycles, and every module imports only from lower layers.

Deferred (in-function) imports count too; imports for typing only do not.
"""

import ast
import graphlib
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
PACKAGES = ("sbc", "scenarios")


def _modules(root: Path, packages=PACKAGES) -> dict[str, Path]:
    """Dotted module name -> file, for every module of ``packages`` under ``root``."""
    found = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imported(tree: ast.AST, name: str, is_package: bool, modules) -> set[str]:
    """Modules imported anywhere in a module (functions too), but not for typing only.

    ``from a import b`` imports module ``a.b`` if there is one, else names from ``a``.
    """
    names: set[str] = set()
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _type_checking(node):
            stack.extend(node.orelse)
            continue
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = name if is_package else name.rpartition(".")[0]
                for _ in range(node.level - 1):
                    package = package.rpartition(".")[0]
                base = f"{package}.{base}".strip(".")
            for alias in node.names:
                full = f"{base}.{alias.name}"
                names.add(full if full in modules else base)
        stack.extend(ast.iter_child_nodes(node))
    return names


def import_graph(root: Path, packages=PACKAGES) -> dict[str, set[str]]:
    """Module -> the project's modules it imports, with their packages (except its own)."""
    modules = _modules(root, packages)
    graph = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        targets = set()
        for imported in _imported(tree, name, path.name == "__init__.py", modules):
            parts = imported.split(".")
            if imported in modules and imported != name:
                targets.add(imported)
            for i in range(1, len(parts)):  # importing a.b.c runs packages a and a.b first
                prefix = ".".join(parts[:i])
                if prefix in modules and prefix != name and not name.startswith(f"{prefix}."):
                    targets.add(prefix)
        graph[name] = targets
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` (``[a, b, ..., a]``), or ``None``."""
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as exc:
        return list(exc.args[1])
    return None


def test_the_project_has_no_import_cycle():
    """No module imports, even inside a function, a module that imports it back."""
    graph = import_graph(ROOT)
    assert "sbc.cli" in graph and "sbc.testing.check" in graph
    cycle = find_cycle(graph)
    assert cycle is None, f"import cycle: {' -> '.join(reversed(cycle))}"


LAYERS: dict[str, int] = {
    "sbc.errors": 0,
    "sbc.seeding": 0,
    "sbc.stats": 0,
    "sbc.backends": 1,
    "sbc.scenario": 2,
    "sbc.mutate": 3,
    "scenarios": 3,
    "sbc.registry": 4,
    "sbc.results": 5,
    "sbc.engine": 6,
    "sbc.report": 6,
    "sbc.workflows": 7,
    "sbc.cli": 8,
    "sbc.testing": 8,
    "sbc.api": 8,
    "sbc": 9,
}
"""Layer of every package (or top-level module), lowest first: the pipeline's direction.

A module may import modules of its own package and of lower layers only, so a value handed
down is never handed back up: the engine and the report (layer 6) cannot import each
other, the results layer cannot import the engine, nothing below the workflows imports a
workflow, and only the registry among the layers below the command line and
``sbc.testing`` reads the scenario catalogue."""


def layer(module: str) -> tuple[str, int]:
    """The package of ``module`` that :data:`LAYERS` names (the longest prefix), and its layer."""
    parts = module.split(".")
    for i in range(len(parts), 0, -1):
        prefix = ".".join(parts[:i])
        if prefix in LAYERS:
            return prefix, LAYERS[prefix]
    raise KeyError(f"{module} belongs to no layer of LAYERS")


def test_every_import_points_to_a_lower_layer():
    """No module imports a module of its own layer's other packages or of a higher layer."""
    wrong = []
    for module, targets in import_graph(ROOT).items():
        package, rank = layer(module)
        for target in targets:
            other, other_rank = layer(target)
            if other == "sbc":
                continue  # importing sbc.x runs sbc/__init__ first, which imports nothing
            if other != package and other_rank >= rank:
                wrong.append(
                    f"{module} ({package}, layer {rank}) imports {target} (layer {other_rank})"
                )
    assert not wrong, "\n".join(wrong)
    assert not import_graph(ROOT)["sbc"], "sbc/__init__.py imports modules: lazy names only"


def test_only_the_registry_reads_the_scenario_catalogue():
    """Below the command line and sbc.testing, only sbc.registry imports the scenarios package."""
    readers = {
        module
        for module, targets in import_graph(ROOT).items()
        if module.startswith("sbc") and any(t.split(".")[0] == "scenarios" for t in targets)
    }
    below = {m for m in readers if layer(m)[0] not in ("sbc.cli", "sbc.testing")}
    assert below == {"sbc.registry"}, below


def test_one_figure_system_no_module_of_sbc_imports_matplotlib():
    """Every page draws with sbc.report.svg: no module of sbc imports matplotlib."""
    users = [
        path
        for path in (ROOT / "sbc").rglob("*.py")
        if re.search(r"^\s*(import|from) matplotlib", path.read_text(), re.MULTILINE)
    ]
    assert not users, users


def test_the_check_finds_a_cycle_through_a_deferred_import(tmp_path):
    """A cycle closed by an import inside a function (as sweep -> cli -> sweep was) is found."""
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "cli.py").write_text("from pkg.sweep import run\n")
    (tmp_path / "pkg" / "sweep.py").write_text(
        textwrap.dedent(
            """
            from typing import TYPE_CHECKING
            if TYPE_CHECKING:
                from pkg import report
            def run():
                from .cli import main
            """
        )
    )
    (tmp_path / "pkg" / "report.py").write_text("import pkg.sweep\n")
    graph = import_graph(tmp_path, ("pkg",))
    assert graph["pkg.sweep"] == {"pkg.cli"}  # the typing-only import is no edge
    assert set(find_cycle(graph)) == {"pkg.cli", "pkg.sweep"}


@pytest.mark.parametrize("first", ["sbc.workflows.sweep", "sbc.report.sweep_html"])
def test_modules_import_first_in_a_fresh_interpreter(first):
    """The modules that used to close a cycle import on their own, before any other."""
    done = subprocess.run([sys.executable, "-c", f"import {first}"], capture_output=True)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
