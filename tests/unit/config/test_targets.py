"""Targets in gristmill.toml: which one a verb works on (--target, then GRISTMILL_TARGET, then the
default), the settings it gives (its engine, its own state), and the mistakes refused at load."""

from __future__ import annotations

from pathlib import Path

import pytest

from gristmill.config.secrets import redact
from gristmill.config.settings import ProjectSettings
from gristmill.config.targets import TARGET_ENV, choose, describe
from gristmill.errors import ConfigError
from gristmill.project.settings_file import load_settings

TWO = """name = "shop"
target = "dev"

[targets.dev]
engine = "duckdb"
threads = 2

[targets.prod]
engine = "postgres"
url = "postgresql://loader:Pr0dPassw0rd@db.host:5432/analytics"
schema_prefix = "analytics_"
"""


def settings_of(tmp_path: Path, toml: str) -> ProjectSettings:
    (tmp_path / "gristmill.toml").write_text(toml)
    return load_settings(tmp_path)


def refused(tmp_path: Path, toml: str) -> str:
    with pytest.raises(ConfigError) as caught:
        settings_of(tmp_path, toml)
    return caught.value.message


def test_the_default_target_is_the_one_gristmill_toml_names(tmp_path: Path) -> None:
    chosen = choose(settings_of(tmp_path, TWO), None, {})
    assert chosen.target == "dev"
    assert chosen.engine.kind == "duckdb" and chosen.engine.threads == 2
    assert chosen.storage.catalog == ".gristmill/targets/dev/catalog.sqlite"
    assert chosen.storage.data == ".gristmill/targets/dev/lake"
    assert chosen.storage.state == ".gristmill/targets/dev/state.sqlite"


def test_a_flag_beats_the_environment_which_beats_the_default(tmp_path: Path) -> None:
    settings = settings_of(tmp_path, TWO)
    assert choose(settings, None, {TARGET_ENV: "prod"}).target == "prod"
    assert choose(settings, "dev", {TARGET_ENV: "prod"}).target == "dev"
    assert choose(settings, None, {TARGET_ENV: ""}).target == "dev"


def test_a_postgres_target_resolves_to_its_server_and_keeps_history_locally(tmp_path: Path) -> None:
    prod = choose(settings_of(tmp_path, TWO), "prod", {})
    assert prod.engine.kind == "postgres"
    assert prod.engine.url == "postgresql://loader:Pr0dPassw0rd@db.host:5432/analytics"
    assert prod.engine.schema_prefix == "analytics_"
    assert prod.storage.state == ".gristmill/targets/prod/state.sqlite"


def test_a_password_written_in_the_toml_is_masked_and_redacted(tmp_path: Path) -> None:
    prod = choose(settings_of(tmp_path, TWO), "prod", {})
    assert describe(prod) == "target prod (postgres loader@db.host:5432/analytics)"
    assert (
        redact("connection failed: password Pr0dPassw0rd rejected")
        == "connection failed: password *** rejected"
    )


def test_a_url_from_the_environment_is_shown_masked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    toml = TWO.replace(
        'url = "postgresql://loader:Pr0dPassw0rd@db.host:5432/analytics"', 'url = "${env:WAREHOUSE_URL}"'
    )
    prod = choose(settings_of(tmp_path, toml), "prod", {})
    assert describe(prod) == "target prod (postgres ${env:WAREHOUSE_URL})"  # not set: the reference
    monkeypatch.setenv("WAREHOUSE_URL", "postgresql://etl:En7Secret@wh.internal:6432/dw")
    assert describe(prod) == "target prod (postgres etl@wh.internal:6432/dw)"
    assert "En7Secret" not in redact("FATAL: password authentication failed (En7Secret)")


def test_one_target_is_the_default_without_naming_it(tmp_path: Path) -> None:
    chosen = choose(settings_of(tmp_path, 'name = "shop"\n[targets.local]\n'), None, {})
    assert chosen.target == "local" and chosen.engine.kind == "duckdb"
    assert describe(chosen) == "target local (duckdb .gristmill/targets/local/catalog.sqlite)"


def test_an_unknown_target_lists_the_declared_ones(tmp_path: Path) -> None:
    settings = settings_of(tmp_path, TWO)
    with pytest.raises(ConfigError) as caught:
        choose(settings, "staging", {})
    assert "--target staging: no such target" in caught.value.message
    assert "dev, prod" in caught.value.message
    with pytest.raises(ConfigError) as caught:
        choose(settings, None, {TARGET_ENV: "qa"})
    assert f"{TARGET_ENV} qa: no such target" in caught.value.message


