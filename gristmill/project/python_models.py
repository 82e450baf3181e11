"""Python models: ``models/<schema>/<name>.py`` holding one ``@model`` function.

A file is imported once per content, under a module name of its own, with the project folder on
``sys.path`` only while it runs. Its options are validated by the same header model as a SQL
model's, so errors read the same; every error names the file and line."""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import inspect
import sys
import threading
import traceback
import typing
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any, Literal

from gristmill._util.suggest import did_you_mean
from gristmill.authoring.models import ModelFunction, marked
from gristmill.config.secrets import redact
from gristmill.config.settings import ProjectSettings
from gristmill.errors import ConfigError, GristmillError, ProjectError, Transient, TransientModelError
from gristmill.project.checks import parse_check_items
from gristmill.project.headers import ModelHeader, kind_options
from gristmill.project.specs import CheckSpec, ModelSpec
from gristmill.project.validation import validated
from gristmill.project.yamlfile import LineDict, LineList, line_of

Form = Literal["relation", "arrow", "polars", "polars_lazy", "pandas", "spark", "spark_session"]
"""What a parameter receives: a DuckDB relation, a pyarrow Table, a polars DataFrame or
LazyFrame, a pandas DataFrame, a lazy Spark DataFrame (on a spark engine), or the engine's
SparkSession itself (``spark_session``: the one parameter that is not a table read)."""

_CLASSES: dict[tuple[str, str], Form] = {
    ("duckdb", "DuckDBPyRelation"): "relation",
    ("pyarrow", "Table"): "arrow",
    ("polars", "DataFrame"): "polars",
    ("polars", "LazyFrame"): "polars_lazy",
    ("pandas", "DataFrame"): "pandas",
    ("pyspark", "DataFrame"): "spark",
    ("pyspark", "SparkSession"): "spark_session",
}
_PACKAGES = {"_duckdb": "duckdb", "pa": "pyarrow", "pl": "polars", "pd": "pandas"}
_UNIQUE_NAMES = {"DuckDBPyRelation": "duckdb", "LazyFrame": "polars", "SparkSession": "pyspark"}
ACCEPTED_PARAMETERS = (
    "duckdb.DuckDBPyRelation (or no annotation), pyarrow.Table, polars.DataFrame, polars.LazyFrame, "
    "pandas.DataFrame or pyspark.sql.DataFrame"
)
SESSION: Form = "spark_session"
"""The form of a parameter annotated ``pyspark.sql.SparkSession``: it receives the engine's
session, not a table, so it takes no asset of ``reads``."""


@dataclass(frozen=True)
class Parameter:
    """One parameter of a model function: the asset it receives and in what form (the session
    parameter receives no asset: ``asset`` is empty)."""

    name: str
    asset: str
    form: Form
    positional: bool
    """Passed by position (a positional-only parameter), else by name."""


@dataclass(frozen=True)
class PythonModel:
    """An imported model function and where it is."""

    function: Callable[..., Any]
    path: Path
    file: str
    root: Path
    line: int
    """The line of the decorator (or of the ``def``)."""
    mark: ModelFunction
    key_lines: dict[str, int] = field(default_factory=dict)
    """The line of each keyword of the ``@model(...)`` call."""
    item_lines: dict[str, list[int]] = field(default_factory=dict)
    """The line of each item of a list-valued keyword."""
    helpers: tuple[Path, ...] = ()
    """Python files of the project (outside ``models/``) the model's module uses."""
    digest: str = ""
    stamps: tuple[tuple[int, int], ...] = ()

    @property
    def name(self) -> str:
        return getattr(self.function, "__name__", "model")

    def where(self, key: str | None = None) -> str:
        return f"{self.file}:{self.key_lines.get(key, self.line) if key else self.line}"

    def parameters(self, reads: tuple[str, ...]) -> tuple[Parameter, ...]:
        """The function's parameters bound to ``reads``: by name when the names say, else in order."""
        return _bind(self, reads)

    @contextmanager
    def on_path(self) -> Iterator[None]:
        """The project folder on ``sys.path`` (for the model's own imports), only meanwhile."""
        with _on_path(self.root):
            yield

    def failure(self, err: BaseException, doing: str) -> ProjectError | TransientModelError:
        """An exception from the user's code as one line naming file:line (the line that raised it),
        without a traceback. A dropped connection, a timeout or an error marked Transient stays
        transient, so the runner retries the step as ``[run.retries]`` says."""
        if isinstance(err, ProjectError | TransientModelError):
            return err
        where = _user_frame(err, self.path, self.root) or self.where()
        if isinstance(err, SyntaxError):
            return ProjectError(f"invalid Python: {err.msg}", location=where)
        if isinstance(err, GristmillError):
            message, hint = redact(f"{doing}: {err.message}"), err.hint
        else:
            message, hint = redact(f"{doing}: {type(err).__name__}: {err}"), None
        if isinstance(err, Transient | ConnectionError | TimeoutError):
            return TransientModelError(message, location=where, hint=hint)
        return ProjectError(message, location=where, hint=hint)


