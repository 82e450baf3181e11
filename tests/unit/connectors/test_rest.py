"""The REST source against a real HTTP server serving the Chinook export (tests/connectors/rest_server.py)."""

from __future__ import annotations

import json
import logging
import socket
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from gristmill.connectors import Source, open_source
from gristmill.connectors.rest.transport import retry_after
from gristmill.errors import ConfigError, SourceError, TransientSourceError
from gristmill.project import load_project
from gristmill.project.specs import SourceSpec
from gristmill.workspace import Workspace
from tests.support.rest_server import (
    API_KEY,
    CHINOOK_JSON,
    CLIENT_ID,
    CLIENT_SECRET,
    PASSWORD,
    TOKEN,
    USER,
    ApiServer,
    Reply,
)

INVOICES = 412
TOTAL = Decimal("2328.60")
INVOICE_COLUMNS = [
    "invoice_id",
    "customer_id",
    "invoice_date",
    "billing_address",
    "billing_city",
    "billing_state",
    "billing_country",
    "billing_postal_code",
    "total",
]
CURSOR = "{path: /open/cursor/Invoice, records: data.items, paginate: {type: cursor, next_cursor: meta.next}}"


@pytest.fixture(scope="module")
def server() -> Iterator[ApiServer]:
    api = ApiServer().start()
    yield api
    api.stop()


@pytest.fixture
def api(server: ApiServer) -> ApiServer:
    server.reset()
    return server


class Opened:
    """A REST source opened from the text of ``sources/api.yml``."""

    def __init__(self, spec: SourceSpec, source: Source) -> None:
        self.spec = spec
        self.source = source

    def reader(self, key: str = "invoices", since: Any = None) -> pa.RecordBatchReader:
        return self.source.read(self.spec.tables[key], since)

    def read(self, key: str = "invoices", since: Any = None) -> pa.Table:
        return self.reader(key, since).read_all()

    def schema(self, key: str = "invoices") -> pa.Schema:
        return self.source.schema(self.spec.tables[key])


@pytest.fixture
def rest(make_project: Callable[..., Path]) -> Iterator[Callable[[str], Opened]]:
    opened: list[Opened] = []

    def open_(yaml: str) -> Opened:
        root = make_project({"sources/api.yml": yaml})
        spec = load_project(root).sources["api"]
        opened.append(Opened(spec, open_source(spec, root)))
        return opened[-1]

    yield open_
    for each in opened:
        each.source.close()


def source_yaml(
    base_url: str, table: str = CURSOR, *, top: str = "", retries: str = "{backoff: 0.01}"
) -> str:
    return f"kind: rest\nbase_url: {base_url}\nretries: {retries}\n{top}tables:\n  invoices: {table}\n"


def assert_all_invoices(invoices: pa.Table) -> None:
    assert invoices.num_rows == INVOICES
    assert len(set(invoices.column("invoice_id").to_pylist())) == INVOICES
    assert round(Decimal(str(sum(invoices.column("total").to_pylist()))), 2) == TOTAL


def message(err: pytest.ExceptionInfo[Exception]) -> str:
    return str(err.value)


# -- pagination and streaming ----------------------------------------------------------------------

PAGINATION = {
    "cursor": (CURSOR, 5),
    "offset": ("{path: /open/offset/Invoice, records: items, paginate: {type: offset, limit: 100}}", 5),
    "offset_total": (
        "{path: /open/offset/Invoice, records: items, paginate: {type: offset, total: total}}",
        5,
    ),
    "page": ("{path: /open/page/Invoice, records: results, paginate: {type: page, size: 100}}", 6),
    "link_header": ("{path: /open/link/Invoice, paginate: link_header}", 5),
    "next_url": (
        "{path: /open/next/Invoice, records: records, paginate: {type: next_url, next_url: links.next}}",
        5,
    ),
}


@pytest.mark.parametrize("style", PAGINATION)
def test_every_pagination_style_reads_every_invoice_once(
    api: ApiServer, rest: Callable[[str], Opened], style: str
) -> None:
    table, requests = PAGINATION[style]
    invoices = rest(source_yaml(api.url, table)).read()
    assert_all_invoices(invoices)
    assert invoices.column_names == INVOICE_COLUMNS
    assert invoices.schema.field("total").type == pa.float64()
    assert len(api.calls) == requests  # the last page is recognised, nothing is fetched twice


