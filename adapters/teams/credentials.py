"""How Baton proves who it is to the Bot Connector: one access token per mode of authentication, fetched async.

Every send carries `Authorization: Bearer <token>`, a token of the Microsoft
identity platform for `https://api.botframework.com`. Which request gets it
depends on how the bot's app registration proves its identity:

- `ClientSecret`: OAuth2 client credentials with the app's secret.
- `Certificate`: client credentials with a client assertion, a JWT signed by
  the certificate's private key (RFC 7523, `x5t` naming the certificate),
  read from a PKCS#12 file that may carry a password.
- `UserManagedIdentity` / `SystemManagedIdentity`: the Azure host's managed
  identity endpoint (App Service / Container Apps `IDENTITY_ENDPOINT` +
  `IDENTITY_HEADER`, else the instance metadata service); the bot's app id is
  then the identity's client id.
- `FederatedCredentials`: the app's client credentials, with a token of a
  user-assigned managed identity (for `api://AzureADTokenExchange`) as the
  client assertion: no secret anywhere.
- `WorkloadIdentity`: the same with the assertion read from a projected
  token file (AKS workload identity), re-read on every fetch as it rotates.

These are the requests MSAL and the Agents SDK's `MsalAuth` make. Baton
makes them itself because `MsalAuth` (1.9) builds its MSAL client on the
event loop with a blocking tenant discovery (the first send per tenant
stalls every other request), cannot read a password-protected certificate,
ignores `force_refresh`, and cannot be pointed at a test's token endpoint
(MSAL asks login.microsoftonline.com to validate any other authority);
here every mode runs on the adapter's aiohttp session and each is tested
against a fake token endpoint on loopback (tests/fakes/teams_connector.py).

Secrets and tokens never appear in an exception message or a log line.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import aiohttp
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from cryptography.hazmat.primitives.serialization import pkcs12

BOT_FRAMEWORK_RESOURCE = "https://api.botframework.com"
TOKEN_EXCHANGE_RESOURCE = "api://AzureADTokenExchange"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
# The instance metadata service, where an Azure VM (or AKS node) hands out managed identity tokens.
# AZURE_POD_IDENTITY_AUTHORITY_HOST moves it, as MSAL and azure-identity allow.
IMDS = "http://169.254.169.254"
REQUEST_TIMEOUT = aiohttp.ClientTimeout(total=15, connect=5)

Session = Callable[[], aiohttp.ClientSession]


class CredentialError(Exception):
    """No token could be had; the message names the mode and the service's error code, never a secret."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


@dataclass(frozen=True, slots=True)
class AccessToken:
    token: str
    lifetime: float  # seconds from when it was issued


class Credential(Protocol):
    """One way of getting a Bot Connector token."""

    mode: str

    async def fetch(self, session: aiohttp.ClientSession, resource: str = BOT_FRAMEWORK_RESOURCE) -> AccessToken:
        """A fresh token for `resource` (the Bot Connector unless asked otherwise). Raises CredentialError."""
        ...


@dataclass(frozen=True, slots=True)
class ClientSecret:
    """Client credentials with the app's client secret."""

    client_id: str
    secret: str = field(repr=False)
    token_url: str
    mode: str = "ClientSecret"

    async def fetch(self, session: aiohttp.ClientSession, resource: str = BOT_FRAMEWORK_RESOURCE) -> AccessToken:
        return await client_credentials(
            session, self.token_url, {"client_id": self.client_id, "client_secret": self.secret}, self.mode, resource
        )


class Certificate:
    """Client credentials with a JWT signed by the certificate's key (what Entra calls a certificate credential)."""

    mode = "Certificate"

    def __init__(self, client_id: str, token_url: str, key: RSAPrivateKey, certificate_der: bytes) -> None:
        self.client_id = client_id
        self.token_url = token_url
        self._key = key
        # x5t is the certificate's SHA-1 thumbprint by definition (RFC 7515), what Entra matches on;
        # x5t#S256 is sent too, for when Entra moves to it.
        self._x5t = _b64(hashlib.sha1(certificate_der).digest())
        self._x5t256 = _b64(hashlib.sha256(certificate_der).digest())

    @classmethod
    def from_pfx(cls, client_id: str, token_url: str, path: str, password: str | None) -> Certificate:
        """Read a PKCS#12 file. Raises CredentialError (permanent) saying what is wrong with it."""
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise CredentialError(f"cannot read the certificate file {path} ({exc.strerror})", permanent=True) from None
        try:
            key, certificate, _ = pkcs12.load_key_and_certificates(data, password.encode() if password else None)
        except ValueError:
            raise CredentialError(
                f"{path} is not a PKCS#12 (.pfx) file, or its password is wrong (BATON_TEAMS_CERT_PASSWORD)",
                permanent=True,
            ) from None
        if not isinstance(key, RSAPrivateKey) or certificate is None:
            raise CredentialError(f"{path} must hold an RSA private key and its certificate", permanent=True)
        return cls(client_id, token_url, key, certificate.public_bytes(serialization.Encoding.DER))

    def assertion(self) -> str:
        now = int(time.time())
        claims = {
            "aud": self.token_url,
            "iss": self.client_id,
            "sub": self.client_id,
            "jti": str(uuid.uuid4()),
            "nbf": now,
            "iat": now,
            "exp": now + 600,
        }
        headers = {"x5t": self._x5t, "x5t#S256": self._x5t256}
        return jwt.encode(claims, self._key, algorithm="RS256", headers=headers)

    async def fetch(self, session: aiohttp.ClientSession, resource: str = BOT_FRAMEWORK_RESOURCE) -> AccessToken:
        form = {
            "client_id": self.client_id,
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": self.assertion(),
        }
        return await client_credentials(session, self.token_url, form, self.mode, resource)


