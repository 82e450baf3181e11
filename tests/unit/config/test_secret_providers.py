"""Secret references resolved through each provider: env, file, the OS keyring (an in-memory
keyring backend set explicitly, no system keychain) and Vault (a recorded-response KV v2 fake on
a real loopback HTTP server, since no Vault server can be installed here: tests/support/vault_fake.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import keyring
import pytest

from gristmill.config import secrets
from gristmill.config.secrets.providers import PROVIDERS
from gristmill.errors import ConfigError
from tests.support.memory_keyring import MemoryKeyring
from tests.support.vault_fake import FakeVault, fake_vault


@pytest.fixture
def ring() -> Iterator[MemoryKeyring]:
    before = keyring.get_keyring()
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    secrets.set_cache_ttl(300)
    yield backend
    keyring.set_keyring(before)


@pytest.fixture
def vault(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeVault]:
    with fake_vault() as server:
        monkeypatch.setenv("VAULT_ADDR", server.url)
        monkeypatch.setenv("VAULT_TOKEN", server.token)
        secrets.set_cache_ttl(300)
        yield server


def test_env_and_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GM_T_PW", "env-value-1")
    (tmp_path / "pw.txt").write_text("file-value-2\n")
    text = secrets.resolve("a=${env:GM_T_PW} b=${file:pw.txt}", base=tmp_path)
    assert text == "a=env-value-1 b=file-value-2"
    assert secrets.redact(text) == "a=*** b=***"


def test_missing_env_names_the_reference_location(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GM_T_ABSENT", raising=False)
    with pytest.raises(ConfigError) as caught:
        secrets.resolve("${env:GM_T_ABSENT}", where="sources.yml:4")
    assert "GM_T_ABSENT is not set" in caught.value.message
    assert caught.value.location == "sources.yml:4"


def test_unknown_scheme_names_the_location_and_known_schemes() -> None:
    with pytest.raises(ConfigError) as caught:
        secrets.resolve("postgresql://u:${evn:PW}@h/db", where="gristmill.toml:7")
    assert "unknown secret provider 'evn'" in caught.value.message
    assert caught.value.location == "gristmill.toml:7"
    assert "env, file, keyring, vault" in (caught.value.hint or "")


def test_shell_default_syntax_is_not_a_reference() -> None:
    assert secrets.resolve("echo ${HOME:-/tmp}") == "echo ${HOME:-/tmp}"


def test_keyring(ring: MemoryKeyring) -> None:
    ring.set_password("gristmill", "warehouse", "kr-value-3")
    assert secrets.resolve("${keyring:gristmill/warehouse}") == "kr-value-3"
    assert secrets.redact("pw kr-value-3") == "pw ***"


def test_keyring_missing_entry_and_bad_shape(ring: MemoryKeyring) -> None:
    with pytest.raises(ConfigError, match="no keyring entry for service 'gristmill', name 'nope'"):
        secrets.resolve("${keyring:gristmill/nope}", where="a.yml:1")
    with pytest.raises(ConfigError, match="is not service/name"):
        secrets.resolve("${keyring:justone}")


def test_keyring_values_are_cached_for_the_ttl(ring: MemoryKeyring) -> None:
    ring.set_password("svc", "k", "first-value")
    assert secrets.resolve("${keyring:svc/k}") == "first-value"
    ring.set_password("svc", "k", "second-value")
    assert secrets.resolve("${keyring:svc/k}") == "first-value"  # cached
    secrets.set_cache_ttl(0)
    assert secrets.resolve("${keyring:svc/k}") == "second-value"


def test_vault_reads_a_kv2_field(vault: FakeVault) -> None:
    vault.secrets["secret/app/db"] = {"password": "vault-value-4", "user": "app"}
    assert secrets.resolve("${vault:secret/app/db#password}") == "vault-value-4"
    assert vault.reads == ["/v1/secret/data/app/db"]
    assert secrets.resolve("${vault:secret/app/db#password}") == "vault-value-4"
    assert len(vault.reads) == 1  # the second lookup came from the run's cache
    assert secrets.redact("x vault-value-4") == "x ***"


def test_vault_errors_name_path_never_value(vault: FakeVault, monkeypatch: pytest.MonkeyPatch) -> None:
    vault.secrets["secret/app/db"] = {"password": "vault-value-5"}
    with pytest.raises(ConfigError) as caught:
        secrets.resolve("${vault:secret/app/db#pass}", where="s.yml:2")
    assert "has no field 'pass' (fields: password)" in caught.value.message
    assert "vault-value-5" not in str(caught.value)
    with pytest.raises(ConfigError, match="vault has no secret 'app/other' in mount 'secret'"):
        secrets.resolve("${vault:secret/app/other#password}")
    monkeypatch.setenv("VAULT_TOKEN", "wrong")
    with pytest.raises(ConfigError, match="permission denied"):
        secrets.resolve("${vault:secret/app/missing#password}")
    with pytest.raises(ConfigError, match="is not mount/path#field"):
        secrets.resolve("${vault:secret#password}")


def test_vault_unreachable(monkeypatch: pytest.MonkeyPatch) -> None:
    with fake_vault() as server:
        url = server.url
    monkeypatch.setenv("VAULT_ADDR", url)  # the server is gone: connection refused
    with pytest.raises(ConfigError, match="cannot be reached"):
        secrets.resolve("${vault:secret/app/db#password}")


def test_a_registered_provider_resolves_its_scheme() -> None:
    class Upper:
        scheme = "upper-test"
        cacheable = False

        def fetch(self, name: str, *, base: Path | None) -> str:
            return name.upper() + "-provided"

    secrets.register_provider(Upper())
    try:
        assert secrets.resolve("${upper-test:abc}") == "ABC-provided"
    finally:
        PROVIDERS.pop("upper-test")
