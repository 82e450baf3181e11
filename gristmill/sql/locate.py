"""Where in a model's file an engine's error points: the engine sees the rendered SQL (another
dialect, one line, physical names), so its own positions mean nothing to the user. The names an
error quotes -- a column, a function, an operator, or a fragment of SQL -- are found in the model's
parsed tree instead, and their token offsets give the file's line and column.

Engine-neutral: Spark (`name` in backticks, "fragments" in double quotes), DuckDB and PostgreSQL
("name" in double quotes, ``function foo(…)``, ``'+(VARCHAR, INTEGER)'``, ``operator does not
exist: text + integer``) all quote what they could not resolve."""

from __future__ import annotations

import re

from sqlglot import exp

from gristmill.sql.parse import ParsedModel

# Where an engine starts listing what it suggests instead (names there are not the culprit).
_SUGGESTIONS = re.compile(r"Did you mean|Candidate|HINT", re.IGNORECASE)
_BACKTICKED = re.compile(r"((?:`[^`]+`\.)*`[^`]+`)")
_DOUBLE_QUOTED = re.compile(r'"([^"]+)"')
_FUNCTION = re.compile(r"(?:function|routine)(?: with name)? `?([A-Za-z_][\w.]*)`?", re.IGNORECASE)
_NAME = re.compile(r"[A-Za-z_]\w*")
_NAME_IN = re.compile(r"(?<![\w.'])([A-Za-z_]\w*)(?![\w(])")
_OPERATOR = re.compile(r"'([-+*/%|<>=!]+)\(|operator does not exist: \w[\w ]*? ([-+*/%|<>=!]+) ")
_OPERATORS: dict[str, type[exp.Expr]] = {
    "+": exp.Add,
    "-": exp.Sub,
    "*": exp.Mul,
    "/": exp.Div,
    "%": exp.Mod,
    "||": exp.DPipe,
    "=": exp.EQ,
    "<": exp.LT,
    ">": exp.GT,
    "<=": exp.LTE,
    ">=": exp.GTE,
}
# A position in the rendered SQL ("line 1 pos 150", DuckDB's "LINE 1: …" excerpt and caret):
# dropped from the message once the model's own position is known.
_RENDERED_POSITION = re.compile(r"(\s*SQLSTATE: \w+)?;?\s*line \d+,? pos(?:ition)? \d+;?", re.IGNORECASE)
_RENDERED_EXCERPT = re.compile(r"\n+LINE \d+:.*", re.DOTALL)


def locate(parsed: ParsedModel, message: str) -> tuple[int, int] | None:
    """The model file's line and column of what ``message`` (an engine's error) names, or None
    when the message names nothing the model's text holds."""
    if parsed.passthrough:
        return None
    head = _SUGGESTIONS.split(message, maxsplit=1)[0]
    tree = parsed.expression
    for node in _culprits(tree, head):
        found = _start(parsed, node)
        if found is not None:
            return found
    return None


def without_rendered_position(message: str, *, located: bool) -> str:
    """``message`` without the position it gives in the rendered SQL: Spark's ``line 1 pos 150``
    always (it is no line of any file), DuckDB's excerpt of the rendered SQL once the model's own
    line is known (until then, it is the only clue)."""
    shown = _RENDERED_EXCERPT.sub("", message) if located else message
    return _RENDERED_POSITION.sub("", shown).rstrip(" ;")


def _culprits(tree: exp.Expr, message: str) -> list[exp.Expr]:
    """Nodes of ``tree`` the message may mean, the likeliest first: a function it names, then
    the first name or SQL fragment it quotes that the model holds, then an operator."""
    found: list[exp.Expr] = []
    for match in _FUNCTION.finditer(message):
        found += _functions(tree, match.group(1).split(".")[-1])
    for quoted in _BACKTICKED.findall(message):
        parts = [p.strip("`") for p in quoted.split("`.`")]
        found += _columns(tree, parts[-1], parts[-2] if len(parts) > 1 else None)
        found += _functions(tree, parts[-1])
    for quoted in _DOUBLE_QUOTED.findall(message):
        named = _columns(tree, quoted, None) if _NAME.fullmatch(quoted) else _fragment(tree, quoted)
        if named:
            found += named
            break  # what follows describes it ("… has the type "BIGINT"")
    for match in _OPERATOR.finditer(message):
        operator = _OPERATORS.get(match.group(1) or match.group(2))
        found += list(tree.find_all(operator)) if operator is not None else []
    return found


def _columns(tree: exp.Expr, name: str, table: str | None) -> list[exp.Expr]:
    return [
        c
        for c in tree.find_all(exp.Column)
        if c.name.lower() == name.lower() and (table is None or c.table.lower() == table.lower())
    ]


def _functions(tree: exp.Expr, name: str) -> list[exp.Expr]:
    lowered = name.lower()
    return [
        f
        for f in tree.find_all(exp.Func)
        if (f.name if isinstance(f, exp.Anonymous) else f.sql_name()).lower() == lowered
    ]


def _fragment(tree: exp.Expr, text: str) -> list[exp.Expr]:
    """The expressions over exactly the columns a quoted SQL fragment names (Spark quotes the
    expression it could not type, in its own spelling: ``"date_add(CAST(… AS DATE), order_id)"``
    for the model's ``order_id + date '…'``), the innermost first; bare columns are left out."""
    columns = {c.name.lower(): c for c in tree.find_all(exp.Column)}
    names = {word.lower() for word in _NAME_IN.findall(text)} & set(columns)
    if not names:
        return []
    matching = [
        node
        for node in tree.find_all(exp.Binary, exp.Func, exp.Cast, exp.Not, exp.Neg)
        if {c.name.lower() for c in node.find_all(exp.Column)} == names
    ]
    return sorted(matching, key=lambda node: -node.depth)


def _start(parsed: ParsedModel, node: exp.Expr) -> tuple[int, int] | None:
    """The position of the node's first token (the leftmost offset sqlglot kept below it)."""
    starts = [n.meta["start"] for n in node.walk() if isinstance(n.meta.get("start"), int)]
    if not starts:
        return None
    start = min(starts)
    text = parsed.text
    line = parsed.first_line + text.count("\n", 0, start)
    return line, start - (text.rfind("\n", 0, start) + 1) + 1
