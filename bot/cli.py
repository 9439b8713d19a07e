"""The `baton` command line."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import click

from bot.config import Settings, load_settings
from dialogs.engine.errors import ConfigurationError
from dialogs.engine.sealing import Sealer

if TYPE_CHECKING:
    from storage.db import Database

T = TypeVar("T")


def _settings(**overrides: object) -> Settings:
    try:
        return load_settings(**{k: v for k, v in overrides.items() if v is not None})
    except ConfigurationError as exc:
        raise click.ClickException(str(exc)) from None


def _sealer(settings: Settings) -> Sealer:
    """The sealer for BATON_SECRET_KEY (or the key file), or a message saying how to set it."""
    try:
        return settings.sealer()
    except ConfigurationError as exc:
        raise click.ClickException(str(exc)) from None


def with_database(settings: Settings, work: Callable[[Database], Awaitable[T]], *, must_exist: bool = False) -> T:
    """Open the configured database, run `work`, close it.

    Most commands bring the schema up to date first. `must_exist` ones (reports, exports, erasing a
    person) never create or migrate a database: they say what to run instead.
    """
    from storage.backup import BackupError, sqlite_path
    from storage.db import Database

    if must_exist:
        try:
            path = sqlite_path(settings.DATABASE_URL)
        except BackupError as exc:
            raise click.ClickException(str(exc)) from None
        if path is not None and not path.exists():
            raise click.ClickException(
                f"There is no database at {path} yet. Start Baton (baton serve) or run baton migrate first, "
                "or point DATABASE_URL at the right one."
            )

    async def run() -> T:
        db = Database(settings.DATABASE_URL)
        try:
            if not must_exist:
                await db.migrate()
            elif not await db.schema_current():
                raise click.ClickException(
                    "The database schema is not the one this Baton expects. Run baton migrate (or start baton "
                    "serve) first."
                )
            return await work(db)
        finally:
            await db.close()

    return asyncio.run(run())


def _logging(level: str, fmt: str = "text") -> None:
    from bot.logs import configure

    configure(level, fmt)


@click.group()
@click.version_option(package_name="baton", prog_name="baton", message="%(prog)s %(version)s")
def main() -> None:
    """Baton: a chat bot that keeps a team's performance rhythm."""


@main.command()
@click.option("--host", default=None, help="Address to bind (default 127.0.0.1, or BATON_HOST).")
@click.option("--port", type=int, default=None, help="Port to bind (default 3978, or BATON_PORT).")
@click.option(
    "--public", is_flag=True, default=None, help="Allow the sign-in-less local web chat on a non-loopback address."
)
def serve(host: str | None, port: int | None, public: bool | None) -> None:
    """Run the server: every enabled adapter, the scheduler and the outbox sender."""
    from aiohttp import web

    from bot.app import Baton, serving_app

    settings = _settings(BATON_HOST=host, BATON_PORT=port, BATON_WEB_PUBLIC=public)
    _logging(settings.BATON_LOG_LEVEL, settings.BATON_LOG_FORMAT)
    try:
        settings.check_bind(settings.BATON_HOST)
        baton = Baton.build(settings)
    except ConfigurationError as exc:
        raise click.ClickException(str(exc)) from None
    mode = "local mode (web chat, demo organisation)" if settings.local_mode else "platform mode"
    url = f"http://{settings.BATON_HOST}:{settings.BATON_PORT}/"
    click.echo(f"Baton starting in {mode} on {url} with database {baton.db.safe_url}", err=True)
    web.run_app(
        serving_app(baton),
        host=settings.BATON_HOST,
        port=settings.BATON_PORT,
        print=lambda *_: click.echo(f"Ready: open {url}" if settings.web_chat_enabled else f"Ready on {url}", err=True),
        access_log=None,
    )


@main.command()
def migrate() -> None:
    """Bring the database schema up to date (serve does this too)."""

    async def nothing_more(db: Database) -> None:
        return None  # with_database has migrated already

    with_database(_settings(), nothing_more)
    click.echo("Schema is current.", err=True)


