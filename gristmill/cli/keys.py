"""``gristmill keys create/list/revoke``: the API keys ``gristmill serve`` accepts.

A new key is printed once, on stdout alone (so ``KEY=$(gristmill keys create -q)`` works);
only its digest is kept, so a lost key is revoked and replaced, never shown again."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from gristmill.cli.common import Output, OutputOpt, ProjectOpt, TargetOpt, app, console, errors
from gristmill.errors import ConfigError

if TYPE_CHECKING:
    from gristmill.workspace.keys import ApiKeys, KeyRecord

keys_app = typer.Typer(
    help="API keys for `gristmill serve`: create (shown once), list, revoke.", no_args_is_help=True
)
app.add_typer(keys_app, name="keys")


def _keys(project: Path, target: str | None) -> ApiKeys:
    from gristmill.workspace.keys import ApiKeys

    return ApiKeys.for_project(project, target)


def _expiry(text: str | None) -> timedelta | None:
    from gristmill._util.durations import parse_duration

    if text is None:
        return None
    span = parse_duration(text)
    if span is None:
        raise ConfigError(f'--expires "{text}": not a duration', hint="e.g. --expires 30d, 12h or 90m")
    return span


def _as_json(record: KeyRecord) -> dict[str, object]:
    from gristmill.workspace.keys import PREFIX, key_state

    return {
        "id": f"{PREFIX}{record.key_id}",
        "name": record.name,
        "state": key_state(record),
        "schemas": list(record.schemas),
        "rate_per_second": record.rate,
        "burst": record.burst,
        "created_at": record.created_at,
        "expires_at": record.expires_at,
        "revoked_at": record.revoked_at,
    }


@keys_app.command("create")
def create(
    project: ProjectOpt = Path("."),
    target: TargetOpt = None,
    name: Annotated[str | None, typer.Option("--name", "-n", help="What the key is for.")] = None,
    expires: Annotated[
        str | None, typer.Option("--expires", help="Refused after this long, e.g. 30d, 12h (default: never).")
    ] = None,
    schemas: Annotated[
        str | None,
        typer.Option(
            "--schemas", help="Comma-separated schemas it may read, e.g. marts,sales (default: all)."
        ),
    ] = None,
    rate: Annotated[
        str | None,
        typer.Option("--rate", help="Requests it may make, e.g. 50/s, 3000/min (default: the server's)."),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print the key alone.")] = False,
    output: OutputOpt = Output.text,
) -> None:
    """Create a key and print it: this is the only time it is shown (only its digest is kept)."""
    chosen = tuple(s.strip() for s in schemas.split(",") if s.strip()) if schemas else ()
    keys = _keys(project, target)
    try:
        created = keys.create(name, expires=_expiry(expires), schemas=chosen, rate=rate)
    finally:
        keys.close()
    if output == Output.json:
        typer.echo(json.dumps({**_as_json(created.record), "key": created.token}))
        return
    typer.echo(created.token)
    if not quiet:
        record = created.record
        errors.print(
            f"[green]created[/] {escape(record.name)} (id gmk_{record.key_id}); this key is not shown again: "
            "send it as `Authorization: Bearer <key>` or `X-API-Key: <key>`",
            highlight=False,
            soft_wrap=True,
        )


@keys_app.command("list")
def listing(
    project: ProjectOpt = Path("."), target: TargetOpt = None, output: OutputOpt = Output.text
) -> None:
    """Every key: id, name, state (active, expired, revoked), schemas, rate, dates. Never the key."""
    keys = _keys(project, target)
    try:
        records = keys.listing()
    finally:
        keys.close()
    if output == Output.json:
        typer.echo(json.dumps({"keys": [_as_json(r) for r in records]}))
        return
    if not records:
        console.print("No API keys yet: `gristmill keys create --name NAME`.")
        return
    table = Table("id", "name", "state", "schemas", "rate", "created", "expires")
    for row in map(_as_json, records):
        rate = f"{row['rate_per_second']:g}/s" if row["rate_per_second"] else "default"
        cells = [row["id"], row["name"], row["state"], ",".join(row["schemas"]) or "all", rate]  # type: ignore[arg-type]
        cells += [str(row["created_at"])[:19], str(row["expires_at"] or "never")[:19]]
        table.add_row(*(escape(str(c)) for c in cells))
    console.print(table)


@keys_app.command("revoke")
def revoke(
    key_id: Annotated[str, typer.Argument(help="The key's id (gmk_<id>, as `keys list` shows).")],
    project: ProjectOpt = Path("."),
    target: TargetOpt = None,
) -> None:
    """Revoke a key: a running server refuses it from its next request."""
    keys = _keys(project, target)
    try:
        record = keys.revoke(key_id)
    finally:
        keys.close()
    console.print(f"revoked gmk_{escape(record.key_id)} ({escape(record.name)})", highlight=False)
