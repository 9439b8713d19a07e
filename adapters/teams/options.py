"""The Teams adapter's settings, read once from Baton's settings (and, until they live there, the environment)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from adapters.teams.credentials import (
    TOKEN_EXCHANGE_RESOURCE,
    Certificate,
    ClientSecret,
    Credential,
    FederatedAssertion,
    ManagedIdentity,
)
from dialogs.engine.errors import ConfigurationError

# Where the Bot Framework publishes the keys that sign the tokens on incoming activities.
BOT_FRAMEWORK_OPENID_URL = "https://login.botframework.com/v1/.well-known/openidconfiguration"
BOT_FRAMEWORK_ISSUER = "https://api.botframework.com"
# The token Baton sends with its own messages is for this resource.
BOT_FRAMEWORK_SCOPE = "https://api.botframework.com/.default"
DEFAULT_AUTHORITY_HOST = "https://login.microsoftonline.com"
MULTI_TENANT = "botframework.com"


# The Microsoft 365 Agents SDK's names for the bot's connection settings; Baton reads the same variables.
SDK_SETTINGS = "CONNECTIONS__SERVICE_CONNECTION__SETTINGS__"
# AUTHTYPE values, as the SDK spells them (Baton takes any case).
AUTH_TYPES = (
    "ClientSecret",
    "Certificate",
    "UserManagedIdentity",
    "SystemManagedIdentity",
    "FederatedCredentials",
    "WorkloadIdentity",
)
# Modes that ask the app registration's tenant for the token (the managed identity modes ask the Azure host).
TENANT_MODES = ("ClientSecret", "Certificate", "FederatedCredentials", "WorkloadIdentity")


@dataclass(frozen=True, slots=True)
class TeamsOptions:
    """What the adapter needs to know. `app_id` None means emulator mode (no authentication)."""

    app_id: str | None
    password: str | None = field(repr=False)
    tenant_id: str | None
    emulator: bool
    openid_url: str = BOT_FRAMEWORK_OPENID_URL
    authority: str = f"{DEFAULT_AUTHORITY_HOST}/{MULTI_TENANT}"
    tenant_rate: float = 30.0  # sends per second per tenant; Teams allows about 30-50
    auth_type: str = "ClientSecret"
    certificate_file: str | None = None
    certificate_password: str | None = field(default=None, repr=False)
    federated_client_id: str | None = None
    federated_token_file: str | None = None
    out_of_office: bool = False  # read Outlook's automatic replies through Microsoft Graph (outofoffice.py)
    graph_url: str = "https://graph.microsoft.com/v1.0"

    @property
    def authenticated(self) -> bool:
        return bool(self.app_id)

    @property
    def token_url(self) -> str:
        return self.authority.rstrip("/") + "/oauth2/v2.0/token"

    def credential(self) -> Credential | None:
        """How Baton gets its Bot Connector token; None in emulator mode. CredentialError for a bad certificate."""
        if not self.app_id:
            return None
        if self.auth_type == "Certificate":
            assert self.certificate_file is not None
            return Certificate.from_pfx(self.app_id, self.token_url, self.certificate_file, self.certificate_password)
        if self.auth_type == "UserManagedIdentity":
            return ManagedIdentity(self.app_id)
        if self.auth_type == "SystemManagedIdentity":
            return ManagedIdentity(None)
        if self.auth_type == "FederatedCredentials":
            identity = ManagedIdentity(self.federated_client_id, resource=TOKEN_EXCHANGE_RESOURCE)
            return FederatedAssertion(self.app_id, self.token_url, identity=identity)
        if self.auth_type == "WorkloadIdentity":
            return FederatedAssertion(self.app_id, self.token_url, token_file=self.federated_token_file)
        return ClientSecret(self.app_id, self.password or "", self.token_url)

    @classmethod
    def from_settings(cls, settings: Any) -> TeamsOptions:
        """Read the options; raise ConfigurationError naming the variable when one is wrong.

        Each connection setting has the Agents SDK's name
        (`CONNECTIONS__SERVICE_CONNECTION__SETTINGS__CLIENTID`, ...); the
        botbuilder-era `MICROSOFT_APP_ID`, `MICROSOFT_APP_PASSWORD` and
        `MICROSOFT_APP_TENANT_ID` still work for CLIENTID, CLIENTSECRET and
        TENANTID.
        """
        app_id = _either(settings, "CLIENTID", "MICROSOFT_APP_ID")
        password = _either(settings, "CLIENTSECRET", "MICROSOFT_APP_PASSWORD")
        tenant_id = _either(settings, "TENANTID", "MICROSOFT_APP_TENANT_ID")
        emulator = bool(getattr(settings, "BATON_TEAMS_EMULATOR", False))
        if not app_id and not emulator:
            raise ConfigurationError(
                f"Teams needs the bot's app id ({SDK_SETTINGS}CLIENTID, or MICROSOFT_APP_ID) and its credentials, "
                "or BATON_TEAMS_EMULATOR=1 for the Bot Framework Emulator on this machine."
            )
        raw_type = _setting(settings, SDK_SETTINGS + "AUTHTYPE") or "ClientSecret"
        auth_type = next((name for name in AUTH_TYPES if name.lower() == raw_type.lower()), None)
        if auth_type is None:
            raise ConfigurationError(
                f"{SDK_SETTINGS}AUTHTYPE={raw_type!r} is not a way Baton can authenticate: use one of "
                + ", ".join(AUTH_TYPES)
            )
        certificate_file = _setting(settings, SDK_SETTINGS + "CERTPFXFILE")
        federated_client_id = _setting(settings, SDK_SETTINGS + "FEDERATEDCLIENTID")
        federated_token_file = _setting(settings, SDK_SETTINGS + "FEDERATEDTOKENFILE")
        authority = _setting(settings, SDK_SETTINGS + "AUTHORITY") or _setting(settings, "BATON_TEAMS_AUTHORITY")
        if app_id:
            needs = {
                "ClientSecret": ("CLIENTSECRET (or MICROSOFT_APP_PASSWORD), the app's client secret", password),
                "Certificate": ("CERTPFXFILE, the path of the certificate's .pfx file", certificate_file),
                "FederatedCredentials": ("FEDERATEDCLIENTID, the managed identity's client id", federated_client_id),
                "WorkloadIdentity": ("FEDERATEDTOKENFILE, the projected service account token", federated_token_file),
            }
            if auth_type in needs and not needs[auth_type][1]:
                raise ConfigurationError(f"AUTHTYPE {auth_type} needs {SDK_SETTINGS}{needs[auth_type][0]}")
            if auth_type in TENANT_MODES and not tenant_id and not authority:
                raise ConfigurationError(
                    f"{SDK_SETTINGS}TENANTID (or MICROSOFT_APP_TENANT_ID) is missing: set it to the directory "
                    "(tenant) id of the bot's app registration, which is single-tenant for every bot created since "
                    f"July 2025. For a multi-tenant bot registered before then, set it to {MULTI_TENANT}."
                )
        openid_url = _setting(settings, "BATON_TEAMS_OPENID_URL") or BOT_FRAMEWORK_OPENID_URL
        authority = authority or f"{DEFAULT_AUTHORITY_HOST}/{tenant_id or MULTI_TENANT}"
        for name, url in (("BATON_TEAMS_OPENID_URL", openid_url), ("the authority", authority)):
            if not url.startswith(("https://", "http://")):
                raise ConfigurationError(f"{name} must be an http(s) URL")
        raw_rate = _setting(settings, "BATON_TEAMS_TENANT_RATE") or "30"
        try:
            tenant_rate = float(raw_rate)
        except ValueError:
            raise ConfigurationError(
                "BATON_TEAMS_TENANT_RATE must be a number of messages per second, e.g. 30"
            ) from None
        if not 0.1 <= tenant_rate <= 50:
            raise ConfigurationError(
                "BATON_TEAMS_TENANT_RATE must be between 0.1 and 50 messages per second (Teams allows about 30-50)"
            )
        return cls(
            app_id,
            password,
            tenant_id,
            emulator and not app_id,
            openid_url,
            authority,
            tenant_rate,
            auth_type,
            certificate_file,
            _setting(settings, "BATON_TEAMS_CERT_PASSWORD"),
            federated_client_id,
            federated_token_file,
            str(_setting(settings, "BATON_TEAMS_OUT_OF_OFFICE") or "").casefold() in ("1", "true", "yes", "on")
            and bool(app_id),
            _setting(settings, "BATON_GRAPH_URL") or "https://graph.microsoft.com/v1.0",
        )


def _either(settings: Any, sdk_key: str, alias: str) -> str | None:
    """A connection setting under the SDK's name or its botbuilder-era alias; both set must agree."""
    new, old = _setting(settings, SDK_SETTINGS + sdk_key), _setting(settings, alias)
    if new and old and new != old:
        raise ConfigurationError(
            f"{SDK_SETTINGS}{sdk_key} and {alias} are both set and differ: {alias} is the old name of the same "
            "setting, so unset one of them"
        )
    return new or old


def _setting(settings: Any, name: str) -> str | None:
    """A setting from `Settings` when it has the field, else from the environment."""
    value = getattr(settings, name, None)
    if value is None:
        value = os.environ.get(name)
    if hasattr(value, "get_secret_value"):
        value = value.get_secret_value()
    return str(value).strip() or None if value is not None else None
