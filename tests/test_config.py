"""Settings: defaults, database URLs, impossible combinations, the bind check, and the real `baton serve`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bot.config import Settings, load_settings
from dialogs.engine.errors import ConfigurationError
from tests.conftest import free_port

FAKE_SECRET = "FAKE-S3CRET-d0-not-print-7c1e"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No Baton, Slack, Teams or database setting from this machine, and no `.env` nearby."""
    for name in list(os.environ):
        if (
            name in Settings.model_fields
            or name.startswith(("SLACK_", "MICROSOFT_", "BATON_"))
            or name == "DATABASE_URL"
        ):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def refusal(**overrides: object) -> str:
    """The ConfigurationError text these settings produce (fails the test if they are accepted)."""
    with pytest.raises(ConfigurationError) as caught:
        load_settings(env_file=None, **overrides)
    return str(caught.value)


def baton_executable() -> str:
    """The `baton` installed next to the interpreter running the tests (so it is this checkout's)."""
    sibling = Path(sys.executable).parent / "baton"
    return str(sibling) if sibling.exists() else (shutil.which("baton") or "baton")


def baton(tmp_path: Path, *args: str, extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    # os.environ is already cleaned by the autouse fixture.
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path}/x.db", **(extra_env or {})}
    return subprocess.run(
        [baton_executable(), *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=20
    )


# -- defaults and database URLs ----------------------------------------------------------------


def test_defaults_are_local_mode_on_loopback_with_sqlite() -> None:
    settings = load_settings(env_file=None)
    assert settings.local_mode and settings.web_chat_enabled
    assert not settings.slack_enabled and not settings.teams_enabled
    assert settings.DATABASE_URL == "sqlite+aiosqlite:///./baton.db"
    assert (settings.BATON_HOST, settings.BATON_PORT, settings.BATON_WEB_PUBLIC) == ("127.0.0.1", 3978, False)


def test_a_plain_sqlite_url_is_given_the_async_driver(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "sqlite:///data/baton.db")
    assert load_settings(env_file=None).DATABASE_URL == "sqlite+aiosqlite:///data/baton.db"


@pytest.mark.parametrize(
    "url",
    ["postgresql://u@h/db", "postgres://u@h/db", "postgresql+asyncpg://u@h/db", "postgresql+psycopg2://u@h/db"],
)
def test_postgresql_urls_become_asyncpg(url: str) -> None:
    assert load_settings(env_file=None, DATABASE_URL=url).DATABASE_URL == "postgresql+asyncpg://u@h/db"


def test_a_postgresql_password_survives_normalisation() -> None:
    settings = load_settings(env_file=None, DATABASE_URL=f"postgres://u:{FAKE_SECRET}@h:5433/db")
    assert settings.DATABASE_URL == f"postgresql+asyncpg://u:{FAKE_SECRET}@h:5433/db"


@pytest.mark.parametrize("url", [f"mysql://root:{FAKE_SECRET}@db/baton", "not a url at all"])
def test_an_unsupported_database_url_is_refused_naming_the_variable(url: str) -> None:
    message = refusal(DATABASE_URL=url)
    assert "DATABASE_URL" in message
    assert "sqlite" in message and "postgresql" in message  # says what would be accepted
    assert FAKE_SECRET not in message


def test_a_dotenv_file_is_read_and_the_environment_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dotenv = tmp_path / "custom.env"
    dotenv.write_text("BATON_PORT=4000\nBATON_LOG_LEVEL=debug\n", encoding="utf-8")
    assert load_settings(env_file=dotenv).BATON_PORT == 4000
    assert load_settings(env_file=dotenv).BATON_LOG_LEVEL == "DEBUG"
    monkeypatch.setenv("BATON_PORT", "4001")
    assert load_settings(env_file=dotenv).BATON_PORT == 4001


# -- platform settings -------------------------------------------------------------------------


def test_a_complete_slack_configuration_leaves_local_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-" + FAKE_SECRET)
    monkeypatch.setenv("SLACK_SIGNING_SECRET", FAKE_SECRET)
    settings = load_settings(env_file=None)
    assert settings.slack_enabled and not settings.local_mode and not settings.web_chat_enabled
    assert FAKE_SECRET not in repr(settings.SLACK_BOT_TOKEN) + str(settings.SLACK_SIGNING_SECRET)


def test_socket_mode_needs_no_signing_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-" + FAKE_SECRET)
    monkeypatch.setenv("SLACK_APP_TOKEN", "xapp-" + FAKE_SECRET)
    assert load_settings(env_file=None).slack_enabled


# Each: the settings, and the variable the refusal must name. Every one carries FAKE_SECRET somewhere.
REFUSED = {
    "bot token without signing secret": ({"SLACK_BOT_TOKEN": "xoxb-" + FAKE_SECRET}, "SLACK_SIGNING_SECRET"),
    "user token as bot token": (
        {"SLACK_BOT_TOKEN": "xoxp-" + FAKE_SECRET, "SLACK_SIGNING_SECRET": FAKE_SECRET},
        "SLACK_BOT_TOKEN",
    ),
    "signing secret without bot token": ({"SLACK_SIGNING_SECRET": FAKE_SECRET}, "SLACK_BOT_TOKEN"),
    "bot token as app token": (
        {"SLACK_BOT_TOKEN": "xoxb-" + FAKE_SECRET, "SLACK_APP_TOKEN": "xoxb-" + FAKE_SECRET},
        "SLACK_APP_TOKEN",
    ),
    "oauth without client secret": (
        {"SLACK_CLIENT_ID": "123.456", "SLACK_SIGNING_SECRET": FAKE_SECRET},
        "SLACK_CLIENT_SECRET",
    ),
    "teams app id without password": ({"MICROSOFT_APP_ID": "00000000-" + FAKE_SECRET}, "MICROSOFT_APP_PASSWORD"),
    "teams emulator and app id": (
        {"MICROSOFT_APP_ID": "app", "MICROSOFT_APP_PASSWORD": FAKE_SECRET, "BATON_TEAMS_EMULATOR": "1"},
        "BATON_TEAMS_EMULATOR",
    ),
    "port out of range": (
        {"BATON_PORT": "70000", "MICROSOFT_APP_ID": "app", "MICROSOFT_APP_PASSWORD": FAKE_SECRET},
        "BATON_PORT",
    ),
    "port not a number": ({"BATON_PORT": "abc"}, "BATON_PORT"),
    "log level": ({"BATON_LOG_LEVEL": "chatty"}, "BATON_LOG_LEVEL"),
}


@pytest.mark.parametrize("case", REFUSED, ids=list(REFUSED))
def test_impossible_settings_name_the_variable_and_never_the_secret(monkeypatch: pytest.MonkeyPatch, case: str) -> None:
    env, variable = REFUSED[case]
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError) as caught:
        load_settings(env_file=None)
    message = str(caught.value)
    assert variable in message
    assert FAKE_SECRET not in message
    assert "\n  " in message  # one indented line per problem under the heading


