"""Each way Baton can prove who it is to the Bot Connector, against the fake token endpoints on loopback.

The fake (tests/fakes/teams_connector.py) enforces what Entra does for the
app a test registers: the app's own tenant, a `/.default` scope, the right
secret, a client assertion signed by the registered certificate for that
endpoint, or a federated token from a managed identity the app trusts. A
mode passes when a message reaches the fake connector carrying the token
the fake issued, with settings read the way `baton serve` reads them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from adapters.teams import TeamsAdapter
from adapters.teams.connector import Connector
from adapters.teams.options import SDK_SETTINGS, TeamsOptions
from bot.config import load_settings
from dialogs.engine.delivery import DeliveryError
from dialogs.engine.errors import ConfigurationError
from tests.fakes.teams_connector import App, FakeConnector

APP_ID = "11111111-2222-3333-4444-555555555555"
TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
IDENTITY = "99999999-8888-7777-6666-555555555555"  # a user-assigned managed identity's client id


@pytest.fixture
async def fake() -> AsyncIterator[FakeConnector]:
    connector = await FakeConnector().start()
    yield connector
    await connector.stop()


def certificate(tmp_path: Path, password: bytes | None = b"pfx-password") -> tuple[Path, bytes]:
    """A self-signed certificate in a .pfx file (encrypted when `password`), and its DER bytes."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "baton-bot")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    encryption = serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    path = tmp_path / "bot.pfx"
    path.write_bytes(pkcs12.serialize_key_and_certificates(b"baton", key, cert, None, encryption))
    return path, cert.public_bytes(serialization.Encoding.DER)


def options(fake: FakeConnector, **env: Any) -> TeamsOptions:
    """The adapter's options from settings as `baton serve` would load them (SDK names unless given as aliases)."""
    settings = load_settings(
        env_file=None, **{(k if k.startswith(("MICROSOFT", "BATON")) else SDK_SETTINGS + k): v for k, v in env.items()}
    )
    return TeamsOptions.from_settings(settings)


REFERENCE: dict[str, Any] = {
    "channelId": "msteams",
    "conversation": {"id": "a:chat", "tenantId": TENANT, "conversationType": "personal"},
    "user": {"id": "29:tom"},
    "bot": {"id": f"28:{APP_ID}"},
}


async def send_with(fake: FakeConnector, teams: TeamsOptions) -> str | None:
    """Send one message through Baton's connector with `teams`' credential; the Authorization the fake saw."""
    connector = Connector(teams, teams.credential())
    try:
        await connector.send(REFERENCE | {"serviceUrl": fake.url}, {"type": "message", "text": "hi"})
        await connector.send(REFERENCE | {"serviceUrl": fake.url}, {"type": "message", "text": "again"})
    finally:
        await connector.close()
    first, second = fake.sent[-2:]
    assert first.authorization == second.authorization  # one token, cached
    return first.authorization


async def test_client_secret_single_tenant(fake: FakeConnector) -> None:
    fake.register(App(APP_ID, TENANT, secret="s3cret"))
    teams = options(fake, CLIENTID=APP_ID, CLIENTSECRET="s3cret", TENANTID=TENANT, AUTHORITY=f"{fake.url}{TENANT}")
    assert teams.auth_type == "ClientSecret"
    assert await send_with(fake, teams) == "Bearer fake-bot-token"
    (request,) = fake.token_requests
    assert request["client_id"] == APP_ID and request["scope"] == "https://api.botframework.com/.default"


async def test_the_botbuilder_era_names_still_work_and_the_default_authority_is_the_apps_tenant(
    fake: FakeConnector,
) -> None:
    teams = options(fake, MICROSOFT_APP_ID=APP_ID, MICROSOFT_APP_PASSWORD="s3cret", MICROSOFT_APP_TENANT_ID=TENANT)
    assert (teams.app_id, teams.password, teams.tenant_id) == (APP_ID, "s3cret", TENANT)
    assert teams.token_url == f"https://login.microsoftonline.com/{TENANT}/oauth2/v2.0/token"


