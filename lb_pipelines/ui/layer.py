"""The sign-in layer: an ASGI application in front of the Dagster webserver's, in one process.

- `/auth/login` sends the browser to the identity provider: OpenID Connect's authorization code
  flow with PKCE (S256), `state` and `nonce` (Authlib), or a SAML AuthnRequest (pysaml2).
- `/auth/callback` (OIDC) and `/auth/saml/acs` (SAML) check the answer, map the person's groups
  to a role (`roles.py`) and start a session: a signed cookie (HttpOnly, SameSite=Lax, Secure
  behind TLS) holding who and which role, never a token, with a fixed expiry.
- Everything else is the Dagster UI, for a signed-in person with a role. Every GraphQL mutation
  (over HTTP or the websocket) and every other POST is checked against the role: refused with
  403, or passed on; either way it is audited (`audit.py`).
- `/auth/logout` ends the session.
"""

from __future__ import annotations

import html
import json
import time
from typing import Any, Awaitable, Callable
from urllib.parse import quote, urlsplit

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route

from lb_pipelines.ui.audit import Audit
from lb_pipelines.ui.graphql_gate import mutations_in, target_of
from lb_pipelines.ui.identity import Identity, SignInRefused
from lb_pipelines.ui.roles import may_mutate, may_post, role_of
from lb_pipelines.ui.settings import UiSettings

def _resolve_anyio_now() -> None:
    """anyio imports its parts on first use, parsing their source with `ast`; Python 3.11's parser
    is not thread-safe (CPython gh-106905: "AST constructor recursion depth mismatch"), and the
    first static file served in a server thread raced another thread's import. Resolve them here,
    in the importing thread, once (~0.1 s)."""
    import anyio

    for name in dir(anyio):
        if not name.startswith("_"):
            getattr(anyio, name)


_resolve_anyio_now()

SESSION_COOKIE = "lb_ui_session"
SAML_REQUEST_TTL_S = 600


def _address(scope: dict) -> str:
    client = scope.get("client")
    return client[0] if client else ""


def _page(title: str, text: str, status: int, link: tuple[str, str] | None = None) -> HTMLResponse:
    more = f'<p><a href="{html.escape(link[0])}">{html.escape(link[1])}</a></p>' if link else ""
    return HTMLResponse(
        f"<!doctype html><html><head><title>{html.escape(title)}</title></head><body>"
        f"<h1>{html.escape(title)}</h1><p>{html.escape(text)}</p>{more}</body></html>",
        status_code=status,
    )


def _safe_next(value: str | None) -> str:
    """Only a path on this site (no scheme, no host, no `//`): an open redirect is a phishing tool."""
    if not value or not value.startswith("/") or value.startswith("//") or urlsplit(value).netloc:
        return "/"
    return value


