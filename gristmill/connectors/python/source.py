"""Call ``@source`` functions from a project's Python module and stream what they yield as Arrow."""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import itertools
import sys
import traceback
from collections.abc import Callable, Generator, Iterable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from gristmill._util.naming import snake_case
from gristmill._util.suggest import did_you_mean
from gristmill.config.secrets import redact
from gristmill.connectors.arrowbatches import (
    ARROW_ERRORS,
    extra_fields,
    fails,
    field_values,
    first_failure,
    landed_names,
    widen,
)
from gristmill.connectors.base import parse_options
from gristmill.connectors.python.config import PythonSourceOptions, PythonTableOptions
from gristmill.connectors.python.marking import SourceFunction, marked
from gristmill.errors import ConfigError, GristmillError, SourceError, TransientSourceError
from gristmill.project.specs import SourceSpec, SourceTable

_loads = itertools.count()
_DECLARE = "declare the types with @source(schema=...)"


class Source:
    def __init__(self, spec: SourceSpec, root: Path) -> None:
        self.spec = spec
        self.root = root
        self.options = parse_options(PythonSourceOptions, spec.options, spec.where())
        self.tables = {key: _table_options(table) for key, table in spec.tables.items()}
        self._module: ModuleType | None = None
        self._file: Path | None = None
        self._owned: str | None = None  # the sys.modules key this source registered, removed on close
        # schema() pulls a first chunk; read() with the same arguments continues that call.
        self._pending: dict[str, _Stream] = {}

    # -- the protocol ------------------------------------------------------------------------------

    def schema(self, table: SourceTable) -> pa.Schema:
        """The declared schema, or else the first chunk's: that calls the function (kept for read)."""
        function, mark = self._function(table)
        if mark.schema is not None:
            return _landed_schema(mark.schema, self._what(table, function))
        stream = self._open(table, None)
        self._pending[table.key] = stream
        return stream.schema

    def read(self, table: SourceTable, since: Any = None) -> pa.RecordBatchReader:
        incremental = table.load.incremental
        since = since if incremental is not None else None
        stream = self._open(table, since)
        cursor = incremental.cursor if incremental is not None and since is not None else None
        if cursor is not None and stream.schema.names and cursor not in stream.schema.names:
            names = stream.schema.names
            raise ConfigError(
                f'incremental cursor "{cursor}" is not a column of {table.asset}',
                location=table.location,
                hint=did_you_mean(cursor, names) or "columns: " + ", ".join(names),
            )
        return pa.RecordBatchReader.from_batches(stream.schema, stream.batches(cursor, since))

    def change_marker(self, table: SourceTable) -> str | None:
        return None  # a function's data can change at any time: always reload

    def close(self) -> None:
        for stream in self._pending.values():
            stream.close()
        self._pending.clear()
        if self._owned is not None:
            for name in [n for n in sys.modules if n == self._owned or n.startswith(self._owned + ".")]:
                del sys.modules[name]
            self._owned = None
        self._module = None

    # -- the module and its functions --------------------------------------------------------------

    @property
    def module(self) -> ModuleType:
        if self._module is None:
            self._module = self._import()
        return self._module

    def _import(self) -> ModuleType:
        target = self.options.module
        path = self._module_file(target)
        if path is not None:
            return self._load_file(path)
        try:
            found = importlib.util.find_spec(target)
        except (ImportError, ValueError):
            found = None
        if found is None:
            raise ConfigError(
                f'no module "{target}": not a file in the project nor an installed module',
                location=self.spec.where("module"),
                hint="module: is a file relative to the project folder (pipelines/weather.py) "
                "or a dotted module name",
            )
        self._file = Path(found.origin).resolve() if found.origin else None
        try:
            return importlib.import_module(target)
        except Exception as err:
            raise self._failure(err, f"{self.spec.file}: importing {target} failed") from None

    def _module_file(self, target: str) -> Path | None:
        """The project file ``module:`` names, or None for a module to import by name."""
        if target.endswith(".py") or "/" in target or "\\" in target:
            path = Path(target) if Path(target).is_absolute() else self.root / target
            if path.is_dir():
                path = path / "__init__.py"
            if not path.is_file():
                raise ConfigError(
                    f"no Python file {target} in the project",
                    location=self.spec.where("module"),
                    hint="module: is relative to the project folder",
                )
            return path.resolve()
        base = self.root.joinpath(*target.split("."))
        for candidate in (base.with_name(base.name + ".py"), base / "__init__.py"):
            if candidate.is_file():
                return candidate.resolve()
        return None

    def _load_file(self, path: Path) -> ModuleType:
        # A name of our own, so two projects' pipelines/weather.py never meet in sys.modules.
        digest = hashlib.sha1(str(path).encode()).hexdigest()[:10]
        name = f"_gristmill_source_{digest}_{next(_loads)}"
        package = [str(path.parent)] if path.name == "__init__.py" else None
        spec = importlib.util.spec_from_file_location(name, path, submodule_search_locations=package)
        if spec is None or spec.loader is None:
            raise ConfigError(
                f"cannot load {self._display(path)} as Python", location=self.spec.where("module")
            )
        module = importlib.util.module_from_spec(spec)
        self._file = path
        sys.modules[name] = module  # dataclasses, typing and pickle look the module up while it runs
        self._owned = name
        try:
            spec.loader.exec_module(module)
        except Exception as err:
            self.close()
            raise self._failure(err, f"{self.spec.file}: importing {self._display(path)} failed") from None
        return module

    def _function(self, table: SourceTable) -> tuple[Callable[..., Any], SourceFunction]:
        name = self.tables[table.key].function or table.key
        namespace = vars(self.module)
        found = {attr: obj for attr, obj in namespace.items() if marked(obj) is not None}
        if name in found:
            mark = marked(found[name])
            assert mark is not None
            return found[name], mark
        where = self._where(table, "function")
        shown = self.options.module
        if callable(namespace.get(name)):
            raise ConfigError(
                f"{name}() in {shown} is not marked with @source",
                location=where,
                hint="add `from gristmill.sources import source` and put @source above the function",
            )
        listed = "@source functions: " + ", ".join(sorted(found)) if found else None
        raise ConfigError(
            f'{shown} has no @source function "{name}"',
            location=where,
            hint=did_you_mean(name, found) or listed or "mark functions with @source",
        )

    def _open(self, table: SourceTable, since: Any) -> _Stream:
        function, mark = self._function(table)
        kwargs = self._kwargs(table, function, since)
        pending = self._pending.pop(table.key, None)
        if pending is not None:
            if pending.kwargs == kwargs:
                return pending
            pending.close()
        size = self.tables[table.key].batch_size or self.options.batch_size
        return _Stream(self, self._what(table, function), function, kwargs, mark.schema, size, since)

    def _kwargs(self, table: SourceTable, function: Callable[..., Any], since: Any) -> dict[str, Any]:
        kwargs = dict(self.tables[table.key].params)
        try:
            signature: inspect.Signature | None = inspect.signature(function)
        except (TypeError, ValueError):
            signature = None
        if table.load.incremental is not None and _accepts_since(signature):
            if "since" in kwargs:
                raise ConfigError(
                    'params: "since" is passed by the loader on an incremental table',
                    location=self._where(table, "params"),
                )
            kwargs["since"] = since
        if signature is not None:
            try:
                signature.bind(**kwargs)
            except TypeError as err:
                name = getattr(function, "__name__", "function")
                raise ConfigError(
                    f"{name}(): {err}", location=self._where(table, "params"), hint=f"def {name}{signature}"
                ) from None
        return kwargs

    # -- messages ----------------------------------------------------------------------------------

    def _what(self, table: SourceTable, function: Callable[..., Any]) -> str:
        return f"{self.spec.file} ({table.key}): {getattr(function, '__name__', 'function')}()"

    def _where(self, table: SourceTable, key: str) -> str:
        line = getattr(table.options, "key_lines", {}).get(key)
        return f"{self.spec.file}:{line}" if line else table.location

    def _display(self, path: Path) -> str:
        root = self.root.resolve()
        return path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)

    def _failure(self, err: Exception, doing: str) -> GristmillError:
        """An exception from the user's code, pointing at the line in their file that raised it."""
        if isinstance(err, GristmillError):
            return err
        frames = [(Path(f.filename), f.lineno) for f in traceback.extract_tb(err.__traceback__)]
        if isinstance(err, SyntaxError) and err.filename:
            frames.append((Path(err.filename), err.lineno))
        root = self.root.resolve()
        theirs = [f for f in frames if self._file is not None and _same(f[0], self._file)] or [
            f for f in frames if f[0].resolve().is_relative_to(root) and "site-packages" not in f[0].parts
        ]
        at = f" at {self._display(theirs[-1][0].resolve())}:{theirs[-1][1]}" if theirs else ""
        message = f"{err.msg} (line {err.lineno})" if isinstance(err, SyntaxError) and not theirs else err
        # A dropped connection or a timeout may pass on the next attempt: the runner retries those.
        kind = TransientSourceError if isinstance(err, ConnectionError | TimeoutError) else SourceError
        return kind(redact(f"{doing}{at}: {type(err).__name__}: {message}"))


