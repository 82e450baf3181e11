"""Options of a ``kind: rest`` source (top level) and of each of its tables, validated strictly."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

import pyarrow as pa
from pydantic import ConfigDict, Field, field_validator

from gristmill._util.naming import snake_case
from gristmill._util.suggest import did_you_mean
from gristmill.connectors.base import Options

Scalar = str | int | float | bool


# --- auth -------------------------------------------------------------------------------------------


class BearerAuth(Options):
    type: Literal["bearer"]
    token: str = Field(repr=False)
    """Sent as ``Authorization: Bearer <token>``; write a reference such as ``${env:SHOP_TOKEN}``."""


class ApiKeyAuth(Options):
    type: Literal["api_key"]
    name: str
    """The header or query parameter that carries the key, e.g. ``X-API-Key`` or ``api_key``."""
    value: str = Field(repr=False)
    where: Literal["header", "query"] = Field(default="header", alias="in")
    """``in: header`` (the default) or ``in: query``."""


class BasicAuth(Options):
    type: Literal["basic"]
    username: str
    password: str = Field(repr=False)


class OAuth2Auth(Options):
    type: Literal["oauth2"]
    token_url: str
    """The token endpoint; a path is taken relative to ``base_url``."""
    client_id: str
    client_secret: str = Field(repr=False)
    scope: str | None = None
    client_auth: Literal["body", "basic"] = "body"
    """Send the client credentials in the form body (the default) or as HTTP basic auth."""


Auth = Annotated[BearerAuth | ApiKeyAuth | BasicAuth | OAuth2Auth, Field(discriminator="type")]


# --- pagination -------------------------------------------------------------------------------------


class NoPagination(Options):
    type: Literal["none"]


class CursorPagination(Options):
    type: Literal["cursor"]
    next_cursor: str
    """Where the next cursor is in the body (dotted path); the last page has none, null or ""."""
    cursor_param: str = "cursor"


class OffsetPagination(Options):
    type: Literal["offset"]
    limit: int = Field(default=100, ge=1)
    """Records asked for per page."""
    limit_param: str = "limit"
    offset_param: str = "offset"
    start: int = Field(default=0, ge=0)
    total: str | None = None
    """Where the total number of records is in the body, when the API says."""


class PagePagination(Options):
    type: Literal["page"]
    page_param: str = "page"
    start: int = Field(default=1, ge=0)
    size: int | None = Field(default=None, ge=1)
    """Records asked for per page, sent in ``size_param``; the API's default when unset."""
    size_param: str = "per_page"


class LinkHeaderPagination(Options):
    type: Literal["link_header"]
    rel: str = "next"


class NextUrlPagination(Options):
    type: Literal["next_url"]
    next_url: str
    """Where the next page's URL is in the body (dotted path); the last page has none or null."""


Paginate = Annotated[
    NoPagination
    | CursorPagination
    | OffsetPagination
    | PagePagination
    | LinkHeaderPagination
    | NextUrlPagination,
    Field(discriminator="type"),
]


class _PaginateShorthand(Options):
    @field_validator("paginate", mode="before", check_fields=False)
    @classmethod
    def _paginate_shorthand(cls, value: Any) -> Any:
        """``paginate: link_header`` means ``paginate: {type: link_header}``."""
        return {"type": value} if isinstance(value, str) else value


# --- source and table ---------------------------------------------------------------------------------


class Retries(Options):
    max: int = Field(default=5, ge=0)
    """Retries after the first attempt, on 429, 500, 502, 503, 504 and connection errors."""
    backoff: float = Field(default=0.5, ge=0)
    """The first wait in seconds; doubled on each retry, with jitter."""
    max_wait: float = Field(default=30.0, ge=0)
    """No single wait is longer, not even one a ``Retry-After`` header asks for."""


class IncrementalParam(Options):
    name: str
    """The query parameter that receives the lower bound of the table's incremental cursor."""
    format: str | None = None
    """``strftime`` format for a date or timestamp bound; ISO 8601 when unset."""


class RestSourceOptions(_PaginateShorthand):
    base_url: str
    auth: Auth | None = None
    headers: dict[str, str] = {}
    params: dict[str, Scalar] = {}
    """Query parameters sent with every request of every table."""
    records: str | None = None
    """Default for tables: where the list of records is in each response."""
    paginate: Paginate | None = None
    """Default for tables."""
    rate_limit: float | None = Field(default=None, gt=0)
    """Requests per second, at most, over all tables of this source."""
    retries: Retries = Field(default_factory=Retries)
    timeout: float = Field(default=30.0, gt=0)
    """Seconds to wait for a connection or a response."""


class RestTableOptions(_PaginateShorthand):
    path: str | None = None
    """Relative to ``base_url`` (or a full URL); defaults to ``/<table key>``."""
    records: str | None = None
    """Dotted path to the list of records in each response; "" means the body is the list."""
    params: dict[str, Scalar] = {}
    paginate: Paginate | None = None
    incremental_param: IncrementalParam | None = None
    types: dict[str, pa.DataType] = {}
    """Column (either spelling) -> type, overriding what the first page suggests."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    @field_validator("incremental_param", mode="before")
    @classmethod
    def _param_shorthand(cls, value: Any) -> Any:
        """``incremental_param: updated_since`` means ``{name: updated_since}``."""
        return {"name": value} if isinstance(value, str) else value

    @field_validator("types", mode="before")
    @classmethod
    def _arrow_types(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        return {snake_case(str(name)): arrow_type(str(spelled)) for name, spelled in value.items()}


# --- column types ---------------------------------------------------------------------------------------

_TYPES: dict[str, pa.DataType] = {
    "string": pa.string(),
    "varchar": pa.string(),
    "text": pa.string(),
    "bigint": pa.int64(),
    "integer": pa.int64(),
    "int": pa.int64(),
    "double": pa.float64(),
    "float": pa.float64(),
    "boolean": pa.bool_(),
    "bool": pa.bool_(),
    "date": pa.date32(),
    "timestamp": pa.timestamp("us"),
    "timestamptz": pa.timestamp("us", tz="UTC"),
}
_DECIMAL = re.compile(r"^decimal\(\s*(\d+)\s*,\s*(\d+)\s*\)$")


def arrow_type(spelled: str) -> pa.DataType:
    name = spelled.strip().lower()
    if name in _TYPES:
        return _TYPES[name]
    match = _DECIMAL.match(name)
    if match and 0 < int(match.group(1)) <= 38 and int(match.group(2)) <= int(match.group(1)):
        return pa.decimal128(int(match.group(1)), int(match.group(2)))
    suggestion = did_you_mean(name, _TYPES)
    raise ValueError(
        f'unknown type "{spelled}"'
        + (f" ({suggestion})" if suggestion else "")
        + "; known: "
        + ", ".join(_TYPES)
        + ", decimal(p,s)"
    )
