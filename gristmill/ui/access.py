"""Who may see the UI: the API's keys, kept in a cookie, and a CSRF check on every POST.

When the server requires keys, a visitor without one is sent to ``/login`` and pastes a key
there; the server checks it against the same key store as the data API and, if it is live, keeps
it in an ``HttpOnly; SameSite=Strict`` cookie (scripts cannot read it, other sites cannot send
it). Every request checks the cookie's key again, so ``gristmill keys revoke`` ends a UI session
too. The key is never written into a page.

Forms that change something (start, retry, cancel a run) carry a CSRF token: an HMAC of the
session's key under a secret of this process, compared in constant time. SameSite=Strict already
keeps other sites' forms from sending the cookie; the token also refuses a request forged by
anything that can set a cookie but not read a page. Under ``--no-auth`` (loopback only) there is
no cookie, and the token is an HMAC of a fixed text, so a POST still needs a page of this
server in hand."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, Depends, HTTPException, Request, status

from gristmill.errors import GristmillError, KeyRefused
from gristmill.server.auth import KeyChecker

COOKIE = "gristmill_ui_key"
CSRF_FIELD = "csrf"
_SECRET = secrets.token_bytes(32)
"""Per process: tokens end with the server, like the sessions' pages."""


@dataclass(frozen=True)
class Visitor:
    """Who is looking: ``key_id`` None under ``--no-auth``; ``csrf`` the token their forms carry."""

    key_id: str | None
    csrf: str


class LoginNeeded(Exception):
    """Raised by ``visitor``: the page answers with a redirect to the login page."""

    def __init__(self, target: str) -> None:
        super().__init__(target)
        self.location = f"/login?next={quote(target, safe='')}"


def csrf_token(session: str) -> str:
    return hmac.new(_SECRET, session.encode(), hashlib.sha256).hexdigest()


def check_key(keys: KeyChecker | None, token: str) -> str | None:
    """The key's id when ``token`` is a live key, else None (never saying more about it)."""
    if keys is None:
        return None
    try:
        return keys.check(token).key_id
    except (KeyRefused, GristmillError):
        return None


def visitor(request: Request, keys: KeyChecker | None) -> Visitor:
    """The visitor of a page, or ``LoginNeeded`` when keys are required and none is presented."""
    if keys is None:
        return Visitor(None, csrf_token("no-auth"))
    token = request.cookies.get(COOKIE, "")
    key_id = check_key(keys, token) if token else None
    if key_id is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise LoginNeeded(target)
    return Visitor(key_id, csrf_token(token))


def csrf_ok(visiting: Visitor, presented: str | None) -> bool:
    return presented is not None and hmac.compare_digest(visiting.csrf.encode(), presented.encode())


def safe_next(target: str | None) -> str:
    """Only a path of this server: ``next=https://elsewhere`` would make login an open redirect."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


MAX_FORM = 64 * 1024
"""The UI's forms hold a key, a selection, a token: a larger body is not one of them."""


async def form_of(request: Request) -> dict[str, str]:
    """A posted ``application/x-www-form-urlencoded`` form (the only kind the UI's pages send),
    first value of each field; anything else, or a body past ``MAX_FORM``, reads as empty."""
    if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        return {}
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM:
            return {}
    try:
        fields = parse_qs(body.decode("utf-8"), keep_blank_values=True)
    except UnicodeDecodeError:
        return {}
    return {name: values[0] for name, values in fields.items()}


def behind_login(pages: APIRouter, keys: KeyChecker | None) -> APIRouter:
    """``pages`` (a router of UI pages built elsewhere: the asset graph, the dashboards) answering
    only a visitor the other pages would let in; anyone else is sent to the login page."""

    def let_in(request: Request) -> None:
        try:
            visitor(request, keys)
        except LoginNeeded as needed:
            raise HTTPException(status.HTTP_303_SEE_OTHER, headers={"Location": needed.location}) from None

    guarded = APIRouter()
    guarded.include_router(pages, dependencies=[Depends(let_in)])
    return guarded
