"""The PostgreSQL wire door of ``gristmill serve --pg-port`` (``door.py``; docs/serving-sql.md)."""

from gristmill.server.pgwire.door import PgDoor, check_door, start_pg_door

__all__ = ["PgDoor", "check_door", "start_pg_door"]