def test_read_streams_one_batch_per_page(api: ApiServer, rest: Callable[[str], Opened]) -> None:
    opened = rest(source_yaml(api.url))
    reader = opened.reader()
    assert len(api.calls) == 1  # only the first page, for the schema, before anyone reads
    sizes = [batch.num_rows for batch in reader]
    assert sizes == [100, 100, 100, 100, 12]
    assert len(api.calls) == 5


def test_schema_fetches_only_the_first_page(api: ApiServer, rest: Callable[[str], Opened]) -> None:
    schema = rest(source_yaml(api.url)).schema()
    assert schema.names == INVOICE_COLUMNS
    assert len(api.calls) == 1
    assert api.calls[0].path == "/open/cursor/Invoice"


def test_source_defaults_apply_to_every_table(api: ApiServer, rest: Callable[[str], Opened]) -> None:
    opened = rest(
        f"""
        kind: rest
        base_url: {api.url}/open
        records: items
        paginate: {{type: offset, limit: 200}}
        tables:
          invoices: {{path: offset/Invoice}}
          customers: {{path: offset/Customer}}
          invoice_line: {{path: /offset/InvoiceLine}}
        """
    )
    assert_all_invoices(opened.read())
    assert opened.read("customers").num_rows == 59
    assert opened.read("invoice_line").num_rows == 2240
    assert {c.query["limit"] for c in api.calls} == {"200"}


def test_a_pagination_that_does_not_advance_is_an_error(
    api: ApiServer, rest: Callable[[str], Opened]
) -> None:
    table = "{path: /open/next/Invoice, records: records, paginate: {type: next_url, next_url: links.self}}"
    with pytest.raises(SourceError, match="pagination does not advance"):
        rest(source_yaml(api.url, table)).read()
    assert len(api.calls) == 1  # noticed before asking for the same page again


def test_a_pagination_path_absent_from_the_response_is_an_error_naming_it_and_the_keys(
    api: ApiServer, rest: Callable[[str], Opened]
) -> None:
    # misspelt: "meta.nxt" is on no page; reading stopped after the first page, as a success
    table = (
        "{path: /open/cursor/Invoice, records: data.items, paginate: {type: cursor, next_cursor: meta.nxt}}"
    )
    with pytest.raises(
        SourceError,
        match=r'page 1 \(.*\): paginate: next_cursor: no "meta.nxt" in the response \(keys there: next\)',
    ) as caught:
        rest(source_yaml(api.url, table)).read()
    assert caught.value.hint is not None and "check the path" in caught.value.hint
    table = "{path: /open/offset/Invoice, records: items, paginate: {type: offset, total: count}}"
    with pytest.raises(SourceError, match=r'paginate: total: no "count" in the response \(keys there: '):
        rest(source_yaml(api.url, table)).read()


def test_a_next_link_left_out_of_the_last_page_ends_the_read(
    api: ApiServer, rest: Callable[[str], Opened]
) -> None:
    api.canned["t"] = [
        {"items": [{"id": 1}, {"id": 2}], "next": "/canned/t?page=2"},
        {"items": [{"id": 3}]},  # the API omits "next" on its last page once it had it before
    ]
    table = "{path: /canned/t, records: items, paginate: {type: next_url, next_url: next}}"
    assert rest(source_yaml(api.url, table)).read().column("id").to_pylist() == [1, 2, 3]


@pytest.mark.usefixtures("credentials")
def test_a_next_page_on_another_server_is_refused(api: ApiServer, rest: Callable[[str], Opened]) -> None:
    api.canned["t"] = [{"items": [{"id": 1}], "next": "http://198.51.100.7/steal?page=2"}]
    table = "{path: /canned/t, records: items, paginate: {type: next_url, next_url: next}}"
    with pytest.raises(SourceError, match=r"page 2 is on http://198\.51\.100\.7/steal, another server than"):
        rest(source_yaml(api.url, table, top=AUTH_TOP["bearer"])).read()


# -- auth ----------------------------------------------------------------------------------------------