@dataclass(frozen=True, slots=True)
class ManagedIdentity:
    """A token straight from the Azure host's managed identity endpoint (`client_id` None: system-assigned)."""

    client_id: str | None
    resource: str = BOT_FRAMEWORK_RESOURCE

    @property
    def mode(self) -> str:
        return "UserManagedIdentity" if self.client_id else "SystemManagedIdentity"

    async def fetch(self, session: aiohttp.ClientSession, resource: str | None = None) -> AccessToken:
        # Read at each fetch: the host sets these variables, and App Service rotates the header's secret.
        endpoint, header = os.environ.get("IDENTITY_ENDPOINT"), os.environ.get("IDENTITY_HEADER")
        params = {"resource": resource or self.resource}
        if self.client_id:
            params["client_id"] = self.client_id
        if endpoint and header:  # App Service, Functions, Container Apps
            url, headers = endpoint, {"X-IDENTITY-HEADER": header}
            params["api-version"] = "2019-08-01"
        else:  # a VM or an AKS node: the instance metadata service
            host = (os.environ.get("AZURE_POD_IDENTITY_AUTHORITY_HOST") or IMDS).rstrip("/")
            url, headers = f"{host}/metadata/identity/oauth2/token", {"Metadata": "true"}
            params["api-version"] = "2018-02-01"
        try:
            async with session.get(url, params=params, headers=headers, timeout=REQUEST_TIMEOUT) as response:
                status = response.status
                body = await response.json(content_type=None)
        except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
            raise CredentialError(
                f"{self.mode}: the managed identity endpoint did not answer ({type(exc).__name__})"
            ) from None
        return _token_from(status, body, self.mode)


class FederatedAssertion:
    """Client credentials whose client assertion is a federated token: a managed identity's, or a token file's."""

    def __init__(
        self,
        client_id: str,
        token_url: str,
        *,
        identity: ManagedIdentity | None = None,
        token_file: str | None = None,
    ) -> None:
        self.client_id = client_id
        self.token_url = token_url
        self.identity = identity
        self.token_file = token_file
        self.mode = "FederatedCredentials" if identity is not None else "WorkloadIdentity"

    async def fetch(self, session: aiohttp.ClientSession, resource: str = BOT_FRAMEWORK_RESOURCE) -> AccessToken:
        if self.identity is not None:
            assertion = (await self.identity.fetch(session)).token
        else:
            assert self.token_file is not None
            try:
                assertion = (await asyncio.to_thread(Path(self.token_file).read_text)).strip()
            except OSError as exc:
                raise CredentialError(f"{self.mode}: cannot read {self.token_file} ({exc.strerror})") from None
        form = {"client_id": self.client_id, "client_assertion_type": ASSERTION_TYPE, "client_assertion": assertion}
        return await client_credentials(session, self.token_url, form, self.mode, resource)


async def client_credentials(
    session: aiohttp.ClientSession,
    token_url: str,
    form: dict[str, str],
    mode: str,
    resource: str = BOT_FRAMEWORK_RESOURCE,
) -> AccessToken:
    """POST the client-credentials grant for `resource`'s scope (the Bot Connector's, or Graph's) to `token_url`."""
    data = {"grant_type": "client_credentials", "scope": f"{resource}/.default", **form}
    try:
        async with session.post(token_url, data=data, timeout=REQUEST_TIMEOUT) as response:
            status = response.status
            body = await response.json(content_type=None)
    except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
        raise CredentialError(f"{mode}: the token endpoint did not answer ({type(exc).__name__})") from None
    return _token_from(status, body, mode)


def _token_from(status: int, body: Any, mode: str) -> AccessToken:
    token = body.get("access_token") if isinstance(body, dict) else None
    if status != 200 or not isinstance(token, str):
        code = body.get("error") if isinstance(body, dict) else None
        codes = body.get("error_codes") if isinstance(body, dict) else None
        detail = " ".join(str(part) for part in (status, code if isinstance(code, str) else "", codes or "") if part)
        raise CredentialError(f"{mode}: no token ({detail[:120]})", permanent=status in (400, 401))
    try:
        lifetime = float(body.get("expires_in") or 0)  # IMDS sends a string
    except (TypeError, ValueError):
        lifetime = 0.0
    if lifetime <= 0:
        try:
            lifetime = float(body.get("expires_on") or 0) - time.time()  # App Service: epoch seconds
        except (TypeError, ValueError):
            lifetime = 0.0
    return AccessToken(token, lifetime if lifetime > 0 else 3600.0)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


__all__ = [
    "AccessToken",
    "Certificate",
    "ClientSecret",
    "Credential",
    "CredentialError",
    "FederatedAssertion",
    "ManagedIdentity",
]