async def test_a_wrong_secret_or_tenant_gets_no_token_and_says_why(fake: FakeConnector) -> None:
    fake.register(App(APP_ID, TENANT, secret="s3cret"))
    wrong_secret = options(fake, CLIENTID=APP_ID, CLIENTSECRET="nope", AUTHORITY=f"{fake.url}{TENANT}")
    with pytest.raises(DeliveryError, match="invalid_client") as raised:
        await send_with(fake, wrong_secret)
    assert "nope" not in str(raised.value)
    # A single-tenant app asking the old multi-tenant authority, as a botbuilder-era configuration would.
    multi = options(fake, CLIENTID=APP_ID, CLIENTSECRET="s3cret", AUTHORITY=f"{fake.url}botframework.com")
    with pytest.raises(DeliveryError, match="700016"):
        await send_with(fake, multi)
    assert fake.sent == []


async def test_certificate_with_a_password_protected_pfx(fake: FakeConnector, tmp_path: Path) -> None:
    path, der = certificate(tmp_path)
    fake.register(App(APP_ID, TENANT, certificate=der))
    teams = options(
        fake,
        CLIENTID=APP_ID,
        AUTHTYPE="certificate",  # any case, unlike the SDK
        CERTPFXFILE=str(path),
        BATON_TEAMS_CERT_PASSWORD="pfx-password",
        TENANTID=TENANT,
        AUTHORITY=f"{fake.url}{TENANT}",
    )
    assert teams.auth_type == "Certificate"
    assert await send_with(fake, teams) == "Bearer fake-bot-token"
    (request,) = fake.token_requests
    assert "client_secret" not in request
    assert request["client_assertion_type"] == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


async def test_a_certificate_the_app_does_not_have_is_refused(fake: FakeConnector, tmp_path: Path) -> None:
    path, _ = certificate(tmp_path, password=None)
    (tmp_path / "other").mkdir()
    _, other = certificate(tmp_path / "other", password=None)
    fake.register(App(APP_ID, TENANT, certificate=other))
    teams = options(
        fake, CLIENTID=APP_ID, AUTHTYPE="Certificate", CERTPFXFILE=str(path), AUTHORITY=f"{fake.url}{TENANT}"
    )
    with pytest.raises(DeliveryError, match="invalid_client"):
        await send_with(fake, teams)


async def test_a_wrong_pfx_password_stops_baton_at_start(fake: FakeConnector, tmp_path: Path) -> None:
    path, _ = certificate(tmp_path)
    teams = options(
        fake,
        CLIENTID=APP_ID,
        AUTHTYPE="Certificate",
        CERTPFXFILE=str(path),
        BATON_TEAMS_CERT_PASSWORD="wrong",
        TENANTID=TENANT,
    )
    with pytest.raises(ConfigurationError, match="BATON_TEAMS_CERT_PASSWORD"):
        TeamsAdapter.create(None, teams)  # type: ignore[arg-type]  # fails before the host is used


