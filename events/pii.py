"""Personal data (个人信息) encrypted with the deployment's cipher key: one module for every place that does it.

The ledger encrypts personal data at rest and on its topics with AES-256-GCM
(pycryptodome, as the eventsourcing library's ``AESCipher``):

* the event store and snapshots: the library's mapper, with :class:`events.cipher.LedgerCipher`
  (the library's ``AESCipher`` format: nonce 12 | tag 16 | ciphertext);
* single fields (``Registered.id_number`` / ``name`` on ``ledger.events.v1``, the raw bytes
  of a refused record kept for reconciliation, a dead letter's value): :func:`encrypt_field`,
  in the self-describing format below, so a reader knows which key wrote it.

Field format (``aesgcm-v1``)::

    0xE1 | key id (4 bytes) | nonce (12) | tag (16) | ciphertext

The key id is the first 4 bytes of SHA-256 over the key: it names a key without revealing it,
so a reader holding the current key and the old ones (:class:`KeyRing`) picks the right one.
A nonce is random per value (96 bits): the same ID encrypts differently every time, so
equality lookups go by the keyed person id (``ledger.domain.identity``), never by ciphertext.

**Where the key comes from.** ``CIPHER_KEY`` (or ``LEDGER_CIPHER_KEY``): 16, 24 or 32 bytes,
base64, as the library's ``AESCipher.create_key(32)`` makes them. Without it the embedded
default generates one once, in the state directory (``var/cipher_key``, mode 600), as it does
for ``LEDGER_ID_KEY``; production (``LEDGER_REQUIRE_ID_KEY=1`` or ``LEDGER_REQUIRE_CIPHER_KEY=1``)
refuses to start without it. ``LEDGER_CIPHER_KEYS_OLD``: earlier keys (comma separated), still
accepted for decrypting; new values are always written with the current key.

**Downstream.** Whoever legitimately needs the clear ID number or name from
``ledger.events.v1`` calls :func:`decrypt_field` with the deployment key
(``KeyRing.from_env()``, or ``KeyRing([key])``), see ``schemas/README.md``.
"""
from __future__ import annotations

import hashlib
import os
from base64 import b64decode, b64encode
from collections.abc import Iterable, Mapping, Sequence

try:  # OpenSSL's AES-GCM: ~2 µs per event, where pycryptodome's AES.new(..., MODE_GCM) costs ~100 µs per call
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
except ImportError:  # pragma: no cover - a declared dependency; pycryptodome (the library's) still works
    AESGCM = None  # type: ignore[assignment,misc]
    InvalidTag = ValueError  # type: ignore[assignment,misc]
from Crypto.Cipher import AES

from infra.settings import Settings, cipher_config, cipher_keys

#: First byte of every field value this module writes (not a valid first byte of UTF-8 text).
MAGIC = 0xE1
#: The header value a dead letter's encrypted envelope carries (``enc``), and this format's name.
SCHEME = "aesgcm-v1"
_HEADER = 1 + 4 + 12 + 16


class CipherKeyError(ValueError):
    """A value that no key of the ring decrypts (wrong key, old key not configured, or damaged)."""


def parse_key(text: str | bytes) -> bytes:
    """A key from its base64 text (16, 24 or 32 bytes once decoded)."""
    raw = b64decode(text if isinstance(text, bytes) else text.strip().encode(), validate=True)
    if len(raw) not in (16, 24, 32):
        raise ValueError(f"a cipher key is 16, 24 or 32 bytes in base64, got {len(raw)} bytes")
    return raw


def new_key() -> str:
    """A fresh 256-bit key, base64 (what ``CIPHER_KEY`` holds)."""
    return b64encode(os.urandom(32)).decode()


def key_id(key: bytes) -> bytes:
    """4 bytes naming ``key`` (SHA-256 prefix); shown as hex in headers and reports."""
    return hashlib.sha256(b"ledger-cipher-key-id:" + key).digest()[:4]