class _Stream:
    """One call of a source function: what it yields, as record batches under one schema.

    The declared schema, or else the first chunk, fixes the schema; later chunks are cast to it."""

    def __init__(
        self,
        source: Source,
        what: str,
        function: Callable[..., Any],
        kwargs: dict[str, Any],
        declared: pa.Schema | None,
        batch_size: int,
        since: Any,
    ) -> None:
        self.kwargs = kwargs
        self.what = what
        self._source = source
        self._chunk = -1  # index of the chunk being made, for messages
        self._chunks = self._arrow(function, batch_size)
        self._first: pa.RecordBatch | None = None
        if declared is not None:
            self.schema = _landed_schema(declared, what)
            return
        first = next(self._chunks, None)
        if first is None:
            if since is None:
                raise SourceError(
                    f"{what} produced no rows, so its columns are unknown",
                    hint="declare them with @source(schema=...)",
                )
            self.schema = pa.schema([])  # nothing new since the cursor
            return
        first = _landed(first, what)
        self.schema = pa.schema([f.with_type(widen(f.type)) for f in first.schema])
        self._first = self._conform(first, 0)

    def batches(self, cursor: str | None, since: Any) -> Iterator[pa.RecordBatch]:
        bound = None if cursor is None else _bound(since, self.schema.field(cursor).type, self.what)
        first, self._first = self._first, None
        later = (self._conform(_landed(batch, self.what), self._chunk) for batch in self._chunks)
        for batch in later if first is None else itertools.chain([first], later):
            if bound is not None and cursor is not None:
                batch = batch.filter(pc.greater_equal(batch.column(cursor), bound))
            yield batch

    def close(self) -> None:
        self._chunks.close()

    # -- from what the function yields to record batches -------------------------------------------

    def _items(self, function: Callable[..., Any]) -> Iterator[Any]:
        """The function's items one by one; its exceptions point at the user's code."""
        try:
            result = function(**self.kwargs)
        except Exception as err:
            raise self._source._failure(err, f"{self.what} failed") from None
        if isinstance(result, dict) or _is_tabular(result):
            result = [result]
        elif result is None or isinstance(result, str | bytes) or not isinstance(result, Iterable):
            raise SourceError(
                f"{self.what} returned {type(result).__name__}, not rows",
                hint="a source function yields rows (or returns an iterable of them): dicts, "
                "lists of dicts, Arrow record batches or tables, pandas or polars data frames",
            )
        iterator = iter(result)
        while True:
            try:
                item = next(iterator)
            except StopIteration:
                return
            except Exception as err:
                raise self._source._failure(err, f"{self.what} failed") from None
            yield item

    def _arrow(self, function: Callable[..., Any], batch_size: int) -> Generator[pa.RecordBatch]:
        """Dicts gathered into chunks of ``batch_size``; Arrow and data frames passed straight on."""
        rows: list[Any] = []
        for position, item in enumerate(self._items(function)):
            if isinstance(item, dict):
                rows.append(item)
            elif isinstance(item, list | tuple):
                rows.extend(item)
            elif _is_tabular(item):
                if rows:
                    yield from self._rows(rows)
                    rows = []
                for batch in self._tabular(item):
                    self._chunk += 1
                    yield batch
                continue
            else:
                raise SourceError(
                    f"{self.what} yielded {type(item).__name__} (item {position})",
                    hint="yield dicts, lists of dicts, Arrow record batches or tables, or data frames",
                )
            if len(rows) >= batch_size:
                cut = len(rows) - len(rows) % batch_size
                for start in range(0, cut, batch_size):
                    yield from self._rows(rows[start : start + batch_size])
                rows = rows[cut:]
        if rows:
            yield from self._rows(rows)

    def _rows(self, rows: list[Any]) -> Iterator[pa.RecordBatch]:
        self._chunk += 1
        try:
            array = pa.array(rows)  # one C++ pass; infers a struct with the union of the keys
        except ARROW_ERRORS as err:
            raise self._row_error(rows, err) from None
        if not pa.types.is_struct(array.type):
            raise SourceError(f"{self.what}: chunk {self._chunk} holds {array.type} values, not dicts")
        yield pa.RecordBatch.from_struct_array(array)

    def _tabular(self, item: Any) -> Iterable[pa.RecordBatch]:
        try:
            if isinstance(item, pa.RecordBatch):
                return [item]
            if isinstance(item, pa.Table):
                return item.to_batches()
            if isinstance(item, pa.RecordBatchReader):
                return item
            if type(item).__module__.partition(".")[0] == "pandas":
                return pa.Table.from_pandas(item, preserve_index=False).to_batches()
            if type(item).__module__.partition(".")[0] == "polars":
                return item.to_arrow().to_batches()
            return pa.RecordBatchReader.from_stream(item)
        except ARROW_ERRORS as err:
            raise SourceError(f"{self.what}: chunk {self._chunk + 1}: {err}") from None

    def _row_error(self, rows: list[Any], err: Exception) -> SourceError:
        row = first_failure(len(rows), lambda n: pa.array(rows[:n]))
        bad = rows[row]
        if not isinstance(bad, dict):
            return SourceError(
                f"{self.what}: chunk {self._chunk}, row {row} is a {type(bad).__name__}, not a dict"
            )
        prefix = rows[: row + 1]
        field = next((key for key in bad if fails(field_values, prefix, key)), None)
        if field is None:
            return SourceError(
                f"{self.what}: chunk {self._chunk}, row {row}: {err}", hint="rows are dicts with string keys"
            )
        return SourceError(
            f'{self.what}: chunk {self._chunk}, row {row}, field "{field}": {err}',
            hint="the values of one field must share a type (numbers may mix: ints become floats)",
        )

    def _conform(self, batch: pa.RecordBatch, chunk: int) -> pa.RecordBatch:
        """Cast a chunk to the schema: missing fields become nulls, new fields are errors."""
        if batch.schema.equals(self.schema):
            return batch
        target = pa.struct(list(self.schema))
        extra = list(extra_fields(pa.struct(list(batch.schema)), target, ""))
        if extra:
            raise SourceError(
                f'{self.what}: chunk {chunk} has a field the schema lacks: "{extra[0]}"',
                hint="the declared schema or else the first chunk fixes the columns; "
                "declare every field with @source(schema=...)",
            )
        array = pa.StructArray.from_arrays(batch.columns, fields=list(batch.schema))
        try:
            return pa.RecordBatch.from_struct_array(pc.cast(array, target))
        except ARROW_ERRORS as err:
            raise self._cast_error(batch, target, chunk, err) from None

    def _cast_error(
        self, batch: pa.RecordBatch, target: pa.StructType, chunk: int, err: Exception
    ) -> SourceError:
        array = pa.StructArray.from_arrays(batch.columns, fields=list(batch.schema))
        row = first_failure(len(batch), lambda n: pc.cast(array.slice(0, n), target))
        names = [n for n in batch.schema.names if n in self.schema.names]
        field = next(
            (n for n in names if fails(pc.cast, batch.column(n).slice(row, 1), self.schema.field(n).type)),
            names[0] if names else "?",
        )
        wanted = self.schema.field(field).type if field in self.schema.names else None
        hint = (
            f'the first chunk held only nulls in "{field}", so its type is unknown; ' + _DECLARE
            if wanted is not None and pa.types.is_null(wanted)
            else f'"{field}" is {wanted} in the schema; ' + _DECLARE + " or make the values agree"
        )
        return SourceError(f'{self.what}: chunk {chunk}, row {row}, field "{field}": {err}', hint=hint)


