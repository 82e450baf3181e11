"""How modules may import each other, beyond the layer contract import-linter checks.

No module imports another module's private names (a leading underscore is a promise that only
its own module uses it), and the package has no import cycles: each module can be read after
the modules it imports.
"""

from __future__ import annotations

import ast
from pathlib import Path

import grimp

PACKAGE = Path(__file__).parents[2] / "gristmill"


def test_no_private_names_imported_across_modules() -> None:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("gristmill"):
                names = [a.name for a in node.names]
                private = [n for n in names if n.startswith("_") and not n.startswith("__")]
                if private:
                    where = path.relative_to(PACKAGE.parent).as_posix()
                    found.append(f"{where}:{node.lineno} imports {private} from {node.module}")
    assert not found, "give these a public name in the module that owns them:\n" + "\n".join(found)


def test_no_private_names_used_through_a_module() -> None:
    """``from gristmill.sql import nesting`` then ``nesting._helper(...)`` is the same reach."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text())
        modules = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("gristmill"):
                folder = PACKAGE.parent.joinpath(*node.module.split("."))
                for alias in node.names:
                    if (folder / f"{alias.name}.py").exists() or (folder / alias.name).is_dir():
                        modules.add(alias.asname or alias.name)
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in modules
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
            ):
                where = path.relative_to(PACKAGE.parent).as_posix()
                found.append(f"{where}:{node.lineno} uses {node.value.id}.{node.attr}")
    assert not found, "give these a public name in the module that owns them:\n" + "\n".join(found)


def test_no_import_cycles() -> None:
    graph = grimp.build_graph("gristmill", cache_dir=None)
    cycles = []
    for module in sorted(graph.modules):
        for imported in graph.find_modules_directly_imported_by(module):
            if imported.startswith(module + ".") or module.startswith(imported + "."):
                continue  # a package and its own modules (``__init__`` re-exports)
            path = graph.find_shortest_chain(importer=imported, imported=module)
            if path is not None:
                cycles.append(" -> ".join((module, *path)))
    assert not cycles, "import cycles:\n" + "\n".join(cycles)