@main.command()
@click.option("--as", "email", required=True, help="Email of the person to chat as.")
def chat(email: str) -> None:
    """Chat with Baton in the terminal as a person of the organisation."""
    from adapters.console import run_console
    from bot.core import Core

    settings = _settings()
    _logging("WARNING")

    sealer = _sealer(settings)

    async def talk(db: Database) -> int:
        core = Core.assemble(db, settings.dialogs(), sealer=sealer)
        return await run_console(core, email, drain=core.sender.drain_once)

    sys.exit(with_database(settings, talk))


@main.group()
def org() -> None:
    """Import or export the organisation (people, managers, teams, time zones)."""


@org.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def org_import(file: Path) -> None:
    """Import FILE.csv (columns email,name,manager_email,team,timezone). All rows or none."""
    from bot.orgcsv import import_csv
    from dialogs.engine.clock import SystemClock

    settings = _settings()
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise click.ClickException(f"{file} is not UTF-8 text. Save it as 'CSV UTF-8' and try again.") from None
    total = max(text.count("\n") - 1, 1)
    # Calendar addresses are sealed on import: only a file that has them needs the secret key.
    sealer = _sealer(settings) if "calendar" in text.split("\n", 1)[0].lower() else None

    async def run(db: Database):  # noqa: ANN202
        with click.progressbar(length=total, label="Importing", file=sys.stderr) as bar:
            return await import_csv(
                db,
                text,
                SystemClock().now(),
                progress=bar.update,
                sealer=sealer,
                private_calendars=settings.BATON_CALENDAR_PRIVATE_HOSTS,
            )

    result, errors = with_database(settings, run)
    if errors:
        for error in errors:
            click.echo(f"{file}:{error}", err=True)
        raise click.ClickException(
            f"Nothing was imported: {len(errors)} problem(s) above. Fix them and run the import again."
        )
    assert result is not None
    click.echo(
        f"Imported {file}: {result.created} created, {result.updated} updated, {result.unchanged} unchanged, "
        f"{result.teams_created} new team(s).",
        err=True,
    )


@org.command("holidays")
@click.option("--team", "team_name", required=True, help="Team name.")
@click.argument("code", required=False)
def org_holidays(team_name: str, code: str | None) -> None:
    """Show or set the public holidays a team has off: CODE is a country ("DE") or a region ("DE-BY"), or off."""
    from sqlalchemy import select

    from dialogs.common.absence import holiday_dates, valid_holidays
    from dialogs.engine.clock import SystemClock
    from storage.models import Team

    settings = _settings()
    wanted = None
    if code and code.casefold() != "off":
        wanted = valid_holidays(code)
        if wanted is None:
            raise click.ClickException(
                f"{code!r} is not a country or region the holidays package knows; use an ISO code such as DE, "
                "GB-SCT or US-CA."
            )

    async def run(db: Database) -> tuple[str | None, bool]:
        async def work(session):  # noqa: ANN001, ANN202
            team = await session.scalar(select(Team).where(Team.name == team_name))
            if team is None:
                names = ", ".join(await session.scalars(select(Team.name).order_by(Team.name))) or "none yet"
                raise click.ClickException(f"There is no team called {team_name!r} (teams: {names}).")
            if code is not None:
                team.holidays = wanted
            return team.holidays

        return await db.run(work)

    current = with_database(settings, run)
    if current is None:
        click.echo(f"{team_name} keeps no public holidays.")
        return
    today = SystemClock().now().date()
    coming = holiday_dates(current, today.year) + holiday_dates(current, today.year + 1)
    upcoming = [f"{day:%a %d %b %Y} {name}" for day, name in coming if day >= today]
    click.echo(f"{team_name} has {current} public holidays off; the next: " + "; ".join(upcoming[:4]) + ".")