class SignInLayer:
    def __init__(self, settings: UiSettings, inner: Callable, audit: Audit | None = None):
        self.settings = settings
        self.inner = inner
        self.audit = audit or Audit(settings.audit_db)
        self._saml_requests: dict[str, tuple[str, float]] = {}  # AuthnRequest id → (next, expiry)
        self.oauth = self.saml = None
        if settings.sign_in == "oidc":
            from authlib.integrations.starlette_client import OAuth

            self.oauth = OAuth()
            self.oauth.register(
                "idp",
                server_metadata_url=f"{settings.oidc_issuer}/.well-known/openid-configuration",
                client_id=settings.oidc_client_id,
                client_secret=settings.oidc_client_secret,
                client_kwargs={"scope": settings.oidc_scopes, "code_challenge_method": "S256"},
            )
        elif settings.sign_in == "saml":
            from lb_pipelines.ui.saml import SamlSignIn

            self.saml = SamlSignIn(settings)
        routes = [
            Route("/auth/login", self.login),
            Route("/auth/callback", self.oidc_callback),
            Route("/auth/saml/acs", self.saml_acs, methods=["POST"]),
            Route("/auth/saml/metadata", self.saml_metadata),
            Route("/auth/logout", self.logout, methods=["GET", "POST"]),
            Route("/auth/whoami", self.whoami),
            Mount("/", app=self.gate),
        ]
        self.app = Starlette(routes=routes, middleware=[Middleware(
            SessionMiddleware, secret_key=settings.session_secret, session_cookie=SESSION_COOKIE,
            max_age=int(settings.session_minutes * 60) or 1, same_site="lax", https_only=settings.secure_cookies,
        )])

    async def __call__(self, scope, receive, send) -> None:
        await self.app(scope, receive, send)

    # -- signing in and out ---------------------------------------------------------------------

    def _user(self, session: dict) -> dict | None:
        user = session.get("user")
        if not user or user.get("expires", 0) < time.time():
            return None
        return user

    async def login(self, request: Request) -> Response:
        request.session.pop("user", None)
        target = _safe_next(request.query_params.get("next"))
        if self.oauth is not None:
            request.session["next"] = target
            return await self.oauth.idp.authorize_redirect(request, self.settings.redirect_uri)
        if self.saml is not None:
            now = time.time()
            self._saml_requests = {k: v for k, v in self._saml_requests.items() if v[1] > now}
            request_id, url = self.saml.login_redirect(relay_state=target)
            self._saml_requests[request_id] = (target, now + SAML_REQUEST_TTL_S)
            return RedirectResponse(url, status_code=302)
        return _page("Sign-in is not configured", "Set LB_UI_SIGN_IN (see docs/operations.md).", 404)

    async def oidc_callback(self, request: Request) -> Response:
        if self.oauth is None:
            return PlainTextResponse("not found", status_code=404)
        from authlib.integrations.base_client import OAuthError

        try:
            token = await self.oauth.idp.authorize_access_token(request)
            claims = token.get("userinfo") or {}
            if not claims.get("sub"):
                raise SignInRefused("the identity provider returned no ID token subject")
        except (OAuthError, SignInRefused) as exc:
            reason = getattr(exc, "description", None) or getattr(exc, "error", None) or str(exc)
            return self._refused(request, f"sign-in refused: {reason}")
        except Exception as exc:  # e.g. a nonce or signature check of the ID token (joserfc)
            return self._refused(request, f"sign-in refused: the ID token did not verify ({type(exc).__name__})")
        groups = claim(claims, self.settings.role_claim) or ()
        identity = Identity(
            subject=str(claims["sub"]),
            name=str(claims.get("preferred_username") or claims.get("email") or claims["sub"]),
            groups=tuple([groups] if isinstance(groups, str) else map(str, groups)),
            via="oidc",
        )
        return self._start_session(request, identity, request.session.pop("next", "/"))

    async def saml_acs(self, request: Request) -> Response:
        if self.saml is None:
            return PlainTextResponse("not found", status_code=404)
        form = await request.form()
        now = time.time()
        outstanding = {k: v[0] for k, v in self._saml_requests.items() if v[1] > now}
        try:  # xmlsec1 runs as a program: not on the event loop
            identity = await run_in_threadpool(self.saml.identity, str(form.get("SAMLResponse", "")), outstanding)
        except SignInRefused as exc:
            return self._refused(request, f"sign-in refused: {exc}")
        finally:
            for answered in set(self._saml_requests) - set(outstanding):
                self._saml_requests.pop(answered, None)  # a request is answered once (no replay)
        return self._start_session(request, identity, _safe_next(str(form.get("RelayState", "/"))))

    async def saml_metadata(self, request: Request) -> Response:
        if self.saml is None:
            return PlainTextResponse("not found", status_code=404)
        return Response(self.saml.metadata_xml(), media_type="application/samlmetadata+xml")

    def _refused(self, request: Request, reason: str) -> Response:
        self.audit.record("sign_in", "refused", address=_address(request.scope), detail=reason)
        return _page("Sign-in refused", reason, 403, ("/auth/login", "Try again"))

    def _start_session(self, request: Request, identity: Identity, target: str) -> Response:
        role = role_of(identity.groups, self.settings.role_of_group)
        address = _address(request.scope)
        if role is None:
            self.audit.record("sign_in", "refused", who=identity.name, address=address,
                              detail=f"no role: none of the {len(identity.groups)} groups in "
                                     f"'{self.settings.role_claim}' is mapped (LB_UI_ROLES)")
            return _page(
                "No access to lb-pipelines",
                f"You signed in as {identity.name}, but none of your groups gives a role here "
                "(viewer, operator or admin). Ask the integration team to add you to one of the groups "
                "mapped in LB_UI_ROLES.",
                403, ("/auth/logout", "Sign out"),
            )
        request.session.clear()
        request.session["user"] = {
            "subject": identity.subject, "name": identity.name, "role": role, "via": identity.via,
            "expires": time.time() + self.settings.session_minutes * 60,
        }
        self.audit.record("sign_in", "ok", who=identity.name, role=role, address=address, detail=identity.via)
        return RedirectResponse(_safe_next(target), status_code=303)

    async def logout(self, request: Request) -> Response:
        user = self._user(request.session)
        request.session.clear()
        if user:
            self.audit.record("sign_out", "ok", who=user["name"], role=user["role"], address=_address(request.scope))
        return _page("Signed out", "You are signed out of lb-pipelines.", 200, ("/auth/login", "Sign in again"))

    async def whoami(self, request: Request) -> Response:
        user = self._user(request.session)
        if user is None:
            return JSONResponse({"signed_in": False}, status_code=401)
        return JSONResponse({"signed_in": True, **{k: user[k] for k in ("name", "role", "via")}})

    # -- the gate in front of the Dagster UI ---------------------------------------------------

    async def gate(self, scope, receive, send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.inner(scope, receive, send)
            return
        user = self._user(scope.get("session") or {})
        if user is None:
            await self._sign_in_first(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await self.inner(scope, self._checked_websocket(scope, user, receive, send), send)
            return
        method = scope["method"]
        if method in ("GET", "HEAD", "OPTIONS"):
            if scope["path"].endswith("/graphql") and self._mutations_in_query_string(scope):
                await self._deny(scope, send, user, "mutation over GET", "a mutation must be a POST")
                return
            await self.inner(scope, receive, send)
            return
        body = await _read_body(receive)
        if scope["path"].endswith("/graphql"):
            if not await self._graphql_allowed(scope, send, user, body):
                return
        elif not may_post(user["role"]):
            await self._deny(scope, send, user, f"{method} {scope['path']}", f"role {user['role']} may not {method} here")
            return
        else:
            self.audit.record("post", "allowed", who=user["name"], role=user["role"], address=_address(scope),
                              operation=f"{method} {scope['path']}")
        await self.inner(scope, _replay(body, receive), send)

    async def _sign_in_first(self, scope, receive, send) -> None:
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 4401})
            return
        request = Request(scope, receive)
        wants_html = "text/html" in request.headers.get("accept", "")
        if scope["method"] == "GET" and wants_html:
            target = scope["path"] + (f"?{scope['query_string'].decode()}" if scope.get("query_string") else "")
            response: Response = RedirectResponse(f"/auth/login?next={quote(target, safe='')}", status_code=302)
        else:
            response = JSONResponse({"errors": [{"message": "sign in first: /auth/login"}]}, status_code=401)
        await response(scope, receive, send)

    def _mutations_in_query_string(self, scope) -> list[str]:
        from urllib.parse import parse_qs

        params = parse_qs(scope.get("query_string", b"").decode())
        return mutations_in((params.get("query") or [None])[0], (params.get("operationName") or [None])[0])

    async def _graphql_allowed(self, scope, send, user: dict, body: bytes) -> bool:
        try:
            payload = json.loads(body or b"{}")
        except ValueError:
            return True  # not JSON: Dagster refuses it, nothing runs
        for request in payload if isinstance(payload, list) else [payload]:
            if not isinstance(request, dict):
                continue
            for mutation in mutations_in(request.get("query"), request.get("operationName")):
                target = target_of(request.get("variables"))
                if not may_mutate(user["role"], mutation):
                    await self._deny(scope, send, user, mutation, f"role {user['role']} may not {mutation}", target)
                    return False
                self.audit.record("mutation", "allowed", who=user["name"], role=user["role"],
                                  address=_address(scope), operation=mutation, target=target)
        return True

    async def _deny(self, scope, send, user: dict, operation: str, reason: str, target: Any = "") -> None:
        self.audit.record("mutation", "refused", who=user["name"], role=user["role"], address=_address(scope),
                          operation=operation, target=target, detail=reason)
        response = JSONResponse({"errors": [{"message": f"forbidden: {reason}"}]}, status_code=403)
        await response(scope, _no_body, send)

    def _checked_websocket(self, scope, user: dict, receive, send) -> Callable[[], Awaitable[dict]]:
        """The websocket's messages, each GraphQL operation checked as over HTTP (subscriptions
        are reads; a mutation sent this way is refused by closing the socket)."""

        async def checked() -> dict:
            message = await receive()
            if message["type"] == "websocket.receive" and message.get("text"):
                try:
                    frame = json.loads(message["text"])
                except ValueError:
                    return message
                payload = frame.get("payload") if isinstance(frame, dict) else None
                if isinstance(payload, dict):
                    for mutation in mutations_in(payload.get("query"), payload.get("operationName")):
                        if not may_mutate(user["role"], mutation):
                            self.audit.record("mutation", "refused", who=user["name"], role=user["role"],
                                              address=_address(scope), operation=mutation,
                                              target=target_of(payload.get("variables")),
                                              detail=f"role {user['role']} may not {mutation} (websocket)")
                            await send({"type": "websocket.close", "code": 4403})
                            return {"type": "websocket.disconnect", "code": 4403}
                        self.audit.record("mutation", "allowed", who=user["name"], role=user["role"],
                                          address=_address(scope), operation=mutation,
                                          target=target_of(payload.get("variables")))
            return message

        return checked


def claim(claims: dict, name: str) -> Any:
    """A claim by name, or by a dotted path into nested claims (Keycloak's `realm_access.roles`)."""
    if name in claims:
        return claims[name]
    value: Any = claims
    for part in name.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


async def _read_body(receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive):
    sent = False

    async def replay() -> dict:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _no_body() -> dict:
    return {"type": "http.request", "body": b"", "more_body": False}
