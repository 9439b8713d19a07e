"""The manager and HR dashboard under /dashboard: signed in through a chat link, rendered on the server.

Routes (all under /dashboard):
  GET  /login?token=…        a page with one button that signs in with the chat link; spends nothing
                             (a link scanner that opens it leaves it for the person)
  POST /login                spend the link (form field `token`), open a session, redirect to /dashboard;
                             refused when another site sends it
  GET  /signin               how to sign in (where a visit without a session lands)
  POST /logout               revoke the session (CSRF-checked)
  GET  /, /people/{id}, /team, /goals, /360, /360/{id}, /tools, /org, /settings, /deliveries,
       /rhythm?team=ID       pages; `?csv=<table>` downloads one of the page's tables
  GET  /1on1, /1on1/{pair}   one's 1:1s, and a pair's page (its two people only)
  GET  /retro, /retro/{id}   the team's retro history and story log, a retro's page (its team and their managers)
  GET  /1on1/{pair}.csv      the pair's meetings, talking points, actions and one's own private notes
  GET  /1on1/{pair}/invite.ics   the pair's recurring invitation
  POST /settings/teams/{id}  change a team's rhythm (admins, CSRF-checked)
  GET  /static/*             the stylesheet (no CDN, no script)

And outside /dashboard, without sign-in: GET /1on1/invite/{token}.ics, the invitation link chat hands
out (a keyed hash of the pair and its rhythm; names and times only).

Log lines name the route and the status only — never a token, a query string
or anything a person wrote.

`setup_dashboard` also makes every response of the application say `Server:
Baton`, not aiohttp's and Python's versions (`hide_server_version`).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

from aiohttp import hdrs, web
from sqlalchemy.ext.asyncio import AsyncSession

from bot.dashboard import auth, ideas, oneonone, retro, rhythm, views
from bot.dashboard.html import Markup, esc, hidden, link, page, paragraph, tag
from bot.dashboard.views import Ctx, Forbidden, NotFound, Site, View
from dialogs.common.invite import INVITE_PATH
from dialogs.signin import LOGIN_PATH
from storage.db import DatabaseUnavailable
from storage.queries import as_id

T = TypeVar("T")

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
SECURITY_HEADERS = {
    # No script at all; styles only from our own file; forms only back to us; never framed.
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
}
HOW_TO_SIGN_IN = (
    "To open your dashboard, type dashboard to Baton in chat (Slack, Teams or the local web chat). "
    "Baton replies with a personal link that works once, within 10 minutes."
)

SERVER_NAME = "Baton"  # what the Server header says instead of "Python/3.x aiohttp/x.y"
# Sec-Fetch-Site values of a sign-in posted from Baton's own page (`none`: a browser that
# does not say, or a person who typed it); absent: not a browser.
OWN_FETCH_SITES = frozenset({"same-origin", "none"})

PageFn = Callable[[Ctx], Awaitable[View]]


def _html(body: str, status: int = 200) -> web.Response:
    return web.Response(text=body, status=status, content_type="text/html", charset="utf-8", headers=SECURITY_HEADERS)


def _redirect(location: str) -> web.Response:
    return web.Response(status=303, headers=SECURITY_HEADERS | {"Location": location})


def _to_signin(request: web.Request) -> web.Response:
    """Where a visit without a session goes: how to sign in, remembering the page that was asked for."""
    target = "/dashboard/signin"
    if request.path != "/dashboard":
        target += "?next=" + quote(request.path, safe="/")
    return _redirect(target)


def _attachment(file: oneonone.File) -> web.Response:
    return web.Response(
        body=file.body,
        content_type=file.content_type,
        charset="utf-8",
        headers=SECURITY_HEADERS | {"Content-Disposition": f'attachment; filename="{file.filename}"'},
    )


def _message(title: str, *paragraphs: object, status: int, viewer: auth.Viewer | None = None) -> web.Response:
    body = Markup("".join(paragraph(p) for p in paragraphs))
    return _html(page(title, body, viewer=viewer, csrf=viewer.csrf if viewer else None), status)


def refused_link() -> web.Response:
    return _message(
        "This sign-in link is not valid",
        "It may have been used already or be more than 10 minutes old: each link works once, for 10 minutes, for the person it was sent to.",
        Markup(f"To get a new one, type {tag('kbd', 'dashboard')} to Baton in chat and open the link it sends you."),
        status=403,
    )


def confirm_link(token: str) -> web.Response:
    """The page a sign-in link opens: one button that posts the token back. Opening it spends nothing,
    so a chat app's link scanner or preview leaves the link for the person it was sent to."""
    body = Markup(
        paragraph(
            "This link signs you in to Baton's dashboard on this browser. It works once, so it waits for you to "
            "press the button: apps that look at links before you do can't use it up."
        )
        + tag(
            "form",
            hidden("token", token),
            tag("button", "Open your dashboard", type="submit"),
            method="post",
            action=LOGIN_PATH,
            class_="signin",
        )
        + paragraph("The session lasts 8 hours or until you sign out.", class_="note")
    )
    return _html(page("Open your dashboard", body))