# -- loading ---------------------------------------------------------------------------------------


def load_python_model(
    path: Path, file: str, asset: str, settings: ProjectSettings
) -> tuple[ModelSpec, list[CheckSpec]]:
    """The spec (and header checks) of ``models/<schema>/<name>.py``."""
    found = import_model(path, file)
    data = LineDict({k: _with_lines(v, found.item_lines.get(k)) for k, v in found.mark.options.items()})
    data.line = found.line
    data.key_lines = {key: found.key_lines.get(key, found.line) for key in data}
    header = validated(ModelHeader, data, file=file, line_of=partial(line_of, data))
    if "dialect" in data:
        raise ConfigError("dialect applies to SQL models, not Python ones", location=found.where("dialect"))
    if header.kind == "view":
        raise ConfigError(
            "a Python model cannot be a view: its rows are computed in Python",
            location=found.where("kind"),
            hint='use kind="table" (the default) or an incremental kind',
        )
    reads = _reads(found)
    found.parameters(reads)  # the signature must match reads
    defaults = settings.defaults_for(asset.split(".", 1)[0])
    spec = ModelSpec(
        asset=asset,
        file=file,
        path=path,
        sql="",
        sql_line=found.line,
        kind=header.kind or ("table" if defaults.kind == "view" else defaults.kind),
        tags=tuple(dict.fromkeys([*defaults.tags, *header.tags])),
        description=header.description or _docstring(found.function),
        owner=header.owner,
        columns=header.columns,
        language="python",
        function=found.name,
        reads=reads,
        **kind_options(header, asset, file, data),
    )
    checks = parse_check_items(data["checks"], asset, file, data.key_lines["checks"]) if header.checks else []
    return spec, checks


def load_function(model: ModelSpec) -> PythonModel:
    """The imported function of a Python model (imported again only if its file changed)."""
    return import_model(model.path, model.file)


def check_reads(model: ModelSpec, known: Collection[str]) -> None:
    """Fail on a ``reads`` asset that is neither a model nor a source table, naming its line."""
    missing = [asset for asset in model.reads if asset not in known]
    if missing:
        found = load_function(model)
        raise ProjectError(
            f'{found.name}() reads "{missing[0]}", which is neither a model nor a source table',
            location=found.where("reads"),
            hint=did_you_mean(missing[0], known) or "reads names assets as <schema>.<name>",
        )


def python_model_fingerprint(model: ModelSpec) -> str:
    """A hash of the model's code with comments and formatting removed: its file and the project
    modules it imports. A comment or a blank line changes nothing; any change to the code does."""
    found = load_function(model)
    digest = hashlib.sha256(_normalised(_read(model.path, model.file), model.file).encode())
    for helper in found.helpers:
        shown = _display(helper, found.root)
        try:
            text = _normalised(helper.read_text(encoding="utf-8"), shown)
        except (OSError, UnicodeDecodeError, ProjectError):
            text = "(unreadable)"
        digest.update(f"\n{shown}\n{text}".encode())
    return digest.hexdigest()


# -- importing -------------------------------------------------------------------------------------

_lock = threading.RLock()
_imported: dict[Path, PythonModel] = {}


def project_root(path: Path, file: str) -> Path:
    """The project folder of a file at ``path`` shown as ``file`` (relative to it)."""
    return path.parents[len(Path(file).parts) - 1]


def import_model(path: Path, file: str) -> PythonModel:
    text = _read(path, file)
    digest = hashlib.sha256(text.encode()).hexdigest()
    with _lock:
        found = _imported.get(path)
        if found is None or found.digest != digest or found.stamps != _stamps(found.helpers):
            found = _imported[path] = _import(path, file, text, digest)
        return found


