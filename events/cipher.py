"""Encryption at rest of the event store and snapshots (on by default): the library's cipher with key rotation.

``LedgerCipher`` is the eventsourcing library's ``AESCipher`` (AES-GCM, the same stored
format: nonce | tag | ciphertext) reading the deployment's key ring (:class:`events.pii.KeyRing`):
it encrypts with the current key (``CIPHER_KEY``) and decrypts with the current key, then
each of ``LEDGER_CIPHER_KEYS_OLD`` in turn. ``infra.settings`` names it as the store's
``CIPHER_TOPIC`` whenever the events live on SQLite or PostgreSQL.

``LEDGER_CIPHER_READ_PLAIN=1`` is the bridge for a store written before encryption was the
default: a stored state no key decrypts and that is plain JSON (``{...}``) is read as it is;
every new event is written encrypted. Off by default: otherwise anyone able to write a row
could slip in an unauthenticated event.
"""
from __future__ import annotations

from typing import Any

from eventsourcing.cipher import AESCipher

from events.pii import CipherKeyError, KeyRing

TOPIC = "events.cipher:LedgerCipher"
OLD_KEYS = "LEDGER_CIPHER_KEYS_OLD"
READ_PLAIN = "LEDGER_CIPHER_READ_PLAIN"


class LedgerCipher(AESCipher):
    """``AESCipher`` with old keys accepted for decryption (see the module docstring)."""

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)  # checks CIPHER_KEY as the library does
        old = [k for k in (environment.get(OLD_KEYS) or "").split(",") if k.strip()]
        self.ring = KeyRing.from_texts(environment.get(self.CIPHER_KEY), old)
        self.read_plain = (environment.get(READ_PLAIN) or "") == "1"
        self.encrypt = self.ring.encrypt_store  # type: ignore[method-assign]

    def decrypt(self, ciphertext: bytes) -> bytes:
        try:
            return self.ring.decrypt_store(ciphertext)
        except CipherKeyError as e:
            if self.read_plain and ciphertext[:1] == b"{" and ciphertext[-1:] == b"}":
                return ciphertext
            raise ValueError(str(e)) from None
