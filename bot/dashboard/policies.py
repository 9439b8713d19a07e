"""`GET /privacy` and `GET /terms`: the two pages an app directory links to, served by Baton itself.

A Teams app package must name a privacy page and terms of use
(`baton teams package` points at these by default); they say, in a few
plain paragraphs, what this Baton stores, for how long (read from its own
settings, so the page is true of the instance serving it), who sees what
and whom to ask. No sign-in, no data of anyone, nothing loaded from outside.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from bot.dashboard.html import Markup, link, page, paragraph, tag

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def _kept(days: int, what: str) -> str:
    return f"{what}: until someone deletes them" if days == 0 else f"{what}: {days} days"


def _contact(settings: Any) -> Markup:
    contact = (getattr(settings, "BATON_CONTACT", None) or "").strip()
    if not contact:
        return Markup("Ask the person who runs Baton in your organisation (your Baton admin).")
    href = contact if contact.startswith(("https://", "http://", "mailto:")) else f"mailto:{contact}"
    return Markup(f"Ask the people who run Baton here: {link(href, contact)}.")


def privacy_page(settings: Any) -> str:
    items = [
        _kept(settings.BATON_KEEP_CHECKINS_DAYS, "Check-ins and their answers"),
        _kept(settings.BATON_KEEP_FEEDBACK_DAYS, "Feedback and kudos"),
        _kept(settings.BATON_KEEP_GOALS_DAYS, "Goals once done or dropped"),
        f"Messages Baton sent you: {settings.BATON_RETENTION_DAYS} days after delivery",
        "Delivery keys (which messages were already handled): 14 days",
    ]
    body = Markup("").join(
        [
            paragraph(
                "Baton is open-source software that your organisation runs on its own servers. Your organisation "
                "decides what it is used for and is responsible for your data; Baton's authors receive none of it."
            ),
            tag("h2", "What Baton stores"),
            paragraph(
                "Your name, work email, manager, team, time zone, quiet hours and leave; your chat account id and "
                "what Slack or Microsoft Teams needs to send you a message; what you answer or write to Baton "
                "(check-ins, feedback and kudos, goals, requests, tool plans, 360 answers); and the messages Baton "
                "sent you. It does not read your other chats. Anonymous 360 answers are stored sealed and with no "
                "link to you."
            ),
            tag("h2", "Who sees it"),
            paragraph(
                "You. Your manager sees your check-ins and a weekly digest of their team; Baton's admins see "
                "figures for the organisation and which deliveries failed, never an individual 360 answer. The "
                "chat platform carries each message to you; nothing goes to anyone else."
            ),
            tag("h2", "How long"),
            tag("ul", *(tag("li", item) for item in items)),
            paragraph("Released anonymous 360 answers name nobody and are kept."),
            tag("h2", "Your data, on request"),
            paragraph(
                "An admin can export everything Baton holds about you as one file, or erase you from it. ",
                _contact(settings),
            ),
        ]
    )
    return page("Privacy", body)


def terms_page(settings: Any) -> str:
    body = Markup("").join(
        [
            paragraph(
                "Baton asks you a few short questions about your work each week, carries feedback and kudos, "
                "and reminds you of goals, at your own local time and never in your quiet hours. Your organisation "
                "runs it; use it as your organisation's rules for work tools say."
            ),
            paragraph(
                "Baton is open-source software provided under the Apache License 2.0, as is and without "
                "warranty. Write to it about your work, not about anyone's private life: what you write may be "
                "read by your manager (check-ins) or by the person it is about (feedback and kudos)."
            ),
            tag("h2", "Support"),
            paragraph("Type help to Baton in chat to see what it can do. ", _contact(settings)),
        ]
    )
    return page("Terms of use", body)


def setup_policies(app: web.Application, settings: Any) -> None:
    """Serve `/privacy` and `/terms`, rendered once from `settings`."""
    pages = {"/privacy": privacy_page(settings), "/terms": terms_page(settings)}

    for path, text in pages.items():

        async def serve(request: web.Request, text: str = text) -> web.Response:
            return web.Response(text=text, content_type="text/html", charset="utf-8", headers=SECURITY_HEADERS)

        app.router.add_get(path, serve)
