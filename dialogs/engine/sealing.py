"""Sealing: authenticated encryption and keyed hashes under one secret that never enters the database.

Baton's secret (`BATON_SECRET_KEY`, or a file beside a local SQLite database)
is given to a `Sealer` at start. Everything sealed is derived from it per
*scope* (for example one 360 campaign) with HKDF-SHA256, encrypted with
AES-256-GCM under a fresh random nonce, and padded to a fixed size before
encryption, so a ciphertext's length says nothing about what it holds. The
`context` (associated data) binds a ciphertext to where it belongs — a person's
draft cannot be moved to another person or another campaign and still open.

`tag()` is a keyed hash (HMAC-SHA256) for identifiers that must be compared
but not read, such as inbound delivery keys that name their sender.

Someone who reads the database, its backups or its WAL without the secret sees
only ciphertext and tags. Someone running code inside the live server is out
of scope: the server must read answers to release them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import struct
from functools import lru_cache
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

SECRET_BYTES = 32
_NONCE = 12
_LENGTH = struct.Struct(">I")


def plain_json(value: Any) -> bytes:
    """`value` as the compact UTF-8 JSON that is padded and sealed."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def sealed_size(plain: bytes, step: int) -> int:
    """The smallest multiple of `step` that `plain` (from `plain_json`) fits into when padded."""
    return -(-(len(plain) + _LENGTH.size) // step) * step


class SealError(Exception):
    """A sealed value could not be opened: another secret, another scope or context, or tampering."""


class Sealer:
    """Seals and opens values, and tags identifiers, under one secret."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) < SECRET_BYTES:
            raise ValueError(f"the secret needs at least {SECRET_BYTES} bytes")
        self._secret = secret
        self._derive = lru_cache(maxsize=1024)(self._derive_uncached)
        self._tag_key = self._derive("tag")

    @classmethod
    def ephemeral(cls) -> Sealer:
        """A sealer with a random secret that lives only in this process (tests, one-off tools)."""
        return cls(os.urandom(SECRET_BYTES))

    def _derive_uncached(self, scope: str) -> bytes:
        hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"baton-sealing-v1", info=scope.encode())
        return hkdf.derive(self._secret)

    def tag(self, value: str) -> str:
        """A keyed hash of `value`: equal values give equal tags; without the secret it names nothing."""
        return hmac.new(self._tag_key, value.encode(), hashlib.sha256).hexdigest()

    def seal(self, scope: str, value: Any, *, size: int, context: str = "") -> str:
        """`value` (JSON-able) encrypted under `scope`'s key, padded to `size` bytes first, as URL-safe text.

        Raises ValueError when the value does not fit: sizes are chosen so that
        everything a person may send fits, and a silent truncation would lose it.
        """
        return base64.urlsafe_b64encode(self.seal_bytes(scope, value, size=size, context=context)).decode()

    def seal_bytes(self, scope: str, value: Any, *, size: int, context: str = "") -> bytes:
        """As `seal`, as raw bytes (nonce, then ciphertext and tag) for a binary column: a third smaller."""
        return self.seal_plain(scope, plain_json(value), size=size, context=context)

    def seal_plain(self, scope: str, plain: bytes, *, size: int, context: str = "") -> bytes:
        """As `seal_bytes`, for a value already serialised with `plain_json` (whose length chose `size`)."""
        if len(plain) + _LENGTH.size > size:
            raise ValueError(f"a sealed value takes at most {size - _LENGTH.size} bytes, not {len(plain)}")
        padded = _LENGTH.pack(len(plain)) + plain + bytes(size - _LENGTH.size - len(plain))
        nonce = os.urandom(_NONCE)
        return nonce + AESGCM(self._derive(scope)).encrypt(nonce, padded, context.encode())

    def open(self, scope: str, sealed: str, *, context: str = "") -> Any:
        """The value `seal` sealed under the same scope and context; SealError otherwise."""
        try:
            raw = base64.urlsafe_b64decode(sealed.encode())
        except ValueError as exc:
            raise SealError(type(exc).__name__) from None
        return self.open_bytes(scope, raw, context=context)

    def open_bytes(self, scope: str, raw: bytes, *, context: str = "") -> Any:
        """The value `seal_bytes` sealed under the same scope and context; SealError otherwise."""
        try:
            padded = AESGCM(self._derive(scope)).decrypt(raw[:_NONCE], raw[_NONCE:], context.encode())
            (length,) = _LENGTH.unpack_from(padded)
            return json.loads(padded[_LENGTH.size : _LENGTH.size + length])
        except (InvalidTag, ValueError, struct.error) as exc:
            raise SealError(type(exc).__name__) from None


# Replies of a private turn (an anonymous sender's own view of their ideas) are kept in the outbox sealed:
# the row names its recipient, so its text must not be readable beside it. Sender and feeds open it.
OUTBOX_SCOPE = "outbox"
OUTBOX_SIZE = 24_000  # bytes of a reply as JSON; private replies are built to stay well below it


def seal_payload(sealer: Sealer, payload: dict[str, Any], key: str) -> dict[str, Any]:
    """An outbox payload as stored for a private reply: {"sealed": …}, bound to the row's key."""
    return {"sealed": sealer.seal(OUTBOX_SCOPE, payload, size=OUTBOX_SIZE, context=key)}


def open_payload(sealer: Sealer | None, payload: dict[str, Any], key: str) -> dict[str, Any]:
    """The payload as sent: opened when it was stored sealed, as it is otherwise.

    Without a sealer (or with another secret) a sealed payload reads as a short placeholder."""
    if "sealed" not in payload:
        return payload
    if sealer is not None:
        try:
            opened: dict[str, Any] = sealer.open(OUTBOX_SCOPE, payload["sealed"], context=key)
            return opened
        except SealError:
            pass
    return {"text": "(a private message that can no longer be shown)"}