def test_overrides_are_validated_like_the_environment() -> None:
    assert "BATON_PORT" in refusal(BATON_PORT=70000)
    assert "BATON_PORT" in refusal(BATON_PORT=0)
    assert load_settings(env_file=None, BATON_PORT=65535).BATON_PORT == 65535


# -- check_bind --------------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost", "127.0.0.53"])
def test_loopback_addresses_are_always_fine(host: str) -> None:
    load_settings(env_file=None).check_bind(host)  # raises if refused
    load_settings(env_file=None, BATON_TEAMS_EMULATOR=True).check_bind(host)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", ""])
def test_the_local_web_chat_is_not_served_beyond_loopback_unless_asked(host: str) -> None:
    settings = load_settings(env_file=None)
    with pytest.raises(ConfigurationError, match="--public") as caught:
        settings.check_bind(host)
    assert "127.0.0.1" in str(caught.value)


def test_public_allows_the_local_web_chat_on_all_interfaces(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BATON_WEB_PUBLIC", "1")
    settings = load_settings(env_file=None)
    assert settings.local_mode and settings.BATON_WEB_PUBLIC
    settings.check_bind("0.0.0.0")


def test_the_teams_emulator_is_refused_on_all_interfaces_even_when_public(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BATON_TEAMS_EMULATOR", "1")
    for public in ("0", "1"):
        monkeypatch.setenv("BATON_WEB_PUBLIC", public)
        with pytest.raises(ConfigurationError, match="BATON_TEAMS_EMULATOR"):
            load_settings(env_file=None).check_bind("0.0.0.0")


def test_a_platform_without_the_web_chat_may_bind_all_interfaces(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-" + FAKE_SECRET)
    monkeypatch.setenv("SLACK_SIGNING_SECRET", FAKE_SECRET)
    load_settings(env_file=None).check_bind("0.0.0.0")
    monkeypatch.setenv("BATON_WEB_CHAT", "1")  # ...but not with the sign-in-less chat switched back on
    with pytest.raises(ConfigurationError, match="--public"):
        load_settings(env_file=None).check_bind("0.0.0.0")


# -- the real command line ---------------------------------------------------------------------


def test_serve_refuses_all_interfaces_in_local_mode_and_exits_quickly(tmp_path: Path) -> None:
    port = free_port()
    started = time.monotonic()
    run = baton(tmp_path, "serve", "--host", "0.0.0.0", "--port", str(port))  # timeout=20 raises if it serves
    assert run.returncode != 0
    assert "Refusing to bind" in run.stderr and "--public" in run.stderr
    assert "Traceback" not in run.stderr
    assert time.monotonic() - started < 20


def test_serve_names_a_bad_port_setting(tmp_path: Path) -> None:
    run = baton(tmp_path, "serve", extra_env={"BATON_PORT": "abc"})
    assert run.returncode != 0
    assert "BATON_PORT" in run.stderr
    assert "Traceback" not in run.stderr


def test_a_bad_database_url_is_named_without_its_password(tmp_path: Path) -> None:
    run = baton(tmp_path, "migrate", extra_env={"DATABASE_URL": f"mysql://root:{FAKE_SECRET}@db/baton"})
    assert run.returncode != 0
    assert "DATABASE_URL" in run.stderr
    assert FAKE_SECRET not in run.stderr + run.stdout


def test_a_dotenv_in_the_working_directory_is_read_by_the_cli(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(f"SLACK_BOT_TOKEN=xoxb-{FAKE_SECRET}\n", encoding="utf-8")
    run = baton(tmp_path, "migrate")
    assert run.returncode != 0
    assert "SLACK_SIGNING_SECRET" in run.stderr
    assert FAKE_SECRET not in run.stderr + run.stdout
