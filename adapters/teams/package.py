"""`baton teams package`: a sideloadable Teams app package — manifest.json and two icons Baton draws itself.

The icons are generated here (no image library, no files in the repository):
a white conductor's baton on Baton's accent colour at 192×192, and the same
baton in white on transparent at 32×32 for the outline icon, as Teams asks.

The manifest follows schema v1.30, the newest GA schema (August 2026); tests
validate every package against its file, as published in Microsoft's
@microsoft/app-manifest package (1.1.2).

Teams lists at most ten commands per scope. Baton has more, so the menu
keeps the ten in `COMMAND_ORDER` and `baton teams package` names the rest
(`LEFT_OUT` says why): never dropped without a word, and every command
still works when typed.
"""

from __future__ import annotations

import json
import math
import os
import re
import struct
import tempfile
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

MANIFEST_VERSION = "1.30"
MANIFEST_SCHEMA = (
    f"https://developer.microsoft.com/en-us/json-schemas/teams/v{MANIFEST_VERSION}/MicrosoftTeams.schema.json"
)
ACCENT = (0x3B, 0x5B, 0xDB)
ACCENT_HEX = "#3B5BDB"
COLOR_ICON, OUTLINE_ICON = "color.png", "outline.png"

MAX_COMMANDS = 10  # Teams shows at most ten commands per scope
# The menu, most useful first: what people do weekly, then what they do now and then.
COMMAND_ORDER = ("help", "checkin", "1:1", "goals", "feedback", "kudos", "idea", "leave", "tools", "360")
LEFT_OUT = {
    "dashboard": "it sends a sign-in link to the browser dashboard rather than starting a conversation; help lists it",
    "ask": "a feedback request is also offered from *feedback*, which is in the menu",
    "settings": "set once and rarely again; help lists it",
    "retro": "a manager starts one a few times a quarter; everyone else is invited to it",
    "team": "for managers, a few times a year; help lists it",
}

_GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")


def validate_app_id(app_id: str) -> str:
    """The app id as Teams wants it (a GUID), or ValueError saying where to find it."""
    value = app_id.strip()
    if not _GUID.fullmatch(value):
        raise ValueError(
            f"--app-id {app_id!r} is not a Microsoft App ID: expected a GUID like 00000000-0000-0000-0000-000000000000 "
            "(Azure portal → your Azure Bot → Configuration → Microsoft App ID)."
        )
    return value.lower()


def validate_host(host: str) -> str:
    """The public host name Teams reaches Baton at, or ValueError explaining what is expected."""
    value = host.strip().lower().rstrip(".")
    hint = "Give the public host name only, e.g. --host baton.example.com"
    if "://" in value or "/" in value:
        raise ValueError(f"--host {host!r} should be a host name, not a URL. {hint}.")
    if ":" in value:
        raise ValueError(f"--host {host!r} carries a port; Teams reaches bots on https (443). {hint}.")
    labels = value.split(".")
    if len(labels) < 2 or not all(_LABEL.fullmatch(label) for label in labels) or labels[-1].isdigit():
        raise ValueError(
            f"--host {host!r} is not a public host name (an IP address or 'localhost' won't do for Teams). {hint}."
        )
    return value


def commands() -> tuple[list[dict[str, str]], list[tuple[str, str]]]:
    """The command menu (at most ten, in `COMMAND_ORDER`) and the commands left out of it, each with why."""
    from dialogs import all_dialogs

    available = {"help": "What I can do for you."}
    for dialog in all_dialogs():
        if dialog.commands and dialog.audience == "everyone":
            available[dialog.commands[0][:32]] = dialog.summary[:128]
    ranked = [name for name in COMMAND_ORDER if name in available]
    ranked += sorted(name for name in available if name not in COMMAND_ORDER)
    menu = [{"title": name, "description": available[name]} for name in ranked[:MAX_COMMANDS]]
    left_out = [
        (name, LEFT_OUT.get(name, "Teams shows ten commands and it ranks below them")) for name in ranked[MAX_COMMANDS:]
    ]
    return menu, left_out


def manifest(app_id: str, host: str, *, privacy_url: str | None = None, terms_url: str | None = None) -> dict[str, Any]:
    """manifest.json for a personal-scope bot with Baton's commands.

    The privacy and terms links default to the pages Baton serves itself (`/privacy`, `/terms`).
    """
    privacy = privacy_url or f"https://{host}/privacy"
    terms = terms_url or f"https://{host}/terms"
    menu, _ = commands()
    return {
        "$schema": MANIFEST_SCHEMA,
        "manifestVersion": MANIFEST_VERSION,
        "version": _version(),
        "id": app_id,
        "developer": {"name": "Baton", "websiteUrl": terms, "privacyUrl": privacy, "termsOfUseUrl": terms},
        "name": {"short": "Baton", "full": "Baton: weekly check-ins for your team"},
        "description": {
            "short": "Weekly check-ins, feedback and nudges that keep your team in time.",
            "full": (
                "Baton asks each person a few short questions once a week, at their own local time and never in "
                "their quiet hours, and gives managers a digest of progress, blockers and pulse. Type help to start."
            ),
        },
        "icons": {"color": COLOR_ICON, "outline": OUTLINE_ICON},
        "accentColor": ACCENT_HEX,
        "bots": [
            {
                "botId": app_id,
                "scopes": ["personal"],
                "supportsFiles": False,
                "isNotificationOnly": False,
                "commandLists": [{"scopes": ["personal"], "commands": menu}],
            }
        ],
        "permissions": ["identity", "messageTeamMembers"],
        "validDomains": [host],
    }