# -- helpers ---------------------------------------------------------------------------------------


def _table_options(table: SourceTable) -> PythonTableOptions:
    options = table.options
    # `tables: [readings]` arrives as {table: readings}: a list names the functions themselves.
    if set(options) == {"table"} and snake_case(str(options["table"])) == table.key:
        return PythonTableOptions(function=str(options["table"]))
    return parse_options(PythonTableOptions, options, table.location)


def _accepts_since(signature: inspect.Signature | None) -> bool:
    if signature is None:
        return False
    parameter = signature.parameters.get("since")
    if parameter is not None:
        return parameter.kind not in (parameter.POSITIONAL_ONLY, parameter.VAR_POSITIONAL)
    return any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values())


def _is_tabular(item: Any) -> bool:
    if isinstance(item, pa.RecordBatch | pa.Table | pa.RecordBatchReader):
        return True
    package = type(item).__module__.partition(".")[0]
    if package in ("pandas", "polars"):
        return type(item).__name__ == "DataFrame"
    return hasattr(item, "__arrow_c_stream__")


def _same(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b
    except OSError:
        return False


def _landed_names(names: list[str], what: str) -> list[str]:
    return landed_names(names, what, "rename one of them in the function")


def _landed_schema(schema: pa.Schema, what: str) -> pa.Schema:
    names = _landed_names(schema.names, what)
    return pa.schema([f.with_name(n) for f, n in zip(schema, names, strict=True)])


def _landed(batch: pa.RecordBatch, what: str) -> pa.RecordBatch:
    return batch.rename_columns(_landed_names(batch.schema.names, what)).replace_schema_metadata(None)


def _bound(since: Any, type_: pa.DataType, what: str) -> pa.Scalar:
    """``since`` as a scalar of the cursor column's type."""
    try:
        return pa.scalar(since, type=type_)
    except (*ARROW_ERRORS, TypeError, ValueError):
        pass
    try:
        return pa.scalar(since).cast(type_)
    except (*ARROW_ERRORS, TypeError, ValueError):
        raise SourceError(
            f"{what}: since {since!r} does not compare with the cursor column ({type_})"
        ) from None