def _stamps(files: tuple[Path, ...]) -> tuple[tuple[int, int], ...]:
    """Size and modification time of each file, to notice an edit."""
    stamps = []
    for path in files:
        try:
            stat = path.stat()
        except OSError:
            stamps.append((-1, -1))
        else:
            stamps.append((stat.st_size, stat.st_mtime_ns))
    return tuple(stamps)


def _read(path: Path, file: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise ProjectError(f"not UTF-8 text (byte {err.start})", location=file) from None
    except OSError as err:
        raise ProjectError(f"cannot read the model: {err.strerror}", location=file) from None


def _import(path: Path, file: str, text: str, digest: str) -> PythonModel:
    root = project_root(path, file)
    # A name of our own per file, so two projects' models/marts/x.py never meet in sys.modules.
    name = "_gristmill_model_" + hashlib.sha1(str(path).encode()).hexdigest()[:12]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None:
        raise ProjectError("cannot load the file as Python", location=file)
    module = importlib.util.module_from_spec(spec)
    placeholder = PythonModel(lambda: None, path, file, root, 1, ModelFunction())
    sys.modules[name] = module  # dataclasses, typing and pickle look the module up by name
    try:
        with _on_path(root):
            try:
                exec(compile(text, str(path), "exec"), module.__dict__)  # the text hashed is the code run
            except Exception as err:
                raise placeholder.failure(err, "importing the model failed") from None
            return _found(module, path, file, text, digest)
    except ProjectError:
        sys.modules.pop(name, None)
        raise


def _found(module: ModuleType, path: Path, file: str, text: str, digest: str) -> PythonModel:
    """The one ``@model`` function an imported file defines."""
    name, root = module.__name__, project_root(path, file)
    functions = [
        obj
        for obj in vars(module).values()
        if marked(obj) is not None and getattr(obj, "__module__", None) == name
    ]
    if not functions:
        raise ProjectError(
            "no @model function in this file",
            location=file,
            hint="add `from gristmill import model` and put @model(reads=[...]) above the function",
        )
    tree = ast.parse(text, str(path))
    if len(functions) > 1:
        lines = ", ".join(f"{f.__name__}() (line {_decorated(tree, f)[0]})" for f in functions)
        raise ProjectError(
            f"one Python model per file, but {len(functions)} functions are marked @model: {lines}",
            location=f"{file}:{_decorated(tree, functions[1])[0]}",
            hint="move the other functions to their own files under models/<schema>/",
        )
    function = functions[0]
    mark = marked(function)
    assert mark is not None
    line, key_lines, item_lines = _decorated(tree, function)
    if inspect.iscoroutinefunction(function) or inspect.isgeneratorfunction(function):
        raise ProjectError(
            f"{function.__name__}() must be a plain function that returns a table",
            location=f"{file}:{line}",
            hint="no async def and no yield: return the whole table",
        )
    helpers = _helpers(module, tree, path, root)
    return PythonModel(
        function, path, file, root, line, mark, key_lines, item_lines, helpers, digest, _stamps(helpers)
    )


def _decorated(tree: ast.Module, function: Any) -> tuple[int, dict[str, int], dict[str, list[int]]]:
    """The line of the function's ``@model`` decorator, of each keyword, and of each list item."""
    fallback = getattr(getattr(function, "__code__", None), "co_firstlineno", 1)
    for node in tree.body:
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) or node.name != function.__name__:
            continue
        for decorator in node.decorator_list:
            call = decorator if isinstance(decorator, ast.Call) else None
            target = call.func if call is not None else decorator
            named = target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", None)
            if named != "model":
                continue
            keywords = [k for k in call.keywords if k.arg] if call is not None else []
            items = {
                str(k.arg): [item.lineno for item in k.value.elts]
                for k in keywords
                if isinstance(k.value, ast.List | ast.Tuple)
            }
            return decorator.lineno, {str(k.arg): k.lineno for k in keywords}, items
        return node.lineno, {}, {}
    return fallback, {}, {}


def _with_lines(value: Any, lines: list[int] | None) -> Any:
    if isinstance(value, list | tuple) and lines is not None and len(lines) == len(value):
        listed = LineList(value)
        listed.item_lines = lines
        listed.line = lines[0] if lines else 0
        return listed
    return list(value) if isinstance(value, tuple) else value


