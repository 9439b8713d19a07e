"""A small fake of the Bot Framework services on a free loopback port, speaking their REST wire format.

- Bot Connector: `POST /v3/conversations/{id}/activities`,
  `POST|PUT /v3/conversations/{id}/activities/{activityId}` (recorded) and
  `GET /v3/conversations/{id}/members/{memberId}` (from `members`). Scripted
  failures (`fail_next`) answer the next sends with e.g. 429 + Retry-After,
  403 or 502, as the service does. With `enforce_limits()` it keeps Teams'
  documented limits — per conversation 7/1 s, 8/2 s, 60/30 s, 1,800/h, and a
  per-tenant cap (50/s by default) — answering 429 with Retry-After over
  them, and counts the sends it accepted per tenant and wall-clock second.
- Microsoft identity platform: `POST /{tenant}/oauth2/v2.0/token`, the
  client-credentials grant, enforced as Entra does for the apps a test
  `register`s: the tenant in the path must be the app's (or
  `botframework.com` for a multi-tenant app), the scope a `/.default` one,
  and the app must prove itself with its secret, a client assertion signed
  by its certificate (`x5t`, `aud` = this endpoint, `iss` = `sub` = the app,
  unexpired), or a federated token this fake's managed identity issued to
  an identity the app trusts. Answers carry Entra's error codes. Counted.
- Azure managed identity: App Service's `GET /msi/token` (needs the
  `X-IDENTITY-HEADER` secret) and the instance metadata service's
  `GET /metadata/identity/oauth2/token` (needs `Metadata: true`), issuing
  tokens for the identities a test registers.
- Bot Framework OpenID metadata and JWKS: `GET /openid` and `GET /keys`, with
  the public keys of the `Issuer`s the test registers.

`Issuer` makes RSA keys and signs channel tokens the way the Bot Framework
does (RS256; iss, aud, serviceurl, nbf/exp), so tests exercise the real
validation path. Nothing here is faked inside Baton.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import itertools
import json
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any, ClassVar

import jwt
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa

ISSUER = "https://api.botframework.com"


def _b64(number: int) -> str:
    raw = number.to_bytes((number.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class Issuer:
    """An RSA signing key with a key id, able to sign Bot Framework channel tokens."""

    _cached: ClassVar[dict[str, rsa.RSAPrivateKey]] = {}

    def __init__(self, kid: str, *, endorsements: tuple[str, ...] = ("msteams", "emulator")) -> None:
        self.kid = kid
        self.endorsements = endorsements
        # Generating RSA keys is slow; tests ask for the same few key ids over and over.
        self.key = Issuer._cached.setdefault(kid, rsa.generate_private_key(public_exponent=65537, key_size=2048))

    def jwk(self) -> dict[str, Any]:
        numbers = self.key.public_key().public_numbers()
        return {
            "kty": "RSA",
            "use": "sig",
            "kid": self.kid,
            "n": _b64(numbers.n),
            "e": _b64(numbers.e),
            "endorsements": list(self.endorsements),
        }

    def token(
        self, *, audience: str, service_url: str, lifetime: int = 3600, kid: str | None = None, **claims: Any
    ) -> str:
        now = int(time.time())
        payload = {
            "iss": ISSUER,
            "aud": audience,
            "serviceurl": service_url,
            "nbf": now - 5,
            "exp": now + lifetime,
            **claims,
        }
        payload = {name: value for name, value in payload.items() if value is not None}  # claim=None leaves it out
        return jwt.encode(payload, self.key, algorithm="RS256", headers={"kid": kid or self.kid})


@dataclass
class App:
    """An Entra app registration the fake token endpoint knows."""

    client_id: str
    tenant: str  # its home tenant; "botframework.com" accepts it too when multi_tenant
    secret: str | None = None
    certificate: bytes | None = None  # DER; client assertions are checked against its public key
    trusts: tuple[str, ...] = ()  # managed identity client ids whose tokens it takes as client assertions
    multi_tenant: bool = False


@dataclass
class Recorded:
    """One request the fake connector received."""

    method: str
    path: str
    conversation_id: str
    activity_id: str | None
    body: dict[str, Any]
    authorization: str | None
    status: int
    at: float = field(default_factory=time.monotonic)


@dataclass
class FakeConnector:
    """Start with `await fake.start()`; `fake.url` is the serviceUrl to put into activities."""

    host: str = "127.0.0.1"
    port: int = 0
    requests: list[Recorded] = field(default_factory=list)
    members: dict[str, dict[str, Any]] = field(default_factory=dict)
    issuers: list[Issuer] = field(default_factory=list)
    failures: list[tuple[int, dict[str, str], dict[str, Any] | None]] = field(default_factory=list)
    token_requests: list[dict[str, str]] = field(default_factory=list)
    metadata_reads: int = 0
    access_token: str = "fake-bot-token"
    apps: dict[str, App] = field(default_factory=dict)
    identities: set[str] = field(default_factory=set)  # managed identity client ids ("system" for the host's own)
    identity_header: str = "fake-identity-header-secret"
    identity_requests: list[dict[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._runner: web.AppRunner | None = None
        self._changed = asyncio.Event()
        self._ids = itertools.count(1)
        self.tenant_cap: float | None = None  # sends per sliding second per tenant; None: not enforced
        self.conversation_windows: tuple[tuple[int, float], ...] = ()
        self.per_second: Counter[tuple[str, int]] = Counter()
        self.throttled = 0  # 429s answered for going over a limit
        self._recent: dict[str, deque[float]] = {}
        self._identity_key = Issuer("fake-managed-identity").key  # signs federated tokens; made once per process

    def register(self, app: App) -> App:
        self.apps[app.client_id] = app
        return app

    def enforce_limits(
        self,
        tenant_cap: float = 50,
        conversation_windows: tuple[tuple[int, float], ...] = ((7, 1.0), (8, 2.0), (60, 30.0), (1800, 3600.0)),
    ) -> None:
        """Answer 429 (Retry-After: 1) to sends over Teams' per-conversation windows or the tenant cap."""
        self.tenant_cap, self.conversation_windows = tenant_cap, conversation_windows

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    @property
    def openid_url(self) -> str:
        return f"{self.url}openid"

    @property
    def authority(self) -> str:
        return f"{self.url}botframework.com"

    @property
    def sent(self) -> list[Recorded]:
        """Activities Baton sent successfully (2xx), oldest first."""
        return [r for r in self.requests if r.method in ("POST", "PUT") and 200 <= r.status < 300]

    def sent_to(self, conversation_id: str) -> list[Recorded]:
        return [r for r in self.sent if r.conversation_id == conversation_id]

    def fail_next(
        self, status: int, *, times: int = 1, retry_after: float | None = None, code: str | None = None
    ) -> None:
        """Answer the next `times` sends with `status` (and Retry-After / a Bot Framework error code)."""
        headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else {}
        body = {"error": {"code": code, "message": "scripted failure"}} if code else None
        self.failures.extend([(status, headers, body)] * times)

    async def wait_for(
        self, count: int, *, conversation_id: str | None = None, timeout: float = 10.0
    ) -> list[Recorded]:
        """Wait until at least `count` activities were sent (to one conversation, if given); return them."""
        deadline = time.monotonic() + timeout
        while True:
            sent = self.sent_to(conversation_id) if conversation_id else self.sent
            if len(sent) >= count:
                return sent
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"expected {count} activities at the fake connector, got {len(sent)}")
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), min(remaining, 0.2))
            except TimeoutError:
                pass

    async def start(self) -> FakeConnector:
        app = web.Application()
        app.router.add_post("/v3/conversations/{conversation}/activities", self._activity)
        app.router.add_post("/v3/conversations/{conversation}/activities/{activity}", self._activity)
        app.router.add_put("/v3/conversations/{conversation}/activities/{activity}", self._activity)
        app.router.add_get("/v3/conversations/{conversation}/members/{member}", self._member)
        app.router.add_post("/{tenant}/oauth2/v2.0/token", self._token)
        app.router.add_get("/msi/token", self._app_service_identity)
        app.router.add_get("/metadata/identity/oauth2/token", self._instance_identity)
        app.router.add_get("/openid", self._openid)
        app.router.add_get("/keys", self._keys)
        self._more_routes(app)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def _more_routes(self, app: web.Application) -> None:
        """Routes a subclass adds (the benchmark's counters)."""

    async def _activity(self, request: web.Request) -> web.Response:
        body = await request.json()
        ok = 201 if request.method == "POST" else 200
        status, headers, error = self.failures.pop(0) if self.failures else (ok, {}, None)
        if status == ok and self._over_limit(body, request.match_info["conversation"]):
            status, headers, error = 429, {"Retry-After": "1"}, {"error": {"code": "Throttled", "message": "slow down"}}
            self.throttled += 1
        self.requests.append(
            Recorded(
                request.method,
                request.path,
                request.match_info["conversation"],
                request.match_info.get("activity"),
                body,
                request.headers.get("Authorization"),
                status,
            )
        )
        self._changed.set()
        if status >= 300:
            return (
                web.json_response(error, status=status, headers=headers)
                if error
                else web.Response(status=status, headers=headers)
            )
        return web.json_response({"id": f"1{next(self._ids):012d}"}, status=status)

    def _over_limit(self, body: dict[str, Any], conversation: str) -> bool:
        """Whether this send goes over a limit; if not, it is counted (sliding windows on arrival)."""
        if self.tenant_cap is None and not self.conversation_windows:
            return False
        now = time.monotonic()
        tenant = str((body.get("conversation") or {}).get("tenantId") or "-")
        tenant_key, conversation_key = f"tenant:{tenant}", f"conversation:{conversation}"
        longest = max((period for _, period in self.conversation_windows), default=1.0)
        for key, horizon in ((tenant_key, 1.0), (conversation_key, longest)):
            recent = self._recent.setdefault(key, deque())
            while recent and recent[0] <= now - horizon:
                recent.popleft()
        tenant_recent, conversation_recent = self._recent[tenant_key], self._recent[conversation_key]
        if self.tenant_cap is not None and len(tenant_recent) >= self.tenant_cap:
            return True
        for count, period in self.conversation_windows:
            if sum(1 for at in conversation_recent if at > now - period) >= count:
                return True
        tenant_recent.append(now)
        conversation_recent.append(now)
        self.per_second[(tenant, int(time.time()))] += 1
        return False

    async def _member(self, request: web.Request) -> web.Response:
        self.requests.append(
            Recorded(
                "GET",
                request.path,
                request.match_info["conversation"],
                None,
                {},
                request.headers.get("Authorization"),
                200,
            )
        )
        member = self.members.get(request.match_info["member"])
        if member is None:
            return web.json_response(
                {"error": {"code": "MemberNotFoundInConversation", "message": "not found"}}, status=404
            )
        return web.json_response({"id": request.match_info["member"], **member})

    async def _token(self, request: web.Request) -> web.Response:
        form = {k: str(v) for k, v in (await request.post()).items()}
        self.token_requests.append(form)

        def refuse(status: int, error: str, code: int) -> web.Response:
            return web.json_response({"error": error, "error_codes": [code]}, status=status)

        if form.get("grant_type") != "client_credentials":
            return refuse(400, "unsupported_grant_type", 70003)
        if not form.get("scope", "").endswith("/.default"):
            return refuse(400, "invalid_scope", 1002012)
        app = self.apps.get(form.get("client_id", ""))
        tenant = request.match_info["tenant"]
        if app is None or not (tenant == app.tenant or (app.multi_tenant and tenant == "botframework.com")):
            return refuse(400, "unauthorized_client", 700016)  # AADSTS700016: app not found in the directory
        if form.get("client_secret") is not None:
            if app.secret is None or form["client_secret"] != app.secret:
                return refuse(401, "invalid_client", 7000215)
        elif form.get("client_assertion_type") == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer":
            if not self._assertion_ok(app, form.get("client_assertion", ""), str(request.url)):
                return refuse(401, "invalid_client", 700027)
        else:
            return refuse(401, "invalid_client", 7000218)  # no credential at all
        # A token is for one resource: Graph's is another token than the Bot Connector's.
        token = self.access_token if "botframework" in form["scope"] else f"{self.access_token}-for-{form['scope']}"
        return web.json_response(
            {"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": token}
        )

    def _assertion_ok(self, app: App, assertion: str, token_url: str) -> bool:
        """A certificate-signed assertion for this endpoint, or a federated token from this fake's identity."""
        try:
            header = jwt.get_unverified_header(assertion)
        except jwt.PyJWTError:
            return False
        if "x5t" in header:
            if app.certificate is None:
                return False
            from cryptography import x509

            certificate = x509.load_der_x509_certificate(app.certificate)
            thumbprint = base64.urlsafe_b64encode(hashlib.sha1(app.certificate).digest()).rstrip(b"=").decode()
            if header["x5t"] != thumbprint:
                return False
            try:
                claims = jwt.decode(
                    assertion,
                    certificate.public_key(),
                    algorithms=["RS256", "PS256"],
                    audience=token_url,
                    issuer=app.client_id,
                    options={"require": ["exp", "jti", "sub"]},
                )
            except jwt.PyJWTError:
                return False
            return claims["sub"] == app.client_id
        try:
            claims = jwt.decode(
                assertion,
                self._identity_key.public_key(),
                algorithms=["RS256"],
                audience="api://AzureADTokenExchange",
                options={"require": ["exp"]},
            )
        except jwt.PyJWTError:
            return False
        return claims.get("appid") in app.trusts

    async def _app_service_identity(self, request: web.Request) -> web.Response:
        if request.headers.get("X-IDENTITY-HEADER") != self.identity_header:
            return web.json_response({"error": "unauthorized"}, status=401)
        return self._identity_token(request, expires=lambda lifetime: {"expires_on": str(int(time.time()) + lifetime)})

    async def _instance_identity(self, request: web.Request) -> web.Response:
        if request.headers.get("Metadata") != "true":
            return web.json_response({"error": "invalid_request", "error_description": "Metadata header"}, status=400)
        return self._identity_token(request, expires=lambda lifetime: {"expires_in": str(lifetime)})

    def _identity_token(self, request: web.Request, *, expires: Any) -> web.Response:
        query = dict(request.query)
        self.identity_requests.append(query)
        who = query.get("client_id") or "system"
        resource = query.get("resource")
        if who not in self.identities or not resource:
            return web.json_response(
                {"error": "invalid_request", "error_description": "Identity not found"}, status=400
            )
        if resource == "api://AzureADTokenExchange":
            now = int(time.time())
            token = jwt.encode(
                {"aud": resource, "appid": who, "iat": now, "exp": now + 3600, "sub": f"mi-{who}"},
                self._identity_key,
                algorithm="RS256",
            )
        else:
            token = f"fake-mi-token-for-{who}"
        return web.json_response({"access_token": token, "resource": resource, "token_type": "Bearer", **expires(3600)})

    async def _openid(self, request: web.Request) -> web.Response:
        self.metadata_reads += 1
        return web.json_response(
            {
                "issuer": ISSUER,
                "authorization_endpoint": "https://invalid.botframework.com",
                "jwks_uri": f"{self.url}keys",
                "id_token_signing_alg_values_supported": ["RS256"],
                "token_endpoint_auth_methods_supported": ["private_key_jwt"],
            }
        )

    async def _keys(self, request: web.Request) -> web.Response:
        return web.Response(
            text=json.dumps({"keys": [issuer.jwk() for issuer in self.issuers]}), content_type="application/json"
        )


