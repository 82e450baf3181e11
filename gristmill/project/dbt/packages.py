"""Load a dbt project's macros: its own and those of every package ``dbt deps`` installed in
``dbt_packages/`` (macros and generic tests; a package's models and seeds are not built)."""

from __future__ import annotations

from pathlib import Path

from gristmill.project.dbt.config import DbtProject
from gristmill.project.dbt.jinja import Jinja


def _sql_files(base: Path) -> list[Path]:
    return sorted(base.rglob("*.sql")) if base.is_dir() else []


def load_macros(jinja: Jinja, project: DbtProject, *, tests: bool = False) -> None:
    """The root project's macros (bare names), then each package's (``<package>.<name>``). With
    ``tests``, ``{% test %}`` blocks too: the project's in its macro and test folders, a
    package's in its macro folders."""
    jinja.root_name = project.name
    jinja.declared_packages = project.declared_packages
    root = project.root
    for folder in project.macro_paths:
        for path in _sql_files(root / folder):
            jinja.add_macro_file(path, path.relative_to(root).as_posix())
    for package in project.packages:
        if package.name == project.name:
            continue  # a package named as the project cannot be told apart; dbt refuses it too
        jinja.package_macros.setdefault(package.name, {})
        for folder in package.macro_paths:
            for path in _sql_files(package.root / folder):
                jinja.add_macro_file(path, package.file(path, root), package.name)
    if not tests:
        return
    for folder in dict.fromkeys((*project.macro_paths, *project.test_paths)):
        for path in _sql_files(root / folder):
            jinja.add_test_file(path, path.relative_to(root).as_posix())
    for package in project.packages:
        if package.name == project.name:
            continue
        for folder in package.macro_paths:
            for path in _sql_files(package.root / folder):
                jinja.add_test_file(path, package.file(path, root), package.name)
