"""The size budget that keeps modules readable, checked on every run of the suite.

A module holds at most 500 lines of code, a class at most 30 public methods, a function at most
100 lines; ``__init__.py`` files hold a docstring and re-exports only; every ``GristmillError``
subclass lives in ``errors.py``. ``EXEMPT`` names the few places over budget and why — an entry
must be justified, and the list stays short.
"""

from __future__ import annotations

import ast
import functools
import io
import tokenize
from pathlib import Path

PACKAGE = Path(__file__).parents[2] / "gristmill"
MAX_MODULE_CODE_LINES = 500
MAX_PUBLIC_METHODS = 30
MAX_FUNCTION_LINES = 100

# "path:qualified name" -> why it is over budget.
EXEMPT: dict[str, str] = {}


def modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "demo" not in p.relative_to(PACKAGE).parts)


def code_lines(source: str) -> int:
    """Lines holding code: not blank, not only a comment, not part of a docstring."""
    docstrings: set[int] = set()
    for node in ast.walk(ast.parse(source)):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            value = body[0].value
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                docstrings.update(range(body[0].lineno, (body[0].end_lineno or body[0].lineno) + 1))
    lines: set[int] = set()
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type in (tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT):
            continue
        if token.type == tokenize.ENDMARKER:
            continue
        lines.update(range(token.start[0], token.end[0] + 1))
    return len(lines - docstrings)


def name(path: Path) -> str:
    return path.relative_to(PACKAGE.parent).as_posix()


@functools.cache
def over_budget() -> list[str]:
    found: list[str] = []
    for path in modules():
        source = path.read_text()
        tree = ast.parse(source)
        if (lines := code_lines(source)) > MAX_MODULE_CODE_LINES:
            found.append(f"{name(path)}: {lines} code lines (max {MAX_MODULE_CODE_LINES})")
        found.extend(_functions_over(path, tree))
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                public = [
                    item.name
                    for item in node.body
                    if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef)
                    and not item.name.startswith("_")
                ]
                if len(public) > MAX_PUBLIC_METHODS:
                    found.append(
                        f"{name(path)}:{node.name}: {len(public)} public methods (max {MAX_PUBLIC_METHODS})"
                    )
    return found


def _functions_over(path: Path, tree: ast.Module) -> list[str]:
    found = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                qualified = f"{prefix}{child.name}"
                length = (child.end_lineno or child.lineno) - child.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    found.append(f"{name(path)}:{qualified}: {length} lines (max {MAX_FUNCTION_LINES})")
                visit(child, qualified + ".")
            elif isinstance(child, ast.ClassDef):
                visit(child, f"{prefix}{child.name}.")

    visit(tree, "")
    return found


def test_code_stays_within_budget() -> None:
    found = [entry for entry in over_budget() if entry.split(": ", 1)[0] not in EXEMPT]
    assert not found, "over budget (split the code, or add a justified entry to EXEMPT):\n" + "\n".join(found)


def test_exemptions_are_few_and_still_needed() -> None:
    assert len(EXEMPT) <= 5
    current = {entry.split(": ", 1)[0] for entry in over_budget()}
    stale = sorted(set(EXEMPT) - current)
    assert not stale, f"exempt but within budget now, remove from EXEMPT: {stale}"


def test_init_modules_only_re_export() -> None:
    """A package's ``__init__`` names what the package offers; the code lives in its modules."""
    offenders = []
    for path in PACKAGE.rglob("__init__.py"):
        if "demo" in path.relative_to(PACKAGE).parts:
            continue
        for node in ast.parse(path.read_text()).body:
            allowed = isinstance(node, ast.Import | ast.ImportFrom | ast.If)  # `if TYPE_CHECKING:`
            allowed |= isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
            allowed |= isinstance(node, ast.Assign | ast.AnnAssign) and _is_dunder_assignment(node)
            # a module ``__getattr__`` imports a public name on first use (keeps `import` light)
            allowed |= isinstance(node, ast.FunctionDef) and node.name in ("__getattr__", "__dir__")
            if not allowed:
                offenders.append(f"{name(path)}:{node.lineno}")
    assert not offenders, f"__init__.py holding code, move it to a module: {offenders}"


def _is_dunder_assignment(node: ast.Assign | ast.AnnAssign) -> bool:
    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
    return all(isinstance(t, ast.Name) and t.id.startswith("__") for t in targets)


def test_errors_live_in_errors_module() -> None:
    """Every ``GristmillError`` subclass, however indirect, is defined in ``gristmill/errors.py``."""
    bases: dict[str, tuple[str, set[str]]] = {}  # class name -> (module, base names)
    for path in modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                names = {b.id if isinstance(b, ast.Name) else getattr(b, "attr", "") for b in node.bases}
                bases.setdefault(node.name, (name(path), names))
    errors, grew = {"GristmillError"}, True
    while grew:
        found = {cls for cls, (_, parents) in bases.items() if parents & errors}
        grew = not found <= errors
        errors |= found
    elsewhere = sorted(
        f"{module}:{cls}" for cls in errors if (module := bases[cls][0]) != "gristmill/errors.py"
    )
    assert not elsewhere, f"move these to gristmill/errors.py: {elsewhere}"