def validate_page_url(option: str, url: str | None) -> str | None:
    """An https URL for a privacy or terms page, or ValueError saying what is expected."""
    if url is None:
        return None
    value = url.strip()
    if not value.startswith("https://") or len(value) > 2048 or " " in value:
        raise ValueError(f"{option} {url!r} must be an https:// URL that Teams users can open.")
    return value


def write_package(
    *, app_id: str, host: str, out: Path, privacy_url: str | None = None, terms_url: str | None = None
) -> Path:
    """Write the zip Teams sideloads (manifest.json, color.png, outline.png) to `out`. ValueError on bad input."""
    app_id, host = validate_app_id(app_id), validate_host(host)
    privacy_url = validate_page_url("--privacy-url", privacy_url)
    terms_url = validate_page_url("--terms-url", terms_url)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    document = manifest(app_id, host, privacy_url=privacy_url, terms_url=terms_url)
    files = {
        "manifest.json": json.dumps(document, indent=2, ensure_ascii=False).encode(),
        COLOR_ICON: color_icon(),
        OUTLINE_ICON: outline_icon(),
    }
    handle, temporary = tempfile.mkstemp(dir=out.parent, prefix=".baton-teams-", suffix=".zip")
    os.close(handle)
    try:
        with zipfile.ZipFile(temporary, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for name, data in files.items():
                archive.writestr(name, data)
        os.replace(temporary, out)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return out


# -- icons --------------------------------------------------------------------------------------------


def color_icon(size: int = 192) -> bytes:
    """The 192×192 colour icon: a white baton on the accent colour (the symbol inside the central safe area)."""
    shape = _baton(inset=0.25)
    return png(size, size, lambda x, y: _over((*ACCENT, 255), (255, 255, 255), shape(x, y, size)))


def outline_icon(size: int = 32) -> bytes:
    """The 32×32 outline icon: the same baton, white on transparent."""
    shape = _baton(inset=0.1)
    return png(size, size, lambda x, y: (255, 255, 255, round(255 * shape(x, y, size))))


def _baton(inset: float) -> Callable[[int, int, int], float]:
    """Coverage (0–1) of a baton: a thick stroke from lower left to upper right with a round grip."""
    start, end = (inset + 0.08, 1 - inset - 0.08), (1 - inset, inset)
    grip = (inset + 0.1, 1 - inset - 0.1)

    def coverage(x: int, y: int, size: int) -> float:
        px, py = (x + 0.5) / size, (y + 0.5) / size
        stick = _segment_distance(px, py, start, end) - (1 - 2 * inset) * 0.055
        knob = math.hypot(px - grip[0], py - grip[1]) - (1 - 2 * inset) * 0.13
        distance = min(stick, knob) * size  # signed distance in pixels; antialias over one pixel
        return min(1.0, max(0.0, 0.5 - distance))

    return coverage


def _segment_distance(px: float, py: float, a: tuple[float, float], b: tuple[float, float]) -> float:
    ax, ay = a
    dx, dy = b[0] - ax, b[1] - ay
    t = max(0.0, min(1.0, ((px - ax) * dx + (py - ay) * dy) / (dx * dx + dy * dy)))
    return math.hypot(px - (ax + t * dx), py - (ay + t * dy))


def _over(
    background: tuple[int, int, int, int], colour: tuple[int, int, int], alpha: float
) -> tuple[int, int, int, int]:
    r, g, b = (round(c * alpha + under * (1 - alpha)) for c, under in zip(colour, background[:3], strict=True))
    return (r, g, b, background[3])


def png(width: int, height: int, pixel: Callable[[int, int], tuple[int, int, int, int]]) -> bytes:
    """A minimal RGBA PNG (8 bits per channel, no filtering) from a pixel function."""
    rows = bytearray()
    for y in range(height):
        rows.append(0)  # filter type: none
        for x in range(width):
            rows.extend(pixel(x, y))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(bytes(rows), 9))
        + chunk(b"IEND", b"")
    )


def _version() -> str:
    try:
        from importlib.metadata import PackageNotFoundError, version

        raw = version("baton")
    except PackageNotFoundError:  # not installed as a distribution (running from a checkout)
        raw = "0.1.0"
    parts = ([*re.findall(r"\d+", raw), "0", "0", "0"])[:3]
    return ".".join(parts)
