"""Authentication for REST sources as httpx auth flows; secrets resolved at connect time only."""

from __future__ import annotations

import base64
import json
import re
import threading
import time
from collections.abc import Callable, Generator, Mapping
from pathlib import Path
from typing import Any, Protocol

import httpx

from gristmill.config.secrets import REFERENCE, resolve
from gristmill.connectors.rest.config import ApiKeyAuth, BasicAuth, BearerAuth, OAuth2Auth
from gristmill.connectors.rest.transport import hide, join_url
from gristmill.errors import SourceError

AuthOptions = BearerAuth | ApiKeyAuth | BasicAuth | OAuth2Auth

_ONLY_A_REFERENCE = re.compile(rf"^\s*{REFERENCE.pattern}\s*$")
_EXPIRY_MARGIN = 30.0  # renew a token this many seconds before the server says it expires


class Send(Protocol):
    """``Http.send``: the token request goes through the same retries and rate limit."""

    def __call__(
        self,
        method: str,
        url: str,
        what: str,
        *,
        data: Mapping[str, str] | None = ...,
        headers: Mapping[str, str] | None = ...,
        authenticated: bool = ...,
    ) -> httpx.Response: ...


class _HeaderAuth(httpx.Auth):
    """A fixed header on every request (bearer token, API key, basic credentials)."""

    def __init__(self, name: str, value: str) -> None:
        self._name = name
        self._value = value

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers[self._name] = self._value
        yield request

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._name}: ***)"


class _QueryKeyAuth(httpx.Auth):
    def __init__(self, name: str, value: str) -> None:
        self._name = name
        self._value = value

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        # Set, not add: a next-page URL from the API may already carry the key.
        request.url = request.url.copy_set_param(self._name, self._value)
        yield request

    def __repr__(self) -> str:
        return f"_QueryKeyAuth({self._name}=***)"


TokenFetcher = Callable[[], httpx.Response]


class OAuth2ClientCredentials(httpx.Auth):
    """A bearer token from the token endpoint, kept until shortly before it expires and fetched
    again once when the API answers 401 (a token revoked or expired early)."""

    def __init__(self, fetch: TokenFetcher, token_url: str) -> None:
        self._fetch = fetch
        self._token_url = token_url
        self._token: str | None = None
        self._expires = 0.0
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"OAuth2ClientCredentials({self._token_url})"

    def token(self, *, renew: bool = False) -> str:
        with self._lock:
            if renew or self._token is None or time.monotonic() >= self._expires:
                self._token, lifetime = self._request_token()
                self._expires = time.monotonic() + max(lifetime - _EXPIRY_MARGIN, 0.0)
            return self._token

    def _request_token(self) -> tuple[str, float]:
        response = self._fetch()
        body: Any
        try:
            body = json.loads(response.content)
        except ValueError:
            body = None
        token = body.get("access_token") if isinstance(body, dict) else None
        if not token or not isinstance(body, dict):
            found = "keys: " + ", ".join(body) if isinstance(body, dict) else "not a JSON object"
            raise SourceError(
                f"the OAuth2 token endpoint {self._token_url} answered without an access_token ({found})"
            )
        hide(str(token))
        try:
            lifetime = float(body.get("expires_in") or "inf")
        except (TypeError, ValueError):
            lifetime = float("inf")
        return str(token), lifetime

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self.token()}"
        response = yield request
        if response.status_code == 401:
            request.headers["Authorization"] = f"Bearer {self.token(renew=True)}"
            yield request


def secret(value: str, root: Path, where: str) -> str:
    """Resolve ``${env:…}``/``${file:…}`` references; the value is hidden from all text shown."""
    resolved = resolve(value, base=root, where=where)
    hide(resolved)
    return resolved


def credentials(options: AuthOptions | None) -> str:
    """Where the credentials come from, for error hints: references are shown, values never."""
    if options is None:
        return "no auth is configured"
    fields = {
        "bearer": ("token",),
        "api_key": ("value",),
        "basic": ("username", "password"),
        "oauth2": ("client_id", "client_secret"),
    }[options.type]
    shown = [f"{name}: {_reference_or_hidden(getattr(options, name))}" for name in fields]
    return f"auth {options.type}, " + ", ".join(shown)


def _reference_or_hidden(value: str) -> str:
    return value.strip() if _ONLY_A_REFERENCE.match(value) else "(written in the file)"


def build_auth(
    options: AuthOptions | None, root: Path, where: str, *, base_url: str, send: Send
) -> httpx.Auth | None:
    if options is None:
        return None
    if isinstance(options, BearerAuth):
        return _HeaderAuth("Authorization", f"Bearer {secret(options.token, root, where)}")
    if isinstance(options, ApiKeyAuth):
        key = secret(options.value, root, where)
        if options.where == "query":
            hide(param=options.name)
            return _QueryKeyAuth(options.name, key)
        return _HeaderAuth(options.name, key)
    if isinstance(options, BasicAuth):
        pair = f"{secret(options.username, root, where)}:{secret(options.password, root, where)}"
        encoded = base64.b64encode(pair.encode()).decode()
        hide(encoded)
        return _HeaderAuth("Authorization", f"Basic {encoded}")
    token_url = join_url(base_url, options.token_url)
    return OAuth2ClientCredentials(_token_request(options, root, where, token_url, send), token_url)


def _token_request(options: OAuth2Auth, root: Path, where: str, token_url: str, send: Send) -> TokenFetcher:
    """The client credentials grant (RFC 6749 4.4) as a form POST, ready to send again."""
    client_id = secret(options.client_id, root, where)
    client_secret = secret(options.client_secret, root, where)
    form = {"grant_type": "client_credentials"}
    if options.scope:
        form["scope"] = options.scope
    headers = {}
    if options.client_auth == "basic":
        encoded = base64.b64encode(f"{client_id}:{client_secret}".encode()).decode()
        hide(encoded)
        headers["Authorization"] = f"Basic {encoded}"
    else:
        form |= {"client_id": client_id, "client_secret": client_secret}
    what = f"{where.split(':')[0]} (OAuth2 token)"
    return lambda: send("POST", token_url, what, data=form, headers=headers, authenticated=False)
