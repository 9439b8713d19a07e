"""Settings from the environment (and an optional `.env`), validated before anything starts.

A wrong or missing setting stops the start with a message that names the
variable and says what to do; nothing secret is ever printed.
"""

from __future__ import annotations

import ipaddress
import os
import stat
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url

from dialogs.engine.contract import Dialog
from dialogs.engine.errors import ConfigurationError
from dialogs.engine.sealing import SECRET_BYTES, Sealer
from storage.db import normalise_url

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./baton.db"


class Settings(BaseSettings):
    """Everything Baton reads from its environment. Field names are the variable names."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=True)

    DATABASE_URL: str = DEFAULT_DATABASE_URL
    BATON_HOST: str = "127.0.0.1"
    BATON_PORT: int = Field(3978, ge=1, le=65535)
    BATON_LOG_LEVEL: str = "INFO"
    # "text" (one readable line per record) or "json" (one JSON object per line, for a log pipeline).
    BATON_LOG_FORMAT: Literal["text", "json"] = "text"
    # /metrics (Prometheus) answers loopback requests that came through no proxy; with this set, any
    # request carrying `Authorization: Bearer <token>` instead.
    BATON_METRICS_TOKEN: SecretStr | None = None
    # The local web chat has no sign-in: serving it beyond this machine must be asked for.
    BATON_WEB_PUBLIC: bool = False
    # Serve the local web chat even when a platform is configured (it lets anyone act as anyone).
    BATON_WEB_CHAT: bool = False
    BATON_DEMO: bool = True
    # With the demo organisation, eight weeks of its history (check-ins, goals, kudos, a closed 360).
    BATON_DEMO_HISTORY: bool = True
    # The rhythm: how often to look for due check-ins, how late a missed one may still go out,
    # and how many unsolicited messages a person gets per rolling week at most.
    BATON_TICK_SECONDS: float = Field(60.0, ge=0.05, le=3600)
    BATON_GRACE_HOURS: float = Field(12.0, ge=0, le=168)
    BATON_WEEKLY_BUDGET: int = Field(6, ge=1, le=50)
    # Days a delivered (or given-up) message is kept before it is deleted; at least 8, since the
    # weekly budget counts the last seven days.
    BATON_RETENTION_DAYS: int = Field(30, ge=8, le=3650)
    # Days what people wrote is kept (0: for ever): check-ins, feedback and kudos, goals done or dropped.
    BATON_KEEP_CHECKINS_DAYS: int = Field(730, ge=0, le=36500)
    BATON_KEEP_FEEDBACK_DAYS: int = Field(730, ge=0, le=36500)
    BATON_KEEP_GOALS_DAYS: int = Field(1095, ge=0, le=36500)
    # Words that make a timed calendar event an away day (all-day and out-of-office events always are).
    BATON_AWAY_WORDS: str = "ooo, out of office, vacation, holiday, annual leave, pto, sick"
    # Read calendar addresses on loopback, private and link-local networks too (an intranet calendar server).
    # Off: anyone who may connect a calendar could otherwise make Baton fetch internal services.
    BATON_CALENDAR_PRIVATE_HOSTS: bool = False
    # Whom people ask about Baton and their data (an email address or a URL), named on /privacy and /terms.
    BATON_CONTACT: str | None = None
    # The address people reach this Baton at, for links sent in chat (dashboard sign-in).
    # Default: http://BATON_HOST:BATON_PORT
    BATON_PUBLIC_URL: str | None = None
    # An organisation's own tool catalogue (YAML), adding to or overriding the shipped one.
    BATON_CATALOGUE: str | None = None
    # Testing aid: read "now" from this file (an ISO timestamp). Never in production.
    BATON_CLOCK_FILE: str | None = None
    # The secret anonymous answers are sealed under (dialogs/engine/sealing.py); never stored in the database.
    # Required with PostgreSQL (every replica needs the same one); with a SQLite file it defaults to a key
    # file beside the database, created once with mode 0600.
    BATON_SECRET_KEY: SecretStr | None = None
    BATON_SECRET_FILE: str | None = None

    SLACK_BOT_TOKEN: SecretStr | None = None
    SLACK_SIGNING_SECRET: SecretStr | None = None
    SLACK_APP_TOKEN: SecretStr | None = None
    SLACK_CLIENT_ID: str | None = None
    SLACK_CLIENT_SECRET: SecretStr | None = None
    SLACK_API_URL: str = "https://slack.com/api/"
    # Add Slack users Baton has never seen when they write to it (off: only people already imported).
    BATON_SLACK_AUTO_ADD: bool = True
    # A Slack status with one of these emoji (or text with BATON_AWAY_WORDS or "vacationing") counts as away.
    BATON_SLACK_AWAY_EMOJI: str = (
        ":palm_tree:, :desert_island:, :beach_with_umbrella:, :airplane:, :face_with_thermometer:, :thermometer:"
    )
    # Messages per second per workspace (Slack's chat.postMessage tier, shared by every channel and by every
    # replica: they take their send slots from the database).
    BATON_SLACK_WORKSPACE_RATE: float = Field(10.0, gt=0, le=100_000)
    # How long a claimed outbox row belongs to the process sending it; after a crash, another takes it then.
    # At least 30 s: a message may wait up to half its lease for its slot under Slack's or Teams' rate before
    # it is posted (longer waits go back to the outbox), and a lease that ran out under a live sender would
    # let a second one post it too.
    BATON_OUTBOX_LEASE_SECONDS: float = Field(120.0, ge=30, le=3600)

    # Teams: the bot's connection, in the Microsoft 365 Agents SDK's variable names (adapters/teams/options.py
    # reads and checks them). MICROSOFT_APP_ID / _PASSWORD / _TENANT_ID are the botbuilder-era aliases of
    # CLIENTID / CLIENTSECRET / TENANTID.
    CONNECTIONS__SERVICE_CONNECTION__SETTINGS__CLIENTID: str | None = None
    CONNECTIONS__SERVICE_CONNECTION__SETTINGS__CLIENTSECRET: SecretStr | None = None
    CONNECTIONS__SERVICE_CONNECTION__SETTINGS__TENANTID: str | None = None
    CONNECTIONS__SERVICE_CONNECTION__SETTINGS__AUTHTYPE: str | None = None
    CONNECTIONS__SERVICE_CONNECTION__SETTINGS__AUTHORITY: str | None = None
    CONNECTIONS__SERVICE_CONNECTION__SETTINGS__CERTPFXFILE: str | None = None
    CONNECTIONS__SERVICE_CONNECTION__SETTINGS__FEDERATEDCLIENTID: str | None = None
    CONNECTIONS__SERVICE_CONNECTION__SETTINGS__FEDERATEDTOKENFILE: str | None = None
    BATON_TEAMS_CERT_PASSWORD: SecretStr | None = None  # the .pfx file's password, if it has one
    MICROSOFT_APP_ID: str | None = None
    MICROSOFT_APP_PASSWORD: SecretStr | None = None
    MICROSOFT_APP_TENANT_ID: str | None = None
    BATON_TEAMS_EMULATOR: bool = False
    # Where Bot Framework signing keys are published, and where bot tokens come from (overridable for tests).
    BATON_TEAMS_OPENID_URL: str = "https://login.botframework.com/v1/.well-known/openidconfiguration"
    BATON_TEAMS_AUTHORITY: str | None = None  # default: login.microsoftonline.com/{tenant or botframework.com}
    BATON_TEAMS_TENANT_RATE: float = Field(30.0, ge=0.1, le=50)  # sends per second per tenant
    # Optional: read Outlook's automatic replies through Microsoft Graph (needs MailboxSettings.Read).
    BATON_TEAMS_OUT_OF_OFFICE: bool = False
    BATON_GRAPH_URL: str = "https://graph.microsoft.com/v1.0"  # tests point it at a fake on loopback

    @field_validator("DATABASE_URL")
    @classmethod
    def _database_url(cls, value: str) -> str:
        return normalise_url(value)

    @field_validator("BATON_CATALOGUE")
    @classmethod
    def _catalogue(cls, value: str | None) -> str | None:
        if value:
            from dialogs.tools import catalogue

            catalogue(value)  # validated at start: a broken file names the tool and field
        return value

    @field_validator("BATON_SECRET_KEY")
    @classmethod
    def _secret_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value().encode()) < SECRET_BYTES:
            raise ValueError(f"must be at least {SECRET_BYTES} characters. {MAKE_SECRET}")
        return value

    @field_validator("BATON_LOG_LEVEL")
    @classmethod
    def _log_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR")
        return level

    @model_validator(mode="after")
    def _combinations(self) -> Settings:
        slack_any = any((self.SLACK_BOT_TOKEN, self.SLACK_SIGNING_SECRET, self.SLACK_APP_TOKEN, self.SLACK_CLIENT_ID))
        if slack_any and not self.SLACK_CLIENT_ID:
            if not self.SLACK_BOT_TOKEN:
                raise ValueError(
                    "SLACK_BOT_TOKEN is missing: Slack settings are present, so set the bot token (xoxb-…) too"
                )
            if not self.SLACK_BOT_TOKEN.get_secret_value().startswith("xoxb-"):
                raise ValueError("SLACK_BOT_TOKEN must be a bot token starting with xoxb-")
            if not self.SLACK_APP_TOKEN and not self.SLACK_SIGNING_SECRET:
                raise ValueError(
                    "SLACK_SIGNING_SECRET is missing: set it (Basic Information → Signing Secret), "
                    "or set SLACK_APP_TOKEN (xapp-…) to use Socket Mode"
                )
        if self.SLACK_APP_TOKEN and not self.SLACK_APP_TOKEN.get_secret_value().startswith("xapp-"):
            raise ValueError("SLACK_APP_TOKEN must be an app-level token starting with xapp- (for Socket Mode)")
        if self.SLACK_CLIENT_ID and not (self.SLACK_CLIENT_SECRET and self.SLACK_SIGNING_SECRET):
            raise ValueError(
                "SLACK_CLIENT_ID is set: OAuth installs also need SLACK_CLIENT_SECRET and SLACK_SIGNING_SECRET"
            )
        auth_type = (self.CONNECTIONS__SERVICE_CONNECTION__SETTINGS__AUTHTYPE or "ClientSecret").lower()
        secret = self.CONNECTIONS__SERVICE_CONNECTION__SETTINGS__CLIENTSECRET or self.MICROSOFT_APP_PASSWORD
        if self.teams_app_id and auth_type == "clientsecret" and not secret:
            raise ValueError(
                "MICROSOFT_APP_PASSWORD is missing: the Teams app id is set, so set the app's client secret too "
                "(MICROSOFT_APP_PASSWORD or CONNECTIONS__SERVICE_CONNECTION__SETTINGS__CLIENTSECRET), or choose "
                "another way to authenticate with CONNECTIONS__SERVICE_CONNECTION__SETTINGS__AUTHTYPE (README, Teams)"
            )
        if self.BATON_TEAMS_EMULATOR and self.teams_app_id:
            raise ValueError(
                "BATON_TEAMS_EMULATOR=1 and a Teams app id (MICROSOFT_APP_ID) cannot both be set: unset one of them"
            )
        return self

    def secret_file(self) -> Path | None:
        """Where the secret is kept when BATON_SECRET_KEY is not set: beside a SQLite file database."""
        if self.BATON_SECRET_FILE:
            return Path(self.BATON_SECRET_FILE)
        url = make_url(self.DATABASE_URL)
        if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
            return Path(url.database + ".key")
        return None

    def sealer(self) -> Sealer:
        """The sealer for BATON_SECRET_KEY, or for the key file (created on first use), or an error saying what to do."""
        if self.BATON_SECRET_KEY is not None:
            return Sealer(self.BATON_SECRET_KEY.get_secret_value().encode())
        path = self.secret_file()
        if path is None:
            if make_url(self.DATABASE_URL).get_backend_name() == "sqlite":
                return Sealer.ephemeral()  # an in-memory database: its answers die with the process too
            raise ConfigurationError(
                "BATON_SECRET_KEY is missing: with PostgreSQL every replica needs the same secret to seal anonymous "
                f"answers, and it must not live in the database. {MAKE_SECRET}, keep it with your other secrets, "
                "and set it on every replica (or point BATON_SECRET_FILE at a file holding it)."
            )
        return Sealer(read_or_create_secret(path))

    @property
    def public_url(self) -> str:
        return (self.BATON_PUBLIC_URL or f"http://{self.BATON_HOST}:{self.BATON_PORT}").rstrip("/")

    def dialogs(self) -> list[Dialog]:
        """A fresh instance of every dialog, as these settings configure them (dialogs.all_dialogs)."""
        from dialogs import all_dialogs

        return all_dialogs(
            catalogue_file=self.BATON_CATALOGUE,
            public_url=self.public_url,
            private_calendars=self.BATON_CALENDAR_PRIVATE_HOSTS,
        )

    @property
    def slack_enabled(self) -> bool:
        return bool(self.SLACK_BOT_TOKEN or self.SLACK_CLIENT_ID)

    @property
    def teams_app_id(self) -> str | None:
        """The Teams bot's app id, under the Agents SDK's name or its botbuilder-era alias."""
        return self.CONNECTIONS__SERVICE_CONNECTION__SETTINGS__CLIENTID or self.MICROSOFT_APP_ID

    @property
    def teams_enabled(self) -> bool:
        return bool(self.teams_app_id or self.BATON_TEAMS_EMULATOR)

    @property
    def local_mode(self) -> bool:
        """Neither Slack nor Teams: Baton runs on its local web chat with demo data."""
        return not (self.slack_enabled or self.teams_enabled)

    @property
    def web_chat_enabled(self) -> bool:
        return self.local_mode or self.BATON_WEB_CHAT

    def check_bind(self, host: str) -> None:
        """Refuse to serve the sign-in-less pieces beyond loopback unless asked to."""
        if is_loopback(host):
            return
        if self.web_chat_enabled and not self.BATON_WEB_PUBLIC:
            raise ConfigurationError(
                f"Refusing to bind the local web chat to {host}: it has no sign-in, so anyone who reaches it can act "
                "as anyone. Bind to 127.0.0.1, or pass --public (BATON_WEB_PUBLIC=1) if you really mean it."
            )
        if self.BATON_TEAMS_EMULATOR:
            raise ConfigurationError(
                f"Refusing to bind to {host} with BATON_TEAMS_EMULATOR=1: emulator mode accepts unauthenticated "
                "requests. Bind to 127.0.0.1, or set the bot's app id and credentials (README, Teams)."
            )


MAKE_SECRET = "Make one with: python3 -c 'import secrets; print(secrets.token_urlsafe(48))'"


def read_or_create_secret(path: Path) -> bytes:
    """The secret in `path`, made (random, mode 0600) if the file does not exist yet."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    except OSError as exc:
        raise ConfigurationError(f"Baton could not create its secret file {path} ({exc.strerror}).") from None
    else:
        with os.fdopen(fd, "wb") as out:
            out.write(os.urandom(SECRET_BYTES).hex().encode() + b"\n")
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigurationError(
            f"{path} holds Baton's secret but others can read it (mode {stat.filemode(mode)}): run chmod 600 {path}."
        )
    secret = path.read_bytes().strip()
    if len(secret) < SECRET_BYTES:
        raise ConfigurationError(f"{path} is too short to be Baton's secret ({SECRET_BYTES} characters at least).")
    return secret


def is_loopback(host: str) -> bool:
    if host in ("localhost", ""):
        return host == "localhost"
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def load_settings(env_file: Path | None = Path(".env"), **overrides: object) -> Settings:
    """Read and validate the settings, or raise ConfigurationError naming each bad variable."""
    try:
        return Settings(_env_file=env_file, **overrides)  # type: ignore[call-arg]
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            name = ".".join(str(part) for part in error["loc"]) or "configuration"
            message = error["msg"].removeprefix("Value error, ")
            lines.append(f"  {name}: {message}" if error["loc"] else f"  {message}")
        raise ConfigurationError("Baton's configuration is not valid:\n" + "\n".join(lines)) from None