class CountingConnector(FakeConnector):
    """The fake for the benchmarks, in its own process: counts as activities arrive, so polling stays cheap.

    `GET /_stats`: sends accepted, 429s for going over a limit, conversations reached, when the first
    activity of the first and of the last conversation arrived, activities posted twice (the same body to
    the same conversation), the busiest wall-clock second. `GET /_conversation/{id}`: activities sent there.
    """

    def __post_init__(self) -> None:
        super().__post_init__()
        self.per_conversation: Counter[str] = Counter()
        self.bodies: Counter[tuple[str, str]] = Counter()
        self.firsts: list[float] = []

    def _more_routes(self, app: web.Application) -> None:
        app.router.add_get("/_stats", self._stats)
        app.router.add_get("/_conversation/{conversation}", self._conversation)

    async def _activity(self, request: web.Request) -> web.Response:
        response = await super()._activity(request)
        recorded = self.requests[-1]
        self.requests.clear()  # counted below; thousands of bodies need not be kept
        if 200 <= recorded.status < 300:
            conversation = recorded.conversation_id
            if not self.per_conversation[conversation]:
                self.firsts.append(recorded.at)
            self.per_conversation[conversation] += 1
            self.bodies[(conversation, json.dumps(recorded.body.get("attachments") or recorded.body.get("text")))] += 1
        return response

    async def _stats(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "sent": sum(self.per_conversation.values()),
                "throttled": self.throttled,
                "conversations": len(self.per_conversation),
                "first_at": min(self.firsts, default=None),
                "last_at": max(self.firsts, default=None),
                "twice": sum(n - 1 for n in self.bodies.values() if n > 1),
                "busiest_second": max(self.per_second.values(), default=0),
            }
        )

    async def _conversation(self, request: web.Request) -> web.Response:
        return web.json_response({"sent": self.per_conversation[request.match_info["conversation"]]})


def main() -> None:
    """`python -m tests.fakes.teams_connector [--tenant-cap N]`: prints its port, serves until killed."""
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--tenant-cap", type=float, default=50)
    args = parser.parse_args()

    async def serve() -> None:
        fake = CountingConnector()
        fake.enforce_limits(tenant_cap=args.tenant_cap)
        await fake.start()
        print(fake.port, flush=True)
        await asyncio.Event().wait()

    try:
        asyncio.run(serve())
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