def from_elsewhere() -> web.Response:
    return _message(
        "This sign-in came from another site",
        "Baton signs you in only from its own sign-in page, so nothing happened and your link still works.",
        "Open the link from your chat with Baton again and press the button there.",
        status=403,
    )


def _from_another_site(request: web.Request) -> bool:
    """A form posted by another site's page (login CSRF), by the browser's own account of it.

    `Sec-Fetch-Site` decides when the browser sends it (every current one does): a proxy in front
    cannot blur it. Without it, an `Origin` naming another host than the request's refuses; `Origin:
    null` does not, since browsers send it for a form on a page with Referrer-Policy no-referrer, as
    every dashboard page has. The scheme is not compared: behind a TLS proxy Baton may see plain HTTP.
    """
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None:
        return site.lower() not in OWN_FETCH_SITES
    origin = request.headers.get(hdrs.ORIGIN)
    if origin is None or origin == "null":
        return False
    authority = origin.partition("://")[2].lower()
    ours = {request.headers.get(name, "").lower() for name in (hdrs.HOST, hdrs.X_FORWARDED_HOST)}
    return not authority or authority not in ours


async def hide_server_version(request: web.Request, response: web.StreamResponse) -> None:
    """`on_response_prepare`: name no software version in the Server header (aiohttp adds its own otherwise)."""
    response.headers[hdrs.SERVER] = SERVER_NAME


def forbidden(viewer: auth.Viewer | None) -> web.Response:
    return _message(
        "Not yours to see",
        "This page belongs to someone else's data or to a role you don't have, so it isn't shown.",
        Markup(f"Back to {link('/dashboard', 'your dashboard')}."),
        status=403,
        viewer=viewer,
    )


@web.middleware
async def _log_route(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    if not request.path.startswith("/dashboard"):
        return await handler(request)
    route = request.match_info.route.resource.canonical if request.match_info.route.resource else "?"
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        log.info("dashboard %s %s -> %d", request.method, route, exc.status)
        raise
    except Exception as exc:  # noqa: BLE001 - only the type: a message could carry what someone wrote
        log.error("dashboard %s %s -> 500 (%s)", request.method, route, type(exc).__name__)
        return _message(
            "Something went wrong", "Baton couldn't show this page. Please try again in a moment.", status=500
        )
    log.info("dashboard %s %s -> %d", request.method, route, response.status)
    return response


class RedactTokens(logging.Filter):
    """Blanks sign-in tokens and 1:1 invitation tokens in access-log lines (`baton serve` turns the access
    log off; others may not)."""

    PATTERN = re.compile(r"(token=|" + re.escape(INVITE_PATH + "/") + r")[^\s&\"/?.]+")
    MARKS = ("token=", INVITE_PATH + "/")

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str) and any(m in record.msg for m in self.MARKS):
            record.msg = self.PATTERN.sub(r"\1[redacted]", record.msg)
        if isinstance(record.args, tuple) and any(
            isinstance(a, str) and any(m in a for m in self.MARKS) for a in record.args
        ):
            record.args = tuple(self.PATTERN.sub(r"\1[redacted]", a) if isinstance(a, str) else a for a in record.args)
        return True


