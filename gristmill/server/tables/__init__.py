"""The tables data API: catalog, rows with filters, pages and formats (see router.py)."""

from gristmill.server.tables.router import TableLimits, tables_router

__all__ = ["TableLimits", "tables_router"]
