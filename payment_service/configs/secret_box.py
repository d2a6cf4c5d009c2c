"""AES-256-GCM encryption of channel secrets at rest, under a key that can rotate.

Each sealed value is stored with the id of the key that sealed it. The id is derived from the key
itself, so operators configure keys only (``PAYMENT_SECRET_KEY`` seals and opens,
``PAYMENT_OLD_SECRET_KEYS`` only open) and a row sealed under a retired key stays readable until
``flask --app payment_service secret-key rotate`` seals it again under the current one.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from collections.abc import Iterable
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from flask import Flask, current_app

from payment_service.settings import decode_old_secret_keys, decode_secret_key

NONCE_BYTES = 12
KEY_ID_LABEL = b"laundry-payment/secret-key-id\x00"
EXTENSION = "secret_box"


class SecretUnavailable(RuntimeError):
    """A sealed value cannot be opened: its key is not configured, or the value was tampered with."""


def key_id_of(key: bytes) -> str:
    """A short public name for a key: tells keys apart in rows and logs, says nothing about the key."""
    return "k" + hashlib.sha256(KEY_ID_LABEL + key).hexdigest()[:12]


@dataclass(frozen=True)
class Sealed:
    """A value as stored: the id of the key that sealed it and base64 of nonce + ciphertext + tag."""

    key_id: str
    token: str


class SecretBox:
    """Seals with the current key; opens with the current key or any old one."""

    def __init__(self, current_key: bytes, old_keys: Iterable[bytes] = ()) -> None:
        self.current_key_id = key_id_of(current_key)
        self._ciphers = {key_id_of(key): AESGCM(key) for key in (*old_keys, current_key)}

    @property
    def key_ids(self) -> frozenset[str]:
        return frozenset(self._ciphers)

    def seal(self, plaintext: str, context: str) -> Sealed:
        """Encrypt ``plaintext``; ``context`` (e.g. the config id) is authenticated, so a sealed value
        copied onto another row does not open there."""
        nonce = os.urandom(NONCE_BYTES)
        ciphertext = self._ciphers[self.current_key_id].encrypt(
            nonce, plaintext.encode("utf-8"), context.encode("utf-8")
        )
        return Sealed(self.current_key_id, base64.b64encode(nonce + ciphertext).decode("ascii"))

    def open(self, sealed: Sealed, context: str) -> str:
        cipher = self._ciphers.get(sealed.key_id)
        if cipher is None:
            raise SecretUnavailable(
                f"sealed under key {sealed.key_id}, which is neither PAYMENT_SECRET_KEY "
                "nor listed in PAYMENT_OLD_SECRET_KEYS"
            )
        try:
            raw = base64.b64decode(sealed.token, validate=True)
            plaintext = cipher.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], context.encode("utf-8"))
        except (binascii.Error, ValueError, InvalidTag):
            raise SecretUnavailable(f"sealed value under key {sealed.key_id} does not authenticate") from None
        return plaintext.decode("utf-8")


def install_secret_box(app: Flask) -> SecretBox:
    """Build the app's box from its (already validated) settings."""
    box = SecretBox(
        decode_secret_key(app.config["SECRET_KEY"]),
        decode_old_secret_keys(app.config["OLD_SECRET_KEYS"]),
    )
    app.extensions[EXTENSION] = box
    return box


def current_secret_box() -> SecretBox:
    return current_app.extensions[EXTENSION]
