"""Reads ``models/<schema>/*.sql`` (and ``*.py``): one model per file, its header and its SQL."""

from __future__ import annotations

from dataclasses import replace
from functools import partial
from pathlib import Path

from gristmill.config.settings import ProjectSettings
from gristmill.errors import ProjectError
from gristmill.project import yamlfile
from gristmill.project.checks import parse_check_items
from gristmill.project.definition import NAME
from gristmill.project.headers import ModelHeader, kind_options, parse_header, split_header
from gristmill.project.own_table import mentions_own_table, renderings
from gristmill.project.python_models import load_python_model
from gristmill.project.specs import CheckSpec, ModelSpec
from gristmill.project.validation import validated


def load_models(root: Path, settings: ProjectSettings) -> tuple[dict[str, ModelSpec], list[CheckSpec]]:
    models: dict[str, ModelSpec] = {}
    checks: list[CheckSpec] = []
    folder = root / "models"
    python = [p for p in folder.rglob("*.py") if not p.name.startswith("_")]  # _*.py: helpers
    for path in sorted([*folder.rglob("*.sql"), *python]):
        file = path.relative_to(root).as_posix()
        parts = path.relative_to(folder).parts
        if len(parts) < 2:
            raise ProjectError(
                "a model lives in a schema folder, e.g. models/staging/orders.sql",
                location=file,
                hint=f"move it to models/<schema>/{path.name}",
            )
        schema, name = parts[0], path.stem
        for label, value in (("schema folder", schema), ("model file name", name)):
            if not NAME.match(value):
                raise ProjectError(
                    f'{label} "{value}" must be lower-case letters, digits and _', location=file
                )
        asset = f"{schema}.{name}"
        if asset in models:
            raise ProjectError(
                f"two models are both named {asset}: {models[asset].file} and {file}",
                location=file,
                hint="rename one of them",
            )
        if path.suffix == ".py":
            models[asset], found = load_python_model(path, file, asset, settings)
            checks.extend(found)
            continue
        text = path.read_text(encoding="utf-8")
        header_lines, count = split_header(text)
        data = parse_header(header_lines, file)
        header = validated(ModelHeader, data, file=file, line_of=partial(yamlfile.line_of, data))
        defaults = settings.defaults_for(schema)
        body = "\n".join(text.splitlines()[count:]) if data else text
        if not body.strip():
            raise ProjectError("the model has no SQL: write one SELECT statement", location=file)
        models[asset] = ModelSpec(
            asset=asset,
            file=file,
            path=path,
            sql=body,
            sql_line=(count + 1) if data else 1,
            kind=header.kind or defaults.kind,
            tags=tuple(dict.fromkeys([*defaults.tags, *header.tags])),
            description=header.description,
            owner=header.owner,
            columns=header.columns,
            **kind_options(header, asset, file, data),
        )
        if mentions_own_table(body):  # `this` and is_incremental(): two renderings, as dbt's
            both = renderings(
                body,
                asset=asset,
                kind=models[asset].kind,
                file=file,
                first_line=models[asset].sql_line,
                dialect=models[asset].dialect,
                split_by="time"
                if models[asset].time
                else "partition_by"
                if models[asset].partition_by
                else None,
            )
            if both is not None:
                models[asset] = replace(models[asset], sql=both[0], incremental_sql=both[1])
        if header.checks:
            checks.extend(
                parse_check_items(
                    data["checks"], asset, file, getattr(data, "key_lines", {}).get("checks", 1)
                )
            )
    return models, checks
