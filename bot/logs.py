"""Logging for `baton serve` and the CLI: readable lines or JSON, with the same silences either way.

Baton's own log lines name what happened and to which id, never what a
person wrote. What could leak it is silenced here, whatever the level:
platform SDKs and HTTP clients log whole request bodies at DEBUG, and the
database drivers log statements with their parameters (storage/db.py caps
those too). APScheduler's three INFO lines per tick and aiohttp's access log
(which would carry sign-in tokens in query strings) are silenced as well.
"""

from __future__ import annotations

import logging
import sys

from pythonjsonlogger.json import JsonFormatter

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Loggers that print bodies (what people wrote) below INFO.
CHATTY = ("slack_bolt", "slack_sdk", "microsoft_agents", "msal", "aiohttp.client")
QUIET = ("aiohttp.access", "alembic", "apscheduler")  # access lines carry query strings; the others are noise


def configure(level: str, fmt: str = "text") -> None:
    """Send records at `level` and above to stderr, as text lines or (fmt="json") one JSON object per line."""
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s",
                rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
                json_ensure_ascii=False,
            )
        )
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for name in QUIET:
        logging.getLogger(name).setLevel(logging.WARNING)
    for name in CHATTY:
        logging.getLogger(name).setLevel(max(logging.INFO, logging.getLogger(name).level))
