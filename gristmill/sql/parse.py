"""Parse a model's SQL once; find the tables it reads; report errors at file:line:col."""

from __future__ import annotations

import difflib
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass

import sqlglot
import sqlglot.dialects.duckdb
from sqlglot import exp
from sqlglot.tokens import TokenType

from gristmill.errors import SQLError
from gristmill.project.dialect import PROJECT_DIALECT


def verbatim(text: str) -> exp.Query:
    """A query over SQL text sqlglot could not parse, sent to the engine exactly as written (a
    variable renders as its text; the newline keeps a trailing comment from eating the paren)."""
    return exp.select("*").from_(exp.Subquery(this=exp.var(text + "\n"), alias="_gm_model"))


@dataclass(frozen=True)
class TableRef:
    """A table the model reads, as written: ``schema.name`` plus where it appears."""

    asset: str
    line: int
    col: int


@dataclass(frozen=True, eq=False)
class ParsedModel:
    """A model's SQL with what it reads. The tree is parsed on first use: a model known from an
    earlier run (``summary``) plans without being parsed again."""

    file: str
    text: str
    first_line: int
    tree: exp.Query | None
    reads: tuple[TableRef, ...]
    dialect: str = PROJECT_DIALECT
    """The dialect the model is written in."""
    warning: str | None = None
    """Why the model passes through unparsed (``file:line:col: message``), when it does."""
    spans: tuple[tuple[int, int, str], ...] = ()
    """Pass-through only: where each ``schema.name`` it reads appears in the text."""
    normalised: str | None = None

    @property
    def passthrough(self) -> bool:
        return self.warning is not None

    @property
    def expression(self) -> exp.Query:
        if self.tree is None:
            fresh = parse_model(self.text, file=self.file, first_line=self.first_line, dialect=self.dialect)
            object.__setattr__(self, "tree", fresh.expression)
        assert self.tree is not None
        return self.tree

    def fresh(self) -> exp.Query:
        """A new tree of the query for a caller that changes it: parsing the text again costs a
        fraction of copying a tree."""
        if self.passthrough:
            return self.expression.copy()
        tree = sqlglot.parse_one(self.text, dialect=self.dialect)
        assert isinstance(tree, exp.Query)
        return tree

    def summary(self) -> str:
        """What planning needs without the tree, as JSON: reads and the normalised SQL's digest."""
        reads = [[r.asset, r.line, r.col] for r in self.reads]
        return json.dumps({"reads": reads, "normalised": self.fingerprint_sql})

    @classmethod
    def from_summary(
        cls, summary: str, *, text: str, file: str, first_line: int, dialect: str
    ) -> ParsedModel:
        data = json.loads(summary)
        reads = tuple(TableRef(a, line, col) for a, line, col in data["reads"])
        return cls(file, text, first_line, None, reads, dialect, normalised=data["normalised"])

    def position(self, node: exp.Expr) -> tuple[int, int] | None:
        """File line and column of a node, from the token offsets sqlglot records."""
        first = node.args.get("db") if isinstance(node, exp.Table) else None
        first = first or node.args.get("table") if isinstance(node, exp.Column) else first
        anchor = first if isinstance(first, exp.Expr) else node.this
        meta = (anchor.meta if isinstance(anchor, exp.Expr) else {}) or node.meta
        start = meta.get("start")
        if start is None:
            return None
        line = self.first_line + self.text.count("\n", 0, start)
        col = start - (self.text.rfind("\n", 0, start) + 1) + 1
        return line, col

    def where(self, node: exp.Expr | None = None) -> str:
        position = self.position(node) if node is not None else None
        return f"{self.file}:{position[0]}:{position[1]}" if position else f"{self.file}:{self.first_line}"

    @property
    def fingerprint_sql(self) -> str:
        """A digest of the SQL normalised so that formatting and comments do not count as a change."""
        if self.normalised is None:
            sql = (
                self.text
                if self.passthrough
                else self.expression.sql(dialect=PROJECT_DIALECT, normalize=True, comments=False, copy=False)
            )
            object.__setattr__(self, "normalised", hashlib.sha256(sql.encode()).hexdigest())
        assert self.normalised is not None
        return self.normalised