AUTH = {
    "bearer": ("bearer", '{type: bearer, token: "${env:API_TOKEN}"}'),
    "api_key_header": ("apikey", '{type: api_key, name: X-API-Key, value: "${env:API_KEY}"}'),
    "api_key_query": ("query", '{type: api_key, name: api_key, value: "${env:API_KEY}", in: query}'),
    "basic": ("basic", '{type: basic, username: "${env:API_USER}", password: "${env:API_PASSWORD}"}'),
    "oauth2": (
        "oauth",
        '{type: oauth2, token_url: /oauth/token, client_id: "${env:CLIENT_ID}", '
        'client_secret: "${env:CLIENT_SECRET}", scope: "invoices:read"}',
    ),
    "oauth2_basic": (
        "oauth",
        '{type: oauth2, token_url: /oauth/token, client_id: "${env:CLIENT_ID}", '
        'client_secret: "${env:CLIENT_SECRET}", client_auth: basic}',
    ),
}
AUTH_TOP = {"bearer": f"auth: {AUTH['bearer'][1]}\n", "oauth2": f"auth: {AUTH['oauth2'][1]}\n"}


@pytest.fixture
def credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "API_TOKEN": TOKEN,
        "API_KEY": API_KEY,
        "API_USER": USER,
        "API_PASSWORD": PASSWORD,
        "CLIENT_ID": CLIENT_ID,
        "CLIENT_SECRET": CLIENT_SECRET,
    }.items():
        monkeypatch.setenv(name, value)


@pytest.mark.usefixtures("credentials")
@pytest.mark.parametrize("style", AUTH)
def test_every_auth_style_reads_every_invoice(
    api: ApiServer, rest: Callable[[str], Opened], style: str
) -> None:
    prefix, auth = AUTH[style]
    table = f"{{path: /{prefix}/link/Invoice, paginate: link_header}}"
    assert_all_invoices(rest(source_yaml(api.url, table, top=f"auth: {auth}\n")).read())


