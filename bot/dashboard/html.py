"""Small HTML building blocks: every piece of text goes through `esc`, markup is built only here.

`Markup` marks a string as already-safe HTML; anything else handed to `render`
or a table cell is escaped. Tables know their CSV form, so each page's tables
are exported by the very handler (and authorisation) that showed them.
"""

from __future__ import annotations

import csv
import html
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode


class Markup(str):
    """A string of trusted HTML (built by this package, never from user input)."""


def esc(value: Any) -> Markup:
    """`value` as HTML text: Markup passes through, None is empty, everything else is escaped."""
    if isinstance(value, Markup):
        return value
    if value is None:
        return Markup("")
    # Attributes are always double-quoted here, so escaping " (not ') keeps text readable and safe.
    return Markup(html.escape(str(value), quote=False).replace('"', "&quot;"))


def join(parts: Iterable[Any]) -> Markup:
    return Markup("".join(esc(p) for p in parts))


def tag(element: str, /, *children: Any, **attrs: Any) -> Markup:
    """`<name attrs>children</name>`; attribute values are escaped, `class_` → class, True → bare."""
    rendered = []
    for key, value in attrs.items():
        if value is None or value is False:
            continue
        key = key.rstrip("_").replace("_", "-")
        rendered.append(f" {key}" if value is True else f' {key}="{esc(value)}"')
    return Markup(f"<{element}{''.join(rendered)}>{join(children)}</{element}>")


def link(href: str, text: Any, **attrs: Any) -> Markup:
    return tag("a", text, href=href, **attrs)


@dataclass(frozen=True, slots=True)
class Cell:
    """A table cell shown as `html` but exported as `text`."""

    text: str
    html: Markup


@dataclass
class Table:
    """A table on a page. `key` names it in the CSV link (`?csv=key`)."""

    key: str
    caption: str
    headers: Sequence[str]
    rows: list[Sequence[Any]] = field(default_factory=list)
    empty: str = "Nothing here yet."
    note: str | None = None

    def csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(self.headers)
        for row in self.rows:
            writer.writerow([_csv_value(v) for v in row])
        return out.getvalue()

    def html(self, path: str, query: dict[str, str] | None = None) -> Markup:
        params = dict(query or {}) | {"csv": self.key}
        export = link(f"{path}?{urlencode(params)}", "Download CSV", class_="csv", download=f"{self.key}.csv")
        head = tag("div", tag("h2", self.caption, id=f"t-{self.key}"), export, class_="table-head")
        note = tag("p", self.note, class_="note") if self.note else Markup("")
        if not self.rows:
            return tag("section", head, note, tag("p", self.empty, class_="empty"), aria_labelledby=f"t-{self.key}")
        header = tag("tr", *(tag("th", h, scope="col") for h in self.headers))
        body = join(tag("tr", *(tag("td", _cell_html(v), class_=_short(v)) for v in row)) for row in self.rows)
        table = tag("table", tag("thead", header), tag("tbody", body))
        return tag("section", head, note, tag("div", table, class_="scroll"), aria_labelledby=f"t-{self.key}")


def _short(value: Any) -> str | None:
    """Dates, weeks, numbers and one-word statuses never wrap ("2026-W46", not "2026-" / "W46")."""
    text = value.text if isinstance(value, Cell) else value
    if isinstance(text, (int, float)) or (isinstance(text, str) and len(text) <= 16 and " " not in text.strip()):
        return "short"
    return None


def _cell_html(value: Any) -> Markup:
    if value is None:  # no value: a dash on the page, an empty cell in the CSV
        return esc("–")
    if isinstance(value, Cell):
        return value.html
    if isinstance(value, float):
        return esc(f"{value:g}")
    return esc(value)


def _csv_value(value: Any) -> str:
    if isinstance(value, Cell):
        value = value.text
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:g}"
    text = str(value)
    # Spreadsheets run cells starting with these as formulas (CSV injection): keep them text.
    if text[:1] in ("=", "+", "-", "@", "\t", "\r") and not _is_number(text):
        return "'" + text
    return text


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


NAV = (
    ("/dashboard", "Home", "everyone"),
    ("/dashboard/team", "Team", "manager"),
    ("/dashboard/rhythm", "Rhythm", "everyone"),
    ("/dashboard/goals", "Goals", "everyone"),
    ("/dashboard/ideas", "Ideas", "everyone"),
    ("/dashboard/1on1", "1:1s", "everyone"),
    ("/dashboard/retro", "Retros", "everyone"),
    ("/dashboard/360", "360s", "everyone"),
    ("/dashboard/tools", "Tool plans", "everyone"),
    ("/dashboard/org", "Organisation", "admin"),
    ("/dashboard/settings", "Settings", "admin"),
    ("/dashboard/deliveries", "Deliveries", "admin"),
)


def page(title: str, body: Any, *, viewer: Any = None, current: str = "", csrf: str | None = None) -> str:
    """A whole HTML document. `viewer` (signed in) adds the navigation and the sign-out form."""
    nav = Markup("")
    if viewer is not None:
        items = []
        for href, label, audience in NAV:
            if audience == "manager" and not viewer.is_manager:
                continue
            if audience == "admin" and not viewer.is_admin:
                continue
            items.append(tag("li", link(href, label, aria_current="page" if href == current else None)))
        signout = tag(
            "form",
            hidden("csrf", csrf or ""),
            tag("button", "Sign out", type="submit", class_="link"),
            method="post",
            action="/dashboard/logout",
            class_="signout",
        )
        nav = tag(
            "header",
            tag("span", "Baton", class_="brand"),
            tag("nav", tag("ul", *items), aria_label="Dashboard"),
            tag("span", viewer.person.name, class_="who"),
            signout,
        )
    document = "<!doctype html>" + tag(
        "html",
        tag(
            "head",
            Markup('<meta charset="utf-8">'),
            Markup('<meta name="viewport" content="width=device-width, initial-scale=1">'),
            tag("title", f"{title} · Baton"),
            Markup('<link rel="stylesheet" href="/dashboard/static/dashboard.css">'),
        ),
        tag("body", nav, tag("main", tag("h1", title), body, id="main")),
        lang="en",
    )
    return document


def hidden(name: str, value: str) -> Markup:
    return Markup(f'<input type="hidden" name="{esc(name)}" value="{esc(value)}">')


def paragraph(*children: Any, class_: str | None = None) -> Markup:
    return tag("p", *children, class_=class_)