class KeyRing:
    """The current key (encrypts) and the old ones (still decrypt): the unit of key rotation."""

    def __init__(self, keys: Sequence[bytes]) -> None:
        if not keys:
            raise ValueError("a key ring needs at least the current key")
        self.keys = tuple(keys)
        self.current = self.keys[0]
        self.current_id = key_id(self.current)
        self._by_id = {}
        for key in reversed(self.keys):  # the current key wins an (improbable) id collision
            self._by_id[key_id(key)] = key
        # One AES-GCM object per key (the key schedule computed once): same bytes as AES.new(...) gives.
        self._aead = {key: AESGCM(key) for key in self.keys} if AESGCM is not None else None

    @classmethod
    def from_texts(cls, current: str, old: Iterable[str] = ()) -> "KeyRing":
        return cls([parse_key(current), *(parse_key(k) for k in old if k.strip())])

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "KeyRing":
        """The ring of the deployment: ``CIPHER_KEY``/``LEDGER_CIPHER_KEY`` (else the generated one),
        then ``LEDGER_CIPHER_KEYS_OLD`` (read by :func:`infra.settings.cipher_keys`)."""
        current, old = cipher_keys(env)
        return cls.from_texts(current, old)

    @classmethod
    def for_settings(cls, settings: Settings) -> "KeyRing":
        """The ring of ``settings`` (the deployment's, from the environment, when it names no keys)."""
        if settings.cipher_keys:
            return cls.from_texts(settings.cipher_keys[0], settings.cipher_keys[1:])
        return cls.from_env()

    @property
    def current_id_hex(self) -> str:
        return self.current_id.hex()

    # ------------------------------------------------------------------ AES-GCM, both formats
    def _seal(self, key: bytes, plain: bytes, aad: bytes) -> bytes:
        """nonce | tag | ciphertext (the library's AESCipher layout)."""
        nonce = os.urandom(12)
        if self._aead is not None:
            out = self._aead[key].encrypt(nonce, plain, aad or None)  # ciphertext | tag
            return nonce + out[-16:] + out[:-16]
        cipher = AES.new(key, AES.MODE_GCM, nonce=nonce)
        if aad:
            cipher.update(aad)
        body, tag = cipher.encrypt_and_digest(plain)
        return nonce + tag + body

    def _open(self, key: bytes, value: bytes, aad: bytes) -> bytes:
        """:meth:`_seal` undone; ``ValueError`` when the key is wrong or the bytes were changed."""
        nonce, tag, body = value[:12], value[12:28], value[28:]
        if self._aead is not None:
            try:
                return self._aead[key].decrypt(bytes(nonce), bytes(body) + bytes(tag), aad or None)
            except InvalidTag:
                raise ValueError("authentication failed") from None
        cipher = AES.new(key, AES.MODE_GCM, nonce=nonce)
        if aad:
            cipher.update(aad)
        return cipher.decrypt_and_verify(body, tag)

    # ------------------------------------------------------------------ field format
    def encrypt(self, plain: bytes, *, aad: bytes = b"") -> bytes:
        """``plain`` in the field format, with the current key (random nonce)."""
        return bytes((MAGIC,)) + self.current_id + self._seal(self.current, plain, aad)

    def decrypt(self, value: bytes, *, aad: bytes = b"") -> bytes:
        """The plain bytes of a field-format ``value`` (any key of the ring); :class:`CipherKeyError` else."""
        if not is_encrypted(value):
            raise CipherKeyError("not an encrypted value (aesgcm-v1)")
        key = self._by_id.get(bytes(value[1:5]))
        if key is None:
            raise CipherKeyError(f"written with key {bytes(value[1:5]).hex()}, which is not configured "
                                 "(set it in LEDGER_CIPHER_KEYS_OLD)")
        try:
            return self._open(key, value[5:], aad)
        except ValueError:
            raise CipherKeyError("encrypted value is damaged (authentication failed)") from None

    # ------------------------------------------------------------------ the library's AESCipher format
    def encrypt_store(self, plain: bytes) -> bytes:
        """``AESCipher.encrypt`` with the current key: nonce | tag | ciphertext."""
        return self._seal(self.current, plain, b"")

    def decrypt_store(self, value: bytes) -> bytes:
        """``AESCipher.decrypt``, trying the current key, then the old ones (that format names no key)."""
        if len(value) < 28:
            raise CipherKeyError("Damaged cipher text: too short")
        for key in self.keys:
            try:
                return self._open(key, value, b"")
            except ValueError:
                continue
        raise CipherKeyError("Cipher text is damaged, or written with a key not configured "
                             "(current key and LEDGER_CIPHER_KEYS_OLD tried)")


_RINGS: dict[tuple[str, ...], KeyRing] = {}


def deployment_keys() -> KeyRing:
    """The key ring of the process environment (:meth:`KeyRing.from_env`), built once per key configuration.

    Not how the system gets its keys: ``entrypoints.wiring.bootstrap`` builds ``System.keys`` from its
    settings (:meth:`KeyRing.for_settings`) and hands that ring to the publisher, the consumers, the dead
    letters and the reconciliation store. This is only the default of parts built by hand without a
    system (a test's handler or store, a downstream script calling :func:`decrypt_field`)."""
    # The variables the ring depends on, as they are: no Path built per call (the publisher asks once
    # per Registered event).
    config = cipher_config()
    ring = _RINGS.get(config)
    if ring is None:
        ring = _RINGS[config] = KeyRing.from_env()
    return ring


def is_encrypted(value: object) -> bool:
    """Whether ``value`` is bytes in the field format (the first byte and the minimum length)."""
    return isinstance(value, (bytes, bytearray, memoryview)) and len(value) >= _HEADER and value[0] == MAGIC


def encrypt_text(ring: KeyRing, text: str, *, aad: bytes = b"") -> bytes:
    return ring.encrypt(text.encode("utf-8"), aad=aad)


def decrypt_field(value: bytes, ring: KeyRing | None = None, *, aad: bytes = b"") -> str:
    """The clear text of an encrypted field of ``ledger.events.v1`` (e.g. ``Registered.id_number_enc``).

    ``ring`` defaults to the deployment's (:meth:`KeyRing.from_env`). The documented path for a
    downstream system that is entitled to the clear ID number or name.
    """
    return (ring or deployment_keys()).decrypt(value, aad=aad).decode("utf-8")


__all__ = ["MAGIC", "SCHEME", "CipherKeyError", "KeyRing", "decrypt_field", "deployment_keys", "encrypt_text",
           "is_encrypted",
           "key_id", "new_key", "parse_key"]