@org.command("export")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path), required=False)
def org_export(file: Path | None) -> None:
    """Write the organisation as CSV to FILE (or standard output)."""
    from bot.orgcsv import export_csv

    settings = _settings()

    async def run(db: Database) -> str:
        return await export_csv(db)

    text = with_database(settings, run, must_exist=True)
    if file is None:
        click.echo(text, nl=False)
    else:
        file.write_text(text, encoding="utf-8")
        click.echo(f"Wrote {file}.", err=True)


@main.group("360")
def review() -> None:
    """Anonymous 360s: close one before its date."""


@review.command("close")
@click.argument("campaign_id", type=int, required=False)
@click.option("--yes", is_flag=True, help="Close without asking.")
def review_close(campaign_id: int | None, yes: bool) -> None:
    """Close an open 360 now (without an id: list the open ones). A running `baton serve` sends the results."""
    from sqlalchemy import select

    from dialogs.engine.clock import SystemClock
    from dialogs.review360 import answered_raters, close_early, closing_preview
    from storage.models import Campaign360, Person

    settings = _settings()

    async def run(db: Database) -> None:
        async def open_ones(session):  # noqa: ANN001, ANN202
            rows = await session.execute(
                select(Campaign360, Person)
                .join(Person, Person.id == Campaign360.subject_id)
                .where(Campaign360.status == "open")
                .order_by(Campaign360.id)
            )
            return [(c, p, closing_preview(c, await answered_raters(session, c))) for c, p in rows]

        found = await db.run(open_ones)
        if campaign_id is None:
            for campaign, subject, preview in found:
                click.echo(f"{campaign.id}\t{subject.name}\tcloses {campaign.closes_at:%Y-%m-%d %H:%M} UTC\t{preview}")
            if not found:
                click.echo("No 360 is open.", err=True)
            return
        match = [(c, p, preview) for c, p, preview in found if c.id == campaign_id]
        if not match:
            raise click.ClickException(f"No open 360 has id {campaign_id}. `baton 360 close` lists the open ones.")
        campaign, subject, preview = match[0]
        click.echo(f"360 about {subject.name}'s work. {preview}", err=True)
        if not yes and not click.confirm("Close it now? Answers not yet submitted are discarded", err=True):
            click.echo("Left open.", err=True)
            return

        async def close(session):  # noqa: ANN001, ANN202
            row = await session.get(Campaign360, campaign_id)
            if row is not None and row.status == "open":
                close_early(row, SystemClock().now())
                session.add(row)

        await db.run(close)
        click.echo("Closing: a running `baton serve` closes it within a minute and sends the results.", err=True)

    with_database(settings, run)


@main.group()
def checkin() -> None:
    """Weekly check-ins: send now, report participation."""