def parse_model(
    text: str, *, file: str, first_line: int = 1, dialect: str = PROJECT_DIALECT, passthrough: bool = False
) -> ParsedModel:
    """Parse a model written in ``dialect``; the AST is then rendered in the engine's dialect.

    SQL the parser cannot read is an error at its file line and column, unless the model opted
    into ``passthrough`` (then it runs as written, with a warning)."""
    try:
        statements = [s for s in sqlglot.parse(text, dialect=dialect) if s is not None]
    except sqlglot.ParseError as err:
        detail = err.errors[0] if err.errors else {}
        line = int(detail.get("line", 1)) + first_line - 1
        highlight = str(detail.get("highlight", ""))
        col = max(1, int(detail.get("col", 1)) - len(highlight) + 1)
        description = str(detail.get("description", "")).split(" for <class")[0]
        if passthrough:
            warning = f'{file}:{line}:{col}: cannot parse near "{highlight}" ({description})'
            return _passthrough(text, file, first_line, dialect, warning)
        raise _syntax_error(text, file, first_line, dialect, (line, col, highlight, description)) from None
    except sqlglot.TokenError as err:
        raise _token_error(text, file, first_line, err) from None
    if len(statements) != 1:
        raise SQLError(
            f"a model is exactly one SELECT statement, found {len(statements)}",
            location=f"{file}:{first_line}",
            hint="split it into one model per file",
        )
    [statement] = statements
    if not isinstance(statement, exp.Query):
        raise SQLError(
            f"a model is a SELECT query, not {statement.key.upper()}",
            location=f"{file}:{first_line}",
            hint="write the SELECT; Gristmill creates and replaces the table itself",
        )
    parsed = ParsedModel(file, text, first_line, statement, (), dialect)
    return ParsedModel(file, text, first_line, statement, _reads(parsed), dialect)


# Words a typo most often hides in: a misspelt one reads as a name, and the parser stops later.
_KEYWORDS = (
    "select", "from", "where", "group", "order", "having", "join", "inner", "outer", "left", "right",
    "cross", "limit", "union", "except", "intersect", "qualify", "window", "partition", "distinct",
    "between", "case", "when", "then", "else", "using", "with", "over", "offset", "like",
)  # fmt: skip
_PASSTHROUGH_HINT = (
    "fix the SQL there; if it is SQL the engine accepts but Gristmill's parser does not, "
    "`-- passthrough: true` in the model's header runs it as written (unvalidated, no column lineage)"
)


def _syntax_error(
    text: str, file: str, first_line: int, dialect: str, stop: tuple[int, int, str, str]
) -> SQLError:
    """The parse error at the place to fix: a misspelt keyword before the point where the parser
    stopped (``selec id as x`` stops at ``as``) is named at its own line and column."""
    line, col, highlight, description = stop
    stopped = f'the parser stopped at {line}:{col} near "{highlight}": {description}'
    try:
        tokens = sqlglot.Dialect.get_or_raise(dialect).tokenize(text)
    except sqlglot.TokenError:
        tokens = []
    suspect = None
    for index, token in enumerate(tokens):
        at = (first_line + token.line - 1, token.col - len(token.text) + 1)
        if at > (line, col):
            break
        qualified = any(
            0 <= i < len(tokens) and tokens[i].token_type == TokenType.DOT for i in (index - 1, index + 1)
        )
        if token.token_type != TokenType.VAR or qualified or not token.text.isalpha():
            continue  # names like order_id or t1 are names
        close = difflib.get_close_matches(token.text.lower(), _KEYWORDS, n=1, cutoff=0.8)
        if close and close[0] != token.text.lower():
            suspect = (at, token.text, close[0])
    if suspect is None:
        return SQLError(
            f'cannot parse the SQL near "{highlight}" ({description})',
            location=f"{file}:{line}:{col}",
            hint=_PASSTHROUGH_HINT,
        )
    (at_line, at_col), word, keyword = suspect
    return SQLError(
        f'cannot parse the SQL: "{word}" is not a keyword ({stopped})',
        location=f"{file}:{at_line}:{at_col}",
        hint=f'did you mean "{keyword}"?',
    )


_OPENERS = {"'": ("'", "a string"), '"': ('"', "a quoted name"), "/*": ("*/", "a comment")}