def _helpers(module: ModuleType, tree: ast.Module, path: Path, root: Path) -> tuple[Path, ...]:
    """Project files (not the model's, not installed packages) the model file imports, or whose
    modules or objects it names at its top level."""
    owners: list[Any] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            owners.extend(_module(alias.name, root) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            owners.append(_module(node.module, root))
            owners.extend(sys.modules.get(f"{node.module}.{alias.name}") for alias in node.names)
    for value in vars(module).values():
        named = getattr(value, "__module__", None)
        owners.append(
            value
            if isinstance(value, ModuleType)
            else sys.modules.get(named)
            if isinstance(named, str)
            else None
        )
    files: set[Path] = set()
    for owner in owners:
        origin = getattr(owner, "__file__", None)
        if not isinstance(origin, str) or owner is module:
            continue
        where = Path(origin).resolve()
        if where != path.resolve() and _in_project(where, root):
            files.add(where)
    return tuple(sorted(files))


def _module(name: str, root: Path) -> Any:
    """An imported module, or else the spec of one the function imports only when it runs."""
    if name in sys.modules:
        return sys.modules[name]
    try:
        with _on_path(root):
            found = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    return SimpleNamespace(__file__=found.origin) if found is not None else None


@contextmanager
def _on_path(root: Path) -> Iterator[None]:
    """The project folder on ``sys.path`` meanwhile; project modules imported meanwhile leave
    ``sys.modules`` again, so an edit to them counts next time and projects never share them."""
    entry = str(root)
    added = entry not in sys.path
    if added:
        sys.path.insert(0, entry)
    before = set(sys.modules)
    try:
        yield
    finally:
        if added and entry in sys.path:
            sys.path.remove(entry)
        packages = {name.partition(".")[0] for name in before}
        for name in set(sys.modules) - before:
            origin = getattr(sys.modules[name], "__file__", None)
            if name.partition(".")[0] in packages:
                continue  # part of a package imported before (gristmill itself, in a checkout)
            if isinstance(origin, str) and _in_project(Path(origin).resolve(), root):
                del sys.modules[name]


def _in_project(path: Path, root: Path) -> bool:
    return path.is_relative_to(root.resolve()) and not {"site-packages", "dist-packages"} & set(path.parts)


def _display(path: Path, root: Path) -> str:
    try:
        resolved = path.resolve()
    except OSError:
        return str(path)
    return (
        resolved.relative_to(root.resolve()).as_posix()
        if resolved.is_relative_to(root.resolve())
        else str(path)
    )


def _user_frame(err: BaseException, path: Path, root: Path) -> str | None:
    """``file:line`` where ``err`` happened in the user's code: a syntax error's own place, else the
    innermost frame in a project file (the model's or a module of the project it calls)."""
    if isinstance(err, SyntaxError) and err.filename and _in_project(Path(err.filename).resolve(), root):
        return f"{_display(Path(err.filename), root)}:{err.lineno or 1}"
    frames = [(Path(f.filename), f.lineno) for f in traceback.extract_tb(err.__traceback__)]
    model = path.resolve()
    theirs = [f for f in frames if _resolves_to(f[0], model) or _in_project(_resolved(f[0]), root)]
    if not theirs:
        return None
    return f"{_display(theirs[-1][0], root)}:{theirs[-1][1]}"


def _resolved(path: Path) -> Path:
    try:
        return path.resolve() if path.is_absolute() else Path("/nonexistent")
    except OSError:
        return Path("/nonexistent")


def _resolves_to(path: Path, target: Path) -> bool:
    try:
        return path.resolve() == target
    except OSError:
        return False


# -- options, reads and parameters -----------------------------------------------------------------


def _docstring(function: Callable[..., Any]) -> str | None:
    doc = inspect.getdoc(function)
    return doc.strip().split("\n\n", 1)[0] if doc else None


def _reads(found: PythonModel) -> tuple[str, ...]:
    where = found.where("reads")
    reads: list[str] = []
    for value in found.mark.reads:
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(
                f"reads: {value!r} is not an asset name",
                location=where,
                hint='e.g. reads=["staging.customer"]',
            )
        schema, dot, name = value.partition(".")
        if not dot or not schema or not name or "." in name:
            raise ConfigError(
                f'reads: "{value}" needs its schema, as <schema>.<name>',
                location=where,
                hint=f'e.g. "staging.{value}"; a model is <schema folder>.<file name>, '
                "a source table <schema>.<source>__<table>",
            )
        if value in reads:
            raise ConfigError(f'reads: "{value}" is listed twice', location=where)
        reads.append(value)
    return tuple(reads)


def _bind(found: PythonModel, reads: tuple[str, ...]) -> tuple[Parameter, ...]:
    name = found.name
    try:
        signature = inspect.signature(found.function)
    except (TypeError, ValueError):
        raise ProjectError(f"cannot read the parameters of {name}()", location=found.where()) from None
    try:
        hints = typing.get_type_hints(found.function)
    except Exception:  # an annotation naming something not importable: read it as written
        hints = {}
    everything = list(signature.parameters.values())
    sessions = [p for p in everything if _form(hints.get(p.name, p.annotation)) == SESSION]
    if len(sessions) > 1:
        raise ConfigError(
            f"{name}() takes {len(sessions)} SparkSession parameters; one receives the session",
            location=found.where(),
        )
    params = [p for p in everything if p not in sessions]
    shown = ", ".join(asset.split(".", 1)[1] for asset in reads)
    for param in params:
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise ConfigError(
                f"{name}() takes {'*' if param.kind is param.VAR_POSITIONAL else '**'}{param.name}: a "
                "Python model takes one parameter per asset it reads",
                location=found.where(),
                hint=f"def {name}({shown})",
            )
    if len(params) != len(reads):
        plural = "s" if len(params) != 1 else ""
        raise ConfigError(
            f"{name}() takes {len(params)} parameter{plural} but reads {len(reads)} "
            f"asset{'s' if len(reads) != 1 else ''}",
            location=found.where("reads"),
            hint=f"one parameter per asset in reads, in order or by name: def {name}({shown})",
        )
    by_name = _names(reads)
    named = [by_name.get(p.name) for p in params]
    if all(named) and len(set(named)) == len(named):
        bound = [str(asset) for asset in named]
    else:
        bound = list(reads)
        for param, asset, match in zip(params, bound, named, strict=True):
            if match is not None and match != asset:
                raise ConfigError(
                    f'{name}(): parameter "{param.name}" would receive {asset}, not {match}',
                    location=found.where(),
                    hint="name every parameter after the table it receives, or list them in the "
                    "order of reads",
                )
    result = [Parameter(p.name, "", SESSION, p.kind is p.POSITIONAL_ONLY) for p in sessions]
    for param, asset in zip(params, bound, strict=True):
        annotation = hints.get(param.name, param.annotation)
        form = _form(annotation)
        if form is None:
            raise ConfigError(
                f'{name}(): parameter "{param.name}" is annotated {_shown(annotation)}, which is not a '
                "table a model can receive",
                location=found.where(),
                hint=f"annotate it {ACCEPTED_PARAMETERS}",
            )
        result.append(Parameter(param.name, asset, form, param.kind is param.POSITIONAL_ONLY))
    order = [p.name for p in everything]
    return tuple(sorted(result, key=lambda p: order.index(p.name)))  # in the signature's order


def _names(reads: tuple[str, ...]) -> dict[str, str]:
    """Parameter names that pick an asset: its name (unless two share it) or ``<schema>__<name>``."""
    short: dict[str, list[str]] = {}
    for asset in reads:
        short.setdefault(asset.split(".", 1)[1], []).append(asset)
    names = {key: assets[0] for key, assets in short.items() if len(assets) == 1}
    names.update({asset.replace(".", "__"): asset for asset in reads})
    return names


def _form(annotation: Any) -> Form | None:
    if annotation is inspect.Parameter.empty or annotation is Any:
        return "relation"
    if isinstance(annotation, str):
        package, _, name = annotation.strip().rpartition(".")
        package = package.partition(".")[0] if package else _UNIQUE_NAMES.get(name, "")
    elif isinstance(annotation, type):
        package, name = annotation.__module__.partition(".")[0], annotation.__name__
    else:
        return None
    return _CLASSES.get((_PACKAGES.get(package, package), name))


def _shown(annotation: Any) -> str:
    if isinstance(annotation, type):
        return f"{annotation.__module__.partition('.')[0]}.{annotation.__qualname__}"
    return str(annotation)


def _normalised(text: str, shown: str) -> str:
    try:
        return ast.dump(ast.parse(text))
    except SyntaxError as err:
        raise ProjectError(f"invalid Python: {err.msg}", location=f"{shown}:{err.lineno or 1}") from None