def test_a_project_without_targets_runs_as_before(tmp_path: Path) -> None:
    settings = settings_of(tmp_path, 'name = "shop"\n[storage]\nstate = "history.sqlite"\n')
    assert choose(settings, None, {TARGET_ENV: "prod"}) == settings  # another project's variable
    assert describe(settings) is None
    with pytest.raises(ConfigError) as caught:
        choose(settings, "prod", {})
    assert "declares no targets" in caught.value.message


def test_two_targets_need_a_default(tmp_path: Path) -> None:
    message = refused(tmp_path, TWO.replace('target = "dev"\n', ""))
    assert 'name the default target, e.g. target = "dev" (declared: dev, prod)' in message


def test_the_default_must_be_declared(tmp_path: Path) -> None:
    assert 'target = "qa" names no declared target (declared: dev, prod)' in refused(
        tmp_path, TWO.replace('target = "dev"', 'target = "qa"')
    )


def test_engine_and_targets_together_are_refused(tmp_path: Path) -> None:
    message = refused(tmp_path, TWO + '\n[engine]\nkind = "duckdb"\n')
    assert "declare [engine] or [targets.<name>], not both" in message
    message = refused(tmp_path, TWO + '\n[storage]\nformat = "duckdb"\n')
    assert "declare [storage] or [targets.<name>], not both" in message


def test_a_target_keeps_the_engine_rules(tmp_path: Path) -> None:
    assert "the postgres engine needs url" in refused(
        tmp_path, 'name = "s"\n[targets.p]\nengine = "postgres"\n'
    )
    message = refused(
        tmp_path,
        'name = "s"\n[targets.p]\nengine = "postgres"\nurl = "postgresql://h/db"\n'
        '[targets.p.storage]\nformat = "duckdb"\n',
    )
    assert "storage is for a duckdb target" in message


def test_targets_sharing_state_are_refused(tmp_path: Path) -> None:
    toml = (
        'name = "s"\ntarget = "a"\n[targets.a]\nfolder = ".gristmill"\n[targets.b]\nfolder = ".gristmill/"\n'
    )
    assert "targets a and b both use .gristmill/state.sqlite" in refused(tmp_path, toml)


def test_folder_keeps_the_lake_of_a_project_from_before_targets(tmp_path: Path) -> None:
    before = choose(settings_of(tmp_path, 'name = "s"\n'), None, {})
    after = choose(settings_of(tmp_path, 'name = "s"\n[targets.dev]\nfolder = ".gristmill"\n'), None, {})
    assert after.storage == before.storage


def test_a_duckdb_target_sets_its_own_paths_and_the_rest_lie_in_its_folder(tmp_path: Path) -> None:
    toml = 'name = "s"\n[targets.dev.storage]\nformat = "duckdb"\ndata = "s3://bucket/lake"\n'
    storage = choose(settings_of(tmp_path, toml), None, {}).storage
    assert storage.format == "duckdb" and storage.data == "s3://bucket/lake"
    assert storage.database == ".gristmill/targets/dev/warehouse.duckdb"


def test_a_target_name_becomes_a_folder_so_it_must_be_an_identifier(tmp_path: Path) -> None:
    assert 'target name "my-dev" must be letters' in refused(tmp_path, 'name = "s"\n[targets.my-dev]\n')


def test_a_misspelt_target_key_is_refused_at_its_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        settings_of(tmp_path, 'name = "s"\n\n[targets.dev]\nengin = "duckdb"\n')
    assert "gristmill.toml:4" in str(caught.value)


def test_an_error_about_a_target_never_shows_its_password(tmp_path: Path) -> None:
    url = "postgresql://loader:Pr0dPassw0rd@db.host:5432/analytics"
    message = refused(
        tmp_path, f'name = "s"\n[targets.p]\nengine = "postgres"\nurl = "{url}"\nstorage = {{}}\n'
    )
    assert "storage is for a duckdb target" in message and "Pr0dPassw0rd" not in message
    message = refused(tmp_path, f'name = "s"\n[engine]\nkind = "duckdb"\nurl = "{url}"\n')
    assert "url is for a server engine" in message and "Pr0dPassw0rd" not in message


def test_server_targets_sharing_a_database_and_prefix_are_refused(tmp_path: Path) -> None:
    server = 'engine = "postgres"\nurl = "${env:WAREHOUSE_URL}"\n'
    toml = f'name = "s"\ntarget = "a"\n[targets.a]\n{server}[targets.b]\n{server}'
    message = refused(tmp_path, toml)
    assert "targets a and b both use ${env:WAREHOUSE_URL} with schema_prefix ''" in message
    apart = toml + 'schema_prefix = "b_"\n'
    assert choose(settings_of(tmp_path, apart), "b", {}).engine.schema_prefix == "b_"
    literal = toml.replace("${env:WAREHOUSE_URL}", "postgresql://u:Sh4redPw@h/db")
    message = refused(tmp_path, literal)
    assert "both use u@h/db with schema_prefix" in message and "Sh4redPw" not in message