def setup_dashboard(app: web.Application, site: Site) -> None:
    """Add the dashboard's routes to `app` (called by create_app before the app starts), and keep
    the software's version out of every response of `app` (`hide_server_version`)."""
    app.middlewares.append(_log_route)
    app.on_response_prepare.append(hide_server_version)
    access = logging.getLogger("aiohttp.access")
    if not any(isinstance(f, RedactTokens) for f in access.filters):
        access.addFilter(RedactTokens())

    async def viewer_of(request: web.Request, session) -> auth.Viewer | None:  # noqa: ANN001
        return await auth.load_viewer(session, request.cookies.get(auth.COOKIE), site.clock.now())

    async def signed_in(
        request: web.Request,
        build: Callable[[Ctx], Awaitable[T]],
        context: Callable[[web.Request, Any, auth.Viewer], Ctx],
    ) -> web.StreamResponse | tuple[auth.Viewer, T]:
        """What every GET of the dashboard shares: the signed-in viewer, one read transaction, and the same
        answers for no session (sign in), someone else's page (403), nothing there (404) and no database (503)."""

        async def work(session: AsyncSession) -> tuple[auth.Viewer | None, T | None, str | None]:
            viewer = await viewer_of(request, session)
            if viewer is None:
                return None, None, None
            try:
                return viewer, await build(context(request, session, viewer)), None
            except Forbidden:
                return viewer, None, "forbidden"
            except NotFound:
                return viewer, None, "missing"

        try:
            viewer, built, problem = await site.db.run(work)
        except DatabaseUnavailable:
            return _message("Baton can't reach its database", "Please try again in a moment.", status=503)
        if viewer is None:
            return _to_signin(request)
        if problem == "forbidden":
            return forbidden(viewer)
        if built is None:
            return _message("Not found", "There is nothing at this address.", status=404, viewer=viewer)
        return viewer, built

    def view(
        build: Callable[[Ctx, web.Request], Awaitable[View]],
    ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        """A GET page: signed-in viewer, one read transaction, HTML or `?csv=` for one of its tables."""

        async def handler(request: web.Request) -> web.StreamResponse:
            needs = getattr(build, "participation_page", None)
            prefetched: dict[str, dict] = {}
            if needs:
                # Participation opens its own transactions: gather it first, outside the page's one.
                async def teams(session) -> tuple[auth.Viewer | None, list[str]]:  # noqa: ANN001
                    viewer = await viewer_of(request, session)
                    return viewer, await views.participation_teams(session, viewer, needs) if viewer else []

                try:
                    viewer, names = await site.db.run(teams)
                    if viewer is not None and names:
                        weeks = views.weeks_of(request)
                        prefetched = await views.fetch_participation(site, names, weeks, site.clock.now())
                except DatabaseUnavailable:
                    return _message("Baton can't reach its database", "Please try again in a moment.", status=503)

            built_or_refusal = await signed_in(
                request,
                lambda ctx: build(ctx, request),
                lambda r, session, viewer: Ctx(r, session, viewer, site.clock.now(), site, prefetched),
            )
            if isinstance(built_or_refusal, web.StreamResponse):
                return built_or_refusal
            viewer, built = built_or_refusal
            wanted = request.query.get("csv")
            if wanted is not None:
                table = built.tables.get(wanted)
                if table is None:
                    return _message("No such table", "This page has no table by that name.", status=404, viewer=viewer)
                filename = f"baton-{request.path.strip('/').replace('/', '-')}-{wanted}.csv"
                return web.Response(
                    body=table.csv().encode("utf-8-sig"),  # the BOM makes Excel read UTF-8 names correctly
                    content_type="text/csv",
                    charset="utf-8",
                    headers=SECURITY_HEADERS | {"Content-Disposition": f'attachment; filename="{filename}"'},
                )
            parts = [p.html(request.path, built.query) if isinstance(p, views.Table) else p for p in built.parts]
            body = Markup("".join(esc(p) for p in parts))
            return _html(page(built.title, body, viewer=viewer, current=built.current, csrf=viewer.csrf))

        return handler

    def download(
        build: Callable[[Ctx, web.Request], Awaitable[oneonone.File]],
    ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        """A GET file (CSV, .ics): the same sign-in, transaction and refusals as a page, then an attachment."""

        async def handler(request: web.Request) -> web.StreamResponse:
            file_or_refusal = await signed_in(
                request,
                lambda ctx: build(ctx, request),
                lambda r, session, viewer: Ctx(r, session, viewer, site.clock.now(), site),
            )
            if isinstance(file_or_refusal, web.StreamResponse):
                return file_or_refusal
            _, file = file_or_refusal
            return _attachment(file)

        return handler

    def person_id_of(request: web.Request) -> int:
        raw = request.match_info["person_id"]
        if not raw.isdigit() or len(raw) > 18:
            raise Forbidden
        return int(raw)

    async def home(ctx: Ctx, request: web.Request) -> View:
        return await views.person_page(ctx, ctx.viewer.id)

    async def person(ctx: Ctx, request: web.Request) -> View:
        return await views.person_page(ctx, person_id_of(request))

    def pair_id_of(request: web.Request) -> int:
        raw = request.match_info["pair_id"]
        if not raw.isdigit() or len(raw) > 18:
            raise Forbidden
        return int(raw)

    async def one_on_ones(ctx: Ctx, request: web.Request) -> View:
        return await oneonone.list_page(ctx)

    async def pair_page(ctx: Ctx, request: web.Request) -> View:
        return await oneonone.pair_page(ctx, pair_id_of(request))

    async def retros(ctx: Ctx, request: web.Request) -> View:
        return await retro.retros_page(ctx)

    async def retro_page(ctx: Ctx, request: web.Request) -> View:
        raw = request.match_info["retro_id"]
        if not raw.isdigit() or len(raw) > 18:
            raise Forbidden
        return await retro.retro_page(ctx, int(raw))

    async def pair_csv(ctx: Ctx, request: web.Request) -> oneonone.File:
        return await oneonone.pair_csv(ctx, pair_id_of(request))

    async def pair_ics(ctx: Ctx, request: web.Request) -> oneonone.File:
        return await oneonone.pair_ics(ctx, pair_id_of(request))

    async def invite(request: web.Request) -> web.StreamResponse:
        """The invitation link chat hands out: no sign-in, the token is the capability (names and times only)."""
        token = request.match_info["token"]
        sealer = site.sealer

        async def work(session) -> oneonone.File | None:  # noqa: ANN001
            return None if sealer is None else await oneonone.invite_file(session, sealer, token, site.clock.now())

        try:
            file = await site.db.run(work)
        except DatabaseUnavailable:
            return web.Response(
                text="Baton can't reach its database. Please try again in a moment.",
                status=503,
                headers=SECURITY_HEADERS,
            )
        if file is None:
            return web.Response(text=oneonone.STALE_INVITE, status=404, charset="utf-8", headers=SECURITY_HEADERS)
        return _attachment(file)

    async def review(ctx: Ctx, request: web.Request) -> View:
        raw = request.match_info["campaign_id"]
        if not raw.isdigit() or len(raw) > 18:
            raise Forbidden
        return await views.review_page(ctx, int(raw))

    def plain(
        fn: Callable[[Ctx], Awaitable[View]], participation_page: str | None = None
    ) -> Callable[[Ctx, web.Request], Awaitable[View]]:
        async def build(ctx: Ctx, request: web.Request) -> View:
            return await fn(ctx)

        build.participation_page = participation_page  # type: ignore[attr-defined]
        return build

    async def open_link(request: web.Request) -> web.StreamResponse:
        token = request.query.get("token", "")

        async def work(session) -> bool:  # noqa: ANN001
            return await auth.token_usable(session, token, site.clock.now())

        if not await site.db.run(work):
            return refused_link()  # spent, expired or never issued: say so now, not after a click
        return confirm_link(token)

    async def login(request: web.Request) -> web.StreamResponse:
        if _from_another_site(request):
            return from_elsewhere()
        form = await request.post()
        token = form.get("token")

        async def work(session) -> str | None:  # noqa: ANN001
            return await auth.exchange_token(session, token if isinstance(token, str) else "", site.clock.now())

        session_id = await site.db.run(work)
        if session_id is None:
            return refused_link()
        response = _redirect("/dashboard")
        auth.set_session_cookie(response, request, session_id)
        return response

    async def signin(request: web.Request) -> web.StreamResponse:
        signed_out = request.query.get("out") == "1"
        return _message(
            "Signed out" if signed_out else "Sign in to Baton's dashboard",
            "You are signed out of the dashboard on this browser."
            if signed_out
            else "There is no password to remember.",
            Markup(
                f"To open your dashboard, type {tag('kbd', 'dashboard')} to Baton in chat (Slack, Teams or the local web chat)."
            ),
            "Baton replies with a personal link that works once, within 10 minutes. Open it in this browser and press "
            "the button it shows, and you are in; the session lasts 8 hours or until you sign out.",
            status=200,
        )

    async def csrf_checked(request: web.Request) -> tuple[auth.Viewer | None, dict[str, str], web.Response | None]:
        form = {k: v for k, v in (await request.post()).items() if isinstance(v, str)}

        async def work(session) -> auth.Viewer | None:  # noqa: ANN001
            return await viewer_of(request, session)

        viewer = await site.db.run(work)
        if viewer is None:
            return None, form, _message("Not signed in", HOW_TO_SIGN_IN, status=403)
        if not auth.csrf_ok(viewer, form.get("csrf")):
            return (
                viewer,
                form,
                _message(
                    "This form has expired",
                    "The form was missing its security token or came from another page, so nothing was changed. "
                    "Reload the page and try again.",
                    status=403,
                    viewer=viewer,
                ),
            )
        return viewer, form, None

    async def logout(request: web.Request) -> web.StreamResponse:
        viewer, _, refused = await csrf_checked(request)
        if refused is not None:
            return refused
        assert viewer is not None

        async def work(session) -> None:  # noqa: ANN001
            await auth.revoke(session, viewer.session_id, site.clock.now())

        await site.db.run(work)
        response = _redirect("/dashboard/signin?out=1")
        auth.clear_session_cookie(response, request)
        return response

    async def save_rhythm(request: web.Request) -> web.StreamResponse:
        viewer, form, refused = await csrf_checked(request)
        if refused is not None:
            return refused
        assert viewer is not None
        if not viewer.is_admin:
            return forbidden(viewer)
        raw = request.match_info["team_id"]
        team_id = int(raw) if raw.isdigit() and len(raw) < 18 else -1
        try:
            values = views.parse_rhythm(form)
        except ValueError as exc:
            message = str(exc)

            async def again(session) -> View:  # noqa: ANN001
                ctx = Ctx(request, session, viewer, site.clock.now(), site)
                return await views.settings_page(ctx, errors={team_id: (f"Nothing was saved — {message}.", form)})

            built = await site.db.run(again)
            parts = [p.html("/dashboard/settings") if isinstance(p, views.Table) else p for p in built.parts]
            return _html(
                page(
                    built.title,
                    Markup("".join(esc(p) for p in parts)),
                    viewer=viewer,
                    current=built.current,
                    csrf=viewer.csrf,
                ),
                400,
            )

        async def work(session) -> bool:  # noqa: ANN001
            from storage.models import Team

            team = await session.get(Team, team_id)
            if team is None:
                return False
            for key, value in values.items():
                setattr(team, key, value)
            session.add(team)
            return True

        if not await site.db.run(work):
            return _message("Not found", "There is no such team.", status=404, viewer=viewer)
        log.info("dashboard: team %d rhythm changed by person %d", team_id, viewer.id)
        return _redirect(f"/dashboard/settings?saved={team_id}")

    async def close_review(request: web.Request) -> web.StreamResponse:
        viewer, _, refused = await csrf_checked(request)
        if refused is not None:
            return refused
        assert viewer is not None
        campaign_id = as_id(request.match_info["campaign_id"]) or -1

        async def work(session) -> bool:  # noqa: ANN001
            return await views.close_review(session, viewer, campaign_id, site.clock.now())

        if not await site.db.run(work):
            return forbidden(viewer)
        log.info("dashboard: 360 %d closed early by person %d", campaign_id, viewer.id)
        return _redirect(f"/dashboard/360/{campaign_id}")

    app.router.add_get("/dashboard/login", open_link)
    app.router.add_post("/dashboard/login", login)
    app.router.add_get("/dashboard/signin", signin)
    app.router.add_post("/dashboard/logout", logout)
    app.router.add_get("/dashboard", view(home))
    app.router.add_get("/dashboard/", view(home))
    app.router.add_get("/dashboard/people/{person_id}", view(person))
    app.router.add_get("/dashboard/team", view(plain(views.team_page, "team")))
    app.router.add_get("/dashboard/goals", view(plain(views.goals_page)))
    app.router.add_get("/dashboard/ideas", view(plain(ideas.ideas_page)))
    app.router.add_get("/dashboard/360", view(plain(views.reviews_page)))
    app.router.add_get("/dashboard/360/{campaign_id}", view(review))
    app.router.add_get("/dashboard/1on1", view(one_on_ones))
    # `[^/.]+`: "12.csv" is the CSV route's, not a pair id the page refuses.
    app.router.add_get("/dashboard/1on1/{pair_id:[^/.]+}", view(pair_page))
    app.router.add_get("/dashboard/1on1/{pair_id:[^/.]+}.csv", download(pair_csv))
    app.router.add_get("/dashboard/1on1/{pair_id:[^/.]+}/invite.ics", download(pair_ics))
    app.router.add_get(INVITE_PATH + "/{token:[^/.]+}.ics", invite)
    app.router.add_get("/dashboard/retro", view(retros))
    app.router.add_get("/dashboard/retro/{retro_id}", view(retro_page))
    app.router.add_get("/dashboard/tools", view(plain(views.tools_page)))
    app.router.add_get("/dashboard/org", view(plain(views.org_page, "org")))
    app.router.add_get("/dashboard/settings", view(plain(views.settings_page)))
    app.router.add_get("/dashboard/rhythm", view(plain(rhythm.rhythm_page)))
    app.router.add_get("/dashboard/deliveries", view(plain(views.deliveries_page)))
    app.router.add_post("/dashboard/settings/teams/{team_id}", save_rhythm)
    app.router.add_post("/dashboard/360/{campaign_id}/close", close_review)
    app.router.add_static("/dashboard/static/", STATIC, show_index=False)