@pytest.mark.usefixtures("credentials")
def test_wrong_credentials_name_the_reference_not_the_value(
    api: ApiServer, rest: Callable[[str], Opened], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("API_TOKEN", "not-the-token-1234")
    table = "{path: /bearer/all/Invoice}"
    opened = rest(source_yaml(api.url, table, top=AUTH_TOP["bearer"]))
    with pytest.raises(SourceError) as caught:
        opened.read()
    assert not isinstance(caught.value, TransientSourceError)
    text = message(caught)
    assert "sources/api.yml (invoices): GET " in text and "/bearer/all/Invoice was refused: HTTP 401" in text
    assert caught.value.hint is not None and "${env:API_TOKEN}" in caught.value.hint
    assert "not-the-token-1234" not in text
    assert len(api.calls) == 1  # an authorisation failure is not retried


@pytest.mark.usefixtures("credentials")
def test_oauth2_token_is_cached_and_fetched_again_once_on_401(
    api: ApiServer, rest: Callable[[str], Opened]
) -> None:
    opened = rest(source_yaml(api.url, "{path: /oauth/all/Invoice}", top=AUTH_TOP["oauth2"]))
    assert_all_invoices(opened.read())
    assert_all_invoices(opened.read())
    assert api.tokens_issued == 1
    token_call = api.calls_to("/oauth/token")[0]
    assert (
        token_call.method == "POST"
        and token_call.headers["content-type"] == "application/x-www-form-urlencoded"
    )

    api.revoke_tokens()  # the API forgets the token before it expires
    assert_all_invoices(opened.read())
    assert api.tokens_issued == 2
    assert len(api.calls_to("/oauth/all/Invoice")) == 4  # two reads, then a 401 and its retry


@pytest.mark.usefixtures("credentials")
def test_oauth2_wrong_client_secret_is_a_clear_error(
    api: ApiServer, rest: Callable[[str], Opened], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLIENT_SECRET", "wrong-secret-5678")
    opened = rest(source_yaml(api.url, "{path: /oauth/all/Invoice}", top=AUTH_TOP["oauth2"]))
    with pytest.raises(SourceError) as caught:
        opened.read()
    text = message(caught)
    assert "sources/api.yml (OAuth2 token): POST " in text and "/oauth/token was refused: HTTP 401" in text
    assert "${env:CLIENT_SECRET}" in text and "wrong-secret-5678" not in text


def test_an_unset_environment_variable_is_reported_when_connecting(
    api: ApiServer, rest: Callable[[str], Opened], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("API_TOKEN", raising=False)
    opened = rest(source_yaml(api.url, top=AUTH_TOP["bearer"]))  # opening needs no secret yet
    with pytest.raises(ConfigError, match=r"sources/api\.yml:4: environment variable API_TOKEN is not set"):
        opened.schema()


# -- secrets never shown -------------------------------------------------------------------------------


def connector_state(source: Source) -> str:
    """The repr of everything the connector holds (the project's spec, as written, aside)."""
    return repr({k: v for k, v in vars(source).items() if k != "spec"})


@pytest.mark.usefixtures("credentials")
def test_a_token_never_appears_in_errors_logs_or_reprs(
    api: ApiServer, rest: Callable[[str], Opened], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    opened = rest(source_yaml(api.url, "{path: /echo/400}", top=AUTH_TOP["bearer"]))
    with pytest.raises(SourceError) as caught:
        opened.read()  # the server's error body repeats the Authorization header
    assert "HTTP 400 Bad Request" in message(caught) and "Bearer ***" in message(caught)
    assert TOKEN in api.calls[0].headers["authorization"]
    for text in (message(caught), caplog.text, repr(opened.source), connector_state(opened.source)):
        assert TOKEN not in text


def test_an_api_key_in_the_query_is_masked_in_errors_and_logs(
    api: ApiServer, rest: Callable[[str], Opened], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    busy = Reply(503, b'{"error": "busy"}')
    api.inject("/query/all/Invoice", busy, busy, busy)
    auth = f"auth: {{type: api_key, name: api_key, value: {API_KEY}, in: query}}\n"  # written in the file
    opened = rest(
        source_yaml(api.url, "{path: /query/all/Invoice}", top=auth, retries="{max: 2, backoff: 0.01}")
    )
    with pytest.raises(TransientSourceError) as caught:
        opened.read()
    assert f"GET {api.url}/query/all/Invoice still failed after 3 attempts: HTTP 503" in message(caught)
    assert "api_key=***" in caplog.text
    assert api.calls[0].query["api_key"] == API_KEY
    assert "retry 1 of 2" in caplog.text
    for text in (message(caught), caplog.text, connector_state(opened.source)):
        assert API_KEY not in text


# -- retries and rate limit ----------------------------------------------------------------------------


def test_retries_after_server_errors_then_succeeds(api: ApiServer, rest: Callable[[str], Opened]) -> None:
    api.inject("/open/all/Invoice", Reply(500, b"{}"), Reply(502, b"{}"), Reply(503, b"{}"))
    assert_all_invoices(rest(source_yaml(api.url, "{path: /open/all/Invoice}")).read())
    assert len(api.calls) == 4


def test_retry_after_is_honoured(api: ApiServer, rest: Callable[[str], Opened]) -> None:
    api.inject("/open/all/Invoice", Reply(429, b"{}", {"Retry-After": "1"}))
    assert_all_invoices(rest(source_yaml(api.url, "{path: /open/all/Invoice}")).read())
    first, second = api.calls
    assert 0.95 <= second.at - first.at < 3


def test_max_wait_caps_a_long_retry_after(api: ApiServer, rest: Callable[[str], Opened]) -> None:
    api.inject("/open/all/Invoice", Reply(429, b"{}", {"Retry-After": "120"}))
    yaml = source_yaml(api.url, "{path: /open/all/Invoice}", retries="{max_wait: 0.1}")
    started = time.monotonic()
    assert_all_invoices(rest(yaml).read())
    assert time.monotonic() - started < 2


def test_retry_after_as_an_http_date() -> None:
    later = datetime.now(UTC) + timedelta(seconds=30)
    assert 27 <= (retry_after(format_datetime(later, usegmt=True)) or 0) <= 30
    assert retry_after("7") == 7 and retry_after(None) is None and retry_after("soon") is None


def test_giving_up_is_a_transient_error_naming_url_and_status(
    api: ApiServer, rest: Callable[[str], Opened]
) -> None:
    api.inject("/open/all/Invoice", *[Reply(503, b"{}")] * 3)
    opened = rest(source_yaml(api.url, "{path: /open/all/Invoice}", retries="{max: 2, backoff: 0.01}"))
    with pytest.raises(TransientSourceError) as caught:
        opened.read()
    assert message(caught).startswith(
        f"sources/api.yml (invoices): GET {api.url}/open/all/Invoice still failed after 3 attempts: "
        "HTTP 503 Service Unavailable"
    )
    assert caught.value.hint is not None and "retries" in caught.value.hint
    assert len(api.calls) == 3


def test_an_unreachable_server_is_retried_then_transient(rest: Callable[[str], Opened]) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again below: nothing listens there
    opened = rest(source_yaml(f"http://127.0.0.1:{port}", "{path: /x}", retries="{max: 1, backoff: 0.01}"))
    with pytest.raises(TransientSourceError, match="still failed after 2 attempts: ConnectError"):
        opened.read()


def test_a_client_error_is_not_retried(api: ApiServer, rest: Callable[[str], Opened]) -> None:
    with pytest.raises(SourceError, match=r"/open/all/Nope failed: HTTP 404 Not Found: .*no route") as caught:
        rest(source_yaml(api.url, "{path: /open/all/Nope}")).read()
    assert not isinstance(caught.value, TransientSourceError)
    assert len(api.calls) == 1


def test_rate_limit_spaces_requests(api: ApiServer, rest: Callable[[str], Opened]) -> None:
    rest(source_yaml(api.url, top="rate_limit: 20\n")).read()
    times = [c.at for c in api.calls]
    assert len(times) == 5
    assert times[-1] - times[0] >= 4 * 0.05 - 0.01


# -- responses that are not what was declared -----------------------------------------------------------


def test_an_html_page_instead_of_json(api: ApiServer, rest: Callable[[str], Opened]) -> None:
    with pytest.raises(SourceError) as caught:
        rest(source_yaml(api.url, "{path: /bad/html}")).read()
    assert message(caught).startswith(
        f"sources/api.yml (invoices): page 1 ({api.url}/bad/html) did not return JSON "
        "(HTTP 200, text/html; charset=utf-8): '<!DOCTYPE html> <html><head><title>Sign in</title>"
    )


def test_invalid_json(api: ApiServer, rest: Callable[[str], Opened]) -> None:
    with pytest.raises(SourceError, match=r"did not return JSON \(HTTP 200, application/json\): "):
        rest(source_yaml(api.url, "{path: /bad/json}")).read()


def test_a_records_path_that_is_not_there_lists_the_keys(
    api: ApiServer, rest: Callable[[str], Opened]
) -> None:
    table = "{path: /open/cursor/Invoice, records: data.rows}"
    with pytest.raises(
        SourceError, match=r'page 1 \(.*\): no "data.rows" in the response \(keys there: items\)'
    ):
        rest(source_yaml(api.url, table)).read()
    with pytest.raises(
        SourceError, match=r"the response is an object, not a list \(keys: data, meta\)"
    ) as caught:
        rest(source_yaml(api.url, "{path: /open/cursor/Invoice}")).schema()
    assert caught.value.hint is not None and 'set "records"' in caught.value.hint


# -- one schema for the whole stream --------------------------------------------------------------------

CANNED = "{path: /canned/%s, records: items, paginate: page%s}"


def canned_source(
    api: ApiServer, rest: Callable[[str], Opened], pages: list[list[dict[str, Any]]], extra: str = ""
) -> Opened:
    api.canned["t"] = [{"items": page} for page in pages]
    return rest(source_yaml(api.url, CANNED % ("t", extra)))


def test_later_pages_fill_missing_keys_and_settle_null_columns(
    api: ApiServer, rest: Callable[[str], Opened]
) -> None:
    pages: list[list[dict[str, Any]]] = [
        [{"Id": 1, "Note": None, "Tags": [], "Meta": {"a": 1}}],
        [{"Id": 2, "Note": "hi", "Tags": ["x", "y"], "Meta": {"a": 2}}],
        [{"Id": 3, "Meta": None}],
    ]
    table = canned_source(api, rest, pages).read()
    assert table.schema == pa.schema(
        [
            ("id", pa.int64()),
            ("note", pa.string()),
            ("tags", pa.list_(pa.string())),
            ("meta", pa.struct([("a", pa.int64())])),
        ]
    )
    assert table.to_pylist() == [
        {"id": 1, "note": None, "tags": [], "meta": {"a": 1}},
        {"id": 2, "note": "hi", "tags": ["x", "y"], "meta": {"a": 2}},
        {"id": 3, "note": None, "tags": None, "meta": None},
    ]


def test_a_value_that_does_not_fit_the_first_pages_type_is_an_error(
    api: ApiServer, rest: Callable[[str], Opened]
) -> None:
    pages: list[list[dict[str, Any]]] = [[{"Id": 1, "Amount": 1}], [{"Id": 2, "Amount": 2.5}]]
    with pytest.raises(SourceError) as caught:
        canned_source(api, rest, pages).read()
    assert f'page 2 ({api.url}/canned/t?page=2): field "Amount" has double values' in message(caught)
    assert caught.value.hint is not None and "types: {amount: double}" in caught.value.hint
    # declaring the type is the fix
    fixed = canned_source(api, rest, pages, ", types: {amount: double}").read()
    assert fixed.column("amount").to_pylist() == [1.0, 2.5]


@pytest.mark.parametrize(
    ("second", "field"),
    [({"Id": 2, "Extra": "x"}, "Extra"), ({"Id": 2, "Meta": {"a": 1, "b": 2}}, "Meta.b")],
)
def test_a_field_first_seen_on_a_later_page_is_an_error(
    api: ApiServer, rest: Callable[[str], Opened], second: dict[str, Any], field: str
) -> None:
    pages: list[list[dict[str, Any]]] = [[{"Id": 1, "Meta": {"a": 1}}], [second]]
    with pytest.raises(SourceError, match=rf'page 2 \(.*\): field "{field}" is not on the first page'):
        canned_source(api, rest, pages).read()


def test_declared_types_override_what_the_first_page_suggests(
    api: ApiServer, rest: Callable[[str], Opened]
) -> None:
    types = "{InvoiceDate: timestamp, total: 'decimal(10,2)'}"
    table = f"{{path: /open/link/Invoice, paginate: link_header, types: {types}}}"
    invoices = rest(source_yaml(api.url, table)).read()
    assert invoices.schema.field("invoice_date").type == pa.timestamp("us")
    assert invoices.schema.field("total").type == pa.decimal128(10, 2)
    assert sum(invoices.column("total").to_pylist()) == TOTAL
    assert min(invoices.column("invoice_date").to_pylist()) == datetime(2021, 1, 1)


# -- incremental -------------------------------------------------------------------------------------------

SINCE = "2025-06-01T00:00:00"


def invoices_since(bound: str) -> int:
    invoices = json.loads(CHINOOK_JSON.read_text())["Invoice"]
    return sum(1 for invoice in invoices if invoice["InvoiceDate"] >= bound)


@pytest.mark.parametrize("param", ["updated_since", "ignored_by_the_api"])
@pytest.mark.parametrize("since", [SINCE, datetime.fromisoformat(SINCE)])
def test_incremental_reads_only_rows_at_or_past_since(
    api: ApiServer, rest: Callable[[str], Opened], param: str, since: str | datetime
) -> None:
    table = (
        "{path: /open/cursor/Invoice, records: data.items, paginate: {type: cursor, next_cursor: meta.next},"
        f" incremental: {{cursor: InvoiceDate}}, incremental_param: {param}}}"
    )
    expected = invoices_since(SINCE)
    assert 0 < expected < INVOICES
    rows = rest(source_yaml(api.url, table)).read(since=since)
    assert rows.num_rows == expected
    assert min(rows.column("invoice_date").to_pylist()) >= SINCE
    assert api.calls[0].query[param] == SINCE


def test_incremental_with_nothing_new_keeps_the_schema(api: ApiServer, rest: Callable[[str], Opened]) -> None:
    table = "{path: /open/all/Invoice, incremental: {cursor: InvoiceDate}, incremental_param: updated_since}"
    rows = rest(source_yaml(api.url, table)).read(since="2999-01-01T00:00:00")
    assert rows.num_rows == 0 and rows.column_names == INVOICE_COLUMNS


def test_incremental_cursor_must_be_a_column(api: ApiServer, rest: Callable[[str], Opened]) -> None:
    table = "{path: /open/all/Invoice, incremental: {cursor: InvoiceDay}}"
    with pytest.raises(ConfigError, match='incremental cursor "invoice_day" is not a column') as caught:
        rest(source_yaml(api.url, table)).read(since=SINCE)
    assert caught.value.hint == 'did you mean "invoice_date"?'


# -- options ----------------------------------------------------------------------------------------------


def test_unknown_option_names_the_line_and_suggests_one(rest: Callable[[str], Opened]) -> None:
    with pytest.raises(ConfigError) as caught:
        rest("kind: rest\nbase_url: http://127.0.0.1:1\nrate_limt: 10\ntables:\n  invoices: {}\n")
    assert message(caught).startswith('sources/api.yml:3: unknown option "rate_limt"')
    assert caught.value.hint == 'did you mean "rate_limit"?'


def test_unknown_nested_option_names_its_own_line(rest: Callable[[str], Opened]) -> None:
    yaml = """\
        kind: rest
        base_url: http://127.0.0.1:1
        tables:
          invoices:
            path: /invoices
            paginate:
              type: cursor
              next_cursr: meta.next
        """
    with pytest.raises(ConfigError) as caught:
        rest(yaml)
    assert message(caught).startswith('sources/api.yml:8: unknown option "paginate.next_cursr"')
    assert caught.value.hint == 'did you mean "next_cursor"?'


@pytest.mark.parametrize(
    ("top", "expected", "hint"),
    [
        (
            "paginate: {type: cursr}\n",
            'sources/api.yml:4: unknown paginate type "cursr"',
            'did you mean "cursor"?',
        ),
        ("auth: {token: x}\n", 'sources/api.yml:4: auth needs a "type": one of bearer, api_key', None),
        (
            "auth: {type: bearer, tokn: x}\n",
            'sources/api.yml:4: unknown option "auth.tokn"',
            'did you mean "token"?',
        ),
        ("timeout: -1\n", "sources/api.yml:4: timeout: Input should be greater than 0", None),
    ],
)
def test_invalid_source_options(
    rest: Callable[[str], Opened], top: str, expected: str, hint: str | None
) -> None:
    with pytest.raises(ConfigError) as caught:
        rest(source_yaml("http://127.0.0.1:1", top=top))
    assert message(caught).startswith(expected)
    assert caught.value.hint == hint


def test_unknown_column_type(rest: Callable[[str], Opened]) -> None:
    with pytest.raises(
        ConfigError, match=r'sources/api.yml:5: types: unknown type "strng" \(did you mean "string"\?\)'
    ):
        rest(source_yaml("http://127.0.0.1:1", "{path: /x, types: {a: strng}}"))


# -- end to end ------------------------------------------------------------------------------------------


def test_a_project_lands_a_rest_table(api: ApiServer, make_project: Callable[..., Path]) -> None:
    root = make_project({"sources/api.yml": source_yaml(api.url)})
    workspace = Workspace(root)
    try:
        result = workspace.run()
    finally:
        workspace.close()
    assert result.ok, [s.error for s in result.steps]
    assert [s.asset for s in result.steps] == ["raw.api__invoices"]
    landed = Workspace(root).query("select count(*) as n, sum(total) as total from raw.api__invoices")
    assert landed.to_pylist() == [{"n": INVOICES, "total": pytest.approx(2328.6)}]


def test_an_api_that_suddenly_returns_nothing_does_not_empty_the_table(
    api: ApiServer, make_project: Callable[..., Path]
) -> None:
    table = "{path: /canned/t, records: items}"
    root = make_project({"sources/api.yml": source_yaml(api.url, table)})
    api.canned["t"] = [{"items": [{"id": 1}, {"id": 2}]}]
    assert Workspace(root).run().ok
    api.canned["t"] = [{"items": []}]
    [step] = Workspace(root).run().steps
    assert step.status == "failed" and "replacing would empty raw.api__invoices" in str(step.error)
    count = "select count(*) as n from raw.api__invoices"
    assert Workspace(root).query(count).to_pylist() == [{"n": 2}]
    with (root / "sources" / "api.yml").open("a") as yml:
        yml.write("allow_empty: true\n")
    assert Workspace(root).run().ok
    assert Workspace(root).query(count).to_pylist() == [{"n": 0}]
