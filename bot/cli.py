"""The `baton` command line."""
from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path

import click

from bot.config import Settings, load_settings
from dialogs.errors import ConfigurationError


def _settings(**overrides: object) -> Settings:
    try:
        return load_settings(**{k: v for k, v in overrides.items() if v is not None})
    except ConfigurationError as exc:
        raise click.ClickException(str(exc)) from None


def _logging(level: str) -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)  # it logs every readiness check


@click.group()
def main() -> None:
    """Baton: a chat bot that keeps a team's performance rhythm."""


@main.command()
@click.option("--host", default=None, help="Address to bind (default 127.0.0.1, or BATON_HOST).")
@click.option("--port", type=int, default=None, help="Port to bind (default 3978, or BATON_PORT).")
@click.option("--public", is_flag=True, default=None, help="Allow the sign-in-less local web chat on a non-loopback address.")
def serve(host: str | None, port: int | None, public: bool | None) -> None:
    """Run the server: every enabled adapter, the scheduler and the outbox sender."""
    from aiohttp import web

    from bot.app import Baton, create_app

    settings = _settings(BATON_HOST=host, BATON_PORT=port, BATON_WEB_PUBLIC=public)
    _logging(settings.BATON_LOG_LEVEL)
    try:
        settings.check_bind(settings.BATON_HOST)
    except ConfigurationError as exc:
        raise click.ClickException(str(exc)) from None
    baton = Baton.build(settings)
    mode = "local mode (web chat, demo organisation)" if settings.local_mode else "platform mode"
    url = f"http://{settings.BATON_HOST}:{settings.BATON_PORT}/"
    click.echo(f"Baton starting in {mode} on {url} with database {baton.db.safe_url}", err=True)
    web.run_app(
        create_app(baton),
        host=settings.BATON_HOST,
        port=settings.BATON_PORT,
        print=lambda *_: click.echo(f"Ready: open {url}" if settings.web_chat_enabled else f"Ready on {url}", err=True),
        access_log=None,
    )


@main.command()
def migrate() -> None:
    """Bring the database schema up to date (serve does this too)."""
    from storage.db import Database

    settings = _settings()

    async def run() -> None:
        db = Database(settings.DATABASE_URL)
        try:
            await db.migrate()
        finally:
            await db.close()

    asyncio.run(run())
    click.echo("Schema is current.", err=True)


@main.command()
@click.option("--as", "email", required=True, help="Email of the person to chat as.")
def chat(email: str) -> None:
    """Chat with Baton in the terminal as a person of the organisation."""
    from adapters.console import run_console
    from storage.db import Database

    settings = _settings()
    _logging("WARNING")

    async def run() -> int:
        db = Database(settings.DATABASE_URL)
        try:
            return await run_console(db, email)
        finally:
            await db.close()

    sys.exit(asyncio.run(run()))


@main.group()
def org() -> None:
    """Import or export the organisation (people, managers, teams, time zones)."""


@org.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def org_import(file: Path) -> None:
    """Import FILE.csv (columns email,name,manager_email,team,timezone). All rows or none."""
    from bot.orgcsv import import_csv
    from dialogs.clock import SystemClock
    from storage.db import Database

    settings = _settings()
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise click.ClickException(f"{file} is not UTF-8 text. Save it as 'CSV UTF-8' and try again.") from None
    total = max(text.count("\n") - 1, 1)

    async def run():  # noqa: ANN202
        db = Database(settings.DATABASE_URL)
        try:
            await db.migrate()
            with click.progressbar(length=total, label="Importing", file=sys.stderr) as bar:
                return await import_csv(db, text, SystemClock().now(), progress=bar.update)
        finally:
            await db.close()

    result, errors = asyncio.run(run())
    if errors:
        for error in errors:
            click.echo(f"{file}:{error}", err=True)
        raise click.ClickException(f"Nothing was imported: {len(errors)} problem(s) above. Fix them and run the import again.")
    assert result is not None
    click.echo(
        f"Imported {file}: {result.created} created, {result.updated} updated, {result.unchanged} unchanged, "
        f"{result.teams_created} new team(s).",
        err=True,
    )


@org.command("export")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path), required=False)
def org_export(file: Path | None) -> None:
    """Write the organisation as CSV to FILE (or standard output)."""
    from bot.orgcsv import export_csv
    from storage.db import Database

    settings = _settings()

    async def run() -> str:
        db = Database(settings.DATABASE_URL)
        try:
            await db.migrate()
            return await export_csv(db)
        finally:
            await db.close()

    text = asyncio.run(run())
    if file is None:
        click.echo(text, nl=False)
    else:
        file.write_text(text, encoding="utf-8")
        click.echo(f"Wrote {file}.", err=True)


@main.group()
def checkin() -> None:
    """Weekly check-ins: send now, report participation."""


@checkin.command("send-now")
@click.option("--team", "team_name", required=True, help="Team name.")
def checkin_send_now(team_name: str) -> None:
    """Invite the team to this period's check-in now. Once per person and period, as the schedule would."""
    from sqlalchemy import func, select

    from dialogs.clock import SystemClock
    from dialogs.rhythm import Conductor
    from storage.db import Database
    from storage.models import OutboxMessage, Team

    settings = _settings()

    async def run() -> tuple[int, int, dict]:
        db = Database(settings.DATABASE_URL)
        try:
            await db.migrate()

            async def find(session):  # noqa: ANN001, ANN202
                team = (await session.execute(select(Team).where(Team.name == team_name))).scalars().first()
                count = await session.scalar(select(func.count()).select_from(OutboxMessage).where(OutboxMessage.kind == "checkin"))
                return team, count

            team, before = await db.run(find)
            if team is None:
                raise click.ClickException(f"There is no team called {team_name!r}. `baton org export` lists the teams.")
            conductor = Conductor(db, budget=settings.BATON_WEEKLY_BUDGET)
            report = await conductor.tick(SystemClock().now(), team_id=team.id, force=True)
            _, after = await db.run(find)
            return report.invited, after - before, dict(report.held)
        finally:
            await db.close()

    attempted, queued, held = asyncio.run(run())
    already = attempted - queued
    held_text = ", ".join(f"{n} held ({reason})" for reason, n in held.items())
    click.echo(
        f"Queued {queued} check-in invitation(s) for {team_name}"
        + (f"; {already} already had this period's" if already else "")
        + (f"; {held_text}" if held_text else "")
        + ". A running `baton serve` delivers them.",
        err=True,
    )


@checkin.command("report")
@click.option("--team", "team_name", required=True, help="Team name.")
@click.option("--weeks", type=click.IntRange(1, 104), default=8, show_default=True)
@click.option("--format", "fmt", type=click.Choice(["csv", "json"]), default="csv", show_default=True)
def checkin_report(team_name: str, weeks: int, fmt: str) -> None:
    """Participation, streaks and pulse per person and week, as CSV or JSON on standard output."""
    from bot.reports import as_csv, as_json, participation
    from dialogs.clock import SystemClock
    from storage.db import Database

    settings = _settings()

    async def run() -> dict:
        db = Database(settings.DATABASE_URL)
        try:
            await db.migrate()
            return await participation(db, team_name, weeks, SystemClock().now())
        finally:
            await db.close()

    try:
        report = asyncio.run(run())
    except LookupError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(as_csv(report) if fmt == "csv" else as_json(report), nl=False)