@checkin.command("send-now")
@click.option("--team", "team_name", required=True, help="Team name.")
def checkin_send_now(team_name: str) -> None:
    """Invite the team to this period's check-in now. Once per person and period, as the schedule would."""
    from sqlalchemy import func, select

    from dialogs.engine.clock import SystemClock
    from dialogs.services.rhythm import Conductor
    from storage.models import OutboxMessage, Team

    settings = _settings()
    sealer = _sealer(settings)

    async def run(db: Database) -> tuple[int, int, dict, int]:

        async def find(session):  # noqa: ANN001, ANN202
            team = (await session.execute(select(Team).where(Team.name == team_name))).scalars().first()
            count = await session.scalar(
                select(func.count()).select_from(OutboxMessage).where(OutboxMessage.kind == "checkin")
            )
            return team, count

        team, before = await db.run(find)
        if team is None:
            raise click.ClickException(f"There is no team called {team_name!r}. `baton org export` lists the teams.")
        conductor = Conductor(db, sealer=sealer, budget=settings.BATON_WEEKLY_BUDGET)
        report = await conductor.tick(SystemClock().now(), team_id=team.id, force=True)
        _, after = await db.run(find)
        return report.invited, after - before, dict(report.held), report.deferred

    attempted, queued, held, deferred = with_database(settings, run)
    already = attempted - queued
    held_text = ", ".join(f"{n} held ({reason})" for reason, n in held.items())
    click.echo(
        f"Queued {queued} check-in invitation(s) for {team_name}"
        + (f"; {already} already had this period's" if already else "")
        + (f"; {held_text}" if held_text else "")
        + (f"; {deferred} will arrive when the person's quiet hours end" if deferred else "")
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
    from dialogs.engine.clock import SystemClock

    settings = _settings()

    async def run(db: Database) -> dict:
        return await participation(db, team_name, weeks, SystemClock().now())

    try:
        report = with_database(settings, run, must_exist=True)
    except LookupError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(as_csv(report) if fmt == "csv" else as_json(report), nl=False)


@checkin.command("template")
@click.option("--team", "team_name", required=True, help="Team name.")
@click.option(
    "--import",
    "source",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="YAML or JSON list of questions.",
)
@click.option("--reset", is_flag=True, help="Go back to the default questions.")
def checkin_template(team_name: str, source: Path | None, reset: bool) -> None:
    """Print the team's questions as YAML, or replace them from a YAML/JSON file (validated first)."""
    import json

    import yaml
    from sqlalchemy import select

    from dialogs.checkin import questions_for_team, validate_questions
    from dialogs.engine.clock import SystemClock
    from dialogs.team import save_questions
    from storage.models import Team

    settings = _settings()
    questions = None
    if source is not None:
        try:
            loaded = (
                json.loads(source.read_text("utf-8"))
                if source.suffix == ".json"
                else yaml.safe_load(source.read_text("utf-8"))
            )
            questions = validate_questions(loaded.get("questions") if isinstance(loaded, dict) else loaded)
        except (ValueError, yaml.YAMLError) as exc:
            raise click.ClickException(f"{source}: {exc}. Nothing was changed.") from None

    async def run(db: Database) -> list:

        async def work(session):  # noqa: ANN001, ANN202
            team = (await session.execute(select(Team).where(Team.name == team_name))).scalars().first()
            if team is None:
                raise click.ClickException(f"There is no team called {team_name!r}.")
            if reset or questions is not None:
                await save_questions(session, team.id, questions, SystemClock().now())
            return await questions_for_team(session, team.id)

        return await db.run(work)

    current = with_database(settings, run)
    if source is not None or reset:
        click.echo(f"{team_name} now asks {len(current)} question(s); check-ins already started keep theirs.", err=True)
    else:
        click.echo(yaml.safe_dump({"questions": current}, sort_keys=False, allow_unicode=True), nl=False)


@checkin.command("schedule")
@click.option("--team", "team_name", required=True, help="Team name.")
@click.option("--day", help="Check-in weekday (mon … sun).")
@click.option("--time", "at", help="Check-in local time, HH:MM.")
@click.option("--reminders", type=click.IntRange(0, 3), help="How many reminders.")
@click.option("--reminder-after", type=click.IntRange(15, 48 * 60), help="Minutes between reminders.")
@click.option("--digest-day", help="Weekday the period closes and the digest goes out.")
@click.option("--digest-time", help="Local time of the digest, HH:MM.")
def checkin_schedule(team_name: str, day, at, reminders, reminder_after, digest_day, digest_time) -> None:  # noqa: ANN001
    """Show or change the team's rhythm."""
    from sqlalchemy import select

    from dialogs.engine.errors import UserFacingError
    from dialogs.team import describe, parse_day, parse_time
    from storage.models import Team

    settings = _settings()

    async def run(db: Database) -> str:

        async def work(session):  # noqa: ANN001, ANN202
            team = (await session.execute(select(Team).where(Team.name == team_name))).scalars().first()
            if team is None:
                raise click.ClickException(f"There is no team called {team_name!r}.")
            try:
                if day is not None:
                    team.checkin_weekday = parse_day(day)
                if at is not None:
                    team.checkin_time = parse_time(at)
                if digest_day is not None:
                    team.digest_weekday = parse_day(digest_day)
                if digest_time is not None:
                    team.digest_time = parse_time(digest_time)
            except UserFacingError as exc:
                raise click.ClickException(exc.message.replace("*", "")) from None
            if reminders is not None:
                team.reminder_count = reminders
            if reminder_after is not None:
                team.reminder_after_minutes = reminder_after
            session.add(team)
            return describe(team)

        return await db.run(work)

    click.echo(with_database(settings, run))


@main.group()
def rhythm() -> None:
    """A team's whole rhythm: what Baton does, for whom, and when."""


@rhythm.command("show")
@click.option("--team", "team_name", required=True, help="Team name.")
@click.option(
    "--svg",
    "svg_file",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Also write the picture as SVG to this file.",
)
def rhythm_show(team_name: str, svg_file: Path | None) -> None:
    """Print the coming fortnight's steps by day (UTC), each with its recipient's own local time. Read-only."""
    from sqlalchemy import select

    from dialogs.engine.clock import SystemClock
    from dialogs.services.picture import Picture, by_day, picture_of
    from storage.models import Team

    settings = _settings()

    async def run(db: Database) -> Picture:
        async def work(session):  # noqa: ANN001, ANN202
            teams = list((await session.execute(select(Team).order_by(Team.name))).scalars())
            team = next((t for t in teams if t.name == team_name), None)
            if team is None:
                known = ", ".join(t.name for t in teams) or "none yet (baton org import adds them)"
                raise click.ClickException(
                    f"There is no team called {team_name!r}. Teams: {known}. Run baton rhythm show --team NAME."
                )
            return await picture_of(session, team, SystemClock().now())

        return await db.run(work)

    picture = with_database(settings, run, must_exist=True)
    click.echo(
        f"{picture.team}'s rhythm, {picture.start:%a %d %b %H:%M} to {picture.end:%a %d %b %Y %H:%M} UTC "
        "(days in UTC; each time also in the recipient's own zone)."
    )
    for day, items in by_day(picture):
        click.echo(f"\n{day:%a %d %b %Y}")
        for step, moment in items:
            status = moment.status()
            extra = "" if step.scheduled else " [not yet scheduled: defaults]"
            click.echo(
                f"  {moment.at:%H:%M} UTC  {step.title} → {moment.name}, {moment.local:%a %H:%M} {moment.zone}"
                + (f" ({status})" if status else "")
                + (" [budgeted]" if step.budgeted else "")
                + extra
            )
    if picture.rules:
        click.echo("\nWhenever due:")
        for step in picture.rules:
            click.echo(f"  {step.title}: {step.rule}" + (" [budgeted]" if step.budgeted else ""))
    if picture.flows:
        click.echo("\nFlows: check-in → digest → 1:1 agenda → 1:1 → actions → nudges.")
    for note in picture.notes:
        click.echo(f"Note: {note}")
    if svg_file is not None:
        from bot.dashboard.rhythm import rhythm_svg

        svg_file.write_text('<?xml version="1.0" encoding="utf-8"?>\n' + rhythm_svg(picture), "utf-8")
        click.echo(f"Wrote the picture to {svg_file}.", err=True)


@main.group()
def slack() -> None:
    """Slack: print an app manifest."""


@slack.command("manifest")
@click.option("--url", help="Public https base URL of this Baton (events at URL/slack/events).")
@click.option("--socket", is_flag=True, help="Socket Mode instead of a public URL.")
@click.option("--format", "fmt", type=click.Choice(["yaml", "json"]), default="yaml", show_default=True)
def slack_manifest(url: str | None, socket: bool, fmt: str) -> None:
    """Print a ready Slack app manifest with least-privilege scopes."""
    import json

    import yaml

    from adapters.slack.manifest import build_manifest

    if bool(url) == socket:
        raise click.UsageError("Give exactly one of --url https://your-host or --socket.")
    if url and not url.startswith("https://"):
        raise click.UsageError("Slack only calls https URLs: --url must start with https://")
    manifest = build_manifest(url=url, socket=socket)
    click.echo(json.dumps(manifest, indent=2) if fmt == "json" else yaml.safe_dump(manifest, sort_keys=False), nl=False)


@main.group()
def teams() -> None:
    """Microsoft Teams: build a sideloadable app package."""


@teams.command("package")
@click.option("--app-id", required=True, help="The bot's Microsoft App ID (a GUID).")
@click.option("--host", required=True, help="Public host name Teams reaches Baton at, e.g. baton.example.com.")
@click.option(
    "--out", type=click.Path(dir_okay=False, path_type=Path), default=Path("baton-teams.zip"), show_default=True
)
@click.option("--privacy-url", help="Your privacy statement (default: the page Baton serves, https://HOST/privacy).")
@click.option("--terms-url", help="Your terms of use (default: the page Baton serves, https://HOST/terms).")
def teams_package(app_id: str, host: str, out: Path, privacy_url: str | None, terms_url: str | None) -> None:
    """Write manifest.json and the two icons into a zip Teams can sideload."""
    from adapters.teams.package import MAX_COMMANDS, commands, write_package

    try:
        write_package(app_id=app_id, host=host, out=out, privacy_url=privacy_url, terms_url=terms_url)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    _, left_out = commands()
    for name, why in left_out:
        click.echo(
            f"Not in the command menu (Teams shows {MAX_COMMANDS}): {name} — {why}. Typing it still works.", err=True
        )
    click.echo(f"Wrote {out}. Upload it in Teams: Apps → Manage your apps → Upload an app.", err=True)


@main.group()
def tools() -> None:
    """Which tool helps? Diagnose a gap from the command line; list the catalogue."""


@tools.command("suggest")
@click.argument("text")
@click.option("--person", "email", help="Whose work it is about: adds the signals Baton has about them.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON: {influences: [...], tools: [...]}, best first.")
def tools_suggest(text: str, email: str | None, as_json: bool) -> None:
    """Rank the six influences for TEXT (with the signals used) and suggest tools for the best one."""
    import json

    from dialogs.common.signals import gather
    from dialogs.engine.clock import SystemClock
    from dialogs.tools import catalogue, rank_influences, suggest
    from storage import queries

    settings = _settings()
    cat = catalogue(settings.BATON_CATALOGUE)

    async def run(db: Database):  # noqa: ANN202

        async def work(session):  # noqa: ANN001, ANN202
            signals = []
            if email:
                person = await queries.person_by_email(session, email)
                if person is None:
                    raise click.ClickException(f"Nobody with the email {email} is in this organisation.")
                signals = await gather(session, person, SystemClock().now())
            ranked = rank_influences(cat, text, signals)
            best = ranked[0]
            return ranked, await suggest(session, cat, best.id, fit=best.tool_ids, signals=tuple(s.id for s in signals))

        return await db.run(work)

    from storage.backup import sqlite_path

    path = sqlite_path(settings.DATABASE_URL)
    if not email and path is not None and not path.exists():
        # No organisation yet: rank from the catalogue alone, without creating a database where none was.
        import tempfile

        with tempfile.TemporaryDirectory() as scratch:
            alone = settings.model_copy(update={"DATABASE_URL": f"sqlite+aiosqlite:///{scratch}/catalogue.db"})
            ranked, suggestions = with_database(alone, run)
    else:
        ranked, suggestions = with_database(settings, run, must_exist=True)
    result = {
        "influences": [
            {
                "influence": r.name,
                "id": r.id,
                "score": r.score,
                "evidence": list(r.text_evidence),
                "signals": [{"id": s.id, "evidence": s.evidence, "weight": s.weight} for s in r.signals],
            }
            for r in ranked
        ],
        "tools": [
            {
                "id": t.tool.id,
                "name": t.tool.name,
                "influence": cat.influence(t.tool.influence).name,
                "time": t.tool.time_label,
                "cost": t.tool.cost,
                "why": t.why,
            }
            for t in suggestions
        ],
    }
    if as_json:
        click.echo(json.dumps(result, ensure_ascii=False, indent=2))
        return
    for r in result["influences"]:
        signals = "; ".join(s["evidence"] for s in r["signals"])
        click.echo(f"{r['score']:.2f}  {r['influence']}" + (f"  (signals: {signals})" if signals else ""))
    click.echo("")
    for n, t in enumerate(result["tools"], 1):
        click.echo(f"{n}. {t['name']} [{t['cost']} cost, {t['time']}]\n   {t['why']}")


@tools.command("list")
@click.option("--influence", help="Only this influence (id or name, e.g. resources or 'Job Fit').")
def tools_list(influence: str | None) -> None:
    """Print the catalogue: each tool with its influence, cost and time to apply."""
    from dialogs.tools import catalogue

    cat = catalogue(_settings().BATON_CATALOGUE)
    wanted = None
    if influence:
        key = influence.strip().casefold().replace(" ", "_").replace("&", "and")
        matches = [i for i in cat.influences if key in (i.id, i.name.casefold().replace(" ", "_").replace("&", "and"))]
        if not matches:
            names = ", ".join(i.id for i in cat.influences)
            raise click.ClickException(f"Unknown influence {influence!r}; choose one of: {names}.")
        wanted = matches[0].id
    for inf in cat.influences:
        if wanted and inf.id != wanted:
            continue
        click.echo(f"{inf.name}")
        for tool in cat.tools_for(inf.id):
            click.echo(f"  {tool.id:<40} {tool.cost:<6} {tool.time_label}")


@main.group()
def goals() -> None:
    """Goals: import progress from CSV, manage integration tokens for the HTTP endpoint."""


@goals.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def goals_import(file: Path) -> None:
    """Import progress (columns goal_id,value[,recorded_at,note]). All rows or none."""
    from bot.goalsio import import_progress
    from dialogs.engine.clock import SystemClock

    settings = _settings()
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise click.ClickException(f"{file} is not UTF-8 text. Save it as 'CSV UTF-8' and try again.") from None

    async def run(db: Database):  # noqa: ANN202
        return await import_progress(db, text, SystemClock().now())

    count, errors = with_database(settings, run)
    if errors:
        for error in errors:
            click.echo(f"{file}:{error}", err=True)
        raise click.ClickException(f"Nothing was imported: {len(errors)} problem(s) above.")
    click.echo(f"Imported {count} progress value(s).", err=True)


@goals.command("token")
@click.argument("action", type=click.Choice(["create", "revoke"]))
@click.argument("name")
def goals_token(action: str, name: str) -> None:
    """Create (printed once) or revoke the token an integration uses for POST /api/goals/ID/progress."""
    from sqlalchemy import select

    from bot.goalsio import create_token
    from dialogs.engine.clock import SystemClock
    from storage.models import IntegrationToken

    settings = _settings()

    async def run(db: Database) -> str | None:
        if action == "create":
            return await create_token(db, name, SystemClock().now())

        async def revoke(session):  # noqa: ANN001, ANN202
            token = (
                (await session.execute(select(IntegrationToken).where(IntegrationToken.name == name))).scalars().first()
            )
            if token is None:
                raise click.ClickException(f"No integration called {name!r}.")
            token.revoked_at = SystemClock().now()

        await db.run(revoke)
        return None

    try:
        token = with_database(settings, run)
    except Exception as exc:  # IntegrityError for a name in use
        if isinstance(exc, click.ClickException):
            raise
        raise click.ClickException(f"An integration called {name!r} already exists; pick another name.") from None
    if token:
        click.echo(token)
        click.echo("Keep it secret: it is shown only this once.", err=True)
    else:
        click.echo(f"Revoked {name}.", err=True)


# -- keeping it: backups -------------------------------------------------------------------------


@main.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
def backup(file: Path) -> None:
    """Back up the database to FILE, safely while Baton runs (SQLite: online backup; PostgreSQL: pg_dump)."""
    from storage.backup import BackupError, backup_postgres, backup_sqlite, sqlite_path

    settings = _settings()
    try:
        path = sqlite_path(settings.DATABASE_URL)
        if path is not None:
            summary = backup_sqlite(path, file)
            click.echo(f"Backed up {summary.total} rows (schema {summary.revision}) to {file}.", err=True)
        else:
            click.echo("Running pg_dump (a consistent snapshot; Baton keeps running)…", err=True)
            backup_postgres(settings.DATABASE_URL, file)
            click.echo(f"Backed up to {file} (pg_dump custom format; restore with baton restore).", err=True)
    except BackupError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(
        "Keep BATON_SECRET_KEY (or the key file) safe and apart from this file: a restore needs it to open "
        "anonymous answers still sealed.",
        err=True,
    )


@main.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Replace a database that already holds data.")
def restore(file: Path, force: bool) -> None:
    """Replace the database with the backup in FILE (stop Baton first)."""
    from storage.backup import (
        BackupError,
        Summary,
        other_sessions,
        restore_postgres,
        restore_sqlite,
        sqlite_path,
        summarize,
    )
    from storage.db import Database

    settings = _settings()
    try:
        path = sqlite_path(settings.DATABASE_URL)
        if path is not None:
            summary = restore_sqlite(file, path, force=force)
        else:

            async def inspect() -> tuple[Summary, int]:
                db = Database(settings.DATABASE_URL)
                try:
                    return await summarize(db), await other_sessions(db)
                finally:
                    await db.close()

            current, connected = asyncio.run(inspect())
            restore_postgres(settings.DATABASE_URL, file, current=current, connected=connected, force=force)

            async def after() -> Summary:
                db = Database(settings.DATABASE_URL)
                try:
                    return await summarize(db)
                finally:
                    await db.close()

            summary = asyncio.run(after())
    except BackupError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(
        f"Restored {summary.total} rows (schema {summary.revision}). Start Baton to bring the schema up to date.",
        err=True,
    )


# -- a person's data -------------------------------------------------------------------------------


@main.group()
def person() -> None:
    """A person's data on request: export everything Baton holds about them, or erase them."""


@person.command("export")
@click.argument("email")
@click.option("--out", "file", type=click.Path(dir_okay=False, path_type=Path), help="Write to FILE (default: stdout).")
def person_export(email: str, file: Path | None) -> None:
    """Everything Baton holds about EMAIL, as JSON (for a data subject access request)."""
    import json

    from storage.person_data import NoSuchPerson, export

    async def run(db: Database) -> dict:
        return await db.run(lambda session: export(session, email))

    try:
        data = with_database(_settings(), run, must_exist=True)
    except NoSuchPerson as exc:
        raise click.ClickException(str(exc)) from None
    text = json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n"
    if file is None:
        click.echo(text, nl=False)
    else:
        file.write_text(text, encoding="utf-8")
        file.chmod(0o600)
        click.echo(f"Wrote {file}. It holds personal data: hand it over securely and delete your copy.", err=True)


@person.command("erase")
@click.argument("email")
@click.option("--keep-aggregates", is_flag=True, help="Keep pulse numbers and tool outcomes, under no name.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation (scripts).")
def person_erase(email: str, keep_aggregates: bool, yes: bool) -> None:
    """Remove EMAIL's personal data from every table. Cannot be undone."""
    from storage.person_data import NoSuchPerson, erase

    if not yes:
        click.confirm(
            f"Erase everything Baton holds about {email}? This cannot be undone (backups keep what they hold)",
            abort=True,
        )

    async def run(db: Database) -> dict[str, int]:
        changed = await db.run(lambda session: erase(session, email, keep_aggregates=keep_aggregates))
        await db.checkpoint()  # SQLite: out of the WAL too
        return changed

    try:
        changed = with_database(_settings(), run, must_exist=True)
    except NoSuchPerson as exc:
        raise click.ClickException(str(exc)) from None
    detail = ", ".join(f"{table} {count}" for table, count in sorted(changed.items()))
    click.echo(f"Erased {email}. Rows removed or rewritten: {detail}.", err=True)
