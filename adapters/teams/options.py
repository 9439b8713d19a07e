"""The Teams adapter's settings, read once from Baton's settings (and, until they live there, the environment)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from dialogs.engine.errors import ConfigurationError

# Where the Bot Framework publishes the keys that sign the tokens on incoming activities.
BOT_FRAMEWORK_OPENID_URL = "https://login.botframework.com/v1/.well-known/openidconfiguration"
BOT_FRAMEWORK_ISSUER = "https://api.botframework.com"
# The token Baton sends with its own messages is for this resource.
BOT_FRAMEWORK_SCOPE = "https://api.botframework.com/.default"
DEFAULT_AUTHORITY_HOST = "https://login.microsoftonline.com"
MULTI_TENANT = "botframework.com"


@dataclass(frozen=True, slots=True)
class TeamsOptions:
    """What the adapter needs to know. `app_id` None means emulator mode (no authentication)."""

    app_id: str | None
    password: str | None
    tenant_id: str | None
    emulator: bool
    openid_url: str = BOT_FRAMEWORK_OPENID_URL
    authority: str = f"{DEFAULT_AUTHORITY_HOST}/{MULTI_TENANT}"
    tenant_rate: float = 30.0  # sends per second per tenant; Teams allows about 30-50

    @property
    def authenticated(self) -> bool:
        return bool(self.app_id)

    @property
    def token_url(self) -> str:
        return self.authority.rstrip("/") + "/oauth2/v2.0/token"

    @classmethod
    def from_settings(cls, settings: Any) -> TeamsOptions:
        """Read the options; raise ConfigurationError naming the variable when one is wrong."""
        app_id = (getattr(settings, "MICROSOFT_APP_ID", None) or "").strip() or None
        secret = getattr(settings, "MICROSOFT_APP_PASSWORD", None)
        password = secret.get_secret_value() if hasattr(secret, "get_secret_value") else secret
        tenant_id = (getattr(settings, "MICROSOFT_APP_TENANT_ID", None) or "").strip() or None
        emulator = bool(getattr(settings, "BATON_TEAMS_EMULATOR", False))
        if not app_id and not emulator:
            raise ConfigurationError(
                "Teams needs MICROSOFT_APP_ID and MICROSOFT_APP_PASSWORD, or BATON_TEAMS_EMULATOR=1 for the "
                "Bot Framework Emulator on this machine."
            )
        if app_id and not password:
            raise ConfigurationError(
                "MICROSOFT_APP_PASSWORD is missing: MICROSOFT_APP_ID is set, so set the app's client secret too"
            )
        openid_url = _setting(settings, "BATON_TEAMS_OPENID_URL") or BOT_FRAMEWORK_OPENID_URL
        authority = (
            _setting(settings, "BATON_TEAMS_AUTHORITY") or f"{DEFAULT_AUTHORITY_HOST}/{tenant_id or MULTI_TENANT}"
        )
        for name, url in (("BATON_TEAMS_OPENID_URL", openid_url), ("BATON_TEAMS_AUTHORITY", authority)):
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
        return cls(app_id, password or None, tenant_id, emulator and not app_id, openid_url, authority, tenant_rate)


def _setting(settings: Any, name: str) -> str | None:
    """A setting from `Settings` when it has the field, else from the environment."""
    value = getattr(settings, name, None)
    if value is None:
        value = os.environ.get(name)
    return str(value).strip() or None if value is not None else None
