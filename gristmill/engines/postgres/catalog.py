"""What the engine knows of the server's catalog: the kind of every relation and the schemas
under ``[engine] schema_prefix``, read in one query and kept exact by the engine's own DDL.

Without it every build asked the server twice whether its table existed (the caller's check,
then the publish step) and re-created its schema: most of a run's round trips. The engine
forgets it all when a transaction rolls back (what it created is gone again) and when a
statement it did not write could have created, dropped or renamed a relation."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

_RELATIONS = r"""
SELECT n.nspname, c.relname, c.relkind
FROM pg_namespace n LEFT JOIN pg_class c ON c.relnamespace = n.oid AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
WHERE n.nspname NOT IN ('information_schema', 'pg_catalog', 'pg_toast')
  AND n.nspname NOT LIKE 'pg\_temp\_%%' AND n.nspname NOT LIKE 'pg\_toast\_temp\_%%'
  AND n.nspname LIKE %s"""
_DDL = ("CREATE", "DROP", "ALTER", "COMMENT")  # a statement starting so may change relations


def changes_relations(text: str) -> bool:
    """Whether a statement the engine did not write may create, drop or rename a relation."""
    return text.lstrip().upper().startswith(_DDL)


class Catalog:
    """Relation kinds (``pg_class.relkind``: ``r`` table, ``p`` partitioned, ``v`` view, …) by
    physical (schema, name), and the physical schemas; read on first use."""

    def __init__(self, prefix: str, fetch: Callable[[str, Sequence[Any]], list[tuple[Any, ...]]]) -> None:
        self._pattern = prefix.replace("_", "\\_") + "%"
        self._fetch = fetch
        self._kinds: dict[tuple[str, str], str] | None = None
        self._schemas: set[str] = set()

    def _load(self) -> dict[tuple[str, str], str]:
        if self._kinds is None:
            kinds: dict[tuple[str, str], str] = {}
            schemas: set[str] = set()
            for schema, name, relkind in self._fetch(_RELATIONS, [self._pattern]):
                schemas.add(str(schema))
                if name is not None:
                    kinds[str(schema), str(name)] = str(relkind)
            self._kinds, self._schemas = kinds, schemas
        return self._kinds

    def kind(self, schema: str, name: str) -> str | None:
        return self._load().get((schema, name))

    def set_kind(self, schema: str, name: str, kind: str | None) -> None:
        kinds = self._load()
        if kind is None:
            kinds.pop((schema, name), None)
        else:
            kinds[schema, name] = kind

    def has_schema(self, schema: str) -> bool:
        self._load()
        return schema in self._schemas

    def add_schema(self, schema: str) -> None:
        self._load()
        self._schemas.add(schema)

    def forget(self) -> None:
        """Read the server again on next use."""
        self._kinds = None
        self._schemas = set()
