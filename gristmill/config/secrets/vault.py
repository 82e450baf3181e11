"""``${vault:mount/path#field}``: a field of a HashiCorp Vault KV version 2 secret, through hvac.

The server and token come from hvac's usual environment: ``VAULT_ADDR``, ``VAULT_TOKEN`` (or
``~/.vault-token``), ``VAULT_NAMESPACE``, ``VAULT_CACERT``. The first path segment is the mount
(``secret`` in a dev server), the rest the secret's path, after ``#`` the field.
"""

from __future__ import annotations

import os
from pathlib import Path

from gristmill.config.secrets.providers import SecretUnavailable

_HINT = (
    "set VAULT_ADDR and VAULT_TOKEN; write ${vault:MOUNT/PATH#FIELD}, e.g. ${vault:secret/app/db#password}"
)


def split_reference(name: str) -> tuple[str, str, str]:
    """``mount/path#field`` as its three parts, or :class:`SecretUnavailable` saying what is missing."""
    location, sep, field = name.partition("#")
    mount, slash, path = location.strip("/").partition("/")
    if not sep or not field or not slash or not path:
        raise SecretUnavailable(f"vault reference {name!r} is not mount/path#field", hint=_HINT)
    return mount, path, field


class VaultProvider:
    scheme: str = "vault"
    cacheable: bool = True

    def fetch(self, name: str, *, base: Path | None) -> str:
        import hvac  # imported on first use: it pulls in requests
        from hvac import exceptions
        from requests import RequestException

        mount, path, field = split_reference(name)
        address = os.environ.get("VAULT_ADDR")
        if not address:
            raise SecretUnavailable("VAULT_ADDR is not set", hint=_HINT)
        client = hvac.Client(url=address, namespace=os.environ.get("VAULT_NAMESPACE"))
        try:
            answer = client.secrets.kv.v2.read_secret_version(
                path=path, mount_point=mount, raise_on_deleted_version=True
            )
        except exceptions.InvalidPath:
            raise SecretUnavailable(f"vault has no secret {path!r} in mount {mount!r}") from None
        except exceptions.Forbidden:
            raise SecretUnavailable(
                f"vault refused to read {mount}/{path} (permission denied)",
                hint="check VAULT_TOKEN and its policy",
            ) from None
        except exceptions.VaultError as err:
            # hvac's message is the server's errors list: paths, never values
            raise SecretUnavailable(f"vault cannot read {mount}/{path}: {type(err).__name__}") from None
        except RequestException as err:
            raise SecretUnavailable(
                f"vault at {address} cannot be reached: {type(err).__name__}", hint=_HINT
            ) from None
        data = (answer.get("data") or {}).get("data") or {}
        if field not in data:
            fields = ", ".join(sorted(data)) or "none"
            raise SecretUnavailable(f"vault secret {mount}/{path} has no field {field!r} (fields: {fields})")
        return str(data[field])
