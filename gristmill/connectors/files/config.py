"""Options of a ``kind: files`` source (top level) and of each of its tables."""

from __future__ import annotations

from typing import Any, Literal

from gristmill.connectors.base import Options

Format = Literal["csv", "json", "ndjson", "parquet", "excel"]
EXTENSION_FORMATS: dict[str, Format] = {
    ".csv": "csv",
    ".tsv": "csv",
    ".json": "json",
    ".ndjson": "ndjson",
    ".jsonl": "ndjson",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".xlsx": "excel",
}
COMPRESSIONS = (".gz", ".gzip", ".zst", ".zstd")
"""DuckDB decompresses these itself; the format comes from the suffix before them."""
MODIFIED_COLUMN = "_gm_file_modified"
FILE_COLUMN = "_gm_file"


class FilesSourceOptions(Options):
    path: str | None = None
    """Default file or glob for every table: relative to the project folder, or a URL such as
    ``s3://bucket/orders/*.parquet`` (any protocol fsspec knows)."""
    format: Format | None = None
    """Default format; otherwise taken from the file extension (``.csv.gz`` is CSV)."""
    storage: dict[str, Any] = {}
    """Options for the fsspec filesystem of a URL path, e.g. ``{key: ${env:AWS_KEY}, secret: …,
    endpoint_url: …}``; values may be secret references."""


class FilesTableOptions(Options):
    path: str | None = None
    format: Format | None = None
    records: str | None = None
    """For a JSON document: the top-level key whose list holds the records (e.g. ``Invoice``)."""
    columns: list[str] | None = None
    """Land only these source columns."""
    options: dict[str, Any] = {}
    """Passed to DuckDB's reader as is, e.g. ``{delim: ";", header: true}``; for Excel
    ``{sheet: Sales, range: A1:D100}``."""