def _token_error(text: str, file: str, first_line: int, err: Exception) -> SQLError:
    """SQL that does not even split into tokens: almost always a quote or comment left open,
    named where it opens."""
    index = 0
    while index < len(text):
        if text.startswith("--", index):
            end = text.find("\n", index)
            index = len(text) if end < 0 else end + 1
            continue
        opener = "/*" if text.startswith("/*", index) else text[index]
        if opener in _OPENERS:
            closer, what = _OPENERS[opener]
            end = text.find(closer, index + len(opener))
            if end < 0:
                line = first_line + text.count("\n", 0, index)
                col = index - (text.rfind("\n", 0, index) + 1) + 1
                return SQLError(
                    f"{what} opened here is never closed",
                    location=f"{file}:{line}:{col}",
                    hint=f"add {closer}",
                )
            index = end + len(closer)
            continue
        index += 1
    return SQLError(f"cannot read the SQL: {err}", location=f"{file}:{first_line}")


def asset_name(table: exp.Table) -> str:
    """``schema.name`` as the engine resolves it: unquoted identifiers are case-insensitive."""
    parts = [table.args.get("db"), table.this]
    names = [p.name if p.quoted else p.name.lower() for p in parts if isinstance(p, exp.Identifier)]
    return ".".join(names)


def _reads(parsed: ParsedModel) -> tuple[TableRef, ...]:
    ctes = {cte.alias_or_name.lower() for cte in parsed.expression.find_all(exp.CTE)}
    refs: list[TableRef] = []
    for table in parsed.expression.find_all(exp.Table):
        if not table.name or isinstance(table.this, exp.Func):
            continue  # a table function such as range() or read_csv()
        if not table.db and table.name.lower() in ctes:
            continue
        if table.catalog:
            raise SQLError(
                f'"{table.sql(dialect=PROJECT_DIALECT)}" names a catalog; refer to tables as <schema>.<name>',
                location=parsed.where(table),
            )
        line, col = parsed.position(table) or (parsed.first_line, 1)
        refs.append(TableRef(asset_name(table), line, col))
    return tuple(refs)


def _passthrough(text: str, file: str, first_line: int, dialect: str, warning: str) -> ParsedModel:
    """A model sqlglot cannot parse: its reads are found in the token stream (``schema . name``
    not part of a longer dotted name), and the text runs as written, with only those names
    swapped for physical tables."""
    try:
        tokens = sqlglot.Dialect.get_or_raise(dialect).tokenize(text)
    except sqlglot.TokenError as err:
        raise SQLError(f"cannot read the SQL: {err}", location=f"{file}:{first_line}") from None
    names = (TokenType.VAR, TokenType.IDENTIFIER)
    spans: list[tuple[int, int, str]] = []
    refs: list[TableRef] = []
    for i in range(len(tokens) - 2):
        first, dot, second = tokens[i : i + 3]
        if first.token_type not in names or dot.token_type != TokenType.DOT or second.token_type not in names:
            continue
        if (i > 0 and tokens[i - 1].token_type == TokenType.DOT) or (
            i + 3 < len(tokens) and tokens[i + 3].token_type == TokenType.DOT
        ):
            continue
        parts = [t.text if t.token_type == TokenType.IDENTIFIER else t.text.lower() for t in (first, second)]
        asset = ".".join(parts)
        spans.append((first.start, second.end + 1, asset))
        refs.append(TableRef(asset, first_line + first.line - 1, first.col - len(first.text) + 1))
    query = verbatim(text)
    return ParsedModel(file, text, first_line, query, tuple(refs), dialect, warning, tuple(spans))


def source_key(text: str, *, file: str, first_line: int, dialect: str) -> str:
    """Identifies a model's text as written, for the cache of parse summaries."""
    return hashlib.sha256(json.dumps([file, first_line, dialect, text]).encode()).hexdigest()


def parse_cached(
    text: str,
    *,
    file: str,
    first_line: int,
    dialect: str,
    summaries: Mapping[str, str],
    fresh: dict[str, str],
    passthrough: bool = False,
) -> ParsedModel:
    """The model from its cached summary when the text is unchanged; parsed (and the summary
    added to ``fresh``) otherwise."""
    key = source_key(text, file=file, first_line=first_line, dialect=dialect)
    if key in summaries:
        return ParsedModel.from_summary(
            summaries[key], text=text, file=file, first_line=first_line, dialect=dialect
        )
    parsed = parse_model(text, file=file, first_line=first_line, dialect=dialect, passthrough=passthrough)
    if not parsed.passthrough:
        fresh[key] = parsed.summary()
    return parsed
