"""Baton's small exception tree. SDK and database errors are mapped onto it at the edges."""

from __future__ import annotations


class BatonError(Exception):
    """Base of every error Baton raises on purpose."""


class UserFacingError(BatonError):
    """A handler refuses input; `message` is polite, safe to show, and free of user content. State is kept."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UnknownPerson(BatonError):
    """The sender maps to nobody in the organisation."""


class ConfigurationError(BatonError):
    """A setting is missing or wrong; the message names it and says what to do."""