async def test_user_assigned_managed_identity_on_app_service(
    fake: FakeConnector, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake.identities.add(APP_ID)  # the bot's app id is the identity's client id
    monkeypatch.setenv("IDENTITY_ENDPOINT", f"{fake.url}msi/token")
    monkeypatch.setenv("IDENTITY_HEADER", fake.identity_header)
    teams = options(fake, CLIENTID=APP_ID, AUTHTYPE="UserManagedIdentity")
    assert await send_with(fake, teams) == f"Bearer fake-mi-token-for-{APP_ID}"
    (request,) = fake.identity_requests
    assert request == {"resource": "https://api.botframework.com", "client_id": APP_ID, "api-version": "2019-08-01"}
    monkeypatch.setenv("IDENTITY_HEADER", "guessed")
    with pytest.raises(DeliveryError, match="UserManagedIdentity"):
        await send_with(fake, options(fake, CLIENTID=APP_ID, AUTHTYPE="UserManagedIdentity"))


async def test_system_assigned_managed_identity_from_the_instance_metadata_service(
    fake: FakeConnector, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake.identities.add("system")
    monkeypatch.delenv("IDENTITY_ENDPOINT", raising=False)
    monkeypatch.setenv("AZURE_POD_IDENTITY_AUTHORITY_HOST", fake.url)
    teams = options(fake, CLIENTID=APP_ID, AUTHTYPE="SystemManagedIdentity")
    assert await send_with(fake, teams) == "Bearer fake-mi-token-for-system"
    (request,) = fake.identity_requests
    assert "client_id" not in request and request["api-version"] == "2018-02-01"


async def test_federated_credentials_from_a_managed_identity(
    fake: FakeConnector, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake.identities.add(IDENTITY)
    fake.register(App(APP_ID, TENANT, trusts=(IDENTITY,)))  # no secret, no certificate
    monkeypatch.setenv("IDENTITY_ENDPOINT", f"{fake.url}msi/token")
    monkeypatch.setenv("IDENTITY_HEADER", fake.identity_header)
    teams = options(
        fake,
        CLIENTID=APP_ID,
        AUTHTYPE="FederatedCredentials",
        FEDERATEDCLIENTID=IDENTITY,
        TENANTID=TENANT,
        AUTHORITY=f"{fake.url}{TENANT}",
    )
    assert await send_with(fake, teams) == "Bearer fake-bot-token"
    (identity_request,) = fake.identity_requests
    assert identity_request["resource"] == "api://AzureADTokenExchange" and identity_request["client_id"] == IDENTITY
    (request,) = fake.token_requests
    assert request["client_id"] == APP_ID and "client_secret" not in request
    # An identity the app does not trust gets nothing.
    fake.identities.add("88888888-0000-0000-0000-000000000000")
    stranger = options(
        fake,
        CLIENTID=APP_ID,
        AUTHTYPE="FederatedCredentials",
        FEDERATEDCLIENTID="88888888-0000-0000-0000-000000000000",
        AUTHORITY=f"{fake.url}{TENANT}",
    )
    with pytest.raises(DeliveryError, match="invalid_client"):
        await send_with(fake, stranger)


async def test_workload_identity_reads_the_projected_token_file(fake: FakeConnector, tmp_path: Path) -> None:
    import aiohttp

    fake.identities.add(IDENTITY)
    fake.register(App(APP_ID, TENANT, trusts=(IDENTITY,)))
    async with (
        aiohttp.ClientSession() as http,
        http.get(
            f"{fake.url}metadata/identity/oauth2/token",
            params={"resource": "api://AzureADTokenExchange", "client_id": IDENTITY},
            headers={"Metadata": "true"},
        ) as response,
    ):
        projected = (await response.json())["access_token"]  # what the kubelet would write into the pod
    token_file = tmp_path / "azure-identity-token"
    token_file.write_text(projected + "\n")
    teams = options(
        fake,
        CLIENTID=APP_ID,
        AUTHTYPE="WorkloadIdentity",
        FEDERATEDTOKENFILE=str(token_file),
        AUTHORITY=f"{fake.url}{TENANT}",
    )
    assert await send_with(fake, teams) == "Bearer fake-bot-token"


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"CLIENTID": APP_ID, "CLIENTSECRET": "s"}, "TENANTID"),  # single-tenant by default: the tenant is needed
        ({"CLIENTID": APP_ID, "AUTHTYPE": "Certificate", "TENANTID": TENANT}, "CERTPFXFILE"),
        ({"CLIENTID": APP_ID, "AUTHTYPE": "FederatedCredentials", "TENANTID": TENANT}, "FEDERATEDCLIENTID"),
        ({"CLIENTID": APP_ID, "AUTHTYPE": "WorkloadIdentity", "TENANTID": TENANT}, "FEDERATEDTOKENFILE"),
        ({"CLIENTID": APP_ID, "AUTHTYPE": "Password", "TENANTID": TENANT}, "ClientSecret, Certificate"),
        ({"CLIENTID": APP_ID, "MICROSOFT_APP_ID": "other", "CLIENTSECRET": "s", "TENANTID": TENANT}, "old name"),
    ],
)
def test_an_incomplete_connection_stops_baton_with_what_to_set(
    fake: FakeConnector, env: dict[str, str], says: str
) -> None:
    with pytest.raises(ConfigurationError, match=says):
        options(fake, **env)


def test_a_multi_tenant_bot_from_before_july_2025_can_still_say_so() -> None:
    settings = load_settings(
        env_file=None, MICROSOFT_APP_ID=APP_ID, MICROSOFT_APP_PASSWORD="s", MICROSOFT_APP_TENANT_ID="botframework.com"
    )
    assert (
        TeamsOptions.from_settings(settings).token_url
        == "https://login.microsoftonline.com/botframework.com/oauth2/v2.0/token"
    )
